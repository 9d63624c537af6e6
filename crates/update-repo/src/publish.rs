//! The tool side: create and maintain a repository directory (what `update-tool repo` runs).
//!
//! Layout (everything a plain web server serves as static files):
//!
//! ```text
//! <dir>/metadata/root.json            copy of the newest root (handy to pin on devices)
//! <dir>/metadata/N.root.json          every root version, kept forever (the chain)
//! <dir>/metadata/timestamp.json       the only unversioned file clients fetch
//! <dir>/metadata/N.snapshot.json      consistent snapshots: versioned names
//! <dir>/metadata/N.targets.json
//! <dir>/targets/<sha256>.<name>       targets, named by content (consistent snapshots)
//! <dir>/staging/targets.json          unsigned: targets added since the last `sign`
//! ```
//!
//! Writes are ordered so that a client reading the directory while it changes sees either the
//! old or the new repository: targets, then targets metadata, then snapshot, then timestamp,
//! each file replaced atomically. Old versions stay (a client mid-update may still fetch them).
//! Private keys are passed in and never written.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use update_core::keyring::PublicKey;

use crate::error::{Error, Result, Role};
use crate::keys::{KeyId, RootKey, tuf_key, tuf_key_id};
use crate::metadata::{
    Extra, MetaFile, Metadata, RoleKeys, Root, SPEC_VERSION, Signed, Snapshot, TargetInfo, Targets, Timestamp, expires,
    sign, signed_value,
};
use crate::target_name::TargetName;
use crate::trusted::TrustedMetadata;

/// How long newly signed metadata stays valid, per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiries {
    /// Root (default 365 days).
    pub root: Duration,
    /// Targets (default 90 days).
    pub targets: Duration,
    /// Snapshot (default 90 days).
    pub snapshot: Duration,
    /// Timestamp (default 1 day: re-sign it from cron with `update-tool repo refresh`).
    pub timestamp: Duration,
}

impl Default for Expiries {
    fn default() -> Self {
        Self {
            root: Duration::days(365),
            targets: Duration::days(90),
            snapshot: Duration::days(90),
            timestamp: Duration::days(1),
        }
    }
}

/// Parses an expiry: a duration from `now` (`90s`, `30m`, `12h`, `7d`, `2w`, `1y` = 365 days)
/// or an absolute RFC 3339 time (`2027-01-01T00:00:00Z`).
///
/// # Errors
/// [`Error::InvalidValue`].
pub fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    parse_duration(text).map(|d| now + d).or_else(|_| {
        expires::parse(text).map_err(|_| Error::InvalidValue {
            what: "expiry".into(),
            value: text.into(),
            reason: "expected a duration (90s, 30m, 12h, 7d, 2w, 1y) or an RFC 3339 time".into(),
        })
    })
}

/// Parses a duration: a positive integer and a unit `s`, `m`, `h`, `d`, `w`, `y` (365 days).
///
/// # Errors
/// [`Error::InvalidValue`].
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || Error::InvalidValue {
        what: "duration".into(),
        value: text.into(),
        reason: "expected a number and a unit: 90s, 30m, 12h, 7d, 2w, 1y".into(),
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n == 0 || n > 100 * 365 * 24 * 3600 {
        return Err(bad());
    }
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds).map(Duration::seconds).ok_or_else(bad)
}

/// The keys of each role when a repository is created.
#[derive(Debug, Clone, Default)]
pub struct RoleKeySet {
    /// Root keys.
    pub root: Vec<PublicKey>,
    /// Targets keys.
    pub targets: Vec<PublicKey>,
    /// Snapshot keys.
    pub snapshot: Vec<PublicKey>,
    /// Timestamp keys.
    pub timestamp: Vec<PublicKey>,
}

impl RoleKeySet {
    /// The same keys for every role.
    #[must_use]
    pub fn all(keys: &[PublicKey]) -> Self {
        Self { root: keys.to_vec(), targets: keys.to_vec(), snapshot: keys.to_vec(), timestamp: keys.to_vec() }
    }

    fn get(&self, role: Role) -> &[PublicKey] {
        match role {
            Role::Root => &self.root,
            Role::Targets => &self.targets,
            Role::Snapshot => &self.snapshot,
            Role::Timestamp => &self.timestamp,
        }
    }
}

/// What [`Repository::sign`] published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The new targets version.
    pub targets_version: u64,
    /// The new snapshot version.
    pub snapshot_version: u64,
    /// The new timestamp version.
    pub timestamp_version: u64,
    /// Number of targets listed.
    pub targets: usize,
}

/// A repository directory being maintained.
#[derive(Debug, Clone)]
pub struct Repository {
    dir: PathBuf,
    root: Signed<Root>,
}

impl Repository {
    /// Creates a repository: root version 1 with consistent snapshots, `threshold` signatures
    /// per role, signed by the root keys among `signers`; then an empty targets, snapshot and
    /// timestamp signed by their roles' keys among `signers`.
    ///
    /// # Errors
    /// [`Error::Repository`] when `dir` already holds metadata or a role cannot reach its
    /// threshold; [`Error::Io`].
    pub fn init(
        dir: &Path,
        keys: &RoleKeySet,
        threshold: u64,
        signers: &[SigningKey],
        expiries: &Expiries,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let refuse = |reason: String| Error::Repository { path: dir.to_owned(), reason };
        if dir.join("metadata").read_dir().is_ok_and(|mut d| d.next().is_some()) {
            return Err(refuse("metadata/ exists and is not empty; refusing to overwrite a repository".into()));
        }
        if threshold == 0 {
            return Err(refuse("the threshold must be at least 1".into()));
        }
        let mut all_keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for role in Role::ALL {
            let mut keyids: Vec<KeyId> = Vec::new();
            for key in keys.get(role) {
                let id = tuf_key_id(key);
                all_keys.insert(id.clone(), tuf_key(key));
                if !keyids.contains(&id) {
                    keyids.push(id);
                }
            }
            if (keyids.len() as u64) < threshold {
                return Err(refuse(format!(
                    "the {role} role has {} distinct key(s), fewer than the threshold {threshold}",
                    keyids.len()
                )));
            }
            roles.insert(role.as_str().to_owned(), RoleKeys { keyids, threshold, extra: Extra::new() });
        }
        let root = Root {
            spec_version: SPEC_VERSION.into(),
            consistent_snapshot: true,
            version: 1,
            expires: whole_seconds(now + expiries.root),
            keys: all_keys,
            roles,
            extra: Extra::new(),
        };
        let bytes = sign_role(dir, &root, &root, signers)?;
        let root = Signed::<Root>::parse(&bytes, "1.root.json")?;
        TrustedMetadata::from_root(&bytes, "1.root.json")?;
        ensure_dir(&dir.join("targets"))?;
        write(&dir.join("metadata/1.root.json"), &bytes)?;
        write(&dir.join("metadata/root.json"), &bytes)?;
        let mut repo = Self { dir: dir.to_owned(), root };
        let empty = Targets {
            spec_version: SPEC_VERSION.into(),
            version: 0,
            expires: now,
            targets: BTreeMap::new(),
            delegations: None,
            extra: Extra::new(),
        };
        repo.publish(empty, signers, expiries, now)?;
        Ok(repo)
    }

    /// Opens an existing repository (its newest `N.root.json`).
    ///
    /// # Errors
    /// [`Error::Repository`] when there is no root; [`Error::Refused`] when it is malformed.
    pub fn open(dir: &Path) -> Result<Self> {
        let meta = dir.join("metadata");
        let entries = meta.read_dir().map_err(|e| Error::io("list", &meta, e))?;
        let newest = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".root.json")?.parse::<u64>().ok())
            .max()
            .ok_or_else(|| Error::Repository {
                path: dir.to_owned(),
                reason: "no metadata/N.root.json: run `update-tool repo init` first".into(),
            })?;
        let file = format!("metadata/{newest}.root.json");
        let bytes = read(&dir.join(&file))?;
        let root = Signed::<Root>::parse(&bytes, &file)?;
        Ok(Self { dir: dir.to_owned(), root })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest root.
    #[must_use]
    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The published targets metadata (following timestamp → snapshot → targets).
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Refused`] (malformed files).
    pub fn current_targets(&self) -> Result<Signed<Targets>> {
        let (_, snapshot) = self.current_snapshot()?;
        let meta = snapshot.signed.meta.get("targets.json").ok_or_else(|| Error::Repository {
            path: self.dir.clone(),
            reason: "the snapshot lists no targets.json".into(),
        })?;
        let file = self.versioned(Role::Targets, meta.version);
        Signed::parse(&read(&self.dir.join(&file))?, &file)
    }

    fn current_timestamp(&self) -> Result<Signed<Timestamp>> {
        let file = "metadata/timestamp.json";
        Signed::parse(&read(&self.dir.join(file))?, file)
    }

    fn current_snapshot(&self) -> Result<(Signed<Timestamp>, Signed<Snapshot>)> {
        let ts = self.current_timestamp()?;
        let meta = ts.signed.meta.get("snapshot.json").ok_or_else(|| Error::Repository {
            path: self.dir.clone(),
            reason: "the timestamp lists no snapshot.json".into(),
        })?;
        let file = self.versioned(Role::Snapshot, meta.version);
        let snap = Signed::parse(&read(&self.dir.join(&file))?, &file)?;
        Ok((ts, snap))
    }

    fn staging_file(&self) -> PathBuf {
        self.dir.join("staging/targets.json")
    }

    /// The targets as they will be signed next: the staged ones, else the published ones.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Refused`].
    pub fn staged_targets(&self) -> Result<Targets> {
        let path = self.staging_file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut value: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Repository { path: path.clone(), reason: format!("not JSON: {e}") })?;
                if let Value::Object(o) = &mut value {
                    o.remove("_type");
                }
                serde_json::from_value(value)
                    .map_err(|e| Error::Repository { path, reason: format!("not targets metadata: {e}") })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.current_targets()?.signed),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    /// Copies a file into `targets/` under its content-addressed name (its plain name in a
    /// repository without consistent snapshots) and stages it in the targets metadata (published by the next [`Self::sign`]). Replaces a target of the same
    /// name.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; [`Error::InvalidValue`] for `custom` that is not an object.
    pub fn add_target(&self, file: &Path, name: &TargetName, custom: Option<Value>) -> Result<TargetInfo> {
        if custom.as_ref().is_some_and(|c| !c.is_object()) {
            return Err(Error::InvalidValue {
                what: "custom".into(),
                value: custom.map(|c| c.to_string()).unwrap_or_default(),
                reason: "must be a JSON object".into(),
            });
        }
        let mut staged = self.staged_targets()?;
        let (tmp, length, sha256) = self.copy_in(file, name)?;
        let mut info = TargetInfo { length, hashes: BTreeMap::new(), custom, extra: Extra::new() };
        info.hashes.insert("sha256".into(), sha256.clone());
        let consistent = self.root.signed.consistent_snapshot.then_some(sha256.as_str());
        let dest = self.dir.join("targets").join(name.file_path(consistent));
        tmp.persist(&dest).map_err(|e| Error::io("rename into place", &dest, e.error))?;
        update_core::atomic::sync_dir(dest.parent().unwrap_or(&self.dir)).map_err(core_io)?;
        staged.targets.insert(name.as_str().to_owned(), info.clone());
        self.stage(&staged)?;
        Ok(info)
    }

    /// Removes a target from the staged targets metadata (its file stays for clients that are
    /// mid-update).
    ///
    /// # Errors
    /// [`Error::Repository`] when there is no such target.
    pub fn remove_target(&self, name: &TargetName) -> Result<()> {
        let mut staged = self.staged_targets()?;
        if staged.targets.remove(name.as_str()).is_none() {
            return Err(Error::Repository { path: self.dir.clone(), reason: format!("no target named '{name}'") });
        }
        self.stage(&staged)
    }

    fn stage(&self, targets: &Targets) -> Result<()> {
        let mut bytes =
            serde_json::to_vec_pretty(&signed_value(targets)?).map_err(|e| Error::Workflow(e.to_string()))?;
        bytes.push(b'\n');
        write(&self.staging_file(), &bytes)
    }

    fn copy_in(&self, file: &Path, name: &TargetName) -> Result<(tempfile::TempPath, u64, String)> {
        let dest_dir = self.dir.join("targets").join(name.file_path(None)).parent().map(Path::to_path_buf);
        let dest_dir = dest_dir.unwrap_or_else(|| self.dir.join("targets"));
        ensure_dir(&dest_dir)?;
        let mut src = std::fs::File::open(file).map_err(|e| Error::io("open", file, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dest_dir)
            .map_err(|e| Error::io("create temporary file in", &dest_dir, e))?;
        let mut hasher = Sha256::new();
        let mut length = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = src.read(&mut buf).map_err(|e| Error::io("read", file, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            length += n as u64;
            tmp.write_all(&buf[..n]).map_err(|e| Error::io("write", tmp.path(), e))?;
        }
        // A target is a public artefact: readable by the web server whatever the umask (a
        // temporary file is created 0600).
        public_mode(tmp.as_file()).map_err(|e| Error::io("set mode 0644 of", tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| Error::io("fsync", tmp.path(), e))?;
        Ok((tmp.into_temp_path(), length, hex::encode(hasher.finalize())))
    }

    /// Publishes the staged targets (or re-publishes the current ones): new targets, snapshot
    /// and timestamp versions, each signed by its role's keys among `signers`.
    ///
    /// # Errors
    /// [`Error::Repository`] when `signers` cannot meet a role's threshold (nothing is written
    /// then); [`Error::Io`].
    pub fn sign(&mut self, signers: &[SigningKey], expiries: &Expiries, now: OffsetDateTime) -> Result<Published> {
        let staged = self.staged_targets()?;
        let published = self.publish(staged, signers, expiries, now)?;
        match std::fs::remove_file(self.staging_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", self.staging_file(), e));
            }
            _ => {}
        }
        // Only when empty: anything else in it is not ours to delete.
        let _ignored = std::fs::remove_dir(self.dir.join("staging"));
        Ok(published)
    }

    fn publish(
        &mut self,
        mut targets: Targets,
        signers: &[SigningKey],
        expiries: &Expiries,
        now: OffsetDateTime,
    ) -> Result<Published> {
        let root = self.root.signed.clone();
        let previous =
            if self.dir.join("metadata/timestamp.json").exists() { Some(self.current_snapshot()?) } else { None };
        let (old_targets, old_snapshot, old_timestamp) = match &previous {
            Some((ts, snap)) => (
                snap.signed.meta.get("targets.json").map_or(0, |m| m.version),
                Some(snap.signed.clone()),
                ts.signed.version,
            ),
            None => (0, None, 0),
        };
        targets.version = old_targets + 1;
        targets.expires = whole_seconds(now + expiries.targets);
        targets.spec_version = SPEC_VERSION.into();
        let targets_bytes = sign_role(&self.dir, &root, &targets, signers)?;

        let mut snapshot = old_snapshot.unwrap_or(Snapshot {
            spec_version: SPEC_VERSION.into(),
            version: 0,
            expires: now,
            meta: BTreeMap::new(),
            extra: Extra::new(),
        });
        snapshot.version += 1;
        snapshot.expires = whole_seconds(now + expiries.snapshot);
        snapshot.spec_version = SPEC_VERSION.into();
        snapshot.meta.insert("targets.json".into(), MetaFile::for_bytes(targets.version, &targets_bytes));
        let snapshot_bytes = sign_role(&self.dir, &root, &snapshot, signers)?;

        let timestamp =
            self.timestamp_for(old_timestamp + 1, snapshot.version, &snapshot_bytes, expiries.timestamp, now);
        let timestamp_bytes = sign_role(&self.dir, &root, &timestamp, signers)?;

        write(&self.dir.join(self.versioned(Role::Targets, targets.version)), &targets_bytes)?;
        write(&self.dir.join(self.versioned(Role::Snapshot, snapshot.version)), &snapshot_bytes)?;
        write(&self.dir.join("metadata/timestamp.json"), &timestamp_bytes)?;
        Ok(Published {
            targets_version: targets.version,
            snapshot_version: snapshot.version,
            timestamp_version: timestamp.version,
            targets: targets.targets.len(),
        })
    }

    fn timestamp_for(
        &self,
        version: u64,
        snapshot_version: u64,
        snapshot_bytes: &[u8],
        valid_for: Duration,
        now: OffsetDateTime,
    ) -> Timestamp {
        let mut meta = BTreeMap::new();
        meta.insert("snapshot.json".into(), MetaFile::for_bytes(snapshot_version, snapshot_bytes));
        Timestamp {
            spec_version: SPEC_VERSION.into(),
            version,
            expires: whole_seconds(now + valid_for),
            meta,
            extra: Extra::new(),
        }
    }

    /// Re-signs the timestamp only (cron-able): version + 1, expiring `valid_for` after `now`.
    /// Returns the new version.
    ///
    /// # Errors
    /// [`Error::Repository`] when `signers` cannot meet the timestamp threshold; [`Error::Io`].
    pub fn refresh_timestamp(&self, signers: &[SigningKey], valid_for: Duration, now: OffsetDateTime) -> Result<u64> {
        let (ts, _) = self.current_snapshot()?;
        let snapshot_meta = ts.signed.meta.get("snapshot.json").cloned().ok_or_else(|| Error::Repository {
            path: self.dir.clone(),
            reason: "the timestamp lists no snapshot.json".into(),
        })?;
        let mut timestamp = ts.signed;
        timestamp.version += 1;
        timestamp.expires = whole_seconds(now + valid_for);
        timestamp.spec_version = SPEC_VERSION.into();
        timestamp.meta.insert("snapshot.json".into(), snapshot_meta);
        let bytes = sign_role(&self.dir, &self.root.signed, &timestamp, signers)?;
        write(&self.dir.join("metadata/timestamp.json"), &bytes)?;
        Ok(timestamp.version)
    }

    /// Replaces key `old` of `role` with `new` in a new root version (N+1), signed by every key
    /// in `signers` that the old or new root lists for the root role. The new root is checked
    /// with the device-side rules (threshold of the old **and** the new root keys) before it is
    /// written. Returns the new root version.
    ///
    /// After rotating a targets, snapshot or timestamp key, run [`Self::sign`] with the new key:
    /// clients refuse the old role's metadata as soon as they trust the new root.
    ///
    /// # Errors
    /// [`Error::Repository`] when `old` is not a key of the role, `new` already is, or the
    /// signatures do not satisfy both roots; [`Error::Io`].
    pub fn rotate_key(
        &mut self,
        role: Role,
        old: &PublicKey,
        new: &PublicKey,
        signers: &[SigningKey],
        root_valid_for: Duration,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let refuse = |reason: String| Error::Repository { path: self.dir.clone(), reason };
        let mut root = self.root.signed.clone();
        let role_keys = root.roles.get(role.as_str()).cloned().ok_or_else(|| refuse(format!("no {role} role")))?;
        let key_of =
            |id: &KeyId| root.keys.get(id).and_then(|j| RootKey::from_json(j).ok()).and_then(|k| k.ed25519().copied());
        let old_id = role_keys
            .keyids
            .iter()
            .find(|id| key_of(id).as_ref() == Some(old))
            .cloned()
            .ok_or_else(|| refuse(format!("the {role} role has no key {} (TUF key id)", tuf_key_id(old))))?;
        if role_keys.keyids.iter().any(|id| key_of(id).as_ref() == Some(new)) {
            return Err(refuse(format!("the new key is already a {role} key")));
        }
        let new_id = tuf_key_id(new);
        let keyids: Vec<KeyId> =
            role_keys.keyids.iter().map(|id| if *id == old_id { new_id.clone() } else { id.clone() }).collect();
        root.roles.insert(role.as_str().into(), RoleKeys { keyids, ..role_keys });
        root.keys.insert(new_id, tuf_key(new));
        if !root.roles.values().any(|rk| rk.keyids.contains(&old_id)) {
            root.keys.remove(&old_id);
        }
        root.version += 1;
        root.expires = whole_seconds(now + root_valid_for);
        root.spec_version = SPEC_VERSION.into();

        let old_root = self.root.signed.clone();
        let usable: Vec<SigningKey> = signers
            .iter()
            .filter(|k| {
                let p = PublicKey::from_verifying_key(k.verifying_key());
                old_root.role_public_keys(Role::Root).contains(&p) || root.role_public_keys(Role::Root).contains(&p)
            })
            .cloned()
            .collect();
        let refs: Vec<&SigningKey> = usable.iter().collect();
        let bytes = sign(&root, &refs)?;
        let file = format!("metadata/{}.root.json", root.version);
        let mut check = TrustedMetadata::from_root(&self.root.bytes, "current root")?;
        check.update_root(&bytes, &file).map_err(|e| {
            refuse(format!(
                "the new root would be refused by devices ({e}); give --key for enough old and new root keys"
            ))
        })?;
        write(&self.dir.join(&file), &bytes)?;
        write(&self.dir.join("metadata/root.json"), &bytes)?;
        self.root = Signed::parse(&bytes, &file)?;
        Ok(root.version)
    }

    fn versioned(&self, role: Role, version: u64) -> String {
        if self.root.signed.consistent_snapshot {
            format!("metadata/{version}.{}", role.file_name())
        } else {
            format!("metadata/{}", role.file_name())
        }
    }
}

/// Signs `meta` with the keys among `signers` that `root` lists for its role, and refuses when
/// they are fewer than the role's threshold.
fn sign_role<T: Metadata>(dir: &Path, root: &Root, meta: &T, signers: &[SigningKey]) -> Result<Vec<u8>> {
    let role_keys = root.role_public_keys(T::ROLE);
    let usable: Vec<&SigningKey> =
        signers.iter().filter(|k| role_keys.contains(&PublicKey::from_verifying_key(k.verifying_key()))).collect();
    let mut distinct: Vec<[u8; 32]> = usable.iter().map(|k| k.verifying_key().to_bytes()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let threshold = root.role_keys(T::ROLE).map_or(1, |r| r.threshold);
    if (distinct.len() as u64) < threshold {
        return Err(Error::Repository {
            path: dir.to_owned(),
            reason: format!(
                "the {} role needs {threshold} signature(s) and the given keys include {} of its keys",
                T::ROLE,
                distinct.len()
            ),
        });
    }
    sign(meta, &usable)
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn core_io(e: update_core::Error) -> Error {
    match e {
        update_core::Error::Io { op, path, source } => Error::Io { op, path, source },
        other => Error::Workflow(other.to_string()),
    }
}

fn ensure_dir(dir: &Path) -> Result<()> {
    update_core::atomic::ensure_dir(dir).map_err(core_io)
}

/// Metadata is public: 0644 whatever the umask (a umask of 077 must not leave a repository the
/// web server cannot read).
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    update_core::atomic::write_atomic(path, bytes, 0o644).map_err(core_io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io("set mode 0644 of", path, e))
}

/// Makes an open file `0644` (`fchmod`), the mode of a public artefact.
fn public_mode(file: &std::fs::File) -> std::io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse_as_durations_or_times() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(parse_expiry("1d", now).unwrap(), now + Duration::days(1));
        assert_eq!(parse_expiry("12h", now).unwrap(), now + Duration::hours(12));
        assert_eq!(parse_expiry("1y", now).unwrap(), now + Duration::days(365));
        assert_eq!(expires::format(parse_expiry("2030-01-02T03:04:05Z", now).unwrap()), "2030-01-02T03:04:05Z");
        for bad in ["", "d", "0d", "1x", "-1d", "1.5d", "tomorrow"] {
            assert!(parse_expiry(bad, now).is_err(), "{bad:?}");
        }
    }
}
