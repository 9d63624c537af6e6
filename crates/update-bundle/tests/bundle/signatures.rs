//! Who must have signed: trusted keys, thresholds, integrity-only mode, and signature blocks
//! edited by hand (the only part of a bundle that can change without breaking a signature).

use std::io::Cursor;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use update_bundle::BundleReader;
use update_core::config::Verify;
use update_core::keyring::Keyring;

use crate::fixture::{Built, Spec, build, device_check, keyring, mixed, snakeoil};

fn signed_by(signers: &[(&str, &SigningKey)]) -> Built {
    build(&Spec { images: vec![("rootfs", mixed(1, 9000))], signers: signers.to_vec(), chunk_size: 4096 })
}

fn verify(bytes: &[u8], ring: &Keyring, threshold: u32, policy: Verify) -> Result<Vec<String>, String> {
    BundleReader::open(Cursor::new(bytes), "release.bundle")
        .and_then(|r| r.verify(ring, threshold, policy))
        .map(|v| v.trusted_signers().to_vec())
        .map_err(|e| e.to_string())
}

fn refused(bytes: &[u8], ring: &Keyring, threshold: u32, policy: Verify) -> String {
    verify(bytes, ring, threshold, policy).expect_err("accepted")
}

fn raw_key_id(key: &SigningKey) -> [u8; 32] {
    Sha256::digest(key.verifying_key().as_bytes()).into()
}

/// Signature entry `i` of the block: 32 bytes of key id, then 64 of signature.
fn entry(built: &Built, i: usize) -> std::ops::Range<usize> {
    let start = built.layout().signatures.start + i * 96;
    start..start + 96
}

#[test]
fn a_bundle_by_an_unknown_key_is_refused() {
    let (a, b) = (snakeoil(1), snakeoil(2));
    let built = signed_by(&[("vendor", &a)]);
    let e = refused(&built.bundle, &keyring(&[("other", &b)]), 1, Verify::Signatures);
    assert!(e.contains("release.bundle") && e.contains("0 valid signature(s)"), "{e}");
    // The name the bundle claims for its signer is unverified: only the key id is shown.
    let id = &update_bundle::signing::public_key(&a).key_id()[..16];
    assert!(e.contains(&format!("an untrusted key ({id})")) && !e.contains("vendor"), "{e}");
    let e = refused(&built.bundle, &Keyring::default(), 1, Verify::Signatures);
    assert!(e.contains("1 required"), "{e}");
}

#[test]
fn a_different_key_under_the_signers_name_is_not_trusted() {
    let built = signed_by(&[("vendor", &snakeoil(1))]);
    let e = refused(&built.bundle, &keyring(&[("vendor", &snakeoil(2))]), 1, Verify::Signatures);
    assert!(e.contains("0 valid signature(s)"), "{e}");
    assert!(e.contains("signed by [an untrusted key ("), "the bundle's claimed name was shown: {e}");
}

#[test]
fn a_trusted_signer_is_named_by_the_device_not_by_the_bundle() {
    let a = snakeoil(1);
    let built = signed_by(&[("claimed-name", &a)]);
    let e = refused(&built.bundle, &keyring(&[("device-name", &a)]), 2, Verify::Signatures);
    assert!(e.contains("trusted keys [device-name]") && e.contains("signed by [device-name ("), "{e}");
    assert!(!e.contains("claimed-name"), "{e}");
}

#[test]
fn a_threshold_above_the_signatures_is_refused() {
    let a = snakeoil(1);
    let built = signed_by(&[("vendor", &a)]);
    let e = refused(&built.bundle, &keyring(&[("vendor", &a)]), 2, Verify::Signatures);
    assert!(e.contains("1 valid signature(s) by trusted keys [vendor], 2 required"), "{e}");
}

#[test]
fn two_trusted_signers_meet_a_threshold_of_two() {
    let (a, b) = (snakeoil(1), snakeoil(2));
    let built = signed_by(&[("vendor", &a), ("release", &b)]);
    let ring = keyring(&[("vendor", &a), ("release", &b)]);
    assert_eq!(verify(&built.bundle, &ring, 2, Verify::Signatures).unwrap(), ["vendor", "release"]);
    assert!(device_check(&built.bundle, "b", &ring, 2, Verify::Signatures).accepted());
    // The device's names count, not the manifest's.
    let renamed = keyring(&[("ours-a", &a), ("ours-b", &b)]);
    assert_eq!(verify(&built.bundle, &renamed, 2, Verify::Signatures).unwrap(), ["ours-a", "ours-b"]);
    assert!(refused(&built.bundle, &ring, 3, Verify::Signatures).contains("2 valid signature(s)"));
}

#[test]
fn signatures_by_untrusted_keys_are_ignored() {
    let (a, b) = (snakeoil(1), snakeoil(2));
    let built = signed_by(&[("vendor", &a), ("partner", &b)]);
    let only_b = keyring(&[("partner", &b)]);
    assert_eq!(verify(&built.bundle, &only_b, 1, Verify::Signatures).unwrap(), ["partner"]);
    assert!(device_check(&built.bundle, "b", &only_b, 1, Verify::Signatures).accepted());
    assert!(refused(&built.bundle, &only_b, 2, Verify::Signatures).contains("1 valid signature(s)"));
    // A changed signature by a key the device does not trust is not checked: the bundle's
    // content is still fixed by the trusted signature.
    let mut bytes = built.bundle.clone();
    bytes[entry(&built, 0).end - 1] ^= 0x40;
    assert_eq!(verify(&bytes, &only_b, 1, Verify::Signatures).unwrap(), ["partner"]);
    // The same change is refused by a device that trusts that key.
    let e = refused(&bytes, &keyring(&[("vendor", &a), ("partner", &b)]), 1, Verify::Signatures);
    assert!(e.contains("the signature by trusted key 'vendor' is invalid"), "{e}");
}

#[test]
fn the_order_of_signature_entries_does_not_matter() {
    let (a, b) = (snakeoil(1), snakeoil(2));
    let built = signed_by(&[("vendor", &a), ("release", &b)]);
    let mut bytes = built.bundle.clone();
    let (e0, e1) = (entry(&built, 0), entry(&built, 1));
    let first = bytes[e0.clone()].to_vec();
    bytes.copy_within(e1.clone(), e0.start);
    bytes[e1].copy_from_slice(&first);
    let ring = keyring(&[("vendor", &a), ("release", &b)]);
    assert_eq!(verify(&bytes, &ring, 2, Verify::Signatures).unwrap(), ["release", "vendor"]);
}

#[test]
fn an_entry_by_a_key_the_manifest_does_not_list_is_refused() {
    let (a, b, c) = (snakeoil(1), snakeoil(2), snakeoil(3));
    // A bundle signed by A and B, whose second entry now claims to be by C, whom the device
    // trusts; A's valid signature alone would meet the threshold, but every entry must be
    // listed in the signed manifest.
    let built = signed_by(&[("vendor", &a), ("partner", &b)]);
    let mut bytes = built.bundle.clone();
    let e = entry(&built, 1);
    bytes[e.start..e.start + 32].copy_from_slice(&raw_key_id(&c));
    let ring = keyring(&[("vendor", &a), ("third", &c)]);
    let err = refused(&bytes, &ring, 1, Verify::Signatures);
    let c_id = hex::encode(raw_key_id(&c));
    assert!(err.contains(&format!("signature 1 is by key {c_id}, which the manifest does not list")), "{err}");
    // Refused in integrity-only mode too, and with an arbitrary key id.
    assert!(refused(&bytes, &Keyring::default(), 1, Verify::IntegrityOnly).contains("does not list"));
    bytes[e.start..e.start + 32].copy_from_slice(&[0xab; 32]);
    assert!(refused(&bytes, &ring, 1, Verify::Signatures).contains("does not list"));
}

#[test]
fn a_key_that_signed_twice_is_refused() {
    let (a, b) = (snakeoil(1), snakeoil(2));
    let built = signed_by(&[("vendor", &a), ("partner", &b)]);
    let mut bytes = built.bundle.clone();
    let (e0, e1) = (entry(&built, 0), entry(&built, 1));
    bytes.copy_within(e0, e1.start);
    let err = refused(&bytes, &keyring(&[("vendor", &a)]), 1, Verify::Signatures);
    assert!(err.contains(&format!("key {} signed twice", hex::encode(raw_key_id(&a)))), "{err}");
}

#[test]
fn an_unsigned_bundle_is_refused() {
    let built = signed_by(&[]);
    assert_eq!(built.layout().signatures.len(), 0);
    let e = refused(&built.bundle, &keyring(&[("vendor", &snakeoil(1))]), 1, Verify::Signatures);
    assert!(e.contains("the bundle is not signed"), "{e}");
}

#[test]
fn a_threshold_of_zero_is_not_a_way_to_skip_signatures() {
    // Regression: threshold 0 used to accept an unsigned bundle under `Verify::Signatures`.
    let built = signed_by(&[]);
    let e = refused(&built.bundle, &Keyring::default(), 0, Verify::Signatures);
    assert!(e.contains("signature threshold") && e.contains("at least 1"), "{e}");
    let signed = signed_by(&[("vendor", &snakeoil(1))]);
    assert!(verify(&signed.bundle, &keyring(&[("vendor", &snakeoil(1))]), 0, Verify::Signatures).is_err());
}

#[test]
fn integrity_only_needs_no_key_but_checks_every_chunk() {
    let a = snakeoil(1);
    let empty = Keyring::default();
    for built in [signed_by(&[("vendor", &a)]), signed_by(&[])] {
        assert_eq!(verify(&built.bundle, &empty, 1, Verify::IntegrityOnly).unwrap(), Vec::<String>::new());
        assert!(device_check(&built.bundle, "b", &empty, 1, Verify::IntegrityOnly).accepted());
        // Threshold 0 is fine here: nothing is required anyway.
        assert!(verify(&built.bundle, &empty, 0, Verify::IntegrityOnly).is_ok());
        let mut bytes = built.bundle.clone();
        let at = built.layout().payload.start + 10;
        bytes[at] ^= 1;
        let out = device_check(&bytes, "b", &empty, 1, Verify::IntegrityOnly);
        assert!(out.refused(), "a changed payload byte was accepted in integrity-only mode");
        assert!(out.stream_error().contains("compressed bytes do not match the signed hash"));
        assert!(out.received.is_empty());
    }
}

#[test]
fn integrity_only_still_refuses_a_broken_signature_by_a_trusted_key() {
    let a = snakeoil(1);
    let built = signed_by(&[("vendor", &a)]);
    let mut bytes = built.bundle.clone();
    bytes[entry(&built, 0).start + 40] ^= 1;
    let e = refused(&bytes, &keyring(&[("vendor", &a)]), 1, Verify::IntegrityOnly);
    assert!(e.contains("the signature by trusted key 'vendor' is invalid"), "{e}");
}
