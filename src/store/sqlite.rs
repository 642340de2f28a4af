//! The SQLite store: WAL, a busy timeout, and one writer connection.
//!
//! Writes go through one connection, held by this store rather than a pool,
//! and begin with `BEGIN IMMEDIATE`, so they queue in this process instead of
//! fighting for the file lock; other processes on the same file wait on the
//! busy timeout. A pool would ping the connection each time it is handed back:
//! a round trip to SQLite's thread on every admission and settlement. Reads use
//! a separate pool and never block the writer.
//!
//! Each statement is a trip to the thread sqlx runs the connection on, and
//! each trip is two context switches; each commit appends every page it
//! changed to the WAL. Admissions and settlements, the two writes on every
//! request, therefore go through group commit (`group.rs`): all those queued
//! while the last transaction ran are sent as one batch, from `BEGIN
//! IMMEDIATE` to `COMMIT` (`sqlite_batch.rs`), one trip and one commit for the
//! lot.
//!
//! A write that fails or is dropped part-way must not hand its transaction to
//! the next: the writer is checked each time it is handed out (see
//! `SqliteWriter::make_ready`). And the file itself is watched (`FileWatch`):
//! deleted or replaced under the gate, it is refused rather than written on.

use super::checkpoint::{self, Checkpoints};
use super::file_watch::FileWatch;
use super::group::{self, Batches, Done, GroupCommit, Job};
use super::health::WriteHealth;
use super::people;
use super::sql;
use super::sql_store::sql_store;
use super::sqlite_batch;
use super::*;
use crate::domain::limits::Limits;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{
    Column, ConnectOptions, Connection, FromRow, Row, Sqlite, SqliteConnection, SqlitePool, Transaction,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    reader: SqlitePool,
    writer: Arc<WriterSlot>,
    /// Admissions and settlements, committed many to a transaction on the writer.
    group: GroupCommit<WriterSlot>,
    health: WriteHealth,
    file: Arc<FileWatch>,
}

/// The one writer connection and what it takes to hand it out.
pub struct WriterSlot {
    conn: Arc<Mutex<Writer>>,
    /// How the writer connection is opened again when it has to be replaced.
    /// Never creates the file: a missing one must not come back empty.
    options: SqliteConnectOptions,
    /// How long a write waits for the writer before giving up (503).
    wait: Duration,
    file: Arc<FileWatch>,
    /// The background checkpoint (`checkpoint.rs`) runs while this lives.
    checkpoints: Arc<Checkpoints>,
}

struct Writer {
    conn: SqliteConnection,
    /// A batch was sent and its end not seen: it failed part-way, or its
    /// caller was dropped (the client went away) and sqlx stopped it there.
    /// Its transaction may still be open, holding the file's write lock.
    batch_unfinished: bool,
    /// The connection has to be replaced and the last try failed.
    needs_reopen: bool,
}

/// The writer connection, held for one transaction.
pub struct SqliteWriter(OwnedMutexGuard<Writer>, Arc<Checkpoints>);

impl Drop for SqliteWriter {
    /// Whatever the transaction did is in the log by now: the background
    /// checkpoint has something to copy.
    fn drop(&mut self) {
        self.1.note_write();
    }
}

impl SqliteWriter {
    pub async fn begin(&mut self) -> StoreResult<Transaction<'_, Sqlite>> {
        Ok(Connection::begin_with(&mut self.0.conn, "BEGIN IMMEDIATE").await?)
    }

    /// Sends the parts of a batch, the first beginning its transaction and
    /// the last committing it, and reads all they return: a batch read only
    /// in part never reaches its COMMIT.
    async fn run_batch<'q>(
        &mut self,
        parts: Vec<sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>>,
    ) -> StoreResult<Vec<Vec<SqliteRow>>> {
        self.0.batch_unfinished = true;
        let mut rows = Vec::new();
        for part in parts {
            match part.fetch_all(&mut self.0.conn).await {
                Ok(more) => rows.push(more),
                Err(e) => {
                    self.roll_back_batch().await;
                    self.0.batch_unfinished = false;
                    return Err(e.into());
                }
            }
        }
        self.0.batch_unfinished = false;
        Ok(rows)
    }

    /// Ends the transaction of a batch that stopped part-way, if it is still
    /// open. "No transaction is active" means it had ended: not an error here.
    async fn roll_back_batch(&mut self) {
        if let Err(e) = sqlx::query("ROLLBACK").execute(&mut self.0.conn).await {
            log::debug!("rollback after an unfinished batch: {e}");
        }
    }

    /// Leaves the connection outside any transaction, as the next write needs
    /// it, whatever the last one did.
    ///
    /// A `Transaction` dropped without its COMMIT succeeding (the statement or
    /// the COMMIT failed, or the caller went away) queues a ROLLBACK. After a
    /// COMMIT that failed on a full disk or an I/O error, SQLite has usually
    /// rolled back already, that ROLLBACK fails, and sqlx goes on counting a
    /// transaction open: it would refuse every later `BEGIN IMMEDIATE` until a
    /// restart. Such a connection is replaced, which also ends any transaction
    /// SQLite still has open on it.
    async fn make_ready(&mut self, options: &SqliteConnectOptions) -> StoreResult<()> {
        if self.0.batch_unfinished {
            self.roll_back_batch().await;
            self.0.batch_unfinished = false;
        }
        if self.0.conn.is_in_transaction() {
            // The queued ROLLBACK runs before the ping is answered.
            if let Err(e) = self.0.conn.ping().await {
                log::debug!("writer connection did not answer: {e}");
            }
        }
        if self.0.conn.is_in_transaction() {
            log::warn!("the last write left its transaction unfinished; opening a new writer connection");
            self.0.needs_reopen = true;
        }
        if self.0.needs_reopen {
            let fresh = options.connect().await?;
            let old = std::mem::replace(&mut self.0.conn, fresh);
            self.0.needs_reopen = false;
            if let Err(e) = old.close().await {
                log::debug!("closing the replaced writer connection: {e}");
            }
        }
        Ok(())
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
        // pages, and that request waits for the copy and an fsync. The copying
        // is done in the background (`checkpoint.rs`); the writer's own
        // checkpoint stays as the fallback, at 10,000 pages rather than the
        // default 1,000, where it was one request in a hundred at one client.
        let writer_options = connect
            .clone()
            .pragma("wal_autocheckpoint", "10000")
            // Every group-commit text (`sqlite_batch`) stays prepared beside the other writes.
            .statement_cache_capacity(256)
            // Once the WAL starts over, a file grown past this is cut back.
            .pragma("journal_size_limit", "67108864");
        let mut writer = writer_options.connect().await?;
        MIGRATOR.run(&mut writer).await?;
        let file = FileWatch::new(path).map_err(|e| {
            StoreError::Unsupported(format!("cannot look at the database file {}: {e}", path.display()))
        })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .connect_with(connect.read_only(true))
            .await?;
        let file = Arc::new(file);
        let checkpoints = Arc::new(Checkpoints::default());
        checkpoint::spawn(
            writer_options.clone().create_if_missing(false),
            file.clone(),
            Arc::downgrade(&checkpoints),
        );
        let writer = Arc::new(WriterSlot {
            conn: Arc::new(Mutex::new(Writer { conn: writer, batch_unfinished: false, needs_reopen: false })),
            options: writer_options.create_if_missing(false),
            wait: acquire_timeout,
            file: file.clone(),
            checkpoints,
        });
        Ok(SqliteStore {
            reader,
            group: GroupCommit::new(writer.clone()),
            writer,
            health: WriteHealth::default(),
            file,
        })
    }

    fn reader(&self) -> StoreResult<&SqlitePool> {
        self.file.check().map_err(StoreError::FileLost)?;
        Ok(&self.reader)
    }

    fn check_file_now(&self) -> StoreResult<()> {
        self.file.check_now().map_err(StoreError::FileLost)
    }

    async fn writer(&self) -> StoreResult<SqliteWriter> {
        self.writer.acquire().await
    }

    async fn admit_once(&self, a: &Admission) -> StoreResult<Option<(CounterRow, i64)>> {
        self.file.check().map_err(StoreError::FileLost)?;
        self.group.admit(a).await
    }

    async fn settle_once(&self, s: &Settlement) -> StoreResult<bool> {
        self.file.check().map_err(StoreError::FileLost)?;
        self.group.settle(s).await
    }

    fn settle_sql() -> &'static str {
        &sql::SQLITE_SETTLE
    }

    /// One writer at a time: no locks to order.
    /// One writer at a time: no locks to order.
    async fn lock_budgets_of(_: &mut sqlx::Transaction<'_, Sqlite>, _: Vec<i64>) -> StoreResult<()> {
        Ok(())
    }

    /// SQLite moves its AUTOINCREMENT counters past imported ids by itself.
    async fn reset_sequences(&self) -> StoreResult<()> {
        Ok(())
    }
}

sql_store!(SqliteStore, Sqlite);

impl WriterSlot {
    /// The writer, once it is free and outside any transaction.
    async fn acquire(&self) -> StoreResult<SqliteWriter> {
        self.file.check().map_err(StoreError::FileLost)?;
        let mut writer = match tokio::time::timeout(self.wait, self.conn.clone().lock_owned()).await {
            Ok(guard) => SqliteWriter(guard, self.checkpoints.clone()),
            Err(_) => return Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        };
        writer.make_ready(&self.options).await?;
        Ok(writer)
    }
}

#[async_trait::async_trait]
impl Batches for WriterSlot {
    /// The jobs as one batch (`sqlite_batch`): settlements, then admissions,
    /// each kind in its order.
    async fn commit(&self, jobs: &[Job]) -> StoreResult<Vec<Done>> {
        use sqlite_batch::{Part, Rows};
        let (settlements, admissions) = group::split(jobs);
        // Each kind in two groups, keys alone and keys with budget rows, each
        // group in its order; (the group, the jobs' places in their kind).
        let rows_of = |budgets: &[i64]| if budgets.is_empty() { Rows::KeyOnly } else { Rows::WithBudgets };
        let order = [
            (true, Rows::KeyOnly),
            (true, Rows::WithBudgets),
            (false, Rows::WithBudgets),
            (false, Rows::KeyOnly),
        ];
        let mut groups: Vec<(bool, Rows, Vec<usize>)> = order
            .into_iter()
            .map(|(settle, rows)| {
                let places_of = if settle {
                    (0..settlements.len()).filter(|&i| rows_of(&settlements[i].budgets) == rows).collect()
                } else {
                    (0..admissions.len()).filter(|&i| rows_of(&admissions[i].budgets) == rows).collect()
                };
                (settle, rows, places_of)
            })
            .collect();
        groups.retain(|(_, _, jobs)| !jobs.is_empty());
        let last = groups.len().saturating_sub(1);
        let mut parts = Vec::with_capacity(groups.len());
        for (n, (settle, rows, places_of)) in groups.iter().enumerate() {
            let part = Part {
                settle: *settle,
                rows: *rows,
                places: sqlite_batch::places(places_of.len()),
                begin: n == 0,
                commit: n == last,
            };
            let mut query = sqlx::query(part.text());
            for &i in places_of {
                query = if *settle {
                    SqliteStore::bind_settlement(query, settlements[i])
                } else {
                    SqliteStore::bind_admission(query, admissions[i])
                };
            }
            for _ in 0..(part.places - places_of.len()) * part.params() {
                query = query.bind(None::<i64>);
            }
            parts.push(query);
        }
        let answers = self.acquire().await?.run_batch(parts).await?;

        let mut settled = vec![false; settlements.len()];
        let mut counters: Vec<Option<CounterRow>> = (0..admissions.len()).map(|_| None).collect();
        let mut reserved: Vec<Option<i64>> = vec![None; admissions.len()];
        for ((_, _, places_of), rows) in groups.iter().zip(answers) {
            for row in &rows {
                // A row's place is in its group; the group knows the job's place in its kind.
                let place = places_of[row.try_get::<i64, _>(0)? as usize];
                match row.columns().first().map(|c| c.name()) {
                    Some("settled") => settled[place] = true,
                    Some("admitted") => counters[place] = Some(CounterRow::from_row(row)?),
                    Some("reserved") => reserved[place] = Some(row.try_get("id")?),
                    other => return Err(StoreError::Unsupported(format!("unexpected batch row {other:?}"))),
                }
            }
        }
        let admitted = counters
            .into_iter()
            .zip(reserved)
            .map(|pair| match pair {
                (Some(c), Some(id)) => Some((c, id)),
                _ => None,
            })
            .collect();
        Ok(group::in_job_order(jobs, settled, admitted))
    }
}
