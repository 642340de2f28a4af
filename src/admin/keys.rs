//! Key management shared by the JSON API, the console and the command line.

use crate::domain::api_key::ApiKey;
use crate::domain::clamps::{Clamps, ClampsPatch, ModelAliases};
use crate::domain::lengths;
use crate::domain::limits::{present, Limits, LimitsPatch};
use crate::domain::model::ModelList;
use crate::domain::scopes::Scopes;
use crate::domain::time::{parse_time, rfc3339};
use crate::domain::windows::Windows;
use crate::store::{KeyFields, KeyRecord, NewKey, Store, StoreError};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `POST /api/api-keys`; the console's form uses the same names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub clamps: Option<Clamps>,
    #[serde(default)]
    pub model_aliases: Option<BTreeMap<String, String>>,
}

/// `PATCH /api/api-keys/{id}`: an absent field stays, `null` clears it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchKey {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<String>>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub models: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub clamps: Option<ClampsPatch>,
    #[serde(default, deserialize_with = "present")]
    pub model_aliases: Option<Option<BTreeMap<String, String>>>,
}

fn name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if !lengths::fits(name, lengths::KEY_NAME) {
        return Err(format!("name must be 1 to {} bytes of printable characters", lengths::KEY_NAME));
    }
    Ok(name.to_owned())
}

fn owner(text: Option<&str>) -> Result<Option<String>, String> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(o) if !lengths::fits(o, lengths::OWNER) => {
            Err(format!("owner must be at most {} bytes of printable characters", lengths::OWNER))
        }
        Some(o) => Ok(Some(o.to_owned())),
    }
}

fn expiry(text: Option<&str>, tz: Tz) -> Result<Option<i64>, String> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => parse_time(t, tz, true).map(Some).map_err(|e| format!("expires_at: {e}")),
    }
}

fn scopes(list: Option<&[String]>) -> Result<Scopes, String> {
    match list {
        None => Ok(Scopes::default_for_new_keys()),
        Some(items) => Scopes::parse_list(items),
    }
}

fn models(list: Option<Vec<String>>) -> Result<Option<ModelList>, String> {
    list.map(ModelList::new).transpose()
}

fn aliases(map: Option<BTreeMap<String, String>>) -> Result<Option<ModelAliases>, String> {
    map.filter(|m| !m.is_empty()).map(ModelAliases::new).transpose()
}

pub fn new_fields(input: CreateKey, tz: Tz) -> Result<KeyFields, String> {
    let limits = input.limits.unwrap_or_default();
    limits.validate()?;
    let clamps = input.clamps.unwrap_or_default();
    clamps.validate()?;
    Ok(KeyFields {
        clamps,
        aliases: aliases(input.model_aliases)?,
        name: name(&input.name)?,
        owner: owner(input.owner.as_deref())?,
        expires_at: expiry(input.expires_at.as_deref(), tz)?,
        scopes: scopes(input.scopes.as_deref())?,
        models: models(input.models)?,
        limits,
    })
}

pub fn patched_fields(current: &KeyFields, patch: PatchKey, tz: Tz) -> Result<KeyFields, String> {
    let mut f = current.clone();
    if let Some(n) = patch.name {
        f.name = name(&n)?;
    }
    if let Some(o) = patch.owner {
        f.owner = owner(o.as_deref())?;
    }
    if let Some(e) = patch.expires_at {
        f.expires_at = expiry(e.as_deref(), tz)?;
    }
    if let Some(s) = patch.scopes {
        f.scopes = scopes(Some(&s))?;
    }
    if let Some(m) = patch.models {
        f.models = models(m)?;
    }
    if let Some(c) = patch.clamps {
        f.clamps.apply(&c);
        f.clamps.validate()?;
    }
    if let Some(a) = patch.model_aliases {
        f.aliases = aliases(a)?;
    }
    Ok(f)
}

pub fn limits_patched(current: &KeyFields, patch: &LimitsPatch) -> Result<KeyFields, String> {
    let mut f = current.clone();
    f.limits.apply(patch);
    f.limits.validate()?;
    Ok(f)
}

pub async fn create(
    store: &dyn Store,
    fields: KeyFields,
    now: i64,
) -> Result<(ApiKey, KeyRecord), StoreError> {
    let key = ApiKey::generate();
    let record =
        store.create_key(&NewKey { key_hash: key.hash(), key_hint: key.hint(), fields, now }).await?;
    Ok((key, record))
}

pub async fn rotate(store: &dyn Store, id: i64, now: i64) -> Result<Option<(ApiKey, KeyRecord)>, StoreError> {
    let key = ApiKey::generate();
    Ok(store.rotate_key(id, &key.hash(), &key.hint(), now).await?.map(|r| (key, r)))
}

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
