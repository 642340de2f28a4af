//! The PostgreSQL store, for several gate replicas on one database.
//!
//! Admissions are the same conditional `UPDATE` as on SQLite. Under READ
//! COMMITTED a second admission on the same key waits for the first's row
//! lock and then re-checks its `WHERE` against the committed row, so the
//! limits stay exact across replicas without serialisation failures.
//! Admission and settlement are each one statement (data-modifying `WITH`),
//! so each is one round trip and atomic without `BEGIN`/`COMMIT`; under load
//! they are grouped (`pg_batch.rs`), a batch of them in one statement.
//! sqlx's migrator holds an advisory lock, so replicas may start together.

use super::group::GroupCommit;
use super::group::{Batches, Done, Job};
use super::people;
use super::pg_batch;
use super::rows::CounterRow;
use super::sql;
use super::sql_store::sql_store;
use super::*;
use crate::domain::limits::Limits;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, FromRow, PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use std::sync::Arc;

/// One plain connection before the pool is built. A pool that cannot connect
/// only says "pool timed out"; a single connection says why: refused, no
/// such host, a wrong password, no such database, no answer at all.
async fn first_connection(connect: &PgConnectOptions, wait: std::time::Duration) -> StoreResult<()> {
    let server = format!("PostgreSQL at {}:{}", connect.get_host(), connect.get_port());
    match tokio::time::timeout(wait, sqlx::PgConnection::connect_with(connect)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Unsupported(format!("cannot connect to {server}: {e}"))),
        Err(_) => {
            Err(StoreError::Unsupported(format!("cannot connect to {server}: no answer within {wait:?}")))
        }
    }
}

/// A pooled connection, held for one write transaction.
pub struct PgWriter(PoolConnection<Postgres>);

impl PgWriter {
    pub async fn begin(&mut self) -> StoreResult<Transaction<'_, Postgres>> {
        Ok(Connection::begin(&mut *self.0).await?)
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    reader: PgPool,
    /// Admissions and settlements, committed many to a statement (`pg_batch`).
    group: GroupCommit<PgBatches>,
    health: health::WriteHealth,
}

impl PgStore {
    pub async fn open(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(url)?.application_name("ollama-gate");
        let wait = options.busy_timeout.max(std::time::Duration::from_secs(1));
        first_connection(&connect, wait.max(std::time::Duration::from_secs(10))).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(wait)
            // No ping before each use: a round trip per query. A connection
            // that died with the server fails its query (503) and is dropped.
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, pg_batch::DEFINE_FUNCTION.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        let group = GroupCommit::new(Arc::new(PgBatches { pool: pool.clone() }));
        Ok(PgStore { reader: pool, group, health: health::WriteHealth::default() })
    }

    fn reader(&self) -> StoreResult<&PgPool> {
        Ok(&self.reader)
    }

    /// No file of ours to lose: the server owns it.
    fn check_file_now(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn writer(&self) -> StoreResult<PgWriter> {
        Ok(PgWriter(self.reader.acquire().await?))
    }

    async fn admit_once(&self, a: &Admission) -> StoreResult<Option<(CounterRow, i64)>> {
        self.group.admit(a).await
    }

    async fn settle_once(&self, s: &Settlement) -> StoreResult<bool> {
        self.group.settle(s).await
    }

    fn settle_sql() -> &'static str {
        &sql::PG_SETTLE
    }

    /// Locks the budget rows `reservations` hold, in the order batches take them.
    async fn lock_budgets_of(tx: &mut Transaction<'_, Postgres>, reservations: Vec<i64>) -> StoreResult<()> {
        sqlx::query(sql::PG_LOCK_BUDGETS_OF).bind(reservations).fetch_all(&mut **tx).await?;
        Ok(())
    }

    /// Rows copied in with their ids leave the id sequences behind; move them on.
    async fn reset_sequences(&self) -> StoreResult<()> {
        for table in ["api_keys", "usage", "reservations", "users", "teams", "budgets"] {
            let query = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            );
            sqlx::query(&query).execute(&self.reader).await?;
        }
        Ok(())
    }
}

sql_store!(PgStore, Postgres);

/// The database side of PostgreSQL's group commit.
pub struct PgBatches {
    pub pool: PgPool,
}

#[async_trait::async_trait]
impl Batches for PgBatches {
    async fn commit(&self, jobs: &[Job]) -> StoreResult<Vec<Done>> {
        // One job alone: its own statement, which PostgreSQL runs quicker
        // than the function's loop (about 0.1 ms less on the test machine).
        match jobs {
            [Job::Admit(a)] if a.budgets.is_empty() => {
                let row = PgStore::bind_admission(sqlx::query(&sql::PG_ADMIT), a)
                    .fetch_optional(&self.pool)
                    .await?;
                let admitted = match row {
                    Some(row) => Some((CounterRow::from_row(&row)?, row.try_get("reservation_id")?)),
                    None => None,
                };
                Ok(vec![Done::Admitted(admitted)])
            }
            [Job::Settle(s)] if s.budgets.is_empty() => {
                let row = PgStore::bind_settlement(sqlx::query(&sql::PG_SETTLE), s)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(vec![Done::Settled(row.is_some())])
            }
            _ => pg_batch::commit(&self.pool, jobs).await,
        }
    }
}
