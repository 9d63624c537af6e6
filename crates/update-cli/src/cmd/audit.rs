//! `update history --verify`: checks the audit log's hash chain.

use libupdate::Updater;
use update_core::{Error, Result};

/// Walks the audit log and its rotated files and checks every record's seal and link.
///
/// # Errors
/// [`Error::Verification`] (exit 6) when a record was edited, removed, inserted or reordered;
/// I/O errors naming the file.
pub fn verify(updater: &Updater, json: bool) -> Result<()> {
    let path = updater.paths().audit_log();
    let report = update_core::audit::verify(&path)?;
    if json {
        crate::print_json(&report)?;
    } else {
        for note in &report.notes {
            crate::outln!("note: {note}");
        }
        for problem in &report.problems {
            crate::outln!("TAMPERED: {problem}");
        }
        let files = report.files.iter().filter(|f| f.exists()).count();
        crate::outln!(
            "{} record(s) in {files} file(s); last hash {}",
            report.records,
            report.last_hash.as_deref().unwrap_or("(none)")
        );
    }
    if report.is_intact() {
        if !json {
            crate::outln!("the audit log is intact");
        }
        Ok(())
    } else {
        Err(Error::verification(
            format!("audit log {}", path.display()),
            format!("{} problem(s); the first: {}", report.problems.len(), report.problems[0]),
        ))
    }
}
