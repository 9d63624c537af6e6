//! The device side: the TUF client workflow over a [`Transport`], with trusted metadata kept in
//! a state directory.
//!
//! [`TufClient::refresh`] runs TUF 1.0 §5 from start to end — trusted root, root chain,
//! timestamp, snapshot, targets — with the reference time the caller passes in, and returns the
//! [`TrustedMetadata`] from which targets are looked up and checked. Every verified file is
//! written to the state directory at once (atomically), so the next run's rollback floors are
//! the newest files this device ever trusted.
//!
//! State directory (given by the caller, e.g. `/var/lib/update/repo`): `root.json`,
//! `timestamp.json`, `snapshot.json`, `targets.json` — the last trusted copy of each role.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use update_core::keyring::Keyring;

use crate::error::{Error, Refusal, Result, Role};
use crate::metadata::TargetInfo;
use crate::target_name::{TargetName, role_file_name};
use crate::transport::{FetchError, Transport};
use crate::trusted::{Accepted, Origin, TrustedMetadata};

/// What the device trusts before it has seen any repository metadata.
#[derive(Debug, Clone)]
pub enum TrustAnchor {
    /// TUF's anchor: a `root.json` shipped with the device (any version of the repository's
    /// root; the client follows the chain from there).
    PinnedRoot(Vec<u8>),
    /// Our addition: no root is shipped. The first root trusted is the lowest-numbered
    /// `metadata/N.root.json` (N = 1, 2, …) signed by at least `threshold` distinct keys of the
    /// device keyring (and by a threshold of its own root keys); the chain is followed from
    /// there. Keys are compared by their raw bytes, whatever their TUF key ids.
    Keyring {
        /// The device's trusted keys (`update config key …`).
        keyring: Keyring,
        /// Distinct keyring signatures required on that first root.
        threshold: u64,
    },
}

/// Endless-data limits for files whose length no signed metadata gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `N.root.json` (default 512 KiB).
    pub max_root_size: u64,
    /// Largest `timestamp.json` (default 16 KiB).
    pub max_timestamp_size: u64,
    /// Largest snapshot when the timestamp does not list its length (default 4 MiB).
    pub max_snapshot_size: u64,
    /// Largest targets metadata when the snapshot does not list its length (default 16 MiB).
    pub max_targets_size: u64,
    /// Most root versions fetched in one run (default 1024).
    pub max_root_updates: u64,
    /// Most delegated roles visited in one target search, besides the top-level targets
    /// (default 32, as python-tuf).
    pub max_delegations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_root_size: 512 * 1024,
            max_timestamp_size: 16 * 1024,
            max_snapshot_size: 4 << 20,
            max_targets_size: 16 << 20,
            max_root_updates: 1024,
            max_delegations: 32,
        }
    }
}

/// Runs the client workflow. Generic over the transport; holds no clock.
#[derive(Debug)]
pub struct TufClient<T> {
    transport: T,
    state_dir: PathBuf,
    anchor: TrustAnchor,
    limits: Limits,
}

const STATE_FILES: [&str; 4] = ["root.json", "timestamp.json", "snapshot.json", "targets.json"];

impl<T: Transport> TufClient<T> {
    /// An updater reading the repository through `transport` and keeping trusted metadata in
    /// `state_dir` (created when missing).
    pub fn new(transport: T, state_dir: impl Into<PathBuf>, anchor: TrustAnchor) -> Self {
        Self { transport, state_dir: state_dir.into(), anchor, limits: Limits::default() }
    }

    /// Replaces the default [`Limits`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The state directory.
    #[must_use]
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Runs the whole client workflow at reference time `now` and returns the trusted metadata.
    /// Nothing is trusted (or persisted) that did not pass every check before it.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the role, file and attack; [`Error::Fetch`] when the transport
    /// fails; [`Error::Io`] for the state directory.
    pub fn refresh(&self, now: OffsetDateTime) -> Result<TrustedMetadata> {
        let mut trusted = self.trusted_root()?;
        // Floors from the last run, verified with the root they were trusted under.
        if let Some(bytes) = self.read_state("timestamp.json")? {
            let _ignored = trusted.set_previous_timestamp(&bytes, &self.state_name("timestamp.json"));
        }
        if let Some(bytes) = self.read_state("snapshot.json")? {
            let _ignored = trusted.set_previous_snapshot(&bytes, &self.state_name("snapshot.json"));
        }

        // §5.3: the root chain, N+1 until not found.
        let start = trusted.root().version();
        loop {
            let version = trusted.root().version() + 1;
            if version - start > self.limits.max_root_updates {
                break;
            }
            let file = format!("metadata/{version}.root.json");
            let Some(bytes) = self.fetch_if_found(Role::Root, &file, self.limits.max_root_size)? else { break };
            trusted.update_root(&bytes, &file)?;
            self.write_state("root.json", &bytes)?;
        }

        // §5.4 timestamp. The same version as the trusted one is discarded, never saved.
        let file = "metadata/timestamp.json".to_owned();
        let bytes = self.fetch(Role::Timestamp, &file, self.limits.max_timestamp_size)?;
        if trusted.update_timestamp(&bytes, &file, now)? == Accepted::New {
            self.write_state("timestamp.json", &bytes)?;
        }

        // §5.5 snapshot: the trusted copy if it is still the one the timestamp names, else
        // the repository's.
        let local = self.read_state("snapshot.json")?;
        let reused = local.is_some_and(|b| {
            trusted.update_snapshot_from(&b, &self.state_name("snapshot.json"), now, Origin::Local).is_ok()
        });
        if !reused {
            let (name, length) = trusted.snapshot_file()?;
            let file = format!("metadata/{name}");
            let bytes = self.fetch(Role::Snapshot, &file, length.unwrap_or(self.limits.max_snapshot_size))?;
            trusted.update_snapshot(&bytes, &file, now)?;
            self.write_state("snapshot.json", &bytes)?;
        }

        // §5.6 targets, the same way.
        let local = self.read_state("targets.json")?;
        let reused = local.is_some_and(|b| {
            trusted.update_targets_from(&b, &self.state_name("targets.json"), now, Origin::Local).is_ok()
        });
        if !reused {
            let (name, length) = trusted.targets_file()?;
            let file = format!("metadata/{name}");
            let bytes = self.fetch(Role::Targets, &file, length.unwrap_or(self.limits.max_targets_size))?;
            trusted.update_targets(&bytes, &file, now)?;
            self.write_state("targets.json", &bytes)?;
        }
        Ok(trusted)
    }

    /// Finds a target (TUF 1.0.31 §5.6.7): in the top-level targets, else by a pre-order
    /// depth-first search of the delegations — each role whose `paths` (or
    /// `path_hash_prefixes`) name the target, in the order listed, its own delegations before
    /// its siblings; a `terminating` role ends the search below it; a role already visited is
    /// skipped; at most [`Limits::max_delegations`] delegated roles are visited (besides the
    /// top-level targets). Each delegated role is
    /// fetched (or read from the state directory) and verified against the delegator that led
    /// to it, then persisted as `<role>.json` (role name percent-encoded). The target found is
    /// remembered in `trusted`, so [`TrustedMetadata::target`] and [`Self::fetch_target`] see it.
    ///
    /// # Errors
    /// [`Error::UnknownTarget`] when no role reached names it; [`Error::Refused`] when a
    /// delegated role on the way fails verification; [`Error::Fetch`], [`Error::Io`].
    pub fn find_target(
        &self,
        trusted: &mut TrustedMetadata,
        name: &TargetName,
        now: OffsetDateTime,
    ) -> Result<TargetInfo> {
        if let Ok(info) = trusted.target(name) {
            return Ok(info.clone());
        }
        let top = Role::Targets.as_str();
        let mut to_visit: Vec<(String, String)> = vec![(top.to_owned(), Role::Root.as_str().to_owned())];
        let mut visited = std::collections::BTreeSet::new();
        while visited.len() <= self.limits.max_delegations {
            let Some((role, delegator)) = to_visit.pop() else { break };
            if visited.contains(&role) {
                continue;
            }
            if role != top {
                self.load_delegated(trusted, &role, &delegator, now)?;
            }
            let targets = trusted
                .targets_role(&role)
                .ok_or_else(|| Error::Workflow(format!("the {role} role is not trusted")))?;
            if let Some(info) = targets.signed.targets.get(name.as_str()) {
                let info = info.clone();
                trusted.remember_found(name, info.clone());
                return Ok(info);
            }
            visited.insert(role.clone());
            let mut children = Vec::new();
            for child in targets.signed.delegations.iter().flat_map(|d| d.roles.iter().flatten()) {
                if !child.is_delegated_path(name.as_str()) {
                    continue;
                }
                children.push((child.name.clone(), role.clone()));
                if child.terminating {
                    to_visit.clear();
                    break;
                }
            }
            to_visit.extend(children.into_iter().rev());
        }
        Err(Error::UnknownTarget(name.to_string()))
    }

    /// Trusts delegated `role` as delegated by `delegator`: already trusted this run (verified
    /// again against this delegator), or the state directory's copy if it is still current,
    /// else the repository's.
    fn load_delegated(
        &self,
        trusted: &mut TrustedMetadata,
        role: &str,
        delegator: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        if trusted.is_trusted_via(role, delegator) {
            return Ok(());
        }
        let state_file = format!("{}.json", role_file_name(role));
        if let Some(existing) = trusted.targets_role(role).map(|t| t.bytes.clone()) {
            return trusted.update_delegated_targets(&existing, &state_file, role, delegator, now, Origin::Local);
        }
        if let Some(local) = self.read_state(&state_file)?
            && trusted
                .update_delegated_targets(&local, &self.state_name(&state_file), role, delegator, now, Origin::Local)
                .is_ok()
        {
            return Ok(());
        }
        let (name, length) = trusted.delegated_targets_file(role)?;
        let file = format!("metadata/{name}");
        let bytes = self.fetch(Role::Targets, &file, length.unwrap_or(self.limits.max_targets_size))?;
        trusted.update_delegated_targets(&bytes, &file, role, delegator, now, Origin::Remote)?;
        self.write_state(&state_file, &bytes)
    }

    /// Fetches a target whole and checks it (§5.7): never more than its signed length, then
    /// every supported digest. Large targets are better streamed through
    /// [`crate::TargetInfo::checker`] with [`TrustedMetadata::target_file`].
    ///
    /// # Errors
    /// [`Error::UnknownTarget`], [`Error::TargetRefused`], [`Error::Fetch`].
    pub fn fetch_target(&self, trusted: &TrustedMetadata, name: &TargetName) -> Result<Vec<u8>> {
        let info = trusted.target(name)?;
        let file = format!("targets/{}", trusted.target_file(name)?);
        let data = match self.transport.fetch(&file, info.length) {
            Ok(d) => d,
            Err(FetchError::TooLarge { limit }) => {
                return Err(Error::TargetRefused { name: name.to_string(), file, reason: Refusal::TooLarge { limit } });
            }
            Err(e) => return Err(Error::Fetch { file, reason: e.to_string() }),
        };
        trusted.verify_target(name, &data).map_err(|e| match e {
            Error::TargetRefused { name, reason, .. } => Error::TargetRefused { name, file: file.clone(), reason },
            e => e,
        })?;
        Ok(data)
    }

    /// Forgets everything trusted (the next refresh starts from the anchor again): the four
    /// top-level files and every delegated role's file (`*.json` in the state directory).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn reset(&self) -> Result<()> {
        let mut names: Vec<String> = STATE_FILES.iter().map(|s| (*s).to_owned()).collect();
        if let Ok(entries) = std::fs::read_dir(&self.state_dir) {
            let delegated: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json") && !names.contains(n))
                .collect();
            names.extend(delegated);
        }
        for name in names {
            let path = self.state_dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("remove", path, e)),
                _ => {}
            }
        }
        Ok(())
    }

    fn trusted_root(&self) -> Result<TrustedMetadata> {
        let stored = self
            .read_state("root.json")?
            .and_then(|b| TrustedMetadata::from_root(&b, &self.state_name("root.json")).ok());
        let trusted = match (&self.anchor, stored) {
            (TrustAnchor::PinnedRoot(pinned), stored) => {
                let pinned = TrustedMetadata::from_root(pinned, "pinned root.json")?;
                // A device image may ship a newer root than the one it last stored.
                match stored {
                    Some(s) if s.root().version() >= pinned.root().version() => return Ok(s),
                    _ => pinned,
                }
            }
            (TrustAnchor::Keyring { .. }, Some(stored)) => return Ok(stored),
            (TrustAnchor::Keyring { keyring, threshold }, None) => self.bootstrap_from_keyring(keyring, *threshold)?,
        };
        self.write_state("root.json", &trusted.root().bytes)?;
        Ok(trusted)
    }

    fn bootstrap_from_keyring(&self, keyring: &Keyring, threshold: u64) -> Result<TrustedMetadata> {
        let mut first_error = None;
        for version in 1..=self.limits.max_root_updates {
            let file = format!("metadata/{version}.root.json");
            let Some(bytes) = self.fetch_if_found(Role::Root, &file, self.limits.max_root_size)? else {
                return Err(first_error.unwrap_or(Error::Fetch { file, reason: "not found".into() }));
            };
            match TrustedMetadata::from_keyring_root(&bytes, &file, keyring, threshold) {
                Ok(t) => return Ok(t),
                Err(e @ Error::Refused { .. }) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.unwrap_or_else(|| Error::Workflow("no root version was tried".into())))
    }

    fn fetch(&self, role: Role, file: &str, max: u64) -> Result<Vec<u8>> {
        self.fetch_if_found(role, file, max)?
            .ok_or_else(|| Error::Fetch { file: file.to_owned(), reason: FetchError::NotFound.to_string() })
    }

    fn fetch_if_found(&self, role: Role, file: &str, max: u64) -> Result<Option<Vec<u8>>> {
        match self.transport.fetch(file, max) {
            Ok(data) if data.len() as u64 > max => Err(Error::refused(role, file, Refusal::TooLarge { limit: max })),
            Ok(data) => Ok(Some(data)),
            Err(FetchError::TooLarge { limit }) => Err(Error::refused(role, file, Refusal::TooLarge { limit })),
            Err(FetchError::NotFound) => Ok(None),
            Err(e) => Err(Error::Fetch { file: file.to_owned(), reason: e.to_string() }),
        }
    }

    fn state_name(&self, name: &str) -> String {
        self.state_dir.join(name).display().to_string()
    }

    fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.state_dir.join(name);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        update_core::atomic::write_atomic(&self.state_dir.join(name), bytes, 0o644).map_err(|e| match e {
            update_core::Error::Io { op, path, source } => Error::Io { op, path, source },
            other => Error::Workflow(other.to_string()),
        })
    }
}
