//! `update drivers`: every known driver, whether it is available here, and what it can do.

use libupdate::Updater;
use update_core::Result;
use update_core::text::Untrusted;

/// `update drivers`.
///
/// # Errors
/// [`update_core::Error::Usage`] for --markdown with --json; JSON output errors.
pub fn drivers(updater: &Updater, json: bool, markdown: bool) -> Result<()> {
    if json && markdown {
        return Err(update_core::Error::Usage("--markdown and --json exclude each other".into()));
    }
    let rows = updater.drivers();
    if json {
        return crate::json::print(crate::json::Doc::Drivers, &rows);
    }
    if markdown {
        crate::out!("{}", libupdate::registry::markdown_matrix(&rows));
        return Ok(());
    }
    for r in &rows {
        let mut caps: Vec<String> = r.capabilities.iter().map(|c| c.as_str().to_owned()).collect();
        caps.extend(r.components.iter().map(|k| format!("component:{k}")));
        crate::outln!(
            "{:<9} {:<10} {}",
            r.name,
            r.state,
            if caps.is_empty() { "-".to_owned() } else { caps.join(", ") }
        );
        if !r.detail.is_empty() {
            crate::outln!("{:<9} {:<10} {}", "", "", Untrusted(&r.detail));
        }
    }
    Ok(())
}
