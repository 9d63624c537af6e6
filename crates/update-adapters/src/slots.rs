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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn status(records: &[u8], boot: &AbBoot<'_>) -> Status {
        let records = SlotRecords::parse(records, Path::new("swupdate.json")).unwrap();
        ab_status(&records, "swupdate", boot, |v| update_core::parse_version(v).ok(), &|_| Vec::new())
    }

    /// A device upgraded from a release that wrote `{"versions", "pending"}` tells the same status
    /// from its old file as from the same records in format 1.
    #[test]
    fn records_of_the_older_form_tell_a_fallback() {
        let old = br#"{"versions": {"A": "", "B": "2.0"}, "pending": "B"}"#;
        let new = br#"{"format": 1, "slots": {"A": {"version": ""}, "B": {"version": "2.0"}}, "pending": "B"}"#;
        let boot = AbBoot { booted: Some("A"), primary: Some("A"), trial: false, tries_left: 0 };
        for text in [&old[..], &new[..]] {
            let s = status(text, &boot);
            assert_eq!(s.fallback.as_deref(), Some("slot B (2.0) failed to boot; running slot A"));
            assert_eq!((&s.slots[0].state, &s.slots[1].state), (&SlotState::Good, &SlotState::Bad));
            assert_eq!((s.slots[0].version.clone(), s.slots[1].version.clone()), (None, Some(Version::new(2, 0, 0))));
            assert_eq!(s.version, None);
        }
    }

    #[test]
    fn a_slot_on_trial_is_trying_and_an_unrecorded_one_unknown() {
        let boot = AbBoot { booted: Some("B"), primary: Some("B"), trial: true, tries_left: 2 };
        let s = status(br#"{"format": 1, "slots": {"B": {"version": "3.1"}}, "pending": "B"}"#, &boot);
        assert_eq!(s.fallback, None);
        assert_eq!((&s.slots[0].state, &s.slots[1].state), (&SlotState::Unknown, &SlotState::Trying));
        assert_eq!((s.slots[1].tries_left, s.version), (Some(2), Some(Version::new(3, 1, 0))));
    }
}
