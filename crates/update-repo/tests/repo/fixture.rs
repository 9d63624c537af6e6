//! Fixture repositories, built by code from throwaway `snakeoil` keys (never hand-edited).
//!
//! [`Fixture::new`] publishes a one-target repository with `update_repo::publish` (what
//! `update-tool repo` runs) using a different key per role; the attack tests then change it the
//! way an attacker (or a compromised key) could, and re-sign what that attacker could sign.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use time::OffsetDateTime;
use update_core::keyring::PublicKey;
use update_repo::metadata::{Metadata, sign};
use update_repo::publish::{Expiries, Published, Repository, RoleKeySet};
use update_repo::{
    DirTransport, MetaFile, Result, Signed, Snapshot, TargetName, Timestamp, TrustAnchor, TrustedMetadata, TufClient,
};

/// The target every fixture publishes.
pub const BUNDLE: &str = "bundle-1.0.0.upd";
/// Its content.
pub const BUNDLE_DATA: &[u8] = b"snakeoil bundle 1.0.0\n";

/// A throwaway key derived from its name; never use outside tests.
pub fn snakeoil(name: &str) -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(format!("snakeoil:{name}").as_bytes()).into())
}

/// The public half.
pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from_verifying_key(key.verifying_key())
}

/// The role keys of a fixture.
pub struct Keys {
    pub root: SigningKey,
    pub targets: SigningKey,
    pub snapshot: SigningKey,
    pub timestamp: SigningKey,
}

/// A published repository in a temporary directory.
pub struct Fixture {
    pub tmp: TempDir,
    pub repo: Repository,
    pub keys: Keys,
    /// More signing keys (second keys of each role for threshold fixtures).
    pub extra: Vec<SigningKey>,
    pub now: OffsetDateTime,
}

impl Fixture {
    /// One key per role, threshold 1, one target published.
    pub fn new() -> Self {
        let keys = Keys {
            root: snakeoil("root"),
            targets: snakeoil("targets"),
            snapshot: snakeoil("snapshot"),
            timestamp: snakeoil("timestamp"),
        };
        let set = RoleKeySet {
            root: vec![public(&keys.root)],
            targets: vec![public(&keys.targets)],
            snapshot: vec![public(&keys.snapshot)],
            timestamp: vec![public(&keys.timestamp)],
        };
        Self::build(keys, &set, 1)
    }

    /// A repository with the given role keys and threshold (signed with every fixture key and
    /// `extra_signers`).
    pub fn build(keys: Keys, set: &RoleKeySet, threshold: u64) -> Self {
        Self::build_with(keys, set, threshold, &[])
    }

    /// As [`Self::build`], with more signing keys.
    pub fn build_with(keys: Keys, set: &RoleKeySet, threshold: u64, extra_signers: &[SigningKey]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let mut signers = vec![keys.root.clone(), keys.targets.clone(), keys.snapshot.clone(), keys.timestamp.clone()];
        signers.extend_from_slice(extra_signers);
        let dir = tmp.path().join("repo");
        let repo = Repository::init(&dir, set, threshold, &signers, &Expiries::default(), now).unwrap();
        let mut f = Self { tmp, repo, keys, extra: extra_signers.to_vec(), now };
        f.add(BUNDLE, BUNDLE_DATA);
        f.repo.sign(&signers, &Expiries::default(), now).unwrap();
        f
    }

    /// The repository directory.
    pub fn dir(&self) -> PathBuf {
        self.repo.dir().to_owned()
    }

    /// Every fixture key.
    pub fn signers(&self) -> Vec<SigningKey> {
        let mut all = vec![
            self.keys.root.clone(),
            self.keys.targets.clone(),
            self.keys.snapshot.clone(),
            self.keys.timestamp.clone(),
        ];
        all.extend(self.extra.iter().cloned());
        all
    }

    /// Stages a target with this content.
    pub fn add(&self, name: &str, data: &[u8]) {
        let src = self.tmp.path().join("in").join(name);
        std::fs::create_dir_all(src.parent().unwrap()).unwrap();
        std::fs::write(&src, data).unwrap();
        self.repo.add_target(&src, &TargetName::new(name).unwrap(), None).unwrap();
    }

    /// Publishes with every fixture key.
    pub fn sign(&mut self) -> Published {
        let signers = self.signers();
        self.repo.sign(&signers, &Expiries::default(), self.now).unwrap()
    }

    /// `metadata/1.root.json`, what a device would pin.
    pub fn pinned_root(&self) -> Vec<u8> {
        self.read("metadata/1.root.json")
    }

    /// A device state directory (one per simulated device).
    pub fn state(&self, device: &str) -> PathBuf {
        self.tmp.path().join(format!("state-{device}"))
    }

    /// An updater for `device` pinning root version 1.
    pub fn updater(&self, device: &str) -> TufClient<DirTransport> {
        TufClient::new(DirTransport::new(self.dir()), self.state(device), TrustAnchor::PinnedRoot(self.pinned_root()))
    }

    /// Runs the client workflow for `device` at the fixture's time.
    pub fn refresh(&self, device: &str) -> Result<TrustedMetadata> {
        self.updater(device).refresh(self.now)
    }

    /// Refreshes and fetches the bundle.
    pub fn fetch_bundle(&self, device: &str) -> Result<Vec<u8>> {
        let trusted = self.refresh(device)?;
        self.updater(device).fetch_target(&trusted, &TargetName::new(BUNDLE).unwrap())
    }

    /// A file of the repository.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Replaces a file of the repository.
    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.dir().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Parses a metadata file.
    pub fn parse<T: Metadata>(&self, rel: &str) -> Signed<T> {
        Signed::parse(&self.read(rel), rel).unwrap()
    }

    /// Edits a metadata file and re-signs it with `keys` (whatever the role's keys are).
    pub fn edit<T: Metadata>(&self, rel: &str, keys: &[&SigningKey], change: impl FnOnce(&mut T)) -> Vec<u8> {
        let mut meta = self.parse::<T>(rel).signed;
        change(&mut meta);
        let bytes = sign(&meta, keys).unwrap();
        self.write(rel, &bytes);
        bytes
    }

    /// The current snapshot file (`metadata/N.snapshot.json`).
    pub fn snapshot_file(&self) -> String {
        let ts = self.parse::<Timestamp>("metadata/timestamp.json");
        format!("metadata/{}.snapshot.json", ts.signed.meta["snapshot.json"].version)
    }

    /// The current targets file (`metadata/N.targets.json`).
    pub fn targets_file(&self) -> String {
        let snap = self.parse::<Snapshot>(&self.snapshot_file());
        format!("metadata/{}.targets.json", snap.signed.meta["targets.json"].version)
    }

    /// After a targets or snapshot file was changed in place: lists its new length and hash in
    /// the snapshot and timestamp, re-signed with the real snapshot and timestamp keys.
    pub fn relink(&self) {
        self.relink_snapshot();
        self.relink_timestamp();
    }

    /// Lists the current targets file's length and hash in the snapshot (re-signed).
    pub fn relink_snapshot(&self) {
        let targets = self.read(&self.targets_file());
        self.edit::<Snapshot>(&self.snapshot_file(), &self.role_signers(&self.keys.snapshot), |s| {
            let v = s.meta["targets.json"].version;
            s.meta.insert("targets.json".into(), MetaFile::for_bytes(v, &targets));
        });
    }

    /// Lists the current snapshot file's length and hash in the timestamp (re-signed).
    pub fn relink_timestamp(&self) {
        let snapshot = self.read(&self.snapshot_file());
        self.edit::<Timestamp>("metadata/timestamp.json", &self.role_signers(&self.keys.timestamp), |t| {
            let v = t.meta["snapshot.json"].version;
            t.meta.insert("snapshot.json".into(), MetaFile::for_bytes(v, &snapshot));
        });
    }

    fn role_signers<'a>(&'a self, key: &'a SigningKey) -> Vec<&'a SigningKey> {
        std::iter::once(key).chain(self.extra.iter()).collect()
    }

    /// Path of a file below the fixture's temporary directory.
    pub fn tmp_path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
}

/// Asserts the error is a refusal of `role`'s file whose message names the file and matches.
#[track_caller]
pub fn assert_refused(
    result: Result<impl std::fmt::Debug>,
    role: update_repo::Role,
    file_part: &str,
    check: impl Fn(&update_repo::Refusal) -> bool,
) {
    let err = result.expect_err("accepted, expected a refusal");
    let msg = err.to_string();
    assert_eq!(err.role(), Some(role), "wrong role: {msg}");
    assert!(msg.contains(file_part), "message does not name {file_part}: {msg}");
    assert!(msg.starts_with(role.as_str()), "message does not start with the role: {msg}");
    assert!(check(err.refusal().unwrap()), "unexpected refusal: {msg}");
    assert_eq!(err.kind(), update_core::ErrorKind::Verification);
}
