//! Mix-and-match: a snapshot or targets file other than the one the referring metadata lists
//! is refused (by version when no hash is listed, by hash and length otherwise).

use update_repo::{MetaFile, Refusal, Role, Snapshot, Timestamp};

use crate::fixture::{Fixture, assert_refused};

#[test]
fn snapshot_version_differs_from_timestamp_is_refused() {
    let mut f = Fixture::new();
    f.sign(); // snapshot 3
    // The timestamp lists snapshot 2 by version only; the server hands out snapshot 3 under that name.
    let current = f.read("metadata/3.snapshot.json");
    f.write("metadata/2.snapshot.json", &current);
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| {
        t.meta.insert(
            "snapshot.json".into(),
            MetaFile { version: 2, length: None, hashes: None, extra: Default::default() },
        );
    });
    assert_refused(f.refresh("a"), Role::Snapshot, "metadata/2.snapshot.json", |r| {
        *r == Refusal::VersionMismatch { listed_in: "timestamp.json".into(), expected: 2, found: 3 }
    });
}

#[test]
fn targets_version_differs_from_snapshot_is_refused() {
    let mut f = Fixture::new();
    f.sign(); // targets 3
    let current = f.read("metadata/3.targets.json");
    f.write("metadata/2.targets.json", &current);
    f.edit::<Snapshot>(&f.snapshot_file(), &[&f.keys.snapshot], |s| {
        s.meta.insert(
            "targets.json".into(),
            MetaFile { version: 2, length: None, hashes: None, extra: Default::default() },
        );
    });
    f.relink_timestamp();
    assert_refused(f.refresh("a"), Role::Targets, "metadata/2.targets.json", |r| {
        *r == Refusal::VersionMismatch { listed_in: "snapshot.json".into(), expected: 3 - 1, found: 3 }
    });
}

#[test]
fn snapshot_other_than_the_one_the_timestamp_signed_is_refused() {
    let f = Fixture::new();
    // An attacker with the snapshot key (but not the timestamp key) re-signs the snapshot.
    let file = f.snapshot_file();
    f.edit::<Snapshot>(&file, &[&f.keys.snapshot], |s| s.expires += time::Duration::days(1));
    assert_refused(f.refresh("a"), Role::Snapshot, &file, |r| {
        matches!(r, Refusal::Hash { .. } | Refusal::Length { .. })
    });
}

#[test]
fn targets_other_than_the_one_the_snapshot_signed_is_refused() {
    let f = Fixture::new();
    let file = f.targets_file();
    f.edit::<update_repo::Targets>(&file, &[&f.keys.targets], |t| {
        t.targets.clear();
    });
    assert_refused(f.refresh("a"), Role::Targets, &file, |r| {
        matches!(r, Refusal::Hash { .. } | Refusal::Length { .. })
    });
}
