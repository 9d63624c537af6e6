//! Errors of the repository layer: every refusal names the role, the file and what failed.

use std::fmt;
use std::path::PathBuf;

use update_core::ErrorKind;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The four top-level roles of a TUF repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `root.json`: the keys and thresholds of every role; the trust anchor.
    Root,
    /// `targets.json`: the files (targets) with their lengths and hashes.
    Targets,
    /// `snapshot.json`: the versions of every targets metadata file (mix-and-match protection).
    Snapshot,
    /// `timestamp.json`: the current snapshot, re-signed often (freeze protection).
    Timestamp,
}

impl Role {
    /// Every role, in the order the client workflow loads them.
    pub const ALL: [Role; 4] = [Role::Root, Role::Timestamp, Role::Snapshot, Role::Targets];

    /// The role's name as TUF writes it (`root`, `targets`, `snapshot`, `timestamp`): the value
    /// of `_type` and the key in `root.json`'s `roles`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }

    /// The unversioned file name (`root.json` …), also the name in snapshot and timestamp `meta`.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Role::Root => "root.json",
            Role::Targets => "targets.json",
            Role::Snapshot => "snapshot.json",
            Role::Timestamp => "timestamp.json",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "root" => Ok(Role::Root),
            "targets" => Ok(Role::Targets),
            "snapshot" => Ok(Role::Snapshot),
            "timestamp" => Ok(Role::Timestamp),
            _ => Err(Error::InvalidValue {
                what: "role".into(),
                value: s.into(),
                reason: "expected root, targets, snapshot or timestamp".into(),
            }),
        }
    }
}

/// Why a metadata file or a target was refused. Each variant is one of the attacks TUF defends
/// against, or malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not JSON, not the expected shape, wrong `_type`, floats, unsupported spec version …
    #[error("malformed: {0}")]
    Malformed(String),
    /// Larger than the limit (endless-data attack).
    #[error("larger than the limit of {limit} bytes (endless-data attack?)")]
    TooLarge {
        /// The limit in bytes: the length signed in metadata, or the client's configured maximum.
        limit: u64,
    },
    /// Fewer valid signatures from the role's keys than its threshold.
    #[error("{valid} valid signature(s) from the {role} role's keys, {threshold} required")]
    Signatures {
        /// Whose keys were counted (for a new root: the trusted root or the new root itself).
        role: String,
        /// Distinct keys whose signature verified.
        valid: usize,
        /// The role's threshold.
        threshold: u64,
    },
    /// A version older than the one already trusted (rollback attack).
    #[error("version {new} is older than the trusted version {trusted} (rollback attack?)")]
    Rollback {
        /// The trusted version.
        trusted: u64,
        /// The offered version.
        new: u64,
    },
    /// Lists another file at a version older than the trusted metadata listed it (rollback).
    #[error("lists {file} version {new}, older than the trusted version {trusted} (rollback attack?)")]
    MetaRollback {
        /// The listed file (`snapshot.json`, `targets.json`).
        file: String,
        /// The version trusted metadata listed.
        trusted: u64,
        /// The version listed now.
        new: u64,
    },
    /// Expired (freeze attack).
    #[error("expired at {expires} (now {now}; freeze attack?)")]
    Expired {
        /// When it expired (RFC 3339).
        expires: String,
        /// The reference time of this update (RFC 3339).
        now: String,
    },
    /// The version differs from the one the referring metadata lists (mix-and-match attack).
    #[error("version {found} differs from version {expected} listed in {listed_in} (mix-and-match attack?)")]
    VersionMismatch {
        /// The metadata that lists the file (`timestamp.json`, `snapshot.json`).
        listed_in: String,
        /// The version listed there.
        expected: u64,
        /// The version found in the file.
        found: u64,
    },
    /// A root whose version is not exactly the trusted version + 1 (broken root chain).
    #[error("root version {found} does not follow trusted root version {trusted} (expected {})", trusted + 1)]
    RootChain {
        /// The trusted root's version.
        trusted: u64,
        /// The offered root's version.
        found: u64,
    },
    /// A digest differs from the signed one.
    #[error("{algorithm} digest {found} differs from the signed {expected}")]
    Hash {
        /// `sha256` or `sha512`.
        algorithm: String,
        /// The signed digest (hex).
        expected: String,
        /// The computed digest (hex).
        found: String,
    },
    /// The length differs from the signed one.
    #[error("length {found} differs from the signed length {expected}")]
    Length {
        /// The signed length.
        expected: u64,
        /// The actual length.
        found: u64,
    },
    /// A file that the metadata must list is missing from it.
    #[error("{0}")]
    Missing(String),
    /// The first root is not signed by the device's keyring (trust anchor).
    #[error("not signed by a threshold of the device keyring's keys ({valid} valid, {threshold} required)")]
    Untrusted {
        /// Distinct keyring keys whose signature verified.
        valid: usize,
        /// The threshold the device requires.
        threshold: u64,
    },
}

/// Every error of the repository layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metadata file was refused.
    #[error("{role} metadata {file} refused: {reason}")]
    Refused {
        /// The role.
        role: Role,
        /// The file as fetched (`metadata/3.snapshot.json`) or stored.
        file: String,
        /// What failed.
        reason: Refusal,
    },
    /// A target was refused.
    #[error("target {name} ({file}) refused: {reason}")]
    TargetRefused {
        /// The target's name.
        name: String,
        /// The file as fetched.
        file: String,
        /// What failed.
        reason: Refusal,
    },
    /// The trusted targets metadata has no such target.
    #[error("no target named '{0}' in the trusted targets metadata")]
    UnknownTarget(String),
    /// The transport could not fetch a file.
    #[error("cannot fetch {file}: {reason}")]
    Fetch {
        /// The file (`metadata/timestamp.json`).
        file: String,
        /// What the transport reported.
        reason: String,
    },
    /// A step was called out of order (a bug in the caller).
    #[error("{0}")]
    Workflow(String),
    /// A file operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A key is unusable for what was asked.
    #[error("key: {0}")]
    Key(String),
    /// A value given by the caller is not acceptable.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidValue {
        /// Which value.
        what: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The repository on disk cannot be edited as asked (tool side).
    #[error("repository {}: {reason}", path.display())]
    Repository {
        /// The repository directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// The stable kind of this error ([`update_core::ErrorKind`]), for exit codes.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Refused { .. } | Error::TargetRefused { .. } => ErrorKind::Verification,
            Error::UnknownTarget(_) | Error::Fetch { .. } => ErrorKind::Source,
            Error::Io { .. } => ErrorKind::Io,
            Error::Key(_) => ErrorKind::Keyring,
            Error::InvalidValue { .. } => ErrorKind::Usage,
            Error::Workflow(_) | Error::Repository { .. } => ErrorKind::Failure,
        }
    }

    /// The refusal, when this is a refused metadata file or target.
    #[must_use]
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused { reason, .. } | Error::TargetRefused { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The role, when this is a refused metadata file.
    #[must_use]
    pub fn role(&self) -> Option<Role> {
        match self {
            Error::Refused { role, .. } => Some(*role),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn refused(role: Role, file: &str, reason: Refusal) -> Self {
        Error::Refused { role, file: file.to_owned(), reason }
    }
}

impl From<Error> for update_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io { op, path, source } => update_core::Error::Io { op, path, source },
            Error::Key(m) => update_core::Error::Keyring(m),
            Error::InvalidValue { what, value, reason } => update_core::Error::InvalidValue { what, value, reason },
            Error::Refused { role, file, reason } => {
                update_core::Error::Verification { what: format!("{role} metadata {file}"), reason: reason.to_string() }
            }
            Error::TargetRefused { name, file, reason } => {
                update_core::Error::Verification { what: format!("target {name} ({file})"), reason: reason.to_string() }
            }
            Error::Fetch { file, reason } => update_core::Error::Source { url: file, reason },
            e @ Error::UnknownTarget(_) => {
                update_core::Error::Source { url: "repository".into(), reason: e.to_string() }
            }
            e @ (Error::Workflow(_) | Error::Repository { .. }) => update_core::Error::Other(e.to_string()),
        }
    }
}
