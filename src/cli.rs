//! The command line: `serve` (default), `migrate`, `health`, `keys create|list|revoke|add-public-key`,
//! `users ...`, `teams ...`.

mod people;

use crate::admin::keys::{self, CreateKey, KeyOps};
use crate::config::{DatabaseUrl, Settings};
use crate::domain::limits::Limits;
use crate::domain::time::rfc3339;
use crate::startup::Application;
use crate::store::{self, StoreOptions};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ollama-gate",
    version,
    about = "API keys, exact quotas and an admin console in front of Ollama",
    after_help = "Every setting, with its default: ollama-gate --help",
    after_long_help = crate::config::settings_help()
)]
pub struct Cli {
    /// A TOML file with settings (same names as the environment variables).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the proxy and the admin listener (the default).
    Serve,
    /// Create or upgrade the database schema, then exit; with --from and --to,
    /// copy keys, limits, usage history and settings from one database to another.
    Migrate {
        /// The database to copy from (stop the gate first).
        #[arg(long, requires = "to", value_name = "URL")]
        from: Option<String>,
        /// The database to copy to; it must be empty.
        #[arg(long, requires = "from", value_name = "URL")]
        to: Option<String>,
    },
    /// Ask the gate running here for its /health (for container healthchecks):
    /// exit 0 when it answers 200, else 1.
    Health,
    /// Manage API keys without the admin listener.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage users (people: their keys share their limits).
    Users {
        #[command(subcommand)]
        action: people::UsersCommand,
    },
    /// Manage teams (their users' keys share the team's limits).
    Teams {
        #[command(subcommand)]
        action: people::TeamsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown only this once).
    Create(Box<CreateArgs>),
    /// List keys with their limits and usage.
    List {
        /// Print the key objects as JSON (as the admin API's GET /api/api-keys).
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a key: it is refused from the next request on.
    Revoke { id: i64 },
    /// Register an ed25519 public key that signs the key's requests (the
    /// `ollama` command line with OLLAMA_AUTH=1): a .pub file or its line.
    AddPublicKey {
        id: i64,
        /// A file such as ~/.ollama/id_ed25519.pub, or the line itself.
        public_key: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub owner: Option<String>,
    /// RFC 3339 time or YYYY-MM-DD (end of that day in APP_TZ).
    #[arg(long)]
    pub expires_at: Option<String>,
    /// Comma-separated: inference, models, manage, cloud (default inference,models).
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Comma-separated model allow-list (default: every model).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    #[arg(long)]
    pub requests_per_minute: Option<i64>,
    #[arg(long)]
    pub tokens_per_minute: Option<i64>,
    #[arg(long)]
    pub daily_requests: Option<i64>,
    #[arg(long)]
    pub daily_tokens: Option<i64>,
    #[arg(long)]
    pub monthly_requests: Option<i64>,
    #[arg(long)]
    pub monthly_tokens: Option<i64>,
    #[arg(long)]
    pub total_tokens: Option<i64>,
    #[arg(long)]
    pub max_concurrent: Option<i64>,
    /// The user the key belongs to: their limits, and their team's, apply too.
    #[arg(long)]
    pub user_id: Option<i64>,
    /// Its share of turns in the fair queue, 1 to 100 (default 1).
    #[arg(long)]
    pub priority: Option<i64>,
    /// Comma-separated client addresses and CIDR blocks it may be used from (default: anywhere).
    #[arg(long, value_delimiter = ',')]
    pub allowed_ips: Option<Vec<String>>,
    /// Print the key object as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The line `serve` logs once both listeners are bound. With port 0 it is the
/// only place the ports chosen show; the test suite and the benchmark read them
/// back with `announced_addresses`.
fn announcement(proxy: &str, admin: &str) -> String {
    format!("ollama-gate {} serving the proxy on {proxy} and the admin on {admin}", env!("CARGO_PKG_VERSION"))
}

/// The proxy's and the admin's `HOST:PORT` from a log holding the announcement.
pub fn announced_addresses(log: &str) -> Option<(&str, &str)> {
    let rest = log.lines().find_map(|l| l.split_once("serving the proxy on ").map(|(_, rest)| rest))?;
    let (proxy, admin) = rest.split_once(" and the admin on ")?;
    Some((proxy.trim(), admin.trim()))
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            let settings = &app.state().settings;
            log::info!(
                "{}",
                announcement(
                    &format!("{}:{}", settings.proxy_host, app.proxy_port()),
                    &format!("{}:{}", settings.admin_host, app.admin_port())
                )
            );
            app.run_until_stopped().await
        }
        Command::Migrate { from: Some(from), to: Some(to) } => copy_database(&from, &to, &settings).await,
        Command::Migrate { .. } => {
            open(&settings.database_url, &settings).await?;
            eprintln!("ollama-gate: database is up to date");
            Ok(())
        }
        Command::Health => health_check(&settings).await,
        Command::Keys { action } => keys_command(action, &settings).await,
        Command::Users { action } => {
            let store = open(&settings.database_url, &settings).await?;
            let now = chrono::Utc::now();
            let w = crate::domain::windows::Windows::at(now, settings.app_tz);
            people::users(action, store.as_ref(), now.timestamp(), &w).await
        }
        Command::Teams { action } => {
            let store = open(&settings.database_url, &settings).await?;
            let now = chrono::Utc::now();
            let w = crate::domain::windows::Windows::at(now, settings.app_tz);
            people::teams(action, store.as_ref(), now.timestamp(), &w).await
        }
    }
}

/// `GET /health` on this host's proxy listener, as its settings bind it: a
/// healthcheck needs no curl in the image, and reads the same PROXY_PORT.
async fn health_check(settings: &Settings) -> anyhow::Result<()> {
    let host = match settings.proxy_host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_owned(),
        "::" | "[::]" => "[::1]".to_owned(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_owned(),
    };
    let url = format!("http://{host}:{}/health", settings.proxy_port);
    let client = awc::Client::builder().timeout(std::time::Duration::from_secs(5)).finish();
    let mut response = client.get(&url).send().await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let body = response.body().await.unwrap_or_default();
    println!("{}", String::from_utf8_lossy(&body));
    if response.status().is_success() {
        Ok(())
    } else {
        anyhow::bail!("{url} answered {}", response.status())
    }
}

async fn open(url: &DatabaseUrl, settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn store::Store>> {
    let options = StoreOptions { max_connections: 2, busy_timeout: settings.db_busy_timeout };
    store::connect(url, &options).await.context("DATABASE_URL: cannot open the database")
}

/// Copies everything but in-flight reservations: run it with the gate stopped.
async fn copy_database(from: &str, to: &str, settings: &Settings) -> anyhow::Result<()> {
    let from_url = DatabaseUrl::parse(from).map_err(|e| anyhow::anyhow!("invalid --from: {e}"))?;
    let to_url = DatabaseUrl::parse(to).map_err(|e| anyhow::anyhow!("invalid --to: {e}"))?;
    let source = open(&from_url, settings).await.context("cannot open --from")?;
    let target = open(&to_url, settings).await.context("cannot open --to")?;
    if !target.is_empty().await? {
        anyhow::bail!("--to already holds keys, users, teams or usage; copy into an empty database");
    }
    let copied = store::copy::copy(source.as_ref(), target.as_ref()).await?;
    eprintln!(
        "ollama-gate: copied {} keys, {} users, {} teams, {} usage rows, {} audit entries, {} refusal counts and {} settings",
        copied.keys,
        copied.users,
        copied.teams,
        copied.usage_rows,
        copied.audit_entries,
        copied.refusal_rows,
        copied.settings
    );
    Ok(())
}

async fn keys_command(action: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = open(&settings.database_url, settings).await?;
    let now = chrono::Utc::now();
    let windows = crate::domain::windows::Windows::at(now, settings.app_tz);
    match action {
        KeysCommand::Create(a) => {
            let input = CreateKey {
                name: a.name,
                owner: a.owner,
                expires_at: a.expires_at,
                scopes: a.scopes,
                models: a.models,
                limits: Some(Limits {
                    requests_per_minute: a.requests_per_minute,
                    tokens_per_minute: a.tokens_per_minute,
                    daily_requests: a.daily_requests,
                    daily_tokens: a.daily_tokens,
                    monthly_requests: a.monthly_requests,
                    monthly_tokens: a.monthly_tokens,
                    total_tokens: a.total_tokens,
                    max_concurrent: a.max_concurrent,
                }),
                user_id: a.user_id,
                priority: a.priority,
                allowed_ips: a.allowed_ips,
                ..CreateKey::default()
            };
            let fields = keys::new_fields(input, settings.app_tz).map_err(anyhow::Error::msg)?;
            let (secret, record) = KeyOps::offline(store.as_ref(), now.timestamp()).create(fields).await?;
            if a.json {
                let mut body = crate::admin::api::key_json(&record, &windows);
                body["key"] = serde_json::Value::String(secret.expose().to_owned());
                println!("{body}");
            } else {
                eprintln!(
                    "created key {} '{}' (the secret is shown only this once):",
                    record.id, record.fields.name
                );
                println!("{}", secret.expose());
            }
        }
        KeysCommand::List { json: true } => {
            let keys = store.list_keys().await?;
            let body: Vec<_> = keys.iter().map(|k| crate::admin::api::key_json(k, &windows)).collect();
            println!("{}", serde_json::Value::Array(body));
        }
        KeysCommand::List { json: false } => {
            println!(
                "{:>5}  {:<24} {:<14} {:<8} {:<20} {:>12} {:>12}  limits",
                "id", "name", "hint", "status", "expires", "tokens today", "tokens total"
            );
            for k in store.list_keys().await? {
                let usage = k.usage_at(&windows);
                let status = k.status(windows.now).as_str();
                println!(
                    "{:>5}  {:<24} {:<14} {:<8} {:<20} {:>12} {:>12}  {}",
                    k.id,
                    k.fields.name,
                    k.key_hint,
                    status,
                    k.fields.expires_at.map(rfc3339).unwrap_or_else(|| "-".into()),
                    usage.day.tokens,
                    usage.total.tokens,
                    people::limits_text(&k.fields.limits)
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let k = KeyOps::offline(store.as_ref(), now.timestamp()).set_active(id, false).await?;
            eprintln!("key {} '{}' is deactivated", k.id, k.fields.name);
        }
        KeysCommand::AddPublicKey { id, public_key } => {
            let line = match std::fs::read_to_string(&public_key) {
                Ok(text) => text,
                Err(_) if public_key.trim_start().starts_with("ssh-") || public_key.starts_with("AAAA") => {
                    public_key
                }
                Err(e) => anyhow::bail!("cannot read the public key file {public_key}: {e}"),
            };
            let ops = crate::admin::public_keys::PublicKeyOps::offline(store.as_ref(), now.timestamp());
            let row = ops.add(id, &line).await?;
            eprintln!("public key {} is registered to key {id}", row.fingerprint);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_show_on_one_line() {
        assert_eq!(people::limits_text(&Limits::default()), "unlimited");
        let limits =
            Limits { daily_requests: Some(1000), monthly_tokens: Some(5_000_000), ..Limits::default() };
        assert_eq!(people::limits_text(&limits), "daily_requests=1000 monthly_tokens=5000000");
    }

    #[test]
    fn the_announcement_reads_back() {
        let log = format!("[INFO] starting\n[INFO] {}\n", announcement("127.0.0.1:40001", "127.0.0.1:40002"));
        assert_eq!(announced_addresses(&log), Some(("127.0.0.1:40001", "127.0.0.1:40002")));
        assert_eq!(announced_addresses("[INFO] starting\n"), None);
    }
}
