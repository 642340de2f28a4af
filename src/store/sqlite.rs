//! The SQLite store: WAL, a busy timeout, and one writer connection.
//!
//! Writes go through one connection, held by this store rather than a pool,
//! and begin with `BEGIN IMMEDIATE`, so they queue in this process instead of
//! fighting for the file lock; other processes on the same file wait on the
//! busy timeout. A pool would ping the connection each time it is handed back:
//! a round trip to SQLite's thread on every admission and settlement. Reads use
//! a separate pool and never block the writer.

use super::sql;
use super::sql_store::sql_store;
use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    reader: SqlitePool,
    writer: Arc<Mutex<SqliteConnection>>,
    /// How long a write waits for the writer before giving up (503).
    writer_wait: Duration,
}

/// The writer connection, held for one transaction.
pub struct SqliteWriter(OwnedMutexGuard<SqliteConnection>);

impl SqliteWriter {
    pub async fn begin(&mut self) -> StoreResult<Transaction<'_, Sqlite>> {
        Ok(Connection::begin_with(&mut *self.0, "BEGIN IMMEDIATE").await?)
    }
}

impl SqliteStore {
    pub async fn open(path: &Path, options: &StoreOptions) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unsupported(format!("cannot create database folder {}: {e}", dir.display()))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .pragma("temp_store", "memory");
        let acquire_timeout = options.busy_timeout + std::time::Duration::from_secs(1);
        // SQLite checkpoints inside the commit that crosses `wal_autocheckpoint`
        // pages, and that request waits for the copy and an fsync. At the
        // default of 1,000 pages that was about one request in a hundred at
        // one client (p99 1.6 ms); at 10,000 it is one in a thousand. A checkpoint on another
        // connection would not help: under steady writes it never reaches the
        // end of the WAL, and the WAL only starts over after one that does.
        let mut writer = connect
            .clone()
            .pragma("wal_autocheckpoint", "10000")
            // Once the WAL starts over, a file grown past this is cut back.
            .pragma("journal_size_limit", "67108864")
            .connect()
            .await?;
        MIGRATOR.run(&mut writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .connect_with(connect.read_only(true))
            .await?;
        Ok(SqliteStore { reader, writer: Arc::new(Mutex::new(writer)), writer_wait: acquire_timeout })
    }

    async fn writer(&self) -> StoreResult<SqliteWriter> {
        match tokio::time::timeout(self.writer_wait, self.writer.clone().lock_owned()).await {
            Ok(guard) => Ok(SqliteWriter(guard)),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    /// SQLite moves its AUTOINCREMENT counters past imported ids by itself.
    async fn reset_sequences(&self) -> StoreResult<()> {
        Ok(())
    }
}

sql_store!(SqliteStore, Sqlite);
