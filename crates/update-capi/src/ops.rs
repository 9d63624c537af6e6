//! The operations, in safe Rust: what each entry point of [`crate::api`] does once its
//! arguments are checked.

#![forbid(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::ThreadId;

use libupdate::{Setting, Updater};
use update_cli::json::{self, Doc};
use update_core::audit::{AuditAction, Outcome};
use update_core::driver::NoProgress;
use update_core::keyring::PublicKey;
use update_core::{KeyName, Paths};

use crate::error::{ErrorKind, Failure, Result};
use crate::progress::{CallbackProgress, Cancelled, ProgressFn};

/// An open device (opaque; from `update_open`, freed by `update_close`).
///
/// A handle belongs to the thread that opened it: a call from another thread fails with
/// `UPDATE_ERROR_KIND_USAGE`, except `update_cancel`. A call made while another runs on the same
/// handle (from inside a progress callback) fails with `UPDATE_ERROR_KIND_BUSY`.
// Inside: the `libupdate::Updater` (not `Send`: its driver may hold anything, hence the thread
// rule) and the cancel flag of its install (an atomic, hence `update_cancel` from any thread).
pub struct Handle {
    owner: ThreadId,
    cancel: Arc<AtomicBool>,
    updater: Mutex<Updater>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl Handle {
    /// Opens the device layout under `root` (as `update --root ROOT`; `/` is the running system)
    /// with the drivers of the `update` binary.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Failure::new(ErrorKind::Io, format!("open root {}: not a directory", root.display()))),
            Err(e) => return Err(Failure::new(ErrorKind::Io, format!("open root {}: {e}", root.display()))),
        }
        let updater = Updater::open(Paths::new(root), update_cli::drivers())?;
        Ok(Self {
            owner: std::thread::current().id(),
            cancel: Arc::new(AtomicBool::new(false)),
            updater: Mutex::new(updater),
        })
    }

    /// Whether the calling thread is the one that opened the handle.
    pub(crate) fn owned_here(&self) -> bool {
        std::thread::current().id() == self.owner
    }

    fn lock(&self) -> Result<MutexGuard<'_, Updater>> {
        if !self.owned_here() {
            return Err(Failure::usage(
                "this handle was opened on another thread (a handle belongs to its thread; only update_cancel may be called from others)",
            ));
        }
        match self.updater.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::WouldBlock) => Err(Failure::new(
                ErrorKind::Busy,
                "this handle is in use by another call (calls on one handle do not overlap)",
            )),
            // A panic or a cancelled install unwound through an earlier call: the updater is
            // still whole (its driver is probed again), so the handle stays usable.
            Err(TryLockError::Poisoned(p)) => {
                self.updater.clear_poison();
                Ok(p.into_inner())
            }
        }
    }

    /// Asks the running install to stop at its next progress step.
    ///
    /// Cancelling unwinds the install out of the driver, so a library built with `panic =
    /// "abort"` (the workspace's `release` profile) cannot do it and says so; the `release-capi`
    /// profile builds it with unwinding.
    pub(crate) fn cancel(&self) -> Result<()> {
        if cfg!(panic = "abort") {
            return Err(Failure::new(
                ErrorKind::NotSupported,
                "this libupdate was built with panic=abort and cannot cancel an install (build it with `--profile release-capi`)",
            ));
        }
        self.cancel.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// A stored setting by its name (`libupdate::settings::KEYS`): strings as they are,
    /// numbers and booleans as JSON text, `None` when unset.
    pub(crate) fn config_get(&self, key: &str) -> Result<Option<String>> {
        let stored = self.lock()?.stored_config()?;
        Ok(match Setting::get(&stored, key)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// `update config KEY VALUE`: the value is parsed by the command line's own parser.
    pub(crate) fn config_set(&self, key: &str, value: &str) -> Result<()> {
        let setting = update_cli::cmd::config::parse_setting(key, value)?;
        Ok(self.lock()?.set(&setting)?)
    }

    pub(crate) fn key_add(&self, name: &str, key: &str) -> Result<()> {
        let (name, key) = (KeyName::new(name)?, PublicKey::parse(key)?);
        Ok(self.lock()?.key_add(&name, key)?)
    }

    pub(crate) fn key_update(&self, name: &str, key: &str) -> Result<()> {
        let (name, key) = (KeyName::new(name)?, PublicKey::parse(key)?);
        Ok(self.lock()?.key_update(&name, key)?)
    }

    pub(crate) fn key_delete(&self, name: &str) -> Result<()> {
        let name = KeyName::new(name)?;
        Ok(self.lock()?.key_delete(&name)?)
    }

    pub(crate) fn key_list(&self) -> Result<String> {
        document(Doc::KeyList, &self.lock()?.keys())
    }

    pub(crate) fn check(&self) -> Result<String> {
        let report = self.lock()?.check()?;
        document(Doc::Check, &report)
    }

    pub(crate) fn status(&self) -> Result<String> {
        let report = self.lock()?.status_report()?;
        document(Doc::Status, &report)
    }

    pub(crate) fn history(&self) -> Result<String> {
        let history = self.lock()?.history(None)?;
        document(Doc::History, &history.records)
    }

    pub(crate) fn mark_good(&self) -> Result<()> {
        self.lock()?.mark_good()?;
        Ok(())
    }

    pub(crate) fn rollback(&self) -> Result<()> {
        self.lock()?.rollback()?;
        Ok(())
    }

    /// `update --now` (with `noreboot`: `--noreboot`), reporting progress to `callback` and
    /// stopping at the next progress step after [`Handle::cancel`].
    pub(crate) fn install(&self, noreboot: bool, callback: ProgressFn, user_data: *mut c_void) -> Result<String> {
        let mut u = self.lock()?;
        self.cancel.store(false, Ordering::SeqCst);
        u.set_progress(Box::new(CallbackProgress::new(callback, user_data, Arc::clone(&self.cancel))));
        let outcome = catch_unwind(AssertUnwindSafe(|| u.install_now(noreboot)));
        u.set_progress(Box::new(NoProgress));
        self.cancel.store(false, Ordering::SeqCst);
        match outcome {
            Ok(report) => document(Doc::Install, &report?),
            Err(payload) if payload.is::<Cancelled>() => {
                let message = "install cancelled by the caller (update_cancel); the running system is unchanged";
                u.audit_event(u.record(AuditAction::Install, Outcome::Failed).message(message));
                u.log(libupdate::Severity::Warning, message);
                Err(Failure::new(ErrorKind::Cancelled, message))
            }
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// The `--json` document of `update`, as text (`update … --json` prints the same).
fn document<T: serde::Serialize + ?Sized>(doc: Doc, value: &T) -> Result<String> {
    Ok(json::pretty(&json::document(doc, value)?))
}
