//! Group commit on PostgreSQL: a whole batch of settlements and admissions
//! in one statement, so one round trip and one commit however many it holds.
//!
//! The statement calls `pg_temp.gate_commit`, a PL/pgSQL function that takes
//! arrays of parameters (one array per parameter, one element per job) and
//! runs the one-job statements of `sql.rs` (`PG_SETTLE`, `PG_ADMIT`) for each
//! element in turn, with `$N` standing for the job's `N`th array's element.
//! One after another in one statement, each admission sees every earlier one;
//! and across replicas, each waits for the key row's lock and re-checks its
//! limits against the committed row, as a lone statement does.
//!
//! A batch holds the locks of every key it touched until it commits, so two
//! replicas' batches that took two keys in opposite orders would deadlock.
//! Jobs therefore run in the order of their keys' ids (a key's settlements
//! before its admissions, each kind first come first served), and every
//! batch takes its locks in that one order. Budget rows (users, teams,
//! per-model limits) are shared by many keys: a batch locks every one it
//! will touch before any key, in id order, so the one order holds across
//! both kinds. An admission with budget rows also locks its key row before
//! its statement, whose parts all read one snapshot (`sql::PG_ADMIT_BUDGETS`).
//!
//! The function lives in the connection's own temporary schema and is made
//! when the connection opens, from the same SQL the one-job path runs: no
//! migration to keep in step with `sql.rs`, and replicas of other versions
//! never share it.

use super::group::{in_job_order, split, Done, Job};
use super::rows::CounterRow;
use super::sql::{self, rename_params, tagged};
use super::{Admission, Settlement, StoreResult, MAX_BUDGETS};
use sqlx::{FromRow, PgPool, Row};
use std::sync::LazyLock;

/// The parameters' SQL types, in the one-job statements' order.
const SETTLEMENT_TYPES: [&str; 11] = [
    "bigint", "bigint", "text", "bigint", "bigint", "bigint", "boolean", "bigint", "bigint", "bigint", "text",
];
const ADMISSION_TYPES: [&str; 24] = [
    "bigint", "bigint", "bigint", "bigint", "bigint", "text", "bigint", "text", "bigint", "text", "text",
    "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
    "bigint", "bigint", "bigint",
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
    // The order to run them in: which kind, and its place in that kind's arrays.
    all.extend(["o_settle boolean[]".to_owned(), "o_place integer[]".to_owned()]);
    // Every budget row the batch touches, locked first, in id order.
    all.push("lock_ids bigint[]".to_owned());
    let columns: Vec<String> = COUNTERS.iter().map(|c| format!("{c} bigint")).collect();
    let nulls = vec!["NULL::bigint"; COUNTERS.len()].join(", ");
    let counters: Vec<String> = COUNTERS.iter().map(|c| format!("k.{c}")).collect();
    let settle = tagged(
        &rename_params(&sql::PG_SETTLE, |n| format!("s{n}[i]")),
        &[("SELECT key_id FROM r", format!("SELECT 'settled'::text, i, {nulls}, r.key_id FROM r"))],
    );
    let returned = format!("SELECT 'admitted'::text, i, {}, r.id FROM k, r", counters.join(", "));
    let admit = tagged(
        &rename_params(&sql::PG_ADMIT, |n| format!("a{n}[i]")),
        &[("SELECT k.*, r.id AS reservation_id FROM k, r", returned.clone())],
    );
    let admit_budgets = tagged(
        &rename_params(&sql::PG_ADMIT_BUDGETS, |n| format!("a{n}[i]")),
        &[("SELECT k.*, r.id AS reservation_id FROM k, r", returned)],
    );
    format!(
        "CREATE OR REPLACE FUNCTION pg_temp.gate_commit({}) \
         RETURNS TABLE (kind text, place integer, {}, id bigint) LANGUAGE plpgsql AS $body$\n\
         #variable_conflict use_column\n\
         DECLARE i integer;\n\
         BEGIN\n\
         IF coalesce(cardinality(lock_ids), 0) > 0 THEN\n\
           PERFORM 1 FROM budgets WHERE id = ANY(lock_ids) ORDER BY id FOR UPDATE;\n\
         END IF;\n\
         FOR n IN 1 .. coalesce(cardinality(o_place), 0) LOOP\n\
           i := o_place[n];\n\
           IF o_settle[n] THEN\n  RETURN QUERY {settle};\n\
           ELSIF a21[i] = 0 THEN\n  RETURN QUERY {admit};\n\
           ELSE\n\
             PERFORM 1 FROM api_keys WHERE id = a1[i] FOR UPDATE;\n\
             RETURN QUERY {admit_budgets};\n\
           END IF;\n\
         END LOOP;\n\
         END $body$",
        all.join(", "),
        columns.join(", "),
    )
});

static CALL: LazyLock<String> = LazyLock::new(|| {
    let places: Vec<String> =
        (1..=SETTLEMENT_TYPES.len() + ADMISSION_TYPES.len() + 3).map(|n| format!("${n}")).collect();
    format!("SELECT * FROM pg_temp.gate_commit({})", places.join(", "))
});

/// Commits `jobs` (more than one: one alone runs its own statement, see
/// `postgres::PgBatches`) in one call of the function.
pub async fn commit(pool: &PgPool, jobs: &[Job]) -> StoreResult<Vec<Done>> {
    let (settlements, admissions) = split(jobs);
    let order = lock_order(&settlements, &admissions);
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
        .bind(s(|s| s.weighted_tokens))
        .bind(settlements.iter().map(|s| s.request_id.clone()).collect::<Vec<Option<String>>>())
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
    let query = (0..MAX_BUDGETS)
        .fold(query, |query, n| {
            query.bind(admissions.iter().map(|a| a.budgets.get(n).copied()).collect::<Vec<_>>())
        })
        .bind(a(|a| a.budgets.len() as i64))
        .bind(admissions.iter().map(|a| a.user_id).collect::<Vec<Option<i64>>>())
        .bind(admissions.iter().map(|a| a.team_id).collect::<Vec<Option<i64>>>())
        .bind(a(|a| a.weighted_prompt))
        .bind(order.iter().map(|(settle, _)| *settle).collect::<Vec<bool>>())
        .bind(order.iter().map(|(_, place)| *place).collect::<Vec<i32>>())
        .bind(budget_locks(&settlements, &admissions));
    let rows = query.fetch_all(pool).await?;

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

/// Every budget row a batch touches, in id order: a batch takes their locks
/// before any key's, so that no two batches wait for each other.
fn budget_locks(settlements: &[&Settlement], admissions: &[&Admission]) -> Vec<i64> {
    let mut ids: Vec<i64> = settlements
        .iter()
        .flat_map(|s| s.budgets.iter())
        .chain(admissions.iter().flat_map(|a| a.budgets.iter()))
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The order a batch runs in: by key id, a key's settlements before its
/// admissions, each kind in its own order. Places count from 1, as
/// PostgreSQL's arrays do.
fn lock_order(settlements: &[&Settlement], admissions: &[&Admission]) -> Vec<(bool, i32)> {
    let mut order: Vec<(i64, bool, i32)> = settlements
        .iter()
        .enumerate()
        .map(|(n, s)| (s.key_id, true, n as i32 + 1))
        .chain(admissions.iter().enumerate().map(|(n, a)| (a.key_id, false, n as i32 + 1)))
        .collect();
    // By key, then settlements (`!true` sorts first), then place.
    order.sort_by_key(|&(key, settle, place)| (key, !settle, place));
    order.into_iter().map(|(_, settle, place)| (settle, place)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::windows::Windows;

    #[test]
    fn batches_take_keys_in_id_order_settlements_first() {
        let admission = |key_id| Admission {
            key_id,
            key_hash: String::new(),
            windows: Windows::at(chrono::Utc::now(), chrono_tz::UTC),
            counts_in_request_quotas: true,
            reserve_tokens: 1,
            prompt_estimate: 0,
            model: String::new(),
            route: "/api/generate",
            instance_id: String::new(),
            budgets: vec![],
            user_id: None,
            team_id: None,
            weighted_prompt: 0,
        };
        let settlement = |key_id| Settlement {
            reservation_id: 1,
            key_id,
            prompt_tokens: 0,
            completion_tokens: 0,
            estimated: false,
            status: "ok",
            http_status: 200,
            latency_ms: 0,
            refund_request: false,
            now: 0,
            weighted_tokens: 0,
            budgets: vec![],
            request_id: None,
        };
        let (s, a) = ([settlement(7), settlement(2)], [admission(7), admission(2), admission(7)]);
        let order = lock_order(&s.iter().collect::<Vec<_>>(), &a.iter().collect::<Vec<_>>());
        assert_eq!(order, [(true, 2), (false, 2), (true, 1), (false, 1), (false, 3)]);
    }
}
