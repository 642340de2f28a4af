//! The dashboard: totals served and refused, the upstream's state, requests
//! per hour, tokens per day by model, top keys, models, users and teams.

use super::chart::{requests_per_hour, tokens_per_day_by_model, SeriesChart};
use super::names::Names;
use super::shown::number;
use super::{render, Chrome, Nav, Page};
use crate::admin::auth::Console;
use crate::admin::error::PageError;
use crate::admin::AdminState;
use crate::store::{BucketBy, RefusalFilter, RefusalGroup, UsageFilter};
use actix_web::web::Data;
use askama::Template;
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    today_requests: String,
    today_refused: String,
    today_tokens: String,
    month_requests: String,
    month_refused: String,
    month_tokens: String,
    active_keys: String,
    total_keys: String,
    upstream_status: String,
    upstream_class: &'static str,
    upstream_version: String,
    hourly: SeriesChart,
    daily: SeriesChart,
    top_keys: Vec<(String, String, String)>,
    top_models: Vec<(String, String, String)>,
    top_users: Vec<(String, String, String)>,
    top_teams: Vec<(String, String, String)>,
    refused: super::refusals::RefusalCounts,
    /// (UTC for `datetime=`, as shown in `APP_TZ`, the alert).
    alerts: Vec<(String, String, super::alerts::AlertView)>,
}

/// Requests and tokens by name.
type Totals = HashMap<String, (i64, i64)>;

/// The five names with the most tokens, then by name, their numbers as shown.
fn top(map: Totals) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, i64, i64)> = map.into_iter().map(|(k, (r, t))| (k, r, t)).collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    rows.truncate(5);
    rows.into_iter().map(|(name, r, t)| (name, number(r), number(t))).collect()
}

/// Requests the gate turned away since `from` (counted per hour, so from
/// the start of the hour `from` falls in).
async fn refused_since(state: &AdminState, from: i64) -> Result<i64, PageError> {
    let filter = RefusalFilter { key_id: None, from: Some(crate::refusals::hour_of(from)), to: None };
    Ok(state.store.refusal_rows(&filter, RefusalGroup::Reason).await?.iter().map(|r| r.count).sum())
}

pub async fn dashboard(console: Console, state: Data<AdminState>, client: Data<awc::Client>) -> Page {
    let w = state.windows();
    let keys = state.store.list_keys().await?;
    let month = UsageFilter { from: Some(w.month.start), ..UsageFilter::default() };
    // One bucket for the whole month: the top lists need no time, and on a
    // large log quarter hours would be thousands of rows to fold here.
    let buckets = state.store.usage_buckets(&month, i64::MAX / 4, BucketBy::All).await?;
    let since_midnight = UsageFilter { from: Some(w.day.start), ..UsageFilter::default() };
    let today = state.store.usage_buckets(&since_midnight, i64::MAX / 4, BucketBy::Time).await?;
    let today = today.iter().fold((0, 0), |(r, t), b| (r + b.requests, t + b.total_tokens));
    let mut this_month = (0, 0);
    let mut per_key: Totals = HashMap::new();
    let mut per_model: Totals = HashMap::new();
    let users = Names::users(&state).await?;
    let teams = Names::teams(&state).await?;
    let mut per_user: Totals = HashMap::new();
    let mut per_team: Totals = HashMap::new();
    for b in &buckets {
        this_month = (this_month.0 + b.requests, this_month.1 + b.total_tokens);
        let user = b.user_id.map(|id| users.name(id));
        let team = b.team_id.map(|id| teams.name(id));
        let levels = [
            (&mut per_key, Some(b.key_name.clone())),
            (&mut per_model, Some(b.model.clone())),
            (&mut per_user, user),
            (&mut per_team, team),
        ];
        for (map, name) in levels {
            if let Some(name) = name {
                let e = map.entry(name).or_default();
                *e = (e.0 + b.requests, e.1 + b.total_tokens);
            }
        }
    }
    let upstream = state.upstreams.status(&client).await;
    let up = upstream["status"] == "ok";
    let tz = state.settings.app_tz;
    // Alerts keep their instant as RFC 3339; shown like every other time.
    let alerts = super::alerts::open_alerts(&state)
        .await?
        .into_iter()
        .map(|a| {
            let at = chrono::DateTime::parse_from_rfc3339(&a.at).map(|t| t.timestamp());
            let shown = at.map(|t| super::shown::time(t, tz)).unwrap_or_else(|_| a.at.clone());
            (a.at.clone(), shown, a)
        })
        .collect();
    let count = |n: usize| number(i64::try_from(n).unwrap_or(i64::MAX));
    render(&DashboardPage {
        chrome: Chrome::new(&console.session, Nav::Dashboard),
        today_requests: number(today.0),
        today_refused: number(refused_since(&state, w.day.start).await?),
        today_tokens: number(today.1),
        month_requests: number(this_month.0),
        month_refused: number(refused_since(&state, w.month.start).await?),
        month_tokens: number(this_month.1),
        active_keys: count(keys.iter().filter(|k| k.active && !k.is_expired(w.now)).count()),
        total_keys: count(keys.len()),
        upstream_status: if up { "up".into() } else { "down".into() },
        upstream_class: if up { "up" } else { "down" },
        upstream_version: upstream["version"].as_str().map(|v| format!("Ollama {v}")).unwrap_or_default(),
        hourly: requests_per_hour(&state).await?,
        daily: tokens_per_day_by_model(&state).await?,
        top_keys: top(per_key),
        top_models: top(per_model),
        top_users: top(per_user),
        top_teams: top(per_team),
        refused: super::refusals::RefusalCounts::recent(&state, "Refused, last 24 hours", None, 24).await?,
        alerts,
    })
}
