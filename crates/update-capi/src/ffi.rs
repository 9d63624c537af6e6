//! The pointer checks of the boundary: C strings in, strings and errors out, handles, and the
//! guard that turns results and panics into return codes. Every `unsafe` block of the library
//! that reads or writes a caller's pointer is here.

#![allow(unsafe_code, reason = "reading and writing the caller's pointers is what this module is for")]

use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, ErrorKind, Failure, Result};
use crate::ops::Handle;

fn null(what: &str) -> Failure {
    Failure::usage(format!("argument `{what}` is NULL"))
}

/// The bytes of a C string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const c_char, what: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: `p` is not NULL, and the caller promises a NUL-terminated string valid for 'a.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A C string argument as UTF-8 text.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: the caller's promise is passed on unchanged.
    let b = unsafe { bytes(p, what) }?;
    std::str::from_utf8(b).map_err(|e| {
        Failure::usage(format!("argument `{what}` is not valid UTF-8 (bad byte at offset {})", e.valid_up_to()))
    })
}

/// The handle behind a pointer.
///
/// # Safety
/// `h` is NULL or a pointer `update_open` returned that `update_close` has not freed, for `'a`.
pub(crate) unsafe fn handle<'a>(h: *const Handle) -> Result<&'a Handle> {
    // SAFETY: not NULL (checked by `as_ref`), and the caller promises a live handle; all access
    // through it is shared (`Handle` guards its updater with a mutex).
    unsafe { h.as_ref() }.ok_or_else(|| null("handle"))
}

/// Where a string result goes (`char **`).
pub(crate) struct Out(*mut *mut c_char);

/// Checks an out-pointer and clears what it points to (`*out = NULL`), so a failed call leaves
/// nothing to free.
///
/// # Safety
/// `p` is NULL or valid for writing one pointer until the call returns.
pub(crate) unsafe fn out(p: *mut *mut c_char, what: &str) -> Result<Out> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: not NULL, and the caller promises it is writable.
    unsafe { p.write(std::ptr::null_mut()) };
    Ok(Out(p))
}

impl Out {
    /// Stores `s` (NULL for `None`); the caller frees it with `update_string_free`.
    pub(crate) fn set(self, s: Option<String>) -> Result<()> {
        let raw = match s {
            None => std::ptr::null_mut(),
            Some(s) => CString::new(s)
                .map_err(|_| Failure::new(ErrorKind::Failure, "a result holds a NUL character"))?
                .into_raw(),
        };
        // SAFETY: `self.0` was checked by `out`, whose caller promised it writable for this call.
        unsafe { self.0.write(raw) };
        Ok(())
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Where an error goes (`update_error **err`): checked and cleared once, then filled by
/// [`ErrOut::code`] or [`ErrOut::run`] when the call fails.
pub(crate) struct ErrOut(*mut *mut Error);

impl ErrOut {
    /// Takes the caller's `err` argument and sets `*err = NULL` (when `err` is not NULL).
    ///
    /// # Safety
    /// `err` is NULL or valid for writing one pointer until the call returns.
    pub(crate) unsafe fn new(err: *mut *mut Error) -> Self {
        if !err.is_null() {
            // SAFETY: not NULL, and the caller promises it is writable.
            unsafe { err.write(std::ptr::null_mut()) };
        }
        Self(err)
    }

    /// Runs `f`, catching a panic; on failure stores an `update_error` in `*err` (when `err` is
    /// not NULL) and returns `fallback` with the error's kind; on success the value and 0.
    pub(crate) fn run<T>(self, fallback: T, f: impl FnOnce() -> Result<T>) -> (T, c_int) {
        let failure = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(v)) => return (v, ErrorKind::Ok as c_int),
            Ok(Err(e)) => e,
            Err(payload) => Failure::new(
                ErrorKind::Failure,
                format!("internal error (a bug in libupdate, please report it): {}", panic_message(payload.as_ref())),
            ),
        };
        let code = failure.kind as c_int;
        if !self.0.is_null() {
            let boxed = Box::into_raw(Box::new(failure.into_error()));
            // SAFETY: `self.0` is not NULL and writable until the call returns (the promise made
            // to `ErrOut::new`); the caller frees the error with `update_error_free`.
            unsafe { self.0.write(boxed) };
        }
        (fallback, code)
    }

    /// [`ErrOut::run`] for calls that return only a code.
    pub(crate) fn code(self, f: impl FnOnce() -> Result<()>) -> c_int {
        self.run((), f).1
    }
}

/// Runs `f`, returning `fallback` if it panics: for the calls that have no error to report.
pub(crate) fn no_panic<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}
