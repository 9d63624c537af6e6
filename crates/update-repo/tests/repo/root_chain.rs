//! The root chain: each `N+1.root.json` is signed by a threshold of the trusted root's keys and
//! of its own, with a version exactly one more; rotation revokes the old keys.

use time::Duration;
use update_repo::metadata::sign;
use update_repo::{Refusal, Role, Root, Timestamp};

use crate::fixture::{Fixture, assert_refused, public, snakeoil};

/// Root version 2 with the root key replaced by `new`, unsigned.
fn next_root(f: &Fixture, new: &ed25519_dalek::SigningKey) -> Root {
    let mut root = f.repo.root().clone();
    let old_id = update_repo::tuf_key_id(&public(&f.keys.root));
    let new_id = update_repo::tuf_key_id(&public(new));
    root.keys.remove(&old_id);
    root.keys.insert(new_id.clone(), update_repo::keys::tuf_key(&public(new)));
    root.roles.get_mut("root").unwrap().keyids = vec![new_id];
    root.version += 1;
    root
}

#[test]
fn root_key_rotation_is_followed() {
    let mut f = Fixture::new();
    f.refresh("a").unwrap();
    let new = snakeoil("root-new");
    let v = f
        .repo
        .rotate_key(
            Role::Root,
            &public(&f.keys.root),
            &public(&new),
            &[f.keys.root.clone(), new.clone()],
            Duration::days(365),
            f.now,
        )
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(f.read("metadata/root.json"), f.read("metadata/2.root.json"));
    // A device that trusted version 1 and a new device pinning version 1 both reach version 2.
    for device in ["a", "b"] {
        let trusted = f.refresh(device).unwrap();
        assert_eq!(trusted.root().version(), 2);
        assert_eq!(std::fs::read(f.state(device).join("root.json")).unwrap(), f.read("metadata/2.root.json"));
    }
    // Rotate again: the chain 1 → 2 → 3 is followed in one refresh.
    let newer = snakeoil("root-newer");
    f.repo.rotate_key(Role::Root, &public(&new), &public(&newer), &[new, newer], Duration::days(365), f.now).unwrap();
    assert_eq!(f.refresh("c").unwrap().root().version(), 3);
    f.fetch_bundle("c").unwrap();
}

#[test]
fn rotate_key_refuses_to_write_a_root_devices_would_refuse() {
    let mut f = Fixture::new();
    let new = snakeoil("root-new");
    // Only the new key signs: not cross-signed by the old root.
    let err = f
        .repo
        .rotate_key(
            Role::Root,
            &public(&f.keys.root),
            &public(&new),
            std::slice::from_ref(&new),
            Duration::days(365),
            f.now,
        )
        .unwrap_err();
    assert!(err.to_string().contains("would be refused by devices"), "{err}");
    assert!(!f.dir().join("metadata/2.root.json").exists());
    // Only the old key signs: the new root's own threshold is not met.
    let err = f
        .repo
        .rotate_key(
            Role::Root,
            &public(&f.keys.root),
            &public(&new),
            std::slice::from_ref(&f.keys.root),
            Duration::days(365),
            f.now,
        )
        .unwrap_err();
    assert!(err.to_string().contains("would be refused by devices"), "{err}");
    // An unknown old key.
    let err = f
        .repo
        .rotate_key(Role::Root, &public(&new), &public(&f.keys.root), &[new], Duration::days(365), f.now)
        .unwrap_err();
    assert!(err.to_string().contains("has no key"), "{err}");
}

#[test]
fn root_not_cross_signed_by_the_old_keys_is_refused() {
    let f = Fixture::new();
    let new = snakeoil("root-new");
    f.write("metadata/2.root.json", &sign(&next_root(&f, &new), &[&new]).unwrap());
    assert_refused(
        f.refresh("a"),
        Role::Root,
        "metadata/2.root.json",
        |r| matches!(r, Refusal::Signatures { role, valid: 0, threshold: 1 } if role == "trusted root's root"),
    );
}

#[test]
fn root_not_signed_by_its_own_keys_is_refused() {
    let f = Fixture::new();
    let new = snakeoil("root-new");
    f.write("metadata/2.root.json", &sign(&next_root(&f, &new), &[&f.keys.root]).unwrap());
    assert_refused(
        f.refresh("a"),
        Role::Root,
        "metadata/2.root.json",
        |r| matches!(r, Refusal::Signatures { role, valid: 0, threshold: 1 } if role == "new root's root"),
    );
}

#[test]
fn skipped_root_version_is_refused() {
    let f = Fixture::new();
    let new = snakeoil("root-new");
    let mut root = next_root(&f, &new);
    root.version = 3;
    f.write("metadata/2.root.json", &sign(&root, &[&f.keys.root, &new]).unwrap());
    assert_refused(f.refresh("a"), Role::Root, "metadata/2.root.json", |r| {
        *r == Refusal::RootChain { trusted: 1, found: 3 }
    });
}

#[test]
fn replayed_root_is_refused() {
    let f = Fixture::new();
    f.write("metadata/2.root.json", &f.read("metadata/1.root.json"));
    assert_refused(f.refresh("a"), Role::Root, "metadata/2.root.json", |r| {
        *r == Refusal::RootChain { trusted: 1, found: 1 }
    });
}

#[test]
fn a_revoked_root_key_cannot_sign_a_new_root() {
    let mut f = Fixture::new();
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
    // The old (revoked) root key signs a version 3 that hands everything back to it.
    let mut root = f.repo.root().clone();
    root.version = 3;
    let old_id = update_repo::tuf_key_id(&public(&f.keys.root));
    root.keys.insert(old_id.clone(), update_repo::keys::tuf_key(&public(&f.keys.root)));
    root.roles.get_mut("root").unwrap().keyids = vec![old_id];
    f.write("metadata/3.root.json", &sign(&root, &[&f.keys.root]).unwrap());
    assert_refused(
        f.refresh("a"),
        Role::Root,
        "metadata/3.root.json",
        |r| matches!(r, Refusal::Signatures { role, valid: 0, .. } if role == "trusted root's root"),
    );
}

#[test]
fn timestamp_key_rotation_recovers_from_a_fast_forward_attack() {
    let mut f = Fixture::new();
    // A stolen timestamp key signs version 1000; devices accept it (it is validly signed).
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| t.version = 1000);
    f.refresh("a").unwrap();
    // The operator rotates the timestamp key and publishes version 3 with the new key.
    let new = snakeoil("timestamp-new");
    f.repo
        .rotate_key(
            Role::Timestamp,
            &public(&f.keys.timestamp),
            &public(&new),
            std::slice::from_ref(&f.keys.root),
            Duration::days(365),
            f.now,
        )
        .unwrap();
    let mut signers = f.signers();
    signers.push(new);
    f.repo.sign(&signers, &update_repo::publish::Expiries::default(), f.now).unwrap();
    // TUF 1.0 §5.3.11: the rotation discards the trusted timestamp, so version 1001 is accepted.
    let trusted = f.refresh("a").unwrap();
    assert_eq!(trusted.timestamp().unwrap().version(), 1001);
}
