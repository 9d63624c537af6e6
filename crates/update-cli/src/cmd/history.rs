//! `update history`: the audit log as text or JSON. Every field of a record may carry text from
//! outside (versions, file names, tool messages): the text form escapes control characters.

use libupdate::Updater;
use update_core::Result;
use update_core::text::Untrusted;

/// `update history`.
///
/// # Errors
/// I/O errors naming the audit log.
pub fn history(updater: &Updater, json: bool, last: Option<usize>) -> Result<()> {
    // Streams the log (rotated files first), holding only the last N records.
    let update_core::audit::History { records, skipped } = updater.history(last)?;
    for s in &skipped {
        eprintln!("update: warning: audit log {}", Untrusted(&s.to_string()));
    }
    if json {
        return crate::json::print(crate::json::Doc::History, &records);
    }
    for r in &records {
        let action =
            serde_json::to_value(r.action).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let outcome =
            serde_json::to_value(r.outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let mut line = format!("{} {action:<13} {outcome:<8}", r.time);
        if let Some(s) = &r.subject {
            line.push_str(&format!(" {s}"));
        }
        if r.old.is_some() || r.new.is_some() {
            let show = |v: &Option<serde_json::Value>| v.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
            line.push_str(&format!(" {} -> {}", show(&r.old), show(&r.new)));
        }
        if let Some(m) = &r.message {
            line.push_str(&format!(" ({m})"));
        }
        crate::outln!("{}", Untrusted(&line));
    }
    Ok(())
}
