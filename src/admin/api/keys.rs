//! `/api/api-keys`: list, create, read, change, rotate and delete keys.

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::keys::{self, CreateKey, KeyOps, PatchKey};
use crate::admin::AdminState;
use crate::domain::api_key::ApiKey;
use crate::domain::limits::LimitsPatch;
use crate::domain::time::rfc3339;
use crate::domain::windows::Windows;
use crate::store::KeyRecord;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Json, Path};
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
        "usage": {
            "minute": usage.minute,
            "day": usage.day,
            "month": usage.month,
            "total": usage.total,
            "in_flight": usage.in_flight,
        },
        "remaining": k.fields.limits.remaining(&usage),
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

pub async fn create_key(_: ApiAdmin, state: Data<AdminState>, body: Json<CreateKey>) -> Reply {
    let fields = keys::new_fields(body.into_inner(), state.settings.app_tz)?;
    let (secret, record) = KeyOps::of(&state).create(fields).await?;
    log::info!("created API key {} ({})", record.id, record.key_hint);
    Ok(with_secret(StatusCode::CREATED, &state, &secret, &record))
}

pub async fn get_key(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state).get(*id).await?))
}

pub async fn update_key(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>, body: Json<PatchKey>) -> Reply {
    let ops = KeyOps::of(&state);
    let current = ops.get(*id).await?;
    let fields = keys::patched_fields(&current.fields, body.into_inner(), state.settings.app_tz)?;
    Ok(shown(&state, &ops.save(*id, &fields).await?))
}

pub async fn update_quota(
    _: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<LimitsPatch>,
) -> Reply {
    let ops = KeyOps::of(&state);
    let current = ops.get(*id).await?;
    let fields = keys::limits_patched(&current.fields, &body)?;
    Ok(shown(&state, &ops.save(*id, &fields).await?))
}

pub async fn activate_key(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state).set_active(*id, true).await?))
}

pub async fn deactivate_key(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    Ok(shown(&state, &KeyOps::of(&state).set_active(*id, false).await?))
}

pub async fn rotate_key(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    let (secret, record) = KeyOps::of(&state).rotate(*id).await?;
    log::info!("rotated API key {} (now {})", record.id, record.key_hint);
    Ok(with_secret(StatusCode::OK, &state, &secret, &record))
}

pub async fn delete_key(_: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    KeyOps::of(&state).delete(*id).await?;
    log::info!("deleted API key {}", *id);
    Ok(HttpResponse::NoContent().finish())
}
