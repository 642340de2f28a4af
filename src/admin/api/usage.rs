//! `/api/usage` (rows, or totals grouped by hour, day, model or key) and
//! `/api/stats` (hourly totals per key and model).

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::error::AdminError;
use crate::admin::usage_filter::UsageQuery;
use crate::admin::AdminState;
use crate::domain::time::rfc3339;
use crate::store::{UsageBucket, UsageFilter};
use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn totals(b: &UsageBucket) -> [i64; 5] {
    [b.requests, b.prompt_tokens, b.completion_tokens, b.total_tokens, b.weighted_tokens]
}

fn counts_json(c: [i64; 5]) -> Value {
    json!({"requests": c[0], "prompt_tokens": c[1], "completion_tokens": c[2], "total_tokens": c[3],
           "weighted_tokens": c[4]})
}

fn add(into: &mut [i64; 5], from: [i64; 5]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

pub async fn usage(_: ApiAdmin, state: Data<AdminState>, query: Query<UsageQuery>) -> Reply {
    let filter = query.filter(&state)?;
    let store = &state.store;
    let tz = state.settings.app_tz;
    let rows: Vec<Value> = match query.group_by.as_deref().filter(|g| !g.is_empty()) {
        None => store
            .usage_rows(&filter)
            .await?
            .into_iter()
            .map(|r| {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["created_at"] = Value::String(rfc3339(r.created_at));
                v
            })
            .collect(),
        Some("hour") => {
            let mut by: BTreeMap<i64, [i64; 5]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, 3600).await? {
                add(by.entry(b.bucket).or_default(), totals(&b));
            }
            by.into_iter().map(|(t, c)| with_label(counts_json(c), "hour", json!(rfc3339(t)))).collect()
        }
        Some("day") => {
            // Quarter-hour buckets fold into local days in every zone, DST included.
            let mut by: BTreeMap<String, [i64; 5]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, 900).await? {
                let day = chrono::DateTime::from_timestamp(b.bucket, 0)
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                add(by.entry(day).or_default(), totals(&b));
            }
            by.into_iter().map(|(d, c)| with_label(counts_json(c), "day", json!(d))).collect()
        }
        Some("model") => {
            let mut by: BTreeMap<String, [i64; 5]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, i64::MAX / 4).await? {
                add(by.entry(b.model.clone()).or_default(), totals(&b));
            }
            by.into_iter().map(|(m, c)| with_label(counts_json(c), "model", json!(m))).collect()
        }
        Some("key") => {
            let mut by: BTreeMap<i64, (String, [i64; 5])> = BTreeMap::new();
            for b in store.usage_buckets(&filter, i64::MAX / 4).await? {
                let entry = by.entry(b.key_id).or_insert_with(|| (b.key_name.clone(), [0; 5]));
                add(&mut entry.1, totals(&b));
            }
            by.into_iter()
                .map(|(id, (name, c))| {
                    let v = with_label(counts_json(c), "key_id", json!(id));
                    with_label(v, "key_name", json!(name))
                })
                .collect()
        }
        Some(level @ ("user" | "team")) => {
            // Usage rows keep who a request was for when it ran; names are today's.
            let names: BTreeMap<i64, String> = if level == "user" {
                store.list_users().await?.into_iter().map(|u| (u.id, u.name)).collect()
            } else {
                store.list_teams().await?.into_iter().map(|t| (t.id, t.name)).collect()
            };
            let mut by: BTreeMap<Option<i64>, [i64; 5]> = BTreeMap::new();
            for b in store.usage_buckets(&filter, i64::MAX / 4).await? {
                let id = if level == "user" { b.user_id } else { b.team_id };
                add(by.entry(id).or_default(), totals(&b));
            }
            by.into_iter()
                .map(|(id, c)| {
                    let v = with_label(counts_json(c), &format!("{level}_id"), json!(id));
                    let name = id.and_then(|id| names.get(&id).cloned());
                    with_label(v, &format!("{level}_name"), json!(name))
                })
                .collect()
        }
        Some(other) => {
            return Err(AdminError::BadRequest(format!(
                "group_by '{other}' is not one of hour, day, model, key, user, team"
            )))
        }
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
    let rows: Vec<Value> = state
        .store
        .usage_buckets(&filter, 3600)
        .await?
        .iter()
        .map(|b| {
            let v = with_label(counts_json(totals(b)), "hour", json!(rfc3339(b.bucket)));
            let v = with_label(v, "key_id", json!(b.key_id));
            let v = with_label(v, "key_name", json!(b.key_name));
            with_label(v, "model", json!(b.model))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"from": rfc3339(from), "to": rfc3339(to), "rows": rows})))
}
