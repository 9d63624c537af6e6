//! The operator audit log: every operator action (and every automatic pause or wave the
//! server decides) as one row of an append-only, hash-chained table.
//!
//! Each row stores the SHA-256 of the row before it (`prev-hash`; 64 zeros for the first) and
//! its own hash over that and its content ([`entry_hash`]). [`verify`] walks the rows in
//! order and names the first one whose content, link or numbering does not hold, so an edited,
//! deleted or inserted row is found. The chain shows tampering after the fact; it does not
//! stop someone who can rewrite the whole table from also rewriting every later hash (keep a
//! copy of the newest hash elsewhere, e.g. in the syslog, to anchor it). The SQLite table
//! also refuses `UPDATE` and `DELETE` through triggers.

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The `prev-hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it: an operator token's name and role, or the server itself (`update-server`,
/// role `system`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The token's name.
    pub name: String,
    /// Its role's name.
    pub role: &'static str,
}

impl Actor {
    /// The server, for what it decides itself.
    #[must_use]
    pub fn server() -> Self {
        Self { name: "update-server".to_owned(), role: "system" }
    }
}

/// One action, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// A kebab-case verb: `create-release`, `tag-devices`, `pause-deployment`, …
    pub action: &'static str,
    /// What it was done to: `deployment/3`, `tag/field`, `device/device-0001`.
    pub subject: String,
    /// The request's parameters or the decision's reason, as JSON text.
    pub details: String,
}

/// A row of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    /// When (the server's clock), RFC 3339 UTC.
    pub time: String,
    /// The token's name.
    pub actor: String,
    /// Its role.
    pub role: String,
    /// The verb.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Parameters, JSON text.
    pub details: String,
    /// The previous row's `hash`.
    pub prev_hash: String,
    /// SHA-256 over `prev-hash` and the fields above.
    pub hash: String,
}

/// The server's time as the log writes it.
#[must_use]
pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

/// The hash of a row: SHA-256 of `prev_hash` and every field, each length-prefixed (8 bytes
/// big-endian), so no two different rows hash the same input. Lowercase hex.
#[must_use]
pub fn entry_hash(e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    let seq = e.seq.to_string();
    for field in [&e.prev_hash, &seq, &e.time, &e.actor, &e.role, &e.action, &e.subject, &e.details] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The row that follows `prev` (or starts the log).
#[must_use]
pub fn chain(prev: Option<(i64, &str)>, time: OffsetDateTime, actor: &Actor, action: &Action) -> AuditEntry {
    let (seq, prev_hash) = prev.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h.to_owned()));
    let mut e = AuditEntry {
        seq,
        time: format_time(time),
        actor: actor.name.clone(),
        role: actor.role.to_owned(),
        action: action.action.to_owned(),
        subject: action.subject.clone(),
        details: action.details.clone(),
        prev_hash,
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
    e
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit row {seq}: {problem}")]
pub struct ChainBroken {
    /// The first bad row (or where a missing one should be).
    pub seq: i64,
    /// What is wrong.
    pub problem: String,
}

/// Checks rows in `seq` order from the first: numbering without gaps, each `prev-hash` the
/// previous row's hash, each `hash` recomputed. Returns how many rows hold, and the newest
/// hash (to anchor elsewhere).
///
/// # Errors
/// The first row that breaks the chain.
pub fn verify<'a>(rows: impl IntoIterator<Item = &'a AuditEntry>) -> Result<(i64, String), ChainBroken> {
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS.to_owned();
    for e in rows {
        if e.seq != prev_seq + 1 {
            return Err(ChainBroken { seq: prev_seq + 1, problem: format!("missing (the next row is {})", e.seq) });
        }
        if e.prev_hash != prev_hash {
            return Err(ChainBroken { seq: e.seq, problem: "prev-hash is not the previous row's hash".to_owned() });
        }
        if entry_hash(e) != e.hash {
            return Err(ChainBroken { seq: e.seq, problem: "content does not match its hash (edited)".to_owned() });
        }
        prev_seq = e.seq;
        prev_hash.clone_from(&e.hash);
    }
    Ok((prev_seq, prev_hash))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn log(n: usize) -> Vec<AuditEntry> {
        let actor = Actor { name: "alice".into(), role: "operator" };
        let mut rows: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let a = Action { action: "pause-deployment", subject: format!("deployment/{i}"), details: "{}".into() };
            let prev = rows.last().map(|r| (r.seq, r.hash.as_str()));
            rows.push(chain(prev, datetime!(2026-03-01 10:00 UTC), &actor, &a));
        }
        rows
    }

    #[test]
    fn a_chain_verifies_and_any_change_is_found() {
        let rows = log(4);
        assert_eq!(rows[0].prev_hash, GENESIS);
        assert_eq!(verify(&rows).unwrap(), (4, rows[3].hash.clone()));
        assert_eq!(verify(&[]).unwrap(), (0, GENESIS.to_owned()));

        let mut edited = rows.clone();
        edited[1].subject = "deployment/9".into();
        assert_eq!(verify(&edited).unwrap_err().seq, 2);

        let mut rehashed = edited.clone();
        rehashed[1].hash = entry_hash(&rehashed[1]);
        assert_eq!(
            verify(&rehashed).unwrap_err(),
            ChainBroken { seq: 3, problem: "prev-hash is not the previous row's hash".into() }
        );

        let mut deleted = rows.clone();
        deleted.remove(2);
        assert_eq!(verify(&deleted).unwrap_err().seq, 3);
        let mut truncated_front = rows;
        truncated_front.remove(0);
        assert_eq!(verify(&truncated_front).unwrap_err().seq, 1);
    }

    #[test]
    fn fields_cannot_shift_into_each_other() {
        let rows = log(1);
        let mut shifted = rows[0].clone();
        shifted.action = format!("{}d", shifted.action);
        shifted.subject = shifted.subject[1..].to_owned();
        assert_ne!(entry_hash(&shifted), rows[0].hash);
    }
}
