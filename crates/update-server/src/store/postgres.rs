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

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, PgConnection, Postgres, Transaction};
use time::OffsetDateTime;

use super::StoreError;
use super::logic::{Backend, ColumnTypes, get, query_error};
use crate::push::PushHub;
use update_protocol::DeviceId;
use update_protocol::push::PushEvent;

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
}

/// Times are `TIMESTAMPTZ`, flags `BOOLEAN`.
impl ColumnTypes for Postgres {
    fn flag(row: &PgRow, column: &'static str) -> Result<bool, StoreError> {
        get(row, column)
    }

    fn opt_time(row: &PgRow, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
        get(row, column)
    }
}

impl Backend for PgStore {
    type Db = Postgres;

    fn connections(&self) -> &PgPool {
        &self.pool
    }

    /// The locks come with the statements (see the module docs).
    async fn write(&self, op: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(query_error(op))
    }

    async fn read(&self, op: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_error(op))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(query_error(op))?;
        Ok(tx)
    }

    /// Delivered at commit, to every server listening on this database.
    async fn check_requested(&self, conn: &mut PgConnection, device: &DeviceId) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(PUSH_CHANNEL)
            .bind(format!("{} {device}", self.instance))
            .execute(conn)
            .await
            .map_err(query_error("notify the other servers"))?;
        Ok(())
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
