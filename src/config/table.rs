//! The settings' names, defaults and meanings, in one table.

/// Every setting, its default and what it means; README's table lists the same (a test holds them together).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("ADMIN_PASSWORD", "", "admin password (else generated on first start and printed once)"),
    ("ADMIN_PASSWORD_HASH", "", "argon2id PHC string instead of the plaintext"),
    ("PROXY_HOST", "0.0.0.0", "proxy bind address"),
    ("PROXY_PORT", "8000", "proxy port"),
    ("ADMIN_HOST", "127.0.0.1", "admin bind address"),
    ("ADMIN_PORT", "8001", "admin port"),
    ("DATABASE_URL", "sqlite://data/ollama-gate.db", "sqlite://PATH or postgres://..."),
    ("OLLAMA_URL", "http://localhost:11434", "upstream Ollama; comma-separated for several backends, each with options ?name=&slots=&weight=&enabled=&draining="),
    ("BACKEND_DEFAULT_SLOTS", "1", "requests a backend runs at once per model when its URL sets no slots= (Ollama's OLLAMA_NUM_PARALLEL)"),
    ("QUEUE_MAX_WAIT_SECS", "120", "longest a request waits in the gate for a free slot; then 429 queue_full"),
    ("QUEUE_MAX_PER_KEY", "64", "requests one key may have waiting for a slot; more get 429 queue_full"),
    ("OLLAMA_API_KEYS", "", "comma-separated upstream bearer keys, rotated on upstream 429"),
    ("APP_TZ", "UTC", "IANA zone in which daily and monthly windows reset"),
    ("LOG_FILE", "logs/usage.log", "JSON-lines usage log; empty to disable"),
    ("LOG_MAX_BYTES", "10485760", "usage log size before it rotates"),
    ("LOG_KEEP", "5", "rotated usage logs kept"),
    ("ANTHROPIC_DEFAULT_MODEL", "", "model for /v1/messages when the requested one is unknown"),
    ("ALLOWED_ORIGINS", "", "comma-separated CORS origins allowed on the proxy"),
    ("COOKIE_SECURE", "auto", "Secure flag on the admin cookie: auto, true, false"),
    ("SESSION_KEY", "", "64-byte base64 key for admin session cookies; set the same one on every replica"),
    ("SESSION_KEY_FILE", "", "without SESSION_KEY: file holding the generated key, mode 0600 (default session.key beside the SQLite file, else data/session.key)"),
    ("ADMIN_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],ollama-gate,ollama-gate-pg", "host names the admin listener answers (any port, or name:port); other Host headers get 421; * for any"),
    ("TRUSTED_PROXIES", "", "comma-separated proxy IPs/CIDRs whose X-Forwarded-For/-Host/-Proto the gate believes"),
    ("PULL_ALLOWED_REGISTRIES", "registry.ollama.ai", "comma-separated registry hosts /api/pull and the console may pull from (ollama.com counts as registry.ollama.ai); * for any"),
    ("MIN_OLLAMA_VERSION_FOR_MANAGE", "0.17.1", "manage routes are refused (503) while the backend they go to runs an older Ollama; 0 turns the check off"),
    ("ALLOW_KEY_IN_QUERY", "false", "accept ?api_key= / ?key= on the proxy"),
    ("ALLOW_KEY_IN_BODY", "false", "accept \"api_key\" in the JSON body"),
    ("SIGNED_REQUEST_WINDOW_SECS", "300", "how far a signed request's ts may be from the gate's clock, either way"),
    ("PUBLIC_URL", "", "the proxy's public base URL, for client snippets"),
    ("BODY_LIMIT", "33554432", "largest request body in bytes"),
    ("CONNECT_TIMEOUT_SECS", "5", "time to connect to the upstream"),
    ("FIRST_BYTE_TIMEOUT_SECS", "600", "time for the upstream's response headers (cold model loads)"),
    ("STREAM_IDLE_TIMEOUT_SECS", "120", "longest silence inside a streamed response"),
    ("KEY_CACHE_TTL_MS", "1000", "how long a key lookup is cached"),
    ("DEFAULT_OUTPUT_RESERVATION", "512", "output tokens reserved when a request sets no maximum (once less is left, what is left becomes its maximum)"),
    ("MAX_KEEP_ALIVE", "1h", "longest keep_alive a request may ask for (Go duration or seconds); also refused: unloading at once, pinning forever"),
    ("RESERVATION_STALE_AFTER_SECS", "30", "when a dead process's reservations are settled"),
    ("WORKERS", "0", "worker threads per listener (0: one per core)"),
    ("SHUTDOWN_TIMEOUT_SECS", "30", "how long running streams may drain on SIGTERM"),
    ("DB_MAX_CONNECTIONS", "8", "database read connections"),
    ("DB_BUSY_TIMEOUT_MS", "5000", "how long a SQLite write waits for the lock"),
    ("ALLOW_PRIVATE_IMAGE_URLS", "false", "let image_url fetches reach private and loopback addresses"),
    ("IMAGE_FETCH_MAX_BYTES", "20971520", "largest image fetched for an image_url"),
    ("IMAGE_FETCH_MAX_TOTAL_BYTES", "33554432", "all images one request fetches, together"),
    ("IMAGE_FETCH_MAX_IMAGES", "16", "remote images one request may name (0: none are fetched)"),
    ("IMAGE_FETCH_MAX_IN_FLIGHT", "8", "image fetches running at once in the whole process"),
    ("IMAGE_FETCH_QUEUE_WAIT_MS", "2000", "how long a fetch waits for a free slot before the request gets 503"),
    ("IMAGE_FETCH_TIMEOUT_SECS", "10", "time to fetch one image_url"),
    ("TOKENIZER_THREADS", "0", "threads that count tokens (prompt estimates, count_tokens), apart from the connection threads (0: half the cores, at least 1)"),
    ("TOKENIZER_QUEUE", "256", "token counts requests may wait for at once; more get 503"),
    ("TOKENIZER_QUEUE_PER_KEY", "64", "token counts one key's requests may wait for at once; more get 429"),
    ("ADMIN_SESSION_IDLE_MINUTES", "30", "an admin session ends after this long unused"),
    ("ADMIN_SESSION_MAX_HOURS", "12", "an admin session ends this long after login"),
    ("LOGIN_MAX_FAILURES", "10", "wrong admin passwords (console or bearer) from one address before it is locked out; after the first 3, each try waits a doubling delay"),
    ("LOGIN_LOCKOUT_MINUTES", "15", "how long a locked-out address gets 429"),
    ("LOGIN_GLOBAL_MAX_FAILURES", "100", "wrong admin passwords from all addresses within the lockout time after which addresses that never logged in are paced"),
    ("LOGIN_GLOBAL_INTERVAL_MS", "1000", "spacing of paced password checks (delayed, never refused)"),
    ("REQUEST_HEADER_TIMEOUT_SECS", "10", "time for a request's line and headers to arrive, on every request of a connection (else 408 or closed)"),
    ("REQUEST_BODY_TIMEOUT_SECS", "30", "time a request body may take before REQUEST_BODY_MIN_RATE adds more (else 408)"),
    ("REQUEST_BODY_MIN_RATE", "10240", "bytes per second a body must keep up beyond REQUEST_BODY_TIMEOUT_SECS"),
    ("KEEP_ALIVE_SECS", "75", "an idle keep-alive connection is closed after this; keep it above a front proxy's idle upstream timeout (nginx: 60)"),
    ("MAX_CONNECTIONS", "10000", "open connections per listener; more are answered 503 and closed"),
    ("MAX_CONNECTIONS_PER_ADDRESS", "256", "open connections from one client address per listener (0: no limit; behind a reverse proxy every client has its address)"),
    ("LISTEN_BACKLOG", "1024", "connections the system queues before they are accepted"),
    ("MAX_STREAM_DURATION_SECS", "3600", "longest response stream; it then ends with an error event and what passed is charged"),
    ("REVOKED_STREAM_CHECK_SECS", "2", "how often running streams' keys are checked; a deactivated, rotated, expired or deleted key's streams end"),
    ("AUDIT_RETENTION_DAYS", "365", "audit log entries and recorded alerts older than this are deleted (0: kept forever)"),
    ("REFUSALS_FLUSH_MS", "5000", "how often refused-request counts kept in memory are added to the database"),
    ("METRICS_TOKEN", "", "bearer token GET /metrics on the admin listener needs (the admin password works too); empty: open"),
    ("METRICS_KEY_LABEL", "true", "label request and token metrics with the key's id; false for gates with many keys"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP receiver for traces (such as http://collector:4318); spans go to its /v1/traces as JSON; empty: no traces"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the full URL spans are posted to, instead of OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "", "headers sent with every export, as name=value,name2=value2 (values percent-encoded)"),
    ("OTEL_SERVICE_NAME", "ollama-gate", "service.name of the exported spans"),
    ("OTEL_SDK_DISABLED", "false", "true: no traces, whatever endpoint is set"),
    ("ALERT_WEBHOOK_URL", "", "http(s) URL that gets each alert (soft limit reached, backend down or up) as a JSON POST; empty: alerts are only recorded and shown in the console"),
    ("ALERT_WEBHOOK_SECRET", "", "signs each alert's body: header X-Ollama-Gate-Signature: sha256=<hex HMAC-SHA256 of the body with this secret>"),
];

/// Every setting with its default and meaning, for `ollama-gate --help`.
pub fn settings_help() -> String {
    let mut text = String::from(
        "Settings (environment variables, or the same names in .env or the --config TOML file; \
         the environment wins):\n",
    );
    for (name, default, meaning) in SETTINGS {
        let default = if default.is_empty() { "none" } else { default };
        text.push_str(&format!("  {name} (default: {default})\n      {meaning}\n"));
    }
    text.push_str(
        "  RUST_LOG (default: info)\n      log filter (env_logger); read from the environment or .env only\n",
    );
    text
}
