//! Refused proxy requests counted per hour, key and reason (`refusals`), for
//! SQLite and PostgreSQL alike, like `sql_store!`. The proxy counts in memory
//! and adds its counts here every few seconds (`crate::refusals`), so a flood
//! of refusals costs the database one upsert per (hour, key, reason).

use super::StoreResult;

/// Refusal counts: added to, never overwritten, so replicas share the rows.
#[async_trait::async_trait]
pub trait Refusals: Send + Sync {
    /// Adds each count to its row, in one transaction: all or none.
    async fn add_refusals(&self, counts: &[RefusalCount]) -> StoreResult<()>;
    async fn refusal_rows(&self, filter: &RefusalFilter, group: RefusalGroup)
        -> StoreResult<Vec<RefusalRow>>;
    /// Rows read from another database (`migrate --from --to`, one per hour,
    /// key and reason), added as they were.
    async fn import_refusals(&self, rows: &[RefusalRow]) -> StoreResult<()>;
}

/// Refusals of one reason, for one key (`None`: before a key was known), in
/// the hour starting at `hour` (unix seconds, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalCount {
    pub hour: i64,
    pub key_id: Option<i64>,
    pub reason: &'static str,
    pub count: i64,
}

/// The stored key id of refusals that had no key (a unique index treats
/// NULLs as distinct, so they would not add up in one row).
const NO_KEY: i64 = 0;

#[derive(Debug, Clone, Copy, Default)]
pub struct RefusalFilter {
    /// `Some(None)`: only refusals without a key.
    pub key_id: Option<Option<i64>>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// How counts are summed: one row per hour, key and reason, or per one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalGroup {
    Each,
    Hour,
    Key,
    Reason,
}

/// A group's fields (`None` where the grouping drops them) and its count.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalRow {
    pub hour: Option<i64>,
    pub key_id: Option<i64>,
    pub reason: Option<String>,
    pub count: i64,
}

impl RefusalRow {
    /// The key as the API shows it: none for refusals before authentication.
    pub fn key(&self) -> Option<i64> {
        self.key_id.filter(|&k| k != NO_KEY)
    }
}

pub fn stored_key(key_id: Option<i64>) -> i64 {
    key_id.unwrap_or(NO_KEY)
}

pub const ADD_REFUSALS: &str = "INSERT INTO refusals (hour, key_id, reason, count) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (hour, key_id, reason) DO UPDATE SET count = refusals.count + excluded.count";

const REFUSALS_WHERE: &str =
    "WHERE ($1 IS NULL OR key_id = $1) AND ($2 IS NULL OR hour >= $2) AND ($3 IS NULL OR hour < $3)";

pub fn refusal_rows(group: RefusalGroup) -> String {
    let (columns, group_by, order) = match group {
        RefusalGroup::Each => ("hour, key_id, reason, count", "", "hour DESC, key_id, reason"),
        RefusalGroup::Hour => (
            "hour, CAST(NULL AS BIGINT) AS key_id, CAST(NULL AS TEXT) AS reason, \
             CAST(SUM(count) AS BIGINT) AS count",
            "GROUP BY hour",
            "hour DESC",
        ),
        RefusalGroup::Key => (
            "CAST(NULL AS BIGINT) AS hour, key_id, CAST(NULL AS TEXT) AS reason, \
             CAST(SUM(count) AS BIGINT) AS count",
            "GROUP BY key_id",
            "key_id",
        ),
        RefusalGroup::Reason => (
            "CAST(NULL AS BIGINT) AS hour, CAST(NULL AS BIGINT) AS key_id, reason, \
             CAST(SUM(count) AS BIGINT) AS count",
            "GROUP BY reason",
            "reason",
        ),
    };
    format!("SELECT {columns} FROM refusals {REFUSALS_WHERE} {group_by} ORDER BY {order}")
}

macro_rules! refusals_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::refusals::Refusals for $store {
            async fn add_refusals(
                &self,
                counts: &[$crate::store::refusals::RefusalCount],
            ) -> StoreResult<()> {
                use $crate::store::refusals::{stored_key, ADD_REFUSALS};
                if counts.is_empty() {
                    return Ok(());
                }
                $crate::store::sql_steps::write_tx!(self, tx, {
                    for c in counts {
                        sqlx::query(ADD_REFUSALS)
                            .bind(c.hour)
                            .bind(stored_key(c.key_id))
                            .bind(c.reason)
                            .bind(c.count)
                            .execute(&mut *tx)
                            .await?;
                    }
                })
            }

            async fn import_refusals(&self, rows: &[$crate::store::refusals::RefusalRow]) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    for r in rows {
                        sqlx::query($crate::store::refusals::ADD_REFUSALS)
                            .bind(r.hour)
                            .bind(r.key_id)
                            .bind(&r.reason)
                            .bind(r.count)
                            .execute(&mut *tx)
                            .await?;
                    }
                })
            }

            async fn refusal_rows(
                &self,
                f: &$crate::store::refusals::RefusalFilter,
                group: $crate::store::refusals::RefusalGroup,
            ) -> StoreResult<Vec<$crate::store::refusals::RefusalRow>> {
                use $crate::store::refusals::{refusal_rows, stored_key};
                Ok(sqlx::query_as(&refusal_rows(group))
                    .bind(f.key_id.map(stored_key))
                    .bind(f.from)
                    .bind(f.to)
                    .fetch_all(self.reader()?)
                    .await?)
            }
        }
    };
}

pub(crate) use refusals_store;
