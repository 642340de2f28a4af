-- A key's share of turns in the gate's fair queue: while several keys wait
-- for a backend's slot, a key of priority 3 is served three times as often
-- as one of priority 1.
ALTER TABLE api_keys ADD COLUMN queue_priority BIGINT NOT NULL DEFAULT 1;
