//! Rollback: metadata older than what the device already trusted is refused, across restarts
//! (the floors come from the state directory).

use update_repo::metadata::sign;
use update_repo::{MetaFile, Refusal, Role, Snapshot, Timestamp};

use crate::fixture::{Fixture, assert_refused};

#[test]
fn replayed_older_timestamp_is_refused() {
    let mut f = Fixture::new();
    let old = f.read("metadata/timestamp.json"); // version 2
    f.sign(); // version 3
    f.refresh("a").unwrap();
    f.write("metadata/timestamp.json", &old);
    assert_refused(f.refresh("a"), Role::Timestamp, "metadata/timestamp.json", |r| {
        *r == Refusal::Rollback { trusted: 3, new: 2 }
    });
    // A device that never saw version 3 accepts the old, still valid timestamp.
    f.refresh("b").unwrap();
}

#[test]
fn replayed_older_snapshot_is_refused() {
    let mut f = Fixture::new();
    let old_file = f.snapshot_file(); // 2.snapshot.json
    let old = f.read(&old_file);
    f.sign();
    f.refresh("a").unwrap(); // trusts snapshot 3
    // An attacker with the timestamp key points a fresh timestamp at the old snapshot.
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| {
        t.version += 1;
        t.meta.insert("snapshot.json".into(), MetaFile::for_bytes(2, &old));
    });
    assert_refused(f.refresh("a"), Role::Timestamp, "metadata/timestamp.json", |r| {
        *r == Refusal::MetaRollback { file: "snapshot.json".into(), trusted: 3, new: 2 }
    });
    // Even without the trusted timestamp, the trusted snapshot is the floor.
    std::fs::remove_file(f.state("a").join("timestamp.json")).unwrap();
    assert_refused(f.refresh("a"), Role::Snapshot, "metadata/2.snapshot.json", |r| {
        *r == Refusal::Rollback { trusted: 3, new: 2 }
    });
}

#[test]
fn replayed_older_targets_is_refused() {
    let mut f = Fixture::new();
    let old = f.read(&f.targets_file()); // 2.targets.json
    f.sign();
    f.refresh("a").unwrap(); // trusts targets 3
    // An attacker with the snapshot and timestamp keys lists the old targets in a new snapshot.
    let mut snapshot = f.parse::<Snapshot>(&f.snapshot_file()).signed;
    snapshot.version = 4;
    snapshot.meta.insert("targets.json".into(), MetaFile::for_bytes(2, &old));
    let bytes = sign(&snapshot, &[&f.keys.snapshot]).unwrap();
    f.write("metadata/4.snapshot.json", &bytes);
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| {
        t.version += 1;
        t.meta.insert("snapshot.json".into(), MetaFile::for_bytes(4, &bytes));
    });
    assert_refused(f.refresh("a"), Role::Snapshot, "metadata/4.snapshot.json", |r| {
        *r == Refusal::MetaRollback { file: "targets.json".into(), trusted: 3, new: 2 }
    });
}

#[test]
fn a_snapshot_dropping_targets_is_refused() {
    let f = Fixture::new();
    f.refresh("a").unwrap();
    // An attacker with the snapshot and timestamp keys publishes a newer snapshot that no
    // longer lists targets.json (or anything else the trusted snapshot listed).
    for extra in [None, Some("other.json")] {
        let mut snapshot = f.parse::<Snapshot>(&f.snapshot_file()).signed;
        snapshot.version += 1;
        snapshot.meta.clear();
        if let Some(name) = extra {
            snapshot.meta.insert(name.into(), MetaFile::for_bytes(1, b"{}"));
        }
        let file = format!("metadata/{}.snapshot.json", snapshot.version);
        let bytes = sign(&snapshot, &[&f.keys.snapshot]).unwrap();
        f.write(&file, &bytes);
        f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| {
            t.version += 1;
            t.meta.insert("snapshot.json".into(), MetaFile::for_bytes(snapshot.version, &bytes));
        });
        assert_refused(
            f.refresh("a"),
            Role::Snapshot,
            &file,
            |r| matches!(r, Refusal::Missing(m) if m.contains("targets.json")),
        );
    }
}

#[test]
fn a_timestamp_with_the_trusted_version_is_discarded_never_saved() {
    // TUF 1.0.31 §5.4.3.1: same version as the trusted timestamp: discard the new file.
    let mut f = Fixture::new();
    f.refresh("a").unwrap();
    let saved = std::fs::read(f.state("a").join("timestamp.json")).unwrap();
    // Same version, other content (a later expiry), correctly signed.
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| t.expires += time::Duration::days(1));
    f.refresh("a").unwrap();
    assert_eq!(std::fs::read(f.state("a").join("timestamp.json")).unwrap(), saved, "the discarded timestamp was saved");
    // Same version, listing a newer snapshot: the device stays on the snapshot it trusts.
    f.sign(); // timestamp 3, snapshot 3
    f.edit::<Timestamp>("metadata/timestamp.json", &[&f.keys.timestamp], |t| t.version = 2);
    let trusted = f.refresh("a").unwrap();
    assert_eq!(trusted.timestamp().unwrap().version(), 2);
    assert_eq!(trusted.snapshot().unwrap().version(), 2);
    assert_eq!(std::fs::read(f.state("a").join("timestamp.json")).unwrap(), saved);
}
