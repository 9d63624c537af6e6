//! What an A/B adapter remembers about its slots when the tool does not say — the version each
//! slot holds and the slot of an install that is not committed yet (to tell a fallback) — in
//! [`SlotRecords`] (the type the native driver keeps its own in), in a file of its own in the state directory
//! (`/var/lib/update/`); and the status of slots A and B from those records and the bootloader.

use update_core::Version;
use update_core::driver::{SlotState, SlotStatus, Status};
use update_core::slot_records::SlotRecords;

/// What an A/B adapter read from the system for `status`.
#[derive(Debug, Clone, Copy)]
pub struct AbBoot<'a> {
    /// The slot running now.
    pub booted: Option<&'a str>,
    /// The slot the bootloader boots next.
    pub primary: Option<&'a str>,
    /// Whether the primary slot is on trial.
    pub trial: bool,
    /// The boot attempts a slot on trial has left.
    pub tries_left: u32,
}

/// The status of slots A and B: a pending install that is neither primary nor running failed
/// to boot (a fallback); the primary on trial is trying; a slot that runs, boots next or
/// holds a recorded install is good. `version` reads a recorded name as a version.
#[must_use]
pub fn ab_status(
    records: &SlotRecords,
    driver: &str,
    boot: &AbBoot<'_>,
    version: fn(&str) -> Option<Version>,
    devices: &dyn Fn(&str) -> Vec<String>,
) -> Status {
    let failed =
        records.pending.clone().filter(|p| Some(p.as_str()) != boot.primary && Some(p.as_str()) != boot.booted);
    let slots = ["A", "B"]
        .iter()
        .map(|&s| {
            let primary = boot.primary == Some(s);
            let booted = boot.booted == Some(s);
            let state = if failed.as_deref() == Some(s) {
                SlotState::Bad
            } else if primary && boot.trial {
                SlotState::Trying
            } else if booted || primary || records.slots.contains_key(s) {
                SlotState::Good
            } else {
                SlotState::Unknown
            };
            SlotStatus {
                name: s.into(),
                tries_left: (state == SlotState::Trying).then_some(boot.tries_left),
                state,
                version: records.get(s).and_then(|r| version(&r.version)),
                booted,
                primary,
                devices: devices(s),
            }
        })
        .collect();
    Status {
        driver: driver.into(),
        compatible: None,
        version: boot.booted.and_then(|b| records.get(b)).and_then(|r| version(&r.version)),
        booted: boot.booted.map(Into::into),
        primary: boot.primary.map(Into::into),
        slots,
        fallback: failed.map(|f| {
            format!("slot {f}{} failed to boot; running slot {}", records.label(&f), boot.booted.unwrap_or("?"))
        }),
        components: Vec::new(),
    }
}
