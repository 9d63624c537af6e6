//! `update history --verify`: checks the audit log's hash chain.

use libupdate::Updater;
use update_core::{Error, Result};

use crate::json::{self, Doc};

/// Walks the audit log and its rotated files and checks every record's seal and link; returns
/// the exit code.
///
/// With `--json` the report is printed whole, and a broken chain adds its `error` object to the
/// report (one document on stdout, exit 6) instead of a separate error document.
///
/// # Errors
/// [`Error::Verification`] (exit 6) when a record was edited, removed, inserted or reordered
/// (text output); I/O errors naming the file.
pub fn verify(updater: &Updater, json: bool) -> Result<u8> {
    let path = updater.paths().audit_log();
    let report = update_core::audit::verify(&path)?;
    let error = (!report.is_intact()).then(|| {
        Error::verification(
            format!("audit log {}", path.display()),
            format!("{} problem(s); the first: {}", report.problems.len(), report.problems[0]),
        )
    });
    if json {
        let mut doc = json::document(Doc::HistoryVerify, &report)?;
        let code = match (&error, doc.as_object_mut()) {
            (Some(e), Some(map)) => {
                let code = e.kind().exit_code();
                map.insert("error".into(), json::error_object(e.kind().as_str(), &e.to_string(), code));
                code
            }
            _ => 0,
        };
        crate::outln!("{}", json::pretty(&doc));
        return Ok(code);
    }
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
    match error {
        None => {
            crate::outln!("the audit log is intact");
            Ok(0)
        }
        Some(e) => Err(e),
    }
}
