//! Installing from a signed (TUF-format) repository: the device's keyring signs the first root;
//! a fresh repository installs; an expired timestamp (freeze) and a changed target are refused
//! before anything is written.

use time::{Duration, OffsetDateTime};
use update_core::config::SourceUrl;
use update_core::{ErrorKind, Paths};
use update_repo::TargetName;
use update_repo::publish::{Expiries, Repository, RoleKeySet};

use crate::common::Fixture;

fn publish_repo(fx: &Fixture, now: OffsetDateTime) -> std::path::PathBuf {
    let dir = fx.root().join("srv/repo");
    let _ = std::fs::remove_dir_all(&dir);
    let key = update_bundle::signing::public_key(&fx.key);
    let signers = [fx.key.clone()];
    let mut repo = Repository::init(&dir, &RoleKeySet::all(&[key]), 1, &signers, &Expiries::default(), now).unwrap();
    let bundle = fx.publish_version("2.0", "ok");
    repo.add_target(&bundle, &TargetName::new("release-2.0.0.bundle").unwrap(), None).unwrap();
    repo.sign(&signers, &Expiries::default(), now).unwrap();
    std::fs::remove_file(&bundle).unwrap();
    dir
}

fn use_repo(fx: &Fixture) {
    let paths = Paths::new(fx.root());
    let mut c = update_core::config::Config::load(&paths).unwrap();
    c.source = Some(SourceUrl::new("file:///srv/repo").unwrap());
    c.store(&paths).unwrap();
}

#[test]
fn installs_from_a_fresh_repository() {
    let fx = Fixture::new();
    publish_repo(&fx, OffsetDateTime::now_utc());
    use_repo(&fx);
    let r = fx.updater().install_now(true).unwrap();
    assert_eq!(r.installed.unwrap().version.to_string(), "2.0.0");
    assert!(fx.root().join("var/lib/update/tuf").read_dir().unwrap().next().is_some(), "trusted metadata kept");
}

#[test]
fn expired_timestamp_is_refused_and_nothing_is_written() {
    let fx = Fixture::new();
    // Signed three days ago with the default one-day timestamp: frozen metadata.
    publish_repo(&fx, OffsetDateTime::now_utc() - Duration::days(3));
    use_repo(&fx);
    let before = fx.fingerprint();
    let e = fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert!(e.to_string().contains("timestamp"), "{e}");
    assert_eq!(fx.fingerprint(), before);
}

#[test]
fn changed_target_is_refused_and_nothing_is_written() {
    let fx = Fixture::new();
    let dir = publish_repo(&fx, OffsetDateTime::now_utc());
    use_repo(&fx);
    let target = std::fs::read_dir(dir.join("targets")).unwrap().flatten().next().unwrap().path();
    let mut bytes = std::fs::read(&target).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&target, bytes).unwrap();
    let before = fx.fingerprint();
    let e = fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert!(e.to_string().contains("target release-2.0.0.bundle"), "{e}");
    assert_eq!(fx.fingerprint(), before);
}

#[test]
fn a_repository_not_signed_by_the_keyring_is_refused() {
    let fx = Fixture::new();
    let dir = fx.root().join("srv/repo");
    let stranger = crate::common::key(99);
    let key = update_bundle::signing::public_key(&stranger);
    let now = OffsetDateTime::now_utc();
    let mut repo =
        Repository::init(&dir, &RoleKeySet::all(&[key]), 1, std::slice::from_ref(&stranger), &Expiries::default(), now)
            .unwrap();
    let bundle = fx.publish_version("2.0", "ok");
    repo.add_target(&bundle, &TargetName::new("release-2.0.0.bundle").unwrap(), None).unwrap();
    repo.sign(&[stranger], &Expiries::default(), now).unwrap();
    use_repo(&fx);
    let before = fx.fingerprint();
    let e = fx.updater().install_now(true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verification, "{e}");
    assert_eq!(fx.fingerprint(), before);
}
