//! What every store does, written once: the one [`Store`] implementation (for every
//! [`Backend`]), the steps of each method against [`Queries`] (the primitive statements, in
//! `statements.rs`; none decides anything), and how rows become records ([`Columns`]).
//!
//! Every step runs on one connection, inside one transaction: the backend says how to begin
//! it (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's snapshot reads), the [`Store`] impl here
//! commits it. The
//! decisions themselves (how a deployment advances, which wave opens, whether a device may
//! install now) are the pure functions of [`crate::rollout`]; this module feeds them what the
//! database holds and writes back what they decide.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Database, Pool, Row, Transaction};
use time::OffsetDateTime;

use super::{
    ActionOutcome, AttributeMode, CancelAnswer, CheckInOutcome, Control, DeploymentRecord, DeviceAction, DeviceRecord,
    EventRetention, MAX_ATTRIBUTES, Pruned, ReleaseRecord, Store, StoreError, StoredEvent, VersionSummary, WaveView,
};
use crate::audit::{self, Action, Actor, AuditEntry};
use crate::rollout::{Progress, Step, WaveCounts, next_step};
use update_protocol::rollout::{AssignmentAction, DeploymentState, NewDeployment, NewRelease, Wave};
use update_protocol::{Assignment, CheckedEvent, DeviceId, EventKind, Report, SlotReport, Tag};

/// One result row, read by column name in the types the records need.
pub(super) trait Columns {
    /// A `TEXT` column.
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn int(&self, column: &'static str) -> Result<i64, StoreError>;
    /// A nullable integer column (or an aggregate that may be `NULL`).
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError>;
    /// A flag column.
    fn flag(&self, column: &'static str) -> Result<bool, StoreError>;
    /// A time column.
    fn time(&self, column: &'static str) -> Result<OffsetDateTime, StoreError>;
    /// A nullable time column.
    fn opt_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError>;
}

/// The column types that differ between backends (SQLite's RFC 3339 text and 0/1 integers,
/// PostgreSQL's `TIMESTAMPTZ` and `BOOLEAN`); text and integers read the same everywhere.
pub(super) trait ColumnTypes: Database {
    /// A flag column.
    fn flag(row: &Self::Row, column: &'static str) -> Result<bool, StoreError>;
    /// A nullable time column.
    fn opt_time(row: &Self::Row, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError>;
}

/// Reads one column of a row as `T`.
pub(super) fn get<'r, R, T>(row: &'r R, column: &'static str) -> Result<T, StoreError>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get(column).map_err(query_error("read a row"))
}

impl<R> Columns for R
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    R::Database: ColumnTypes<Row = R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        get(self, column)
    }

    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        get(self, column)
    }

    fn int(&self, column: &'static str) -> Result<i64, StoreError> {
        get(self, column)
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, StoreError> {
        get(self, column)
    }

    fn flag(&self, column: &'static str) -> Result<bool, StoreError> {
        R::Database::flag(self, column)
    }

    fn time(&self, column: &'static str) -> Result<OffsetDateTime, StoreError> {
        self.opt_time(column)?.ok_or_else(|| corrupt(format_args!("{column}: NULL")))
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
        R::Database::opt_time(self, column)
    }
}

/// The newest running or paused deployment holding a device.
#[derive(Debug, Clone, Copy)]
pub(super) struct Membership {
    /// The deployment.
    pub deployment: i64,
    /// The device's wave.
    pub wave: i64,
    /// Whether the device was told to install.
    pub told: bool,
    /// When the device's wave opened (`None`: not yet).
    pub opened: Option<OffsetDateTime>,
}

/// What an update event does to its device's row in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// `failed` or `rolled-back`: the device failed (for good).
    Failed,
    /// `committed`: succeeded, unless it failed before.
    Succeeded,
    /// Any other step: an attempt, the outcome unchanged.
    Unchanged,
}

/// The primitive statements a backend implements. Each is one statement (or two that always
/// go together) on the caller's connection; none decides anything.
pub(super) trait Queries: Send {
    /// The backend's result row.
    type Row: Columns + Send + Sync;

    /// Whether the database answers.
    fn ping(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every device (or `one`), by id, with its newest event: the columns of
    /// [`device_from_row`].
    fn device_rows(
        &mut self,
        one: Option<&DeviceId>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Devices by version: columns `version`, `devices`, `online` (checked in at or after
    /// `online_since`), `failing` (last event `failed` or `rolled-back`).
    fn version_summary_rows(
        &mut self,
        online_since: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Up to `limit` devices with ids after `after`, by id: as [`device_rows`](Self::device_rows).
    fn device_page_rows(
        &mut self,
        after: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Takes the device's check-now flag: whether it was set (it is cleared).
    fn take_check_now(&mut self, device: &DeviceId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Creates or updates the device with what it reported (`slots` as JSON text).
    fn record_report(
        &mut self,
        device: &DeviceId,
        report: &Report,
        slots: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Creates the device row if it does not exist.
    fn ensure_device(
        &mut self,
        device: &DeviceId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Appends an event; returns its sequence number.
    fn insert_event(
        &mut self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Deletes the events received before `received`; how many.
    fn delete_events_before(
        &mut self,
        received: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The devices with events of `seq` above `seq`, and the newest event's `seq` (`seq` when
    /// there is none).
    fn devices_with_events_after(
        &mut self,
        seq: i64,
    ) -> impl Future<Output = Result<(Vec<String>, i64), StoreError>> + Send;
    /// Deletes all but the device's newest `keep` events; how many.
    fn keep_newest_events(&mut self, device: &str, keep: u32) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Whether the device exists.
    fn device_known(&mut self, device: &DeviceId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A device's events with `seq > after`, oldest first: the columns of [`event_from_row`].
    fn event_rows(
        &mut self,
        device: &DeviceId,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Sets the device's check-now flag; `false` for an unknown device.
    fn set_check_now(
        &mut self,
        device: &DeviceId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Serializes appends to the audit chain until the transaction ends, where the
    /// transaction does not already (SQLite's write lock does).
    fn lock_audit(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
    /// The audit log's last row: its `seq` and `hash`.
    fn last_audit(&mut self) -> impl Future<Output = Result<Option<(i64, String)>, StoreError>> + Send;
    /// Inserts an audit row.
    fn insert_audit(&mut self, entry: &AuditEntry) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Audit rows with `seq > after`, oldest first: the columns of [`audit_from_row`].
    fn audit_rows(&mut self, after: i64, limit: u32)
    -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;

    /// Inserts a release; `None` when its target exists.
    fn insert_release(
        &mut self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    /// Up to `limit` releases with ids above `after`, by id.
    fn release_page_rows(
        &mut self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Every release (or `one`), by id: the columns of [`release_from_row`].
    fn release_rows(&mut self, one: Option<i64>) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;

    /// Tags a device as the operator's (a certificate tag becomes the operator's); whether
    /// a row changed.
    fn tag_by_operator(
        &mut self,
        device: &DeviceId,
        tag: &Tag,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes a tag from a device; whether it had it.
    fn untag(&mut self, device: &DeviceId, tag: &Tag) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The device's tags from its certificate.
    fn certificate_tags(&mut self, device: &DeviceId) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Removes one certificate tag of a device.
    fn drop_certificate_tag(
        &mut self,
        device: &DeviceId,
        tag: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Adds a certificate tag to a device (an operator's tag of that name stays).
    fn add_certificate_tag(
        &mut self,
        device: &DeviceId,
        tag: &Tag,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` of a tag's devices with ids after `after`, by id, with each tag's source.
    fn tag_member_page_rows(
        &mut self,
        tag: &Tag,
        after: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// A tag's devices by id, with each tag's source.
    fn tag_member_rows(&mut self, tag: &Tag) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Inserts a running deployment whose first wave opens at `now` (`waves` and `window` as
    /// JSON text); returns its id.
    fn insert_deployment(
        &mut self,
        plan: &NewDeployment,
        waves: &str,
        window: Option<&str>,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// Places a device in a wave of a deployment.
    fn place_device(
        &mut self,
        deployment: i64,
        device: &DeviceId,
        wave: i64,
        rank: &str,
        opened: Option<OffsetDateTime>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` deployments with ids below `before`, newest first: as
    /// [`deployment_rows`](Self::deployment_rows).
    fn deployment_page_rows(
        &mut self,
        before: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Deployments (or `one`), newest first, joined with their release: the columns of
    /// [`deployment_from_row`].
    fn deployment_rows(&mut self, one: Option<i64>) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// A deployment's counts by wave (with `through`, waves up to that one): columns `wave`, `devices`,
    /// `assigned`, `attempted`, `failed`, `succeeded`.
    fn wave_count_rows(
        &mut self,
        deployment: i64,
        through: Option<u32>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send;
    /// Holds the deployment for the rest of the transaction, where the transaction does not
    /// already; whether it exists.
    fn lock_deployment(&mut self, deployment: i64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Running → paused, with the reason.
    fn pause(&mut self, deployment: i64, reason: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Opens a wave at `now` (the deployment's and its devices').
    fn open_wave(
        &mut self,
        deployment: i64,
        wave: u32,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Applies an operator's control (already allowed): `reason` for a pause, `now` for a
    /// resume.
    fn set_state(
        &mut self,
        deployment: i64,
        control: Control,
        reason: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The newest running or paused deployment holding the device (only `deployment`, when
    /// given).
    fn membership(
        &mut self,
        device: &DeviceId,
        deployment: Option<i64>,
    ) -> impl Future<Output = Result<Option<Membership>, StoreError>> + Send;
    /// A device's row in a deployment (whatever its state): columns `told` (flag),
    /// `outcome` (nullable text), `cancel_answer` (nullable text) and `state` (the
    /// deployment's).
    fn action_row(
        &mut self,
        deployment: i64,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;
    /// Stores a device's target token digest, replacing the one before.
    fn upsert_target_token(
        &mut self,
        device: &DeviceId,
        digest: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A device's target token digest.
    fn target_token_digest(
        &mut self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The newest deployment that told the device to install: columns `deployment_id`,
    /// `wave`, `assigned` (time), `state` and `rollback_on_abort` (flag).
    fn last_told(&mut self, device: &DeviceId) -> impl Future<Output = Result<Option<Self::Row>, StoreError>> + Send;
    /// A device's attributes, `(name, value)` by name.
    fn attribute_rows(
        &mut self,
        device: &DeviceId,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// Sets one attribute of a device.
    fn upsert_attribute(
        &mut self,
        device: &DeviceId,
        name: &str,
        value: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deletes one attribute of a device (`None`: all of them).
    fn delete_attributes(
        &mut self,
        device: &DeviceId,
        name: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The newest aborted deployment the device was told to install and has neither ended nor
    /// answered a cancel of.
    fn pending_cancel(&mut self, device: &DeviceId) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    /// Stores the device's answer to the cancel of `deployment` (the first answer only):
    /// whether it was stored.
    fn set_cancel_answer(
        &mut self,
        deployment: i64,
        device: &DeviceId,
        answer: CancelAnswer,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Marks the device told to install (the first time only).
    fn mark_told(
        &mut self,
        deployment: i64,
        device: &DeviceId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Counts an attempt by the device, with its outcome.
    fn count_attempt(
        &mut self,
        deployment: i64,
        device: &DeviceId,
        outcome: Outcome,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A database the store runs on: its pool, and how it frames a call in a transaction. Every
/// such type is a [`Store`]: the implementation below opens the transaction, runs the step
/// from this module and commits.
pub(super) trait Backend: Send + Sync + 'static {
    /// The sqlx driver, whose connections run the [`Queries`].
    type Db: Database<Connection: Queries>;

    /// The pool that reads (and, unless [`write_connections`](Self::write_connections) says
    /// otherwise, writes).
    fn connections(&self) -> &Pool<Self::Db>;

    /// The pool whose connections write outside [`write`](Self::write)'s transactions (the
    /// event pruning). The default is [`connections`](Self::connections).
    fn write_connections(&self) -> &Pool<Self::Db> {
        self.connections()
    }

    /// A transaction that writes, holding what keeps concurrent writers apart (SQLite's
    /// write lock; PostgreSQL's row and advisory locks come with the statements).
    fn write(
        &self,
        op: &'static str,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;

    /// A transaction that reads one snapshot.
    fn read(&self, op: &'static str)
    -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;

    /// Runs `job` (a check-in's or an event's writes) in a write transaction and returns what
    /// it returned once that commits. The default gives it a transaction of its own; SQLite's
    /// writer puts the jobs waiting for it into one (group commit).
    fn write_job<T: Send + 'static>(
        &self,
        op: &'static str,
        job: WriteJob<Connection<Self>, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        Self: Sized,
    {
        async move {
            let mut tx = self.write(op).await?;
            let out = job(&mut *tx).await?;
            commit::<Self>(tx, op).await?;
            Ok(out)
        }
    }

    /// Runs in a check-now request's transaction once the flag is set (PostgreSQL tells the
    /// other servers). The default does nothing.
    fn check_requested(
        &self,
        _conn: &mut <Self::Db as Database>::Connection,
        _device: &DeviceId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }
}

/// The connection of a [`Backend`].
pub(super) type Connection<B> = <<B as Backend>::Db as Database>::Connection;

/// What a [`WriteJob`] runs.
pub(super) type JobFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// Writes that go together, run on a connection `C` inside a transaction the backend opens
/// ([`Backend::write_job`]). It may run more than once (again on its own after a batch it
/// was in rolled back), so it works only from what it captured.
pub(super) type WriteJob<C, T> = Box<dyn for<'c> Fn(&'c mut C) -> JobFuture<'c, T> + Send + Sync>;

/// A [`WriteJob`] from a closure (which gets its signature from the bound here).
pub(super) fn write_job<C, T, F>(f: F) -> WriteJob<C, T>
where
    F: for<'c> Fn(&'c mut C) -> JobFuture<'c, T> + Send + Sync + 'static,
{
    Box::new(f)
}

/// A connection from the pool, outside any transaction (for single statements that read).
async fn acquire<B: Backend>(b: &B) -> Result<sqlx::pool::PoolConnection<B::Db>, StoreError> {
    b.connections().acquire().await.map_err(query_error("connect"))
}

/// A connection that writes, outside any transaction (for single statements).
async fn acquire_writer<B: Backend>(b: &B) -> Result<sqlx::pool::PoolConnection<B::Db>, StoreError> {
    b.write_connections().acquire().await.map_err(query_error("connect"))
}

async fn commit<B: Backend>(tx: Transaction<'static, B::Db>, op: &'static str) -> Result<(), StoreError> {
    tx.commit().await.map_err(query_error(op))
}

#[async_trait]
impl<B: Backend> Store for B {
    async fn ping(&self) -> Result<(), StoreError> {
        Queries::ping(&mut *acquire(self).await?).await
    }

    async fn check_in(
        &self,
        device: &DeviceId,
        report: &Report,
        certificate_tags: &[Tag],
        now: OffsetDateTime,
    ) -> Result<CheckInOutcome, StoreError> {
        // SQLite: the write lock first, so the read-and-clear of the flag cannot race an
        // operator's request (PostgreSQL: the row lock of the UPDATE decides).
        let args = Arc::new((device.clone(), report.clone(), certificate_tags.to_vec()));
        let job = write_job(move |conn: &mut Connection<B>| {
            let args = Arc::clone(&args);
            Box::pin(async move { check_in(conn, &args.0, &args.1, &args.2, now).await })
        });
        self.write_job("record a check-in", job).await
    }

    async fn append_event(
        &self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let args = Arc::new((device.clone(), event.clone()));
        let job = write_job(move |conn: &mut Connection<B>| {
            let args = Arc::clone(&args);
            Box::pin(async move { append_event(conn, &args.0, &args.1, now).await })
        });
        self.write_job("record an event", job).await
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        devices(&mut *acquire(self).await?, None).await
    }

    async fn device(&self, device: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(devices(&mut *acquire(self).await?, Some(device)).await?.into_iter().next())
    }

    async fn devices_page(&self, after: Option<&DeviceId>, limit: u32) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut conn = acquire(self).await?;
        let rows = conn.device_page_rows(after.map_or("", DeviceId::as_str), limit).await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn version_summary(&self, online_since: OffsetDateTime) -> Result<Vec<VersionSummary>, StoreError> {
        let rows = acquire(self).await?.version_summary_rows(online_since).await?;
        let count = |row: &_, column| -> Result<u64, StoreError> {
            u64::try_from(Columns::int(row, column)?).map_err(|_| corrupt(format_args!("negative {column}")))
        };
        rows.iter()
            .map(|row| {
                Ok(VersionSummary {
                    version: row.opt_text("version")?,
                    devices: count(row, "devices")?,
                    online: count(row, "online")?,
                    failing: count(row, "failing")?,
                })
            })
            .collect()
    }

    async fn releases_page(&self, after: i64, limit: u32) -> Result<Vec<ReleaseRecord>, StoreError> {
        acquire(self).await?.release_page_rows(after, limit).await?.iter().map(release_from_row).collect()
    }

    async fn tag_members_page(
        &self,
        tag: &Tag,
        after: Option<&DeviceId>,
        limit: u32,
    ) -> Result<Vec<(DeviceId, String)>, StoreError> {
        let rows = acquire(self).await?.tag_member_page_rows(tag, after.map_or("", DeviceId::as_str), limit).await?;
        members_from_rows(rows)
    }

    async fn deployments_page(&self, before: Option<i64>, limit: u32) -> Result<Vec<DeploymentRecord>, StoreError> {
        let mut tx = self.read("begin reading deployments").await?;
        let rows = tx.deployment_page_rows(before.unwrap_or(i64::MAX), limit).await?;
        let stored = rows.iter().map(deployment_from_row).collect::<Result<Vec<_>, _>>()?;
        let d = with_counts(&mut *tx, stored, Counts::All).await?;
        commit::<B>(tx, "end reading deployments").await?;
        Ok(d.into_iter().map(|d| d.record).collect())
    }

    async fn prune_events(
        &self,
        retention: &EventRetention,
        since_seq: i64,
        now: OffsetDateTime,
    ) -> Result<Pruned, StoreError> {
        // One statement at a time, outside a transaction: a large prune never holds SQLite's
        // write lock for long.
        let mut conn = acquire_writer(self).await?;
        let mut deleted = 0;
        if let Some(age) = retention.max_age {
            deleted += conn.delete_events_before(now - age).await?;
        }
        let (devices, newest_seq) = conn.devices_with_events_after(since_seq).await?;
        if let Some(keep) = retention.per_device {
            for device in &devices {
                deleted += conn.keep_newest_events(device, keep).await?;
            }
        }
        Ok(Pruned { deleted, newest_seq })
    }

    async fn events(&self, device: &DeviceId, after: i64, limit: u32) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let mut tx = self.read("begin reading events").await?;
        let found = events(&mut *tx, device, after, limit).await?;
        commit::<B>(tx, "end reading events").await?;
        Ok(found)
    }

    async fn request_check(&self, device: &DeviceId, actor: &Actor, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.write("begin a check-now request").await?;
        if !request_check(&mut *tx, device, actor, now).await? {
            return Ok(false);
        }
        let conn: &mut Connection<B> = &mut tx;
        self.check_requested(conn, device).await?;
        commit::<B>(tx, "commit a check-now request").await?;
        Ok(true)
    }

    async fn create_release(
        &self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ReleaseRecord, StoreError> {
        let mut tx = self.write("begin a release").await?;
        let r = create_release(&mut *tx, release, actor, now).await?;
        commit::<B>(tx, "commit a release").await?;
        Ok(r)
    }

    async fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        releases(&mut *acquire(self).await?, None).await
    }

    async fn release(&self, id: i64) -> Result<Option<ReleaseRecord>, StoreError> {
        release(&mut *acquire(self).await?, id).await
    }

    async fn tag_devices(
        &self,
        tag: &Tag,
        devices: &[DeviceId],
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write("begin tagging").await?;
        let n = tag_devices(&mut *tx, tag, devices, actor, now).await?;
        commit::<B>(tx, "commit tags").await?;
        Ok(n)
    }

    async fn untag_device(
        &self,
        tag: &Tag,
        device: &DeviceId,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write("begin a tag removal").await?;
        let removed = untag_device(&mut *tx, tag, device, actor, now).await?;
        commit::<B>(tx, "commit a tag removal").await?;
        Ok(removed)
    }

    async fn tag_members(&self, tag: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError> {
        tag_members(&mut *acquire(self).await?, tag).await
    }

    async fn create_deployment(
        &self,
        deployment: &NewDeployment,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        let mut tx = self.write("begin a deployment").await?;
        let d = create_deployment(&mut *tx, deployment, actor, now).await?;
        commit::<B>(tx, "commit a deployment").await?;
        Ok(d)
    }

    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        // One snapshot for the rows and their counts.
        let mut tx = self.read("begin reading deployments").await?;
        let d = deployments(&mut *tx).await?;
        commit::<B>(tx, "end reading deployments").await?;
        Ok(d)
    }

    async fn deployment(&self, id: i64) -> Result<Option<DeploymentRecord>, StoreError> {
        let mut tx = self.read("begin reading a deployment").await?;
        let d = deployment(&mut *tx, id).await?;
        commit::<B>(tx, "end reading a deployment").await?;
        Ok(d)
    }

    async fn control_deployment(
        &self,
        id: i64,
        control: Control,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        let mut tx = self.write("begin a deployment change").await?;
        let d = control_deployment(&mut *tx, id, control, actor, now).await?;
        commit::<B>(tx, "commit a deployment change").await?;
        Ok(d)
    }

    async fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        audit_log(&mut *acquire(self).await?, after, limit).await
    }

    async fn device_action(&self, deployment: i64, device: &DeviceId) -> Result<Option<DeviceAction>, StoreError> {
        device_action(&mut *acquire(self).await?, deployment, device).await
    }

    async fn pending_cancel(&self, device: &DeviceId) -> Result<Option<i64>, StoreError> {
        acquire(self).await?.pending_cancel(device).await
    }

    async fn attributes(&self, device: &DeviceId) -> Result<Vec<(String, String)>, StoreError> {
        acquire(self).await?.attribute_rows(device).await
    }

    async fn set_attributes(
        &self,
        device: &DeviceId,
        mode: AttributeMode,
        data: &[(String, String)],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write("begin attributes").await?;
        let held = set_attributes(&mut *tx, device, mode, data, now).await?;
        commit::<B>(tx, "commit attributes").await?;
        Ok(held)
    }

    async fn answer_cancel(
        &self,
        deployment: i64,
        device: &DeviceId,
        answer: Option<CancelAnswer>,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.write("begin a cancel answer").await?;
        let seq = answer_cancel(&mut *tx, deployment, device, answer, event, now).await?;
        commit::<B>(tx, "commit a cancel answer").await?;
        Ok(seq)
    }

    async fn set_target_token(
        &self,
        device: &DeviceId,
        digest: &str,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.write("begin a target token").await?;
        set_target_token(&mut *tx, device, digest, actor, now).await?;
        commit::<B>(tx, "commit a target token").await
    }

    async fn target_token(&self, device: &DeviceId) -> Result<Option<String>, StoreError> {
        acquire(self).await?.target_token_digest(device).await
    }
}

// ---- Rows into records ----

/// How a failed statement becomes a [`StoreError::Query`]: `op` says what was being done.
pub(super) fn query_error(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Query { op, source: Box::new(e) }
}

/// A time as RFC 3339 text in UTC (as devices are told it, and as SQLite stores it).
pub(super) fn format_time(t: OffsetDateTime) -> Result<String, StoreError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| corrupt(format_args!("cannot format {t}: {e}")))
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn to_u32(column: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt(format_args!("{column}: {v} out of range")))
}

/// A device row (`id`, `compatible`, `version`, `booted`, `primary_slot`, `slots` as JSON
/// text, `first_seen`, `last_checkin`, `check_now`) with its newest event, if any (`seq`,
/// `kind`, `event_version`, `reason`, `device_time`, `received`).
pub(super) fn device_from_row(row: &impl Columns) -> Result<DeviceRecord, StoreError> {
    let id = row.text("id")?;
    let id = DeviceId::parse(&id).map_err(|e| corrupt(format_args!("device id {id:?}: {e}")))?;
    let slots: Vec<SlotReport> =
        serde_json::from_str(&row.text("slots")?).map_err(|e| corrupt(format_args!("slots of {id}: {e}")))?;
    let last_event = match row.opt_int("seq")? {
        None => None,
        Some(seq) => Some(event_from_row(row, seq, "event_version")?),
    };
    Ok(DeviceRecord {
        report: Report {
            compatible: row.opt_text("compatible")?,
            version: row.opt_text("version")?,
            booted: row.opt_text("booted")?,
            primary: row.opt_text("primary_slot")?,
            slots,
        },
        first_seen: row.time("first_seen")?,
        last_checkin: row.opt_time("last_checkin")?,
        check_now_pending: row.flag("check_now")?,
        last_event,
        id,
    })
}

/// An event row (`kind`, the version in `version_column`, `reason`, `device_time`,
/// `received`).
pub(super) fn event_from_row(
    row: &impl Columns,
    seq: i64,
    version_column: &'static str,
) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq,
        // Any name: kinds newer than this server are stored and listed back as they came.
        kind: EventKind::from_name(&row.text("kind")?),
        version: row.opt_text(version_column)?,
        reason: row.opt_text("reason")?,
        time: row.time("device_time")?,
        received: row.time("received")?,
    })
}

/// An audit row (every column of `operator_audit`).
pub(super) fn audit_from_row(row: &impl Columns) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.int("seq")?,
        time: row.text("time")?,
        actor: row.text("actor")?,
        role: row.text("role")?,
        action: row.text("action")?,
        subject: row.text("subject")?,
        details: row.text("details")?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

/// The release columns as [`release_from_row`] reads them, from `releases r`.
pub(super) const RELEASE_COLUMNS: &str =
    "r.id AS r_id, r.target, r.version AS r_version, r.created AS r_created, r.created_by AS r_created_by";

/// A release row ([`RELEASE_COLUMNS`]).
pub(super) fn release_from_row(row: &impl Columns) -> Result<ReleaseRecord, StoreError> {
    Ok(ReleaseRecord {
        id: row.int("r_id")?,
        target: row.text("target")?,
        version: row.text("r_version")?,
        created: row.time("r_created")?,
        created_by: row.text("r_created_by")?,
    })
}

/// A deployment row without its counts.
struct StoredDeployment {
    record: DeploymentRecord,
    waived_wave: Option<u32>,
}

/// A deployment row (every column of `deployments`, JSON as text, and [`RELEASE_COLUMNS`]);
/// its waves' counts are zero.
fn deployment_from_row(row: &impl Columns) -> Result<StoredDeployment, StoreError> {
    let id = row.int("id")?;
    let waves: Vec<Wave> =
        serde_json::from_str(&row.text("waves")?).map_err(|e| corrupt(format_args!("deployment {id} waves: {e}")))?;
    let record = DeploymentRecord {
        id,
        release: release_from_row(row)?,
        tag: Tag::parse(&row.text("tag")?).map_err(|e| corrupt(format_args!("deployment {id} tag: {e}")))?,
        state: DeploymentState::from_name(&row.text("state")?),
        pause_reason: row.opt_text("pause_reason")?,
        current_wave: to_u32("current_wave", row.int("current_wave")?)?,
        wave_opened: row.time("wave_opened")?,
        min_wave_interval_secs: u64::try_from(row.int("min_wave_interval")?)
            .map_err(|_| corrupt(format_args!("deployment {id}: negative interval")))?,
        max_failure_percent: u8::try_from(row.int("max_failure_percent")?)
            .map_err(|_| corrupt(format_args!("deployment {id}: bad threshold")))?,
        maintenance_window: row
            .opt_text("maintenance_window")?
            .map(|w| serde_json::from_str(&w))
            .transpose()
            .map_err(|e| corrupt(format_args!("deployment {id} maintenance window: {e}")))?,
        rollback_on_abort: row.flag("rollback_on_abort")?,
        waves: waves
            .into_iter()
            .map(|plan| WaveView { plan, devices: 0, assigned: 0, attempted: 0, failed: 0, succeeded: 0 })
            .collect(),
        created: row.time("created")?,
        created_by: row.text("created_by")?,
    };
    let waived_wave = row.opt_int("waived_wave")?.map(|w| to_u32("waived_wave", w)).transpose()?;
    Ok(StoredDeployment { record, waived_wave })
}

// ---- Devices and events ----

/// Every device (or `one`).
pub(super) async fn devices(conn: &mut impl Queries, one: Option<&DeviceId>) -> Result<Vec<DeviceRecord>, StoreError> {
    conn.device_rows(one).await?.iter().map(device_from_row).collect()
}

/// [`Store::check_in`](super::Store::check_in) inside the caller's transaction.
pub(super) async fn check_in(
    conn: &mut impl Queries,
    device: &DeviceId,
    report: &Report,
    certificate_tags: &[Tag],
    now: OffsetDateTime,
) -> Result<CheckInOutcome, StoreError> {
    let slots = serde_json::to_string(&report.slots).map_err(corrupt)?;
    let check_now = conn.take_check_now(device).await?;
    conn.record_report(device, report, &slots, now).await?;
    set_certificate_tags(conn, device, certificate_tags, now).await?;
    let assignment = assignment(conn, device, now).await?;
    Ok(CheckInOutcome { check_now, assignment })
}

/// [`Store::append_event`](super::Store::append_event) inside the caller's transaction.
pub(super) async fn append_event(
    conn: &mut impl Queries,
    device: &DeviceId,
    event: &CheckedEvent,
    now: OffsetDateTime,
) -> Result<i64, StoreError> {
    conn.ensure_device(device, now).await?;
    let seq = conn.insert_event(device, event, now).await?;
    record_event(conn, device, &event.kind, event.deployment, now).await?;
    Ok(seq)
}

/// [`Store::events`](super::Store::events) inside the caller's transaction.
pub(super) async fn events(
    conn: &mut impl Queries,
    device: &DeviceId,
    after: i64,
    limit: u32,
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    if !conn.device_known(device).await? {
        return Ok(None);
    }
    let rows = conn.event_rows(device, after, limit).await?;
    rows.iter().map(|row| event_from_row(row, row.int("seq")?, "version")).collect::<Result<Vec<_>, _>>().map(Some)
}

/// [`Store::request_check`](super::Store::request_check) inside the caller's transaction.
pub(super) async fn request_check(
    conn: &mut impl Queries,
    device: &DeviceId,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    if !conn.set_check_now(device, now).await? {
        return Ok(false);
    }
    let action = Action { action: "check-now", subject: format!("device/{device}"), details: "{}".to_owned() };
    append_audit(conn, now, actor, action).await?;
    Ok(true)
}

// ---- The audit chain ----

/// Appends one row to the operator audit log, chained to the last ([`audit::chain`]).
pub(super) async fn append_audit(
    conn: &mut impl Queries,
    now: OffsetDateTime,
    actor: &Actor,
    action: Action,
) -> Result<AuditEntry, StoreError> {
    // One appender at a time: the chain must not fork.
    conn.lock_audit().await?;
    let last = conn.last_audit().await?;
    let entry = audit::chain(last.as_ref().map(|(s, h)| (*s, h.as_str())), now, actor, &action);
    conn.insert_audit(&entry).await?;
    tracing::info!(
        seq = entry.seq,
        actor = %entry.actor,
        action = %entry.action,
        subject = %entry.subject,
        hash = %entry.hash,
        "operator audit"
    );
    Ok(entry)
}

/// [`Store::audit_log`](super::Store::audit_log).
pub(super) async fn audit_log(conn: &mut impl Queries, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    conn.audit_rows(after, limit).await?.iter().map(audit_from_row).collect()
}

fn json(value: &serde_json::Value) -> String {
    value.to_string()
}

// ---- Releases and tags ----

/// [`Store::create_release`](super::Store::create_release) inside the caller's transaction.
pub(super) async fn create_release(
    conn: &mut impl Queries,
    release: &NewRelease,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<ReleaseRecord, StoreError> {
    let Some(id) = conn.insert_release(release, actor, now).await? else {
        return Err(StoreError::Conflict(format!("the target {:?} is registered already", release.target)));
    };
    let details = serde_json::json!({"target": release.target, "version": release.version});
    append_audit(
        conn,
        now,
        actor,
        Action { action: "create-release", subject: format!("release/{id}"), details: json(&details) },
    )
    .await?;
    self::release(conn, id).await?.ok_or_else(|| corrupt(format_args!("release {id} vanished")))
}

/// Every release (or `one`), by id.
pub(super) async fn releases(conn: &mut impl Queries, one: Option<i64>) -> Result<Vec<ReleaseRecord>, StoreError> {
    conn.release_rows(one).await?.iter().map(release_from_row).collect()
}

/// One release.
pub(super) async fn release(conn: &mut impl Queries, id: i64) -> Result<Option<ReleaseRecord>, StoreError> {
    Ok(releases(conn, Some(id)).await?.into_iter().next())
}

/// [`Store::tag_devices`](super::Store::tag_devices) inside the caller's transaction.
pub(super) async fn tag_devices(
    conn: &mut impl Queries,
    tag: &Tag,
    devices: &[DeviceId],
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    let mut added = 0;
    for d in devices {
        added += usize::from(conn.tag_by_operator(d, tag, now).await?);
    }
    let details = serde_json::json!({"devices": devices.iter().map(DeviceId::as_str).collect::<Vec<_>>()});
    append_audit(
        conn,
        now,
        actor,
        Action { action: "tag-devices", subject: format!("tag/{tag}"), details: json(&details) },
    )
    .await?;
    Ok(added)
}

/// [`Store::untag_device`](super::Store::untag_device) inside the caller's transaction.
pub(super) async fn untag_device(
    conn: &mut impl Queries,
    tag: &Tag,
    device: &DeviceId,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let removed = conn.untag(device, tag).await?;
    let details = serde_json::json!({"device": device.as_str(), "was-tagged": removed});
    append_audit(
        conn,
        now,
        actor,
        Action { action: "untag-device", subject: format!("tag/{tag}"), details: json(&details) },
    )
    .await?;
    Ok(removed)
}

/// Replaces a device's certificate tags by `tags` (operator tags are kept).
async fn set_certificate_tags(
    conn: &mut impl Queries,
    device: &DeviceId,
    tags: &[Tag],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let held = conn.certificate_tags(device).await?;
    for old in held.iter().filter(|h| !tags.iter().any(|t| t.as_str() == h.as_str())) {
        conn.drop_certificate_tag(device, old).await?;
    }
    for t in tags.iter().filter(|t| !held.iter().any(|h| h == t.as_str())) {
        conn.add_certificate_tag(device, t, now).await?;
    }
    Ok(())
}

/// [`Store::tag_members`](super::Store::tag_members).
pub(super) async fn tag_members(conn: &mut impl Queries, tag: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError> {
    members_from_rows(conn.tag_member_rows(tag).await?)
}

fn members_from_rows(rows: Vec<(String, String)>) -> Result<Vec<(DeviceId, String)>, StoreError> {
    rows.into_iter()
        .map(|(d, s)| {
            DeviceId::parse(&d).map(|d| (d, s)).map_err(|e| corrupt(format_args!("tagged device {d:?}: {e}")))
        })
        .collect()
}

// ---- Deployments ----

/// [`Store::create_deployment`](super::Store::create_deployment) inside the caller's
/// transaction.
pub(super) async fn create_deployment(
    conn: &mut impl Queries,
    plan: &NewDeployment,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<DeploymentRecord, StoreError> {
    let release = self::release(conn, plan.release)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no release {}", plan.release)))?;
    let members = tag_members(conn, &plan.tag).await?;
    if members.is_empty() {
        return Err(StoreError::Conflict(format!("the tag {:?} has no devices", plan.tag.as_str())));
    }
    let waves = serde_json::to_string(&plan.waves).map_err(corrupt)?;
    let window = plan.maintenance_window.as_ref().map(serde_json::to_string).transpose().map_err(corrupt)?;
    let id = conn.insert_deployment(plan, &waves, window.as_deref(), actor, now).await?;
    let mut ordered: Vec<(String, DeviceId)> =
        members.into_iter().map(|(d, _)| (crate::rollout::rank(id, d.as_str()), d)).collect();
    ordered.sort();
    let total = u32::try_from(ordered.len()).unwrap_or(u32::MAX);
    let sizes = crate::rollout::wave_sizes(&plan.waves, total);
    let mut devices = ordered.iter();
    for (wave, size) in sizes.iter().enumerate() {
        for (rank, device) in devices.by_ref().take(*size as usize) {
            let opened = (wave == 0).then_some(now);
            conn.place_device(id, device, i64::try_from(wave).unwrap_or(i64::MAX), rank, opened).await?;
        }
    }
    let details = serde_json::json!({
        "release": release.id, "target": release.target, "version": release.version, "tag": plan.tag,
        "waves": plan.waves, "wave-sizes": sizes, "min-wave-interval-secs": plan.min_wave_interval_secs,
        "max-failure-percent": plan.max_failure_percent, "maintenance-window": plan.maintenance_window,
        "rollback-on-abort": plan.rollback_on_abort,
    });
    append_audit(
        conn,
        now,
        actor,
        Action { action: "create-deployment", subject: format!("deployment/{id}"), details: json(&details) },
    )
    .await?;
    deployment(conn, id).await?.ok_or_else(|| corrupt(format_args!("deployment {id} vanished")))
}

/// Each wave's counts (waves without devices have no row: zeros); with `through`, the waves up to that one
/// alone (the others stay zero), which is what a check-in needs.
async fn wave_counts(
    conn: &mut impl Queries,
    id: i64,
    waves: usize,
    through: Option<u32>,
) -> Result<Vec<WaveCounts>, StoreError> {
    let rows = conn.wave_count_rows(id, through).await?;
    let mut counts = vec![WaveCounts::default(); waves];
    for row in &rows {
        let wave = usize::try_from(row.int("wave")?).unwrap_or(usize::MAX);
        let Some(c) = counts.get_mut(wave) else {
            return Err(corrupt(format_args!("deployment {id}: a device in wave {wave} of {waves}")));
        };
        *c = WaveCounts {
            devices: to_u32("devices", row.int("devices")?)?,
            assigned: to_u32("assigned", row.int("assigned")?)?,
            attempted: to_u32("attempted", row.opt_int("attempted")?.unwrap_or(0))?,
            failed: to_u32("failed", row.opt_int("failed")?.unwrap_or(0))?,
            succeeded: to_u32("succeeded", row.opt_int("succeeded")?.unwrap_or(0))?,
        };
    }
    Ok(counts)
}

/// Which counts [`deployment_rows`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// Every wave's (the operator's views).
    All,
    /// The waves opened so far (moving a deployment on).
    Opened,
    /// None (what a device is told).
    Skip,
}

async fn deployment_rows(
    conn: &mut impl Queries,
    one: Option<i64>,
    with: Counts,
) -> Result<Vec<StoredDeployment>, StoreError> {
    let rows = conn.deployment_rows(one).await?;
    let stored = rows.iter().map(deployment_from_row).collect::<Result<Vec<_>, _>>()?;
    with_counts(conn, stored, with).await
}

/// Fills in the counts [`Counts`] asks for.
async fn with_counts(
    conn: &mut impl Queries,
    stored: Vec<StoredDeployment>,
    with: Counts,
) -> Result<Vec<StoredDeployment>, StoreError> {
    let mut out = Vec::with_capacity(stored.len());
    for mut d in stored {
        let through = match with {
            Counts::All => None,
            Counts::Opened => Some(d.record.current_wave),
            Counts::Skip => {
                out.push(d);
                continue;
            }
        };
        let counts = wave_counts(conn, d.record.id, d.record.waves.len(), through).await?;
        for (view, c) in d.record.waves.iter_mut().zip(counts) {
            *view = WaveView {
                plan: view.plan,
                devices: c.devices,
                assigned: c.assigned,
                attempted: c.attempted,
                failed: c.failed,
                succeeded: c.succeeded,
            };
        }
        out.push(d);
    }
    Ok(out)
}

/// Every deployment, newest first.
pub(super) async fn deployments(conn: &mut impl Queries) -> Result<Vec<DeploymentRecord>, StoreError> {
    Ok(deployment_rows(conn, None, Counts::All).await?.into_iter().map(|d| d.record).collect())
}

/// One deployment.
pub(super) async fn deployment(conn: &mut impl Queries, id: i64) -> Result<Option<DeploymentRecord>, StoreError> {
    Ok(deployment_rows(conn, Some(id), Counts::All).await?.into_iter().next().map(|d| d.record))
}

/// Moves a running deployment on by one [`next_step`]; the server's own decisions go to the
/// audit log too.
async fn advance(conn: &mut impl Queries, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
    conn.lock_deployment(id).await?;
    let Some(d) = deployment_rows(conn, Some(id), Counts::Opened).await?.into_iter().next() else {
        return Ok(());
    };
    let r = &d.record;
    if r.state != DeploymentState::Running {
        return Ok(());
    }
    let Some(opened) = r.waves.get(..=r.current_wave as usize) else {
        return Err(corrupt(format_args!("deployment {id}: open wave {} of {}", r.current_wave, r.waves.len())));
    };
    let counts: Vec<WaveCounts> = opened.iter().map(WaveView::counts).collect();
    let progress = Progress {
        wave: r.current_wave,
        waves: u32::try_from(r.waves.len()).unwrap_or(u32::MAX),
        opened: r.wave_opened,
        min_interval: time::Duration::seconds(i64::try_from(r.min_wave_interval_secs).unwrap_or(i64::MAX)),
        max_failure_percent: r.max_failure_percent,
        waived_through: d.waived_wave,
        counts: &counts,
    };
    match next_step(&progress, now) {
        Step::Stay => {}
        Step::Pause(reason) => {
            conn.pause(id, &reason).await?;
            let opened: Vec<_> =
                counts.iter().map(|c| serde_json::json!({"attempted": c.attempted, "failed": c.failed})).collect();
            let details = serde_json::json!({"reason": reason, "wave": r.current_wave, "opened-waves": opened,
                "max-failure-percent": r.max_failure_percent});
            append_audit(
                conn,
                now,
                &Actor::server(),
                Action { action: "pause-deployment", subject: format!("deployment/{id}"), details: json(&details) },
            )
            .await?;
            tracing::warn!(deployment = id, %reason, "deployment paused automatically");
        }
        Step::Open(wave) => {
            conn.open_wave(id, wave, now).await?;
            let details = serde_json::json!({"wave": wave});
            append_audit(
                conn,
                now,
                &Actor::server(),
                Action { action: "open-wave", subject: format!("deployment/{id}"), details: json(&details) },
            )
            .await?;
            tracing::info!(deployment = id, wave, "wave opened");
        }
    }
    Ok(())
}

/// At check-in: the device's assignment from its running or paused deployment
/// ([`current_assignment`]), else the rollback its last deployment asks for, if any
/// ([`rollback_assignment`]).
async fn assignment(
    conn: &mut impl Queries,
    device: &DeviceId,
    now: OffsetDateTime,
) -> Result<Option<Assignment>, StoreError> {
    match current_assignment(conn, device, now).await? {
        Some(a) => Ok(Some(a)),
        None => rollback_assignment(conn, device).await,
    }
}

/// `rollback` when the newest deployment that told the device to install was aborted with
/// `rollback-on-abort` (the device decides whether it runs that release).
async fn rollback_assignment(conn: &mut impl Queries, device: &DeviceId) -> Result<Option<Assignment>, StoreError> {
    let Some(row) = conn.last_told(device).await? else {
        return Ok(None);
    };
    if DeploymentState::from_name(&row.text("state")?) != DeploymentState::Aborted || !row.flag("rollback_on_abort")? {
        return Ok(None);
    }
    let id = row.int("deployment_id")?;
    let Some(d) = deployment_rows(conn, Some(id), Counts::Skip).await?.into_iter().next().map(|d| d.record) else {
        return Ok(None);
    };
    Ok(Some(Assignment {
        deployment: id,
        target: d.release.target,
        version: d.release.version,
        wave: to_u32("wave", row.int("wave")?)?,
        action: AssignmentAction::Rollback,
        allowed_from: format_time(row.time("assigned")?)?,
        window: None,
        window_closes: None,
        window_opens: None,
    }))
}

/// Moves the device's running or paused deployment on, then returns its assignment (and marks
/// it told when it says install).
async fn current_assignment(
    conn: &mut impl Queries,
    device: &DeviceId,
    now: OffsetDateTime,
) -> Result<Option<Assignment>, StoreError> {
    if let Some(m) = conn.membership(device, None).await? {
        advance(conn, m.deployment, now).await?;
    }
    let Some(Membership { deployment: id, wave, opened, .. }) = conn.membership(device, None).await? else {
        return Ok(None);
    };
    let Some(d) = deployment_rows(conn, Some(id), Counts::Skip).await?.into_iter().next().map(|d| d.record) else {
        return Ok(None);
    };
    let wave = to_u32("wave", wave)?;
    let Some(opened) = opened else {
        return Ok(None); // the device's wave has not opened
    };
    let Some((action, closes, opens)) =
        crate::rollout::assignment_action(id, d.state, d.maintenance_window.as_ref(), now)
    else {
        return Ok(None);
    };
    if action == AssignmentAction::Install {
        conn.mark_told(id, device, now).await?;
    }
    let time = |t: Option<OffsetDateTime>| t.map(format_time).transpose();
    Ok(Some(Assignment {
        deployment: id,
        target: d.release.target,
        version: d.release.version,
        wave,
        action,
        allowed_from: format_time(opened)?,
        window: d.maintenance_window,
        window_closes: time(closes)?,
        window_opens: time(opens)?,
    }))
}

/// What an event counts as for its device's deployment: `None` for events that are not a
/// step of an update.
#[must_use]
pub(super) fn event_outcome(kind: &EventKind) -> Option<Outcome> {
    match kind {
        EventKind::Failed | EventKind::RolledBack => Some(Outcome::Failed),
        EventKind::Committed => Some(Outcome::Succeeded),
        EventKind::Downloading | EventKind::Installed | EventKind::Rebooted => Some(Outcome::Unchanged),
        _ => None,
    }
}

/// After an event: counts it for the device's deployment (the one the event names, else the
/// newest active one holding the device), if the device was told to install, then moves the
/// deployment on.
async fn record_event(
    conn: &mut impl Queries,
    device: &DeviceId,
    kind: &EventKind,
    deployment: Option<i64>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let Some(outcome) = event_outcome(kind) else {
        return Ok(());
    };
    let Some(Membership { deployment: id, told: true, .. }) = conn.membership(device, deployment).await? else {
        return Ok(());
    };
    // Before the device's row: a check-in takes the deployment first, then that row.
    conn.lock_deployment(id).await?;
    conn.count_attempt(id, device, outcome).await?;
    advance(conn, id, now).await
}

/// The audit action of a control, and whether a deployment in `state` allows it.
#[must_use]
fn control_action(control: Control, state: DeploymentState) -> (&'static str, bool) {
    match control {
        Control::Pause => ("pause-deployment", state == DeploymentState::Running),
        Control::Resume => ("resume-deployment", state == DeploymentState::Paused),
        Control::Abort => ("abort-deployment", matches!(state, DeploymentState::Running | DeploymentState::Paused)),
    }
}

/// [`Store::control_deployment`](super::Store::control_deployment) inside the caller's
/// transaction.
pub(super) async fn control_deployment(
    conn: &mut impl Queries,
    id: i64,
    control: Control,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<DeploymentRecord, StoreError> {
    if !conn.lock_deployment(id).await? {
        return Err(StoreError::NotFound(format!("no deployment {id}")));
    }
    let d = deployment(conn, id).await?.ok_or_else(|| StoreError::NotFound(format!("no deployment {id}")))?;
    let (action, allowed) = control_action(control, d.state);
    if !allowed {
        return Err(StoreError::Conflict(format!("deployment {id} is {}: cannot {action}", d.state.as_str())));
    }
    conn.set_state(id, control, &format!("paused by {}", actor.name), now).await?;
    let open = d.waves.get(d.current_wave as usize).map(WaveView::counts).unwrap_or_default();
    let details = serde_json::json!({"from": d.state, "wave": d.current_wave,
        "attempted": open.attempted, "failed": open.failed});
    append_audit(conn, now, actor, Action { action, subject: format!("deployment/{id}"), details: json(&details) })
        .await?;
    deployment(conn, id).await?.ok_or_else(|| corrupt(format_args!("deployment {id} vanished")))
}

// ---- hawkBit DDI ----

/// [`Store::device_action`](super::Store::device_action).
pub(super) async fn device_action(
    conn: &mut impl Queries,
    deployment: i64,
    device: &DeviceId,
) -> Result<Option<DeviceAction>, StoreError> {
    let Some(row) = conn.action_row(deployment, device).await? else {
        return Ok(None);
    };
    let outcome = match row.opt_text("outcome")?.as_deref() {
        None => None,
        Some("succeeded") => Some(ActionOutcome::Succeeded),
        Some("failed") => Some(ActionOutcome::Failed),
        Some(other) => return Err(corrupt(format_args!("deployment {deployment}: outcome {other:?}"))),
    };
    let cancel_answer = match row.opt_text("cancel_answer")?.as_deref() {
        None => None,
        Some("canceled") => Some(CancelAnswer::Canceled),
        Some("rejected") => Some(CancelAnswer::Rejected),
        Some(other) => return Err(corrupt(format_args!("deployment {deployment}: cancel answer {other:?}"))),
    };
    Ok(Some(DeviceAction {
        told: row.flag("told")?,
        outcome,
        cancel_answer,
        state: DeploymentState::from_name(&row.text("state")?),
    }))
}

/// [`Store::set_attributes`](super::Store::set_attributes) inside the caller's transaction.
pub(super) async fn set_attributes(
    conn: &mut impl Queries,
    device: &DeviceId,
    mode: AttributeMode,
    data: &[(String, String)],
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    conn.ensure_device(device, now).await?;
    match mode {
        AttributeMode::Merge | AttributeMode::Replace => {
            if mode == AttributeMode::Replace {
                conn.delete_attributes(device, None).await?;
            }
            for (name, value) in data {
                conn.upsert_attribute(device, name, value, now).await?;
            }
        }
        AttributeMode::Remove => {
            for (name, _) in data {
                conn.delete_attributes(device, Some(name)).await?;
            }
        }
    }
    let held = conn.attribute_rows(device).await?.len();
    if held > MAX_ATTRIBUTES {
        // The caller's transaction is not committed: nothing changes.
        return Err(StoreError::Conflict(format!("a device holds at most {MAX_ATTRIBUTES} attributes, not {held}")));
    }
    Ok(held)
}

/// [`Store::answer_cancel`](super::Store::answer_cancel) inside the caller's transaction.
pub(super) async fn answer_cancel(
    conn: &mut impl Queries,
    deployment: i64,
    device: &DeviceId,
    answer: Option<CancelAnswer>,
    event: &CheckedEvent,
    now: OffsetDateTime,
) -> Result<Option<i64>, StoreError> {
    if conn.pending_cancel(device).await? != Some(deployment) {
        return Ok(None);
    }
    if let Some(answer) = answer
        && !conn.set_cancel_answer(deployment, device, answer).await?
    {
        return Ok(None);
    }
    // The deployment is aborted: the event is the device's history, counted for no wave.
    conn.ensure_device(device, now).await?;
    conn.insert_event(device, event, now).await.map(Some)
}

/// [`Store::set_target_token`](super::Store::set_target_token) inside the caller's transaction.
pub(super) async fn set_target_token(
    conn: &mut impl Queries,
    device: &DeviceId,
    digest: &str,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(StoreError::Conflict("a target token digest is 64 lowercase hex digits".to_owned()));
    }
    conn.upsert_target_token(device, digest, actor, now).await?;
    append_audit(
        conn,
        now,
        actor,
        Action {
            action: "set-target-token",
            subject: format!("device/{device}"),
            details: json(&serde_json::json!({})),
        },
    )
    .await?;
    Ok(())
}
