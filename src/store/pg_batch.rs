//! Group commit on PostgreSQL: a whole batch of settlements and admissions
//! in one statement, so one round trip and one commit however many it holds.
//!
//! The statement calls `pg_temp.gate_commit`, a PL/pgSQL function that loops
//! over arrays of parameters (one array per parameter, one element per job)
//! and runs the one-job statements of `sql.rs` (`PG_SETTLE`, then `PG_ADMIT`)
//! for each element in turn, with `$N` standing for the job's `N`th array's
//! element. One after another in one statement, each admission sees every
//! earlier one; and across replicas, each waits for the key row's lock and
//! re-checks its limits against the committed row, as a lone statement does.
//!
//! The function lives in the connection's own temporary schema and is made
//! when the connection opens, from the same SQL the one-job path runs: no
//! migration to keep in step with `sql.rs`, and replicas of other versions
//! never share it.

use super::group::{in_job_order, split, Batches, Done, Job};
use super::postgres::PgStore;
use super::rows::CounterRow;
use super::sql::{self, rename_params, tagged};
use super::{Admission, Settlement, StoreResult};
use sqlx::{FromRow, PgPool, Row};
use std::sync::LazyLock;

/// The parameters' SQL types, in the one-job statements' order.
const SETTLEMENT_TYPES: [&str; 9] =
    ["bigint", "bigint", "text", "bigint", "bigint", "bigint", "boolean", "bigint", "bigint"];
const ADMISSION_TYPES: [&str; 15] = [
    "bigint", "bigint", "bigint", "bigint", "bigint", "text", "bigint", "text", "bigint", "text", "text",
    "bigint", "bigint", "bigint", "bigint",
];

/// The counters a row carries after an admission (`CounterRow`'s columns).
const COUNTERS: [&str; 9] = [
    "minute_requests_used",
    "minute_tokens_used",
    "day_requests_used",
    "day_tokens_used",
    "month_requests_used",
    "month_tokens_used",
    "total_requests_used",
    "total_tokens_used",
    "in_flight",
];

/// Run on each new connection: defines `pg_temp.gate_commit` for it.
pub static DEFINE_FUNCTION: LazyLock<String> = LazyLock::new(|| {
    let params = |prefix: &str, types: &[&str]| -> Vec<String> {
        types.iter().enumerate().map(|(n, t)| format!("{prefix}{} {t}[]", n + 1)).collect()
    };
    let mut all = params("s", &SETTLEMENT_TYPES);
    all.extend(params("a", &ADMISSION_TYPES));
    let columns: Vec<String> = COUNTERS.iter().map(|c| format!("{c} bigint")).collect();
    let nulls = vec!["NULL::bigint"; COUNTERS.len()].join(", ");
    let counters: Vec<String> = COUNTERS.iter().map(|c| format!("k.{c}")).collect();
    let settle = tagged(
        &rename_params(&sql::PG_SETTLE, |n| format!("s{n}[i]")),
        &[("SELECT key_id FROM r", format!("SELECT 'settled'::text, i, {nulls}, r.key_id FROM r"))],
    );
    let admit = tagged(
        &rename_params(&sql::PG_ADMIT, |n| format!("a{n}[i]")),
        &[(
            "SELECT k.*, r.id AS reservation_id FROM k, r",
            format!("SELECT 'admitted'::text, i, {}, r.id FROM k, r", counters.join(", ")),
        )],
    );
    format!(
        "CREATE OR REPLACE FUNCTION pg_temp.gate_commit({}) \
         RETURNS TABLE (kind text, place integer, {}, id bigint) LANGUAGE plpgsql AS $body$\n\
         #variable_conflict use_column\n\
         BEGIN\n\
         FOR i IN 1 .. coalesce(cardinality(s1), 0) LOOP\n  RETURN QUERY {settle};\nEND LOOP;\n\
         FOR i IN 1 .. coalesce(cardinality(a1), 0) LOOP\n  RETURN QUERY {admit};\nEND LOOP;\n\
         END $body$",
        all.join(", "),
        columns.join(", "),
    )
});

static CALL: LazyLock<String> = LazyLock::new(|| {
    let places: Vec<String> =
        (1..=SETTLEMENT_TYPES.len() + ADMISSION_TYPES.len()).map(|n| format!("${n}")).collect();
    format!("SELECT * FROM pg_temp.gate_commit({})", places.join(", "))
});

pub struct PgBatches {
    pub pool: PgPool,
}

#[async_trait::async_trait]
impl Batches for PgBatches {
    async fn commit(&self, jobs: &[Job]) -> StoreResult<Vec<Done>> {
        // One job alone: its own statement, which PostgreSQL runs quicker
        // than the function's loop (about 0.1 ms less on the test machine).
        match jobs {
            [Job::Admit(a)] => {
                let row = PgStore::bind_admission(sqlx::query(&sql::PG_ADMIT), a)
                    .fetch_optional(&self.pool)
                    .await?;
                let admitted = match row {
                    Some(row) => Some((CounterRow::from_row(&row)?, row.try_get("reservation_id")?)),
                    None => None,
                };
                return Ok(vec![Done::Admitted(admitted)]);
            }
            [Job::Settle(s)] => {
                let row = PgStore::bind_settlement(sqlx::query(&sql::PG_SETTLE), s)
                    .fetch_optional(&self.pool)
                    .await?;
                return Ok(vec![Done::Settled(row.is_some())]);
            }
            _ => {}
        }
        let (settlements, admissions) = split(jobs);
        let s = |f: fn(&Settlement) -> i64| settlements.iter().map(|s| f(s)).collect::<Vec<i64>>();
        let a = |f: fn(&Admission) -> i64| admissions.iter().map(|a| f(a)).collect::<Vec<i64>>();
        let a_text =
            |f: fn(&Admission) -> &str| admissions.iter().map(|a| f(a).to_owned()).collect::<Vec<String>>();
        // Bound in the order `SETTLEMENT_TYPES` and `ADMISSION_TYPES` name,
        // which is the one-job statements' (`bind_settlement`, `bind_admission`).
        let query = sqlx::query(&CALL)
            .bind(s(|s| s.reservation_id))
            .bind(s(|s| s.now))
            .bind(settlements.iter().map(|s| s.status.to_owned()).collect::<Vec<String>>())
            .bind(s(|s| i64::from(s.http_status)))
            .bind(s(|s| s.prompt_tokens))
            .bind(s(|s| s.completion_tokens))
            .bind(settlements.iter().map(|s| s.estimated).collect::<Vec<bool>>())
            .bind(s(|s| s.latency_ms))
            .bind(s(|s| i64::from(s.refund_request)))
            .bind(a(|a| a.key_id))
            .bind(a(|a| a.windows.minute.start))
            .bind(a(|a| a.windows.day.start))
            .bind(a(|a| a.windows.month.start))
            .bind(a(|a| a.reserve_tokens))
            .bind(a_text(|a| &a.key_hash))
            .bind(a(|a| a.windows.now))
            .bind(a_text(|a| &a.instance_id))
            .bind(a(|a| a.prompt_estimate))
            .bind(a_text(|a| &a.model))
            .bind(a_text(|a| a.route))
            .bind(a(|a| a.windows.minute.end))
            .bind(a(|a| a.windows.day.end))
            .bind(a(|a| a.windows.month.end))
            .bind(a(|a| i64::from(a.counts_in_request_quotas)));
        let rows = query.fetch_all(&self.pool).await?;

        let mut settled = vec![false; settlements.len()];
        let mut admitted: Vec<Option<(CounterRow, i64)>> = (0..admissions.len()).map(|_| None).collect();
        for row in &rows {
            // Places count from 1, as PostgreSQL's arrays do.
            let place = row.try_get::<i32, _>("place")? as usize - 1;
            match row.try_get::<&str, _>("kind")? {
                "settled" => settled[place] = true,
                _ => admitted[place] = Some((CounterRow::from_row(row)?, row.try_get("id")?)),
            }
        }
        Ok(in_job_order(jobs, settled, admitted))
    }
}
