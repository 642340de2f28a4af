//! Key operations shared by the JSON API, the console and the command line:
//! checking what an admin typed, and every change to a key. A change clears
//! this process's key cache, so it takes effect on the next request.

use crate::admin::audit;
use crate::admin::error::{AdminError, PageError};
use crate::domain::alerts::SoftLimits;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::Actor;
use crate::domain::cidr::AddressList;
use crate::domain::clamps::{Clamps, ClampsPatch, ModelAliases};
use crate::domain::key::{MAX_PRIORITY, MAX_ROTATION_GRACE_SECS};
use crate::domain::lengths;
use crate::domain::limits::{present, Limits, LimitsPatch};
use crate::domain::model::ModelList;
use crate::domain::people::{self, ModelLimit, Owner};
use crate::domain::scopes::Scopes;
use crate::domain::time::parse_time;
use crate::key_cache::KeyCache;
use crate::state::Shared;
use crate::store::{KeyFields, KeyRecord, NewKey, Store, StoreError};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;
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
    /// The person the key belongs to.
    #[serde(default)]
    pub user_id: Option<i64>,
    /// Its share of turns in the fair queue (default 1).
    #[serde(default)]
    pub priority: Option<i64>,
    /// Client addresses and CIDR blocks the key may be used from (default: anywhere).
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    /// Limits per model (`domain::people`); set apart from the fields.
    #[serde(default)]
    pub model_limits: Option<Vec<ModelLimit>>,
    /// Soft limits (`domain::alerts`); set apart from the fields.
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<Value>>,
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
    /// `null` detaches the key from its user.
    #[serde(default, deserialize_with = "present")]
    pub user_id: Option<Option<i64>>,
    #[serde(default)]
    pub priority: Option<i64>,
    /// `null` or `[]`: usable from anywhere again.
    #[serde(default, deserialize_with = "present")]
    pub allowed_ips: Option<Option<Vec<String>>>,
    /// Replaces the key's limits per model; `[]` removes them.
    #[serde(default)]
    pub model_limits: Option<Vec<ModelLimit>>,
    /// Replaces the key's soft limits; `{}` or `null` removes them.
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<Value>>,
}

/// A refused value and the field it belongs to (the JSON API's field name,
/// which the console's form uses too), so a form shows it next to that field.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError { field, message: message.into() }
    }
}

impl From<FieldError> for AdminError {
    fn from(e: FieldError) -> Self {
        AdminError::BadRequest(e.message)
    }
}

/// Tags a domain check's message with its field.
fn on<T>(field: &'static str, checked: Result<T, String>) -> Result<T, FieldError> {
    checked.map_err(|message| FieldError { field, message })
}

fn name(text: &str) -> Result<String, FieldError> {
    let name = text.trim();
    if !lengths::fits(name, lengths::KEY_NAME) {
        return Err(FieldError::new(
            "name",
            format!("name must be 1 to {} bytes of printable characters", lengths::KEY_NAME),
        ));
    }
    Ok(name.to_owned())
}

fn owner(text: Option<&str>) -> Result<Option<String>, FieldError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(o) if !lengths::fits(o, lengths::OWNER) => Err(FieldError::new(
            "owner",
            format!("owner must be at most {} bytes of printable characters", lengths::OWNER),
        )),
        Some(o) => Ok(Some(o.to_owned())),
    }
}

fn expiry(text: Option<&str>, tz: Tz) -> Result<Option<i64>, FieldError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => {
            on("expires_at", parse_time(t, tz, true).map(Some).map_err(|e| format!("expires_at: {e}")))
        }
    }
}

fn scopes(list: Option<&[String]>) -> Result<Scopes, FieldError> {
    match list {
        None => Ok(Scopes::default_for_new_keys()),
        Some(items) => on("scopes", Scopes::parse_list(items)),
    }
}

fn models(list: Option<Vec<String>>) -> Result<Option<ModelList>, FieldError> {
    on("models", list.map(ModelList::new).transpose())
}

fn aliases(map: Option<BTreeMap<String, String>>) -> Result<Option<ModelAliases>, FieldError> {
    on("model_aliases", map.filter(|m| !m.is_empty()).map(ModelAliases::new).transpose())
}

fn priority(value: Option<i64>) -> Result<i64, FieldError> {
    match value {
        None => Ok(1),
        Some(p) if (1..=MAX_PRIORITY).contains(&p) => Ok(p),
        Some(p) => Err(FieldError::new(
            "priority",
            format!("priority must be a whole number from 1 to {MAX_PRIORITY}, not {p}"),
        )),
    }
}

fn allowed_ips(list: Option<&[String]>) -> Result<Option<AddressList>, FieldError> {
    on("allowed_ips", AddressList::parse_list(list.unwrap_or_default()))
}

/// `POST /api/api-keys/{id}/rotate`'s optional body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the old secret keeps working (default 0: it stops at once).
    #[serde(default)]
    pub grace_seconds: Option<i64>,
}

/// A grace period in seconds, 0 to [`MAX_ROTATION_GRACE_SECS`].
pub fn grace(seconds: Option<i64>) -> Result<i64, FieldError> {
    match seconds.unwrap_or(0) {
        s @ 0..=MAX_ROTATION_GRACE_SECS => Ok(s),
        s => Err(FieldError::new(
            "grace_seconds",
            format!(
                "grace_seconds must be a whole number from 0 to {MAX_ROTATION_GRACE_SECS} (30 days), not {s}"
            ),
        )),
    }
}

/// Checked `model_limits` entries, when given.
pub fn model_limits(entries: Option<&[ModelLimit]>) -> Result<Option<Vec<ModelLimit>>, FieldError> {
    entries.map(|e| on("model_limits", people::check_model_limits(e))).transpose()
}

/// Checked soft limits, when given (`null`: none). Shared by keys, users and teams.
pub fn soft_limits(value: Option<Option<Value>>) -> Result<Option<SoftLimits>, FieldError> {
    value.map(|v| on("alerts", SoftLimits::parse(&v.unwrap_or(Value::Null)))).transpose()
}

pub fn new_fields(input: CreateKey, tz: Tz) -> Result<KeyFields, FieldError> {
    let limits = input.limits.unwrap_or_default();
    on("limits", limits.validate())?;
    let clamps = input.clamps.unwrap_or_default();
    on("clamps", clamps.validate())?;
    Ok(KeyFields {
        clamps,
        aliases: aliases(input.model_aliases)?,
        name: name(&input.name)?,
        owner: owner(input.owner.as_deref())?,
        expires_at: expiry(input.expires_at.as_deref(), tz)?,
        scopes: scopes(input.scopes.as_deref())?,
        models: models(input.models)?,
        limits,
        user_id: input.user_id,
        priority: priority(input.priority)?,
        allowed_ips: allowed_ips(input.allowed_ips.as_deref())?,
    })
}

pub fn patched_fields(current: &KeyFields, patch: PatchKey, tz: Tz) -> Result<KeyFields, FieldError> {
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
        on("clamps", f.clamps.validate())?;
    }
    if let Some(a) = patch.model_aliases {
        f.aliases = aliases(a)?;
    }
    if let Some(u) = patch.user_id {
        f.user_id = u;
    }
    if let Some(p) = patch.priority {
        f.priority = priority(Some(p))?;
    }
    if let Some(a) = patch.allowed_ips {
        f.allowed_ips = allowed_ips(a.as_deref())?;
    }
    Ok(f)
}

pub fn limits_patched(current: &KeyFields, patch: &LimitsPatch) -> Result<KeyFields, FieldError> {
    let mut f = current.clone();
    f.limits.apply(patch);
    on("limits", f.limits.validate())?;
    Ok(f)
}

impl From<KeyError> for PageError {
    fn from(e: KeyError) -> Self {
        PageError::Admin(e.into())
    }
}

/// Changes to keys, at one moment, by one admin. Built from the shared
/// state, a change also empties this process's key cache; the command line
/// has no cache (a running gate sees the change when its cache entry goes
/// stale). Every change is written to the audit log (`audit.rs`).
pub struct KeyOps<'a> {
    store: &'a dyn Store,
    cache: Option<&'a KeyCache>,
    now: i64,
    actor: Actor,
}

/// Why a key operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no API key with id {0}")]
    NotFound(i64),
    #[error("no user with id {0}")]
    NoSuchUser(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<KeyError> for AdminError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::NotFound(_) => AdminError::NotFound(e.to_string()),
            KeyError::NoSuchUser(_) => AdminError::BadRequest(e.to_string()),
            KeyError::Store(e) => e.into(),
        }
    }
}

impl<'a> KeyOps<'a> {
    pub fn of(shared: &'a Shared, actor: Actor) -> KeyOps<'a> {
        KeyOps {
            store: shared.store.as_ref(),
            cache: Some(&shared.keys),
            now: shared.clock.now().timestamp(),
            actor,
        }
    }

    /// For the command line, which works on the store alone.
    pub fn offline(store: &'a dyn Store, now: i64) -> KeyOps<'a> {
        KeyOps { store, cache: None, now, actor: Actor::CLI }
    }

    /// Writes the audit entry of a change from `before` to `after` (either
    /// side `None` for a key created or deleted), if anything changed.
    async fn audit(
        &self,
        action: &'static str,
        id: i64,
        before: Option<&KeyRecord>,
        after: Option<&KeyRecord>,
    ) {
        let target = audit::key_target(id);
        let entry = match (before, after) {
            (Some(b), Some(a)) => {
                let (b, a) = (audit::key_json(b), audit::key_json(a));
                let action = if action == "key.update" { audit::key_action(&b, &a) } else { action };
                audit::change(self.actor, self.now, action, Some(target), &b, &a)
            }
            (b, a) => Some(audit::whole(
                self.actor,
                self.now,
                action,
                target,
                b.map(audit::key_json),
                a.map(audit::key_json),
            )),
        };
        if let Some(entry) = entry {
            audit::write(self.store, entry).await;
        }
    }

    /// The changed thing, once the cache no longer holds the old one.
    fn changed<T>(&self, found: Option<T>, id: i64) -> Result<T, KeyError> {
        let changed = found.ok_or(KeyError::NotFound(id))?;
        if let Some(cache) = self.cache {
            cache.clear();
        }
        Ok(changed)
    }

    pub async fn get(&self, id: i64) -> Result<KeyRecord, KeyError> {
        self.store.get_key(id).await?.ok_or(KeyError::NotFound(id))
    }

    /// The user a key is to belong to must exist.
    async fn check_user(&self, fields: &KeyFields) -> Result<(), KeyError> {
        match fields.user_id {
            Some(id) if self.store.get_user(id).await?.is_none() => Err(KeyError::NoSuchUser(id)),
            _ => Ok(()),
        }
    }

    /// A new key; its secret is returned this once and never stored.
    pub async fn create(&self, fields: KeyFields) -> Result<(ApiKey, KeyRecord), KeyError> {
        self.check_user(&fields).await?;
        let key = ApiKey::generate();
        let new = NewKey { key_hash: key.hash(), key_hint: key.hint(), fields, now: self.now };
        let id = self.store.create_key(&new).await?.id;
        let record = self.get(id).await?;
        self.audit("key.create", id, None, Some(&record)).await;
        Ok((key, record))
    }

    /// Replaces a key's limits per model.
    pub async fn set_model_limits(&self, id: i64, entries: &[ModelLimit]) -> Result<KeyRecord, KeyError> {
        let before = self.get(id).await?;
        self.store.set_model_limits(Owner::Key, id, entries).await?;
        let record = self.store.get_key(id).await?;
        let after = self.changed(record, id)?;
        self.audit("key.model_limits", id, Some(&before), Some(&after)).await;
        Ok(after)
    }

    /// Replaces a key's soft limits.
    pub async fn set_soft_limits(&self, id: i64, soft: &SoftLimits) -> Result<KeyRecord, KeyError> {
        if !self.store.set_soft_limits(Owner::Key, id, soft).await? {
            return Err(KeyError::NotFound(id));
        }
        let record = self.store.get_key(id).await?;
        self.changed(record, id)
    }

    /// A new secret for a key. The old one stops working at once, or after
    /// `grace_secs`; a previous secret still in its grace stops at once.
    pub async fn rotate(&self, id: i64, grace_secs: i64) -> Result<(ApiKey, KeyRecord), KeyError> {
        let key = ApiKey::generate();
        let before = self.get(id).await?;
        let until = (grace_secs > 0).then(|| self.now + grace_secs);
        let record = self.store.rotate_key(id, &key.hash(), &key.hint(), self.now, until).await?;
        self.changed(record, id)?;
        // Read whole (with its limits per model), as `before` was.
        let after = self.get(id).await?;
        self.audit("key.rotate", id, Some(&before), Some(&after)).await;
        Ok((key, after))
    }

    /// The previous secret stops working now, before its grace period ends.
    pub async fn end_grace(&self, id: i64) -> Result<KeyRecord, KeyError> {
        let before = self.get(id).await?;
        let record = self.store.end_grace(id, self.now).await?;
        self.changed(record, id)?;
        let after = self.get(id).await?;
        self.audit("key.end_grace", id, Some(&before), Some(&after)).await;
        Ok(after)
    }

    pub async fn save(&self, id: i64, fields: &KeyFields) -> Result<KeyRecord, KeyError> {
        self.check_user(fields).await?;
        let before = self.get(id).await?;
        let saved = self.store.save_key_fields(id, fields, self.now).await?;
        self.changed(saved, id)?;
        let after = self.get(id).await?;
        self.audit("key.update", id, Some(&before), Some(&after)).await;
        Ok(after)
    }

    pub async fn set_active(&self, id: i64, active: bool) -> Result<KeyRecord, KeyError> {
        let before = self.get(id).await?;
        let record = self.store.set_active(id, active, self.now).await?;
        self.changed(record, id)?;
        let after = self.get(id).await?;
        let action = if active { "key.activate" } else { "key.deactivate" };
        self.audit(action, id, Some(&before), Some(&after)).await;
        Ok(after)
    }

    /// Deletes a key; its usage history stays.
    pub async fn delete(&self, id: i64) -> Result<(), KeyError> {
        let before = self.get(id).await?;
        let deleted = self.store.delete_key(id).await?;
        self.changed(deleted.then_some(()), id)?;
        self.audit("key.delete", id, Some(&before), None).await;
        Ok(())
    }
}
