//! `update mark-good`, `update cancel`, `update mark-bad`, `update rollback`.

use libupdate::Updater;
use update_core::Result;
use update_core::driver::SlotChange;

/// Prints what `command` changed (text, or a `change` document with `--json`).
fn report(json: bool, command: &str, c: &SlotChange) -> Result<()> {
    crate::json::changed(json, command, serde_json::json!({ "slot": c.slot }), &c.message)
}

/// `update mark-good`.
///
/// # Errors
/// As [`Updater::mark_good`].
pub fn mark_good(updater: &Updater, json: bool) -> Result<()> {
    report(json, "mark-good", &updater.mark_good()?)
}

/// `update rollback`.
///
/// # Errors
/// As [`Updater::rollback`].
pub fn rollback(updater: &Updater, json: bool) -> Result<()> {
    report(json, "rollback", &updater.rollback()?)
}

/// `update cancel`.
///
/// # Errors
/// As [`Updater::cancel`].
pub fn cancel(updater: &Updater, json: bool) -> Result<()> {
    report(json, "cancel", &updater.cancel()?)
}

/// `update mark-bad`.
///
/// # Errors
/// As [`Updater::mark_bad`].
pub fn mark_bad(updater: &Updater, json: bool) -> Result<()> {
    report(json, "mark-bad", &updater.mark_bad()?)
}
