-- Public keys that sign requests for an API key (the `ollama` command line
-- with OLLAMA_AUTH=1). A public key belongs to one API key only; deleting
-- the API key deletes its public keys (the store does, there are no
-- foreign keys). public_key is the base64 field of the .pub line.
CREATE TABLE key_public_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id       BIGINT  NOT NULL,
    public_key   TEXT    NOT NULL UNIQUE,
    comment      TEXT,
    fingerprint  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX key_public_keys_key_id ON key_public_keys (key_id);

-- Signatures already accepted, kept until their ts leaves the window: the
-- insert that claims one fails on conflict, so replicas sharing the
-- database accept each signature once.
CREATE TABLE used_signatures (
    signature_hash TEXT   NOT NULL PRIMARY KEY,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX used_signatures_expires_at ON used_signatures (expires_at);
