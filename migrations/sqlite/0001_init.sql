-- Keys carry their limits and the counters measured against them, so that one
-- conditional UPDATE can check every limit and count the request atomically.
CREATE TABLE api_keys (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT    NOT NULL,
    owner                TEXT,
    key_hash             TEXT    NOT NULL UNIQUE,
    key_hint             TEXT    NOT NULL,
    active               BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at           BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    scopes               TEXT    NOT NULL,
    models               TEXT,
    requests_per_minute  BIGINT,
    tokens_per_minute    BIGINT,
    daily_requests       BIGINT,
    daily_tokens         BIGINT,
    monthly_requests     BIGINT,
    monthly_tokens       BIGINT,
    total_tokens         BIGINT,
    max_concurrent       BIGINT,
    minute_start         BIGINT  NOT NULL DEFAULT 0,
    minute_requests_used BIGINT  NOT NULL DEFAULT 0,
    minute_tokens_used   BIGINT  NOT NULL DEFAULT 0,
    day_start            BIGINT  NOT NULL DEFAULT 0,
    day_requests_used    BIGINT  NOT NULL DEFAULT 0,
    day_tokens_used      BIGINT  NOT NULL DEFAULT 0,
    month_start          BIGINT  NOT NULL DEFAULT 0,
    month_requests_used  BIGINT  NOT NULL DEFAULT 0,
    month_tokens_used    BIGINT  NOT NULL DEFAULT 0,
    total_requests_used  BIGINT  NOT NULL DEFAULT 0,
    total_tokens_used    BIGINT  NOT NULL DEFAULT 0,
    in_flight            BIGINT  NOT NULL DEFAULT 0
);

-- One row per admitted request until it is settled. A process that dies leaves
-- its rows behind; the sweeper settles them once its heartbeat has gone stale.
CREATE TABLE reservations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id          BIGINT  NOT NULL,
    key_name        TEXT    NOT NULL,
    instance_id     TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    minute_start    BIGINT  NOT NULL,
    day_start       BIGINT  NOT NULL,
    month_start     BIGINT  NOT NULL,
    reserved_tokens BIGINT  NOT NULL,
    prompt_estimate BIGINT  NOT NULL,
    model           TEXT    NOT NULL,
    route           TEXT    NOT NULL
);
CREATE INDEX reservations_instance ON reservations (instance_id);

CREATE TABLE instances (
    id           TEXT   PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);

-- Usage history outlives the keys it belongs to, so it keeps the key's name.
CREATE TABLE usage (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at        BIGINT  NOT NULL,
    key_id            BIGINT  NOT NULL,
    key_name          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    route             TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    http_status       BIGINT  NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    total_tokens      BIGINT  NOT NULL,
    estimated         BOOLEAN NOT NULL,
    latency_ms        BIGINT  NOT NULL
);
CREATE INDEX usage_created ON usage (created_at);
CREATE INDEX usage_key_created ON usage (key_id, created_at);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
