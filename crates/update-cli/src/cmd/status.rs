//! `update status`, `update history`, `update drivers`, `update mark-good`, `update rollback`.

use libupdate::Updater;
use update_core::Result;
use update_core::driver::SlotState;

/// `update status`.
///
/// # Errors
/// As [`Updater::status`].
pub fn status(updater: &Updater, json: bool) -> Result<()> {
    let s = updater.status()?;
    if json {
        return crate::print_json(&s);
    }
    let v = s.version.as_ref().map_or_else(|| "unknown".to_owned(), ToString::to_string);
    println!("driver:     {}", s.driver);
    println!("compatible: {}", s.compatible.as_deref().unwrap_or("-"));
    println!("version:    {v}");
    println!("booted:     {}", s.booted.as_deref().unwrap_or("unknown"));
    println!("next boot:  {}", s.primary.as_deref().unwrap_or("unknown"));
    if let Some(f) = &s.fallback {
        println!("FALLBACK:   {f}");
    }
    for slot in &s.slots {
        let state = match slot.state {
            SlotState::Good => "good".to_owned(),
            SlotState::Trying => match slot.tries_left {
                Some(n) => format!("trying ({n} boot attempts left)"),
                None => "trying".to_owned(),
            },
            SlotState::Bad => "bad".to_owned(),
            SlotState::Unknown => "unknown".to_owned(),
        };
        let marks =
            format!("{}{}", if slot.booted { " booted" } else { "" }, if slot.primary { " primary" } else { "" });
        let ver = slot.version.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
        println!("slot {}:     {ver:<10} {state}{marks}", slot.name);
        for d in &slot.devices {
            println!("            {d}");
        }
    }
    Ok(())
}

/// `update history`.
///
/// # Errors
/// As [`Updater::history`].
pub fn history(updater: &Updater, json: bool, last: Option<usize>) -> Result<()> {
    let mut records = updater.history()?;
    if let Some(n) = last {
        records = records.split_off(records.len().saturating_sub(n));
    }
    if json {
        return crate::print_json(&records);
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
        println!("{line}");
    }
    Ok(())
}

/// `update drivers`.
///
/// # Errors
/// Only when JSON output fails.
pub fn drivers(updater: &Updater, json: bool, markdown: bool) -> Result<()> {
    let rows = updater.drivers();
    if json {
        return crate::print_json(&rows);
    }
    if markdown {
        print!("{}", libupdate::registry::markdown_matrix(&rows));
        return Ok(());
    }
    for r in &rows {
        let caps: Vec<&str> = r.capabilities.iter().map(update_core::driver::Capability::as_str).collect();
        println!("{:<9} {:<10} {}", r.name, r.state, if caps.is_empty() { "-".to_owned() } else { caps.join(", ") });
        if !r.detail.is_empty() {
            println!("{:<9} {:<10} {}", "", "", r.detail);
        }
    }
    Ok(())
}

/// `update mark-good`.
///
/// # Errors
/// As [`Updater::mark_good`].
pub fn mark_good(updater: &Updater) -> Result<()> {
    let c = updater.mark_good()?;
    println!("{}", c.message);
    Ok(())
}

/// `update rollback`.
///
/// # Errors
/// As [`Updater::rollback`].
pub fn rollback(updater: &Updater) -> Result<()> {
    let c = updater.rollback()?;
    println!("{}", c.message);
    Ok(())
}
