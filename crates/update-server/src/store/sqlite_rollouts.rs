//! The SQLite connection's [`Queries`]: the statements of `statements.rs` with times bound
//! as RFC 3339 text and JSON stored as text. The transaction holds SQLite's write lock
//! whenever it writes, so neither the audit chain nor a deployment needs a lock of its own.

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::logic::{Columns, Membership, Outcome, Queries, RELEASE_COLUMNS, format_time, query_error};
use super::{Control, StoreError};
use crate::audit::{Actor, AuditEntry};
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, Report, Tag};

impl Queries for SqliteConnection {
    type Row = SqliteRow;

    super::statements::queries!(time = format_time, json = "", text = "", lock = "");
}
