//! The file is laid out exactly as docs/reference/bundle.md says. This test reads a bundle with
//! nothing but that document: byte offsets, serde_json, sha2, ed25519-dalek and zstd; it uses no
//! reader code from the crate.

use ed25519_dalek::{Signature, Verifier as _};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fixture::{Spec, build, compressible, random_bytes, snakeoil};

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn size(v: &Value) -> usize {
    usize::try_from(v.as_u64().unwrap()).unwrap()
}

fn u64_at(b: &[u8], o: usize) -> usize {
    usize::try_from(u64::from_le_bytes(b[o..o + 8].try_into().unwrap())).unwrap()
}

#[test]
fn a_bundle_read_by_the_document() {
    let (a, b) = (snakeoil(1), snakeoil(2));
    let images = vec![("rootfs", [random_bytes(1, 6000), compressible(6000)].concat()), ("kernel", compressible(100))];
    let built = build(&Spec { images, signers: vec![("vendor", &a), ("release", &b)], chunk_size: 4096 });
    let f = &built.bundle;

    // Header: 64 bytes, little-endian.
    assert_eq!(&f[0..8], b"LIBUPDB\0", "magic");
    assert_eq!(u32_at(f, 8), 1, "format version");
    assert_eq!(u32_at(f, 12), 0, "flags");
    let (m, s, p) = (u64_at(f, 16), u64_at(f, 24), u64_at(f, 32));
    assert!(f[40..64].iter().all(|&x| x == 0), "reserved");
    assert_eq!(s, 2 * 96, "two signature entries of 96 bytes");
    assert_eq!(f.len(), 64 + m + s + p, "the file ends where the payload ends");

    // Manifest: compact JSON with these fields.
    let manifest_bytes = &f[64..64 + m];
    assert!(!manifest_bytes.contains(&b'\n'), "compact serialisation");
    let j: Value = serde_json::from_slice(manifest_bytes).unwrap();
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "chunk_size",
            "compatible",
            "created",
            "format",
            "hooks",
            "images",
            "min_version",
            "payload_size",
            "signers",
            "version"
        ]
    );
    assert_eq!(j["format"], 1);
    assert_eq!(j["version"], "2.0.0");
    assert_eq!(j["min_version"], Value::Null);
    assert_eq!(j["chunk_size"], 4096);
    assert_eq!(size(&j["payload_size"]), p);
    let key_id = |k: &ed25519_dalek::SigningKey| hex::encode(Sha256::digest(k.verifying_key().as_bytes()));
    assert_eq!(j["signers"][0]["name"], "vendor");
    assert_eq!(j["signers"][0]["key_id"], key_id(&a));
    assert_eq!(j["signers"][1]["name"], "release");
    assert_eq!(j["signers"][1]["key_id"], key_id(&b));

    // Signature block: (32-byte raw key id, 64-byte ed25519 signature) over
    // "libupdate bundle v1\0" ‖ header ‖ manifest.
    let message = [b"libupdate bundle v1\0".as_slice(), &f[0..64], manifest_bytes].concat();
    for (entry, key) in f[64 + m..64 + m + s].chunks_exact(96).zip([&a, &b]) {
        assert_eq!(hex::encode(&entry[..32]), key_id(key));
        let sig = Signature::from_slice(&entry[32..]).unwrap();
        key.verifying_key().verify(&message, &sig).unwrap();
    }

    // Payload: each chunk one zstd frame at file offset 64 + M + S + offset, as an HTTP Range
    // request would fetch it; contiguous across images.
    let payload_start = 64 + m + s;
    let mut next = 0usize;
    for (image, data) in j["images"].as_array().unwrap().iter().zip(&built.images) {
        assert_eq!(size(&image["size"]), data.len());
        assert_eq!(image["sha256"], hex::encode(Sha256::digest(data)));
        let mut at = 0usize;
        for chunk in image["chunks"].as_array().unwrap() {
            let get = |k: &str| size(&chunk[k]);
            assert_eq!(get("offset"), next, "contiguous");
            let range = payload_start + get("offset")..payload_start + get("offset") + get("zsize");
            let z = &f[range];
            assert_eq!(chunk["zsha256"], hex::encode(Sha256::digest(z)));
            let plain = zstd::bulk::decompress(z, get("size")).unwrap();
            assert_eq!(plain, data[at..at + get("size")]);
            assert_eq!(chunk["sha256"], hex::encode(Sha256::digest(&plain)));
            at += get("size");
            next += get("zsize");
        }
        assert_eq!(at, data.len());
    }
    assert_eq!(next, p);
}
