//! The SQLite store: one file, WAL mode, migrations embedded in the binary. What it does is
//! [`logic`](super::logic); this file opens the database, frames each call in a transaction
//! and converts SQLite's column types ([`Columns`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::StoreError;
use super::logic::{Backend, ColumnTypes, get, query_error};

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

    /// The pool (for tests and maintenance).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
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
        &self.pool
    }

    /// `BEGIN IMMEDIATE`: SQLite's write lock from the start, so the audit chain's last row, a
    /// deployment's counts and a device's check-now flag cannot change under it.
    async fn write(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(query_error(op))
    }

    async fn read(&self, op: &'static str) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin().await.map_err(query_error(op))
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
        store.pool().close().await;

        // Migrations run again on open and find nothing to do; the data is still there.
        let store = SqliteStore::open(&url).await.unwrap();
        let d = store.device(&id("d1")).await.unwrap().unwrap();
        assert_eq!(d.report, report);
        assert_eq!(d.last_checkin, Some(datetime!(2026-03-01 09:00 UTC)));
        assert!(dir.path().join("server.db-wal").exists());
    }
}
