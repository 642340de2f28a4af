//! `/api/usage` (rows, or totals grouped by hour, day, model, key, user or team) and
//! `/api/stats` (hourly totals per key and model).

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::usage_filter::UsageQuery;
use crate::admin::usage_groups::{grouped, Group, Totals};
use crate::admin::AdminState;
use crate::domain::time::rfc3339;
use crate::store::{BucketBy, UsageFilter};
use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn totals_json(t: &Totals) -> Value {
    json!({"requests": t.requests, "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
           "total_tokens": t.total_tokens, "weighted_tokens": t.weighted_tokens})
}

/// A group's label as the API names its fields.
fn labelled(v: Value, group: Group) -> Value {
    match group {
        Group::Hour(t) => with_label(v, "hour", json!(rfc3339(t))),
        Group::Day(d) => with_label(v, "day", json!(d)),
        Group::Model(m) => with_label(v, "model", json!(m)),
        Group::Key(id, name) => with_label(with_label(v, "key_id", json!(id)), "key_name", json!(name)),
        Group::User(id, name) => with_label(with_label(v, "user_id", json!(id)), "user_name", json!(name)),
        Group::Team(id, name) => with_label(with_label(v, "team_id", json!(id)), "team_name", json!(name)),
    }
}

pub async fn usage(_: ApiAdmin, state: Data<AdminState>, query: Query<UsageQuery>) -> Reply {
    let filter = query.filter(&state)?;
    let rows: Vec<Value> = match query.group_by.as_deref().filter(|g| !g.is_empty()) {
        None => state
            .store
            .usage_rows(&filter)
            .await?
            .into_iter()
            .map(|r| {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["created_at"] = Value::String(rfc3339(r.created_at));
                v
            })
            .collect(),
        Some(group_by) => grouped(state.store.as_ref(), &filter, state.settings.app_tz, group_by)
            .await?
            .into_iter()
            .map(|(group, totals)| labelled(totals_json(&totals), group))
            .collect(),
    };
    Ok(HttpResponse::Ok().json(json!({ "group_by": query.group_by, "rows": rows })))
}

fn with_label(mut v: Value, name: &str, label: Value) -> Value {
    v[name] = label;
    v
}

#[derive(Deserialize)]
pub struct StatsQuery {
    hours: Option<i64>,
}

/// Hourly usage per key and model over the last `hours` (default 24).
pub async fn stats(_: ApiAdmin, state: Data<AdminState>, query: Query<StatsQuery>) -> Reply {
    let hours = query.hours.unwrap_or(24).clamp(1, 24 * 90);
    let to = state.clock.now().timestamp();
    let from = (to / 3600 - hours + 1) * 3600;
    let filter = UsageFilter { from: Some(from), ..UsageFilter::default() };
    // Buckets also split by user and team; a key's hour on a model is one row.
    let mut by: BTreeMap<(i64, i64, String), (String, Totals)> = BTreeMap::new();
    for b in state.store.usage_buckets(&filter, 3600, BucketBy::All).await? {
        let entry = by
            .entry((b.bucket, b.key_id, b.model.clone()))
            .or_insert_with(|| (b.key_name.clone(), Totals::default()));
        entry.1.add(&b);
    }
    let rows: Vec<Value> = by
        .into_iter()
        .map(|((hour, key_id, model), (key_name, totals))| {
            let v = with_label(totals_json(&totals), "hour", json!(rfc3339(hour)));
            let v = with_label(v, "key_id", json!(key_id));
            let v = with_label(v, "key_name", json!(key_name));
            with_label(v, "model", json!(model))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"from": rfc3339(from), "to": rfc3339(to), "rows": rows})))
}
