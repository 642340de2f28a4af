//! The dashboard: totals, the upstream's state, tokens per day, top keys,
//! models, users and teams.

use super::chart::DayChart;
use super::names::Names;
use super::{render, Chrome, Nav, Page};
use crate::admin::auth::Console;
use crate::admin::AdminState;
use crate::store::UsageFilter;
use actix_web::web::Data;
use askama::Template;
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    today_requests: i64,
    today_tokens: i64,
    month_requests: i64,
    month_tokens: i64,
    active_keys: usize,
    total_keys: usize,
    upstream_status: String,
    upstream_class: &'static str,
    upstream_version: String,
    chart: DayChart,
    top_keys: Vec<(String, i64, i64)>,
    top_models: Vec<(String, i64, i64)>,
    top_users: Vec<(String, i64, i64)>,
    top_teams: Vec<(String, i64, i64)>,
    refused: super::refusals::RefusalCounts,
    alerts: Vec<super::alerts::AlertView>,
}

/// Requests and tokens by name.
type Totals = HashMap<String, (i64, i64)>;

/// The five names with the most tokens, then by name.
fn top(map: Totals) -> Vec<(String, i64, i64)> {
    let mut rows: Vec<(String, i64, i64)> = map.into_iter().map(|(k, (r, t))| (k, r, t)).collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    rows.truncate(5);
    rows
}

pub async fn dashboard(console: Console, state: Data<AdminState>, client: Data<awc::Client>) -> Page {
    let w = state.windows();
    let keys = state.store.list_keys().await?;
    let month = UsageFilter { from: Some(w.month.start), ..UsageFilter::default() };
    let buckets = state.store.usage_buckets(&month, 900).await?;
    let (mut today, mut this_month) = ((0, 0), (0, 0));
    let mut per_key: Totals = HashMap::new();
    let mut per_model: Totals = HashMap::new();
    let users = Names::users(&state).await?;
    let teams = Names::teams(&state).await?;
    let mut per_user: Totals = HashMap::new();
    let mut per_team: Totals = HashMap::new();
    for b in &buckets {
        this_month = (this_month.0 + b.requests, this_month.1 + b.total_tokens);
        if b.bucket >= w.day.start {
            today = (today.0 + b.requests, today.1 + b.total_tokens);
        }
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
    render(&DashboardPage {
        chrome: Chrome::new(&console.session, Nav::Dashboard),
        today_requests: today.0,
        today_tokens: today.1,
        month_requests: this_month.0,
        month_tokens: this_month.1,
        active_keys: keys.iter().filter(|k| k.active && !k.is_expired(w.now)).count(),
        total_keys: keys.len(),
        upstream_status: if up { "up".into() } else { "down".into() },
        upstream_class: if up { "up" } else { "down" },
        upstream_version: upstream["version"].as_str().map(|v| format!("Ollama {v}")).unwrap_or_default(),
        chart: DayChart::tokens_per_day(&state, None).await?,
        top_keys: top(per_key),
        top_models: top(per_model),
        top_users: top(per_user),
        top_teams: top(per_team),
        refused: super::refusals::RefusalCounts::recent(&state, "Refused, last 24 hours", None, 24).await?,
        alerts: super::alerts::open_alerts(&state).await?,
    })
}
