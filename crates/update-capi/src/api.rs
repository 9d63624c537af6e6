//! The C entry points (`update_*`), as declared in include/update.h.
//!
//! Each takes its `err` argument (`ErrOut`), checks its pointers (module `ffi`) and runs the
//! operation (module `ops`) inside `ErrOut::run`, which catches panics: no panic crosses the
//! boundary. It returns 0 or the error's kind (`UPDATE_ERROR_KIND_*`); when `err` is not NULL it
//! receives NULL on success or an `update_error` to free with [`update_error_free`]. Strings
//! returned through `char **` are freed with [`update_free_string`].

#![allow(unsafe_code, reason = "the C entry points: `#[no_mangle]` and raw pointer arguments")]

use std::ffi::{CStr, OsStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Failure};
use crate::ffi::{self, ErrOut, no_panic};
use crate::ops::Handle;
use crate::progress::ProgressFn;

/// The ABI version: `(UPDATE_ABI_MAJOR << 16) | UPDATE_ABI_MINOR`. A program built against
/// major version M works with any library whose major is M and whose minor is at least the
/// one it was built with.
#[unsafe(no_mangle)]
pub extern "C" fn update_abi_version() -> u32 {
    no_panic(0, || (crate::UPDATE_ABI_MAJOR << 16) | crate::UPDATE_ABI_MINOR)
}

/// The library's version (the crate version, as `update --version` prints it); static, not freed.
#[unsafe(no_mangle)]
pub extern "C" fn update_version() -> *const c_char {
    const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    no_panic(VERSION.as_ptr(), || VERSION.as_ptr())
}

/// Opens the device under `root` (as `update --root ROOT`; `"/"` for the running system). The
/// root may be any bytes (a path), but must be an existing directory. Returns NULL on error.
/// The handle belongs to the calling thread (see docs/reference/c-api.md, "Threads").
///
/// # Safety
/// `root` is NULL or a NUL-terminated string; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_open(root: *const c_char, err: *mut *mut Error) -> *mut Handle {
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.run(std::ptr::null_mut(), || {
        // SAFETY: `root` is NULL or a NUL-terminated string (this function's contract).
        let root = unsafe { ffi::bytes(root, "root") }?;
        if root.is_empty() {
            return Err(Failure::usage("argument `root` is empty (use \"/\" for the running system)"));
        }
        let handle = Handle::open(Path::new(OsStr::from_bytes(root)))?;
        Ok(Box::into_raw(Box::new(handle)))
    })
    .0
}

/// Closes a handle from `update_open`. NULL is ignored. No call may run on it. Called from
/// another thread than the one that opened it, it frees nothing (the handle leaks).
///
/// # Safety
/// `handle` is NULL or from `update_open` and not closed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_close(handle: *mut Handle) {
    if handle.is_null() {
        return;
    }
    // SAFETY: from `Box::into_raw` in `update_open`, closed once (this function's contract).
    let h = unsafe { Box::from_raw(handle) };
    // Dropping runs driver and file destructors: a panic there must not cross either.
    no_panic((), move || {
        if h.owned_here() {
            drop(h);
        } else {
            // The updater is not `Send`: it is never dropped on a thread it does not belong to.
            std::mem::forget(h);
        }
    });
}

/// Reads a config key (one of `update config`'s keys: `source`, `schedule`, `log`, `verify`,
/// `secure`, `boot-retry-limit`, …) into `*value`: its value as text (`true`, `3`, `daily 3`, a
/// URL, a path), or NULL when the key is not set.
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
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (out, h, key) = unsafe { (ffi::out(value, "value")?, ffi::handle(handle)?, ffi::text(key, "key")?) };
        out.set(h.config_get(key)?)
    })
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
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (h, key, value) = unsafe { (ffi::handle(handle)?, ffi::text(key, "key")?, ffi::text(value, "value")?) };
        h.config_set(key, value)
    })
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
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (h, name, key) =
            unsafe { (ffi::handle(handle)?, ffi::text(name, "name")?, ffi::text(public_key, "public_key")?) };
        h.key_add(name, key)
    })
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
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (h, name, key) =
            unsafe { (ffi::handle(handle)?, ffi::text(name, "name")?, ffi::text(public_key, "public_key")?) };
        h.key_update(name, key)
    })
}

/// Deletes a trusted key (`update config key delete NAME`).
///
/// # Safety
/// `handle` is NULL or open; `name` NULL or a C string; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_key_delete(handle: *mut Handle, name: *const c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (h, name) = unsafe { (ffi::handle(handle)?, ffi::text(name, "name")?) };
        h.key_delete(name)
    })
}

/// Runs `op` on the handle and stores the JSON document it makes in `*json`.
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
unsafe fn document(
    handle: *mut Handle,
    json: *mut *mut c_char,
    err: *mut *mut Error,
    op: impl FnOnce(&Handle) -> crate::error::Result<String>,
) -> c_int {
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (out, h) = unsafe { (ffi::out(json, "json")?, ffi::handle(handle)?) };
        out.set(Some(op(h)?))
    })
}

/// The trusted keys as the `libupdate/key-list/1` document (`update config key list --json`).
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_key_list(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: the arguments are passed on under this function's contract, which is `document`'s.
    unsafe { document(handle, json, err, Handle::key_list) }
}

/// Checks for an update (`update --json`): the `libupdate/check/1` document.
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_check(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: the arguments are passed on under this function's contract, which is `document`'s.
    unsafe { document(handle, json, err, Handle::check) }
}

/// Installs the available update into the inactive slot (`update --now --json`; with
/// `UPDATE_INSTALL_NOREBOOT` in `flags`, `--noreboot`): the `libupdate/install/1` document.
///
/// `progress` (may be NULL) is called on this thread with `user_data` as the install runs;
/// `update_cancel` (from any thread, or from the callback) stops the install at its next
/// progress step with `UPDATE_ERROR_KIND_CANCELLED`, leaving the running system and boot state
/// unchanged. Unknown bits in `flags` are a usage error.
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
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    err.code(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says; the helpers
        // check for NULL.
        let (out, h) = unsafe { (ffi::out(json, "json")?, ffi::handle(handle)?) };
        if flags & !crate::UPDATE_INSTALL_NOREBOOT != 0 {
            return Err(Failure::usage(format!("unknown install flags {flags:#x}")));
        }
        let noreboot = flags & crate::UPDATE_INSTALL_NOREBOOT != 0;
        out.set(Some(h.install(noreboot, progress, user_data)?))
    })
}

/// Asks the install running on `handle` to stop (callable from any thread, also from the
/// progress callback). Without a running install it does nothing. Returns 0;
/// `UPDATE_ERROR_KIND_USAGE` for a NULL handle; `UPDATE_ERROR_KIND_NOT_SUPPORTED` from a library
/// built with `panic = "abort"` (cancelling unwinds the install; see docs/reference/c-api.md).
///
/// # Safety
/// `handle` is NULL or open (and not closed while this runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_cancel(handle: *const Handle) -> c_int {
    // SAFETY: NULL is no place to write an error to.
    let err = unsafe { ErrOut::new(std::ptr::null_mut()) };
    err.code(|| {
        // SAFETY: `handle` is NULL or open (this function's contract); `ffi::handle` checks NULL.
        unsafe { ffi::handle(handle) }?.cancel()
    })
}

/// The device's status (`update status --json`): the `libupdate/status/1` document. A device
/// that fell back from a failed update says so in `fallback` (the call still returns 0).
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_status(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: the arguments are passed on under this function's contract, which is `document`'s.
    unsafe { document(handle, json, err, Handle::status) }
}

/// The audit log (`update history --json`): the `libupdate/history/1` document.
///
/// # Safety
/// `handle` is NULL or open; `json` and `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_history(handle: *mut Handle, json: *mut *mut c_char, err: *mut *mut Error) -> c_int {
    // SAFETY: the arguments are passed on under this function's contract, which is `document`'s.
    unsafe { document(handle, json, err, Handle::history) }
}

/// Commits the booted slot (`update mark-good`).
///
/// # Safety
/// `handle` is NULL or open; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_mark_good(handle: *mut Handle, err: *mut *mut Error) -> c_int {
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    // SAFETY: `handle` is NULL or open (this function's contract); `ffi::handle` checks NULL.
    err.code(|| unsafe { ffi::handle(handle) }?.mark_good())
}

/// Makes the other slot primary again (`update rollback`).
///
/// # Safety
/// `handle` is NULL or open; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_rollback(handle: *mut Handle, err: *mut *mut Error) -> c_int {
    // SAFETY: `err` is NULL or writable (this function's contract).
    let err = unsafe { ErrOut::new(err) };
    // SAFETY: `handle` is NULL or open (this function's contract); `ffi::handle` checks NULL.
    err.code(|| unsafe { ffi::handle(handle) }?.rollback())
}

/// Frees a string this library returned. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string from this library, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: from `CString::into_raw` in `ffi::Out::set`, freed once (this function's contract).
        let s = unsafe { std::ffi::CString::from_raw(s) };
        no_panic((), move || drop(s));
    }
}

/// Frees an error. NULL is ignored.
///
/// # Safety
/// `e` is NULL or an error from this library, not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_error_free(e: *mut Error) {
    if !e.is_null() {
        // SAFETY: from `Box::into_raw` in `ErrOut::run`, freed once (this function's contract).
        let e = unsafe { Box::from_raw(e) };
        no_panic((), move || drop(e));
    }
}

/// The kind of an error (`UPDATE_ERROR_KIND_*`: the exit codes of `update`); for NULL,
/// `UPDATE_ERROR_KIND_USAGE`.
///
/// # Safety
/// `e` is NULL or a live error from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_error_kind(e: *const Error) -> c_int {
    // SAFETY: NULL is checked by `as_ref`; otherwise this function's contract promises a live error.
    let e = unsafe { e.as_ref() };
    no_panic(ErrorKind::Failure as c_int, || e.map_or(ErrorKind::Usage, |e| e.kind) as c_int)
}

/// The message of an error (owned by the error: valid until `update_error_free`); for NULL, a
/// static message saying so.
///
/// # Safety
/// `e` is NULL or a live error from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn update_error_message(e: *const Error) -> *const c_char {
    const NULL_ERROR: &CStr = c"update_error_message: argument `error` is NULL";
    // SAFETY: NULL is checked by `as_ref`; otherwise this function's contract promises a live error.
    let e = unsafe { e.as_ref() };
    no_panic(NULL_ERROR.as_ptr(), || e.map_or(NULL_ERROR.as_ptr(), |e| e.message.as_ptr()))
}

/// The stable name of a kind (`"io"`, `"cancelled"`: the `--json` names of `update`), static;
/// `"unknown"` for a number that is no kind.
#[unsafe(no_mangle)]
pub extern "C" fn update_error_kind_name(kind: c_int) -> *const c_char {
    no_panic(c"unknown".as_ptr(), || ErrorKind::from_code(kind).map_or(c"unknown".as_ptr(), |k| k.c_name().as_ptr()))
}
