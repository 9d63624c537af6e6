//! The SQLite store: one file, WAL mode, migrations embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::sqlite_rollouts as rollouts;
use super::{CheckInOutcome, Control, DeploymentRecord, DeviceRecord, ReleaseRecord, Store, StoreError, StoredEvent};
use crate::audit::{Actor, AuditEntry};
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, EventKind, Report, SlotReport, Tag};

/// `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

/// Writers wait this long for the lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Devices and events in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

pub(super) fn query_error(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Query { op, source: Box::new(e) }
}

pub(super) fn format_time(t: OffsetDateTime) -> Result<String, StoreError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("cannot format {t}: {e}")))
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
    /// the audit chain's last row cannot change under it.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error("begin a write"))
    }

    /// The pool (for tests and maintenance).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn device_rows(&self, one: Option<&DeviceId>) -> Result<Vec<DeviceRecord>, StoreError> {
        let sql = format!(
            "SELECT d.id, d.compatible, d.version, d.booted, d.primary_slot, d.slots, d.first_seen,
                    d.last_checkin, d.check_now,
                    e.seq, e.kind, e.version AS event_version, e.reason, e.device_time, e.received
             FROM devices d
             LEFT JOIN events e ON e.seq = (SELECT MAX(seq) FROM events WHERE device_id = d.id)
             {}
             ORDER BY d.id",
            if one.is_some() { "WHERE d.id = ?1" } else { "" }
        );
        let mut query = sqlx::query(&sql);
        if let Some(id) = one {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(query_error("list devices"))?;
        rows.iter().map(device_from_row).collect()
    }
}

pub(super) fn get<'r, T>(row: &'r SqliteRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(query_error("read a row"))
}

fn device_from_row(row: &SqliteRow) -> Result<DeviceRecord, StoreError> {
    let id: String = get(row, "id")?;
    let id = DeviceId::parse(&id).map_err(|e| StoreError::Corrupt(format!("device id {id:?}: {e}")))?;
    let slots: String = get(row, "slots")?;
    let slots: Vec<SlotReport> =
        serde_json::from_str(&slots).map_err(|e| StoreError::Corrupt(format!("slots of {id}: {e}")))?;
    let last_checkin: Option<String> = get(row, "last_checkin")?;
    let seq: Option<i64> = get(row, "seq")?;
    let last_event = match seq {
        None => None,
        Some(seq) => Some(event_from_row(row, seq, "event_version")?),
    };
    Ok(DeviceRecord {
        report: Report {
            compatible: get(row, "compatible")?,
            version: get(row, "version")?,
            booted: get(row, "booted")?,
            primary: get(row, "primary_slot")?,
            slots,
        },
        first_seen: parse_time("first_seen", &get::<String>(row, "first_seen")?)?,
        last_checkin: last_checkin.map(|t| parse_time("last_checkin", &t)).transpose()?,
        check_now_pending: get::<i64>(row, "check_now")? != 0,
        last_event,
        id,
    })
}

fn event_from_row(row: &SqliteRow, seq: i64, version_column: &'static str) -> Result<StoredEvent, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(StoredEvent {
        seq,
        // Any name: kinds newer than this server are stored and listed back as they came.
        kind: EventKind::from_name(&kind),
        version: get(row, version_column)?,
        reason: get(row, "reason")?,
        time: parse_time("device_time", &get::<String>(row, "device_time")?)?,
        received: parse_time("received", &get::<String>(row, "received")?)?,
    })
}

/// Creates the device row if it does not exist.
async fn ensure_device(conn: &mut SqliteConnection, device: &DeviceId, now: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO devices (id, first_seen) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING")
        .bind(device.as_str())
        .bind(now)
        .execute(conn)
        .await
        .map_err(query_error("create a device"))?;
    Ok(())
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
        now_time: OffsetDateTime,
    ) -> Result<CheckInOutcome, StoreError> {
        let now = format_time(now_time)?;
        let slots = serde_json::to_string(&report.slots).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // IMMEDIATE: take the write lock first, so the read-and-clear of the flag cannot race
        // an operator's request.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error("begin a check-in"))?;
        let pending =
            sqlx::query("UPDATE devices SET check_now = 0, check_now_requested = NULL WHERE id = ?1 AND check_now = 1")
                .bind(device.as_str())
                .execute(&mut *tx)
                .await
                .map_err(query_error("take the check-now flag"))?
                .rows_affected()
                > 0;
        sqlx::query(
            "INSERT INTO devices (id, compatible, version, booted, primary_slot, slots, first_seen, last_checkin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (id) DO UPDATE SET
                 compatible = excluded.compatible, version = excluded.version, booted = excluded.booted,
                 primary_slot = excluded.primary_slot, slots = excluded.slots,
                 last_checkin = excluded.last_checkin",
        )
        .bind(device.as_str())
        .bind(&report.compatible)
        .bind(&report.version)
        .bind(&report.booted)
        .bind(&report.primary)
        .bind(slots)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(query_error("record a check-in"))?;
        rollouts::set_certificate_tags(&mut tx, device, certificate_tags, &now).await?;
        let assignment = rollouts::assignment(&mut tx, device, now_time).await?;
        tx.commit().await.map_err(query_error("commit a check-in"))?;
        Ok(CheckInOutcome { check_now: pending, assignment })
    }

    async fn append_event(
        &self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let now_time = now;
        let now = format_time(now)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error("begin an event"))?;
        ensure_device(&mut tx, device, &now).await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO events (device_id, kind, version, reason, device_time, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
        )
        .bind(device.as_str())
        .bind(event.kind.as_str())
        .bind(&event.version)
        .bind(&event.reason)
        .bind(format_time(event.time)?)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_error("append an event"))?;
        rollouts::record_event(&mut tx, device, &event.kind, event.deployment, now_time).await?;
        tx.commit().await.map_err(query_error("commit an event"))?;
        Ok(seq)
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.device_rows(None).await
    }

    async fn device(&self, device: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.device_rows(Some(device)).await?.into_iter().next())
    }

    async fn events(&self, device: &DeviceId, after: i64, limit: u32) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin reading events"))?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM devices WHERE id = ?1")
            .bind(device.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_error("find a device"))?;
        if known.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT seq, kind, version, reason, device_time, received FROM events
             WHERE device_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .bind(device.as_str())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(query_error("list events"))?;
        tx.commit().await.map_err(query_error("end reading events"))?;
        rows.iter().map(|row| event_from_row(row, get(row, "seq")?, "version")).collect::<Result<Vec<_>, _>>().map(Some)
    }

    async fn request_check(&self, device: &DeviceId, actor: &Actor, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query("UPDATE devices SET check_now = 1, check_now_requested = ?2 WHERE id = ?1")
            .bind(device.as_str())
            .bind(format_time(now)?)
            .execute(&mut *tx)
            .await
            .map_err(query_error("set the check-now flag"))?
            .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let action =
            crate::audit::Action { action: "check-now", subject: format!("device/{device}"), details: "{}".to_owned() };
        rollouts::append_audit(&mut tx, now, actor, action).await?;
        tx.commit().await.map_err(query_error("commit a check-now request"))?;
        Ok(true)
    }

    async fn create_release(
        &self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ReleaseRecord, StoreError> {
        let mut tx = self.write().await?;
        let r = rollouts::create_release(&mut tx, release, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a release"))?;
        Ok(r)
    }

    async fn releases(&self) -> Result<Vec<ReleaseRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        rollouts::releases(&mut conn, None).await
    }

    async fn release(&self, id: i64) -> Result<Option<ReleaseRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        rollouts::release(&mut conn, id).await
    }

    async fn tag_devices(
        &self,
        tag: &Tag,
        devices: &[DeviceId],
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        let n = rollouts::tag_devices(&mut tx, tag, devices, actor, now).await?;
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
        let mut tx = self.write().await?;
        let removed = rollouts::untag_device(&mut tx, tag, device, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a tag removal"))?;
        Ok(removed)
    }

    async fn tag_members(&self, tag: &Tag) -> Result<Vec<(DeviceId, String)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_error("connect"))?;
        rollouts::tag_members(&mut conn, tag).await
    }

    async fn create_deployment(
        &self,
        deployment: &NewDeployment,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, StoreError> {
        let mut tx = self.write().await?;
        let d = rollouts::create_deployment(&mut tx, deployment, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment"))?;
        Ok(d)
    }

    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin reading deployments"))?;
        let d = rollouts::deployments(&mut tx).await?;
        tx.commit().await.map_err(query_error("end reading deployments"))?;
        Ok(d)
    }

    async fn deployment(&self, id: i64) -> Result<Option<DeploymentRecord>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin reading a deployment"))?;
        let d = rollouts::deployment(&mut tx, id).await?;
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
        let mut tx = self.write().await?;
        let d = rollouts::control_deployment(&mut tx, id, control, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment change"))?;
        Ok(d)
    }

    async fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, time, actor, role, action, subject, details, prev_hash, hash FROM operator_audit
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("read the audit log"))?;
        rows.iter().map(rollouts::audit_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    // The behaviour every store shares is tested once for each backend: tests/store/.
    use time::macros::datetime;

    use super::*;
    use update_protocol::SlotState;

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
