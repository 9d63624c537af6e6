//! Every byte of a bundle is covered: flipping any single bit anywhere (header, manifest,
//! signature block, every chunk), truncating at any length, or appending bytes makes the bundle
//! fail — at open, at verify, at the payload pre-pass, or while streaming — and the sink never
//! receives a byte that differs from the original image.

use std::io::Cursor;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use update_bundle::{BundleReader, CreateOptions};
use update_core::config::Verify;
use update_core::keyring::Keyring;
use update_core::{KeyName, SlotGroupName};

struct Fixture {
    bundle: Vec<u8>,
    images: Vec<Vec<u8>>,
    keyring: Keyring,
}

fn fixture(sizes: &[usize], chunk: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let mut opts = CreateOptions::new(update_core::parse_version("2.0").unwrap(), "board");
    let mut images = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..size)
            .map(|j| if (j / 512) % 2 == 0 { b"abcdefg"[j % 7] } else { (j * 31 + i).to_le_bytes()[0] })
            .collect();
        let path = dir.path().join(format!("img{i}"));
        std::fs::write(&path, &data).unwrap();
        opts.images.push((SlotGroupName::new(&format!("group{i}")).unwrap(), path));
        images.push(data);
    }
    opts.signers = vec![(KeyName::new("vendor").unwrap(), key.clone())];
    opts.chunk_size = chunk;
    let mut bundle = Vec::new();
    update_bundle::create(&opts, &mut tempfile::tempfile().unwrap(), &mut bundle).unwrap();
    let mut keyring = Keyring::default();
    keyring.add(KeyName::new("vendor").unwrap(), update_bundle::signing::public_key(&key), "").unwrap();
    Fixture { bundle, images, keyring }
}

/// Runs the device's full check (open, verify, pre-pass, stream) on `bytes`. Returns whether it
/// was accepted; panics if the sink ever received bytes that differ from the original images.
fn accepted(fx: &Fixture, bytes: &[u8]) -> bool {
    let pre = BundleReader::open(Cursor::new(bytes), "b")
        .and_then(|r| r.verify(&fx.keyring, 1, Verify::Signatures))
        .and_then(update_bundle::VerifiedBundle::check_payload);
    let mut received: Vec<Vec<u8>> = fx.images.iter().map(|i| vec![0u8; i.len()]).collect();
    let streamed = BundleReader::open(Cursor::new(bytes), "b")
        .and_then(|r| r.verify(&fx.keyring, 1, Verify::Signatures))
        .and_then(|mut v| {
            v.stream(|idx, off, data| {
                let off = usize::try_from(off).unwrap();
                assert_eq!(data, &fx.images[idx][off..off + data.len()], "the sink received changed bytes");
                received[idx][off..off + data.len()].copy_from_slice(data);
                Ok(())
            })
        });
    // The pre-pass and the stream must agree.
    assert_eq!(pre.is_ok(), streamed.is_ok(), "pre-pass {pre:?} vs stream {streamed:?}");
    if streamed.is_ok() {
        assert_eq!(received, fx.images);
    }
    streamed.is_ok()
}

#[test]
fn the_original_is_accepted() {
    let fx = fixture(&[10_000, 0, 4096], 1024);
    assert!(accepted(&fx, &fx.bundle));
}

#[test]
fn flipping_any_bit_of_any_byte_is_refused() {
    let fx = fixture(&[3000, 1500], 512);
    let mut tried = 0;
    for offset in 0..fx.bundle.len() {
        let mut bytes = fx.bundle.clone();
        bytes[offset] ^= 1 << (offset % 8);
        assert!(!accepted(&fx, &bytes), "a change at offset {offset} of {} was accepted", fx.bundle.len());
        tried += 1;
    }
    eprintln!("tamper sweep: {tried} offsets of a {}-byte bundle, every one refused", fx.bundle.len());
}

#[test]
fn truncation_at_every_length_and_trailing_bytes_are_refused() {
    let fx = fixture(&[2000, 700], 512);
    for len in 0..fx.bundle.len() {
        assert!(!accepted(&fx, &fx.bundle[..len]), "truncated to {len} bytes was accepted");
    }
    let mut long = fx.bundle.clone();
    long.push(0);
    assert!(!accepted(&fx, &long));
}

#[test]
fn signature_policy() {
    let fx = fixture(&[4096], 1024);
    // No trusted key.
    let r =
        BundleReader::open(Cursor::new(&fx.bundle), "b").unwrap().verify(&Keyring::default(), 1, Verify::Signatures);
    assert!(r.unwrap_err().to_string().contains("0 valid signature(s)"));
    // Threshold above the number of signers.
    let r = BundleReader::open(Cursor::new(&fx.bundle), "b").unwrap().verify(&fx.keyring, 2, Verify::Signatures);
    assert!(r.unwrap_err().to_string().contains("2 required"));
    // A different key under the trusted name: the signature does not count.
    let mut other = Keyring::default();
    other
        .add(KeyName::new("vendor").unwrap(), update_bundle::signing::public_key(&SigningKey::from_bytes(&[4; 32])), "")
        .unwrap();
    assert!(BundleReader::open(Cursor::new(&fx.bundle), "b").unwrap().verify(&other, 1, Verify::Signatures).is_err());
    // Integrity-only accepts without a trusted key, but still refuses a changed payload byte.
    assert!(
        BundleReader::open(Cursor::new(&fx.bundle), "b")
            .unwrap()
            .verify(&Keyring::default(), 1, Verify::IntegrityOnly)
            .is_ok()
    );
    let mut bytes = fx.bundle.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mut v = BundleReader::open(Cursor::new(&bytes), "b")
        .unwrap()
        .verify(&Keyring::default(), 1, Verify::IntegrityOnly)
        .unwrap();
    assert!(v.stream(|_, _, _| Ok(())).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Random byte values at random offsets of a larger bundle (64 KiB chunks).
    #[test]
    fn random_changes_are_refused(pos in any::<prop::sample::Index>(), value in 1u8..=255) {
        let fx = FIXTURE.with(|f| f.clone());
        let mut bytes = fx.bundle.clone();
        let at = pos.index(bytes.len());
        bytes[at] ^= value;
        prop_assert!(!accepted(&fx, &bytes), "change at {} accepted", at);
    }
}

thread_local! {
    static FIXTURE: std::rc::Rc<Fixture> = std::rc::Rc::new(fixture(&[256 << 10, 100 << 10], 64 << 10));
}
