//! The SQLite store: WAL, a busy timeout, and one writer connection.
//!
//! Writes go through a pool of exactly one connection and begin with
//! `BEGIN IMMEDIATE`, so they queue in this process instead of fighting for the
//! file lock; other processes on the same file wait on the busy timeout.
//! Reads use a separate pool and never block the writer.

use super::sql;
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

    async fn key_by_id<'e, E>(executor: E, id: i64) -> StoreResult<Option<KeyRecord>>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let query = format!("SELECT {} FROM api_keys WHERE id = $1", sql::KEY_COLUMNS);
        let row = sqlx::query_as::<_, KeyRow>(&query).bind(id).fetch_optional(executor).await?;
        Ok(row.map(KeyRecord::from))
    }

    /// Runs a one-statement key change and returns the key as it is afterwards.
    async fn change_key<'q>(
        &self,
        id: i64,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> StoreResult<Option<KeyRecord>> {
        let mut tx = self.write().await?;
        let changed = query.execute(&mut *tx).await?.rows_affected();
        let key = if changed == 0 { None } else { Self::key_by_id(&mut *tx, id).await? };
        tx.commit().await?;
        Ok(key)
    }

    async fn settle_in(tx: &mut Transaction<'static, Sqlite>, s: &Settlement) -> StoreResult<bool> {
        let Some(r) = sqlx::query_as::<_, ReservationRow>(sql::TAKE_RESERVATION)
            .bind(s.reservation_id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(false);
        };
        let total = s.prompt_tokens + s.completion_tokens;
        sqlx::query(sql::SETTLE_COUNTERS)
            .bind(r.key_id)
            .bind(r.minute_start)
            .bind(r.day_start)
            .bind(r.month_start)
            .bind(total - r.reserved_tokens)
            .bind(i64::from(s.refund_request))
            .execute(&mut **tx)
            .await?;
        sqlx::query(sql::INSERT_USAGE)
            .bind(s.now)
            .bind(r.key_id)
            .bind(&r.model)
            .bind(&r.route)
            .bind(s.status)
            .bind(i64::from(s.http_status))
            .bind(s.prompt_tokens)
            .bind(s.completion_tokens)
            .bind(total)
            .bind(s.estimated)
            .bind(s.latency_ms)
            .execute(&mut **tx)
            .await?;
        Ok(true)
    }
}

fn bind_fields<'q>(
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    f: &'q KeyFields,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let l = &f.limits;
    query
        .bind(l.requests_per_minute)
        .bind(l.tokens_per_minute)
        .bind(l.daily_requests)
        .bind(l.daily_tokens)
        .bind(l.monthly_requests)
        .bind(l.monthly_tokens)
        .bind(l.total_tokens)
        .bind(l.max_concurrent)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_key(&self, key: &NewKey) -> StoreResult<KeyRecord> {
        let f = &key.fields;
        let mut tx = self.write().await?;
        let query = sqlx::query_scalar::<_, i64>(sql::INSERT_KEY)
            .bind(&f.name)
            .bind(&f.owner)
            .bind(&key.key_hash)
            .bind(&key.key_hint)
            .bind(f.expires_at)
            .bind(key.now)
            .bind(f.scopes.to_db())
            .bind(f.models.as_ref().map(|m| m.to_db()));
        let l = &f.limits;
        let id = query
            .bind(l.requests_per_minute)
            .bind(l.tokens_per_minute)
            .bind(l.daily_requests)
            .bind(l.daily_tokens)
            .bind(l.monthly_requests)
            .bind(l.monthly_tokens)
            .bind(l.total_tokens)
            .bind(l.max_concurrent)
            .fetch_one(&mut *tx)
            .await?;
        let record = Self::key_by_id(&mut *tx, id).await?.ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let query = format!("SELECT {} FROM api_keys ORDER BY id", sql::KEY_COLUMNS);
        let rows = sqlx::query_as::<_, KeyRow>(&query).fetch_all(&self.reader).await?;
        Ok(rows.into_iter().map(KeyRecord::from).collect())
    }

    async fn get_key(&self, id: i64) -> StoreResult<Option<KeyRecord>> {
        Self::key_by_id(&self.reader, id).await
    }

    async fn find_key_by_hash(&self, hash: &str) -> StoreResult<Option<KeyRecord>> {
        let query = format!("SELECT {} FROM api_keys WHERE key_hash = $1", sql::KEY_COLUMNS);
        let row = sqlx::query_as::<_, KeyRow>(&query).bind(hash).fetch_optional(&self.reader).await?;
        Ok(row.map(KeyRecord::from))
    }

    async fn save_key_fields(&self, id: i64, f: &KeyFields, now: i64) -> StoreResult<Option<KeyRecord>> {
        let query = sqlx::query(sql::UPDATE_KEY_FIELDS)
            .bind(id)
            .bind(&f.name)
            .bind(&f.owner)
            .bind(f.expires_at)
            .bind(f.scopes.to_db())
            .bind(f.models.as_ref().map(|m| m.to_db()));
        self.change_key(id, bind_fields(query, f).bind(now)).await
    }

    async fn set_active(&self, id: i64, active: bool, now: i64) -> StoreResult<Option<KeyRecord>> {
        self.change_key(id, sqlx::query(sql::SET_ACTIVE).bind(id).bind(active).bind(now)).await
    }

    async fn rotate_key(&self, id: i64, hash: &str, hint: &str, now: i64) -> StoreResult<Option<KeyRecord>> {
        let query =
            sqlx::query(sql::ROTATE_KEY).bind(id).bind(hash.to_owned()).bind(hint.to_owned()).bind(now);
        self.change_key(id, query).await
    }

    async fn delete_key(&self, id: i64) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query(sql::DELETE_KEY).bind(id).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn admit(&self, a: &Admission<'_>) -> StoreResult<Admitted> {
        let w = &a.windows;
        let mut tx = self.write().await?;
        let counters = sqlx::query_as::<_, CounterRow>(sql::ADMIT)
            .bind(a.key_id)
            .bind(w.minute.start)
            .bind(w.day.start)
            .bind(w.month.start)
            .bind(a.reserve_tokens)
            .bind(a.key_hash)
            .bind(w.now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(counters) = counters else {
            // Nothing changed; read the row (in the same snapshot) to say why.
            let key = Self::key_by_id(&mut *tx, a.key_id).await?;
            tx.rollback().await?;
            return Ok(match key {
                Some(k) if k.active && !k.is_expired(w.now) && k.key_hash == a.key_hash => {
                    Admitted::Refused { limits: k.fields.limits, usage: k.usage_at(w) }
                }
                _ => Admitted::KeyGone,
            });
        };
        let reservation_id = sqlx::query_scalar::<_, i64>(sql::INSERT_RESERVATION)
            .bind(a.key_id)
            .bind(a.instance_id)
            .bind(w.now)
            .bind(w.minute.start)
            .bind(w.day.start)
            .bind(w.month.start)
            .bind(a.reserve_tokens)
            .bind(a.prompt_estimate)
            .bind(a.model)
            .bind(a.route)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Admitted::Yes { reservation_id, usage: counters.into() })
    }

    async fn settle(&self, s: &Settlement) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let settled = Self::settle_in(&mut tx, s).await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn settle_stale(&self, stale_before: i64, now: i64) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let stale: Vec<(i64, i64)> =
            sqlx::query_as(sql::STALE_RESERVATIONS).bind(stale_before).fetch_all(&mut *tx).await?;
        let mut settled = 0;
        for (reservation_id, prompt_estimate) in stale {
            // The process died mid-request: charge the prompt it had sent, marked estimated.
            let s = Settlement {
                reservation_id,
                prompt_tokens: prompt_estimate,
                completion_tokens: 0,
                estimated: true,
                status: "interrupted",
                http_status: 0,
                latency_ms: 0,
                refund_request: false,
                now,
            };
            settled += u64::from(Self::settle_in(&mut tx, &s).await?);
        }
        sqlx::query(sql::DELETE_STALE_INSTANCES).bind(stale_before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(settled)
    }

    async fn heartbeat(&self, instance_id: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(sql::HEARTBEAT).bind(instance_id).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_instance(&self, instance_id: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(sql::REMOVE_INSTANCE).bind(instance_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn usage_rows(&self, f: &UsageFilter) -> StoreResult<Vec<UsageRow>> {
        let rows = sqlx::query_as::<_, UsageRow>(&sql::usage_rows())
            .bind(f.key_id)
            .bind(&f.model)
            .bind(&f.status)
            .bind(f.from)
            .bind(f.to)
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows)
    }

    async fn usage_buckets(&self, f: &UsageFilter, bucket_seconds: i64) -> StoreResult<Vec<UsageBucket>> {
        let rows = sqlx::query_as::<_, UsageBucket>(&sql::usage_buckets())
            .bind(f.key_id)
            .bind(&f.model)
            .bind(&f.status)
            .bind(f.from)
            .bind(f.to)
            .bind(bucket_seconds.max(1))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows)
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(sql::GET_SETTING).bind(name).fetch_optional(&self.reader).await?)
    }

    async fn put_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(sql::PUT_SETTING).bind(name).bind(value).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        let mut tx = self.write().await?;
        sqlx::query(sql::INIT_SETTING).bind(name).bind(value).execute(&mut *tx).await?;
        let stored: String = sqlx::query_scalar(sql::GET_SETTING).bind(name).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(stored)
    }
}
