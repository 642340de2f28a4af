//! The SQLite store: WAL, a busy timeout, and one writer connection.
//!
//! Writes go through a pool of exactly one connection and begin with
//! `BEGIN IMMEDIATE`, so they queue in this process instead of fighting for the
//! file lock; other processes on the same file wait on the busy timeout.
//! Reads use a separate pool and never block the writer.

use super::sql;
use super::sql_store::sql_store;
use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::path::Path;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        Ok(SqliteStore { reader, writer })
    }

    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// SQLite moves its AUTOINCREMENT counters past imported ids by itself.
    async fn reset_sequences(&self) -> StoreResult<()> {
        Ok(())
    }
}

sql_store!(SqliteStore, Sqlite);
