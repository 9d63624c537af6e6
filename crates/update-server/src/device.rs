//! The fleet's words: a [`DeviceId`], what a device reports when it checks in ([`Report`]), the
//! [`Event`]s it sends while updating, and where its identity comes from ([`DeviceIdSource`]).
//!
//! Wire names are kebab-case and match `update status --json` (docs/reference/json.md): slot
//! states are `good`, `trying`, `bad`, `unknown`. Unknown fields in device requests are
//! ignored, so a newer device can talk to an older server.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Longest accepted device id, in bytes.
pub const MAX_DEVICE_ID: usize = 128;
/// Longest accepted short text field (compatible, versions, slot names), in bytes.
pub const MAX_FIELD: usize = 256;
/// Longest accepted event reason, in bytes.
pub const MAX_REASON: usize = 4096;
/// Most slots a check-in may list.
pub const MAX_SLOTS: usize = 32;

/// A device's id: the subject common name of its certificate. 1 to 128 bytes of ASCII letters,
/// digits and `.`, `_`, `-`, `:`, `@` (so it can appear in a URL path unescaped).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks `s`.
    ///
    /// # Errors
    /// Why `s` is not a device id.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_DEVICE_ID {
            return Err(format!("must be 1 to {MAX_DEVICE_ID} bytes"));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || ".-_:@".contains(*c))) {
            return Err(format!("{c:?} is not allowed (letters, digits and . _ - : @ only)"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where device ids come from. The default, and the only one for production, is the client
/// certificate; without mutual TLS the device API then refuses every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceIdSource {
    /// The verified client certificate's subject common name (mutual TLS).
    #[default]
    ClientCertificate,
    /// TEST ONLY (`--insecure-device-ids`): the `device-id` the client claims in the request.
    /// Anyone can then speak for any device.
    InsecureRequestField,
}

/// The state of one slot, as `update status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotState {
    /// Committed.
    Good,
    /// Being tried after an install.
    Trying,
    /// Failed or marked bad.
    Bad,
    /// Unknown (also any state this server does not know yet).
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
    /// The version installed in it, if known.
    #[serde(default)]
    pub version: Option<String>,
}

/// What a device reports when it checks in (`POST /api/v1/device/checkin`).
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
    pub fn validate(&self) -> Result<(), String> {
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
            return Err(format!("slots: at most {MAX_SLOTS}"));
        }
        for slot in &self.slots {
            check_text("slots[].name", &slot.name, MAX_FIELD)?;
            if slot.name.is_empty() {
                return Err("slots[].name: empty".to_owned());
            }
            if let Some(v) = &slot.version {
                check_text("slots[].version", v, MAX_FIELD)?;
            }
        }
        Ok(())
    }
}

/// What a device is doing, in the order an update goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Asked the source for updates.
    Checking,
    /// Downloading an update.
    Downloading,
    /// Installed it into the other slot.
    Installed,
    /// Rebooted into it.
    Rebooted,
    /// Committed it (health checks passed).
    Committed,
    /// Went back to the previous slot.
    RolledBack,
    /// The update failed (`reason` says why).
    Failed,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 7] = [
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
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Checking => "checking",
            EventKind::Downloading => "downloading",
            EventKind::Installed => "installed",
            EventKind::Rebooted => "rebooted",
            EventKind::Committed => "committed",
            EventKind::RolledBack => "rolled-back",
            EventKind::Failed => "failed",
        }
    }

    /// The kind named `s`.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event from a device (`POST /api/v1/device/events`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The version concerned, if any.
    pub version: Option<String>,
    /// Why (for `failed` and `rolled-back`).
    pub reason: Option<String>,
    /// When, by the device's clock.
    pub time: OffsetDateTime,
}

/// The event as it arrives.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventRequest {
    /// Only with `--insecure-device-ids`.
    #[serde(default)]
    pub device_id: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The version concerned.
    #[serde(default)]
    pub version: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339.
    pub time: String,
}

impl EventRequest {
    /// Checks the fields and parses the time.
    ///
    /// # Errors
    /// What is wrong, naming the field.
    pub fn into_event(self) -> Result<Event, String> {
        if let Some(v) = &self.version {
            check_text("version", v, MAX_FIELD)?;
        }
        if let Some(r) = &self.reason
            && r.len() > MAX_REASON
        {
            return Err(format!("reason: longer than {MAX_REASON} bytes"));
        }
        let time = OffsetDateTime::parse(&self.time, &Rfc3339)
            .map_err(|e| format!("time: not an RFC 3339 date-time ({e})"))?;
        Ok(Event { kind: self.kind, version: self.version, reason: self.reason, time })
    }
}

fn check_text(name: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{name}: longer than {max} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name}: control characters are not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids() {
        for ok in ["device-0001", "a", "SN:1234.5_x@site", &"x".repeat(MAX_DEVICE_ID)] {
            assert_eq!(DeviceId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a/b", "a b", "dev\u{e9}", "..%2f", &"x".repeat(MAX_DEVICE_ID + 1), "a\nb"] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(EventKind::from_name("exploded"), None);
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
        r.version = Some("1\u{1b}[2J".to_owned());
        assert!(r.validate().unwrap_err().starts_with("version:"));
        r.version = None;
        r.slots = vec![SlotReport { name: "A".into(), state: SlotState::Good, version: None }; MAX_SLOTS + 1];
        assert!(r.validate().is_err());
    }

    #[test]
    fn events_need_an_rfc3339_time() {
        let e: EventRequest = serde_json::from_str(
            r#"{"kind":"failed","version":"1.1.0","reason":"no space","time":"2026-03-01T10:00:00+01:00"}"#,
        )
        .unwrap();
        let e = e.into_event().unwrap();
        assert_eq!(e.time.unix_timestamp(), 1_772_355_600);
        let e: EventRequest = serde_json::from_str(r#"{"kind":"checking","time":"yesterday"}"#).unwrap();
        assert!(e.into_event().unwrap_err().starts_with("time:"));
        assert!(serde_json::from_str::<EventRequest>(r#"{"kind":"exploded","time":"2026-03-01T10:00:00Z"}"#).is_err());
    }
}
