//! Settings: built-in defaults < TOML file (`--config` / `CONFIG_FILE`) < `.env` < environment.
//!
//! Every setting has one upper-case name used in all layers (a TOML file may also
//! spell it in lower case). Anything invalid stops startup with a line naming it.

use crate::domain::backend::{self, BackendSpec};
use anyhow::{anyhow, bail, Context};
use base64::Engine;
use chrono_tz::Tz;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub use crate::store::url::DatabaseUrl;
pub use otel::OtelSettings;
pub use table::{settings_help, SETTINGS};

mod otel;
mod table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

/// A value that must not reach a log: `{:?}` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> Secret<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub admin_password: Option<Secret<String>>,
    pub admin_password_hash: Option<String>,
    pub proxy_host: String,
    pub proxy_port: u16,
    pub admin_host: String,
    pub admin_port: u16,
    pub database_url: DatabaseUrl,
    /// `OLLAMA_URL`, each with its options read.
    pub backends: Vec<BackendSpec>,
    /// Slots of a backend whose URL sets none.
    pub backend_default_slots: u32,
    pub queue_max_wait: Duration,
    pub queue_max_per_key: u32,
    pub ollama_api_keys: Vec<Secret<String>>,
    pub app_tz: Tz,
    /// `None` when `LOG_FILE` is set to an empty string.
    pub log_file: Option<PathBuf>,
    pub log_max_bytes: u64,
    pub log_keep: usize,
    pub anthropic_default_model: Option<String>,
    pub allowed_origins: Vec<String>,
    pub cookie_secure: CookieSecure,
    pub session_key: Option<Secret<Vec<u8>>>,
    pub allow_key_in_query: bool,
    /// `PULL_ALLOWED_REGISTRIES`: where `/api/pull` and the console may pull from.
    pub pull_allowed_registries: crate::domain::model_store::Registries,
    /// `MIN_OLLAMA_VERSION_FOR_MANAGE`; `None` when the check is off (`0` or empty).
    pub min_ollama_version_for_manage: Option<crate::domain::version::Version>,
    pub allow_key_in_body: bool,
    /// How far a signed request's `ts` may be from this clock, either way.
    pub signed_request_window: Duration,
    pub public_url: Option<Url>,
    pub body_limit: usize,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub key_cache_ttl: Duration,
    pub default_output_reservation: i64,
    /// Longest `keep_alive` a key may ask for, unless its clamps allow extremes.
    pub max_keep_alive: Duration,
    pub reservation_stale_after: Duration,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub db_max_connections: u32,
    pub db_busy_timeout: Duration,
    pub allow_private_image_urls: bool,
    pub image_fetch_max_bytes: usize,
    /// All the images one request fetches, together.
    pub image_fetch_max_total_bytes: usize,
    /// Remote images one request may name; 0 turns fetching off.
    pub image_fetch_max_images: usize,
    /// Fetches running at once in the whole process.
    pub image_fetch_max_in_flight: usize,
    /// How long a fetch waits for one of those before its request gets 503.
    pub image_fetch_queue_wait: Duration,
    pub image_fetch_timeout: Duration,
    /// Threads that count tokens, apart from those that serve connections.
    pub tokenizer_threads: usize,
    /// Counts that admissions may wait for at once, in all and for one key.
    pub tokenizer_queue: usize,
    pub tokenizer_queue_per_key: usize,
    pub admin_session_idle: Duration,
    pub admin_session_max: Duration,
    pub login_max_failures: u32,
    pub login_lockout: Duration,
    pub login_global_max_failures: u32,
    pub login_global_interval: Duration,
    pub session_key_file: PathBuf,
    pub admin_allowed_hosts: Vec<String>,
    pub trusted_proxies: Vec<crate::domain::cidr::Cidr>,
    pub request_header_timeout: Duration,
    pub request_body_timeout: Duration,
    pub request_body_min_rate: u64,
    pub keep_alive: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub listen_backlog: u32,
    pub max_stream_duration: Duration,
    pub revoked_stream_check: Duration,
    /// `None`: the audit log is kept forever.
    pub audit_retention: Option<Duration>,
    pub refusals_flush: Duration,
    /// The bearer token `/metrics` needs, when set.
    pub metrics_token: Option<Secret<String>>,
    pub metrics_key_label: bool,
    /// Traces are exported when set (`OTEL_*`).
    pub otel: Option<OtelSettings>,
    /// Where alerts are POSTed; a secret, as such URLs often carry a token.
    pub alert_webhook_url: Option<Secret<Url>>,
    pub alert_webhook_secret: Option<Secret<String>>,
}

/// A name the file may set: one of [`SETTINGS`]. A misspelt setting in a file
/// would otherwise be ignored without a word, and the default would run in
/// its place; the error names the closest setting.
fn known_setting(name: &str) -> anyhow::Result<()> {
    if SETTINGS.iter().any(|(n, _, _)| *n == name) {
        return Ok(());
    }
    let closest = SETTINGS.iter().map(|(n, _, _)| (edit_distance(n, name), *n)).min();
    match closest {
        Some((d, n)) if d <= 3 => bail!("unknown setting '{name}' (did you mean {n}?)"),
        _ => bail!("unknown setting '{name}' (`ollama-gate --help` lists every setting)"),
    }
}

/// Levenshtein distance, for the suggestion above (names are short ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `MIN_OLLAMA_VERSION_FOR_MANAGE`: a version, or `0` / empty for no check.
fn min_version(text: &str) -> anyhow::Result<Option<crate::domain::version::Version>> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    crate::domain::version::Version::parse(text).map(Some).ok_or_else(|| {
        anyhow!("invalid MIN_OLLAMA_VERSION_FOR_MANAGE: '{text}' is not a version such as 0.17.1 (0 turns the check off)")
    })
}

impl Settings {
    /// The admin password is set by the environment, so the console cannot change it.
    pub fn password_from_env(&self) -> bool {
        self.admin_password.is_some() || self.admin_password_hash.is_some()
    }

    /// Reads `.env`, the optional TOML file and the environment.
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Settings> {
        // `.env` never overrides a variable the environment already has.
        let _ = dotenvy::dotenv();
        let file =
            config_file.map(Path::to_path_buf).or_else(|| std::env::var_os("CONFIG_FILE").map(PathBuf::from));
        let mut from_file: HashMap<String, String> = HashMap::new();
        if let Some(path) = file {
            let cfg = config::Config::builder()
                .add_source(config::File::from(path.clone()).format(config::FileFormat::Toml))
                .build()
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let table: HashMap<String, config::Value> = cfg
                .try_deserialize()
                .with_context(|| format!("config file {} is not a flat table", path.display()))?;
            for (k, v) in table {
                let name = k.to_uppercase();
                if let Err(e) = known_setting(&name) {
                    bail!("config file {}: {e}", path.display());
                }
                let value =
                    v.into_string().map_err(|e| anyhow!("config file {}: {k}: {e}", path.display()))?;
                from_file.insert(name, value);
            }
        }
        Settings::from_lookup(|name| std::env::var(name).ok().or_else(|| from_file.get(name).cloned()))
    }

    /// Builds settings from any name -> value lookup; tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let get = |name: &str| -> String {
            lookup(name).unwrap_or_else(|| {
                SETTINGS
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, d, _)| d.to_string())
                    .unwrap_or_default()
            })
        };
        let opt = |name: &str| -> Option<String> {
            let v = get(name);
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_owned())
        };
        let num = |name: &str| -> anyhow::Result<u64> {
            let v = get(name);
            v.trim().parse::<u64>().map_err(|_| anyhow!("invalid {name}: '{v}' is not a whole number"))
        };
        let port = |name: &str| -> anyhow::Result<u16> {
            let v = get(name);
            v.trim().parse::<u16>().map_err(|_| anyhow!("invalid {name}: '{v}' is not a port number"))
        };
        let flag = |name: &str| -> anyhow::Result<bool> {
            parse_bool(&get(name)).ok_or_else(|| anyhow!("invalid {name}: expected true or false"))
        };
        let list = |name: &str| -> Vec<String> {
            get(name).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        };

        let admin_password_hash = opt("ADMIN_PASSWORD_HASH");
        if let Some(hash) = &admin_password_hash {
            crate::domain::password::check_phc(hash)
                .map_err(|e| anyhow!("invalid ADMIN_PASSWORD_HASH: {e}"))?;
        }
        let database_url =
            DatabaseUrl::parse(&get("DATABASE_URL")).map_err(|e| anyhow!("invalid DATABASE_URL: {e}"))?;
        let backend_default_slots = num("BACKEND_DEFAULT_SLOTS")?;
        if !(1..=backend::MAX_SLOTS as u64).contains(&backend_default_slots) {
            bail!(
                "invalid BACKEND_DEFAULT_SLOTS: {backend_default_slots} (expected 1 to {})",
                backend::MAX_SLOTS
            );
        }
        let backend_default_slots = backend_default_slots as u32;
        let backends =
            backend::parse_list(list("OLLAMA_URL").iter().map(String::as_str), backend_default_slots)
                .map_err(|e| anyhow!("invalid OLLAMA_URL: {e}"))?;
        let tz_name = get("APP_TZ");
        let app_tz: Tz = tz_name.trim().parse().map_err(|_| {
            anyhow!("invalid APP_TZ: '{tz_name}' is not an IANA time zone (such as Europe/Berlin)")
        })?;
        let cookie_secure = match get("COOKIE_SECURE").trim().to_ascii_lowercase().as_str() {
            "auto" => CookieSecure::Auto,
            "true" | "1" | "yes" => CookieSecure::Always,
            "false" | "0" | "no" => CookieSecure::Never,
            other => bail!("invalid COOKIE_SECURE: '{other}' (expected auto, true or false)"),
        };
        let session_key = match opt("SESSION_KEY") {
            None => None,
            Some(text) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map_err(|_| anyhow!("invalid SESSION_KEY: not base64"))?;
                if bytes.len() < 64 {
                    bail!("invalid SESSION_KEY: needs 64 bytes, got {}", bytes.len());
                }
                Some(Secret(bytes))
            }
        };
        let public_url = match opt("PUBLIC_URL") {
            None => None,
            Some(u) => Some(Url::parse(&u).map_err(|e| anyhow!("invalid PUBLIC_URL: {e}"))?),
        };
        let body_limit = num("BODY_LIMIT")?;
        if body_limit == 0 {
            bail!("invalid BODY_LIMIT: must be more than 0");
        }
        let session_key_file = match opt("SESSION_KEY_FILE") {
            Some(path) => PathBuf::from(path),
            None => match &database_url {
                DatabaseUrl::Sqlite { path } => {
                    path.parent().unwrap_or_else(|| Path::new("")).join("session.key")
                }
                DatabaseUrl::Postgres { .. } => PathBuf::from("data/session.key"),
            },
        };
        let admin_allowed_hosts: Vec<String> =
            list("ADMIN_ALLOWED_HOSTS").iter().map(|h| h.to_ascii_lowercase()).collect();
        if admin_allowed_hosts.is_empty() {
            bail!("invalid ADMIN_ALLOWED_HOSTS: name at least one host, or * for any");
        }
        let trusted_proxies = list("TRUSTED_PROXIES")
            .iter()
            .map(|c| crate::domain::cidr::Cidr::parse(c).map_err(|e| anyhow!("invalid TRUSTED_PROXIES: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let log_file =
            lookup("LOG_FILE").map(|v| v.trim().to_owned()).unwrap_or_else(|| "logs/usage.log".into());

        Ok(Settings {
            admin_password: opt("ADMIN_PASSWORD").map(Secret),
            admin_password_hash,
            proxy_host: get("PROXY_HOST").trim().to_owned(),
            proxy_port: port("PROXY_PORT")?,
            admin_host: get("ADMIN_HOST").trim().to_owned(),
            admin_port: port("ADMIN_PORT")?,
            database_url,
            backends,
            backend_default_slots,
            queue_max_wait: Duration::from_secs(num("QUEUE_MAX_WAIT_SECS")?.max(1)),
            queue_max_per_key: num("QUEUE_MAX_PER_KEY")?.clamp(0, u32::MAX as u64) as u32,
            ollama_api_keys: list("OLLAMA_API_KEYS").into_iter().map(Secret).collect(),
            app_tz,
            log_file: (!log_file.is_empty()).then(|| PathBuf::from(log_file)),
            log_max_bytes: num("LOG_MAX_BYTES")?.max(4096),
            log_keep: num("LOG_KEEP")? as usize,
            anthropic_default_model: opt("ANTHROPIC_DEFAULT_MODEL"),
            allowed_origins: list("ALLOWED_ORIGINS"),
            cookie_secure,
            session_key,
            allow_key_in_query: flag("ALLOW_KEY_IN_QUERY")?,
            pull_allowed_registries: crate::domain::model_store::Registries::parse(&get(
                "PULL_ALLOWED_REGISTRIES",
            ))
            .map_err(|e| anyhow!("invalid PULL_ALLOWED_REGISTRIES: {e}"))?,
            min_ollama_version_for_manage: min_version(&get("MIN_OLLAMA_VERSION_FOR_MANAGE"))?,
            allow_key_in_body: flag("ALLOW_KEY_IN_BODY")?,
            signed_request_window: Duration::from_secs(num("SIGNED_REQUEST_WINDOW_SECS")?.clamp(1, 86_400)),
            public_url,
            body_limit: body_limit as usize,
            connect_timeout: Duration::from_secs(num("CONNECT_TIMEOUT_SECS")?.max(1)),
            first_byte_timeout: Duration::from_secs(num("FIRST_BYTE_TIMEOUT_SECS")?.max(1)),
            stream_idle_timeout: Duration::from_secs(num("STREAM_IDLE_TIMEOUT_SECS")?.max(1)),
            key_cache_ttl: Duration::from_millis(num("KEY_CACHE_TTL_MS")?),
            default_output_reservation: num("DEFAULT_OUTPUT_RESERVATION")? as i64,
            max_keep_alive: keep_alive_limit(&get("MAX_KEEP_ALIVE"))?,
            reservation_stale_after: Duration::from_secs(num("RESERVATION_STALE_AFTER_SECS")?.max(1)),
            workers: num("WORKERS")? as usize,
            shutdown_timeout: Duration::from_secs(num("SHUTDOWN_TIMEOUT_SECS")?),
            db_max_connections: num("DB_MAX_CONNECTIONS")?.clamp(1, 1000) as u32,
            db_busy_timeout: Duration::from_millis(num("DB_BUSY_TIMEOUT_MS")?),
            allow_private_image_urls: flag("ALLOW_PRIVATE_IMAGE_URLS")?,
            image_fetch_max_bytes: num("IMAGE_FETCH_MAX_BYTES")? as usize,
            image_fetch_max_total_bytes: num("IMAGE_FETCH_MAX_TOTAL_BYTES")? as usize,
            image_fetch_max_images: num("IMAGE_FETCH_MAX_IMAGES")? as usize,
            image_fetch_max_in_flight: num("IMAGE_FETCH_MAX_IN_FLIGHT")?.clamp(1, 10_000) as usize,
            image_fetch_queue_wait: Duration::from_millis(num("IMAGE_FETCH_QUEUE_WAIT_MS")?),
            image_fetch_timeout: Duration::from_secs(num("IMAGE_FETCH_TIMEOUT_SECS")?.max(1)),
            tokenizer_threads: match num("TOKENIZER_THREADS")? {
                0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
                n => n.min(256) as usize,
            },
            tokenizer_queue: num("TOKENIZER_QUEUE")?.clamp(1, 100_000) as usize,
            tokenizer_queue_per_key: num("TOKENIZER_QUEUE_PER_KEY")?.clamp(1, 100_000) as usize,
            admin_session_idle: Duration::from_secs(num("ADMIN_SESSION_IDLE_MINUTES")?.max(1) * 60),
            admin_session_max: Duration::from_secs(num("ADMIN_SESSION_MAX_HOURS")?.max(1) * 3600),
            login_max_failures: num("LOGIN_MAX_FAILURES")?.clamp(1, 1000) as u32,
            login_lockout: Duration::from_secs(num("LOGIN_LOCKOUT_MINUTES")?.clamp(1, 24 * 60) * 60),
            login_global_max_failures: num("LOGIN_GLOBAL_MAX_FAILURES")?.clamp(1, 1_000_000) as u32,
            login_global_interval: Duration::from_millis(num("LOGIN_GLOBAL_INTERVAL_MS")?.min(60_000)),
            session_key_file,
            admin_allowed_hosts,
            trusted_proxies,
            request_header_timeout: Duration::from_secs(num("REQUEST_HEADER_TIMEOUT_SECS")?.max(1)),
            request_body_timeout: Duration::from_secs(num("REQUEST_BODY_TIMEOUT_SECS")?.max(1)),
            request_body_min_rate: num("REQUEST_BODY_MIN_RATE")?.max(1),
            keep_alive: Duration::from_secs(num("KEEP_ALIVE_SECS")?.max(1)),
            max_connections: num("MAX_CONNECTIONS")?.clamp(1, 1_000_000) as usize,
            max_connections_per_address: num("MAX_CONNECTIONS_PER_ADDRESS")?.min(1_000_000) as usize,
            listen_backlog: num("LISTEN_BACKLOG")?.clamp(1, 65_535) as u32,
            max_stream_duration: Duration::from_secs(num("MAX_STREAM_DURATION_SECS")?.max(1)),
            revoked_stream_check: Duration::from_secs(num("REVOKED_STREAM_CHECK_SECS")?.max(1)),
            audit_retention: match num("AUDIT_RETENTION_DAYS")?.min(100 * 365) {
                0 => None,
                days => Some(Duration::from_secs(days * 86_400)),
            },
            refusals_flush: Duration::from_millis(num("REFUSALS_FLUSH_MS")?.clamp(10, 3_600_000)),
            metrics_token: opt("METRICS_TOKEN").map(Secret),
            metrics_key_label: flag("METRICS_KEY_LABEL")?,
            otel: otel::read(&opt, flag("OTEL_SDK_DISABLED")?)?,
            alert_webhook_url: opt("ALERT_WEBHOOK_URL").map(|u| webhook_url(&u)).transpose()?,
            alert_webhook_secret: opt("ALERT_WEBHOOK_SECRET").map(Secret),
        })
    }
}

/// `MAX_KEEP_ALIVE`: a Go duration (`"30m"`) or whole seconds, at least one second.
fn keep_alive_limit(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let nanos = match text.parse::<u64>() {
        Ok(seconds) => seconds.saturating_mul(1_000_000_000).min(i64::MAX as u64) as i64,
        Err(_) => crate::domain::keep_alive::parse_go_duration(text).map_err(|e| {
            anyhow!("invalid MAX_KEEP_ALIVE: '{text}': {e} (use seconds or a duration such as 30m)")
        })?,
    };
    if nanos < 1_000_000_000 {
        bail!("invalid MAX_KEEP_ALIVE: '{text}' is under one second");
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// `ALERT_WEBHOOK_URL`: http or https. The message never repeats the URL,
/// which may carry a token.
fn webhook_url(text: &str) -> anyhow::Result<Secret<Url>> {
    let url = Url::parse(text).map_err(|e| anyhow!("invalid ALERT_WEBHOOK_URL: not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("invalid ALERT_WEBHOOK_URL: expected an http:// or https:// URL with a host");
    }
    Ok(Secret(url))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
