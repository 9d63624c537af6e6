//! The error type shared by every layer, and its stable kinds.

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable classification of errors; binaries map each kind to a documented exit code
/// (docs/reference/exit-codes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Anything not classified below.
    Failure,
    /// A bad command-line value or argument.
    Usage,
    /// The configuration file is unreadable, malformed or invalid.
    Config,
    /// No driver is available on this system.
    NotImplemented,
    /// The selected driver does not support the operation.
    NotSupported,
    /// A signature, digest, size or metadata check failed.
    Verification,
    /// The update was refused by policy (compatibility, version, space, mounted target).
    Refused,
    /// Another `update` holds the lock.
    Busy,
    /// A file or device operation failed.
    Io,
    /// The update source could not be reached or returned bad data.
    Source,
    /// A keyring operation failed (duplicate, missing or malformed key).
    Keyring,
}

impl ErrorKind {
    /// The process exit code for this kind (docs/reference/exit-codes.md).
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failure => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Config => 3,
            ErrorKind::NotImplemented => 4,
            ErrorKind::NotSupported => 5,
            ErrorKind::Verification => 6,
            ErrorKind::Refused => 7,
            ErrorKind::Busy => 8,
            ErrorKind::Io => 9,
            ErrorKind::Source => 10,
            ErrorKind::Keyring => 11,
        }
    }

    /// A short stable name, used in `--json` output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Failure => "failure",
            ErrorKind::Usage => "usage",
            ErrorKind::Config => "config",
            ErrorKind::NotImplemented => "not-implemented",
            ErrorKind::NotSupported => "not-supported",
            ErrorKind::Verification => "verification",
            ErrorKind::Refused => "refused",
            ErrorKind::Busy => "busy",
            ErrorKind::Io => "io",
            ErrorKind::Source => "source",
            ErrorKind::Keyring => "keyring",
        }
    }
}

/// Every error libupdate reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", "rename", …).
        op: &'static str,
        /// The file or device.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The configuration file cannot be parsed.
    #[error("{}: {message}", path.display())]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (line, table, key).
        message: String,
    },
    /// A value on the command line or in the config is not acceptable.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidValue {
        /// Which setting.
        what: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A keyring operation was refused.
    #[error("keyring: {0}")]
    Keyring(String),
    /// No driver is available.
    #[error("{message}")]
    NotImplemented {
        /// The full message, including what to install.
        message: String,
    },
    /// The driver does not support this operation.
    #[error("{operation} is not supported by the {driver} driver{}", hint.as_ref().map(|h| format!(". {h}")).unwrap_or_default())]
    NotSupported {
        /// The driver's name.
        driver: String,
        /// The operation.
        operation: String,
        /// What would make it work.
        hint: Option<String>,
    },
    /// A driver was found but is unusable.
    #[error("the {driver} driver is installed but broken: {reason}")]
    DriverBroken {
        /// The driver's name.
        driver: String,
        /// Why.
        reason: String,
    },
    /// A check on signed data failed.
    #[error("verification failed for {what}: {reason}")]
    Verification {
        /// What was being verified (a bundle path, a chunk, a slot).
        what: String,
        /// What failed.
        reason: String,
    },
    /// The update was refused by policy.
    #[error("update refused: {0}")]
    Refused(String),
    /// Another process holds the lock.
    #[error("another update is running (lock held on {})", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// The source failed.
    #[error("source {url}: {reason}")]
    Source {
        /// The source URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A program ran longer than its time limit and was killed with everything it started.
    #[error("{command} did not finish within {} s and was stopped: {output}", after.as_secs())]
    TimedOut {
        /// The program.
        command: String,
        /// Its time limit.
        after: std::time::Duration,
        /// The end of what it printed.
        output: String,
    },
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The stable kind of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::ConfigParse { .. } => ErrorKind::Config,
            Error::InvalidValue { .. } | Error::Usage(_) => ErrorKind::Usage,
            Error::Keyring(_) => ErrorKind::Keyring,
            Error::NotImplemented { .. } => ErrorKind::NotImplemented,
            Error::NotSupported { .. } => ErrorKind::NotSupported,
            Error::DriverBroken { .. } => ErrorKind::Failure,
            Error::Verification { .. } => ErrorKind::Verification,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Source { .. } => ErrorKind::Source,
            Error::TimedOut { .. } | Error::Other(_) => ErrorKind::Failure,
        }
    }

    /// Shorthand for an [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// Shorthand for an [`Error::Verification`].
    pub fn verification(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Verification { what: what.into(), reason: reason.into() }
    }
}
