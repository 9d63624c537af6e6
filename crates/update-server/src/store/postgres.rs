//! The PostgreSQL store: several servers share one database, and a check-now request issued
//! through one of them reaches a device whose push stream another holds (`LISTEN/NOTIFY`).
//!
//! Same tables as the SQLite store, with PostgreSQL's types (`migrations-postgres/`, compiled
//! in). Concurrency: PostgreSQL runs transactions side by side where SQLite takes one write
//! lock, so the rules that lock kept are explicit here:
//! - the check-now flag is taken by `UPDATE … WHERE check_now` (the row lock decides which
//!   check-in gets it);
//! - whatever moves a deployment on locks its row first (`SELECT … FOR UPDATE`), then, to
//!   append to the audit chain, one transaction-scoped advisory lock: always in that order,
//!   so two servers cannot deadlock on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, PgConnection, Row};
use time::OffsetDateTime;

use super::postgres_rollouts as rollouts;
use super::sqlite::query_error;
use super::{CheckInOutcome, Control, DeploymentRecord, DeviceRecord, ReleaseRecord, Store, StoreError, StoredEvent};
use crate::audit::{Actor, AuditEntry};
use crate::push::PushHub;
use update_protocol::push::PushEvent;
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, EventKind, Report, SlotReport, Tag};

/// `migrations-postgres/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations-postgres");

/// The `NOTIFY` channel of check-now requests. The payload is `INSTANCE DEVICE-ID`.
pub const PUSH_CHANNEL: &str = "update_server_push";

/// Connections per server.
const MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Devices and events in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    options: PgConnectOptions,
    /// Names this store's own notifications, so its listener skips them (the local hub got
    /// them already).
    instance: String,
    /// The URL with its password hidden (for messages).
    shown_url: String,
}

/// `url` with any password replaced by `***`: in the user part (`postgres://user:secret@…`)
/// and in a `password=` query parameter. Only this form of a database URL is ever shown.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?', '#']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

/// A name for this process's store that no other server shares.
fn instance_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{}-{nanos:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl PgStore {
    /// Connects to and migrates the database at `url` (`postgres://USER:PASSWORD@HOST/DB`,
    /// `postgresql:///DB?host=/SOCKET/DIR`, and the other forms libpq knows). Several servers
    /// may open one database at once: the migrations take a lock.
    ///
    /// # Errors
    /// The URL is malformed, the server cannot be reached or refuses us, or the migrations fail.
    /// The message shows the URL without its password.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let shown_url = redact_url(url);
        let open_error = |e: sqlx::Error| StoreError::Open { url: shown_url.clone(), source: Box::new(e) };
        let options: PgConnectOptions = url.parse().map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Migrate { url: shown_url.clone(), source: Box::new(e) })?;
        Ok(Self { pool, options, instance: instance_name(), shown_url })
    }

    /// The pool (for tests and maintenance).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Delivers check-now requests made through other servers on this database to the push
    /// streams held here: a task that `LISTEN`s until the hub closes. A lost connection is
    /// re-established (requests sent meanwhile still reach the device through the stored
    /// flag, at its next check-in or stream).
    ///
    /// # Errors
    /// The first `LISTEN` fails.
    pub async fn forward_pushes(&self, hub: Arc<PushHub>) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(|e| StoreError::Open { url: self.shown_url.clone(), source: Box::new(e) })?;
        listener.listen(PUSH_CHANNEL).await.map_err(query_error("listen for pushes"))?;
        let instance = self.instance.clone();
        Ok(tokio::spawn(async move {
            loop {
                let notification = tokio::select! {
                    n = listener.try_recv() => n,
                    () = hub.closed() => return,
                };
                match notification {
                    Ok(Some(n)) => {
                        let Some((from, device)) = n.payload().split_once(' ') else {
                            tracing::warn!(payload = n.payload(), "malformed push notification");
                            continue;
                        };
                        if from == instance {
                            continue;
                        }
                        let Ok(device) = DeviceId::parse(device) else {
                            tracing::warn!(payload = n.payload(), "push notification for a bad device id");
                            continue;
                        };
                        let pushed = hub.send(&device, PushEvent::CheckNow);
                        tracing::info!(%device, pushed, from, "check-now from another server");
                    }
                    // The connection was lost; the next call reconnects and listens again.
                    Ok(None) => tracing::warn!("push listener lost its database connection; reconnecting"),
                    Err(e) => {
                        tracing::warn!(error = %e, "push listener failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }))
    }

    /// A connection outside the pool, for a test that must see what one client sees.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn connect(&self) -> Result<PgConnection, StoreError> {
        self.options.connect().await.map_err(|e| StoreError::Open { url: self.shown_url.clone(), source: Box::new(e) })
    }

    async fn device_rows(&self, one: Option<&DeviceId>) -> Result<Vec<DeviceRecord>, StoreError> {
        let sql = format!(
            "SELECT d.id, d.compatible, d.version, d.booted, d.primary_slot, d.slots::text AS slots, d.first_seen,
                    d.last_checkin, d.check_now,
                    e.seq, e.kind, e.version AS event_version, e.reason, e.device_time, e.received
             FROM devices d
             LEFT JOIN events e ON e.seq = (SELECT MAX(seq) FROM events WHERE device_id = d.id)
             {}
             ORDER BY d.id",
            if one.is_some() { "WHERE d.id = $1" } else { "" }
        );
        let mut query = sqlx::query(&sql);
        if let Some(id) = one {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(query_error("list devices"))?;
        rows.iter().map(device_from_row).collect()
    }
}

pub(super) fn get<'r, T>(row: &'r PgRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(query_error("read a row"))
}

fn device_from_row(row: &PgRow) -> Result<DeviceRecord, StoreError> {
    let id: String = get(row, "id")?;
    let id = DeviceId::parse(&id).map_err(|e| StoreError::Corrupt(format!("device id {id:?}: {e}")))?;
    let slots: String = get(row, "slots")?;
    let slots: Vec<SlotReport> =
        serde_json::from_str(&slots).map_err(|e| StoreError::Corrupt(format!("slots of {id}: {e}")))?;
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
        first_seen: get(row, "first_seen")?,
        last_checkin: get(row, "last_checkin")?,
        check_now_pending: get(row, "check_now")?,
        last_event,
        id,
    })
}

fn event_from_row(row: &PgRow, seq: i64, version_column: &'static str) -> Result<StoredEvent, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(StoredEvent {
        seq,
        // Any name: kinds newer than this server are stored and listed back as they came.
        kind: EventKind::from_name(&kind),
        version: get(row, version_column)?,
        reason: get(row, "reason")?,
        time: get(row, "device_time")?,
        received: get(row, "received")?,
    })
}

#[async_trait]
impl Store for PgStore {
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
        let slots = serde_json::to_string(&report.slots).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await.map_err(query_error("begin a check-in"))?;
        let pending =
            sqlx::query("UPDATE devices SET check_now = FALSE, check_now_requested = NULL WHERE id = $1 AND check_now")
                .bind(device.as_str())
                .execute(&mut *tx)
                .await
                .map_err(query_error("take the check-now flag"))?
                .rows_affected()
                > 0;
        sqlx::query(
            "INSERT INTO devices (id, compatible, version, booted, primary_slot, slots, first_seen, last_checkin)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $7)
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
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_error("record a check-in"))?;
        rollouts::set_certificate_tags(&mut tx, device, certificate_tags, now).await?;
        let assignment = rollouts::assignment(&mut tx, device, now).await?;
        tx.commit().await.map_err(query_error("commit a check-in"))?;
        Ok(CheckInOutcome { check_now: pending, assignment })
    }

    async fn append_event(
        &self,
        device: &DeviceId,
        event: &CheckedEvent,
        now: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin an event"))?;
        sqlx::query("INSERT INTO devices (id, first_seen) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(device.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_error("create a device"))?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO events (device_id, kind, version, reason, device_time, received)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(device.as_str())
        .bind(event.kind.as_str())
        .bind(&event.version)
        .bind(&event.reason)
        .bind(event.time)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_error("append an event"))?;
        rollouts::record_event(&mut tx, device, &event.kind, event.deployment, now).await?;
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
        let known: Option<bool> = sqlx::query_scalar("SELECT TRUE FROM devices WHERE id = $1")
            .bind(device.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_error("find a device"))?;
        if known.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT seq, kind, version, reason, device_time, received FROM events
             WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
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
        let mut tx = self.pool.begin().await.map_err(query_error("begin a check-now request"))?;
        let updated = sqlx::query("UPDATE devices SET check_now = TRUE, check_now_requested = $2 WHERE id = $1")
            .bind(device.as_str())
            .bind(now)
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
        // Delivered at commit, to every server listening on this database.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PUSH_CHANNEL)
            .bind(format!("{} {device}", self.instance))
            .execute(&mut *tx)
            .await
            .map_err(query_error("notify the other servers"))?;
        tx.commit().await.map_err(query_error("commit a check-now request"))?;
        Ok(true)
    }

    async fn create_release(
        &self,
        release: &NewRelease,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<ReleaseRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin a release"))?;
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
        let mut tx = self.pool.begin().await.map_err(query_error("begin tagging"))?;
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
        let mut tx = self.pool.begin().await.map_err(query_error("begin a tag removal"))?;
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
        let mut tx = self.pool.begin().await.map_err(query_error("begin a deployment"))?;
        let d = rollouts::create_deployment(&mut tx, deployment, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment"))?;
        Ok(d)
    }

    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        // One snapshot for the rows and their counts.
        let mut tx = self.pool.begin().await.map_err(query_error("begin reading deployments"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(query_error("begin reading deployments"))?;
        let d = rollouts::deployments(&mut tx).await?;
        tx.commit().await.map_err(query_error("end reading deployments"))?;
        Ok(d)
    }

    async fn deployment(&self, id: i64) -> Result<Option<DeploymentRecord>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error("begin reading a deployment"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(query_error("begin reading a deployment"))?;
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
        let mut tx = self.pool.begin().await.map_err(query_error("begin a deployment change"))?;
        let d = rollouts::control_deployment(&mut tx, id, control, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment change"))?;
        Ok(d)
    }

    async fn audit_log(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, time, actor, role, action, subject, details, prev_hash, hash FROM operator_audit
             WHERE seq > $1 ORDER BY seq LIMIT $2",
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
    use super::redact_url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://srv:s3cret@db.example:5432/fleet"),
            "postgres://srv:***@db.example:5432/fleet"
        );
        assert_eq!(redact_url("postgres://srv:p@ss@db/fleet"), "postgres://srv:***@db/fleet");
        assert_eq!(
            redact_url("postgresql:///fleet?host=/run/postgresql&password=s3cret&user=srv"),
            "postgresql:///fleet?host=/run/postgresql&password=***&user=srv"
        );
        assert_eq!(redact_url("postgres://srv@db/fleet?sslmode=require"), "postgres://srv@db/fleet?sslmode=require");
        assert_eq!(redact_url("sqlite:server.db"), "sqlite:server.db");
    }
}
