//! `/api/api-keys`: list, create, read, change, rotate and delete keys.

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::error::AdminError;
use crate::admin::keys::{self, CreateKey, KeyOps, PatchKey, Rotate};
use crate::admin::AdminState;
use crate::domain::api_key::ApiKey;
use crate::domain::limits::LimitsPatch;
use crate::domain::limits::Usage;
use crate::domain::time::rfc3339;
use crate::domain::windows::Windows;
use crate::store::{Budget, KeyRecord};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data, Json, Path};
use actix_web::HttpResponse;
use serde_json::{json, Value};

/// A key as the admin API shows it (never its secret).
pub fn key_json(k: &KeyRecord, w: &Windows) -> Value {
    let usage = k.usage_at(w);
    json!({
        "id": k.id,
        "name": k.fields.name,
        "owner": k.fields.owner,
        "key_hint": k.key_hint,
        "active": k.active,
        "expired": k.is_expired(w.now),
        "expires_at": k.fields.expires_at.map(rfc3339),
        "created_at": rfc3339(k.created_at),
        "updated_at": rfc3339(k.updated_at),
        "scopes": k.fields.scopes.to_vec(),
        "models": k.fields.models.as_ref().map(|m| m.names().to_vec()),
        "limits": k.fields.limits,
        "clamps": k.fields.clamps,
        "model_aliases": k.fields.aliases.as_ref().map(|a| &a.0),
        "user_id": k.fields.user_id,
        "priority": k.fields.priority,
        "allowed_ips": k.fields.allowed_ips.as_ref().map(|a| a.to_vec()),
        "previous_secret": k.previous_at(w.now).map(|p| json!({
            "key_hint": p.key_hint,
            "valid_until": rfc3339(p.valid_until),
        })),
        "model_limits": model_limits_json(&k.model_limits, w),
        "alerts": k.alerts.to_json(),
        "usage": usage_json(&usage),
        "remaining": k.fields.limits.remaining(&usage),
    })
}

/// `model_limits` entries as the admin API shows them, with their usage.
pub fn model_limits_json(entries: &[Budget], w: &Windows) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|b| {
            let usage = b.usage_at(w);
            json!({
                "model": b.model,
                "limits": b.limits,
                "usage": usage_json(&usage),
                "remaining": b.limits.remaining(&usage),
            })
        })
        .collect();
    Value::Array(entries)
}

/// Usage in the windows that are current, and what is in flight.
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "minute": usage.minute,
        "day": usage.day,
        "month": usage.month,
        "total": usage.total,
        "in_flight": usage.in_flight,
    })
}

/// A key with its new secret: the only answer that ever holds one, never cached.
fn with_secret(status: StatusCode, state: &AdminState, secret: &ApiKey, record: &KeyRecord) -> HttpResponse {
    let mut body = key_json(record, &state.windows());
    body["key"] = Value::String(secret.expose().to_owned());
    HttpResponse::build(status).insert_header(("cache-control", "no-store")).json(body)
}

fn shown(state: &AdminState, record: &KeyRecord) -> HttpResponse {
    HttpResponse::Ok().json(key_json(record, &state.windows()))
}

pub async fn list_keys(_: ApiAdmin, state: Data<AdminState>) -> Reply {
    let w = state.windows();
    let keys: Vec<Value> = state.store.list_keys().await?.iter().map(|k| key_json(k, &w)).collect();
    Ok(HttpResponse::Ok().json(keys))
}

pub async fn create_key(admin: ApiAdmin, state: Data<AdminState>, body: Json<CreateKey>) -> Reply {
    let mut input = body.into_inner();
    let per_model = keys::model_limits(input.model_limits.take().as_deref())?;
    let soft = keys::soft_limits(input.alerts.take())?;
    let fields = keys::new_fields(input, state.settings.app_tz)?;
    let ops = KeyOps::of(&state, admin.actor);
    let (secret, mut record) = ops.create(fields).await?;
    if let Some(entries) = per_model {
        record = ops.set_model_limits(record.id, &entries).await?;
    }
    if let Some(soft) = soft {
        record = ops.set_soft_limits(record.id, &soft).await?;
    }
    log::info!("created API key {} ({})", record.id, record.key_hint);
    Ok(with_secret(StatusCode::CREATED, &state, &secret, &record))
}

pub async fn get_key(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state, admin.actor).get(*id).await?))
}

pub async fn update_key(
    admin: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<PatchKey>,
) -> Reply {
    let ops = KeyOps::of(&state, admin.actor);
    let current = ops.get(*id).await?;
    let mut patch = body.into_inner();
    let per_model = keys::model_limits(patch.model_limits.take().as_deref())?;
    let soft = keys::soft_limits(patch.alerts.take())?;
    let fields = keys::patched_fields(&current.fields, patch, state.settings.app_tz)?;
    let mut record = ops.save(*id, &fields).await?;
    if let Some(entries) = per_model {
        record = ops.set_model_limits(*id, &entries).await?;
    }
    if let Some(soft) = soft {
        record = ops.set_soft_limits(*id, &soft).await?;
    }
    Ok(shown(&state, &record))
}

pub async fn update_quota(
    admin: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<LimitsPatch>,
) -> Reply {
    let ops = KeyOps::of(&state, admin.actor);
    let current = ops.get(*id).await?;
    let fields = keys::limits_patched(&current.fields, &body)?;
    Ok(shown(&state, &ops.save(*id, &fields).await?))
}

pub async fn activate_key(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state, admin.actor).set_active(*id, true).await?))
}

pub async fn deactivate_key(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state, admin.actor).set_active(*id, false).await?))
}

/// The body is optional: none, or `{"grace_seconds": N}`.
pub async fn rotate_key(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>, body: Bytes) -> Reply {
    let bad = |e: String| AdminError::BadRequest(format!("invalid JSON body: {e}"));
    let input: Rotate = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        // An object only: serde would also read a struct from an array.
        match serde_json::from_slice::<Value>(&body).map_err(|e| bad(e.to_string()))? {
            object @ Value::Object(_) => serde_json::from_value(object).map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("expected an object such as {\"grace_seconds\": 3600}".into())),
        }
    };
    let grace = keys::grace(input.grace_seconds)?;
    let (secret, record) = KeyOps::of(&state, admin.actor).rotate(*id, grace).await?;
    log::info!("rotated API key {} (now {})", record.id, record.key_hint);
    Ok(with_secret(StatusCode::OK, &state, &secret, &record))
}

/// `DELETE /api/api-keys/{id}/previous-secret`: the old secret stops now.
pub async fn end_grace(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state, admin.actor).end_grace(*id).await?))
}

pub async fn delete_key(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    KeyOps::of(&state, admin.actor).delete(*id).await?;
    log::info!("deleted API key {}", *id);
    Ok(HttpResponse::NoContent().finish())
}
