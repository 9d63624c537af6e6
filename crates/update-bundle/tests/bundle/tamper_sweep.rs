//! Every byte is covered: changing any bit anywhere (header, manifest, signature block, every
//! chunk) is refused by both device paths — the pre-pass and the stream — and the stream's sink
//! only ever receives the chunks before the changed one, each exactly as it was made.

use proptest::prelude::*;
use update_core::config::Verify;
use update_core::keyring::Keyring;

use crate::fixture::{Built, Outcome, Piece, chunk_at, device_check, expected_pieces, small};

/// Checks one changed copy of `built` (the change at file offset `at`); panics on acceptance
/// or on anything the sink should not have received.
fn assert_refused(built: &Built, ring: &Keyring, bytes: &[u8], at: usize) {
    let out: Outcome = device_check(bytes, "tampered.bundle", ring, 1, Verify::Signatures);
    assert!(out.refused(), "a change at offset {at} was accepted (pre-pass {:?}, stream {:?})", out.pre, out.stream);
    let layout = built.layout();
    let all: Vec<Piece> = expected_pieces(built);
    if at < layout.payload.start {
        // Header, manifest or signature block: refused before the payload is read.
        assert!(out.received.is_empty(), "offset {at}: the sink received bytes of an unverified bundle");
    } else {
        // Exactly the chunks before the changed one reached the sink, unchanged; the error
        // names the changed chunk.
        let (image, c) = chunk_at(&built.manifest, (at - layout.payload.start) as u64);
        let k = built.manifest.images[..image].iter().map(|i| i.chunks.len()).sum::<usize>() + c;
        assert_eq!(out.received.len(), k, "offset {at} is in chunk {k}; the sink got {} chunks", out.received.len());
        assert!(out.received == all[..k], "offset {at}: the sink received bytes that differ from the image");
        let name = format!("image '{}' chunk {c} ", built.manifest.images[image].slot_group);
        for e in [out.pre_error(), out.stream_error()] {
            assert!(e.contains(&name) && e.contains("compressed bytes do not match"), "offset {at}: {e}");
        }
    }
}

#[test]
fn the_original_is_accepted() {
    let (built, ring) = small(&[("rootfs", 5000), ("app", 1200)], 1024);
    let out = device_check(&built.bundle, "b", &ring, 1, Verify::Signatures);
    assert!(out.accepted());
    assert_eq!(out.received, expected_pieces(&built));
}

#[test]
fn flipping_any_bit_of_any_byte_is_refused() {
    // About 3 KiB: two images, seven chunks, one signature.
    let (built, ring) = small(&[("rootfs", 5000), ("app", 1200)], 1024);
    let len = built.bundle.len();
    let mut tried = 0;
    for at in 0..len {
        for bit in 0..8 {
            let mut bytes = built.bundle.clone();
            bytes[at] ^= 1 << bit;
            assert_refused(&built, &ring, &bytes, at);
            tried += 1;
        }
    }
    let l = built.layout();
    eprintln!(
        "tamper sweep: {len} offsets x 8 bits = {tried} changed bundles, every one refused \
         (header {}, manifest {}, signatures {}, payload {} bytes)",
        l.header.len(),
        l.manifest.len(),
        l.signatures.len(),
        l.payload.len()
    );
    assert_eq!(tried, 8 * len);
}

thread_local! {
    static LARGE: std::rc::Rc<(Built, Keyring)> =
        std::rc::Rc::new(small(&[("rootfs", 256 << 10), ("app", 256 << 10)], 64 << 10));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Random byte values at random offsets of a larger bundle (two 256 KiB images, 64 KiB chunks).
    #[test]
    fn random_changes_of_a_larger_bundle_are_refused(pos in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let fx = LARGE.with(std::rc::Rc::clone);
        let (built, ring) = &*fx;
        let mut bytes = built.bundle.clone();
        let at = pos.index(bytes.len());
        bytes[at] ^= xor;
        assert_refused(built, ring, &bytes, at);
    }

    /// Several random changes at once, anywhere.
    #[test]
    fn several_changes_are_refused(changes in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 2..8)) {
        let fx = LARGE.with(std::rc::Rc::clone);
        let (built, ring) = &*fx;
        let mut bytes = built.bundle.clone();
        for (pos, xor) in &changes {
            let at = pos.index(bytes.len());
            bytes[at] ^= xor;
        }
        // Two changes of the same byte can cancel out.
        prop_assume!(bytes != built.bundle);
        let out = device_check(&bytes, "b", ring, 1, Verify::Signatures);
        prop_assert!(out.refused());
        let all = expected_pieces(built);
        prop_assert!(out.received.len() < all.len() && out.received == all[..out.received.len()]);
    }
}
