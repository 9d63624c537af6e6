//! libupdate as a C library: `libupdate.so`, `libupdate.a` and `include/update.h`
//! (docs/reference/c-api.md).
//!
//! Design: every entry point is a thin shell ([`api`]) that checks its pointer arguments
//! ([`ffi`]), runs the operation in safe Rust ([`ops`]) on a [`libupdate::Updater`] opened with
//! the drivers of the `update` binary, and turns the outcome into a return code and, if the
//! caller asked for it, an [`Error`] object. The JSON documents (status, history, check, install,
//! key list) are made by the same code as `update … --json` (`update_cli::json`), so they follow
//! the same versioned schemas (docs/reference/schemas/).
//!
//! Rules at the boundary:
//! - opaque handles only (`update_handle`, `update_error`); strings in are NUL-terminated UTF-8,
//!   strings out are allocated here and freed with `update_string_free`;
//! - a NULL pointer, invalid UTF-8 or a wrong root is an error (kind `usage` or `io`), never a
//!   crash; no panic crosses the boundary (each call catches it and reports `failure`);
//! - error kinds are the exit codes of `update` (docs/reference/exit-codes.md), plus
//!   `cancelled` for an install stopped by `update_cancel`;
//! - the ABI is versioned: `update_abi_version()`; within a major version symbols are only
//!   added (tests/abi.rs compares the exported symbols and prototypes with abi/).

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
