-- Keys for real life: the client addresses a key may be used from (comma-
-- separated addresses and CIDR blocks; NULL: anywhere), and the secret a key
-- had before its last rotation, which keeps working until previous_valid_until.
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN previous_key_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_key_hint TEXT;
ALTER TABLE api_keys ADD COLUMN previous_valid_until BIGINT;
CREATE INDEX api_keys_previous_hash ON api_keys (previous_key_hash);
