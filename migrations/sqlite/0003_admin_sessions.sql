-- Admin sessions live in signed, encrypted cookies; a cookie cannot be taken
-- back, so a logged-out session's id is kept here until it would have expired.
CREATE TABLE admin_sessions_revoked (
    id         TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
