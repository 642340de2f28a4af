-- Soft limits: {"<limit name>": <percent>} on keys, users and teams. When
-- usage crosses that share of the limit in its window, an alert is raised.
ALTER TABLE api_keys ADD COLUMN alerts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN alerts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE teams ADD COLUMN alerts TEXT NOT NULL DEFAULT '{}';

-- One row per alert that may be sent once: a soft limit of one key, user or
-- team in one window. The insert that claims it fails on conflict, so
-- replicas sharing the database send it once.
CREATE TABLE alerts_sent (
    level        TEXT   NOT NULL,
    subject_id   BIGINT NOT NULL,
    limit_name   TEXT   NOT NULL,
    window_start BIGINT NOT NULL,
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (level, subject_id, limit_name, window_start)
);

-- Every alert raised, for the console: what it said, when, whether the
-- webhook took it, and whether an admin dismissed it.
CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    delivered_at BIGINT,
    dismissed_at BIGINT
);
CREATE INDEX alerts_created_at ON alerts (created_at);
