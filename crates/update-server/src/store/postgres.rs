//! The PostgreSQL store: several servers share one database, and a check-now request issued
//! through one of them reaches a device whose push stream another holds (`LISTEN/NOTIFY`).
//!
//! Same tables as the SQLite store, with PostgreSQL's types (`migrations-postgres/`, compiled
//! in). Concurrency: PostgreSQL runs transactions side by side where SQLite takes one write
//! lock, so the rules that lock kept are explicit (in `postgres_rollouts`):
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
use sqlx::{ConnectOptions, PgConnection, Postgres, Row, Transaction};
use time::OffsetDateTime;

use super::logic::{self, Columns, query_error};
use super::{CheckInOutcome, Control, DeploymentRecord, DeviceRecord, ReleaseRecord, Store, StoreError, StoredEvent};
use crate::audit::{Actor, AuditEntry};
use crate::push::PushHub;
use update_protocol::push::PushEvent;
use update_protocol::rollout::{NewDeployment, NewRelease};
use update_protocol::{CheckedEvent, DeviceId, Report, Tag};

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

    /// A transaction that reads one snapshot.
    async fn read(&self, op: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error(op))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(query_error(op))?;
        Ok(tx)
    }

    /// A transaction that writes (its locks are taken by the statements, see the module docs).
    async fn write(&self, op: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(query_error(op))
    }
}

fn get<'r, T>(row: &'r PgRow, column: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(query_error("read a row"))
}

/// Times are `TIMESTAMPTZ`, flags `BOOLEAN`.
impl Columns for PgRow {
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
        get(self, column)
    }

    fn time(&self, column: &'static str) -> Result<OffsetDateTime, StoreError> {
        get(self, column)
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
        get(self, column)
    }
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
        let mut tx = self.write("begin reading events").await?;
        let events = logic::events(&mut *tx, device, after, limit).await?;
        tx.commit().await.map_err(query_error("end reading events"))?;
        Ok(events)
    }

    async fn request_check(&self, device: &DeviceId, actor: &Actor, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.write("begin a check-now request").await?;
        if !logic::request_check(&mut *tx, device, actor, now).await? {
            return Ok(false);
        }
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
        let mut tx = self.write("begin a release").await?;
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
        let mut tx = self.write("begin tagging").await?;
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
        let mut tx = self.write("begin a tag removal").await?;
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
        let mut tx = self.write("begin a deployment").await?;
        let d = logic::create_deployment(&mut *tx, deployment, actor, now).await?;
        tx.commit().await.map_err(query_error("commit a deployment"))?;
        Ok(d)
    }

    async fn deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        // One snapshot for the rows and their counts.
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
        let mut tx = self.write("begin a deployment change").await?;
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
