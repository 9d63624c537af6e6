//! Format 3: the delta index and block store (docs/reference/bundle.md, "Delta index"). The
//! index is decoded the way a device decodes it and checked against the images it was made
//! from; the pre-pass covers the delta section byte for byte; hostile indexes are refused
//! without a panic.

use std::collections::HashSet;
use std::io::Cursor;

use proptest::prelude::*;
use update_bundle::delta::{BLOCK_SIZE, BlockIndex, DeltaInfo, ZERO, block_hash, merge_ranges, open_block};
use update_bundle::{BundleReader, CreateOptions, VerifiedBundle};
use update_core::config::Verify;
use update_core::{KeyName, SlotGroupName};

use crate::fixture::{keyring, random_bytes, snakeoil};

const BS: usize = 4096;

/// An "old" image: random blocks with zero runs, and a "new" one made from it the way a
/// rebuilt filesystem differs: some blocks changed, some moved, one block repeated, a zero run
/// filled, and a partial last block.
fn images() -> (Vec<u8>, Vec<u8>) {
    let mut old = random_bytes(7, 64 * BS);
    old[10 * BS..14 * BS].fill(0);
    old[40 * BS..48 * BS].fill(0);
    let mut new = old.clone();
    new[3 * BS..5 * BS].copy_from_slice(&random_bytes(8, 2 * BS)); // changed
    let moved = old[20 * BS..22 * BS].to_vec();
    new[50 * BS..52 * BS].copy_from_slice(&moved); // moved (also still at 20..22)
    new[60 * BS..61 * BS].copy_from_slice(&old[30 * BS..31 * BS]); // repeated
    new[42 * BS..43 * BS].copy_from_slice(&random_bytes(9, BS)); // zero run filled
    new.extend_from_slice(&random_bytes(10, 1000)); // partial last block
    (old, new)
}

struct Made {
    bundle: Vec<u8>,
    old: Vec<u8>,
    new: Vec<u8>,
}

fn make(base: bool) -> Made {
    let (old, new) = images();
    let dir = tempfile::tempdir().unwrap();
    let (old_path, new_path) = (dir.path().join("old.img"), dir.path().join("new.img"));
    std::fs::write(&old_path, &old).unwrap();
    std::fs::write(&new_path, &new).unwrap();
    let mut opts = CreateOptions::new(update_core::parse_version("2.0.0").unwrap(), "snakeoil-board");
    opts.images.push((SlotGroupName::new("rootfs").unwrap(), new_path));
    opts.signers = vec![(KeyName::new("vendor").unwrap(), snakeoil(1))];
    opts.chunk_size = 16 * 1024;
    opts.created = "2026-01-01T00:00:00Z".into();
    opts.delta = true;
    if base {
        opts.delta_base = vec![old_path];
    }
    let mut bundle = Vec::new();
    update_bundle::create(&opts, &mut tempfile::tempfile().unwrap(), &mut bundle).unwrap();
    Made { bundle, old, new }
}

fn open(bundle: &[u8]) -> VerifiedBundle<Cursor<&[u8]>> {
    let ring = keyring(&[("vendor", &snakeoil(1))]);
    BundleReader::open(Cursor::new(bundle), "b").unwrap().verify(&ring, 1, Verify::Signatures).unwrap()
}

/// The index and store of a made bundle, as a device reads them.
fn index_of(made: &Made) -> (BlockIndex, DeltaInfo, usize, usize) {
    let v = open(&made.bundle);
    let info = v.manifest().delta.clone().expect("format 3 has a delta");
    let (index_at, store_at) = v.delta_offsets().unwrap();
    let (i, s) = (usize::try_from(index_at).unwrap(), usize::try_from(store_at).unwrap());
    let sizes: Vec<u64> = v.manifest().images.iter().map(|i| i.size).collect();
    let index = BlockIndex::decode(&made.bundle[i..s], &sizes, &info, "b").unwrap();
    (index, info, i, s)
}

#[test]
fn every_block_decodes_to_the_image_and_new_blocks_come_first() {
    let made = make(true);
    let v = open(&made.bundle);
    assert_eq!(v.manifest().format, 3);
    assert!(v.check_payload().is_ok(), "the pre-pass accepts a format 3 bundle");
    let (index, info, _, store_at) = index_of(&made);
    assert_eq!(store_at + usize::try_from(info.store_size).unwrap(), made.bundle.len(), "the store ends the file");
    let blocks = &index.images[0];
    assert_eq!(blocks.len(), made.new.len().div_ceil(BS));
    let old_blocks: HashSet<_> = made.old.chunks(BS).filter(|b| b.iter().any(|&x| x != 0)).map(block_hash).collect();
    let mut out = Vec::new();
    for (b, &e) in blocks.iter().enumerate() {
        let want = &made.new[b * BS..((b + 1) * BS).min(made.new.len())];
        if e == ZERO {
            assert!(want.iter().all(|&x| x == 0), "block {b} is listed as zero");
            continue;
        }
        let s = index.store[e as usize];
        let z = &made.bundle[store_at + usize::try_from(s.offset).unwrap()..][..s.zsize as usize];
        open_block(&s, z, &mut out, "b").unwrap();
        assert_eq!(out, want, "block {b}");
        assert_eq!(s.front, !old_blocks.contains(&block_hash(want)), "block {b}: front means new since the base");
    }
    // Distinct blocks are stored once; the front ones (2 changed + 1 filled + the partial
    // last block) come first, at contiguous offsets.
    let distinct: HashSet<_> = blocks.iter().filter(|e| **e != ZERO).collect();
    assert_eq!(distinct.len(), index.store.len());
    let fronts: Vec<bool> = index.store.iter().map(|s| s.front).collect();
    assert_eq!(fronts.iter().filter(|f| **f).count(), 4);
    assert!(fronts.windows(2).all(|w| w[0] || !w[1]), "front blocks precede the others");
    let mut at = 0;
    for s in &index.store {
        assert_eq!(s.offset, at);
        at += u64::from(s.zsize);
    }
    // Without a base no block is front: the store is in image order.
    let (plain, ..) = index_of(&make(false));
    assert!(plain.store.iter().all(|s| !s.front));
}

#[test]
fn the_pre_pass_covers_every_byte_of_the_delta_section() {
    let made = make(true);
    let (_, _, index_at, store_at) = index_of(&made);
    let ring = keyring(&[("vendor", &snakeoil(1))]);
    let check = |bytes: &[u8]| {
        BundleReader::open(Cursor::new(bytes), "t")
            .and_then(|r| r.verify(&ring, 1, Verify::Signatures))
            .and_then(VerifiedBundle::check_payload)
    };
    for (at, what) in [
        (index_at, "delta index"),
        (index_at + 20, "delta index"),
        (store_at, "delta store"),
        (made.bundle.len() - 1, "delta store"),
    ] {
        let mut bad = made.bundle.clone();
        bad[at] ^= 0x40;
        let e = check(&bad).unwrap_err().to_string();
        assert!(e.contains(&format!("the {what} does not match the signed hash")), "offset {at}: {e}");
    }
    let mut longer = made.bundle.clone();
    longer.push(0);
    assert!(check(&longer).unwrap_err().to_string().contains("trailing bytes"));
    let shorter = &made.bundle[..made.bundle.len() - 1];
    assert!(check(shorter).unwrap_err().to_string().contains("truncated"));
}

#[test]
fn hostile_indexes_are_refused_with_a_reason() {
    let made = make(true);
    let (_, info, index_at, store_at) = index_of(&made);
    let good = made.bundle[index_at..store_at].to_vec();
    let sizes = [made.new.len() as u64];
    let decode = |bytes: &[u8]| BlockIndex::decode(bytes, &sizes, &info, "b").unwrap_err().to_string();
    assert!(decode(&good[..good.len() - 1]).contains("truncated"));
    let mut extra = good.clone();
    extra.push(0);
    assert!(decode(&extra).contains("after the last entry"));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert!(decode(&magic).contains("bad magic"));
    let mut count = good.clone();
    count[16] = count[16].wrapping_add(1); // one more entry than written
    assert!(decode(&count).contains("truncated") || decode(&count).contains("entries"));
    // A zero run longer than the image.
    let first = 24;
    let mut run = good.clone();
    run[first..first + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    run[first + 8..first + 14].fill(0);
    assert!(decode(&run).contains("does not fit"));
    // A store that does not add up.
    let mut short = info.clone();
    short.store_size -= 1;
    assert!(BlockIndex::decode(&good, &sizes, &short, "b").unwrap_err().to_string().contains("store bytes"));
    // The index of another image size.
    assert!(BlockIndex::decode(&good, &[sizes[0] + BLOCK_SIZE], &info, "b").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any change to an index is either refused or decodes to something consistent: never a panic.
    #[test]
    fn changed_indexes_never_panic(at in 0usize..2000, value in any::<u8>(), cut in proptest::option::of(0usize..2000)) {
        let made = make(false);
        let (_, info, index_at, store_at) = index_of(&made);
        let mut bytes = made.bundle[index_at..store_at].to_vec();
        let at = at % bytes.len();
        bytes[at] = value;
        if let Some(cut) = cut {
            bytes.truncate(cut % bytes.len());
        }
        if let Ok(index) = BlockIndex::decode(&bytes, &[made.new.len() as u64], &info, "b") {
            prop_assert_eq!(index.images[0].len(), made.new.len().div_ceil(BS));
            prop_assert!(index.images[0].iter().all(|&e| e == ZERO || (e as usize) < index.store.len()));
        }
    }

    /// Merged ranges cover every input range, are sorted and apart, and are at most `cap`.
    #[test]
    fn merged_ranges_cover_their_inputs(starts in proptest::collection::btree_set(0u64..100_000, 1..200), cap in 1usize..40, gap in 0u64..500) {
        let ranges: Vec<_> = starts.iter().map(|&s| s * 10..s * 10 + 1 + s % 9).collect();
        let merged = merge_ranges(&ranges, gap, cap);
        prop_assert!(merged.len() <= cap);
        prop_assert!(merged.windows(2).all(|w| w[0].end + gap < w[1].start));
        for r in &ranges {
            prop_assert!(merged.iter().any(|m| m.start <= r.start && r.end <= m.end));
        }
    }
}
