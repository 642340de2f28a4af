//! `GET /`, `GET /health`, and the key holder's own usage.

use super::auth::{authenticate, presented_key};
use super::error::ProxyError;
use super::policy::routes::Family;
use super::request_id::RequestId;
use crate::domain::limits::{LimitKind, Usage};
use crate::domain::people::{Budget, Owner, Principal};
use crate::domain::time::{parse_time, rfc3339};
use crate::domain::windows::Windows;
use crate::proxy::ProxyState;
use crate::store::{BucketBy, KeyRecord, UsageFilter};
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub async fn service_info() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "ollama-gate",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "API keys, quotas and usage accounting in front of Ollama",
        "endpoints": {"ollama": "/api", "openai": "/v1", "anthropic": "/v1/messages", "health": "/health", "usage": "/v1/usage"}
    }))
}

pub async fn health(state: Data<ProxyState>, client: Data<awc::Client>) -> HttpResponse {
    let database = database_health(&state).await;
    let upstream = state.upstreams.status(&client).await;
    let database_ok = database.is_ok();
    let mut body = json!({
        "status": if database_ok { "ok" } else { "degraded" },
        "database": if database_ok { "ok" } else { "down" },
        "upstream": upstream,
        "backends": state.upstreams.backends_json(false),
    });
    // Only when down, so a healthy answer stays exactly the documented one.
    if let Err(problem) = database {
        body["database_error"] = problem;
    }
    if database_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The database is healthy when a read answers and writes are not failing:
/// a gate that can read keys but not admit or revoke them is not serving.
/// `Err` says which failed, why (in words without paths or server
/// messages) and, for writes, since when.
async fn database_health(state: &ProxyState) -> Result<(), Value> {
    use crate::store::health::describe;
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Err(_) => return Err(json!({"operation": "read", "reason": "no answer within 2 s"})),
        Ok(Err(e)) => return Err(json!({"operation": "read", "reason": describe(&e)})),
        Ok(Ok(())) => {}
    }
    let Some(failure) = state.store.write_failure() else {
        return Ok(());
    };
    // The cause may be gone already. The heartbeat is a harmless write that
    // tells, so health need not wait for the next write to say so; tried at
    // most once a second however often health is asked.
    if failure.last < chrono::Utc::now().timestamp() {
        let probe = state.store.heartbeat(&state.instance_id, state.clock.now().timestamp());
        let _ = tokio::time::timeout(Duration::from_secs(2), probe).await;
    }
    match state.store.write_failure() {
        None => Ok(()),
        Some(f) => Err(json!({"operation": "write", "reason": f.reason, "since": rfc3339(f.since)})),
    }
}

/// `GET /v1/usage`: the calling key's limits, usage and what is left.
pub async fn key_usage(req: HttpRequest, state: Data<ProxyState>) -> HttpResponse {
    let (allow_query, request_id) = (state.settings.allow_key_in_query, RequestId::of_request(&req));
    let result = async {
        let key = authenticate(&state, presented_key(&req, allow_query).as_deref(), &request_id).await?;
        super::access::check_address(&state.settings, &req, &key)?;
        let fresh = state
            .store
            .get_key(key.id)
            .await
            .map_err(ProxyError::database("usage lookup", &request_id))?
            .ok_or_else(gone)?;
        let windows = state.windows();
        let usage = fresh.usage_at(&windows);
        let limits = fresh.fields.limits;
        let level = |p: &Option<Principal>| {
            p.as_ref().map(|p| {
                let usage = p.own.usage_at(&windows);
                json!({"id": p.id, "name": p.name, "limits": p.own.limits, "usage": usage_json(&usage),
                       "remaining": p.own.limits.remaining(&usage),
                       "model_limits": p.models.iter().map(|b| entry_json(b, &windows)).collect::<Vec<_>>()})
            })
        };
        Ok::<_, ProxyError>(json!({
            "key": {"id": fresh.id, "name": fresh.fields.name},
            "limits": limits,
            "usage": usage,
            "remaining": limits.remaining(&usage),
            "model_limits": fresh.model_limits.iter().map(|b| entry_json(b, &windows)).collect::<Vec<_>>(),
            "user": level(&fresh.user),
            "team": level(&fresh.team),
            "binding": binding(&fresh, &windows),
            "windows": {
                "minute_resets_at": rfc3339(windows.minute.end),
                "day_resets_at": rfc3339(windows.day.end),
                "month_resets_at": rfc3339(windows.month.end),
                "time_zone": state.settings.app_tz.name(),
            }
        }))
    };
    match result.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => refused(&state, &e, &request_id),
    }
}

#[derive(Deserialize)]
pub struct SummaryQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/usage/summary`: the calling key's usage per model.
pub async fn key_usage_summary(
    req: HttpRequest,
    state: Data<ProxyState>,
    query: Query<SummaryQuery>,
) -> HttpResponse {
    let (allow_query, request_id) = (state.settings.allow_key_in_query, RequestId::of_request(&req));
    let result = async {
        let key = authenticate(&state, presented_key(&req, allow_query).as_deref(), &request_id).await?;
        super::access::check_address(&state.settings, &req, &key)?;
        let tz = state.settings.app_tz;
        let parse = |v: &Option<String>, end: bool| -> Result<Option<i64>, ProxyError> {
            v.as_deref().map(|t| parse_time(t, tz, end).map_err(ProxyError::BadRequest)).transpose()
        };
        let filter = UsageFilter {
            key_id: Some(key.id),
            from: parse(&query.from, false)?,
            to: parse(&query.to, true)?,
            ..UsageFilter::default()
        };
        let buckets = state
            .store
            .usage_buckets(&filter, i64::MAX / 4, BucketBy::Model)
            .await
            .map_err(ProxyError::database("usage lookup", &request_id))?;
        let mut by_model: std::collections::BTreeMap<&str, [i64; 5]> = Default::default();
        for b in &buckets {
            let sums = by_model.entry(&b.model).or_default();
            for (sum, n) in sums.iter_mut().zip([
                b.requests,
                b.prompt_tokens,
                b.completion_tokens,
                b.total_tokens,
                b.weighted_tokens,
            ]) {
                *sum += n;
            }
        }
        let models: Vec<Value> = by_model
            .into_iter()
            .map(|(model, [requests, prompt, completion, total, weighted])| {
                json!({"model": model, "requests": requests, "prompt_tokens": prompt,
                       "completion_tokens": completion, "total_tokens": total, "weighted_tokens": weighted})
            })
            .collect();
        Ok::<_, ProxyError>(json!({"key": {"id": key.id, "name": key.fields.name}, "models": models}))
    };
    match result.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => refused(&state, &e, &request_id),
    }
}

/// A refused usage lookup counts with the proxy's other refusals: guessing keys
/// through `/v1/usage` shows in the refusal counts like guessing them anywhere else.
fn refused(state: &ProxyState, e: &ProxyError, request_id: &RequestId) -> HttpResponse {
    state.refusals.note(state.clock.now().timestamp(), None, e.reason());
    e.render(Family::OpenAi, &[], request_id.as_str())
}

fn usage_json(usage: &Usage) -> Value {
    json!({"minute": usage.minute, "day": usage.day, "month": usage.month, "total": usage.total,
           "in_flight": usage.in_flight})
}

fn entry_json(b: &Budget, windows: &Windows) -> Value {
    let usage = b.usage_at(windows);
    json!({"model": b.model, "limits": b.limits, "usage": usage_json(&usage), "remaining": b.limits.remaining(&usage)})
}

/// The limit with the least left across the key, its user and its team
/// (their own limits and every `model_limits` entry); null when none is set.
fn binding(key: &KeyRecord, windows: &Windows) -> Value {
    let own = (Owner::Key, key.fields.name.as_str(), None, key.fields.limits, key.usage_at(windows));
    let entries = |owner, name: &'_ str, budgets: &'_ [Budget]| -> Vec<_> {
        budgets
            .iter()
            .map(|b| (owner, name.to_owned(), b.model.clone(), b.limits, b.usage_at(windows)))
            .collect()
    };
    let mut all = vec![(own.0, own.1.to_owned(), own.2, own.3, own.4)];
    all.extend(entries(Owner::Key, &key.fields.name, &key.model_limits));
    for (owner, p) in [(Owner::User, &key.user), (Owner::Team, &key.team)] {
        if let Some(p) = p {
            all.extend(entries(owner, &p.name, std::slice::from_ref(&p.own)));
            all.extend(entries(owner, &p.name, &p.models));
        }
    }
    let tightest = all
        .iter()
        .flat_map(|(owner, name, model, limits, usage)| {
            LimitKind::ALL.into_iter().filter_map(move |kind| {
                limits
                    .get(kind)
                    .map(|limit| (owner, name, model, kind, limit, (limit - usage.used(kind)).max(0)))
            })
        })
        .min_by_key(|t| t.5);
    match tightest {
        None => Value::Null,
        Some((owner, name, model, kind, limit, remaining)) => json!({
            "level": owner.as_str(), "name": name, "model": model, "limit": kind.field(),
            "limit_value": limit, "remaining": remaining,
        }),
    }
}

fn gone() -> ProxyError {
    ProxyError::Unauthorized("API key is no longer valid".into())
}
