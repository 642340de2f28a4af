//! Persistence behind one trait, chosen by the `DATABASE_URL` scheme.
//!
//! The SQL lives in `sql.rs` and is written for both SQLite and PostgreSQL:
//! `$N` placeholders, `BIGINT` counters, `CASE` instead of `MAX`/`GREATEST`.
//! Admission and settlement share their parts but are assembled per backend;
//! on both they are committed many to a transaction (`group.rs`): SQLite
//! sends a batch of statements (`sqlite_batch.rs`), PostgreSQL one call of a
//! function that loops over arrays (`pg_batch.rs`).

pub mod alerts;
pub mod audit;
mod checkpoint;
pub mod copy;
mod file_watch;
mod group;
pub use group::BatchObserver;
pub mod health;
pub mod people;
mod pg_batch;
pub mod postgres;
pub mod public_keys;
pub mod records;
pub mod refusals;
pub mod rows;
pub mod sql;
mod sql_steps;
mod sql_store;
pub mod sqlite;
mod sqlite_batch;
pub mod url;

pub use audit::{Audit, AuditFilter, AuditRow};
pub use health::WriteFailure;
pub use people::People;
pub use records::*;
pub use refusals::{RefusalCount, RefusalFilter, RefusalGroup, RefusalRow, Refusals};
pub(crate) use rows::{CounterRow, KeyRow};
use std::sync::Arc;
pub use url::{DatabaseUrl, StoreOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Unsupported(String),
    /// The SQLite file the connections hold is no longer the one at its path.
    #[error("{0}")]
    FileLost(String),
    /// The failure of a group-commit batch (`group.rs`), shared by each of
    /// the writes it held.
    #[error("{0}")]
    Batch(Arc<StoreError>),
    /// A unique name is taken (a user's, a team's).
    #[error("{0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait::async_trait]
pub trait Store:
    people::People
    + audit::Audit
    + refusals::Refusals
    + alerts::AlertRecords
    + public_keys::PublicKeys
    + Send
    + Sync
{
    /// One cheap round trip: is the database there (and, on SQLite, still
    /// the file at its path)?
    async fn ping(&self) -> StoreResult<()>;
    /// The last write that failed for a reason outside the request, while no
    /// write has succeeded since.
    fn write_failure(&self) -> Option<WriteFailure>;
    /// Reports the time of each group-commit transaction to `observer`.
    fn observe_batches(&self, observer: BatchObserver);

    async fn create_key(&self, key: &NewKey) -> StoreResult<KeyRecord>;
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    async fn get_key(&self, id: i64) -> StoreResult<Option<KeyRecord>>;
    /// The key whose current secret hashes to `hash`, or whose previous one
    /// does while its grace period lasts at `now`.
    async fn find_key_by_hash(&self, hash: &str, now: i64) -> StoreResult<Option<KeyRecord>>;
    /// Writes every editable field (name, owner, expiry, scopes, models, limits).
    async fn save_key_fields(&self, id: i64, fields: &KeyFields, now: i64) -> StoreResult<Option<KeyRecord>>;
    async fn set_active(&self, id: i64, active: bool, now: i64) -> StoreResult<Option<KeyRecord>>;
    /// A new secret; the old one works until `previous_until`, if given.
    async fn rotate_key(
        &self,
        id: i64,
        hash: &str,
        hint: &str,
        now: i64,
        previous_until: Option<i64>,
    ) -> StoreResult<Option<KeyRecord>>;
    /// The previous secret stops working now.
    async fn end_grace(&self, id: i64, now: i64) -> StoreResult<Option<KeyRecord>>;
    /// Deletes a key and its public keys.
    async fn delete_key(&self, id: i64) -> StoreResult<bool>;

    /// One transaction: count the request and reserve its tokens against every
    /// limit, or change nothing.
    async fn admit(&self, admission: &Admission) -> StoreResult<Admitted>;
    /// One transaction: replace the reservation with the real count and write
    /// the usage row. Settling a reservation twice changes nothing.
    async fn settle(&self, settlement: &Settlement) -> StoreResult<bool>;
    /// Settles the reservations of processes whose heartbeat is older than `stale_before`.
    async fn settle_stale(&self, stale_before: i64, now: i64) -> StoreResult<u64>;
    /// Settles the reservations of one process known to be dead and forgets it.
    async fn settle_instance(&self, instance_id: &str, now: i64) -> StoreResult<u64>;
    /// The ids of the processes with a heartbeat on record.
    async fn instances(&self) -> StoreResult<Vec<String>>;
    async fn heartbeat(&self, instance_id: &str, now: i64) -> StoreResult<()>;
    async fn remove_instance(&self, instance_id: &str) -> StoreResult<()>;

    async fn usage_rows(&self, filter: &UsageFilter) -> StoreResult<Vec<UsageRow>>;
    /// Usage summed per `bucket_seconds`-long slice of time and what `by`
    /// names (`i64::MAX / 4` seconds: one slice for all time).
    async fn usage_buckets(
        &self,
        filter: &UsageFilter,
        bucket_seconds: i64,
        by: BucketBy,
    ) -> StoreResult<Vec<UsageBucket>>;
    /// Tokens per model and quarter hour since `from` (a quarter hour's
    /// start), for the dashboard's chart over every key: read from an index
    /// alone.
    async fn model_quarters(&self, from: i64) -> StoreResult<Vec<ModelBucket>>;

    /// Copying a whole database (`ollama-gate migrate --from --to`).
    async fn import_key(&self, key: &KeyRecord) -> StoreResult<()>;
    /// Usage rows with ids above `after_id`, oldest first.
    async fn usage_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<UsageRow>>;
    async fn import_usage(&self, rows: &[UsageRow]) -> StoreResult<()>;
    async fn all_settings(&self) -> StoreResult<Vec<(String, String)>>;
    /// After an import: id sequences continue past the copied rows.
    async fn finish_import(&self) -> StoreResult<()>;
    async fn is_empty(&self) -> StoreResult<bool>;

    /// Ends an admin session for good (kept until it would have expired anyway).
    async fn revoke_session(&self, id: &str, expires_at: i64, now: i64) -> StoreResult<()>;
    async fn is_session_revoked(&self, id: &str) -> StoreResult<bool>;

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Stores `value` unless the setting exists; returns what is stored.
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String>;
}

pub async fn connect(url: &DatabaseUrl, options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    match url {
        DatabaseUrl::Sqlite { path } => Ok(Arc::new(sqlite::SqliteStore::open(path, options).await?)),
        DatabaseUrl::Postgres { url } => Ok(Arc::new(postgres::PgStore::open(url, options).await?)),
    }
}
