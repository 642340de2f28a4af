-- People and teams. Their limits, and every per-model limit of a key, user or
-- team, live in `budgets`: each row carries limits and the counters measured
-- against them, in the same columns as `api_keys`, so one admission can check
-- and count every level the same way.
CREATE TABLE teams (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    email      TEXT,
    team_id    BIGINT,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX users_team ON users (team_id);

-- owner_kind is 'key', 'user' or 'team'; model is NULL for a user's or a
-- team's own limits, else the name or pattern a `model_limits` entry names,
-- at its place (position) in the owner's list.
CREATE TABLE budgets (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_kind           TEXT    NOT NULL,
    owner_id             BIGINT  NOT NULL,
    model                TEXT,
    position             BIGINT  NOT NULL DEFAULT 0,
    requests_per_minute  BIGINT,
    tokens_per_minute    BIGINT,
    daily_requests       BIGINT,
    daily_tokens         BIGINT,
    monthly_requests     BIGINT,
    monthly_tokens       BIGINT,
    total_tokens         BIGINT,
    max_concurrent       BIGINT,
    minute_start         BIGINT  NOT NULL DEFAULT 0,
    minute_end           BIGINT  NOT NULL DEFAULT 0,
    minute_requests_used BIGINT  NOT NULL DEFAULT 0,
    minute_tokens_used   BIGINT  NOT NULL DEFAULT 0,
    day_start            BIGINT  NOT NULL DEFAULT 0,
    day_end              BIGINT  NOT NULL DEFAULT 0,
    day_requests_used    BIGINT  NOT NULL DEFAULT 0,
    day_tokens_used      BIGINT  NOT NULL DEFAULT 0,
    month_start          BIGINT  NOT NULL DEFAULT 0,
    month_end            BIGINT  NOT NULL DEFAULT 0,
    month_requests_used  BIGINT  NOT NULL DEFAULT 0,
    month_tokens_used    BIGINT  NOT NULL DEFAULT 0,
    total_requests_used  BIGINT  NOT NULL DEFAULT 0,
    total_tokens_used    BIGINT  NOT NULL DEFAULT 0,
    in_flight            BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX budgets_owner ON budgets (owner_kind, owner_id, position);

-- The windows each budget row had when a reservation was counted into it, so
-- settlement corrects the same windows. WITHOUT ROWID: inserting here leaves
-- last_insert_rowid() naming the reservation.
CREATE TABLE reservation_budgets (
    reservation_id BIGINT NOT NULL,
    budget_id      BIGINT NOT NULL,
    minute_start   BIGINT NOT NULL,
    day_start      BIGINT NOT NULL,
    month_start    BIGINT NOT NULL,
    PRIMARY KEY (reservation_id, budget_id)
) WITHOUT ROWID;

ALTER TABLE api_keys ADD COLUMN user_id BIGINT;
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Who the request was for when it ran (kept if the user moves or goes), and
-- its tokens as the limits counted them (tokens times the model's weight).
ALTER TABLE reservations ADD COLUMN user_id BIGINT;
ALTER TABLE reservations ADD COLUMN team_id BIGINT;
ALTER TABLE reservations ADD COLUMN weighted_prompt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN user_id BIGINT;
ALTER TABLE usage ADD COLUMN team_id BIGINT;
ALTER TABLE usage ADD COLUMN weighted_tokens BIGINT NOT NULL DEFAULT 0;
UPDATE usage SET weighted_tokens = total_tokens;
CREATE INDEX usage_user_created ON usage (user_id, created_at);
CREATE INDEX usage_team_created ON usage (team_id, created_at);
