//! `ollama-gate users ...` and `ollama-gate teams ...`: users, teams and
//! their limits from scripts, without the admin listener. A running gate
//! sees a change once its key cache entries go stale (KEY_CACHE_TTL_MS).

use crate::admin::people::{team_json, user_json, CreateTeam, CreateUser, PatchTeam, PatchUser, PeopleOps};
use crate::domain::limits::{LimitKind, Limits, LimitsPatch};
use crate::domain::windows::Windows;
use crate::store::Store;
use clap::{Args, Subcommand};

/// Limits on the command line: a number, or `none` for unlimited.
#[derive(Debug, Args, Default)]
pub struct LimitArgs {
    #[arg(long, value_name = "N|none")]
    pub requests_per_minute: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub tokens_per_minute: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub daily_requests: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub daily_tokens: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub monthly_requests: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub monthly_tokens: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub total_tokens: Option<String>,
    #[arg(long, value_name = "N|none")]
    pub max_concurrent: Option<String>,
}

impl LimitArgs {
    /// The limits given, as a patch: absent ones stay as they are.
    pub fn patch(&self) -> anyhow::Result<LimitsPatch> {
        let value = |kind: LimitKind, text: &Option<String>| -> anyhow::Result<Option<Option<i64>>> {
            match text.as_deref().map(str::trim) {
                None => Ok(None),
                Some("none") => Ok(Some(None)),
                Some(n) => n.parse::<i64>().map(|n| Some(Some(n))).map_err(|_| {
                    anyhow::anyhow!(
                        "--{} must be a number or 'none', not '{n}'",
                        kind.field().replace('_', "-")
                    )
                }),
            }
        };
        Ok(LimitsPatch {
            requests_per_minute: value(LimitKind::RequestsPerMinute, &self.requests_per_minute)?,
            tokens_per_minute: value(LimitKind::TokensPerMinute, &self.tokens_per_minute)?,
            daily_requests: value(LimitKind::DailyRequests, &self.daily_requests)?,
            daily_tokens: value(LimitKind::DailyTokens, &self.daily_tokens)?,
            monthly_requests: value(LimitKind::MonthlyRequests, &self.monthly_requests)?,
            monthly_tokens: value(LimitKind::MonthlyTokens, &self.monthly_tokens)?,
            total_tokens: value(LimitKind::TotalTokens, &self.total_tokens)?,
            max_concurrent: value(LimitKind::Concurrency, &self.max_concurrent)?,
        })
    }

    /// The limits given, the others unlimited.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let mut limits = Limits::default();
        limits.apply(&self.patch()?);
        Ok(limits)
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        team_id: Option<i64>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Print the user as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List users with their limits and usage.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a user's name, e-mail or team (`--team-id none` to leave it).
    Set {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, value_name = "ID|none")]
        team_id: Option<String>,
    },
    /// Change some of a user's limits (`none`: unlimited); the rest stay.
    Quota {
        id: i64,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Delete a user; their keys stay, without a user.
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
        #[arg(long)]
        json: bool,
    },
    /// List teams with their limits and usage.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rename a team.
    Set {
        id: i64,
        #[arg(long)]
        name: String,
    },
    /// Change some of a team's limits (`none`: unlimited); the rest stay.
    Quota {
        id: i64,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Delete a team; its users stay, without a team.
    Delete { id: i64 },
}

/// Limits as `daily_tokens=50000 max_concurrent=2`, or `unlimited` (keys, users, teams).
pub(super) fn limits_text(limits: &Limits) -> String {
    let set: Vec<String> =
        limits.named().iter().filter_map(|(name, v)| v.map(|v| format!("{name}={v}"))).collect();
    if set.is_empty() {
        "unlimited".into()
    } else {
        set.join(" ")
    }
}

pub async fn users(action: UsersCommand, store: &dyn Store, now: i64, w: &Windows) -> anyhow::Result<()> {
    let ops = PeopleOps::offline(store, now);
    match action {
        UsersCommand::Create { name, email, team_id, limits, json } => {
            let input =
                CreateUser { name, email, team_id, limits: Some(limits.limits()?), ..Default::default() };
            let user = ops.create_user(input).await?;
            if json {
                println!("{}", user_json(&user, w));
            } else {
                println!("{}", user.id);
                eprintln!("created user {} '{}'", user.id, user.name);
            }
        }
        UsersCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                println!("{}", serde_json::Value::Array(users.iter().map(|u| user_json(u, w)).collect()));
                return Ok(());
            }
            println!(
                "{:>5}  {:<24} {:<28} {:>5} {:>6} {:>12}  limits",
                "id", "name", "email", "team", "keys", "tokens today"
            );
            for u in users {
                println!(
                    "{:>5}  {:<24} {:<28} {:>5} {:>6} {:>12}  {}",
                    u.id,
                    u.name,
                    u.email.as_deref().unwrap_or("-"),
                    u.team_id.map_or_else(|| "-".into(), |t| t.to_string()),
                    u.key_ids.len(),
                    u.own.usage_at(w).day.tokens,
                    limits_text(&u.own.limits)
                );
            }
        }
        UsersCommand::Set { id, name, email, team_id } => {
            let team_id = match team_id.as_deref() {
                None => None,
                Some("none") => Some(None),
                Some(t) => Some(Some(
                    t.parse::<i64>()
                        .map_err(|_| anyhow::anyhow!("--team-id must be an id or 'none', not '{t}'"))?,
                )),
            };
            let patch = PatchUser { name, email: email.map(Some), team_id, ..Default::default() };
            let user = ops.patch_user(id, patch).await?;
            eprintln!("user {} '{}' saved", user.id, user.name);
        }
        UsersCommand::Quota { id, limits } => {
            let user = ops.user_quota(id, &limits.patch()?).await?;
            eprintln!("user {} '{}': {}", user.id, user.name, limits_text(&user.own.limits));
        }
        UsersCommand::Delete { id } => {
            ops.delete_user(id).await?;
            eprintln!("user {id} deleted; their keys stay, without a user");
        }
    }
    Ok(())
}

pub async fn teams(action: TeamsCommand, store: &dyn Store, now: i64, w: &Windows) -> anyhow::Result<()> {
    let ops = PeopleOps::offline(store, now);
    match action {
        TeamsCommand::Create { name, limits, json } => {
            let team = ops
                .create_team(CreateTeam { name, limits: Some(limits.limits()?), ..Default::default() })
                .await?;
            if json {
                println!("{}", team_json(&team, w));
            } else {
                println!("{}", team.id);
                eprintln!("created team {} '{}'", team.id, team.name);
            }
        }
        TeamsCommand::List { json } => {
            let teams = store.list_teams().await?;
            if json {
                println!("{}", serde_json::Value::Array(teams.iter().map(|t| team_json(t, w)).collect()));
                return Ok(());
            }
            println!("{:>5}  {:<24} {:>12}  limits", "id", "name", "tokens today");
            for t in teams {
                println!(
                    "{:>5}  {:<24} {:>12}  {}",
                    t.id,
                    t.name,
                    t.own.usage_at(w).day.tokens,
                    limits_text(&t.own.limits)
                );
            }
        }
        TeamsCommand::Set { id, name } => {
            let team = ops.patch_team(id, PatchTeam { name: Some(name), ..Default::default() }).await?;
            eprintln!("team {} '{}' saved", team.id, team.name);
        }
        TeamsCommand::Quota { id, limits } => {
            let team = ops.team_quota(id, &limits.patch()?).await?;
            eprintln!("team {} '{}': {}", team.id, team.name, limits_text(&team.own.limits));
        }
        TeamsCommand::Delete { id } => {
            ops.delete_team(id).await?;
            eprintln!("team {id} deleted; its users stay, without a team");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_take_numbers_and_none() {
        let args = LimitArgs {
            daily_tokens: Some("500".into()),
            max_concurrent: Some("none".into()),
            ..Default::default()
        };
        let patch = args.patch().unwrap();
        assert_eq!(patch.daily_tokens, Some(Some(500)));
        assert_eq!(patch.max_concurrent, Some(None));
        assert_eq!(patch.daily_requests, None);
        let bad = LimitArgs { daily_tokens: Some("lots".into()), ..Default::default() };
        assert!(bad.patch().unwrap_err().to_string().contains("--daily-tokens"));
    }
}
