//! The harness's one error type.

use std::path::{Path, PathBuf};

/// What went wrong in a scenario or in building what it boots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The operation (`create`, `read`, …).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A host tool could not run or failed.
    #[error("{command}: {detail}")]
    Tool {
        /// The command line.
        command: String,
        /// Why: its exit status and output, or why it could not start.
        detail: String,
    },
    /// The host lacks something the suite needs (packages, a static busybox, `apt-get update`).
    #[error("{0}")]
    Setup(String),
    /// The guest (QEMU and what runs in it) did not do what the scenario waited for: a marker
    /// that did not come, QEMU that exited early, a command that failed.
    #[error("{vm}: {detail}")]
    Guest {
        /// The device and boot.
        vm: String,
        /// What happened, with the last console lines.
        detail: String,
    },
    /// An outcome the scenario checks is wrong: the proof failed.
    #[error("{0}")]
    Check(String),
    /// The fleet server's operator API failed.
    #[error("{url}: {detail}")]
    Http {
        /// The request.
        url: String,
        /// Why.
        detail: String,
    },
    /// A project tool used as a library (provisioning, the test PKI, disk helpers) failed.
    #[error(transparent)]
    Update(#[from] update_core::Error),
}

/// Result with [`Error`].
pub type Result<T = ()> = std::result::Result<T, Error>;

/// An [`Error::Io`] for `op` on `path`, for `map_err`.
pub fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_owned(), source }
}

/// An [`Error::Check`].
pub fn check(message: impl Into<String>) -> Error {
    Error::Check(message.into())
}
