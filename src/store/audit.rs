//! The audit log's rows (`audit_log`), for SQLite and PostgreSQL alike, like
//! `sql_store!`. An entry is written in a transaction of its own, right after
//! the change it describes (see `admin::audit`).

use super::StoreResult;
use crate::domain::audit::AuditEntry;

/// The audit log: written once per admin change, read newest first.
#[async_trait::async_trait]
pub trait Audit: Send + Sync {
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    async fn audit_rows(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>>;
    /// Deletes the entries older than `before`; returns how many went.
    async fn prune_audit(&self, before: i64) -> StoreResult<u64>;
    /// Entries read from another database (`migrate --from --to`), as they were.
    async fn import_audit(&self, rows: &[AuditRow]) -> StoreResult<()>;
}

/// Which entries to read; a `None` matches every entry.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// An entry as stored: `before` and `after` are JSON text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub address: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

pub const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, actor, address, action, target, before, after) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const AUDIT_ROWS: &str = "SELECT id, at, actor, address, action, target, before, after FROM audit_log \
    WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) AND ($3 IS NULL OR actor = $3) \
    AND ($4 IS NULL OR action = $4) ORDER BY at DESC, id DESC LIMIT $5 OFFSET $6";
pub const PRUNE_AUDIT: &str = "DELETE FROM audit_log WHERE at < $1";

macro_rules! audit_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::audit::Audit for $store {
            async fn record_audit(&self, e: &$crate::domain::audit::AuditEntry) -> StoreResult<()> {
                use $crate::store::audit::INSERT_AUDIT;
                let text = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query(INSERT_AUDIT)
                        .bind(e.at)
                        .bind(e.actor.via.as_str())
                        .bind(e.actor.address.map(|a| a.to_string()))
                        .bind(e.action)
                        .bind(e.target.clone())
                        .bind(text(&e.before))
                        .bind(text(&e.after))
                        .execute(&mut *tx)
                        .await?;
                })
            }

            async fn audit_rows(
                &self,
                f: &$crate::store::audit::AuditFilter,
            ) -> StoreResult<Vec<$crate::store::audit::AuditRow>> {
                Ok(sqlx::query_as($crate::store::audit::AUDIT_ROWS)
                    .bind(f.from)
                    .bind(f.to)
                    .bind(f.actor.clone())
                    .bind(f.action.clone())
                    .bind(f.limit)
                    .bind(f.offset)
                    .fetch_all(self.reader()?)
                    .await?)
            }

            async fn import_audit(&self, rows: &[$crate::store::audit::AuditRow]) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    for r in rows {
                        sqlx::query($crate::store::audit::INSERT_AUDIT)
                            .bind(r.at)
                            .bind(&r.actor)
                            .bind(&r.address)
                            .bind(&r.action)
                            .bind(&r.target)
                            .bind(&r.before)
                            .bind(&r.after)
                            .execute(&mut *tx)
                            .await?;
                    }
                })
            }

            async fn prune_audit(&self, before: i64) -> StoreResult<u64> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::audit::PRUNE_AUDIT)
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                })
            }
        }
    };
}

pub(crate) use audit_store;
