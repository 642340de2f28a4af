-- Per-key clamps on what a request may ask of the upstream, and model aliases.
ALTER TABLE api_keys ADD COLUMN max_num_ctx BIGINT;
ALTER TABLE api_keys ADD COLUMN max_output_tokens BIGINT;
ALTER TABLE api_keys ADD COLUMN max_images BIGINT;
ALTER TABLE api_keys ADD COLUMN allow_keep_alive_extremes BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_keys ADD COLUMN model_aliases TEXT;
