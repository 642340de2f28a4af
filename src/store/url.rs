//! Which database to open (`DATABASE_URL`), and how.

use std::path::PathBuf;
use std::time::Duration;

/// SQLite by default; PostgreSQL when the URL says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres { url: raw.to_owned() });
        }
        let rest = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .ok_or_else(|| format!("'{raw}' is neither sqlite://PATH nor postgres://"))?;
        let rest = rest.split('?').next().unwrap_or_default();
        // `sqlite:///./x.db` (the SQLAlchemy spelling the seed projects used) is relative.
        let path = if rest.starts_with("/./") || rest.starts_with("/../") { &rest[1..] } else { rest };
        if path.is_empty() {
            return Err(format!("'{raw}' names no file"));
        }
        Ok(DatabaseUrl::Sqlite { path: PathBuf::from(path) })
    }
}

pub struct StoreOptions {
    pub max_connections: u32,
    pub busy_timeout: Duration,
}
