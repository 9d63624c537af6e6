//! Error kinds and the `update_error` object.

#![forbid(unsafe_code)]

use std::ffi::{CStr, CString};

/// The kind of an error: the exit codes of `update` (docs/reference/exit-codes.md), so that a C
/// caller and a shell script branch on the same numbers. `UPDATE_ERROR_KIND_OK` (0) is success.
/// C sees the numbers as the `UPDATE_ERROR_KIND_*` constants of the crate root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Success.
    Ok = 0,
    /// Anything not classified below.
    Failure = 1,
    /// A bad argument: NULL, not UTF-8, an unknown key, an invalid value.
    Usage = 2,
    /// The config file (or keyring) cannot be read or is invalid.
    Config = 3,
    /// No driver is available on this system.
    NotImplemented = 4,
    /// The selected driver does not support the operation.
    NotSupported = 5,
    /// A signature, digest, size or metadata check failed.
    Verification = 6,
    /// Refused by policy before anything was written.
    Refused = 7,
    /// Another install holds the lock, or another call is using this handle.
    Busy = 8,
    /// A file or device operation failed.
    Io = 9,
    /// The update source cannot be reached or returned bad data.
    Source = 10,
    /// A keyring change was refused.
    Keyring = 11,
    /// The install was stopped by `update_cancel` (C API only: `update` has no such exit code).
    Cancelled = 100,
}

impl ErrorKind {
    /// The stable name (the `--json` name of `update`'s error documents).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Ok => "ok",
            ErrorKind::Cancelled => "cancelled",
            other => core_kind(other).map_or("failure", update_core::ErrorKind::as_str),
        }
    }

    /// The kind for a number, if there is one.
    #[must_use]
    pub fn from_code(code: i32) -> Option<Self> {
        use ErrorKind as K;
        let all = [
            K::Ok,
            K::Failure,
            K::Usage,
            K::Config,
            K::NotImplemented,
            K::NotSupported,
            K::Verification,
            K::Refused,
            K::Busy,
            K::Io,
            K::Source,
            K::Keyring,
            K::Cancelled,
        ];
        all.into_iter().find(|k| *k as i32 == code)
    }
}

impl ErrorKind {
    /// [`ErrorKind::name`] as a static C string (`update_error_kind_name`).
    #[must_use]
    pub fn c_name(self) -> &'static CStr {
        match self {
            ErrorKind::Ok => c"ok",
            ErrorKind::Failure => c"failure",
            ErrorKind::Usage => c"usage",
            ErrorKind::Config => c"config",
            ErrorKind::NotImplemented => c"not-implemented",
            ErrorKind::NotSupported => c"not-supported",
            ErrorKind::Verification => c"verification",
            ErrorKind::Refused => c"refused",
            ErrorKind::Busy => c"busy",
            ErrorKind::Io => c"io",
            ErrorKind::Source => c"source",
            ErrorKind::Keyring => c"keyring",
            ErrorKind::Cancelled => c"cancelled",
        }
    }
}

/// The core kind with the same exit code.
fn core_kind(k: ErrorKind) -> Option<update_core::ErrorKind> {
    use update_core::ErrorKind as C;
    let all = [
        C::Failure,
        C::Usage,
        C::Config,
        C::NotImplemented,
        C::NotSupported,
        C::Verification,
        C::Refused,
        C::Busy,
        C::Io,
        C::Source,
        C::Keyring,
    ];
    all.into_iter().find(|c| i32::from(c.exit_code()) == k as i32)
}

impl From<update_core::ErrorKind> for ErrorKind {
    fn from(k: update_core::ErrorKind) -> Self {
        ErrorKind::from_code(i32::from(k.exit_code())).unwrap_or(ErrorKind::Failure)
    }
}

/// An error (opaque): its kind (`update_error_kind`) and message (`update_error_message`); freed
/// by `update_error_free`.
#[derive(Debug)]
pub struct Error {
    pub(crate) kind: ErrorKind,
    pub(crate) message: CString,
}

/// An error inside the library, before it becomes an [`Error`] object.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub(crate) fn into_error(self) -> Error {
        // A message never holds NUL, but if one did it is cut there rather than lost.
        let text = self.message.split('\0').next().unwrap_or_default().to_owned();
        Error { kind: self.kind, message: CString::new(text).unwrap_or_default() }
    }
}

impl From<update_core::Error> for Failure {
    fn from(e: update_core::Error) -> Self {
        Self::new(e.kind().into(), e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_kind_keeps_its_exit_code_and_name() {
        for code in 1..=11 {
            let k = ErrorKind::from_code(code).expect("a kind for every exit code 1-11");
            let core = core_kind(k).expect("a core kind");
            assert_eq!(i32::from(core.exit_code()), code);
            assert_eq!(ErrorKind::from(core), k);
            assert_eq!(k.name(), core.as_str());
        }
        assert_eq!(ErrorKind::from_code(12), None, "12 is `update status` falling back, not an error");
        assert_eq!(ErrorKind::Cancelled.name(), "cancelled");
    }

    #[test]
    fn the_c_constants_and_names_match_the_kinds() {
        use crate::*;
        let c = [
            (UPDATE_ERROR_KIND_OK, ErrorKind::Ok),
            (UPDATE_ERROR_KIND_FAILURE, ErrorKind::Failure),
            (UPDATE_ERROR_KIND_USAGE, ErrorKind::Usage),
            (UPDATE_ERROR_KIND_CONFIG, ErrorKind::Config),
            (UPDATE_ERROR_KIND_NOT_IMPLEMENTED, ErrorKind::NotImplemented),
            (UPDATE_ERROR_KIND_NOT_SUPPORTED, ErrorKind::NotSupported),
            (UPDATE_ERROR_KIND_VERIFICATION, ErrorKind::Verification),
            (UPDATE_ERROR_KIND_REFUSED, ErrorKind::Refused),
            (UPDATE_ERROR_KIND_BUSY, ErrorKind::Busy),
            (UPDATE_ERROR_KIND_IO, ErrorKind::Io),
            (UPDATE_ERROR_KIND_SOURCE, ErrorKind::Source),
            (UPDATE_ERROR_KIND_KEYRING, ErrorKind::Keyring),
            (UPDATE_ERROR_KIND_CANCELLED, ErrorKind::Cancelled),
        ];
        for (code, kind) in c {
            assert_eq!(code, kind as i32);
            assert_eq!(kind.c_name().to_str().ok(), Some(kind.name()));
        }
    }
}
