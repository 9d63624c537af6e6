//! Slot operations: `update mark-good`, `update cancel`, `update mark-bad`, `update rollback`,
//! and reboots.

use update_core::audit::{AuditAction, Outcome};
use update_core::driver::{Driver, SlotChange, SlotState, Status};
use update_core::{Error, Result, atomic};

use crate::audited::Done;
use crate::log::Severity;
use crate::{Updater, fleet};

/// How long an operation waits for the install lock before reporting "busy".
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Updater {
    /// Reboots through the driver (audited).
    ///
    /// # Errors
    /// [`update_core::Error::NotImplemented`] with no driver; the driver's reboot errors.
    pub fn reboot(&self) -> Result<()> {
        self.with_driver(|d| {
            self.audit_event(self.record(AuditAction::Reboot, Outcome::Ok).driver(d.name()));
            d.reboot(&self.context()).or_else(|e| self.fail(e))
        })
    }

    /// `update mark-good`.
    ///
    /// # Errors
    /// [`update_core::Error::NotImplemented`] with no driver; driver errors.
    /// Refused while an installed update waits for its reboot: committing the running slot would
    /// silently cancel it (`update cancel` does that on purpose).
    pub fn mark_good(&self) -> Result<SlotChange> {
        self.slot_operation(AuditAction::MarkGood, |d, u| {
            if let Some((slot, version)) = pending(&d.status(&u.context())?) {
                return Err(Error::Refused(format!(
                    "an installed update ({version} in slot {slot}) waits for its reboot; mark-good would cancel \
                     it: reboot into it first, or run `update cancel` to drop it"
                )));
            }
            d.mark_good(&u.context())
        })
    }

    /// `update cancel`: drops an installed update that waits for its reboot, so the running slot
    /// stays the one that boots (audited as a switch).
    ///
    /// # Errors
    /// [`Error::Refused`] when no update is pending; driver errors.
    pub fn cancel(&self) -> Result<SlotChange> {
        self.slot_operation(AuditAction::Switch, |d, u| {
            let Some((slot, version)) = pending(&d.status(&u.context())?) else {
                return Err(Error::Refused("no installed update waits for a reboot: nothing to cancel".into()));
            };
            let change = d.mark_good(&u.context())?;
            Ok(SlotChange {
                message: format!("cancelled the pending update {version} in slot {slot}; {}", change.message),
                ..change
            })
        })
    }

    /// `update rollback`.
    ///
    /// # Errors
    /// [`update_core::Error::NotImplemented`] with no driver; driver errors.
    pub fn rollback(&self) -> Result<SlotChange> {
        self.slot_operation(AuditAction::Rollback, |d, u| d.rollback(&u.context()))
    }

    /// `update mark-bad`: the running slot is not booted again; the other (committed) slot
    /// boots next. Its release is recorded as failed on this device, so it is never installed
    /// again.
    ///
    /// # Errors
    /// [`update_core::Error::NotImplemented`] with no driver; [`Error::NotSupported`] by a driver
    /// without the capability; [`Error::Refused`] when the running slot holds the only
    /// committed version.
    pub fn mark_bad(&self) -> Result<SlotChange> {
        let mut version = None;
        let change = self.slot_operation(AuditAction::MarkBad, |d, u| {
            let status = d.status(&u.context())?;
            version = status.slots.iter().find(|s| s.booted).and_then(|s| s.version.as_ref()).map(ToString::to_string);
            d.mark_bad(&u.context())
        })?;
        if let Some(v) = version {
            self.remember_failed(&v, "marked bad with `update mark-bad`");
        }
        Ok(change)
    }

    fn slot_operation(
        &self,
        action: AuditAction,
        op: impl FnOnce(&mut dyn Driver, &Self) -> Result<SlotChange>,
    ) -> Result<SlotChange> {
        self.with_driver(|driver| {
            let record = self.record(action, Outcome::Ok).driver(driver.name());
            let change = self.audited(
                record,
                || {
                    let _lock = atomic::Lock::acquire_within(&self.paths.lock_file(), LOCK_WAIT)?;
                    op(driver, self)
                },
                |change, record| Done {
                    record: record.subject(&change.slot).message(&change.message),
                    severity: Severity::Notice,
                    line: change.message.clone(),
                },
            )?;
            if self.fleet.is_some() {
                let version = driver
                    .status(&self.context())
                    .ok()
                    .and_then(|s| s.slots.into_iter().find(|x| x.name == change.slot).and_then(|x| x.version))
                    .map(|v| v.to_string());
                match action {
                    AuditAction::MarkGood => self.report(fleet::EventKind::Committed, version, None),
                    AuditAction::Rollback => {
                        self.report(fleet::EventKind::RolledBack, version, Some(change.message.clone()));
                    }
                    AuditAction::MarkBad => {
                        self.report(fleet::EventKind::Failed, version, Some(change.message.clone()));
                    }
                    _ => {}
                }
            }
            Ok(change)
        })
    }
}

/// The slot and version of an installed update that waits for its reboot, if any.
#[must_use]
pub fn pending(status: &Status) -> Option<(String, String)> {
    status.slots.iter().find(|s| s.primary && !s.booted && s.state == SlotState::Trying).map(|s| {
        (s.name.clone(), s.version.as_ref().map_or_else(|| "an unknown version".to_owned(), ToString::to_string))
    })
}
