//! An API key as the gate knows it: what an admin set, and its counters.

use super::alerts::SoftLimits;
use super::cidr::AddressList;
use super::clamps::{Clamps, ModelAliases};
pub use super::counters::Counters;
use super::limits::{Limits, Usage};
use super::model::ModelList;
use super::people::{first_match, Budget, Owner, Principal, Scope};
use super::scopes::Scopes;
use super::windows::Windows;

/// A key as stored, with its counters. The plaintext is never here.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: i64,
    pub key_hash: String,
    pub key_hint: String,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub fields: KeyFields,
    /// The secret it had before its last rotation, while that still works.
    pub previous: Option<PreviousSecret>,
    pub counters: Counters,
    /// Its soft limits (`domain::alerts`), set apart from the fields.
    pub alerts: SoftLimits,
    /// The key's own `model_limits` entries, in order.
    pub model_limits: Vec<Budget>,
    /// Its user and that user's team, as read with the key.
    pub user: Option<Principal>,
    pub team: Option<Principal>,
}

/// The part of a key an admin edits.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFields {
    pub name: String,
    pub owner: Option<String>,
    pub expires_at: Option<i64>,
    pub scopes: Scopes,
    pub models: Option<ModelList>,
    pub limits: Limits,
    pub clamps: Clamps,
    pub aliases: Option<ModelAliases>,
    /// The person the key belongs to; their limits apply too.
    pub user_id: Option<i64>,
    /// Its share of turns in the fair queue, 1 to [`MAX_PRIORITY`].
    pub priority: i64,
    /// The client addresses it may be used from; `None`: anywhere.
    pub allowed_ips: Option<AddressList>,
}

/// A rotated-out secret that keeps working for a grace period, so clients
/// can move to the new one without an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub key_hash: String,
    pub key_hint: String,
    /// The first second at which it no longer works.
    pub valid_until: i64,
}

/// The longest grace period a rotation may give the old secret: 30 days.
pub const MAX_ROTATION_GRACE_SECS: i64 = 30 * 86_400;

/// The highest priority: a key of priority 100 is served a hundred times as
/// often as one of priority 1 while both wait.
pub const MAX_PRIORITY: i64 = 100;

impl KeyRecord {
    /// Whether the secret hashed to `hash` opens this key at `now`: the
    /// current one, or the previous one inside its grace period.
    pub fn opened_by(&self, hash: &str, now: i64) -> bool {
        hash == self.key_hash
            || self.previous.as_ref().is_some_and(|p| p.key_hash == hash && now < p.valid_until)
    }

    /// The previous secret, if it still works at `now`.
    pub fn previous_at(&self, now: i64) -> Option<&PreviousSecret> {
        self.previous.as_ref().filter(|p| now < p.valid_until)
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.fields.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether the key can be used at `now`, and if not, why.
    pub fn status(&self, now: i64) -> KeyStatus {
        if !self.active {
            KeyStatus::Inactive
        } else if self.is_expired(now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    pub fn usage_at(&self, windows: &Windows) -> Usage {
        self.counters.usage_at(windows)
    }

    /// Every level a request for `model` is measured against, in the order
    /// refusals are looked for: the key, its entry for the model, its user,
    /// the user's entry, the team, the team's entry.
    pub fn scopes(&self, model: &str, windows: &Windows) -> Vec<Scope<'_>> {
        let mut scopes = vec![Scope {
            owner: Owner::Key,
            name: &self.fields.name,
            model: None,
            budget_id: None,
            limits: self.fields.limits,
            usage: self.usage_at(windows),
        }];
        fn of<'a>(owner: Owner, name: &'a str, b: &'a Budget, windows: &Windows) -> Scope<'a> {
            Scope {
                owner,
                name,
                model: b.model.as_deref(),
                budget_id: Some(b.id),
                limits: b.limits,
                usage: b.usage_at(windows),
            }
        }
        let key_name: &str = &self.fields.name;
        scopes.extend(first_match(&self.model_limits, model).map(|b| of(Owner::Key, key_name, b, windows)));
        for (owner, principal) in [(Owner::User, &self.user), (Owner::Team, &self.team)] {
            if let Some(p) = principal {
                scopes.push(of(owner, &p.name, &p.own, windows));
                scopes.extend(first_match(&p.models, model).map(|b| of(owner, &p.name, b, windows)));
            }
        }
        scopes
    }

    /// Whether any level a request may be measured against counts tokens.
    pub fn has_token_limit(&self) -> bool {
        let principals = [&self.user, &self.team].into_iter().flatten();
        self.fields.limits.has_token_limit()
            || self.model_limits.iter().any(|b| b.limits.has_token_limit())
            || principals
                .flat_map(|p| std::iter::once(&p.own).chain(&p.models))
                .any(|b| b.limits.has_token_limit())
    }
}

/// What the console, the CLI and the filters call a key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
    Expired,
}

impl KeyStatus {
    pub const ALL: [KeyStatus; 3] = [KeyStatus::Active, KeyStatus::Inactive, KeyStatus::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
            KeyStatus::Expired => "expired",
        }
    }
}
