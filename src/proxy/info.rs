//! `GET /`, `GET /health`, and the key holder's own usage.

use super::auth::{authenticate, presented_key};
use super::error::ProxyError;
use super::policy::routes::Family;
use crate::domain::time::{parse_time, rfc3339};
use crate::proxy::ProxyState;
use crate::store::UsageFilter;
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
    let result = async {
        let key =
            authenticate(&state, presented_key(&req, state.settings.allow_key_in_query).as_deref()).await?;
        let fresh = state.store.get_key(key.id).await.map_err(unavailable)?.ok_or_else(gone)?;
        let windows = state.windows();
        let usage = fresh.usage_at(&windows);
        let limits = fresh.fields.limits;
        Ok::<_, ProxyError>(json!({
            "key": {"id": fresh.id, "name": fresh.fields.name},
            "limits": limits,
            "usage": usage,
            "remaining": limits.remaining(&usage),
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
        Err(e) => e.render(Family::OpenAi, &[]),
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
    let result = async {
        let key =
            authenticate(&state, presented_key(&req, state.settings.allow_key_in_query).as_deref()).await?;
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
        let buckets = state.store.usage_buckets(&filter, i64::MAX / 4).await.map_err(unavailable)?;
        let models: Vec<Value> = buckets
            .iter()
            .map(|b| {
                json!({"model": b.model, "requests": b.requests, "prompt_tokens": b.prompt_tokens,
                       "completion_tokens": b.completion_tokens, "total_tokens": b.total_tokens})
            })
            .collect();
        Ok::<_, ProxyError>(json!({"key": {"id": key.id, "name": key.fields.name}, "models": models}))
    };
    match result.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => e.render(Family::OpenAi, &[]),
    }
}

fn unavailable(e: crate::store::StoreError) -> ProxyError {
    log::error!("usage lookup failed: {e}");
    ProxyError::Unavailable("the gate's database is unavailable; try again shortly".into())
}

fn gone() -> ProxyError {
    ProxyError::Unauthorized("API key is no longer valid".into())
}
