//! The audit log: one JSON object per line for every state-changing action, append-only.
//!
//! Records never carry private material (keys are logged by name and key id, never a secret).
//! The format is documented in docs/reference/audit-log.md and read back by `update history`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::ensure_dir;
use crate::error::{Error, Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A config key changed.
    ConfigChange,
    /// A key was added to the keyring.
    KeyAdd,
    /// A key was replaced.
    KeyUpdate,
    /// A key was removed.
    KeyDelete,
    /// The source was checked.
    Check,
    /// An update was installed into a slot.
    Install,
    /// The boot environment was switched to another slot.
    Switch,
    /// The running slot was committed.
    MarkGood,
    /// A slot was marked bad.
    MarkBad,
    /// A manual rollback to the other slot.
    Rollback,
    /// The bootloader fell back to the other slot after failed boots.
    Fallback,
    /// A reboot was requested.
    Reboot,
    /// A health check ran.
    HealthCheck,
    /// The daemon started or stopped.
    Daemon,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused before anything changed (policy, verification, lock).
    Refused,
    /// Failed.
    Failed,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC time.
    pub time: String,
    /// Who: `uid=0 pid=123 cmd=update` or `daemon`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: Outcome,
    /// What it acted on (`source`, a key name, a slot, a version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The value before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    /// The value after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    /// The driver that acted, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// A human-readable message (the error for refusals and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AuditRecord {
    /// A record with the required fields; fill the optional ones with the builder methods.
    #[must_use]
    pub fn new(time: String, actor: String, action: AuditAction, outcome: Outcome) -> Self {
        Self { time, actor, action, outcome, subject: None, old: None, new: None, driver: None, message: None }
    }

    /// Sets the subject.
    #[must_use]
    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }

    /// Sets old and new values.
    #[must_use]
    pub fn change(mut self, old: Option<serde_json::Value>, new: Option<serde_json::Value>) -> Self {
        self.old = old;
        self.new = new;
        self
    }

    /// Sets the message.
    #[must_use]
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }

    /// Sets the driver.
    #[must_use]
    pub fn driver(mut self, d: impl Into<String>) -> Self {
        self.driver = Some(d.into());
        self
    }
}

/// Appends one record as a single `write` on an `O_APPEND` file, then fsyncs it.
///
/// # Errors
/// [`Error::Io`] naming the log file.
pub fn append(path: &Path, record: &AuditRecord) -> Result<()> {
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    let mut line = serde_json::to_vec(record).map_err(|e| Error::Other(e.to_string()))?;
    line.push(b'\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| Error::io("open audit log", path, e))?;
    f.write_all(&line).map_err(|e| Error::io("append to audit log", path, e))?;
    f.sync_data().map_err(|e| Error::io("fsync audit log", path, e))
}

/// Reads every record. A torn last line (a crash mid-append) is skipped; any other bad line
/// is an error naming its line number.
///
/// # Errors
/// [`Error::Io`] or [`Error::ConfigParse`] naming the file and line.
pub fn read_all(path: &Path) -> Result<Vec<AuditRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read audit log", path, e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => {
                return Err(Error::ConfigParse { path: path.to_owned(), message: format!("line {}: {e}", i + 1) });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_and_read_back_and_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log/audit.jsonl");
        let r = AuditRecord::new("t".into(), "me".into(), AuditAction::ConfigChange, Outcome::Ok)
            .subject("source")
            .change(Some("a".into()), Some("b".into()));
        append(&p, &r).unwrap();
        append(&p, &r).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"time\":\"x\",\"act").unwrap();
        let back = read_all(&p).unwrap();
        assert_eq!(back, vec![r.clone(), r]);
    }
}
