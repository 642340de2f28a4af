//! SQL shared by the SQLite and PostgreSQL stores.

use super::records::BucketBy;
use std::sync::LazyLock;

pub const KEY_COLUMNS: &str = "id, name, owner, key_hash, key_hint, active, expires_at, created_at, \
    updated_at, scopes, models, requests_per_minute, tokens_per_minute, daily_requests, daily_tokens, \
    monthly_requests, monthly_tokens, total_tokens, max_concurrent, max_num_ctx, max_output_tokens, max_images, \
    allow_keep_alive_extremes, model_aliases, minute_start, minute_requests_used, \
    minute_tokens_used, day_start, day_requests_used, day_tokens_used, month_start, month_requests_used, \
    month_tokens_used, total_requests_used, total_tokens_used, in_flight, minute_end, day_end, month_end, user_id, \
    queue_priority, alerts, allowed_ips, previous_key_hash, previous_key_hint, previous_valid_until";

pub const INSERT_KEY: &str = "INSERT INTO api_keys (name, owner, key_hash, key_hint, active, expires_at, \
    created_at, updated_at, scopes, models, requests_per_minute, tokens_per_minute, daily_requests, \
    daily_tokens, monthly_requests, monthly_tokens, total_tokens, max_concurrent, max_num_ctx, max_output_tokens, \
    max_images, allow_keep_alive_extremes, model_aliases, user_id, queue_priority, allowed_ips) \
    VALUES ($1, $2, $3, $4, TRUE, $5, $6, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
    $22, $23, $24) RETURNING id";

pub const UPDATE_KEY_FIELDS: &str = "UPDATE api_keys SET name = $2, owner = $3, expires_at = $4, \
    scopes = $5, models = $6, requests_per_minute = $7, tokens_per_minute = $8, daily_requests = $9, \
    daily_tokens = $10, monthly_requests = $11, monthly_tokens = $12, total_tokens = $13, \
    max_concurrent = $14, max_num_ctx = $15, max_output_tokens = $16, max_images = $17, \
    allow_keep_alive_extremes = $18, model_aliases = $19, updated_at = $20, user_id = $21, \
    queue_priority = $22, allowed_ips = $23 WHERE id = $1";

pub const SET_ACTIVE: &str = "UPDATE api_keys SET active = $2, updated_at = $3 WHERE id = $1";
/// A new secret; with a grace period (`$5`, the first second the old one no
/// longer works, else NULL) the secret being replaced becomes the previous one.
/// A previous secret still in its grace stops at once: one old secret at a time.
pub const ROTATE_KEY: &str = "UPDATE api_keys SET \
    previous_key_hash = CASE WHEN $5 IS NULL THEN NULL ELSE key_hash END, \
    previous_key_hint = CASE WHEN $5 IS NULL THEN NULL ELSE key_hint END, \
    previous_valid_until = $5, key_hash = $2, key_hint = $3, updated_at = $4 WHERE id = $1";
/// Ends a grace period early: the previous secret stops now.
pub const END_GRACE: &str = "UPDATE api_keys SET previous_key_hash = NULL, previous_key_hint = NULL, \
    previous_valid_until = NULL, updated_at = $2 WHERE id = $1";
/// The key a secret opens: its current one, or its previous one while that
/// works (the caller checks the time again: a cached answer outlives `$2`).
pub const KEY_BY_SECRET: &str =
    "WHERE key_hash = $1 OR (previous_key_hash = $1 AND previous_valid_until > $2)";
pub const DELETE_KEY: &str = "DELETE FROM api_keys WHERE id = $1";

/// The three windows as (column prefix, computed start, computed end) parameters.
const WINDOWS: [(&str, &str, &str); 3] =
    [("minute", "$2", "$12"), ("day", "$3", "$13"), ("month", "$4", "$14")];

/// Counts one request and reserves `$5` tokens in every window of a row of
/// `api_keys` or `budgets` (the same columns), as `SET` assignments, and the
/// conditions under which the row has room: `used + reserved + this <= limit`.
/// Each window moves only forward, by `windows::next_window` (stated here in
/// SQL; the two must agree): the stored window is kept while the computed one
/// begins before its end, and counts from zero only once it is replaced.
/// `$15` is 1 when the request counts in the daily, monthly and lifetime
/// request counters, 0 when only in the per-minute one and the concurrency slot.
/// In an UPDATE every expression reads the row as it was before it.
/// ($2-$4 and $12-$14 the computed windows' starts and ends, $5 tokens, $7 now)
fn counting() -> (String, String) {
    let mut set = Vec::new();
    let mut limits = vec!["(max_concurrent IS NULL OR in_flight + 1 <= max_concurrent)".to_owned()];
    for (window, start, end) in WINDOWS {
        let merges = format!("({window}_start = {start} OR 2 * {window}_end > {start} + {end})");
        let stays = format!("({start} < {window}_end AND ($7 < {window}_end OR {merges}))");
        let (requests, tokens) = (format!("{window}_requests_used"), format!("{window}_tokens_used"));
        let request = if window == "minute" { "1" } else { "$15" };
        let kept = |column: &str| format!("(CASE WHEN {stays} THEN {column} ELSE 0 END)");
        set.push(format!(
            "{window}_start = CASE WHEN {stays} THEN {window}_start \
             WHEN {start} >= {window}_end THEN {start} ELSE {window}_end END"
        ));
        set.push(format!(
            "{window}_end = CASE WHEN NOT {stays} THEN {end} \
             WHEN {merges} AND {end} > {window}_end THEN {end} ELSE {window}_end END"
        ));
        set.push(format!("{requests} = {} + {request}", kept(&requests)));
        set.push(format!("{tokens} = {} + $5", kept(&tokens)));
        let (request_limit, token_limit) = match window {
            "minute" => ("requests_per_minute", "tokens_per_minute"),
            "day" => ("daily_requests", "daily_tokens"),
            _ => ("monthly_requests", "monthly_tokens"),
        };
        let skipped = if window == "minute" { "" } else { " OR $15 = 0" };
        limits.push(format!(
            "({request_limit} IS NULL{skipped} OR {} + 1 <= {request_limit})",
            kept(&requests)
        ));
        limits.push(format!("({token_limit} IS NULL OR {} + $5 <= {token_limit})", kept(&tokens)));
    }
    set.push("total_requests_used = total_requests_used + $15".into());
    set.push("total_tokens_used = total_tokens_used + $5".into());
    set.push("in_flight = in_flight + 1".into());
    limits.push("(total_tokens IS NULL OR total_tokens_used + $5 <= total_tokens)".into());
    (set.join(",\n    "), limits.join("\n    AND "))
}

/// The key `$1` with secret `$6`, usable now and with room for the request.
fn key_has_room() -> String {
    let (_, room) = counting();
    format!(
        "id = $1 AND key_hash = $6 AND active = TRUE AND (expires_at IS NULL OR expires_at > $7) AND {room}"
    )
}

/// The budget rows of an admission: `$16`-`$20`, NULL where there are fewer.
const BUDGET_IDS: &str = "($16, $17, $18, $19, $20)";

/// Whether every one of the `$21` budget rows has room for the request.
fn budgets_have_room() -> String {
    let (_, room) = counting();
    format!("$21 = (SELECT COUNT(*) FROM budgets WHERE id IN {BUDGET_IDS} AND {room})")
}

/// The admission's update of its key row; `and` is one more condition.
/// Returns the counters as they are afterwards.
fn admit_key(and: &str) -> String {
    let (set, _) = counting();
    format!(
        "UPDATE api_keys SET {set} WHERE {} AND {and} \
         RETURNING name, minute_start, day_start, month_start, minute_requests_used, minute_tokens_used, \
         day_requests_used, day_tokens_used, month_requests_used, month_tokens_used, total_requests_used, \
         total_tokens_used, in_flight",
        key_has_room()
    )
}

/// The admission's update of its budget rows; `and` is one more condition.
fn admit_budgets(and: &str) -> String {
    let (set, _) = counting();
    format!("UPDATE budgets SET {set} WHERE id IN {BUDGET_IDS} AND {and}")
}

/// The reservation an admission leaves behind, read from the key row `k` as
/// the admission left it: the windows it counted into, which may be older than
/// the computed ones, are the ones settlement must find. The rest comes from
/// the admission's parameters ($8 instance, $9 prompt estimate, $10 model,
/// $11 route, $15 whether it counted in the request quotas).
const RESERVATION_COLUMNS: &str = "key_id, key_name, instance_id, created_at, minute_start, day_start, \
    month_start, reserved_tokens, prompt_estimate, model, route, quota_requests, user_id, team_id, weighted_prompt";
const RESERVATION_VALUES: &str =
    "$1, k.name, $8, $7, k.minute_start, k.day_start, k.month_start, $5, $9, $10, $11, $15, $22, $23, $24";
const RESERVATION_BUDGET_COLUMNS: &str = "reservation_id, budget_id, minute_start, day_start, month_start";

/// Admission on SQLite, inside a write transaction, whose writes no one
/// else sees until it commits: first the budget rows, all of them or none
/// (and none unless the key has room too), then the key row, only if every
/// budget row changed (`changes()`: `$21` of them, 0 for a key without any),
/// then the reservation, only if the key row changed, and where it was
/// counted in each budget row. Rows back: the budget rows, the key's
/// counters, the reservation id; no counters and no id when refused.
pub static SQLITE_ADMIT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}; \
         {}; \
         INSERT INTO reservations ({RESERVATION_COLUMNS}) SELECT {RESERVATION_VALUES} \
         FROM api_keys AS k WHERE k.id = $1 AND changes() = 1 RETURNING id; \
         INSERT INTO reservation_budgets ({RESERVATION_BUDGET_COLUMNS}) \
         SELECT last_insert_rowid(), b.id, b.minute_start, b.day_start, b.month_start \
         FROM budgets AS b WHERE b.id IN {BUDGET_IDS} AND changes() = 1",
        admit_budgets(&format!(
            "{} AND EXISTS (SELECT 1 FROM api_keys WHERE {})",
            budgets_have_room(),
            key_has_room()
        )),
        admit_key("changes() = $21"),
    )
});

/// Admission on SQLite of a key without budget rows (no user, no limits per
/// model): the key row, then the reservation only if the key row changed.
/// The same parameters and rows back as `SQLITE_ADMIT`, in fewer statements:
/// most keys take this path, and each statement costs on every request.
pub static SQLITE_ADMIT_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}; \
         INSERT INTO reservations ({RESERVATION_COLUMNS}) SELECT {RESERVATION_VALUES} \
         FROM api_keys AS k WHERE k.id = $1 AND changes() = 1 RETURNING id",
        admit_key("TRUE"),
    )
});

/// Admission on PostgreSQL of a key without budget rows: one statement, so
/// one round trip and no explicit transaction; the key row's lock orders
/// admissions on it across replicas. The counters and the reservation id in
/// one row; none when refused.
pub static PG_ADMIT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH k AS ({}), \
         r AS (INSERT INTO reservations ({RESERVATION_COLUMNS}) SELECT {RESERVATION_VALUES} FROM k RETURNING id) \
         SELECT k.*, r.id AS reservation_id FROM k, r",
        admit_key("TRUE")
    )
});

/// Admission on PostgreSQL with budget rows, run by `pg_batch` once it holds
/// the locks of the budget rows and of the key row: every part of the
/// statement sees one snapshot, which nobody else can change under those
/// locks, so the check (`ok`) holds for every update that follows it.
pub static PG_ADMIT_BUDGETS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH ok AS (SELECT ({} AND EXISTS (SELECT 1 FROM api_keys WHERE {})) AS ok), \
         b AS ({}), \
         k AS ({}), \
         r AS (INSERT INTO reservations ({RESERVATION_COLUMNS}) SELECT {RESERVATION_VALUES} FROM k RETURNING id), \
         rb AS (INSERT INTO reservation_budgets ({RESERVATION_BUDGET_COLUMNS}) \
             SELECT r.id, b.id, b.minute_start, b.day_start, b.month_start FROM r, b) \
         SELECT k.*, r.id AS reservation_id FROM k, r",
        budgets_have_room(),
        key_has_room(),
        admit_budgets("(SELECT ok FROM ok) RETURNING id, minute_start, day_start, month_start"),
        admit_key("(SELECT ok FROM ok)"),
    )
});

/// Replaces a reservation `r` by the real count in the windows of `table`
/// (`api_keys` or `budgets`) it was counted in, as `windows` (`r`, or the
/// reservation's `reservation_budgets` row) names them: a window that has
/// moved on since is left alone. Gives back the request when $9 = 1 where it
/// was counted (`r.quota_requests` says whether the daily, monthly and
/// lifetime counters had it), and frees its concurrency slot. No token
/// counter goes below zero. ($10 the tokens as the limits count them.)
fn settle_set(table: &str, windows: &str) -> String {
    let delta = "($10 - r.reserved_tokens)";
    let floored = |column: &str| {
        format!("CASE WHEN {table}.{column} + {delta} < 0 THEN 0 ELSE {table}.{column} + {delta} END")
    };
    let mut set = Vec::new();
    for window in ["minute", "day", "month"] {
        let (tokens, requests) = (format!("{window}_tokens_used"), format!("{window}_requests_used"));
        let same = format!("{table}.{window}_start = {windows}.{window}_start");
        let refund = if window == "minute" { "$9" } else { "$9 * r.quota_requests" };
        set.push(format!("{tokens} = CASE WHEN {same} THEN {} ELSE {table}.{tokens} END", floored(&tokens)));
        set.push(format!(
            "{requests} = CASE WHEN {same} THEN {table}.{requests} - {refund} ELSE {table}.{requests} END"
        ));
    }
    set.push(format!("total_tokens_used = {}", floored("total_tokens_used")));
    set.push(format!("total_requests_used = {table}.total_requests_used - $9 * r.quota_requests"));
    set.push(format!("in_flight = CASE WHEN {table}.in_flight > 0 THEN {table}.in_flight - 1 ELSE 0 END"));
    set.join(",\n    ")
}

/// The usage row of a settled reservation `r`. The key's name comes from the
/// reservation: the key may be deleted while its request runs.
/// ($2 now, $3 status, $4 HTTP status, $5 prompt and $6 completion tokens,
/// $7 estimated, $8 latency, $10 weighted tokens, $11 request id)
const USAGE_FROM_RESERVATION: &str =
    "INSERT INTO usage (created_at, key_id, key_name, model, route, status, \
    http_status, prompt_tokens, completion_tokens, total_tokens, estimated, latency_ms, user_id, team_id, \
    weighted_tokens, request_id) \
    SELECT $2, r.key_id, r.key_name, r.model, r.route, $3, $4, $5, $6, $5 + $6, $7, $8, r.user_id, r.team_id, $10, \
    $11";

/// Settlement of reservation $1 on SQLite, inside a write transaction: the
/// reservation is read by the first statements and deleted by the last,
/// which returns a row only if there was one to settle.
pub static SQLITE_SETTLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE api_keys SET {} FROM reservations AS r WHERE r.id = $1 AND api_keys.id = r.key_id; \
         UPDATE budgets SET {} FROM reservations AS r, reservation_budgets AS rb \
             WHERE r.id = $1 AND rb.reservation_id = r.id AND budgets.id = rb.budget_id; \
         DELETE FROM reservation_budgets WHERE reservation_id = $1; \
         {USAGE_FROM_RESERVATION} FROM reservations AS r WHERE r.id = $1; \
         DELETE FROM reservations WHERE id = $1 RETURNING key_id",
        settle_set("api_keys", "r"),
        settle_set("budgets", "rb"),
    )
});

/// Settlement on SQLite of a reservation without budget rows: `SQLITE_SETTLE`
/// without the statements for them.
pub static SQLITE_SETTLE_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE api_keys SET {} FROM reservations AS r WHERE r.id = $1 AND api_keys.id = r.key_id; \
         {USAGE_FROM_RESERVATION} FROM reservations AS r WHERE r.id = $1; \
         DELETE FROM reservations WHERE id = $1 RETURNING key_id",
        settle_set("api_keys", "r"),
    )
});

/// Settlement of reservation $1 on PostgreSQL: one statement. Taking the
/// reservation first locks it, so a second settler finds nothing and changes
/// nothing. A row back only if there was one to settle. With budget rows it
/// runs in `pg_batch`, after their locks are taken in the one order.
pub static PG_SETTLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r AS (DELETE FROM reservations WHERE id = $1 \
             RETURNING key_id, key_name, minute_start, day_start, month_start, reserved_tokens, \
                 quota_requests, model, route, user_id, team_id), \
         rb AS (DELETE FROM reservation_budgets WHERE reservation_id = $1 \
             RETURNING budget_id, minute_start, day_start, month_start), \
         k AS (UPDATE api_keys SET {} FROM r WHERE api_keys.id = r.key_id), \
         b AS (UPDATE budgets SET {} FROM r, rb WHERE budgets.id = rb.budget_id), \
         u AS ({USAGE_FROM_RESERVATION} FROM r) \
         SELECT key_id FROM r",
        settle_set("api_keys", "r"),
        settle_set("budgets", "rb"),
    )
});

/// `statements` with each `from` replaced once by its `to`.
pub fn tagged(statements: &str, replacements: &[(&str, String)]) -> String {
    let mut out = statements.to_owned();
    for (from, to) in replacements {
        assert_eq!(out.matches(from).count(), 1, "expected one {from:?} in the statement");
        out = out.replacen(from, to, 1);
    }
    out
}

/// `statements` with every parameter `$N` made `$(N + by)`.
pub fn renumber(statements: &str, by: usize) -> String {
    rename_params(statements, |n| format!("${}", n + by))
}

/// `statements` with every parameter `$N` replaced by `name(N)`.
pub fn rename_params(statements: &str, name: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(statements.len() + 64);
    let mut rest = statements;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[at + 1..at + 1 + digits].parse::<usize>() {
            Ok(n) => out.push_str(&name(n)),
            Err(_) => out.push('$'),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

pub const STALE_RESERVATIONS: &str =
    "SELECT r.id, r.key_id, r.prompt_estimate, r.weighted_prompt FROM reservations r \
    WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = r.instance_id AND i.heartbeat_at >= $1) \
    ORDER BY r.key_id, r.id";
pub const INSTANCE_RESERVATIONS: &str =
    "SELECT id, key_id, prompt_estimate, weighted_prompt FROM reservations WHERE instance_id = $1 ORDER BY key_id, id";
/// On PostgreSQL, before settling what dead processes left: the budget rows
/// those reservations hold, locked in id order as every batch takes them.
pub const PG_LOCK_BUDGETS_OF: &str = "SELECT id FROM budgets WHERE id IN \
    (SELECT budget_id FROM reservation_budgets WHERE reservation_id = ANY($1)) ORDER BY id FOR UPDATE";
pub const LIST_INSTANCES: &str = "SELECT id FROM instances ORDER BY id";
pub const DELETE_STALE_INSTANCES: &str = "DELETE FROM instances WHERE heartbeat_at < $1";

pub const HEARTBEAT: &str = "INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2) \
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
pub const REMOVE_INSTANCE: &str = "DELETE FROM instances WHERE id = $1";

/// Optional filters: a NULL parameter matches everything.
/// The filters on the usage log. `{TIME}` is the time range: written as
/// bounds for sums, so the index on `created_at` serves it and a day's rows
/// are read rather than the whole log; as `$4 IS NULL OR …` for pages of
/// rows, which are read newest id first and stop at a page, where the
/// index would make SQLite sort the whole range first.
const USAGE_FILTERS: &str = "WHERE {TIME} \
    AND ($1 IS NULL OR key_id = $1) AND ($2 IS NULL OR model = $2) AND ($3 IS NULL OR status = $3) \
    AND ($6 IS NULL OR user_id = $6) AND ($7 IS NULL OR team_id = $7)";

fn usage_where(for_sums: bool) -> String {
    let time = if for_sums {
        "created_at >= COALESCE($4, -9223372036854775807) AND created_at < COALESCE($5, 9223372036854775807)"
    } else {
        "($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)"
    };
    USAGE_FILTERS.replace("{TIME}", time)
}

const USAGE_COLUMNS: &str =
    "id, created_at, key_id, key_name, model, route, status, http_status, prompt_tokens, \
    completion_tokens, total_tokens, estimated, latency_ms, user_id, team_id, weighted_tokens, request_id";

pub fn usage_rows() -> String {
    format!(
        "SELECT {USAGE_COLUMNS} FROM usage {} AND id < COALESCE($10, 9223372036854775807) \
         ORDER BY id DESC LIMIT $8 OFFSET $9",
        usage_where(false)
    )
}

pub fn usage_buckets(by: BucketBy) -> String {
    // Left-out columns are typed constants: PostgreSQL would read a bare
    // NULL as text and 0 as a 4-byte integer.
    let none = "CAST(NULL AS BIGINT)";
    let zero = "CAST(0 AS BIGINT)";
    let (key, key_name, model, user, team, group) = match by {
        BucketBy::All => ("key_id", "MAX(key_name)", "model", "user_id", "team_id", "1, 2, 4, 5, 6"),
        BucketBy::Time => (zero, "''", "''", none, none, "1"),
        BucketBy::Model => (zero, "''", "model", none, none, "1, 4"),
        BucketBy::Key => ("key_id", "MAX(key_name)", "''", none, none, "1, 2"),
        BucketBy::User => (zero, "''", "''", "user_id", none, "1, 5"),
        BucketBy::Team => (zero, "''", "''", none, "team_id", "1, 6"),
    };
    format!(
        "SELECT (created_at / $8) * $8 AS bucket, {key} AS key_id, {key_name} AS key_name, {model} AS model, \
         {user} AS user_id, {team} AS team_id, \
         COUNT(*) AS requests, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
         CAST(SUM(total_tokens) AS BIGINT) AS total_tokens, \
         CAST(SUM(weighted_tokens) AS BIGINT) AS weighted_tokens \
         FROM usage {filters} GROUP BY {group} ORDER BY {group}",
        filters = usage_where(true)
    )
}

/// Tokens per quarter hour and model since $1: read from the index on
/// exactly these expressions (migration 0010), so nothing is sorted and no
/// row is visited.
pub const MODEL_QUARTERS: &str = "SELECT (created_at / 900) * 900 AS bucket, model, \
    CAST(SUM(total_tokens) AS BIGINT) AS total_tokens FROM usage WHERE created_at / 900 >= $1 / 900 \
    GROUP BY created_at / 900, model ORDER BY created_at / 900, model";

pub const GET_SETTING: &str = "SELECT value FROM settings WHERE name = $1";
pub const PUT_SETTING: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) \
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";
pub const INIT_SETTING: &str =
    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";

pub const IMPORT_KEY: &str = "INSERT INTO api_keys (id, name, owner, key_hash, key_hint, active, expires_at, \
    created_at, updated_at, scopes, models, requests_per_minute, tokens_per_minute, daily_requests, daily_tokens, \
    monthly_requests, monthly_tokens, total_tokens, max_concurrent, max_num_ctx, max_output_tokens, max_images, \
    allow_keep_alive_extremes, model_aliases, minute_start, minute_requests_used, \
    minute_tokens_used, day_start, day_requests_used, day_tokens_used, month_start, month_requests_used, \
    month_tokens_used, total_requests_used, total_tokens_used, in_flight, minute_end, day_end, month_end, user_id, \
    queue_priority, allowed_ips, previous_key_hash, previous_key_hint, previous_valid_until) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
    $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, 0, $36, $37, $38, $39, $40, $41, $42, $43, $44)";

pub fn usage_after() -> String {
    format!("SELECT {USAGE_COLUMNS} FROM usage WHERE id > $1 ORDER BY id LIMIT $2")
}

pub fn import_usage() -> String {
    format!(
        "INSERT INTO usage ({USAGE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    )
}

pub const ALL_SETTINGS: &str = "SELECT name, value FROM settings ORDER BY name";
pub const COUNT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM api_keys) + (SELECT COUNT(*) FROM usage) \
    + (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM teams)";

pub const REVOKE_SESSION: &str = "INSERT INTO admin_sessions_revoked (id, expires_at) VALUES ($1, $2) \
    ON CONFLICT (id) DO NOTHING";
pub const FORGET_EXPIRED_REVOCATIONS: &str = "DELETE FROM admin_sessions_revoked WHERE expires_at < $1";
pub const IS_SESSION_REVOKED: &str = "SELECT COUNT(*) FROM admin_sessions_revoked WHERE id = $1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_move_past_the_jobs_before_or_take_new_names() {
        assert_eq!(renumber("a = $1 AND b = $12 OR $2", 15), "a = $16 AND b = $27 OR $17");
        assert_eq!(renumber("no parameters", 9), "no parameters");
        assert_eq!(rename_params("x = $3 + $10", |n| format!("p{n}[i]")), "x = p3[i] + p10[i]");
    }
}
