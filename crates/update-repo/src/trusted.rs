//! The verifier's core: the set of trusted metadata and the TUF 1.0 rules for changing it.
//!
//! [`TrustedMetadata`] does no I/O and reads no clock: it takes each file's bytes and the
//! reference time from its caller ([`crate::client::TufClient`] drives it from a transport and a
//! state directory). Each `update_*` method either accepts the new file — it is then trusted —
//! or refuses it with an [`Error::Refused`] naming the role, the file and the attack, and the
//! trusted set is unchanged. The order is the client workflow of TUF 1.0 §5:
//!
//! 1. a trusted root ([`TrustedMetadata::from_root`] or [`TrustedMetadata::from_keyring_root`]),
//! 2. each next root ([`TrustedMetadata::update_root`]): signed by a threshold of the trusted
//!    root's keys **and** of its own, version exactly one more,
//! 3. the timestamp ([`TrustedMetadata::update_timestamp`]): the final root must not have
//!    expired; threshold; not older than the trusted timestamp, nor listing an older snapshot;
//!    not expired,
//! 4. the snapshot ([`TrustedMetadata::update_snapshot`]): length and hashes from the timestamp;
//!    threshold; version exactly the timestamp's; no targets file listed at a lower version than
//!    the trusted snapshot listed it, none dropped; not expired,
//! 5. the targets ([`TrustedMetadata::update_targets`]): length and hashes from the snapshot;
//!    threshold; version exactly the snapshot's; not expired,
//! 6. a target ([`TrustedMetadata::verify_target`] or [`TargetInfo::checker`]): exact length and
//!    every supported digest.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;
use update_core::keyring::Keyring;

use crate::error::{Error, Refusal, Result, Role};
use crate::keys::{KeyId, RootKey};
use crate::metadata::{DelegatedRole, MetaFile, Metadata, Root, Signed, Snapshot, TargetInfo, Targets, Timestamp};
use crate::target_name::TargetName;

/// Whether a metadata file was taken, or the trusted copy kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The new file is now trusted (the caller persists it).
    New,
    /// The new file has the same version as the trusted one: it is discarded and the trusted
    /// copy stays (TUF 1.0.31 §5.4.3.1; never persist the discarded file).
    Unchanged,
}

/// Where a metadata file's bytes came from: the repository, or the state directory (then the
/// length and hashes listed by the snapshot or timestamp are not required to match: the file
/// was checked when it was first trusted, and its version is still checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Fetched from the repository just now.
    Remote,
    /// Read from this device's state directory.
    Local,
}

/// A delegated targets role trusted in this run, and the delegators it was verified against.
#[derive(Debug, Clone)]
struct DelegatedTargets {
    signed: Signed<Targets>,
    verified_by: BTreeSet<String>,
}

/// The metadata trusted so far, and the files trusted by an earlier run (rollback floors).
#[derive(Debug, Clone)]
pub struct TrustedMetadata {
    root: Signed<Root>,
    root_file: String,
    root_keys: BTreeMap<KeyId, RootKey>,
    timestamp: Option<Signed<Timestamp>>,
    snapshot: Option<Signed<Snapshot>>,
    targets: Option<Signed<Targets>>,
    previous_timestamp: Option<Signed<Timestamp>>,
    previous_snapshot: Option<Signed<Snapshot>>,
    delegated: BTreeMap<String, DelegatedTargets>,
    found: BTreeMap<TargetName, TargetInfo>,
}

fn malformed(role: Role, file: &str, why: impl Into<String>) -> Error {
    Error::refused(role, file, Refusal::Malformed(why.into()))
}

impl TrustedMetadata {
    /// Trusts a root given out of band (a pinned `root.json`, or the one persisted by the last
    /// run): it must be well formed and signed by a threshold of its own root keys. Its expiry
    /// is checked only once the root chain has been followed (at the timestamp step).
    ///
    /// # Errors
    /// [`Error::Refused`] for the root.
    pub fn from_root(bytes: &[u8], file: &str) -> Result<Self> {
        let root = Signed::<Root>::parse(bytes, file)?;
        let root_keys = root.signed.checked_keys().map_err(|e| malformed(Role::Root, file, e))?;
        root.verify_by(&root.signed, &root_keys, "trusted root", file)?;
        Ok(Self {
            root,
            root_file: file.to_owned(),
            root_keys,
            timestamp: None,
            snapshot: None,
            targets: None,
            previous_timestamp: None,
            previous_snapshot: None,
            delegated: BTreeMap::new(),
            found: BTreeMap::new(),
        })
    }

    /// Trusts the first root a device sees because a threshold of the keys in its keyring signed
    /// it (our trust anchor, instead of a pinned `root.json`). The root must also be signed by a
    /// threshold of its own root keys.
    ///
    /// # Errors
    /// [`Error::Refused`] with [`Refusal::Untrusted`] when the keyring's keys did not sign it.
    pub fn from_keyring_root(bytes: &[u8], file: &str, keyring: &Keyring, threshold: u64) -> Result<Self> {
        if threshold == 0 {
            return Err(Error::InvalidValue {
                what: "keyring threshold".into(),
                value: "0".into(),
                reason: "at least one keyring signature is required".into(),
            });
        }
        let trusted = Self::from_root(bytes, file)?;
        // Keyring keys are matched by their bytes: each is tried against every signature,
        // whatever key id the repository gave it.
        let keys: Vec<_> = keyring.iter().map(|e| RootKey::Ed25519(e.public_key)).collect();
        let sig_ids: BTreeSet<KeyId> =
            update_core::sort::collect_set(trusted.root.signatures.iter().map(|s| s.keyid.clone()));
        let candidates = keys.iter().flat_map(|k| sig_ids.iter().map(move |id| (id.clone(), k)));
        let valid = trusted.root.signers(candidates).len();
        if (valid as u64) < threshold {
            return Err(Error::refused(Role::Root, file, Refusal::Untrusted { valid, threshold }));
        }
        Ok(trusted)
    }

    /// The trusted root.
    #[must_use]
    pub fn root(&self) -> &Signed<Root> {
        &self.root
    }

    /// The timestamp trusted in this run, if any.
    #[must_use]
    pub fn timestamp(&self) -> Option<&Signed<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The snapshot trusted in this run, if any.
    #[must_use]
    pub fn snapshot(&self) -> Option<&Signed<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// The targets trusted in this run, if any.
    #[must_use]
    pub fn targets(&self) -> Option<&Signed<Targets>> {
        self.targets.as_ref()
    }

    /// Remembers the timestamp trusted by an earlier run, as the floor for rollback checks. Call
    /// before [`Self::update_root`] (a rotation of the timestamp or snapshot keys discards it,
    /// TUF 1.0 §5.3.11). It must verify with the trusted root.
    ///
    /// # Errors
    /// [`Error::Refused`]; callers then go on without a floor (as on a first run).
    pub fn set_previous_timestamp(&mut self, bytes: &[u8], file: &str) -> Result<()> {
        let ts = Signed::<Timestamp>::parse(bytes, file)?;
        ts.verify_by(&self.root.signed, &self.root_keys, "trusted root", file)?;
        self.previous_timestamp = Some(ts);
        Ok(())
    }

    /// Remembers the snapshot trusted by an earlier run (see [`Self::set_previous_timestamp`]).
    ///
    /// # Errors
    /// [`Error::Refused`]; callers then go on without a floor.
    pub fn set_previous_snapshot(&mut self, bytes: &[u8], file: &str) -> Result<()> {
        let snap = Signed::<Snapshot>::parse(bytes, file)?;
        snap.verify_by(&self.root.signed, &self.root_keys, "trusted root", file)?;
        self.previous_snapshot = Some(snap);
        Ok(())
    }

    /// Accepts root version N+1 (TUF 1.0 §5.3): signed by a threshold of the trusted root's root
    /// keys and by a threshold of its own; version exactly N+1.
    ///
    /// # Errors
    /// [`Error::Refused`] for the new root: [`Refusal::Signatures`] (not cross-signed, revoked
    /// keys), [`Refusal::RootChain`] (skipped or replayed version), [`Refusal::Malformed`].
    pub fn update_root(&mut self, bytes: &[u8], file: &str) -> Result<()> {
        if self.timestamp.is_some() {
            return Err(Error::Workflow("the root cannot change once the timestamp is trusted".into()));
        }
        let new = Signed::<Root>::parse(bytes, file)?;
        new.verify_by(&self.root.signed, &self.root_keys, "trusted root", file)?;
        let new_keys = new.signed.checked_keys().map_err(|e| malformed(Role::Root, file, e))?;
        new.verify_by(&new.signed, &new_keys, "new root", file)?;
        let trusted = self.root.signed.version;
        if trusted.checked_add(1) != Some(new.signed.version) {
            return Err(Error::refused(Role::Root, file, Refusal::RootChain { trusted, found: new.signed.version }));
        }
        let rotated = |role| self.root.signed.role_keys(role) != new.signed.role_keys(role);
        if rotated(Role::Timestamp) || rotated(Role::Snapshot) {
            // §5.3.11: recover from a fast-forward attack: forget the old floors.
            self.previous_timestamp = None;
            self.previous_snapshot = None;
        }
        self.root = new;
        self.root_keys = new_keys;
        self.root_file = file.to_owned();
        Ok(())
    }

    /// Accepts a timestamp (TUF 1.0 §5.4). `now` is the fixed start time of this update.
    ///
    /// # Errors
    /// [`Error::Refused`] for the root ([`Refusal::Expired`]) or the timestamp:
    /// [`Refusal::Signatures`], [`Refusal::Rollback`], [`Refusal::MetaRollback`],
    /// [`Refusal::Expired`], [`Refusal::Missing`], [`Refusal::Malformed`]. A timestamp with the
    /// same version as the trusted one is [`Accepted::Unchanged`]: discarded, the trusted one
    /// kept (and checked for expiry).
    pub fn update_timestamp(&mut self, bytes: &[u8], file: &str, now: OffsetDateTime) -> Result<Accepted> {
        if self.snapshot.is_some() {
            return Err(Error::Workflow("the timestamp cannot change once the snapshot is trusted".into()));
        }
        self.root.check_expiry(now, &self.root_file)?;
        let new = Signed::<Timestamp>::parse(bytes, file)?;
        new.verify_by(&self.root.signed, &self.root_keys, "trusted root", file)?;
        let new_snap = snapshot_meta(&new, file)?;
        if let Some(old) = self.timestamp.as_ref().or(self.previous_timestamp.as_ref()) {
            if new.signed.version < old.signed.version {
                return Err(Error::refused(
                    Role::Timestamp,
                    file,
                    Refusal::Rollback { trusted: old.signed.version, new: new.signed.version },
                ));
            }
            if new.signed.version == old.signed.version {
                // §5.4.3.1: the same version as the trusted timestamp: discard the new file and
                // keep the trusted one (which must still be fresh).
                let old = old.clone();
                old.check_expiry(now, file)?;
                self.timestamp = Some(old);
                return Ok(Accepted::Unchanged);
            }
            if let Ok(old_snap) = snapshot_meta(old, file)
                && new_snap.version < old_snap.version
            {
                return Err(Error::refused(
                    Role::Timestamp,
                    file,
                    Refusal::MetaRollback {
                        file: Role::Snapshot.file_name().into(),
                        trusted: old_snap.version,
                        new: new_snap.version,
                    },
                ));
            }
        }
        new.check_expiry(now, file)?;
        self.timestamp = Some(new);
        Ok(Accepted::New)
    }

    /// The snapshot file to fetch next (below `metadata/`) and its signed length, if listed.
    ///
    /// # Errors
    /// [`Error::Workflow`] before the timestamp is trusted.
    pub fn snapshot_file(&self) -> Result<(String, Option<u64>)> {
        let ts = self.timestamp.as_ref().ok_or_else(|| Error::Workflow("no trusted timestamp yet".into()))?;
        let meta = snapshot_meta(ts, "timestamp.json")?;
        Ok((self.versioned(Role::Snapshot, meta.version), meta.length))
    }

    /// Accepts a snapshot (TUF 1.0 §5.5).
    ///
    /// # Errors
    /// [`Error::Refused`] for the snapshot: [`Refusal::Length`] / [`Refusal::Hash`] (not the
    /// file the timestamp signed), [`Refusal::Signatures`], [`Refusal::VersionMismatch`]
    /// (mix-and-match), [`Refusal::Rollback`], [`Refusal::MetaRollback`], [`Refusal::Missing`],
    /// [`Refusal::Expired`].
    pub fn update_snapshot(&mut self, bytes: &[u8], file: &str, now: OffsetDateTime) -> Result<()> {
        self.update_snapshot_from(bytes, file, now, Origin::Remote)
    }

    /// [`Self::update_snapshot`] for bytes from `origin` (see [`Origin`]).
    ///
    /// # Errors
    /// As [`Self::update_snapshot`].
    pub fn update_snapshot_from(
        &mut self,
        bytes: &[u8],
        file: &str,
        now: OffsetDateTime,
        origin: Origin,
    ) -> Result<()> {
        if self.targets.is_some() {
            return Err(Error::Workflow("the snapshot cannot change once the targets are trusted".into()));
        }
        let ts = self.timestamp.as_ref().ok_or_else(|| Error::Workflow("no trusted timestamp yet".into()))?;
        let meta = snapshot_meta(ts, file)?;
        if origin == Origin::Remote {
            meta.check(bytes).map_err(|r| Error::refused(Role::Snapshot, file, r))?;
        }
        let new = Signed::<Snapshot>::parse(bytes, file)?;
        new.verify_by(&self.root.signed, &self.root_keys, "trusted root", file)?;
        if new.signed.version != meta.version {
            return Err(Error::refused(
                Role::Snapshot,
                file,
                Refusal::VersionMismatch {
                    listed_in: Role::Timestamp.file_name().into(),
                    expected: meta.version,
                    found: new.signed.version,
                },
            ));
        }
        if let Some(old) = self.snapshot.as_ref().or(self.previous_snapshot.as_ref()) {
            if new.signed.version < old.signed.version {
                return Err(Error::refused(
                    Role::Snapshot,
                    file,
                    Refusal::Rollback { trusted: old.signed.version, new: new.signed.version },
                ));
            }
            for (name, old_meta) in &old.signed.meta {
                let Some(new_meta) = new.signed.meta.get(name) else {
                    return Err(Error::refused(
                        Role::Snapshot,
                        file,
                        Refusal::Missing(format!("{name}, listed by the trusted snapshot, is missing")),
                    ));
                };
                if new_meta.version < old_meta.version {
                    return Err(Error::refused(
                        Role::Snapshot,
                        file,
                        Refusal::MetaRollback { file: name.clone(), trusted: old_meta.version, new: new_meta.version },
                    ));
                }
            }
        }
        if !new.signed.meta.contains_key(Role::Targets.file_name()) {
            return Err(Error::refused(Role::Snapshot, file, Refusal::Missing("targets.json is not listed".into())));
        }
        new.check_expiry(now, file)?;
        self.snapshot = Some(new);
        Ok(())
    }

    /// The targets file to fetch next (below `metadata/`) and its signed length, if listed.
    ///
    /// # Errors
    /// [`Error::Workflow`] before the snapshot is trusted.
    pub fn targets_file(&self) -> Result<(String, Option<u64>)> {
        let meta = self.targets_meta()?;
        Ok((self.versioned(Role::Targets, meta.version), meta.length))
    }

    fn targets_meta(&self) -> Result<&MetaFile> {
        let snap = self.snapshot.as_ref().ok_or_else(|| Error::Workflow("no trusted snapshot yet".into()))?;
        snap.signed
            .meta
            .get(Role::Targets.file_name())
            .ok_or_else(|| Error::Workflow("the trusted snapshot lists no targets.json".into()))
    }

    /// Accepts the top-level targets metadata (TUF 1.0 §5.6; delegated roles are accepted one at
    /// a time by [`Self::update_delegated_targets`]).
    ///
    /// # Errors
    /// [`Error::Refused`] for the targets: [`Refusal::Length`] / [`Refusal::Hash`],
    /// [`Refusal::Signatures`], [`Refusal::VersionMismatch`], [`Refusal::Expired`].
    pub fn update_targets(&mut self, bytes: &[u8], file: &str, now: OffsetDateTime) -> Result<()> {
        self.update_targets_from(bytes, file, now, Origin::Remote)
    }

    /// [`Self::update_targets`] for bytes from `origin` (see [`Origin`]).
    ///
    /// # Errors
    /// As [`Self::update_targets`].
    pub fn update_targets_from(&mut self, bytes: &[u8], file: &str, now: OffsetDateTime, origin: Origin) -> Result<()> {
        if self.targets.is_some() {
            return Err(Error::Workflow("the top-level targets are already trusted".into()));
        }
        let meta = self.targets_meta()?.clone();
        if origin == Origin::Remote {
            meta.check(bytes).map_err(|r| Error::refused(Role::Targets, file, r))?;
        }
        let new = Signed::<Targets>::parse(bytes, file)?;
        new.verify_by(&self.root.signed, &self.root_keys, "trusted root", file)?;
        if new.signed.version != meta.version {
            return Err(Error::refused(
                Role::Targets,
                file,
                Refusal::VersionMismatch {
                    listed_in: Role::Snapshot.file_name().into(),
                    expected: meta.version,
                    found: new.signed.version,
                },
            ));
        }
        new.check_expiry(now, file)?;
        self.targets = Some(new);
        Ok(())
    }

    /// What the trusted targets metadata says about a target.
    ///
    /// # Errors
    /// [`Error::Workflow`] before the targets are trusted; [`Error::UnknownTarget`].
    /// Looks in the top-level targets, then among the targets found through delegations by
    /// [`crate::TufClient::find_target`] (a top-level entry always wins, as in the search order).
    pub fn target(&self, name: &TargetName) -> Result<&TargetInfo> {
        let targets = self.targets.as_ref().ok_or_else(|| Error::Workflow("no trusted targets yet".into()))?;
        targets
            .signed
            .targets
            .get(name.as_str())
            .or_else(|| self.found.get(name))
            .ok_or_else(|| Error::UnknownTarget(name.to_string()))
    }

    /// Records a target found through a delegation (by the search in
    /// [`crate::TufClient::find_target`]), so [`Self::target`] and [`Self::verify_target`] see it.
    pub(crate) fn remember_found(&mut self, name: &TargetName, info: TargetInfo) {
        self.found.insert(name.clone(), info);
    }

    /// The trusted targets metadata of `role`: `targets` (top level) or a delegated role
    /// trusted in this run.
    #[must_use]
    pub fn targets_role(&self, role: &str) -> Option<&Signed<Targets>> {
        if role == Role::Targets.as_str() { self.targets.as_ref() } else { self.delegated.get(role).map(|d| &d.signed) }
    }

    /// Whether delegated `role` is trusted in this run *as delegated by* `delegator` (a role
    /// reached through two delegators is verified against each).
    #[must_use]
    pub fn is_trusted_via(&self, role: &str, delegator: &str) -> bool {
        self.delegated.get(role).is_some_and(|d| d.verified_by.contains(delegator))
    }

    /// The metadata file of delegated `role` to fetch (below `metadata/`) and its signed
    /// length, from the snapshot.
    ///
    /// # Errors
    /// [`Error::Workflow`] before the snapshot is trusted; [`Error::Refused`] with
    /// [`Refusal::Missing`] when the snapshot does not list the role.
    pub fn delegated_targets_file(&self, role: &str) -> Result<(String, Option<u64>)> {
        let meta = self.delegated_meta(role, &format!("{role}.json"))?;
        let name = crate::target_name::role_file_name(role);
        let file = if self.root.signed.consistent_snapshot {
            format!("{}.{name}.json", meta.version)
        } else {
            format!("{name}.json")
        };
        Ok((file, meta.length))
    }

    fn delegated_meta(&self, role: &str, file: &str) -> Result<&MetaFile> {
        let snap = self.snapshot.as_ref().ok_or_else(|| Error::Workflow("no trusted snapshot yet".into()))?;
        snap.signed.meta.get(&format!("{role}.json")).ok_or_else(|| {
            Error::refused(Role::Targets, file, Refusal::Missing(format!("the snapshot does not list {role}.json")))
        })
    }

    /// Accepts the metadata of delegated targets role `role` as delegated by `delegator`
    /// (`targets` or a delegated role already trusted) (TUF 1.0.31 §5.6 for a delegated role):
    /// length and hashes from the snapshot (for [`Origin::Remote`]); signed by a threshold of
    /// the keys the delegator names for it; version exactly the snapshot's; not expired.
    /// A role already trusted through another delegator is verified again against this one.
    ///
    /// # Errors
    /// [`Error::Workflow`] when the delegator is not trusted or does not delegate to `role`;
    /// [`Error::Refused`] as for [`Self::update_targets`].
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        file: &str,
        role: &str,
        delegator: &str,
        now: OffsetDateTime,
        origin: Origin,
    ) -> Result<()> {
        let parent = self
            .targets_role(delegator)
            .ok_or_else(|| Error::Workflow(format!("the delegating role {delegator} is not trusted")))?;
        let delegations = parent.signed.delegations.as_ref();
        let delegation: &DelegatedRole = delegations
            .and_then(|d| d.roles.iter().flatten().find(|r| r.name == role))
            .ok_or_else(|| Error::Workflow(format!("{delegator} does not delegate to {role}")))?;
        let keys = delegations
            .map(crate::metadata::Delegations::checked_keys)
            .transpose()
            .map_err(|e| malformed(Role::Targets, file, format!("delegations of {delegator}: {e}")))?
            .unwrap_or_default();
        if Role::ALL.iter().any(|r| r.as_str() == role) {
            return Err(malformed(
                Role::Targets,
                file,
                format!("{delegator} delegates to the top-level role name {role}"),
            ));
        }
        let (keyids, threshold) = (delegation.keyids.clone(), delegation.threshold);
        let who = format!("{delegator}'s delegation to {role}");
        if let Some(existing) = self.delegated.get_mut(role) {
            // Trusted through another path: this delegator's keys must sign it too.
            existing.signed.verify_threshold(&keys, &keyids, threshold, &who, file)?;
            existing.verified_by.insert(delegator.to_owned());
            return Ok(());
        }
        let meta = self.delegated_meta(role, file)?.clone();
        if origin == Origin::Remote {
            meta.check(bytes).map_err(|r| Error::refused(Role::Targets, file, r))?;
        }
        let new = Signed::<Targets>::parse(bytes, file)?;
        new.verify_threshold(&keys, &keyids, threshold, &who, file)?;
        if new.signed.version != meta.version {
            return Err(Error::refused(
                Role::Targets,
                file,
                Refusal::VersionMismatch {
                    listed_in: Role::Snapshot.file_name().into(),
                    expected: meta.version,
                    found: new.signed.version,
                },
            ));
        }
        new.check_expiry(now, file)?;
        let verified_by = BTreeSet::from([delegator.to_owned()]);
        self.delegated.insert(role.to_owned(), DelegatedTargets { signed: new, verified_by });
        Ok(())
    }

    /// Every trusted target, by name (names that are not valid [`TargetName`]s are left out).
    pub fn target_names(&self) -> impl Iterator<Item = TargetName> + '_ {
        self.targets.iter().flat_map(|t| t.signed.targets.keys()).filter_map(|n| TargetName::new(n).ok())
    }

    /// Where a target lives below `targets/` (hash-prefixed with consistent snapshots).
    ///
    /// # Errors
    /// As [`Self::target`]; [`Error::TargetRefused`] when a consistent repository lists no
    /// digest to name the file by.
    pub fn target_file(&self, name: &TargetName) -> Result<String> {
        let info = self.target(name)?;
        if !self.root.signed.consistent_snapshot {
            return Ok(name.file_path(None));
        }
        let hash = info.name_hash().ok_or_else(|| Error::TargetRefused {
            name: name.to_string(),
            file: name.to_string(),
            reason: Refusal::Malformed("no sha256 or sha512 digest is listed".into()),
        })?;
        if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            // The digest becomes part of a path: never let it carry anything but hex.
            return Err(Error::TargetRefused {
                name: name.to_string(),
                file: name.to_string(),
                reason: Refusal::Malformed(format!("digest {hash:?} is not hexadecimal")),
            });
        }
        Ok(name.file_path(Some(hash)))
    }

    /// Checks a whole target against its trusted length and digests. For large targets, stream
    /// them through [`TargetInfo::checker`] instead.
    ///
    /// # Errors
    /// [`Error::TargetRefused`] ([`Refusal::TooLarge`], [`Refusal::Length`], [`Refusal::Hash`]).
    pub fn verify_target(&self, name: &TargetName, data: &[u8]) -> Result<()> {
        let info = self.target(name)?;
        let file = self.target_file(name)?;
        let mut checker = info.checker();
        checker.update(data).and_then(|()| checker.finish()).map_err(|reason| Error::TargetRefused {
            name: name.to_string(),
            file,
            reason,
        })
    }

    fn versioned(&self, role: Role, version: u64) -> String {
        if self.root.signed.consistent_snapshot {
            format!("{version}.{}", role.file_name())
        } else {
            role.file_name().to_owned()
        }
    }
}

fn snapshot_meta<'a>(ts: &'a Signed<Timestamp>, file: &str) -> Result<&'a MetaFile> {
    ts.signed
        .meta
        .get(Role::Snapshot.file_name())
        .ok_or_else(|| Error::refused(Role::Timestamp, file, Refusal::Missing("snapshot.json is not listed".into())))
}

impl<T: Metadata> Signed<T> {
    /// The metadata's version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.signed.version()
    }
}
