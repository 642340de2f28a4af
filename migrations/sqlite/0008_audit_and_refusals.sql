-- Every admin change and every login: who (how the admin was let in, from
-- which address), what (a dotted action name and its target), and the
-- changed fields before and after as JSON text. Never a secret.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       BIGINT NOT NULL,
    actor    TEXT   NOT NULL,
    address  TEXT,
    action   TEXT   NOT NULL,
    target   TEXT,
    before   TEXT,
    after    TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Refused proxy requests, counted per hour (its start, unix seconds), key
-- and reason. Key 0 stands for "no key" (refused before authentication), so
-- that the unique index holds for them too: NULLs are all distinct in it.
-- A flood of refusals adds to one row; it never adds rows.
CREATE TABLE refusals (
    hour    BIGINT NOT NULL,
    key_id  BIGINT NOT NULL,
    reason  TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (hour, key_id, reason)
);
