//! The C entry points (`update_*`), as declared in include/update.h.
//!
//! Each checks its pointers ([`crate::ffi`]), runs the operation ([`crate::ops`]) behind
//! [`crate::ffi::guard`] (no panic crosses the boundary), and returns 0 or the error's kind. When
//! `err` is not NULL it receives NULL on success or an `update_error` to free with
//! [`update_error_free`]. Strings returned through `char **` are freed with
//! [`update_string_free`].

#![allow(unsafe_code, reason = "the C entry points: `#[no_mangle]` and raw pointer arguments")]

use std::ffi::{OsStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, ErrorKind};
use crate::ffi::{self, guard, guard_with};
use crate::ops::Handle;
use crate::progress::ProgressFn;

/// The ABI version: `(UPDATE_ABI_MAJOR << 16) | UPDATE_ABI_MINOR`. A program built against
/// major version M works with any library whose major is M and whose minor is at least the
/// one it was built with.
#[unsafe(no_mangle)]
pub extern "C" fn update_abi_version() -> u32 {
    (crate::UPDATE_ABI_MAJOR << 16) | crate::UPDATE_ABI_MINOR
}

/// The library's version (the crate version, as `update --version` prints it); static, not freed.
#[unsafe(no_mangle)]
pub extern "C" fn update_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Opens the device under `root` (as `update --root ROOT`; `"/"` for the running system). The
/// root may be any bytes (a path), but must be an existing directory. Returns NULL on error.
///
/// # Safety
/// `root` is NULL or a NUL-terminated string; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_open(root: *const c_char, err: *mut *mut Error) -> *mut Handle {
    // SAFETY: `err` is passed on under the caller's promise.
    let (h, _) = unsafe {
        guard_with(err, std::ptr::null_mut(), || {
            // SAFETY: the caller promises `root` is NULL or a NUL-terminated string.
            let root = unsafe { ffi::bytes(root, "root") }?;
            if root.is_empty() {
                return Err(crate::error::Failure::usage("argument `root` is empty (use \"/\" for the running system)"));
            }
            let handle = Handle::open(Path::new(OsStr::from_bytes(root)))?;
            Ok(Box::into_raw(Box::new(handle)))
        })
    };
    h
}

/// Closes a handle from `update_open`. NULL is ignored. No call may run on it.
///
/// # Safety
/// `handle` is NULL or from `update_open` and not closed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_close(handle: *mut Handle) {
    if !handle.is_null() {
        // SAFETY: from `Box::into_raw` in `update_open`, closed once (the caller's promise).
        let h = unsafe { Box::from_raw(handle) };
        // Dropping runs driver and file destructors: a panic there must not cross either.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(h)));
    }
}

/// Reads a config key (`source`, `schedule`, `log`, `verify`, `secure`, `boot-retry-limit`,
/// `signature-threshold`, `driver`, `tls.client-cert`, `tls.client-key`, `tls.server-ca`,
/// `server`) into `*value`: its value as text (`true`, `3`, `daily 3`, a URL, a path), or NULL
/// when the key is not set.
///
/// # Safety
/// `handle` is NULL or open; `key` NULL or a C string; `value` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_config_get(
    handle: *mut Handle,
    key: *const c_char,
    value: *mut *mut c_char,
    err: *mut *mut Error,
) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let out = ffi::out(value, "value")?;
            let (h, key) = (ffi::handle(handle)?, ffi::text(key, "key")?);
            out.set(h.config_get(key)?)
        })
    }
}

/// Sets a config key (`update config <key> <value>`; keys as for `update_config_get`;
/// `schedule` takes `off` or `<unit> <N>`, the TLS paths and `server` take `none` to unset).
/// The value is checked before anything is written; the change is audited.
///
/// # Safety
/// `handle` is NULL or open; `key`, `value` NULL or C strings; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_config_set(
    handle: *mut Handle,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut Error,
) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let h = ffi::handle(handle)?;
            h.config_set(ffi::text(key, "key")?, ffi::text(value, "value")?)
        })
    }
}

/// Adds a trusted key (`update config key add NAME KEY`): `public_key` is base64 Ed25519 or PEM.
///
/// # Safety
/// `handle` is NULL or open; `name`, `public_key` NULL or C strings; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_key_add(
    handle: *mut Handle,
    name: *const c_char,
    public_key: *const c_char,
    err: *mut *mut Error,
) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let h = ffi::handle(handle)?;
            h.key_add(ffi::text(name, "name")?, ffi::text(public_key, "public_key")?)
        })
    }
}

/// Replaces the key of an existing name (`update config key update NAME KEY`).
///
/// # Safety
/// As [`update_key_add`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_key_update(
    handle: *mut Handle,
    name: *const c_char,
    public_key: *const c_char,
    err: *mut *mut Error,
) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let h = ffi::handle(handle)?;
            h.key_update(ffi::text(name, "name")?, ffi::text(public_key, "public_key")?)
        })
    }
}

/// Deletes a trusted key (`update config key delete NAME`).
///
/// # Safety
/// `handle` is NULL or open; `name` NULL or a C string; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_key_delete(handle: *mut Handle, name: *const c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe { guard(err, || ffi::handle(handle)?.key_delete(ffi::text(name, "name")?)) }
}

/// The trusted keys as the `libupdate/key-list/1` document (`update config key list --json`).
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_key_list(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let out = ffi::out(json, "json")?;
            out.set(Some(ffi::handle(handle)?.key_list()?))
        })
    }
}

/// Checks for an update (`update --json`): the `libupdate/check/1` document.
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_check(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let out = ffi::out(json, "json")?;
            out.set(Some(ffi::handle(handle)?.check()?))
        })
    }
}

/// Installs the available update into the inactive slot (`update --now --json`; with
/// `UPDATE_INSTALL_NOREBOOT` in `flags`, `--noreboot`): the `libupdate/install/1` document.
///
/// `progress` (may be NULL) is called on this thread with `user_data` as the install runs;
/// `update_cancel` (from any thread) stops the install at its next progress step with
/// `UPDATE_ERROR_KIND_CANCELLED`, leaving the running system and boot state unchanged. Unknown
/// bits in `flags` are a usage error.
///
/// # Safety
/// `handle` is NULL or open; `progress` NULL or a function that may be called with `user_data`
/// until this call returns; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_install(
    handle: *mut Handle,
    flags: u32,
    progress: ProgressFn,
    user_data: *mut c_void,
    json: *mut *mut c_char,
    err: *mut *mut Error,
) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let out = ffi::out(json, "json")?;
            let h = ffi::handle(handle)?;
            if flags & !crate::UPDATE_INSTALL_NOREBOOT != 0 {
                return Err(crate::error::Failure::usage(format!("unknown install flags {flags:#x}")));
            }
            let noreboot = flags & crate::UPDATE_INSTALL_NOREBOOT != 0;
            out.set(Some(h.install(noreboot, progress, user_data)?))
        })
    }
}

/// Asks the install running on `handle` to stop (callable from any thread, also from the
/// progress callback). Without a running install it does nothing. Returns 0, or
/// `UPDATE_ERROR_KIND_USAGE` for a NULL handle.
///
/// # Safety
/// `handle` is NULL or open (and not closed while this runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_cancel(handle: *const Handle) -> c_int {
    // SAFETY: the caller promises `handle` is NULL or open.
    unsafe {
        guard(std::ptr::null_mut(), || {
            ffi::handle(handle)?.cancel();
            Ok(())
        })
    }
}

/// The device's status (`update status --json`): the `libupdate/status/1` document. A device
/// that fell back from a failed update says so in `fallback` (the call still returns 0).
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_status(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let out = ffi::out(json, "json")?;
            out.set(Some(ffi::handle(handle)?.status()?))
        })
    }
}

/// The audit log (`update history --json`): the `libupdate/history/1` document.
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_history(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: each pointer is checked by the `ffi` helper that reads it, under the caller's promise.
    unsafe {
        guard(err, || {
            let out = ffi::out(json, "json")?;
            out.set(Some(ffi::handle(handle)?.history()?))
        })
    }
}

/// Commits the booted slot (`update mark-good`).
///
/// # Safety
/// `handle` is NULL or open; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_mark_good(handle: *mut Handle, err: *mut *mut Error) -> c_int {
    // SAFETY: the handle is checked by `ffi::handle`, under the caller's promise.
    unsafe { guard(err, || ffi::handle(handle)?.mark_good()) }
}

/// Makes the other slot primary again (`update rollback`).
///
/// # Safety
/// `handle` is NULL or open; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_rollback(handle: *mut Handle, err: *mut *mut Error) -> c_int {
    // SAFETY: the handle is checked by `ffi::handle`, under the caller's promise.
    unsafe { guard(err, || ffi::handle(handle)?.rollback()) }
}

/// Frees a string this library returned. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string from this library, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: from `CString::into_raw` in `ffi::Out::set`, freed once (the caller's promise).
        drop(unsafe { std::ffi::CString::from_raw(s) });
    }
}

/// Frees an error. NULL is ignored.
///
/// # Safety
/// `e` is NULL or an error from this library, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_error_free(e: *mut Error) {
    if !e.is_null() {
        // SAFETY: from `Box::into_raw` in `ffi::guard_with`, freed once (the caller's promise).
        drop(unsafe { Box::from_raw(e) });
    }
}

/// The kind of an error (`UPDATE_ERROR_KIND_*`: the exit codes of `update`); for NULL,
/// `UPDATE_ERROR_KIND_USAGE`.
///
/// # Safety
/// `e` is NULL or a live error from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_error_kind(e: *const Error) -> c_int {
    // SAFETY: NULL is checked by `as_ref`; otherwise the caller promises a live error.
    unsafe { e.as_ref() }.map_or(ErrorKind::Usage, |e| e.kind) as c_int
}

/// The message of an error (owned by the error: valid until `update_error_free`); for NULL, a
/// static message saying so.
///
/// # Safety
/// `e` is NULL or a live error from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_error_message(e: *const Error) -> *const c_char {
    // SAFETY: NULL is checked by `as_ref`; otherwise the caller promises a live error.
    match unsafe { e.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"update_error_message: argument `error` is NULL".as_ptr(),
    }
}

/// The stable name of a kind (`"io"`, `"cancelled"`, the `--json` names of `update`), static;
/// `"unknown"` for a number that is no kind.
#[unsafe(no_mangle)]
pub extern "C" fn update_error_kind_name(kind: c_int) -> *const c_char {
    match ErrorKind::from_code(kind) {
        Some(k) => kind_name_c(k),
        None => c"unknown".as_ptr(),
    }
}

fn kind_name_c(k: ErrorKind) -> *const c_char {
    let name: &'static std::ffi::CStr = match k {
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
    };
    debug_assert_eq!(name.to_str().ok(), Some(k.name()));
    name.as_ptr()
}
