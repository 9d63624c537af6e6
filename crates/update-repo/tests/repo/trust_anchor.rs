//! The trust anchor: a pinned root, or the first root a threshold of the keyring signed.

use time::Duration;
use update_core::KeyName;
use update_core::keyring::Keyring;
use update_repo::{DirTransport, Refusal, Role, TrustAnchor, TufClient};

use crate::fixture::{Fixture, assert_refused, public, snakeoil};

fn keyring(keys: &[&ed25519_dalek::SigningKey]) -> Keyring {
    let mut ring = Keyring::default();
    for (i, k) in keys.iter().enumerate() {
        ring.add(KeyName::new(&format!("vendor-{i}")).unwrap(), public(k), "").unwrap();
    }
    ring
}

fn keyring_updater(f: &Fixture, device: &str, ring: Keyring, threshold: u64) -> TufClient<DirTransport> {
    TufClient::new(DirTransport::new(f.dir()), f.state(device), TrustAnchor::Keyring { keyring: ring, threshold })
}

#[test]
fn keyring_anchor_trusts_a_root_signed_by_the_keyring() {
    let f = Fixture::new();
    let trusted = keyring_updater(&f, "a", keyring(&[&f.keys.root]), 1).refresh(f.now).unwrap();
    assert_eq!(trusted.root().version(), 1);
    // The keyring's key id is not the TUF key id: keys are matched by their bytes.
    assert_ne!(public(&f.keys.root).key_id(), update_repo::tuf_key_id(&public(&f.keys.root)).as_str());
}

#[test]
fn keyring_anchor_refuses_a_root_the_keyring_did_not_sign() {
    let f = Fixture::new();
    let stranger = snakeoil("stranger");
    let result = keyring_updater(&f, "a", keyring(&[&stranger, &f.keys.targets]), 1).refresh(f.now);
    assert_refused(result, Role::Root, "metadata/1.root.json", |r| *r == Refusal::Untrusted { valid: 0, threshold: 1 });
    assert!(!f.state("a").join("root.json").exists(), "an untrusted root was persisted");
    // A threshold the keyring cannot meet.
    let result = keyring_updater(&f, "a", keyring(&[&f.keys.root, &stranger]), 2).refresh(f.now);
    assert_refused(result, Role::Root, "metadata/1.root.json", |r| *r == Refusal::Untrusted { valid: 1, threshold: 2 });
}

#[test]
fn keyring_anchor_starts_at_the_first_root_the_keyring_signed() {
    let mut f = Fixture::new();
    let new = snakeoil("root-2027");
    f.repo
        .rotate_key(
            Role::Root,
            &public(&f.keys.root),
            &public(&new),
            &[f.keys.root.clone(), new.clone()],
            Duration::days(365),
            f.now,
        )
        .unwrap();
    // A device made after the rotation knows only the new key.
    let trusted = keyring_updater(&f, "a", keyring(&[&new]), 1).refresh(f.now).unwrap();
    assert_eq!(trusted.root().version(), 2);
    f.updater("b").refresh(f.now).unwrap();
}

#[test]
fn the_persisted_root_is_trusted_before_the_anchor() {
    let mut f = Fixture::new();
    f.refresh("a").unwrap();
    let new = snakeoil("root-new");
    f.repo
        .rotate_key(
            Role::Root,
            &public(&f.keys.root),
            &public(&new),
            &[f.keys.root.clone(), new.clone()],
            Duration::days(365),
            f.now,
        )
        .unwrap();
    f.refresh("a").unwrap();
    // The device's keyring no longer matters once a root is trusted.
    let trusted = keyring_updater(&f, "a", keyring(&[&snakeoil("stranger")]), 1).refresh(f.now).unwrap();
    assert_eq!(trusted.root().version(), 2);
    // A corrupt state root falls back to the anchor.
    std::fs::write(f.state("a").join("root.json"), b"{garbage").unwrap();
    assert_eq!(f.refresh("a").unwrap().root().version(), 2);
}

#[test]
fn a_pinned_root_that_is_not_self_signed_is_refused() {
    let f = Fixture::new();
    let mut root: serde_json::Value = serde_json::from_slice(&f.pinned_root()).unwrap();
    root["signatures"] = serde_json::json!([]);
    let updater = TufClient::new(
        DirTransport::new(f.dir()),
        f.state("a"),
        TrustAnchor::PinnedRoot(serde_json::to_vec(&root).unwrap()),
    );
    assert_refused(updater.refresh(f.now), Role::Root, "pinned root.json", |r| {
        matches!(r, Refusal::Signatures { valid: 0, .. })
    });
}
