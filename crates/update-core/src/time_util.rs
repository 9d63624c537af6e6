//! Timestamps as RFC 3339 text (UTC), the form used in the audit log and JSON output.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a time as RFC 3339 in UTC with second precision, e.g. `2026-11-24T18:58:18Z`.
#[must_use]
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current time as RFC 3339 text.
#[must_use]
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}
