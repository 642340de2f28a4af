//! `/api/api-keys/{id}/public-keys`: the public keys that sign a key's requests.

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::public_keys::{public_key_json, PublicKeyOps};
use crate::admin::AdminState;
use actix_web::web::{Data, Json, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPublicKey {
    /// The line of `~/.ollama/id_ed25519.pub`, or its base64 field.
    pub public_key: String,
}

pub async fn list(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    let rows = PublicKeyOps::of(&state, admin.actor).list(*id).await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(public_key_json).collect::<Vec<Value>>()))
}

pub async fn add(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>, body: Json<AddPublicKey>) -> Reply {
    let row = PublicKeyOps::of(&state, admin.actor).add(*id, &body.public_key).await?;
    log::info!("registered public key {} for API key {}", row.fingerprint, row.key_id);
    Ok(HttpResponse::Created().json(public_key_json(&row)))
}

pub async fn remove(admin: ApiAdmin, state: Data<AdminState>, ids: Path<(i64, i64)>) -> Reply {
    let (key_id, id) = ids.into_inner();
    let row = PublicKeyOps::of(&state, admin.actor).remove(key_id, id).await?;
    log::info!("removed public key {} from API key {}", row.fingerprint, key_id);
    Ok(HttpResponse::NoContent().finish())
}
