//! Bundles built for the tests from throwaway `snakeoil` keys, and the device's full check.

use std::io::Cursor;
use std::ops::Range;

use ed25519_dalek::SigningKey;
use update_bundle::{BundleReader, CreateOptions, HEADER_LEN, Header, Manifest, VerifiedBundle};
use update_core::config::Verify;
use update_core::keyring::Keyring;
use update_core::{KeyName, Result, SlotGroupName};

/// A throwaway key; the same `n` always gives the same key.
pub fn snakeoil(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A keyring trusting these keys under these names.
pub fn keyring(keys: &[(&str, &SigningKey)]) -> Keyring {
    let mut ring = Keyring::default();
    for (name, key) in keys {
        ring.add(KeyName::new(name).unwrap(), update_bundle::signing::public_key(key), "").unwrap();
    }
    ring
}

/// Pseudo-random bytes (xorshift64*): incompressible, reproducible.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text-like bytes that compress well.
pub fn compressible(len: usize) -> Vec<u8> {
    b"libupdate writes the other slot, then switches. ".iter().copied().cycle().take(len).collect()
}

/// Alternating 512-byte runs of random and compressible bytes.
pub fn mixed(seed: u64, len: usize) -> Vec<u8> {
    let random = random_bytes(seed, len);
    let text = compressible(len);
    (0..len).map(|i| if (i / 512) % 2 == 0 { random[i] } else { text[i] }).collect()
}

/// What goes into a test bundle.
pub struct Spec<'a> {
    pub images: Vec<(&'a str, Vec<u8>)>,
    pub signers: Vec<(&'a str, &'a SigningKey)>,
    pub chunk_size: u64,
}

/// A bundle and what it was made from.
pub struct Built {
    pub bundle: Vec<u8>,
    pub images: Vec<Vec<u8>>,
    pub manifest: Manifest,
}

impl Built {
    /// Where the header, manifest, signature block and payload sit in the file (from the header).
    pub fn layout(&self) -> Layout {
        Layout::of(&self.bundle)
    }
}

/// Makes a bundle with `update_bundle::create` (fixed creation time, so the bytes are reproducible).
pub fn try_build(spec: &Spec<'_>) -> Result<Built> {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = CreateOptions::new(update_core::parse_version("2.0.0").unwrap(), "snakeoil-board");
    for (i, (group, data)) in spec.images.iter().enumerate() {
        let path = dir.path().join(format!("{i}-{group}.img"));
        std::fs::write(&path, data).unwrap();
        opts.images.push((SlotGroupName::new(group).unwrap(), path));
    }
    opts.signers = spec.signers.iter().map(|(n, k)| (KeyName::new(n).unwrap(), (*k).clone())).collect();
    opts.chunk_size = spec.chunk_size;
    opts.created = "2026-01-01T00:00:00Z".into();
    let mut bundle = Vec::new();
    let manifest = update_bundle::create(&opts, &mut tempfile::tempfile().unwrap(), &mut bundle)?;
    Ok(Built { bundle, images: spec.images.iter().map(|(_, d)| d.clone()).collect(), manifest })
}

pub fn build(spec: &Spec<'_>) -> Built {
    try_build(spec).unwrap()
}

/// A small bundle with two images signed by `snakeoil(1)` named `vendor`, and its keyring.
pub fn small(images: &[(&str, usize)], chunk_size: u64) -> (Built, Keyring) {
    let key = snakeoil(1);
    let images = images.iter().enumerate().map(|(i, &(g, len))| (g, mixed(i as u64 + 1, len))).collect();
    let built = build(&Spec { images, signers: vec![("vendor", &key)], chunk_size });
    (built, keyring(&[("vendor", &key)]))
}

/// The four regions of a bundle file, read from its header the way the format document says.
#[derive(Debug, Clone)]
pub struct Layout {
    pub header: Range<usize>,
    pub manifest: Range<usize>,
    pub signatures: Range<usize>,
    pub payload: Range<usize>,
}

impl Layout {
    pub fn of(bundle: &[u8]) -> Self {
        let h = Header::decode(bundle[..HEADER_LEN].try_into().unwrap(), "layout").unwrap();
        let m = HEADER_LEN + usize::try_from(h.manifest_len).unwrap();
        let s = m + usize::try_from(h.signatures_len).unwrap();
        let p = s + usize::try_from(h.payload_len).unwrap();
        Layout { header: 0..HEADER_LEN, manifest: HEADER_LEN..m, signatures: m..s, payload: s..p }
    }
}

/// One piece handed to the sink: image index, offset in the image, bytes.
pub type Piece = (usize, u64, Vec<u8>);

/// What the device's full check did with some bytes.
pub struct Outcome {
    /// open → verify → `check_payload` (the native driver's pre-pass), on its own reader.
    pub pre: Result<()>,
    /// open → verify → stream, on a second reader.
    pub stream: Result<()>,
    /// Everything the stream's sink received, in order.
    pub received: Vec<Piece>,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        self.pre.is_ok() && self.stream.is_ok()
    }

    /// Both the pre-pass and the stream refused.
    pub fn refused(&self) -> bool {
        self.pre.is_err() && self.stream.is_err()
    }

    pub fn stream_error(&self) -> String {
        self.stream.as_ref().expect_err("the stream was accepted").to_string()
    }

    pub fn pre_error(&self) -> String {
        self.pre.as_ref().expect_err("the pre-pass was accepted").to_string()
    }
}

/// Runs what a device runs on `bytes` (named `name`), recording what the sink got.
pub fn device_check(bytes: &[u8], name: &str, ring: &Keyring, threshold: u32, policy: Verify) -> Outcome {
    let pre = BundleReader::open(Cursor::new(bytes), name)
        .and_then(|r| r.verify(ring, threshold, policy))
        .and_then(VerifiedBundle::check_payload);
    let mut received = Vec::new();
    let stream = BundleReader::open(Cursor::new(bytes), name).and_then(|r| r.verify(ring, threshold, policy)).and_then(
        |mut v| {
            v.stream(|idx, off, data| {
                received.push((idx, off, data.to_vec()));
                Ok(())
            })
        },
    );
    Outcome { pre, stream, received }
}

/// The pieces a correct stream of `built` delivers, in order: one per chunk.
pub fn expected_pieces(built: &Built) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (idx, image) in built.manifest.images.iter().enumerate() {
        let mut off = 0u64;
        for chunk in &image.chunks {
            let range = usize::try_from(off).unwrap()..usize::try_from(off + chunk.size).unwrap();
            pieces.push((idx, off, built.images[idx][range].to_vec()));
            off += chunk.size;
        }
    }
    pieces
}

/// Reassembles each image from the pieces by offset; panics on gaps or overlaps.
pub fn reassemble(pieces: &[Piece], images: usize) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new(); images];
    for (idx, off, data) in pieces {
        assert_eq!(*off, out[*idx].len() as u64, "image {idx}: a piece at {off} does not follow the previous one");
        out[*idx].extend_from_slice(data);
    }
    out
}

/// The chunk (image index, chunk index) whose compressed bytes hold payload byte `at`.
pub fn chunk_at(manifest: &Manifest, at: u64) -> (usize, usize) {
    for (i, image) in manifest.images.iter().enumerate() {
        for (c, chunk) in image.chunks.iter().enumerate() {
            if (chunk.offset..chunk.offset + chunk.zsize).contains(&at) {
                return (i, c);
            }
        }
    }
    panic!("payload offset {at} is in no chunk")
}
