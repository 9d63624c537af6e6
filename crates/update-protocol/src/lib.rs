//! `update-protocol`: the fleet wire format, the one place where a device (`libupdate::fleet`)
//! and `update-server` agree on what they say to each other.
//!
//! # Design
//! - **Words, not transport.** Every type here is plain data with `serde` derives and checks;
//!   no I/O, no async, no HTTP client or server, no JSON library. The device links this crate,
//!   so it costs the `update` binary nothing but the types it uses. The server adds axum on
//!   top; the device adds `update-fetch`.
//! - **Tolerant of newer peers.** Fleets are never upgraded at once, so every message must pass
//!   between a newer and an older side. Unknown request fields are ignored; an event kind this
//!   build does not know is kept as [`EventKind::Unknown`] and round-trips byte for byte (an
//!   older server stores and lists a newer device's event; an older device rolled back to does
//!   not drop what its newer self queued); an unknown slot state reads as
//!   [`SlotState::Unknown`].
//! - **Checked at the boundary.** [`DeviceId::parse`], [`Report::validate`] and
//!   [`Event::check`] hold the [`limits`]; the server calls them on every request and the
//!   answer names the field ([`Invalid`]).
//! - **Names defined once.** Routes ([`routes`]), push event names ([`push`]) and wire field
//!   names live here; neither side spells them itself.
//!
//! # What belongs here
//! Everything both ends of a fleet connection must agree on: request and answer bodies,
//! their field names and limits, URL paths, push event names, and the validation of each.
//! Fleet features that add messages (rollouts and their waves, issue 14, in [`rollout`];
//! device groups; new event kinds) add their types and routes here first, with a round-trip test, and keep old
//! peers working (new fields optional, new enum values with a fallback). What does *not*
//! belong here: storage (the server's `Store`), HTTP plumbing, the device's outbox, policy
//! (when to check in, how a rollout picks devices) — those stay with the side that runs them.
//!
//! The documented form is docs/reference/server-api.md (every endpoint) and
//! docs/reference/fleet.md (what the device sends and when).

mod checkin;
mod device_id;
mod event;
pub mod limits;
pub mod push;
pub mod rollout;
pub mod routes;
pub mod window;

pub use self::checkin::{CheckInAnswer, Report, SlotReport, SlotState};
pub use self::device_id::DeviceId;
pub use self::event::{CheckedEvent, Event, EventKind};
pub use self::limits::Invalid;
pub use self::rollout::{Assignment, AssignmentAction, Tag};

use serde::{Deserialize, Serialize};

/// A device request with the device's self-declared id beside the body's own fields
/// (`{"device-id": "…", …}`). The id is only trusted by a server run with
/// `--insecure-device-ids`; under mutual TLS it may be left out, and must otherwise equal the
/// client certificate's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identified<T> {
    /// The id the device claims (its `/etc/machine-id` without a client certificate).
    #[serde(rename = "device-id", default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The request itself.
    #[serde(flatten)]
    pub body: T,
}
