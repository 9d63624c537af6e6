//! The one path every state-changing call takes: run, then audit the outcome, log, and return.

use update_core::audit::{AuditRecord, Outcome};
use update_core::{Error, ErrorKind, Result};

use crate::Updater;
use crate::log::Severity;

/// What a finished operation adds to its audit record, and the line it logs.
pub(crate) struct Done {
    /// The record, completed.
    pub record: AuditRecord,
    /// The log line's severity.
    pub severity: Severity,
    /// The log line.
    pub line: String,
}

impl Updater {
    /// Runs one state-changing operation and audits it.
    ///
    /// `record` is the operation's audit record with what is known before it runs (action,
    /// driver, subject). On success `done` completes it from the result and names the log line;
    /// on failure the record gets the error's outcome ([`outcome_of`]) and message, and the error
    /// is logged and returned.
    pub(crate) fn audited<T>(
        &self,
        record: AuditRecord,
        op: impl FnOnce() -> Result<T>,
        done: impl FnOnce(&T, AuditRecord) -> Done,
    ) -> Result<T> {
        match op() {
            Ok(value) => {
                let Done { record, severity, line } = done(&value, record);
                self.log(severity, &line);
                self.audit_event(record);
                Ok(value)
            }
            Err(e) => self.audit_failure(record, e),
        }
    }

    /// Audits `record` as refused or failed by `e` (its message), logs `e` and returns it.
    pub(crate) fn audit_failure<T>(&self, mut record: AuditRecord, e: Error) -> Result<T> {
        record.outcome = outcome_of(&e);
        self.audit_event(record.message(e.to_string()));
        self.fail(e)
    }
}

/// Refused (nothing changed: policy, verification, lock, usage) or failed.
pub(crate) fn outcome_of(e: &Error) -> Outcome {
    match e.kind() {
        ErrorKind::Verification
        | ErrorKind::Refused
        | ErrorKind::Busy
        | ErrorKind::NotImplemented
        | ErrorKind::NotSupported
        | ErrorKind::Usage
        | ErrorKind::Config
        | ErrorKind::Keyring => Outcome::Refused,
        _ => Outcome::Failed,
    }
}
