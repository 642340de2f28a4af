//! What the audit log says about an admin change: who made it (how they were
//! let in, from where), its dotted action name, its target, and the fields
//! it changed, before and after. Pure: the admin builds entries, the store
//! keeps them.

use serde_json::{Map, Value};
use std::net::IpAddr;

/// How the admin who made a change was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A logged-in console session (also the JSON API called from the console).
    Session,
    /// The admin password as a bearer token on the JSON API.
    Bearer,
    /// The `ollama-gate keys ...` / `users ...` / `teams ...` subcommands.
    Cli,
}

impl Via {
    pub const ALL: [Via; 3] = [Via::Session, Via::Bearer, Via::Cli];

    pub const fn as_str(self) -> &'static str {
        match self {
            Via::Session => "session",
            Via::Bearer => "bearer",
            Via::Cli => "cli",
        }
    }

    pub fn parse(text: &str) -> Option<Via> {
        Via::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// Who made a change: the way in, and the client address as the admin
/// resolves it (`TRUSTED_PROXIES`); none on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub via: Via,
    pub address: Option<IpAddr>,
}

impl Actor {
    pub const CLI: Actor = Actor { via: Via::Cli, address: None };
}

/// Every action the audit log records, by its stable dotted name.
pub const ACTIONS: &[&str] = &[
    "login",
    "logout",
    "password.change",
    "key.create",
    "key.update",
    "key.quota",
    "key.model_limits",
    "key.activate",
    "key.deactivate",
    "key.rotate",
    "key.end_grace",
    "key.delete",
    "key.public_key_add",
    "key.public_key_remove",
    "user.create",
    "user.update",
    "user.quota",
    "user.delete",
    "team.create",
    "team.update",
    "team.quota",
    "team.delete",
    "weights.update",
    "settings.update",
    "backend.drain",
    "backend.undrain",
    "backend.disable",
    "backend.enable",
    "model.pull",
    "model.delete",
    "model.unload",
];

/// One change, as written to the audit log. `before` and `after` hold only
/// the fields that changed (`None` for a thing created or deleted as a whole
/// on that side).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: Actor,
    pub action: &'static str,
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The top-level fields of two JSON objects that differ, each side with its
/// own values. A field on one side only is shown on that side only; values
/// that are not objects are compared whole.
pub fn changed_fields(before: &Value, after: &Value) -> (Value, Value) {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return if before == after {
            (Value::Object(Map::new()), Value::Object(Map::new()))
        } else {
            (before.clone(), after.clone())
        };
    };
    let mut old = Map::new();
    let mut new = Map::new();
    for (name, value) in b {
        if a.get(name) != Some(value) {
            old.insert(name.clone(), value.clone());
        }
    }
    for (name, value) in a {
        if b.get(name) != Some(value) {
            new.insert(name.clone(), value.clone());
        }
    }
    (Value::Object(old), Value::Object(new))
}

/// Nothing changed: both sides of `changed_fields` are empty.
pub fn unchanged(diff: &(Value, Value)) -> bool {
    let empty = |v: &Value| v.as_object().is_some_and(Map::is_empty);
    empty(&diff.0) && empty(&diff.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_fields_that_differ_are_kept_on_each_side() {
        let before = json!({"name": "a", "limits": {"daily_requests": 5}, "owner": null, "gone": 1});
        let after = json!({"name": "a", "limits": {"daily_requests": 7}, "owner": "ana", "new": true});
        let (old, new) = changed_fields(&before, &after);
        assert_eq!(old, json!({"limits": {"daily_requests": 5}, "owner": null, "gone": 1}));
        assert_eq!(new, json!({"limits": {"daily_requests": 7}, "owner": "ana", "new": true}));
        assert!(unchanged(&changed_fields(&before, &before)));
        assert!(!unchanged(&changed_fields(&json!(1), &json!(2))));
    }

    #[test]
    fn every_way_in_reads_back_from_its_name_and_actions_are_unique() {
        for via in Via::ALL {
            assert_eq!(Via::parse(via.as_str()), Some(via));
        }
        assert_eq!(Via::parse("root"), None);
        let mut names = ACTIONS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
    }
}
