//! The SQLite store: one file, WAL mode, migrations embedded in the binary. What it does is
//! [`logic`](super::logic); this file opens the database, frames each call in a transaction
//! and converts SQLite's column types ([`Columns`]).
//!
//! # One writer
//! SQLite lets one transaction write at a time. Every write goes through **one** connection
//! (a pool of one): writers queue for it in the pool, in order, instead of each taking a
//! connection of its own and sleeping in SQLite's busy handler until the lock is free (which,
//! with many writers, ran out as "database is locked"). Reads go through a pool of their
//! own, `query_only`, and in WAL mode never wait for the writer. An in-memory database is
//! one connection for both (each connection would get a database of its own).
//!
//! # Group commit
//! Check-ins and events, the writes every device makes, go to a writer task
//! ([`Backend::write_job`]). It takes every job waiting (up to [`MAX_BATCH`]), runs them one
//! after the other in **one** transaction and answers them when it commits: one `BEGIN` and
//! one `COMMIT` for the lot instead of one per device. A job that fails rolls the batch back;
//! its jobs then run again, each in a transaction of its own, so only the failing one fails.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqliteConnection, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::logic::{Backend, ColumnTypes, JobFuture, WriteJob, get, query_error};

/// `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a connection waits for a lock another process holds (a backup, the `sqlite3`
/// shell) before failing. This server's own writers never wait here: they queue for the
/// one write connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections that read.
const READERS: u32 = 4;

/// How long a request waits for the write connection (or a read one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The most jobs one group commit takes.
const MAX_BATCH: usize = 64;

/// Jobs queued for the writer task.
const QUEUE: usize = 1024;

/// Devices and events in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one connection that writes.
    writer: SqlitePool,
    /// The connections that read (the writer itself for an in-memory database).
    readers: SqlitePool,
    /// The writer task's queue (group commit).
    jobs: mpsc::Sender<Box<dyn Pending>>,
}

/// A job waiting for the writer task, whatever it returns.
trait Pending: Send + Sync {
    /// Runs the job on `conn` (inside the writer's transaction) and keeps what it returned.
    fn run<'c>(&'c self, conn: &'c mut SqliteConnection) -> JobFuture<'c, ()>;
    /// Answers the caller: what the last run returned, or `error`.
    fn finish(self: Box<Self>, error: Option<StoreError>);
}

impl std::fmt::Debug for dyn Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

struct PendingJob<T> {
    job: WriteJob<SqliteConnection, T>,
    out: Mutex<Option<T>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    op: &'static str,
}

impl<T: Send + 'static> Pending for PendingJob<T> {
    fn run<'c>(&'c self, conn: &'c mut SqliteConnection) -> JobFuture<'c, ()> {
        Box::pin(async move {
            let out = (self.job)(conn).await?;
            *self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(out);
            Ok(())
        })
    }

    fn finish(self: Box<Self>, error: Option<StoreError>) {
        let out = self.out.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let answer = match (error, out) {
            (Some(e), _) => Err(e),
            (None, Some(out)) => Ok(out),
            (None, None) => Err(writer_gone(self.op)),
        };
        // The caller may have given up (its request was cancelled): nobody to tell.
        let _ = self.reply.send(answer);
    }
}

fn writer_gone(op: &'static str) -> StoreError {
    StoreError::Query { op, source: "the database writer stopped".into() }
}

/// The writer task: runs the queued jobs in batches until every [`SqliteStore`] is gone.
async fn writer(pool: SqlitePool, mut jobs: mpsc::Receiver<Box<dyn Pending>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                let message = e.to_string();
                for job in batch.drain(..) {
                    job.finish(Some(StoreError::Query { op: "connect", source: message.clone().into() }));
                }
                continue;
            }
        };
        if batch.len() > 1 && run_batch(&mut conn, &batch).await.is_ok() {
            for job in batch.drain(..) {
                job.finish(None);
            }
            continue;
        }
        // One job, or a batch that failed: each in a transaction of its own.
        for job in batch.drain(..) {
            let result = run_batch(&mut conn, std::slice::from_ref(&job)).await;
            job.finish(result.err());
        }
    }
}

/// Runs `batch` in one transaction; rolled back if one of them fails.
async fn run_batch(conn: &mut SqliteConnection, batch: &[Box<dyn Pending>]) -> Result<(), StoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(query_error("begin a write"))?;
    for job in batch {
        job.run(&mut tx).await?;
    }
    tx.commit().await.map_err(query_error("commit a write"))
}

pub(super) fn parse_time(column: &str, s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| StoreError::Corrupt(format!("{column}: bad time {s:?}: {e}")))
}

impl SqliteStore {
    /// Opens (creating it if needed) and migrates the database at `url` (`sqlite:PATH`,
    /// `sqlite://PATH`, `sqlite::memory:`), in WAL mode with `synchronous = NORMAL`: one
    /// write connection and a pool of read connections (see the module docs).
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Migrate { url: url.to_owned(), source: Box::new(e) })?;
        let readers = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.pragma("query_only", "ON"))
                .await
                .map_err(open_error)?
        };
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(self::writer(writer.clone(), queue));
        Ok(Self { writer, readers, jobs })
    }

    /// Closes every connection (and waits for them).
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    /// The write connection (for tests and maintenance).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }
}

/// Times are RFC 3339 text, flags 0 or 1.
impl ColumnTypes for Sqlite {
    fn flag(row: &SqliteRow, column: &'static str) -> Result<bool, StoreError> {
        Ok(get::<_, i64>(row, column)? != 0)
    }

    fn opt_time(row: &SqliteRow, column: &'static str) -> Result<Option<OffsetDateTime>, StoreError> {
        get::<_, Option<String>>(row, column)?.map(|t| parse_time(column, &t)).transpose()
    }
}

impl Backend for SqliteStore {
    type Db = Sqlite;

    fn connections(&self) -> &SqlitePool {
        &self.readers
    }

    fn write_connections(&self) -> &SqlitePool {
        &self.writer
    }

    /// On the one write connection, `BEGIN IMMEDIATE`: SQLite's write lock from the start
    /// (against other processes; this one's writers queue for the connection), so the audit
    /// chain's last row, a deployment's counts and a device's check-now flag cannot change
    /// under it.
    async fn write(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(query_error(op))
    }

    async fn read(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.readers.begin().await.map_err(query_error(op))
    }

    /// Through the writer task, in a batch (see the module docs).
    async fn write_job<T: Send + 'static>(
        &self,
        op: &'static str,
        job: WriteJob<SqliteConnection, T>,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = Box::new(PendingJob { job, out: Mutex::new(None), reply, op });
        self.jobs.send(pending).await.map_err(|_| writer_gone(op))?;
        answer.await.map_err(|_| writer_gone(op))?
    }
}

#[cfg(test)]
mod tests {
    // The behaviour every store shares is tested once for each backend: tests/store/.
    use time::macros::datetime;

    use super::*;
    use crate::store::Store;
    use update_protocol::{DeviceId, Report, SlotReport, SlotState};

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
        store.close().await;

        // Migrations run again on open and find nothing to do; the data is still there.
        let store = SqliteStore::open(&url).await.unwrap();
        let d = store.device(&id("d1")).await.unwrap().unwrap();
        assert_eq!(d.report, report);
        assert_eq!(d.last_checkin, Some(datetime!(2026-03-01 09:00 UTC)));
        assert!(dir.path().join("server.db-wal").exists());
    }

    /// A job that inserts device `id`: fails when it exists.
    fn insert(id: &'static str) -> WriteJob<SqliteConnection, ()> {
        crate::store::logic::write_job(move |conn: &mut SqliteConnection| {
            Box::pin(async move {
                sqlx::query("INSERT INTO devices (id, first_seen) VALUES ($1, '2026-03-01T09:00:00Z')")
                    .bind(id)
                    .execute(conn)
                    .await
                    .map_err(query_error("insert a device"))?;
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn a_failing_job_in_a_group_commit_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("server.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        store.write_job("first", insert("taken")).await.unwrap();
        // Hold the write connection so the next jobs queue up and go in one batch.
        let held = store.pool().acquire().await.unwrap();
        let jobs = ["a", "taken", "b", "c"].map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.write_job("test", insert(id)).await })
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        let mut results = Vec::new();
        for job in jobs {
            results.push(job.await.unwrap().is_ok());
        }
        assert_eq!(results, [true, false, true, true]);
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM devices ORDER BY id").fetch_all(&store.readers).await.unwrap();
        assert_eq!(ids, ["a", "b", "c", "taken"]);
    }
}
