//! libupdate as a C library: `libupdate.so`, `libupdate.a` and `include/update.h`
//! (docs/reference/c-api.md).
//!
//! Design: every entry point is a thin shell ([`api`]) that checks its pointer arguments
//! (module `ffi`), runs the operation in safe Rust (module `ops`) on a [`libupdate::Updater`] opened with
//! the drivers of the `update` binary, and turns the outcome into a return code and, if the
//! caller asked for it, an [`Error`] object. The JSON documents (status, history, check, install,
//! key list) are made by the same code as `update … --json` (`update_cli::json`), so they follow
//! the same versioned schemas (docs/reference/schemas/).
//!
//! Rules at the boundary:
//! - opaque handles only (`update_handle`, `update_error`); strings in are NUL-terminated UTF-8,
//!   strings out are allocated here and freed with `update_free_string`;
//! - a NULL pointer, invalid UTF-8 or a wrong root is an error (kind `usage` or `io`), never a
//!   crash; no panic crosses the boundary (each call catches it and reports `failure`);
//! - a handle belongs to the thread that opened it (only `update_cancel` may come from others);
//! - error kinds are the exit codes of `update` (docs/reference/exit-codes.md), plus
//!   `cancelled` for an install stopped by `update_cancel`;
//! - the ABI is versioned: `update_abi_version()`; within a major version symbols are only
//!   added (tests/abi.rs compares the exported symbols with include/update.symbols, and
//!   tests/header.rs the generated header with include/update.h).

pub mod api;
pub mod error;

mod ffi;
mod ops;
mod progress;

pub use error::{Error, ErrorKind};

pub use ops::Handle;

/// The major version of the C ABI: bumped when a symbol is removed or a prototype changes.
pub const UPDATE_ABI_MAJOR: u32 = 1;
/// The minor version of the C ABI: bumped when symbols are added.
pub const UPDATE_ABI_MINOR: u32 = 0;

/// `update_install` flag: install, but do not reboot into the new slot (`update --now --noreboot`).
pub const UPDATE_INSTALL_NOREBOOT: u32 = 1;

/// Progress event: a phase starts (`done` is 0).
pub const UPDATE_PROGRESS_START: i32 = 0;
/// Progress event: bytes done in the current phase (sent when the whole percentage changes, or
/// for every step when the total is unknown).
pub const UPDATE_PROGRESS_ADVANCE: i32 = 1;
/// Progress event: the phase ended.
pub const UPDATE_PROGRESS_FINISH: i32 = 2;

// The error kinds (`update_error_kind`, and the return value of every call): the exit codes of
// `update` (docs/reference/exit-codes.md). Plain constants so that cbindgen writes them as
// `#define`s; a unit test keeps them equal to [`ErrorKind`].

/// Success.
pub const UPDATE_ERROR_KIND_OK: i32 = 0;
/// Anything not classified below (also an internal error: a bug, reported as such).
pub const UPDATE_ERROR_KIND_FAILURE: i32 = 1;
/// A bad argument: NULL, not UTF-8, an unknown key, an invalid value, a handle used from
/// another thread.
pub const UPDATE_ERROR_KIND_USAGE: i32 = 2;
/// The config file (or keyring file) cannot be read or is invalid.
pub const UPDATE_ERROR_KIND_CONFIG: i32 = 3;
/// No driver is available on this system.
pub const UPDATE_ERROR_KIND_NOT_IMPLEMENTED: i32 = 4;
/// The selected driver does not support the operation.
pub const UPDATE_ERROR_KIND_NOT_SUPPORTED: i32 = 5;
/// A signature, digest, size or metadata check failed.
pub const UPDATE_ERROR_KIND_VERIFICATION: i32 = 6;
/// Refused by policy before anything was written.
pub const UPDATE_ERROR_KIND_REFUSED: i32 = 7;
/// Another install holds the lock, or another call is using this handle.
pub const UPDATE_ERROR_KIND_BUSY: i32 = 8;
/// A file or device operation failed.
pub const UPDATE_ERROR_KIND_IO: i32 = 9;
/// The update source cannot be reached or returned bad data.
pub const UPDATE_ERROR_KIND_SOURCE: i32 = 10;
/// A keyring change was refused.
pub const UPDATE_ERROR_KIND_KEYRING: i32 = 11;
/// The install was stopped by `update_cancel` (C API only: `update` has no such exit code).
pub const UPDATE_ERROR_KIND_CANCELLED: i32 = 100;
