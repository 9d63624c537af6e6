//! Storage behind one trait, so the handlers never see SQL.
//!
//! [`Store`] is object-safe (`Arc<dyn Store>` in [`AppState`](crate::AppState)) through
//! `async-trait`. Every method is one transaction and takes the time from its caller, so a
//! store holds no clock. [`SqliteStore`] is the default.
//!
//! # A PostgreSQL store
//! The trait is shaped so one can follow without touching the handlers: `PgStore` on
//! `sqlx::PgPool` with its own migrations directory (`TIMESTAMPTZ` for the times, `JSONB` for
//! the slots, `BIGSERIAL` for `events.seq`, `BOOLEAN` for `check_now`); `check_in` as
//! `UPDATE … RETURNING` plus `INSERT … ON CONFLICT`, as here. Several servers then share one
//! database behind a load balancer; what is not shared is the push hub (a device's event
//! stream is held by one server), so `check-now` would travel through `LISTEN/NOTIFY` to the
//! server holding the stream. The flag stored by [`Store::request_check`] already reaches the
//! device at its next check-in whichever server it lands on.

mod sqlite;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

pub use self::sqlite::SqliteStore;
use update_protocol::{CheckedEvent, DeviceId, EventKind, Report};

/// Why the store failed. Handlers log it and answer 500; clients never see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be opened.
    #[error("cannot open the database {url}: {source}")]
    Open {
        /// The database URL as given.
        url: String,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The schema cannot be brought up to date.
    #[error("cannot migrate the database {url}: {source}")]
    Migrate {
        /// The database URL as given.
        url: String,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A query failed.
    #[error("database: cannot {op}: {source}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database holds something this server did not write.
    #[error("database: {0}")]
    Corrupt(String),
}

/// A device in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeviceRecord {
    /// Its id.
    pub id: DeviceId,
    /// What it last reported (all empty before its first check-in).
    #[serde(flatten)]
    pub report: Report,
    /// When it first contacted the server.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// Its last check-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checkin: Option<OffsetDateTime>,
    /// An operator asked it to check, and it has not checked in since.
    pub check_now_pending: bool,
    /// Its newest event.
    pub last_event: Option<StoredEvent>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoredEvent {
    /// Arrival order across the whole server; increasing, with gaps.
    pub seq: i64,
    /// What happened.
    pub kind: EventKind,
    /// The version concerned.
    pub version: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When, by the device's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// When the server stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub received: OffsetDateTime,
}

/// Where devices and events live.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the store answers (the health check). The default says yes.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Records a check-in: creates the device on first contact, replaces what it reported,
    /// and takes its pending check-now request. Returns whether one was pending.
    async fn check_in(&self, device: &DeviceId, report: &Report, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Appends an event (creating the device on first contact). Returns its sequence number.
    async fn append_event(
        &self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError>;

    /// Every device, by id.
    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;

    /// One device.
    async fn device(&self, device: &DeviceId) -> Result<Option<DeviceRecord>, StoreError>;

    /// A device's events with `seq > after`, oldest first, at most `limit`; `None` for an
    /// unknown device.
    async fn events(&self, device: &DeviceId, after: i64, limit: u32) -> Result<Option<Vec<StoredEvent>>, StoreError>;

    /// Sets the device's check-now flag (returned and cleared by its next check-in). Returns
    /// `false` for an unknown device.
    async fn request_check(&self, device: &DeviceId, now: OffsetDateTime) -> Result<bool, StoreError>;
}
