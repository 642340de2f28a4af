//! The audit log, written where every admin change passes whichever door it
//! came through: the key and people operations (`keys.rs`, `people.rs`, also
//! used by the command line), the run-time settings (`settings_change`), the
//! password change and the login form. A change that is refused (a bad
//! value, an unknown id) writes nothing.
//!
//! An entry is written right after its change, in a transaction of its own:
//! the store's changes are single statements or transactions of their own,
//! and threading the entry through each would tie every one of them to this
//! log. If the entry cannot be written (the database went away between the
//! two), the change stands and the entry goes to the error log instead.
//!
//! Entries hold the fields that changed, never a secret: no key or its hash,
//! no password or its hash, no session or CSRF token.

use crate::domain::audit::{changed_fields, unchanged, Actor, AuditEntry, Via};
use crate::domain::time::rfc3339;
use crate::store::{KeyRecord, Store, TeamRecord, UserRecord};
use actix_web::HttpRequest;
use serde_json::{json, Value};

/// The admin behind a request: `via` as authenticated, the address as the
/// login throttle sees it (`TRUSTED_PROXIES`).
pub fn actor(req: &HttpRequest, state: &super::AdminState, via: Via) -> Actor {
    Actor { via, address: Some(crate::forwarded::client_address(req, &state.settings.trusted_proxies)) }
}

/// Writes an entry; a failure is logged, never returned (see the module doc).
pub async fn write(store: &dyn Store, entry: AuditEntry) {
    if let Err(e) = store.record_audit(&entry).await {
        log::error!(
            "could not write the audit log entry for {} {} by {} at {}: {e}",
            entry.action,
            entry.target.as_deref().unwrap_or("-"),
            entry.actor.via.as_str(),
            rfc3339(entry.at)
        );
    }
}

/// An entry for a thing created (`before` none) or deleted (`after` none) whole.
pub fn whole(
    actor: Actor,
    at: i64,
    action: &'static str,
    target: String,
    before: Option<Value>,
    after: Option<Value>,
) -> AuditEntry {
    AuditEntry { at, actor, action, target: Some(target), before, after }
}

/// An entry for a change, with the fields that differ; `None` when nothing did.
pub fn change(
    actor: Actor,
    at: i64,
    action: &'static str,
    target: Option<String>,
    before: &Value,
    after: &Value,
) -> Option<AuditEntry> {
    let diff = changed_fields(before, after);
    if unchanged(&diff) {
        return None;
    }
    Some(AuditEntry { at, actor, action, target, before: Some(diff.0), after: Some(diff.1) })
}

/// Writes the entry of a change from `before` to `after`, if anything changed.
pub async fn record_change(
    state: &super::AdminState,
    actor: Actor,
    action: &'static str,
    target: Option<String>,
    before: &Value,
    after: &Value,
) {
    let at = state.clock.now().timestamp();
    if let Some(entry) = change(actor, at, action, target, before, after) {
        write(state.store.as_ref(), entry).await;
    }
}

/// A login through the console form, successful or not.
pub async fn login(state: &super::AdminState, actor: Actor, ok: bool) {
    let at = state.clock.now().timestamp();
    let entry =
        AuditEntry { at, actor, action: "login", target: None, before: None, after: Some(json!({"ok": ok})) };
    write(state.store.as_ref(), entry).await;
}

/// An event without fields (a logout, a password change: never the password).
pub async fn event(state: &super::AdminState, actor: Actor, action: &'static str) {
    let at = state.clock.now().timestamp();
    write(state.store.as_ref(), AuditEntry { at, actor, action, target: None, before: None, after: None })
        .await;
}

/// The run-time settings as the audit log shows them. A URL's password, if
/// it has one, is left out.
pub fn settings_json(state: &super::AdminState) -> Value {
    let backends: Vec<Value> = state
        .upstreams
        .specs()
        .iter()
        .map(|b| {
            let mut url = b.url.clone();
            if url.password().is_some() {
                let _ = url.set_password(Some("redacted"));
            }
            json!({"name": b.name, "url": url.as_str(), "slots": b.slots, "weight": b.weight,
                   "enabled": b.enabled, "draining": b.draining})
        })
        .collect();
    json!({"backends": backends, "anthropic_default_model": state.runtime.anthropic_default_model()})
}

/// Saves and applies a run-time settings change (the settings form and API,
/// a backend's drain or disable button), and writes its entry.
pub async fn settings_change(
    state: &super::AdminState,
    actor: Actor,
    action: &'static str,
    target: Option<String>,
    change: crate::runtime::Change,
) -> Result<(), crate::store::StoreError> {
    let before = settings_json(state);
    state.runtime.apply(state.store.as_ref(), &state.upstreams, change).await?;
    record_change(state, actor, action, target, &before, &settings_json(state)).await;
    Ok(())
}

pub fn key_target(id: i64) -> String {
    format!("key:{id}")
}

/// What the audit log shows of a key: its settings, not its usage, and of
/// its secret only the hint the console shows too.
pub fn key_json(k: &KeyRecord) -> Value {
    let f = &k.fields;
    json!({
        "name": f.name,
        "owner": f.owner,
        "key_hint": k.key_hint,
        "active": k.active,
        "expires_at": f.expires_at.map(rfc3339),
        "scopes": f.scopes.to_vec(),
        "models": f.models.as_ref().map(|m| m.names().to_vec()),
        "limits": f.limits,
        "clamps": f.clamps,
        "model_aliases": f.aliases.as_ref().map(|a| &a.0),
        "user_id": f.user_id,
        "priority": f.priority,
        "allowed_ips": f.allowed_ips.as_ref().map(|a| a.to_vec()),
        "previous_key_hint": k.previous.as_ref().map(|p| &p.key_hint),
        "previous_valid_until": k.previous.as_ref().map(|p| rfc3339(p.valid_until)),
        "model_limits": model_limits_json(&k.model_limits),
    })
}

fn model_limits_json(entries: &[crate::store::Budget]) -> Value {
    entries.iter().map(|b| json!({"model": b.model, "limits": b.limits})).collect()
}

pub fn team_json(t: &TeamRecord) -> Value {
    json!({"name": t.name, "limits": t.own.limits, "model_limits": model_limits_json(&t.models)})
}

pub fn user_json(u: &UserRecord) -> Value {
    json!({
        "name": u.name,
        "email": u.email,
        "team_id": u.team_id,
        "limits": u.own.limits,
        "model_limits": model_limits_json(&u.models),
    })
}

/// The key change's name by what it changed: limits alone are a quota change.
pub fn key_action(before: &Value, after: &Value) -> &'static str {
    let (old, new) = changed_fields(before, after);
    let only_limits = |v: &Value| v.as_object().is_some_and(|m| m.keys().all(|k| k == "limits"));
    if only_limits(&old) && only_limits(&new) {
        "key.quota"
    } else {
        "key.update"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_limits_alone_is_a_quota_change() {
        let before = json!({"name": "a", "limits": {"daily_requests": 1}});
        let quota = json!({"name": "a", "limits": {"daily_requests": 2}});
        let renamed = json!({"name": "b", "limits": {"daily_requests": 2}});
        assert_eq!(key_action(&before, &quota), "key.quota");
        assert_eq!(key_action(&before, &renamed), "key.update");
        assert!(change(Actor::CLI, 0, "key.update", None, &before, &before).is_none());
    }
}
