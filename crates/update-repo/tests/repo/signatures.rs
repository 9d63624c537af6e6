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
fn duplicate_signatures_by_one_key_count_once() {
    let f = two_of_two();
    let file = f.targets_file();
    f.edit::<Targets>(&file, &[&f.keys.targets], |_| {});
    let mut envelope: Value = serde_json::from_slice(&f.read(&file)).unwrap();
    let sig = envelope["signatures"][0].clone();
    envelope["signatures"] = Value::Array(vec![sig.clone(), sig]);
    f.write(&file, &serde_json::to_vec(&envelope).unwrap());
    f.relink();
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| below_threshold(r, 1, 2));
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
