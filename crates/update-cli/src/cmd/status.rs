//! `update status`: slots, versions, boot state, and the device's update state (pending
//! update, source, schedule, last and next check). Exits 12 when the device fell back from a
//! failed update (docs/reference/exit-codes.md).

use libupdate::Updater;
use update_core::Result;
use update_core::driver::SlotState;
use update_core::text::Untrusted;

/// The exit code of `update status` when the device fell back from a failed update.
pub const FELL_BACK: u8 = 12;

/// `update status`; returns the exit code (0, or [`FELL_BACK`]).
///
/// # Errors
/// As [`Updater::status_report`].
pub fn status(updater: &Updater, json: bool) -> Result<u8> {
    let report = updater.status_report()?;
    let code = if report.status.fallback.is_some() { FELL_BACK } else { 0 };
    if json {
        crate::json::print(crate::json::Doc::Status, &report)?;
        return Ok(code);
    }
    let s = &report.status;
    let v = s.version.as_ref().map_or_else(|| "unknown".to_owned(), ToString::to_string);
    crate::outln!("driver:     {}", s.driver);
    crate::outln!("compatible: {}", s.compatible.as_deref().unwrap_or("-"));
    crate::outln!("version:    {v}");
    crate::outln!("booted:     {}", s.booted.as_deref().unwrap_or("unknown"));
    crate::outln!("next boot:  {}", s.primary.as_deref().unwrap_or("unknown"));
    if let Some(f) = &s.fallback {
        crate::outln!("FALLBACK:   {}", Untrusted(f));
    }
    match &report.pending {
        Some(p) => crate::outln!("pending:    {} in slot {} (boots at the next reboot)", p.version, p.slot),
        None => crate::outln!("pending:    -"),
    }
    crate::outln!("source:     {}", Untrusted(report.source.as_deref().unwrap_or("- (none configured)")));
    crate::outln!("schedule:   {}", report.schedule);
    match (&report.last_check, &report.last_result) {
        (Some(t), Some(r)) => crate::outln!("last check: {t} ({})", Untrusted(r)),
        (Some(t), None) => crate::outln!("last check: {t}"),
        _ => crate::outln!("last check: never"),
    }
    crate::outln!("next check: {}", report.next_check.as_deref().unwrap_or("- (schedule off)"));
    match &report.assignment {
        Some(a) => crate::outln!(
            "rollout:    deployment {}, wave {}: {} {} ({}) from {}",
            a.deployment,
            a.wave,
            match a.action {
                libupdate::fleet::AssignmentAction::Install => "install",
                libupdate::fleet::AssignmentAction::Hold => "hold",
                libupdate::fleet::AssignmentAction::Wait => "wait for the maintenance window to install",
                libupdate::fleet::AssignmentAction::Rollback => "aborted: roll back from",
                _ => "(an action this version does not know) for",
            },
            Untrusted(&a.target),
            Untrusted(&a.version),
            Untrusted(&a.allowed_from)
        ),
        None => crate::outln!("rollout:    -"),
    }
    if !report.failed_releases.is_empty() {
        crate::outln!("failed:     {} (not installed again)", report.failed_releases.join(", "));
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
        crate::outln!("slot {}:     {ver:<10} {state}{marks}", slot.name);
        for d in &slot.devices {
            crate::outln!("            {d}");
        }
    }
    for c in &s.components {
        let line = match (&c.status, &c.error) {
            (Some(st), _) => {
                let state = match st.state {
                    update_core::component::ComponentState::Absent => "absent",
                    update_core::component::ComponentState::Committed => "committed",
                    update_core::component::ComponentState::Installed => "installed, not active",
                    update_core::component::ComponentState::Trial => "on trial",
                };
                format!(
                    "{} {state}{}{}",
                    st.active.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
                    st.inactive.as_ref().map(|v| format!(" (other: {v})")).unwrap_or_default(),
                    st.detail.as_ref().map(|d| format!("; {}", Untrusted(d))).unwrap_or_default()
                )
            }
            (None, Some(e)) => format!("unknown: {}", Untrusted(e)),
            (None, None) => "unknown".to_owned(),
        };
        crate::outln!("component:  {} ({}) {line}", c.name, c.kind);
    }
    Ok(code)
}
