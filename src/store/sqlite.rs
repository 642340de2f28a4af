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
    checkpointer: SqlitePool,
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
        // The writer never checkpoints: SQLite would do it inside the commit
        // that crosses 1,000 WAL pages, and that request would wait for the
        // copy and the fsync. `checkpoint` does it in the background instead.
        let mut writer = connect.clone().pragma("wal_autocheckpoint", "0").connect().await?;
        MIGRATOR.run(&mut writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .connect_with(connect.clone().read_only(true))
            .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(connect.pragma("wal_autocheckpoint", "0"));
        Ok(SqliteStore {
            reader,
            writer: Arc::new(Mutex::new(writer)),
            writer_wait: acquire_timeout,
            checkpointer,
        })
    }

    async fn writer(&self) -> StoreResult<SqliteWriter> {
        match tokio::time::timeout(self.writer_wait, self.writer.clone().lock_owned()).await {
            Ok(guard) => Ok(SqliteWriter(guard)),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Copies committed pages from the WAL into the database file on a
    /// connection of its own. PASSIVE neither waits for nor blocks the writer
    /// or the readers, so requests never wait for it.
    async fn background_upkeep(&self) -> StoreResult<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.checkpointer).await?;
        Ok(())
    }

    /// SQLite moves its AUTOINCREMENT counters past imported ids by itself.
    async fn reset_sequences(&self) -> StoreResult<()> {
        Ok(())
    }
}

sql_store!(SqliteStore, Sqlite);
