//! Freeze: expired metadata is refused at the reference time the caller passes in.

use time::Duration;
use update_repo::{Refusal, Role, Snapshot};

use crate::fixture::{Fixture, assert_refused};

#[test]
fn expired_timestamp_is_refused() {
    let f = Fixture::new();
    let later = f.now + Duration::days(2);
    assert_refused(f.updater("a").refresh(later), Role::Timestamp, "metadata/timestamp.json", |r| {
        matches!(r, Refusal::Expired { .. })
    });
    // The same repository with a timestamp re-signed from cron is fine.
    f.repo.refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::days(1), later).unwrap();
    f.updater("a").refresh(later).unwrap();
}

#[test]
fn expired_timestamp_on_the_server_is_refused() {
    let f = Fixture::new();
    // Signed already expired (what a repository whose cron stopped serves).
    f.repo
        .refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::days(-1) + Duration::seconds(1), f.now)
        .unwrap();
    let err = f.refresh("a").unwrap_err();
    assert!(err.to_string().starts_with("timestamp metadata metadata/timestamp.json refused: expired at"), "{err}");
    assert!(err.to_string().contains("freeze attack"), "{err}");
}

#[test]
fn expired_snapshot_is_refused() {
    let f = Fixture::new();
    let later = f.now + Duration::days(100);
    f.repo.refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::days(1), later).unwrap();
    let file = f.snapshot_file();
    assert_refused(f.updater("a").refresh(later), Role::Snapshot, &file, |r| matches!(r, Refusal::Expired { .. }));
}

#[test]
fn expired_targets_is_refused() {
    let f = Fixture::new();
    let later = f.now + Duration::days(100);
    f.edit::<Snapshot>(&f.snapshot_file(), &[&f.keys.snapshot], |s| s.expires = later + Duration::days(30));
    f.relink_timestamp();
    f.repo.refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::days(1), later).unwrap();
    let file = f.targets_file();
    assert_refused(f.updater("a").refresh(later), Role::Targets, &file, |r| matches!(r, Refusal::Expired { .. }));
}

#[test]
fn expired_root_is_refused() {
    let f = Fixture::new();
    let later = f.now + Duration::days(400);
    f.repo.refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::days(1), later).unwrap();
    assert_refused(f.updater("a").refresh(later), Role::Root, "root.json", |r| matches!(r, Refusal::Expired { .. }));
}
