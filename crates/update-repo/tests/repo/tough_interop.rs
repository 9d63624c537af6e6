//! Conformance with `tough`, the reference Rust TUF implementation, in both directions:
//! repositories we publish are loaded by tough's client and their targets read; repositories
//! written by tough's `RepositoryEditor` are accepted by our verifier; attack repositories are
//! refused by both.
//!
//! tough reads the system clock, so these fixtures expire relative to the real time.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU64;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use time::Duration;
use tough::editor::RepositoryEditor;
use tough::editor::signed::{PathExists, SignedRole};
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::{KeyHolder, RoleKeys, RoleType};
use tough::{FilesystemTransport, IntoVec, RepositoryLoader};
use update_repo::metadata::sign;
use update_repo::{
    DirTransport, MetaFile, Role, Root, Snapshot, TargetName, Targets, Timestamp, TrustAnchor, TufClient, tuf_key_id,
};
use url::Url;

use crate::fixture::{BUNDLE, BUNDLE_DATA, Fixture, public, snakeoil};

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// Loads a repository with tough (pinning `root`, keeping state in `datastore`) and reads
/// `target`; any refusal becomes the error text.
fn tough_read(dir: &Path, root: &[u8], datastore: &Path, target: &str) -> Result<Vec<u8>, String> {
    std::fs::create_dir_all(datastore).unwrap();
    block_on(async {
        let repo = RepositoryLoader::new(
            &root,
            Url::from_directory_path(dir.join("metadata")).unwrap(),
            Url::from_directory_path(dir.join("targets")).unwrap(),
        )
        .transport(FilesystemTransport)
        .datastore(datastore)
        .load()
        .await
        .map_err(|e| format!("load: {e}"))?;
        let name = tough::TargetName::new(target).map_err(|e| e.to_string())?;
        let stream = repo.read_target(&name).await.map_err(|e| format!("read: {e}"))?;
        let stream = stream.ok_or_else(|| format!("tough: no target {target}"))?;
        stream.into_vec().await.map_err(|e| format!("read: {e}"))
    })
}

fn tough_read_fixture(f: &Fixture, device: &str) -> Result<Vec<u8>, String> {
    tough_read(&f.dir(), &f.pinned_root(), &f.tmp_path(&format!("tough-{device}")), BUNDLE)
}

#[test]
fn tough_loads_our_repository_and_reads_its_targets() {
    let mut f = Fixture::new();
    f.add("bundle-1.1.0.upd", b"release 1.1.0");
    f.sign();
    assert_eq!(tough_read_fixture(&f, "a").unwrap(), BUNDLE_DATA);
    assert_eq!(
        tough_read(&f.dir(), &f.pinned_root(), &f.tmp_path("tough-a"), "bundle-1.1.0.upd").unwrap(),
        b"release 1.1.0"
    );
    // tough computes the same TUF key ids from our key objects (it refuses a root otherwise).
    let root: tough::schema::Signed<tough::schema::Root> = serde_json::from_slice(&f.pinned_root()).unwrap();
    let ours = tuf_key_id(&public(&f.keys.root));
    assert!(root.signed.keys.keys().any(|id| hex::encode(id) == ours.as_str()));
}

#[test]
fn tough_follows_our_key_rotations_and_timestamp_refreshes() {
    let mut f = Fixture::new();
    tough_read_fixture(&f, "a").unwrap();
    let (root2, root3, ts2) = (snakeoil("root-2"), snakeoil("root-3"), snakeoil("timestamp-2"));
    let year = Duration::days(365);
    f.repo
        .rotate_key(
            Role::Root,
            &public(&f.keys.root),
            &public(&root2),
            &[f.keys.root.clone(), root2.clone()],
            year,
            f.now,
        )
        .unwrap();
    f.repo.rotate_key(Role::Root, &public(&root2), &public(&root3), &[root2, root3.clone()], year, f.now).unwrap();
    f.repo
        .rotate_key(
            Role::Timestamp,
            &public(&f.keys.timestamp),
            &public(&ts2),
            std::slice::from_ref(&root3),
            year,
            f.now,
        )
        .unwrap();
    f.repo.refresh_timestamp(std::slice::from_ref(&ts2), Duration::hours(6), f.now).unwrap();
    // A device that trusted root 1 and a fresh one pinning root 1.
    assert_eq!(tough_read_fixture(&f, "a").unwrap(), BUNDLE_DATA);
    assert_eq!(tough_read_fixture(&f, "b").unwrap(), BUNDLE_DATA);
    assert_eq!(f.fetch_bundle("a").unwrap(), BUNDLE_DATA);
}

/// Writes a repository with tough alone: root built from tough's schema and signed by
/// `SignedRole`, everything else by `RepositoryEditor`. `timestamp_valid_hours` may be negative.
fn tough_repository(
    dir: &Path,
    key: &SigningKey,
    consistent: bool,
    targets: &[(&str, &[u8])],
    timestamp_valid_hours: i64,
) {
    let metadata = dir.join("metadata");
    let inputs = dir.join("in");
    for d in [&metadata, &inputs, &dir.join("targets")] {
        std::fs::create_dir_all(d).unwrap();
    }
    // tough reads ed25519 keys as PKCS#8 DER.
    let key_path = dir.join("snakeoil-tough.der");
    std::fs::write(&key_path, key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
    let mut paths = Vec::new();
    for (name, data) in targets {
        let p = inputs.join(name);
        std::fs::write(&p, data).unwrap();
        paths.push(p);
    }
    block_on(async {
        let keys: Vec<Box<dyn KeySource>> = vec![Box::new(LocalKeySource { path: key_path })];
        let tuf_key = keys[0].as_sign().await.unwrap().tuf_key();
        let id = tuf_key.key_id().unwrap();
        let one = NonZeroU64::new(1).unwrap();
        let now = jiff::Timestamp::now();
        let hours = |h: i64| jiff::SignedDuration::from_hours(h);
        let roles = [RoleType::Root, RoleType::Snapshot, RoleType::Targets, RoleType::Timestamp]
            .map(|r| (r, RoleKeys { keyids: vec![id.clone()], threshold: one, _extra: HashMap::new() }));
        let root = tough::schema::Root {
            spec_version: "1.0.0".into(),
            consistent_snapshot: consistent,
            version: one,
            expires: now + hours(24 * 365),
            keys: HashMap::from([(id.clone(), tuf_key)]),
            roles: HashMap::from(roles),
            _extra: HashMap::new(),
        };
        let signed_root =
            SignedRole::new(root.clone(), &KeyHolder::Root(root), &keys, &SystemRandom::new()).await.unwrap();
        signed_root.write(&metadata, consistent).await.unwrap();

        let mut editor = RepositoryEditor::new(metadata.join("1.root.json")).await.unwrap();
        editor
            .targets_version(one)
            .unwrap()
            .targets_expires(now + hours(24 * 30))
            .unwrap()
            .snapshot_version(one)
            .snapshot_expires(now + hours(24 * 30))
            .timestamp_version(one)
            .timestamp_expires(now + hours(timestamp_valid_hours));
        editor.add_target_paths(paths).await.unwrap();
        let signed = editor.sign(&keys).await.unwrap();
        signed.write(&metadata).await.unwrap();
        signed.copy_targets(&inputs, dir.join("targets"), PathExists::Fail).await.unwrap();
    });
}

fn our_read(dir: &Path, state: &Path, target: &str) -> update_repo::Result<Vec<u8>> {
    let root = std::fs::read(dir.join("metadata/1.root.json")).unwrap();
    let updater = TufClient::new(DirTransport::new(dir), state, TrustAnchor::PinnedRoot(root));
    let trusted = updater.refresh(time::OffsetDateTime::now_utc())?;
    updater.fetch_target(&trusted, &TargetName::new(target).unwrap())
}

#[test]
fn our_verifier_accepts_a_tough_written_repository() {
    for consistent in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let key = snakeoil("tough");
        tough_repository(&dir, &key, consistent, &[("app-2.0.upd", b"app 2.0"), ("fw.bin", &[0u8, 1, 2, 255])], 24);
        assert_eq!(
            our_read(&dir, &tmp.path().join("state"), "app-2.0.upd").unwrap(),
            b"app 2.0",
            "consistent {consistent}"
        );
        assert_eq!(our_read(&dir, &tmp.path().join("state"), "fw.bin").unwrap(), [0u8, 1, 2, 255]);
        // The keyring anchor works with tough's key ids too: keys are matched by their bytes.
        let mut ring = update_core::keyring::Keyring::default();
        ring.add(update_core::KeyName::new("vendor").unwrap(), public(&key), "").unwrap();
        let updater = TufClient::new(
            DirTransport::new(&dir),
            tmp.path().join("state-keyring"),
            TrustAnchor::Keyring { keyring: ring, threshold: 1 },
        );
        updater.refresh(time::OffsetDateTime::now_utc()).unwrap();
        // And tough reads what it wrote (the test is fair).
        let root = std::fs::read(dir.join("metadata/1.root.json")).unwrap();
        assert_eq!(tough_read(&dir, &root, &tmp.path().join("tough"), "fw.bin").unwrap(), [0u8, 1, 2, 255]);
    }
}

#[test]
fn our_tool_maintains_a_tough_written_repository() {
    for consistent in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let key = snakeoil("tough");
        tough_repository(&dir, &key, consistent, &[("app-2.0.upd", b"app 2.0")], 24);
        let mut repo = update_repo::publish::Repository::open(&dir).unwrap();
        let src = tmp.path().join("app-2.1.upd");
        std::fs::write(&src, b"app 2.1").unwrap();
        repo.add_target(&src, &TargetName::new("app-2.1.upd").unwrap(), None).unwrap();
        let now = time::OffsetDateTime::now_utc();
        repo.sign(std::slice::from_ref(&key), &update_repo::publish::Expiries::default(), now).unwrap();
        assert_eq!(our_read(&dir, &tmp.path().join("state"), "app-2.1.upd").unwrap(), b"app 2.1");
        assert_eq!(our_read(&dir, &tmp.path().join("state"), "app-2.0.upd").unwrap(), b"app 2.0");
        let root = std::fs::read(dir.join("metadata/1.root.json")).unwrap();
        assert_eq!(tough_read(&dir, &root, &tmp.path().join("tough"), "app-2.1.upd").unwrap(), b"app 2.1");
    }
}

#[test]
fn tough_written_attack_repositories_are_refused_by_both() {
    // Expired timestamp.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    tough_repository(&dir, &snakeoil("tough"), true, &[("app.upd", b"app")], -1);
    let ours = our_read(&dir, &tmp.path().join("state"), "app.upd").unwrap_err();
    assert!(ours.to_string().starts_with("timestamp metadata metadata/timestamp.json refused: expired"), "{ours}");
    let root = std::fs::read(dir.join("metadata/1.root.json")).unwrap();
    tough_read(&dir, &root, &tmp.path().join("tough"), "app.upd").unwrap_err();

    // A target changed after signing.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    tough_repository(&dir, &snakeoil("tough"), false, &[("app.upd", b"app")], 24);
    std::fs::write(dir.join("targets/app.upd"), b"evil").unwrap();
    let ours = our_read(&dir, &tmp.path().join("state"), "app.upd").unwrap_err();
    assert!(ours.to_string().starts_with("target app.upd (targets/app.upd) refused"), "{ours}");
    let root = std::fs::read(dir.join("metadata/1.root.json")).unwrap();
    tough_read(&dir, &root, &tmp.path().join("tough"), "app.upd").unwrap_err();
}

/// One attack on a repository we published: its name, what our refusal says, what tough's
/// says, and what it does to the fixture.
type Attack = (&'static str, &'static str, &'static str, fn(&mut Fixture));

const ATTACKS: &[Attack] = &[
    ("expired timestamp", "expired at", "timestamp metadata is expired", |f| {
        f.repo.refresh_timestamp(std::slice::from_ref(&f.keys.timestamp), Duration::seconds(-60), f.now).unwrap();
    }),
    ("target hash mismatch", "sha256 digest", "Hash mismatch", |f| {
        let trusted = f.refresh("probe").unwrap();
        let file = trusted.target_file(&TargetName::new(BUNDLE).unwrap()).unwrap();
        let mut data = f.read(&format!("targets/{file}"));
        data[0] ^= 1;
        f.write(&format!("targets/{file}"), &data);
    }),
    ("oversized target", "larger than the limit", "Maximum size 22", |f| {
        let trusted = f.refresh("probe").unwrap();
        let file = format!("targets/{}", trusted.target_file(&TargetName::new(BUNDLE).unwrap()).unwrap());
        let mut data = f.read(&file);
        data.extend_from_slice(b"endless");
        f.write(&file, &data);
    }),
    ("oversized snapshot", "larger than the limit", "Maximum size", |f| {
        let file = f.snapshot_file();
        let mut data = f.read(&file);
        data.extend_from_slice(&[b' '; 1000]);
        f.write(&file, &data);
    }),
    (
        "targets signed by the wrong key",
        "0 valid signature(s)",
        "Signature threshold of 1 not met for role targets",
        |f| {
            let file = f.targets_file();
            let key = f.keys.snapshot.clone();
            f.edit::<Targets>(&file, &[&key], |_| {});
            f.relink();
        },
    ),
    ("tampered targets metadata", "0 valid signature(s)", "Signature threshold of 1 not met for role targets", |f| {
        let file = f.targets_file();
        let mut v: serde_json::Value = serde_json::from_slice(&f.read(&file)).unwrap();
        v["signed"]["targets"][BUNDLE]["custom"] = serde_json::json!({"evil": true});
        f.write(&file, &serde_json::to_vec(&v).unwrap());
        f.relink();
    }),
    ("targets version differs from the snapshot", "mix-and-match", "targets metadata version mismatch", |f| {
        f.sign();
        f.write("metadata/2.targets.json", &f.read("metadata/3.targets.json"));
        let key = f.keys.snapshot.clone();
        f.edit::<Snapshot>(&f.snapshot_file(), &[&key], |s| {
            s.meta.insert(
                "targets.json".into(),
                MetaFile { version: 2, length: None, hashes: None, extra: Default::default() },
            );
        });
        f.relink_timestamp();
    }),
    ("skipped root version", "does not follow trusted root version 1", "Found version 3 of root metadata", |f| {
        let mut root: Root = f.repo.root().clone();
        root.version = 3;
        let key = f.keys.root.clone();
        f.write("metadata/2.root.json", &sign(&root, &[&key]).unwrap());
    }),
    ("root not cross-signed", "trusted root's root role", "Signature threshold of 1 not met for role root", |f| {
        let new = snakeoil("root-new");
        let mut root: Root = f.repo.root().clone();
        let old_id = tuf_key_id(&public(&f.keys.root));
        let new_id = tuf_key_id(&public(&new));
        root.keys.remove(&old_id);
        root.keys.insert(new_id.clone(), update_repo::keys::tuf_key(&public(&new)));
        root.roles.get_mut("root").unwrap().keyids = vec![new_id];
        root.version = 2;
        f.write("metadata/2.root.json", &sign(&root, &[&new]).unwrap());
    }),
    (
        "timestamp signed by a revoked key",
        "trusted root's timestamp role",
        "Signature threshold of 1 not met for role timestamp",
        |f| {
            let new = snakeoil("timestamp-new");
            let root = f.keys.root.clone();
            let old = public(&f.keys.timestamp);
            f.repo.rotate_key(Role::Timestamp, &old, &public(&new), &[root], Duration::days(365), f.now).unwrap();
            let key = f.keys.timestamp.clone();
            f.edit::<Timestamp>("metadata/timestamp.json", &[&key], |t| t.version += 1);
        },
    ),
];

#[test]
fn our_attack_repositories_are_refused_by_both() {
    for (what, ours_says, tough_says, attack) in ATTACKS {
        let mut f = Fixture::new();
        attack(&mut f);
        let ours = f.fetch_bundle("a").expect_err(what).to_string();
        assert!(ours.contains(ours_says), "{what}: we refused for another reason: {ours}");
        let theirs = tough_read_fixture(&f, "a").expect_err(what);
        assert!(theirs.contains(tough_says), "{what}: tough refused for another reason: {theirs}");
    }
}

#[test]
fn replayed_timestamp_is_refused_by_both() {
    let mut f = Fixture::new();
    let old = f.read("metadata/timestamp.json");
    f.sign();
    f.refresh("a").unwrap();
    tough_read_fixture(&f, "a").unwrap();
    f.write("metadata/timestamp.json", &old);
    assert!(f.refresh("a").is_err());
    let theirs = tough_read_fixture(&f, "a").unwrap_err();
    assert!(theirs.contains("timestamp"), "{theirs}");
}
