//! Soft limits on keys, users and teams, the alerts raised (for the
//! console), and the claims that make a soft-limit alert go out once per
//! window however many processes share the database. Written for SQLite and
//! PostgreSQL alike, like `sql_store!`.

use super::{Owner, StoreResult};
use crate::domain::alerts::SoftLimits;

/// One alert as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: i64,
    pub kind: String,
    /// The JSON the webhook got.
    pub payload: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub dismissed_at: Option<i64>,
}

/// Alerts and soft limits.
#[async_trait::async_trait]
pub trait AlertRecords: Send + Sync {
    /// Replaces the soft limits of a key, user or team; false when it does not exist.
    async fn set_soft_limits(&self, owner: Owner, id: i64, soft: &SoftLimits) -> StoreResult<bool>;
    /// Claims the one alert of a soft limit in a window: true for the one
    /// caller that inserted the claim, false for every later one.
    async fn claim_alert(
        &self,
        owner: Owner,
        id: i64,
        limit: &str,
        window_start: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Keeps an alert for the console; returns its id.
    async fn record_alert(&self, kind: &str, payload: &str, now: i64) -> StoreResult<i64>;
    async fn alert_delivered(&self, id: i64, now: i64) -> StoreResult<()>;
    /// Alerts raised since `since`, newest first, at most `limit`; with
    /// `open_only`, those not dismissed.
    async fn recent_alerts(&self, since: i64, limit: i64, open_only: bool) -> StoreResult<Vec<AlertRow>>;
    /// How many alerts raised since `since` are not dismissed.
    async fn open_alert_count(&self, since: i64) -> StoreResult<i64>;
    /// Dismisses one alert; false when there is none open with that id.
    async fn dismiss_alert(&self, id: i64, now: i64) -> StoreResult<bool>;
    /// Deletes alerts recorded before `recorded_before`, and the claims of
    /// windows that began before `windows_before` (long over: they can never
    /// be claimed again). Lifetime limits' claims (window 0) stay: their window
    /// never ends. Returns how many rows went.
    async fn prune_alerts(&self, recorded_before: i64, windows_before: i64) -> StoreResult<u64>;
}

/// The table a level's soft limits are kept in.
pub fn set_soft_limits_sql(owner: Owner) -> &'static str {
    match owner {
        Owner::Key => "UPDATE api_keys SET alerts = $2 WHERE id = $1",
        Owner::User => "UPDATE users SET alerts = $2 WHERE id = $1",
        Owner::Team => "UPDATE teams SET alerts = $2 WHERE id = $1",
    }
}

pub const CLAIM_ALERT: &str =
    "INSERT INTO alerts_sent (level, subject_id, limit_name, window_start, sent_at) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (level, subject_id, limit_name, window_start) DO NOTHING";
pub const RECORD_ALERT: &str =
    "INSERT INTO alerts (kind, payload, created_at) VALUES ($1, $2, $3) RETURNING id";
pub const ALERT_DELIVERED: &str = "UPDATE alerts SET delivered_at = $2 WHERE id = $1";
pub const RECENT_ALERTS: &str =
    "SELECT id, kind, payload, created_at, delivered_at, dismissed_at FROM alerts \
    WHERE created_at >= $1 AND ($3 = 0 OR dismissed_at IS NULL) ORDER BY id DESC LIMIT $2";
pub const OPEN_ALERT_COUNT: &str =
    "SELECT COUNT(*) FROM alerts WHERE created_at >= $1 AND dismissed_at IS NULL";
pub const PRUNE_ALERTS: &str = "DELETE FROM alerts WHERE created_at < $1";
pub const PRUNE_CLAIMS: &str = "DELETE FROM alerts_sent WHERE window_start > 0 AND window_start < $1";
pub const DISMISS_ALERT: &str = "UPDATE alerts SET dismissed_at = $2 WHERE id = $1 AND dismissed_at IS NULL";

macro_rules! alerts_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::alerts::AlertRecords for $store {
            async fn set_soft_limits(
                &self,
                owner: $crate::store::Owner,
                id: i64,
                soft: &$crate::domain::alerts::SoftLimits,
            ) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::alerts::set_soft_limits_sql(owner))
                        .bind(id)
                        .bind(soft.to_db())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        > 0
                })
            }

            async fn claim_alert(
                &self,
                owner: $crate::store::Owner,
                id: i64,
                limit: &str,
                window_start: i64,
                now: i64,
            ) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::alerts::CLAIM_ALERT)
                        .bind(owner.as_str())
                        .bind(id)
                        .bind(limit.to_owned())
                        .bind(window_start)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1
                })
            }

            async fn record_alert(&self, kind: &str, payload: &str, now: i64) -> StoreResult<i64> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let id: i64 = sqlx::query_scalar($crate::store::alerts::RECORD_ALERT)
                        .bind(kind.to_owned())
                        .bind(payload.to_owned())
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    id
                })
            }

            async fn alert_delivered(&self, id: i64, now: i64) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::alerts::ALERT_DELIVERED)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                })
            }

            async fn recent_alerts(
                &self,
                since: i64,
                limit: i64,
                open_only: bool,
            ) -> StoreResult<Vec<$crate::store::alerts::AlertRow>> {
                Ok(sqlx::query_as($crate::store::alerts::RECENT_ALERTS)
                    .bind(since)
                    .bind(limit)
                    .bind(i64::from(open_only))
                    .fetch_all(self.reader()?)
                    .await?)
            }

            async fn open_alert_count(&self, since: i64) -> StoreResult<i64> {
                Ok(sqlx::query_scalar($crate::store::alerts::OPEN_ALERT_COUNT)
                    .bind(since)
                    .fetch_one(self.reader()?)
                    .await?)
            }

            async fn prune_alerts(&self, recorded_before: i64, windows_before: i64) -> StoreResult<u64> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let alerts = sqlx::query($crate::store::alerts::PRUNE_ALERTS)
                        .bind(recorded_before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    let claims = sqlx::query($crate::store::alerts::PRUNE_CLAIMS)
                        .bind(windows_before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    alerts + claims
                })
            }

            async fn dismiss_alert(&self, id: i64, now: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::alerts::DISMISS_ALERT)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        > 0
                })
            }
        }
    };
}

pub(crate) use alerts_store;
