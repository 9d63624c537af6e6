//! What the server pushes to a device over `GET /api/v1/device/push` (server-sent events).

use std::fmt;

/// The word for an operator's request that a device check for updates now: the push event's
/// name, the check-in answer's field ([`CheckInAnswer::check_now`](crate::CheckInAnswer)) and
/// the last segment of [`routes::CHECK_NOW`](crate::routes::CHECK_NOW).
pub const CHECK_NOW: &str = "check-now";

/// The data of every push event (nothing yet; a JSON object so fields can be added).
pub const EMPTY_DATA: &str = "{}";

/// A server-sent event the server may push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PushEvent {
    /// Check for updates now (`event: check-now`, `data: {}`).
    CheckNow,
}

impl PushEvent {
    /// Every event this build knows.
    pub const KNOWN: [PushEvent; 1] = [PushEvent::CheckNow];

    /// The SSE event name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            PushEvent::CheckNow => CHECK_NOW,
        }
    }

    /// The event named `name`, or `None` for one this build does not know (a device ignores
    /// those: a newer server may push more).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for PushEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_event_names_round_trip() {
        for e in PushEvent::KNOWN {
            assert_eq!(PushEvent::from_name(e.name()), Some(e));
            assert_eq!(e.to_string(), e.name());
        }
        assert_eq!(PushEvent::CheckNow.name(), CHECK_NOW);
        for newer in ["message", "rollout-paused", ""] {
            assert_eq!(PushEvent::from_name(newer), None);
        }
    }
}
