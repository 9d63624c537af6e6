//! The PostgreSQL connection's [`Queries`]: the statements of `statements.rs` with
//! `TIMESTAMPTZ` times and `JSONB`. PostgreSQL runs transactions side by side, so what
//! SQLite's write lock kept is explicit here: a deployment's row lock (`SELECT … FOR
//! UPDATE`), then the audit chain's advisory lock, always in that order.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::logic::{Columns, Membership, Outcome, Queries, RELEASE_COLUMNS, query_error};
use super::{Control, StoreError};
use crate::audit::{Actor, AuditEntry};
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, Report, Tag};

/// The advisory lock key that serializes appends to the audit chain ("AUDIT" in ASCII).
const AUDIT_LOCK: i64 = 0x0041_5544_4954;

/// PostgreSQL binds `OffsetDateTime` as it is.
#[expect(clippy::unnecessary_wraps, reason = "the statements convert every time fallibly (SQLite's text)")]
fn timestamptz(t: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    Ok(t)
}

impl Queries for PgConnection {
    type Row = PgRow;

    super::statements::queries!(time = timestamptz, json = "::jsonb", text = "::text", lock = " FOR UPDATE");

    /// One appender at a time across every server: the chain must not fork.
    async fn lock_audit(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK)
            .execute(&mut *self)
            .await
            .map_err(query_error("lock the audit log"))?;
        Ok(())
    }
}
