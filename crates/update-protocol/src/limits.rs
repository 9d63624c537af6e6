//! Sizes the server accepts, and the error a check returns.

use std::fmt;

/// Longest accepted device id, in bytes.
pub const MAX_DEVICE_ID: usize = 128;
/// Longest accepted short text field (compatible, versions, slot names), in bytes.
pub const MAX_FIELD: usize = 256;
/// Longest accepted event reason, in bytes.
pub const MAX_REASON: usize = 4096;
/// Longest accepted event kind name, in bytes (also for kinds this build does not know).
pub const MAX_EVENT_KIND: usize = 64;
/// Most slots a check-in may list.
pub const MAX_SLOTS: usize = 32;
/// Largest request body the server accepts (check-ins and events are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Most events one `GET /api/v1/devices/{id}/events` returns.
pub const MAX_EVENTS: u32 = 1000;

/// A field that fails its check: `field: problem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, as named on the wire (`slots[].name`).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Invalid {
    pub(crate) fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self { field, problem: problem.into() }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for Invalid {}

/// Text of at most `max` bytes without control characters.
pub(crate) fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.len() > max {
        return Err(Invalid::new(field, format!("longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "control characters are not allowed"));
    }
    Ok(())
}

/// Free text (an event's reason) as it is stored and shown: line breaks and tabs kept, every
/// other control character (NUL, ESC, DEL, C1) written as `\u{..}`, so that no terminal,
/// page or database (PostgreSQL refuses NUL in text) sees it raw.
pub(crate) fn escape_controls(value: String) -> String {
    if !value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return value;
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}
