//! SQL shared by the SQLite and PostgreSQL stores.

pub const KEY_COLUMNS: &str = "id, name, owner, key_hash, key_hint, active, expires_at, created_at, \
    updated_at, scopes, models, requests_per_minute, tokens_per_minute, daily_requests, daily_tokens, \
    monthly_requests, monthly_tokens, total_tokens, max_concurrent, max_num_ctx, max_output_tokens, max_images, \
    allow_keep_alive_extremes, model_aliases, minute_start, minute_requests_used, \
    minute_tokens_used, day_start, day_requests_used, day_tokens_used, month_start, month_requests_used, \
    month_tokens_used, total_requests_used, total_tokens_used, in_flight";

pub const INSERT_KEY: &str = "INSERT INTO api_keys (name, owner, key_hash, key_hint, active, expires_at, \
    created_at, updated_at, scopes, models, requests_per_minute, tokens_per_minute, daily_requests, \
    daily_tokens, monthly_requests, monthly_tokens, total_tokens, max_concurrent, max_num_ctx, max_output_tokens, \
    max_images, allow_keep_alive_extremes, model_aliases) \
    VALUES ($1, $2, $3, $4, TRUE, $5, $6, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
    RETURNING id";

pub const UPDATE_KEY_FIELDS: &str = "UPDATE api_keys SET name = $2, owner = $3, expires_at = $4, \
    scopes = $5, models = $6, requests_per_minute = $7, tokens_per_minute = $8, daily_requests = $9, \
    daily_tokens = $10, monthly_requests = $11, monthly_tokens = $12, total_tokens = $13, \
    max_concurrent = $14, max_num_ctx = $15, max_output_tokens = $16, max_images = $17, \
    allow_keep_alive_extremes = $18, model_aliases = $19, updated_at = $20 WHERE id = $1";

pub const SET_ACTIVE: &str = "UPDATE api_keys SET active = $2, updated_at = $3 WHERE id = $1";
pub const ROTATE_KEY: &str =
    "UPDATE api_keys SET key_hash = $2, key_hint = $3, updated_at = $4 WHERE id = $1";
pub const DELETE_KEY: &str = "DELETE FROM api_keys WHERE id = $1";

/// Counts one request and reserves `$5` tokens in every window, but only if the
/// key is usable and no limit would be passed: `used + reserved + this <= limit`.
/// A window whose stored start is not the current one counts from zero.
/// ($1 key, $2 minute, $3 day, $4 month, $5 tokens, $6 key hash, $7 now)
pub const ADMIT: &str = "UPDATE api_keys SET
    minute_start = $2,
    minute_requests_used = (CASE WHEN minute_start = $2 THEN minute_requests_used ELSE 0 END) + 1,
    minute_tokens_used = (CASE WHEN minute_start = $2 THEN minute_tokens_used ELSE 0 END) + $5,
    day_start = $3,
    day_requests_used = (CASE WHEN day_start = $3 THEN day_requests_used ELSE 0 END) + 1,
    day_tokens_used = (CASE WHEN day_start = $3 THEN day_tokens_used ELSE 0 END) + $5,
    month_start = $4,
    month_requests_used = (CASE WHEN month_start = $4 THEN month_requests_used ELSE 0 END) + 1,
    month_tokens_used = (CASE WHEN month_start = $4 THEN month_tokens_used ELSE 0 END) + $5,
    total_requests_used = total_requests_used + 1,
    total_tokens_used = total_tokens_used + $5,
    in_flight = in_flight + 1
  WHERE id = $1 AND key_hash = $6 AND active = TRUE AND (expires_at IS NULL OR expires_at > $7)
    AND (max_concurrent IS NULL OR in_flight + 1 <= max_concurrent)
    AND (requests_per_minute IS NULL
         OR (CASE WHEN minute_start = $2 THEN minute_requests_used ELSE 0 END) + 1 <= requests_per_minute)
    AND (tokens_per_minute IS NULL
         OR (CASE WHEN minute_start = $2 THEN minute_tokens_used ELSE 0 END) + $5 <= tokens_per_minute)
    AND (daily_requests IS NULL
         OR (CASE WHEN day_start = $3 THEN day_requests_used ELSE 0 END) + 1 <= daily_requests)
    AND (daily_tokens IS NULL
         OR (CASE WHEN day_start = $3 THEN day_tokens_used ELSE 0 END) + $5 <= daily_tokens)
    AND (monthly_requests IS NULL
         OR (CASE WHEN month_start = $4 THEN month_requests_used ELSE 0 END) + 1 <= monthly_requests)
    AND (monthly_tokens IS NULL
         OR (CASE WHEN month_start = $4 THEN month_tokens_used ELSE 0 END) + $5 <= monthly_tokens)
    AND (total_tokens IS NULL OR total_tokens_used + $5 <= total_tokens)
  RETURNING minute_requests_used, minute_tokens_used, day_requests_used, day_tokens_used,
    month_requests_used, month_tokens_used, total_requests_used, total_tokens_used, in_flight";

pub const INSERT_RESERVATION: &str = "INSERT INTO reservations (key_id, key_name, instance_id, created_at, \
    minute_start, day_start, month_start, reserved_tokens, prompt_estimate, model, route) \
    VALUES ($1, (SELECT name FROM api_keys WHERE id = $1), $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";

pub const TAKE_RESERVATION: &str = "DELETE FROM reservations WHERE id = $1 \
    RETURNING key_id, key_name, minute_start, day_start, month_start, reserved_tokens, model, route";

/// Replaces a reservation by the real count ($5 = real - reserved) in the windows
/// it was made in, gives back the request when $6 = 1, and frees its concurrency slot.
/// ($1 key, $2 minute, $3 day, $4 month, $5 token delta, $6 refunded requests)
pub const SETTLE_COUNTERS: &str = "UPDATE api_keys SET
    minute_tokens_used = CASE WHEN minute_start = $2 THEN
        (CASE WHEN minute_tokens_used + $5 < 0 THEN 0 ELSE minute_tokens_used + $5 END) ELSE minute_tokens_used END,
    minute_requests_used = CASE WHEN minute_start = $2 THEN minute_requests_used - $6 ELSE minute_requests_used END,
    day_tokens_used = CASE WHEN day_start = $3 THEN
        (CASE WHEN day_tokens_used + $5 < 0 THEN 0 ELSE day_tokens_used + $5 END) ELSE day_tokens_used END,
    day_requests_used = CASE WHEN day_start = $3 THEN day_requests_used - $6 ELSE day_requests_used END,
    month_tokens_used = CASE WHEN month_start = $4 THEN
        (CASE WHEN month_tokens_used + $5 < 0 THEN 0 ELSE month_tokens_used + $5 END) ELSE month_tokens_used END,
    month_requests_used = CASE WHEN month_start = $4 THEN month_requests_used - $6 ELSE month_requests_used END,
    total_tokens_used = CASE WHEN total_tokens_used + $5 < 0 THEN 0 ELSE total_tokens_used + $5 END,
    total_requests_used = total_requests_used - $6,
    in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END
  WHERE id = $1";

/// The key's name comes from the reservation: the key may be deleted while its request runs.
pub const INSERT_USAGE: &str = "INSERT INTO usage (created_at, key_id, key_name, model, route, status, \
    http_status, prompt_tokens, completion_tokens, total_tokens, estimated, latency_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

pub const STALE_RESERVATIONS: &str = "SELECT r.id, r.prompt_estimate FROM reservations r \
    WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = r.instance_id AND i.heartbeat_at >= $1) \
    ORDER BY r.id";
pub const DELETE_STALE_INSTANCES: &str = "DELETE FROM instances WHERE heartbeat_at < $1";

pub const HEARTBEAT: &str = "INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2) \
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
pub const REMOVE_INSTANCE: &str = "DELETE FROM instances WHERE id = $1";

/// Optional filters: a NULL parameter matches everything.
const USAGE_WHERE: &str = "WHERE ($1 IS NULL OR key_id = $1) AND ($2 IS NULL OR model = $2) \
    AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)";

pub fn usage_rows() -> String {
    format!(
        "SELECT id, created_at, key_id, key_name, model, route, status, http_status, prompt_tokens, \
         completion_tokens, total_tokens, estimated, latency_ms FROM usage {USAGE_WHERE} \
         ORDER BY id DESC LIMIT $6 OFFSET $7"
    )
}

pub fn usage_buckets() -> String {
    format!(
        "SELECT (created_at / $6) * $6 AS bucket, key_id, MAX(key_name) AS key_name, model, \
         COUNT(*) AS requests, CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, \
         CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, \
         CAST(SUM(total_tokens) AS BIGINT) AS total_tokens \
         FROM usage {USAGE_WHERE} GROUP BY 1, 2, 4 ORDER BY 1, 2, 4"
    )
}

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
    month_tokens_used, total_requests_used, total_tokens_used, in_flight) VALUES ($1, $2, $3, $4, $5, $6, $7, \
    $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, \
    $30, $31, $32, $33, $34, $35, 0)";

pub const USAGE_AFTER: &str = "SELECT id, created_at, key_id, key_name, model, route, status, http_status, \
    prompt_tokens, completion_tokens, total_tokens, estimated, latency_ms FROM usage WHERE id > $1 ORDER BY id LIMIT $2";

pub const IMPORT_USAGE: &str = "INSERT INTO usage (id, created_at, key_id, key_name, model, route, status, \
    http_status, prompt_tokens, completion_tokens, total_tokens, estimated, latency_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

pub const ALL_SETTINGS: &str = "SELECT name, value FROM settings ORDER BY name";
pub const COUNT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM api_keys) + (SELECT COUNT(*) FROM usage)";

pub const REVOKE_SESSION: &str = "INSERT INTO admin_sessions_revoked (id, expires_at) VALUES ($1, $2) \
    ON CONFLICT (id) DO NOTHING";
pub const FORGET_EXPIRED_REVOCATIONS: &str = "DELETE FROM admin_sessions_revoked WHERE expires_at < $1";
pub const IS_SESSION_REVOKED: &str = "SELECT COUNT(*) FROM admin_sessions_revoked WHERE id = $1";
