//! Events: the steps of an update as a device reports them (`POST /api/v1/device/events`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::limits::{Invalid, MAX_EVENT_KIND, MAX_FIELD, MAX_REASON, check_text, escape_controls};

/// What a device is doing, in the order an update goes. On the wire, a kebab-case name.
///
/// A name this build does not know is kept as [`EventKind::Unknown`] and written back
/// unchanged, so an older server stores and lists a newer device's events, and a device that
/// went back to older software still sends what its newer self queued.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A check of the source started.
    Checking,
    /// An update is being downloaded.
    Downloading,
    /// An update was installed into the inactive slot.
    Installed,
    /// The device booted a newly installed slot (on trial).
    Rebooted,
    /// The booted slot passed its checks and was committed.
    Committed,
    /// The device went back to the other slot (failed boots or a requested rollback).
    RolledBack,
    /// A step failed; `reason` says which and why.
    Failed,
    /// A kind from a newer peer, by its wire name (checked by [`EventKind::check`]).
    Unknown(String),
}

impl EventKind {
    /// Every kind this build knows.
    pub const KNOWN: [EventKind; 7] = [
        EventKind::Checking,
        EventKind::Downloading,
        EventKind::Installed,
        EventKind::Rebooted,
        EventKind::Committed,
        EventKind::RolledBack,
        EventKind::Failed,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Checking => "checking",
            EventKind::Downloading => "downloading",
            EventKind::Installed => "installed",
            EventKind::Rebooted => "rebooted",
            EventKind::Committed => "committed",
            EventKind::RolledBack => "rolled-back",
            EventKind::Failed => "failed",
            EventKind::Unknown(name) => name,
        }
    }

    /// The kind named `name`: a known one, or [`EventKind::Unknown`] (unchecked).
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        Self::KNOWN.into_iter().find(|k| k.as_str() == name).unwrap_or_else(|| EventKind::Unknown(name.to_owned()))
    }

    /// Whether this build knows the kind.
    #[must_use]
    pub fn is_known(&self) -> bool {
        !matches!(self, EventKind::Unknown(_))
    }

    /// Checks the name: 1 to [`MAX_EVENT_KIND`] bytes of lowercase ASCII letters, digits and
    /// `-`, starting with a letter (what every kind, known or future, looks like).
    ///
    /// # Errors
    /// What is wrong with it (field `kind`).
    pub fn check(&self) -> Result<(), Invalid> {
        let name = self.as_str();
        if name.is_empty() || name.len() > MAX_EVENT_KIND {
            return Err(Invalid::new("kind", format!("must be 1 to {MAX_EVENT_KIND} bytes")));
        }
        let word = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !word {
            return Err(Invalid::new("kind", format!("{name:?} is not a kebab-case name")));
        }
        Ok(())
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::from_name(&name))
    }
}

/// One event as the device sends it, and as it waits in the device's outbox.
///
/// `version` is always written (`null` when none), `reason` only when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The version concerned, if any.
    #[serde(default)]
    pub version: Option<String>,
    /// Why (for `failed` and `rolled-back`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, by the device's clock (RFC 3339).
    pub time: String,
    /// The rollout deployment the device was following (its last check-in answer's
    /// assignment), so the server counts the step against that deployment's wave. Left out
    /// without one; a server that does not know the field ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<i64>,
}

/// An [`Event`] that passed [`Event::check`], its time parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEvent {
    /// What happened.
    pub kind: EventKind,
    /// The version concerned, if any.
    pub version: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When, by the device's clock.
    pub time: OffsetDateTime,
    /// The deployment the device was following, if any.
    pub deployment: Option<i64>,
}

impl Event {
    /// Checks the fields (the kind's name, sizes, no control characters in `version`), parses
    /// the time, and escapes the control characters of `reason` other than line breaks and
    /// tabs (`\u{1b}`): a reason is free text from the device, often a tool's output.
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn check(self) -> Result<CheckedEvent, Invalid> {
        self.kind.check()?;
        if let Some(v) = &self.version {
            check_text("version", v, MAX_FIELD)?;
        }
        if let Some(r) = &self.reason
            && r.len() > MAX_REASON
        {
            return Err(Invalid::new("reason", format!("longer than {MAX_REASON} bytes")));
        }
        let time = OffsetDateTime::parse(&self.time, &Rfc3339)
            .map_err(|e| Invalid::new("time", format!("not an RFC 3339 date-time ({e})")))?;
        Ok(CheckedEvent {
            kind: self.kind,
            version: self.version,
            reason: self.reason.map(escape_controls),
            time,
            deployment: self.deployment,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::Identified;

    #[test]
    fn known_kinds_round_trip() {
        for k in EventKind::KNOWN {
            assert!(k.is_known());
            assert_eq!(EventKind::from_name(k.as_str()), k);
            assert_eq!(serde_json::to_value(&k).unwrap(), k.as_str());
            assert_eq!(serde_json::from_value::<EventKind>(json!(k.as_str())).unwrap(), k);
            k.check().unwrap();
        }
        assert_eq!(serde_json::to_string(&EventKind::RolledBack).unwrap(), r#""rolled-back""#);
    }

    #[test]
    fn a_newer_kind_is_kept_and_written_back_unchanged() {
        for name in ["flashed-firmware", "rollout-paused", "x2"] {
            let kind: EventKind = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(kind, EventKind::Unknown(name.to_owned()));
            assert!(!kind.is_known());
            kind.check().unwrap();
            assert_eq!(serde_json::to_value(&kind).unwrap(), name);
        }
    }

    #[test]
    fn kind_names_are_checked() {
        for bad in ["", "Installed", "rolled_back", "-x", "9lives", "a b", "kind\n", &"a".repeat(MAX_EVENT_KIND + 1)] {
            let e = EventKind::from_name(bad).check().unwrap_err();
            assert_eq!(e.field, "kind", "{bad:?}");
        }
        EventKind::from_name(&"a".repeat(MAX_EVENT_KIND)).check().unwrap();
    }

    #[test]
    fn the_wire_form_of_an_event_is_today_s() {
        let e = Event {
            kind: EventKind::Installed,
            version: None,
            reason: None,
            time: "2026-03-01T10:00:00Z".into(),
            deployment: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"installed","version":null,"time":"2026-03-01T10:00:00Z"}"#
        );
        let sent = Identified { device_id: Some("bench-7".into()), body: &e };
        assert_eq!(
            serde_json::to_value(&sent).unwrap(),
            json!({"device-id": "bench-7", "kind": "installed", "version": null, "time": "2026-03-01T10:00:00Z"})
        );
        let got: Identified<Event> =
            serde_json::from_str(r#"{"device-id":"bench-7","kind":"installed","time":"2026-03-01T10:00:00Z","new":1}"#)
                .unwrap();
        assert_eq!((got.device_id.as_deref(), got.body), (Some("bench-7"), e.clone()));
        // Following a deployment: its id goes along, and reaches the checked event.
        let following = Event { deployment: Some(7), ..e };
        assert_eq!(
            serde_json::to_string(&following).unwrap(),
            r#"{"kind":"installed","version":null,"time":"2026-03-01T10:00:00Z","deployment":7}"#
        );
        assert_eq!(following.check().unwrap().deployment, Some(7));
    }

    #[test]
    fn events_need_an_rfc3339_time_and_sizes() {
        let e: Event = serde_json::from_str(
            r#"{"kind":"failed","version":"1.1.0","reason":"no space","time":"2026-03-01T10:00:00+01:00"}"#,
        )
        .unwrap();
        assert_eq!(e.clone().check().unwrap().time.unix_timestamp(), 1_772_355_600);
        for (field, bad) in [
            ("time", Event { time: "yesterday".into(), ..e.clone() }),
            ("time", Event { time: "2026-03-01 10:00:00".into(), ..e.clone() }),
            ("version", Event { version: Some("1\u{1b}[2J".into()), ..e.clone() }),
            ("version", Event { version: Some("1".repeat(MAX_FIELD + 1)), ..e.clone() }),
            ("reason", Event { reason: Some("r".repeat(MAX_REASON + 1)), ..e.clone() }),
            ("kind", Event { kind: EventKind::Unknown("Not A Kind".into()), ..e.clone() }),
        ] {
            assert_eq!(bad.check().unwrap_err().field, field);
        }
    }

    #[test]
    fn a_reason_keeps_lines_and_tabs_and_escapes_other_control_characters() {
        let e = |reason: &str| Event {
            kind: EventKind::Failed,
            version: None,
            reason: Some(reason.into()),
            time: "2026-03-01T10:00:00Z".into(),
            deployment: None,
        };
        let kept = "rauc: error\n\tslot B: no space";
        assert_eq!(e(kept).check().unwrap().reason.as_deref(), Some(kept));
        for (raw, stored) in [
            ("a\0b", "a\\u{0}b"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("cr\rlf", "cr\\u{d}lf"),
            ("del\u{7f} c1\u{9b}", "del\\u{7f} c1\\u{9b}"),
        ] {
            assert_eq!(e(raw).check().unwrap().reason.as_deref(), Some(stored), "{raw:?}");
        }
    }

    fn any_kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            (0..EventKind::KNOWN.len()).prop_map(|i| EventKind::KNOWN[i].clone()),
            "[a-z][a-z0-9-]{0,63}".prop_map(|s| EventKind::from_name(&s)),
        ]
    }

    proptest! {
        #[test]
        fn events_round_trip(
            kind in any_kind(),
            version in proptest::option::of("[ -~]{0,20}"),
            reason in proptest::option::of("\\PC{0,40}"),
            time in "[0-9T:Z+.-]{1,30}",
        ) {
            let e = Event { kind, version, reason, time, deployment: None };
            let text = serde_json::to_string(&e).unwrap();
            prop_assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e.clone());
            let kind_json = serde_json::to_value(&e.kind).unwrap();
            prop_assert_eq!(kind_json.as_str(), Some(e.kind.as_str()));
        }
    }
}
