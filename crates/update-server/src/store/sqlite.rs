//! The SQLite store: one file, WAL mode, migrations embedded in the binary. What it does is
//! [`logic`](super::logic); this file opens the database, frames each call in a transaction
//! and converts SQLite's column types ([`Columns`]).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::logic::{self, Columns, query_error};
use super::{CheckInOutcome, Control, DeploymentRecord, DeviceRecord, ReleaseRecord, Store, StoreError, StoredEvent};
use crate::audit::{Actor, AuditEntry};
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, Report, Tag};

/// `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

/// Writers wait this long for the lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Devices and events in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

pub(super) fn parse_time(column: &str, s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Corrupt(format!("{column}: bad time {s:?}: {e}")))
}

impl SqliteStore {
    /// Opens (creating it if needed) and migrates the database at `url` (`sqlite:PATH`,
    /// `sqlite://PATH`, `sqlite::memory:`), in WAL mode with `synchronous = NORMAL`.
    ///
    /// # Errors
    /// The file cannot be opened or created, or the migrations fail.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |e: sqlx::Error| StoreError::Open { url: url.to_owned(), source: Box::new(e) };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // One connection for an in-memory database: each connection would get its own.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 8 })
            .connect_with(options)
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migrate { url: url.to_owned(), source: Box::new(e) })?;
        Ok(Self { pool })
    }

    /// A write transaction holding SQLite's write lock from its start (`BEGIN IMMEDIATE`), so
    /// the audit chain's last row, a deployment's counts and a device's check-now flag cannot
    /// change under it.
    async fn write(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error(op))
    }

    /// A read transaction (one snapshot).
    async fn read(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin().await.map_err(query_error(op))
    }

    /// The pool (for tests and maintenance).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn get<'r, T>(row: &'r SqliteRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(query_error("read a row"))
}

/// Times are RFC 3339 text, flags 0 or 1.
impl Columns for SqliteRow {
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
        Ok(get::<i64>(self, column)? != 0)
    }

    fn time(&self, column: &'static str) -> Result<OffsetDateTime, StoreError> {
        parse_time(column, &get::<String>(self, column)?)
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
        get::<Option<String>>(self, column)?.map(|t| parse_time(column, &t)).transpose()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(query_error("ping"))?;
        Ok(())
    }

    async fn check_in(
        &self,
        device: &DeviceId,
        report: &Report,
        certificate_tags: &[Tag],
        now: OffsetDateTime,
    ) -> Result<CheckInOutcome, StoreError> {
        // IMMEDIATE: take the write lock first, so the read-and-clear of the flag cannot race
        // an operator's request.
        let mut tx = self.write("begin a check-in").await?;
        let outcome = logic::check_in(&mut *tx, device, report, certificate_tags, now).await?;
        tx.commit().await.map_err(query_error("commit a check-in"))?;
        Ok(outcome)
    }

    async fn append_event(
        &self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write("begin an event").await?;
        let seq = logic::append_event(&mut *tx, device, event, now).await?;
        tx.commit().await.map_err(query_error("commit an event"))?;
        Ok(seq)
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        logic::devices(&mut *conn, None).await
    }

    async fn device(&self, device: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        Ok(logic::devices(&mut *conn, Some(device)).await?.into_iter().next())
    }

    async fn events(&self, device: &DeviceId, after: i64, limit: u32) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let mut tx = self.read("begin reading events").await?;
        let events = logic::events(&mut *tx, device, after, limit).await?;
        tx.commit().await.map_err(query_error("end reading events"))?;
        Ok(events)
    }

    async fn request_check(&self, device: &DeviceId, actor: &Actor, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.write("begin a write").await?;
        if !logic::request_check(&mut *tx, device, actor, now).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(query_error("commit a check-now request"))?;
        Ok(true)
    }

    async fn create_release(
        &self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ReleaseRecord, StoreError> {
        let mut tx = self.write("begin a write").await?;
        let r = logic::create_release(&mut *tx, release, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a release"))?;
        Ok(r)
    }

    async fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        logic::releases(&mut *conn, None).await
    }

    async fn release(&self, id: i64) -> Result<Option<ReleaseRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        logic::release(&mut *conn, id).await
    }

    async fn tag_devices(
        &self,
        tag: &Tag,
        devices: &[DeviceId],
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write("begin a write").await?;
        let n = logic::tag_devices(&mut *tx, tag, devices, actor, now).await?;
        tx.commit().await.map_err(query_error("commit tags"))?;
        Ok(n)
    }

    async fn untag_device(
        &self,
        tag: &Tag,
        device: &DeviceId,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write("begin a write").await?;
        let removed = logic::untag_device(&mut *tx, tag, device, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a tag removal"))?;
        Ok(removed)
    }

    async fn tag_members(&self, tag: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        logic::tag_members(&mut *conn, tag).await
    }

    async fn create_deployment(
        &self,
        deployment: &NewDeployment,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        let mut tx = self.write("begin a write").await?;
        let d = logic::create_deployment(&mut *tx, deployment, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment"))?;
        Ok(d)
    }

    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        let mut tx = self.read("begin reading deployments").await?;
        let d = logic::deployments(&mut *tx).await?;
        tx.commit().await.map_err(query_error("end reading deployments"))?;
        Ok(d)
    }

    async fn deployment(&self, id: i64) -> Result<Option<DeploymentRecord>, StoreError> {
        let mut tx = self.read("begin reading a deployment").await?;
        let d = logic::deployment(&mut *tx, id).await?;
        tx.commit().await.map_err(query_error("end reading a deployment"))?;
        Ok(d)
    }

    async fn control_deployment(
        &self,
        id: i64,
        control: Control,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        let mut tx = self.write("begin a write").await?;
        let d = logic::control_deployment(&mut *tx, id, control, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment change"))?;
        Ok(d)
    }

    async fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        logic::audit_log(&mut *conn, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    // The behaviour every store shares is tested once for each backend: tests/store/.
    use time::macros::datetime;

    use super::*;
    use update_protocol::{SlotReport, SlotState};

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_file_in_wal_mode_that_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("server.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
        assert_eq!(mode, "wal");
        let report = Report {
            compatible: Some("demo".into()),
            version: Some("1.0.0".into()),
            booted: Some("A".into()),
            primary: Some("A".into()),
            slots: vec![SlotReport { name: "A".into(), state: SlotState::Good, version: Some("1.0.0".into()) }],
        };
        store.check_in(&id("d1"), &report, &[], datetime!(2026-03-01 09:00 UTC)).await.unwrap();
        store.pool().close().await;

        // Migrations run again on open and find nothing to do; the data is still there.
        let store = SqliteStore::open(&url).await.unwrap();
        let d = store.device(&id("d1")).await.unwrap().unwrap();
        assert_eq!(d.report, report);
        assert_eq!(d.last_checkin, Some(datetime!(2026-03-01 09:00 UTC)));
        assert!(dir.path().join("server.db-wal").exists());
    }
}
