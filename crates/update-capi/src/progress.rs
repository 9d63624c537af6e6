//! The caller's progress callback as a [`Progress`] reporter, and cancellation.
//!
//! Cancellation is cooperative: `update_cancel` sets a flag that the reporter reads at every
//! progress step; when it is set, the step unwinds (with a [`Cancelled`] payload, without the
//! panic hook) out of the driver to `update_install`, which reports `cancelled`. Every progress
//! step of the drivers comes before the one atomic switch of the boot state (and a target slot
//! is marked unbootable while it is written), so a cancelled install leaves the running system
//! and its boot state as they were; the lock is released as the stack unwinds.

#![allow(unsafe_code, reason = "calling the caller's C function pointer")]

use std::cell::Cell;
use std::ffi::{CString, c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use update_core::driver::Progress;

use crate::{UPDATE_PROGRESS_ADVANCE, UPDATE_PROGRESS_FINISH, UPDATE_PROGRESS_START};

/// The C progress callback: `user_data`, the event (`UPDATE_PROGRESS_*`), the phase's name,
/// bytes done and bytes in the phase (0 when unknown).
pub type ProgressFn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, event: c_int, phase: *const std::ffi::c_char, done: u64, total: u64),
>;

/// The unwind payload of a cancelled install.
#[derive(Debug)]
pub(crate) struct Cancelled;

/// Calls the callback (if any) and checks the cancel flag at every step.
pub(crate) struct CallbackProgress {
    callback: ProgressFn,
    user_data: *mut c_void,
    cancel: Arc<AtomicBool>,
    phase: std::cell::RefCell<CString>,
    done: Cell<u64>,
    total: Cell<u64>,
    percent: Cell<Option<u64>>,
}

impl CallbackProgress {
    pub(crate) fn new(callback: ProgressFn, user_data: *mut c_void, cancel: Arc<AtomicBool>) -> Self {
        Self {
            callback,
            user_data,
            cancel,
            phase: std::cell::RefCell::new(CString::default()),
            done: Cell::new(0),
            total: Cell::new(0),
            percent: Cell::new(None),
        }
    }

    fn check_cancel(&self) {
        if self.cancel.load(Ordering::SeqCst) {
            std::panic::resume_unwind(Box::new(Cancelled));
        }
    }

    fn emit(&self, event: c_int) {
        if let Some(cb) = self.callback {
            let phase = self.phase.borrow();
            // SAFETY: the caller gave this function pointer and `user_data` to `update_install`
            // for the duration of the call, which is still running; `phase` is a valid C
            // string that outlives the call (the callback must copy it to keep it).
            unsafe { cb(self.user_data, event, phase.as_ptr(), self.done.get(), self.total.get()) };
        }
    }
}

impl Progress for CallbackProgress {
    fn start(&self, label: &str, total: u64) {
        self.check_cancel();
        *self.phase.borrow_mut() = CString::new(label.replace('\0', "")).unwrap_or_default();
        self.done.set(0);
        self.total.set(total);
        self.percent.set(Some(0));
        self.emit(UPDATE_PROGRESS_START);
    }

    fn advance(&self, n: u64) {
        self.check_cancel();
        let done = self.done.get().saturating_add(n);
        self.done.set(done);
        let percent = (done.min(self.total.get()) * 100).checked_div(self.total.get());
        if percent.is_none() || percent != self.percent.get() {
            self.percent.set(percent);
            self.emit(UPDATE_PROGRESS_ADVANCE);
        }
    }

    fn finish(&self) {
        self.emit(UPDATE_PROGRESS_FINISH);
        self.check_cancel();
    }
}
