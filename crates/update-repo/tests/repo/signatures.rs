//! Signatures: a threshold of distinct keys of the right role, over the canonical `signed`
//! object; revoked keys stop counting as soon as the device trusts the root that revoked them.

use serde_json::Value;
use time::Duration;
use update_repo::publish::{Expiries, RoleKeySet};
use update_repo::{Refusal, Role, Targets, Timestamp};

use crate::fixture::{Fixture, Keys, assert_refused, public, snakeoil};

/// Every role has two keys and a threshold of 2.
fn two_of_two() -> Fixture {
    let keys = Keys {
        root: snakeoil("root"),
        targets: snakeoil("targets"),
        snapshot: snakeoil("snapshot"),
        timestamp: snakeoil("timestamp"),
    };
    let second = [snakeoil("root-2"), snakeoil("targets-2"), snakeoil("snapshot-2"), snakeoil("timestamp-2")];
    let set = RoleKeySet {
        root: vec![public(&keys.root), public(&second[0])],
        targets: vec![public(&keys.targets), public(&second[1])],
        snapshot: vec![public(&keys.snapshot), public(&second[2])],
        timestamp: vec![public(&keys.timestamp), public(&second[3])],
    };
    Fixture::build_with(keys, &set, 2, &second)
}

fn below_threshold(r: &Refusal, valid: usize, threshold: u64) -> bool {
    matches!(r, Refusal::Signatures { valid: v, threshold: t, .. } if *v == valid && *t == threshold)
}

#[test]
fn a_threshold_repository_verifies() {
    let f = two_of_two();
    f.fetch_bundle("a").unwrap();
}

#[test]
fn signatures_below_threshold_are_refused() {
    let f = two_of_two();
    let file = f.targets_file();
    f.edit::<Targets>(&file, &[&f.keys.targets], |_| {});
    f.relink();
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| below_threshold(r, 1, 2));
}

#[test]
fn signatures_naming_one_key_twice_are_refused() {
    let f = two_of_two();
    let file = f.targets_file();
    f.edit::<Targets>(&file, &[&f.keys.targets], |_| {});
    let mut envelope: Value = serde_json::from_slice(&f.read(&file)).unwrap();
    let sig = envelope["signatures"][0].clone();
    // TUF 1.0.31: a threshold of signatures from unique keys; a list naming one key id twice
    // is refused as a whole (as python-tuf does), whether the copies are equal or not.
    let mut other = sig.clone();
    other["sig"] = Value::String("00".repeat(64));
    let lists = [vec![sig.clone(), sig.clone()], vec![sig.clone(), other.clone()], vec![other, sig]];
    for (device, list) in ["a", "b", "c"].into_iter().zip(lists) {
        envelope["signatures"] = Value::Array(list);
        f.write(&file, &serde_json::to_vec(&envelope).unwrap());
        f.relink();
        // (A new device each time: the relinked timestamp keeps its version.)
        assert_refused(
            f.refresh(device),
            Role::Targets,
            &file,
            |r| matches!(r, Refusal::Malformed(m) if m.contains("two signatures")),
        );
    }
}

#[test]
fn the_tool_refuses_to_sign_below_threshold() {
    let mut f = two_of_two();
    let err = f.repo.sign(&[f.keys.targets.clone(), f.keys.snapshot.clone()], &Expiries::default(), f.now).unwrap_err();
    assert!(err.to_string().contains("the targets role needs 2 signature(s) and the given keys include 1"), "{err}");
}

#[test]
fn metadata_signed_by_another_roles_key_is_refused() {
    let f = Fixture::new();
    let file = f.targets_file();
    f.edit::<Targets>(&file, &[&f.keys.snapshot], |_| {});
    f.relink();
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| below_threshold(r, 0, 1));
}

#[test]
fn tampered_signed_metadata_is_refused() {
    let f = Fixture::new();
    let file = f.targets_file();
    let mut envelope: Value = serde_json::from_slice(&f.read(&file)).unwrap();
    let name = crate::fixture::BUNDLE;
    envelope["signed"]["targets"][name]["length"] = Value::from(1);
    f.write(&file, &serde_json::to_vec_pretty(&envelope).unwrap());
    f.relink();
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| below_threshold(r, 0, 1));
}

#[test]
fn metadata_signed_by_a_revoked_key_after_rotation_is_refused() {
    let mut f = Fixture::new();
    f.refresh("a").unwrap();
    let new_key = snakeoil("timestamp-new");
    let version = f
        .repo
        .rotate_key(
            Role::Timestamp,
            &public(&f.keys.timestamp),
            &public(&new_key),
            std::slice::from_ref(&f.keys.root),
            Duration::days(365),
            f.now,
        )
        .unwrap();
    assert_eq!(version, 2);
    // The timestamp on the server is still signed by the revoked key.
    assert_refused(f.refresh("a"), Role::Timestamp, "metadata/timestamp.json", |r| below_threshold(r, 0, 1));
    // An attacker who stole the revoked key signs a fresh timestamp: still refused.
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| t.version += 10);
    assert_refused(f.refresh("a"), Role::Timestamp, "metadata/timestamp.json", |r| below_threshold(r, 0, 1));
    // The operator re-signs with the new key; the device recovers, from its persisted state.
    f.repo.refresh_timestamp(std::slice::from_ref(&new_key), Duration::days(1), f.now).unwrap();
    let trusted = f.refresh("a").unwrap();
    assert_eq!(trusted.root().version(), 2);
    // Same for a rotated targets key.
    let new_targets = snakeoil("targets-new");
    f.repo
        .rotate_key(
            Role::Targets,
            &public(&f.keys.targets),
            &public(&new_targets),
            std::slice::from_ref(&f.keys.root),
            Duration::days(365),
            f.now,
        )
        .unwrap();
    let file = f.targets_file();
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| below_threshold(r, 0, 1));
    f.repo.sign(&[new_targets, f.keys.snapshot.clone(), new_key], &Expiries::default(), f.now).unwrap();
    f.fetch_bundle("a").unwrap();
}

#[test]
fn a_role_threshold_above_its_key_count_is_not_a_malformed_root() {
    use crate::handmade::{Handmade, TestKey};
    // TUF 1.0.31: only the signatures on the root count. The root is trusted; the snapshot,
    // which can never meet its threshold, is refused for its signatures.
    let mut h = Handmade::new(vec![TestKey::ed25519("threshold")], 0);
    h.roles.insert("timestamp", (vec![0], 1));
    h.roles.insert("snapshot", (vec![0], 2));
    h.publish();
    assert_refused(h.updater("a").refresh(h.now), Role::Snapshot, "snapshot.json", |r| below_threshold(r, 1, 2));
    assert!(h.state("a").join("root.json").is_file(), "the root was not trusted");
    h.roles.insert("snapshot", (vec![0], 1));
    h.roles.insert("targets", (vec![0], 5));
    h.publish();
    assert_refused(h.updater("b").refresh(h.now), Role::Targets, "targets.json", |r| below_threshold(r, 1, 5));
    // A root whose own threshold exceeds its keys cannot sign itself: refused for that.
    h.roles.insert("root", (vec![0], 2));
    h.publish();
    assert_refused(h.updater("c").refresh(h.now), Role::Root, "root", |r| below_threshold(r, 1, 2));
}
