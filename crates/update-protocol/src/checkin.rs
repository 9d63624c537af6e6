//! Check-in: what a device runs (`POST /api/v1/device/checkin`) and the server's answer.
//!
//! The fields and state names are those of `update status --json` (docs/reference/json.md).

use serde::{Deserialize, Serialize};

use crate::DeviceId;
use crate::limits::{Invalid, MAX_FIELD, MAX_SLOTS, check_text};
use crate::rollout::Assignment;

/// The state of one slot on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotState {
    /// Committed: known to boot and pass health checks.
    Good,
    /// Installed and primary, still being tried.
    Trying,
    /// Failed (ran out of tries, or marked bad).
    Bad,
    /// Unknown (also any state a newer device reports that this build does not know).
    #[serde(other)]
    Unknown,
}

/// One slot in a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotReport {
    /// Slot name (`A`, `B`, or the driver's own).
    pub name: String,
    /// Its state.
    pub state: SlotState,
    /// The version installed in it, if known (`null` otherwise).
    #[serde(default)]
    pub version: Option<String>,
}

/// What a device reports when it checks in: every field is written (`null` when unknown),
/// and every field may be missing when read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// The board name updates must be compatible with.
    #[serde(default)]
    pub compatible: Option<String>,
    /// The running version.
    #[serde(default)]
    pub version: Option<String>,
    /// The slot the running system booted from.
    #[serde(default)]
    pub booted: Option<String>,
    /// The slot the bootloader tries first next time.
    #[serde(default)]
    pub primary: Option<String>,
    /// Every slot.
    #[serde(default)]
    pub slots: Vec<SlotReport>,
}

impl Report {
    /// Checks sizes and characters.
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, value) in [
            ("compatible", &self.compatible),
            ("version", &self.version),
            ("booted", &self.booted),
            ("primary", &self.primary),
        ] {
            if let Some(v) = value {
                check_text(name, v, MAX_FIELD)?;
            }
        }
        if self.slots.len() > MAX_SLOTS {
            return Err(Invalid::new("slots", format!("at most {MAX_SLOTS}")));
        }
        for slot in &self.slots {
            check_text("slots[].name", &slot.name, MAX_FIELD)?;
            if slot.name.is_empty() {
                return Err(Invalid::new("slots[].name", "empty"));
            }
            if let Some(v) = &slot.version {
                check_text("slots[].version", v, MAX_FIELD)?;
            }
        }
        Ok(())
    }
}

/// The server's answer to a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckInAnswer {
    /// The device id the server knows this device by.
    pub device_id: DeviceId,
    /// Whether an operator asked for a check since the last check-in (the field is
    /// [`push::CHECK_NOW`](crate::push::CHECK_NOW)).
    #[serde(default)]
    pub check_now: bool,
    /// The device's rollout assignment (issue 14), if a deployment has reached it. Added in
    /// v1 without breaking older devices: the field is left out when there is none, and a
    /// device that does not know it ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::Identified;
    use crate::push::CHECK_NOW;

    fn report() -> Report {
        Report {
            compatible: Some("demo-board".into()),
            version: Some("1.0.0".into()),
            booted: Some("A".into()),
            primary: Some("A".into()),
            slots: vec![
                SlotReport { name: "A".into(), state: SlotState::Good, version: Some("1.0.0".into()) },
                SlotReport { name: "B".into(), state: SlotState::Unknown, version: None },
            ],
        }
    }

    #[test]
    fn the_wire_form_of_a_check_in_is_today_s() {
        let sent = Identified { device_id: Some("device-0001".into()), body: report() };
        let wire = json!({
            "compatible": "demo-board", "version": "1.0.0", "booted": "A", "primary": "A",
            "slots": [
                {"name": "A", "state": "good", "version": "1.0.0"},
                {"name": "B", "state": "unknown", "version": null}
            ],
            "device-id": "device-0001"
        });
        assert_eq!(serde_json::to_value(&sent).unwrap(), wire);
        assert_eq!(serde_json::from_value::<Identified<Report>>(wire).unwrap(), sent);
        // Nothing known: every field is still written, as null or empty.
        assert_eq!(
            serde_json::to_value(Report::default()).unwrap(),
            json!({"compatible": null, "version": null, "booted": null, "primary": null, "slots": []})
        );
        assert_eq!(serde_json::from_value::<Report>(json!({})).unwrap(), Report::default());
    }

    #[test]
    fn slot_states_round_trip_and_newer_ones_read_as_unknown() {
        for (state, name) in [
            (SlotState::Good, "good"),
            (SlotState::Trying, "trying"),
            (SlotState::Bad, "bad"),
            (SlotState::Unknown, "unknown"),
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), name);
            assert_eq!(serde_json::from_value::<SlotState>(json!(name)).unwrap(), state);
        }
        for newer in ["sideways", "quarantined"] {
            assert_eq!(serde_json::from_value::<SlotState>(json!(newer)).unwrap(), SlotState::Unknown);
        }
    }

    #[test]
    fn reports_are_checked() {
        let mut r: Report = serde_json::from_str(
            r#"{"compatible":"demo","version":"1.0.0","booted":"A","primary":"A",
                "slots":[{"name":"A","state":"good","version":"1.0.0"},{"name":"B","state":"sideways"}],
                "from-the-future": true}"#,
        )
        .unwrap();
        assert_eq!(r.slots[1].state, SlotState::Unknown, "unknown states are tolerated");
        r.validate().unwrap();
        let good = r.clone();
        for (field, bad) in [
            ("version", Report { version: Some("1\u{1b}[2J".into()), ..good.clone() }),
            ("compatible", Report { compatible: Some("c".repeat(MAX_FIELD + 1)), ..good.clone() }),
            ("slots", Report { slots: vec![good.slots[0].clone(); MAX_SLOTS + 1], ..good.clone() }),
            (
                "slots[].name",
                Report { slots: vec![SlotReport { name: String::new(), ..good.slots[0].clone() }], ..good.clone() },
            ),
            (
                "slots[].version",
                Report {
                    slots: vec![SlotReport { version: Some("\u{7}".into()), ..good.slots[0].clone() }],
                    ..good.clone()
                },
            ),
        ] {
            assert_eq!(bad.validate().unwrap_err().field, field);
        }
        r.version = None;
        r.validate().unwrap();
    }

    #[test]
    fn check_in_answers_round_trip() {
        for check_now in [false, true] {
            let a = CheckInAnswer { device_id: DeviceId::parse("device-0001").unwrap(), check_now, assignment: None };
            let wire = serde_json::to_value(&a).unwrap();
            assert_eq!(wire.as_object().unwrap().len(), 2, "no assignment: today's two fields only");
            assert_eq!(wire["device-id"], "device-0001");
            assert_eq!(wire[CHECK_NOW], check_now, "the answer's field is named like the push event");
            assert_eq!(serde_json::from_value::<CheckInAnswer>(wire).unwrap(), a);
        }
        let old = serde_json::from_value::<CheckInAnswer>(json!({"device-id": "d"})).unwrap();
        assert!(!old.check_now, "an answer without the field asks for nothing");
        assert_eq!(old.assignment, None);
        let with = json!({"device-id": "d", "check-now": false, "assignment": {
            "deployment": 3, "target": "demo-2.0.0.bundle", "version": "2.0.0", "wave": 0,
            "action": "hold", "allowed-from": "2026-03-01T10:00:00Z"}, "from-the-future": 1});
        let a = serde_json::from_value::<CheckInAnswer>(with).unwrap().assignment.unwrap();
        assert_eq!((a.deployment, a.action), (3, crate::rollout::AssignmentAction::Hold));
        assert!(serde_json::from_value::<CheckInAnswer>(json!({"device-id": "a/b"})).is_err());
    }

    fn any_state() -> impl Strategy<Value = SlotState> {
        prop_oneof![Just(SlotState::Good), Just(SlotState::Trying), Just(SlotState::Bad), Just(SlotState::Unknown)]
    }

    fn any_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("\\PC{0,20}")
    }

    proptest! {
        #[test]
        fn reports_round_trip(
            compatible in any_text(), version in any_text(), booted in any_text(), primary in any_text(),
            slots in proptest::collection::vec(("[A-Z]{1,3}", any_state(), any_text()), 0..4),
            device_id in proptest::option::of("[a-z0-9-]{1,20}"),
        ) {
            let slots = slots.into_iter().map(|(name, state, version)| SlotReport { name, state, version }).collect();
            let sent = Identified { device_id, body: Report { compatible, version, booted, primary, slots } };
            let text = serde_json::to_string(&sent).unwrap();
            prop_assert_eq!(serde_json::from_str::<Identified<Report>>(&text).unwrap(), sent);
        }
    }
}
