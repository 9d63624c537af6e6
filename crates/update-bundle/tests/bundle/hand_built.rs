//! Bundles assembled by hand from the public format types: every structural rule of the header
//! and `Manifest::check`, unknown manifest fields, and chunks whose signed table is wrong (what
//! a buggy or hostile signer could make) are refused with a message saying what is wrong.

use std::io::Cursor;

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use update_bundle::format::{HEADER_LEN, MAX_CHUNK, MAX_HOOK, signed_message};
use update_bundle::{BundleReader, Chunk, Header, Hook, HookKind, Image, Manifest, Signer};
use update_core::config::Verify;
use update_core::keyring::Keyring;
use update_core::{Result, SlotGroupName};

use crate::fixture::{keyring, snakeoil};

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A manifest for these images (one zstd frame per `chunk`-byte piece), and the payload.
fn manifest(images: &[(&str, &[u8])], chunk: usize) -> (Manifest, Vec<u8>) {
    let mut payload = Vec::new();
    let mut out = Vec::new();
    for (group, data) in images {
        let mut chunks = Vec::new();
        for piece in data.chunks(chunk) {
            let z = zstd::bulk::compress(piece, 3).unwrap();
            chunks.push(Chunk {
                offset: payload.len() as u64,
                zsize: z.len() as u64,
                size: piece.len() as u64,
                sha256: sha(piece),
                zsha256: sha(&z),
            });
            payload.extend_from_slice(&z);
        }
        out.push(Image {
            slot_group: SlotGroupName::new(group).unwrap(),
            size: data.len() as u64,
            sha256: sha(data),
            chunks,
        });
    }
    let m = Manifest {
        format: 1,
        version: update_core::parse_version("1.0").unwrap(),
        compatible: "snakeoil-board".into(),
        min_version: None,
        created: "2026-01-01T00:00:00Z".into(),
        signers: Vec::new(),
        chunk_size: chunk as u64,
        images: out,
        components: Vec::new(),
        hooks: Vec::new(),
        payload_size: payload.len() as u64,
        delta: None,
    };
    (m, payload)
}

type Edit = fn(&mut serde_json::Map<String, serde_json::Value>);

/// The file: header, manifest (edited as JSON), signatures by `keys` (listed as signers), payload.
fn assemble(m: &Manifest, edit: Option<Edit>, keys: &[&SigningKey], payload: &[u8]) -> Vec<u8> {
    let mut m = m.clone();
    for (i, k) in keys.iter().enumerate() {
        m.signers.push(Signer { name: format!("k{i}"), key_id: update_bundle::signing::public_key(k).key_id() });
    }
    let mut json = serde_json::to_value(&m).unwrap();
    if let Some(edit) = edit {
        edit(json.as_object_mut().unwrap());
    }
    assemble_bytes(&serde_json::to_vec(&json).unwrap(), keys, payload)
}

/// The file from raw manifest bytes.
fn assemble_bytes(manifest_bytes: &[u8], keys: &[&SigningKey], payload: &[u8]) -> Vec<u8> {
    let format = serde_json::from_slice::<serde_json::Value>(manifest_bytes)
        .ok()
        .and_then(|v| v.get("format").and_then(serde_json::Value::as_u64))
        .map_or(1, |f| u32::try_from(f).unwrap_or(1));
    let header = Header {
        format,
        manifest_len: manifest_bytes.len() as u64,
        signatures_len: 96 * keys.len() as u64,
        payload_len: payload.len() as u64,
    }
    .encode();
    let message = signed_message(&header, manifest_bytes);
    let mut f = [header.as_slice(), manifest_bytes].concat();
    for k in keys {
        f.extend_from_slice(&hex::decode(update_bundle::signing::public_key(k).key_id()).unwrap());
        f.extend_from_slice(&k.sign(&message).to_bytes());
    }
    f.extend_from_slice(payload);
    f
}

fn header_for(m: &Manifest) -> Header {
    Header { format: m.format, manifest_len: 100, signatures_len: 0, payload_len: m.payload_size }
}

fn check_err(m: &Manifest, header: &Header) -> String {
    m.check(header, "x.bundle").expect_err("the manifest was accepted").to_string()
}

#[test]
fn manifest_check_enforces_every_rule() {
    let data = vec![7u8; 10_000];
    let (good, _) = manifest(&[("rootfs", &data), ("app", b"tiny")], 4096);
    let header = header_for(&good);
    good.check(&header, "x.bundle").unwrap();
    type Edit = fn(&mut Manifest);
    let cases: &[(Edit, &str)] = &[
        (|m| m.format = 2, "manifest format 2 is not the header's 1"),
        (|m| m.payload_size += 1, "does not match the header's"),
        (|m| m.chunk_size = 0, "chunk size 0 is outside 1..=16777216"),
        (|m| m.chunk_size = MAX_CHUNK + 1, "chunk size 16777217 is outside"),
        (|m| m.images[1].slot_group = m.images[0].slot_group.clone(), "slot group 'rootfs' appears twice"),
        (
            |m| {
                m.images[1].chunks.clear();
                m.images[1].size = 0;
            },
            "image 'app' is empty",
        ),
        (|m| m.images[0].sha256 = m.images[0].sha256.to_uppercase(), "image 'rootfs' has a malformed sha256"),
        (|m| m.images[0].chunks[1].offset += 1, "image 'rootfs' chunk 1: offset"),
        (|m| m.images[0].chunks[0].size = 4097, "image 'rootfs' chunk 0: size 4097 is outside 1..=4096"),
        (|m| m.images[0].chunks[2].size = 0, "image 'rootfs' chunk 2: size 0 is outside"),
        (|m| m.images[0].chunks[0].zsize = 0, "image 'rootfs' chunk 0: compressed size 0 is implausible"),
        (|m| m.images[0].chunks[0].zsize = 4096 + 64 + 1025, "compressed size 5185 is implausible"),
        (|m| m.images[0].chunks[0].zsha256.pop().map(drop).unwrap(), "image 'rootfs' chunk 0: malformed sha256"),
        (|m| m.images[0].size += 1, "image 'rootfs': chunks add up to 10000 bytes, it is 10001"),
        (
            |m| m.signers = vec![Signer { name: "v".into(), key_id: "00".repeat(31) }],
            "signer 'v' has a malformed or repeated key id",
        ),
        (
            |m| {
                let s = Signer { name: "w".into(), key_id: "ab".repeat(32) };
                m.signers = vec![s.clone(), s];
            },
            "signer 'w' has a malformed or repeated key id",
        ),
        (
            |m| m.hooks = vec![Hook { kind: HookKind::PostInstall, sha256: "00".repeat(32), content: b"x".to_vec() }],
            "post-install hook does not match its sha256",
        ),
        (
            |m| {
                let content = vec![b'#'; MAX_HOOK + 1];
                m.hooks = vec![Hook { kind: HookKind::PostInstall, sha256: sha(&content), content }];
            },
            "post-install hook is larger than 1048576 bytes",
        ),
    ];
    for (i, (edit, want)) in cases.iter().enumerate() {
        let mut m = good.clone();
        edit(&mut m);
        let e = check_err(&m, &header);
        assert!(e.contains("x.bundle: manifest") && e.contains(want), "case {i}: {e}");
    }
    // The payload total is checked even when each image adds up.
    let mut m = good.clone();
    m.images[1].chunks[0].zsize += 1;
    let e = check_err(&m, &header);
    assert!(e.contains("chunks add up to 71 payload bytes, the payload is 70"), "{e}");
}

#[test]
fn open_runs_the_manifest_check_before_any_signature() {
    let (mut m, payload) = manifest(&[("rootfs", &[1u8; 5000])], 4096);
    m.images[0].chunks[1].offset += 1;
    let bytes = assemble(&m, None, &[&snakeoil(1)], &payload);
    let err = BundleReader::open(Cursor::new(&bytes), "x.bundle").unwrap_err().to_string();
    assert!(err.contains("x.bundle: manifest") && err.contains("chunk 1: offset"), "{err}");
}

#[test]
fn header_rules() {
    let (m, payload) = manifest(&[("rootfs", &[1u8; 100])], 4096);
    let good = assemble(&m, None, &[], &payload);
    let set = |at: usize, bytes: &[u8]| {
        let mut f = good.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        BundleReader::open(Cursor::new(&f), "x.bundle").map(|_| ()).unwrap_err().to_string()
    };
    let cases: [(usize, Vec<u8>, &str); 11] = [
        (0, b"LIBUPDA\0".to_vec(), "bad magic"),
        (8, 4u32.to_le_bytes().to_vec(), "format version 4 is not supported (this reads 1 to 3)"),
        // A format 3 header needs a manifest with a delta index.
        (8, 3u32.to_le_bytes().to_vec(), "manifest format 1 is not the header's 3"),
        (8, 0u32.to_le_bytes().to_vec(), "format version 0 is not supported"),
        // A format 1 manifest under a format 2 header (or the reverse) is refused.
        (8, 2u32.to_le_bytes().to_vec(), "manifest format 1 is not the header's 2"),
        (12, 1u32.to_le_bytes().to_vec(), "unknown flags 0x1"),
        (63, vec![1], "reserved bytes 40..64 are not zero"),
        (16, 0u64.to_le_bytes().to_vec(), "manifest length 0 is outside 1..=16777216"),
        (16, ((16u64 << 20) + 1).to_le_bytes().to_vec(), "manifest length 16777217 is outside"),
        (24, 95u64.to_le_bytes().to_vec(), "signature block length 95 is not a multiple of 96 up to 64 entries"),
        (24, (65 * 96u64).to_le_bytes().to_vec(), "signature block length 6240"),
    ];
    for (at, bytes, want) in cases {
        let e = set(at, &bytes);
        assert!((e.contains("x.bundle: header") || e.contains("x.bundle: manifest")) && e.contains(want), "{e}");
    }
    for at in 40..64 {
        assert!(set(at, &[0x80]).contains("reserved bytes 40..64 are not zero"), "reserved byte {at}");
    }
    // The header's payload length must match the manifest's.
    let e = set(32, &1u64.to_le_bytes());
    assert!(e.contains("payload size") && e.contains("does not match the header's 1"), "{e}");
    assert!(BundleReader::open(Cursor::new(&good), "x.bundle").is_ok());
    // 64 signatures are the most accepted.
    let max = Header { format: 1, manifest_len: 1, signatures_len: 64 * 96, payload_len: 0 }.encode();
    assert!(Header::decode(&max, "x").is_ok());
    assert_eq!(HEADER_LEN, 64);
}

#[test]
fn unknown_manifest_fields_are_kept_under_the_signature() {
    // Signed metadata is tolerant: a newer build machine may add fields; the signature covers
    // the bytes as written, so an older device still verifies them.
    let key = snakeoil(1);
    let (m, payload) = manifest(&[("rootfs", &[5u8; 3000])], 1024);
    let edit: Edit = |j| drop(j.insert("delta_base".into(), serde_json::json!({"version": "0.9.0"})));
    let bytes = assemble(&m, Some(edit), &[&key], &payload);
    let out = crate::fixture::device_check(&bytes, "x", &keyring(&[("k0", &key)]), 1, Verify::Signatures);
    assert!(out.accepted(), "{:?} {:?}", out.pre, out.stream);
}

#[test]
fn min_version_may_be_absent_other_fields_may_not() {
    let key = snakeoil(1);
    let ring = keyring(&[("k0", &key)]);
    let (m, payload) = manifest(&[("rootfs", &[5u8; 3000])], 1024);
    let edit: Edit = |j| drop(j.remove("min_version"));
    let out =
        crate::fixture::device_check(&assemble(&m, Some(edit), &[&key], &payload), "x", &ring, 1, Verify::Signatures);
    assert!(out.accepted(), "{:?}", out.stream);
    let edit: Edit = |j| drop(j.remove("hooks"));
    let e = BundleReader::open(Cursor::new(assemble(&m, Some(edit), &[&key], &payload)), "x").unwrap_err();
    assert!(e.to_string().contains("x: manifest: not valid JSON: missing field `hooks`"), "{e}");
}

#[test]
fn a_manifest_field_given_twice_is_refused() {
    let (m, payload) = manifest(&[("rootfs", &[5u8; 3000])], 1024);
    let json = serde_json::to_string(&m).unwrap().replacen('{', r#"{"version":"99.0.0","#, 1);
    let e = BundleReader::open(Cursor::new(assemble_bytes(json.as_bytes(), &[], &payload)), "x").unwrap_err();
    assert!(e.to_string().contains("x: manifest: not valid JSON: duplicate field `version`"), "{e}");
}

/// Streams a hand-built unsigned bundle in integrity-only mode; returns the error and whether
/// the pre-pass (which checks only the compressed hashes) accepted it.
fn stream_unsigned(m: &Manifest, payload: &[u8]) -> (String, Result<()>, usize) {
    let bytes = assemble(m, None, &[], payload);
    let out = crate::fixture::device_check(&bytes, "x.bundle", &Keyring::default(), 1, Verify::IntegrityOnly);
    (out.stream_error(), out.pre, out.received.len())
}

#[test]
fn a_chunk_that_decompresses_to_more_than_its_size_is_stopped() {
    // A decompression bomb: the output is bounded by the declared size.
    let big = vec![0u8; 1 << 20];
    let z = zstd::bulk::compress(&big, 3).unwrap();
    let (mut m, _) = manifest(&[("rootfs", &big[..4096])], 4096);
    m.images[0].chunks[0] =
        Chunk { offset: 0, zsize: z.len() as u64, size: 4096, sha256: sha(&big[..4096]), zsha256: sha(&z) };
    m.payload_size = z.len() as u64;
    let (e, pre, received) = stream_unsigned(&m, &z);
    assert!(e.contains("image 'rootfs' chunk 0 (payload offset 0): does not decompress to 4096 bytes"), "{e}");
    assert!(pre.is_ok(), "the pre-pass checks compressed hashes only");
    assert_eq!(received, 0);
}

#[test]
fn a_chunk_that_decompresses_to_less_than_its_size_is_refused() {
    let data = vec![3u8; 3000];
    let z = zstd::bulk::compress(&data[..1000], 3).unwrap();
    let (mut m, _) = manifest(&[("rootfs", &data)], 4096);
    m.images[0].chunks[0].zsize = z.len() as u64;
    m.images[0].chunks[0].zsha256 = sha(&z);
    m.payload_size = z.len() as u64;
    let (e, _, received) = stream_unsigned(&m, &z);
    assert!(e.contains("chunk 0 (payload offset 0): decompressed to 1000 bytes, 3000 expected"), "{e}");
    assert_eq!(received, 0);
}

#[test]
fn a_chunk_that_is_not_zstd_is_refused() {
    let garbage = crate::fixture::random_bytes(5, 200);
    let (mut m, _) = manifest(&[("rootfs", &[1u8; 300])], 4096);
    m.images[0].chunks[0].zsize = 200;
    m.images[0].chunks[0].zsha256 = sha(&garbage);
    m.payload_size = 200;
    let (e, _, received) = stream_unsigned(&m, &garbage);
    assert!(e.contains("chunk 0 (payload offset 0): does not decompress to 300 bytes"), "{e}");
    assert_eq!(received, 0);
}

#[test]
fn a_chunk_whose_content_does_not_match_its_hash_is_refused() {
    let data = crate::fixture::mixed(1, 3 * 1024);
    let (mut m, payload) = manifest(&[("rootfs", &data)], 1024);
    m.images[0].chunks[1].sha256 = sha(b"something else");
    let (e, pre, received) = stream_unsigned(&m, &payload);
    assert!(
        e.contains("image 'rootfs' chunk 1 (payload offset") && e.contains("content does not match the signed hash"),
        "{e}"
    );
    assert!(pre.is_ok());
    assert_eq!(received, 1, "only chunk 0 reached the sink");
}
