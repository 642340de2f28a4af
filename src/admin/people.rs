//! User and team operations shared by the JSON API, the console and the
//! command line: checking what an admin typed, and every change. A change
//! clears this process's key cache (keys are read with their user and team),
//! so it takes effect on the next request.

use crate::admin::audit;
use crate::admin::error::AdminError;
use crate::admin::keys::{soft_limits, FieldError};
use crate::domain::alerts::SoftLimits;
use crate::domain::audit::Actor;
use crate::domain::lengths;
use crate::domain::limits::{present, Limits, LimitsPatch};
use crate::domain::people::{check_model_limits, ModelLimit, Owner};
use crate::domain::time::rfc3339;
use crate::domain::windows::Windows;
use crate::key_cache::KeyCache;
use crate::state::Shared;
use crate::store::{Store, StoreError, TeamRecord, UserFields, UserRecord};
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest e-mail address a user may have (RFC 5321's path limit).
pub const EMAIL: usize = 254;

/// `POST /api/teams`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub model_limits: Option<Vec<ModelLimit>>,
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<Value>>,
}

/// `PATCH /api/teams/{id}`: an absent field stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTeam {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model_limits: Option<Vec<ModelLimit>>,
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<Value>>,
}

/// `POST /api/users`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub team_id: Option<i64>,
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub model_limits: Option<Vec<ModelLimit>>,
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<Value>>,
}

/// `PATCH /api/users/{id}`: an absent field stays, `null` clears it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub team_id: Option<Option<i64>>,
    #[serde(default)]
    pub model_limits: Option<Vec<ModelLimit>>,
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<Value>>,
}

/// Why a user or team operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("no {0} with id {1}")]
    NotFound(&'static str, i64),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PeopleError> for AdminError {
    fn from(e: PeopleError) -> Self {
        match e {
            PeopleError::NotFound(..) => AdminError::NotFound(e.to_string()),
            PeopleError::Invalid(e) => e.into(),
            PeopleError::Store(e) => e.into(),
        }
    }
}

impl From<PeopleError> for crate::admin::error::PageError {
    fn from(e: PeopleError) -> Self {
        crate::admin::error::PageError::Admin(e.into())
    }
}

/// A user's or team's name: 1 to `lengths::KEY_NAME` bytes, printable.
pub fn name(text: &str) -> Result<String, FieldError> {
    let name = text.trim();
    if !lengths::fits(name, lengths::KEY_NAME) {
        return Err(FieldError::new(
            "name",
            format!("name must be 1 to {} bytes of printable characters", lengths::KEY_NAME),
        ));
    }
    Ok(name.to_owned())
}

/// An e-mail address, loosely: one `@` with something on each side, no spaces.
pub fn email(text: Option<&str>) -> Result<Option<String>, FieldError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(e) => {
            let parts: Vec<&str> = e.split('@').collect();
            let fine = lengths::fits(e, EMAIL)
                && parts.len() == 2
                && parts.iter().all(|p| !p.is_empty())
                && !e.chars().any(char::is_whitespace);
            if fine {
                Ok(Some(e.to_owned()))
            } else {
                Err(FieldError::new("email", format!("'{e}' is not an e-mail address")))
            }
        }
    }
}

pub fn limits(limits: Option<Limits>) -> Result<Limits, FieldError> {
    let limits = limits.unwrap_or_default();
    limits.validate().map_err(|m| FieldError::new("limits", m))?;
    Ok(limits)
}

pub fn model_limits(entries: Option<&[ModelLimit]>) -> Result<Option<Vec<ModelLimit>>, FieldError> {
    entries.map(|e| check_model_limits(e).map_err(|m| FieldError::new("model_limits", m))).transpose()
}

/// Changes to users and teams, at one moment, by one admin (see `KeyOps`);
/// each is written to the audit log.
pub struct PeopleOps<'a> {
    store: &'a dyn Store,
    cache: Option<&'a KeyCache>,
    now: i64,
    actor: Actor,
}

impl<'a> PeopleOps<'a> {
    pub fn of(shared: &'a Shared, actor: Actor) -> PeopleOps<'a> {
        PeopleOps {
            store: shared.store.as_ref(),
            cache: Some(&shared.keys),
            now: shared.clock.now().timestamp(),
            actor,
        }
    }

    /// For the command line, which works on the store alone.
    pub fn offline(store: &'a dyn Store, now: i64) -> PeopleOps<'a> {
        PeopleOps { store, cache: None, now, actor: Actor::CLI }
    }

    /// Writes the audit entry of a change from `before` to `after` (either
    /// side `None` for a thing created or deleted), if anything changed.
    async fn audit(&self, action: &'static str, target: String, before: Option<Value>, after: Option<Value>) {
        let entry = match (&before, &after) {
            (Some(b), Some(a)) => audit::change(self.actor, self.now, action, Some(target), b, a),
            _ => Some(audit::whole(self.actor, self.now, action, target, before, after)),
        };
        if let Some(entry) = entry {
            audit::write(self.store, entry).await;
        }
    }

    fn changed(&self) {
        if let Some(cache) = self.cache {
            cache.clear();
        }
    }

    /// Replaces a user's or team's soft limits, when given.
    async fn set_soft_limits(
        &self,
        owner: Owner,
        id: i64,
        soft: Option<SoftLimits>,
    ) -> Result<(), PeopleError> {
        if let Some(soft) = soft {
            self.store.set_soft_limits(owner, id, &soft).await?;
        }
        Ok(())
    }

    pub async fn team(&self, id: i64) -> Result<TeamRecord, PeopleError> {
        self.store.get_team(id).await?.ok_or(PeopleError::NotFound("team", id))
    }

    pub async fn user(&self, id: i64) -> Result<UserRecord, PeopleError> {
        self.store.get_user(id).await?.ok_or(PeopleError::NotFound("user", id))
    }

    async fn check_team(&self, team_id: Option<i64>) -> Result<(), PeopleError> {
        match team_id {
            Some(id) if self.store.get_team(id).await?.is_none() => {
                Err(FieldError::new("team_id", format!("no team with id {id}")).into())
            }
            _ => Ok(()),
        }
    }

    pub async fn create_team(&self, input: CreateTeam) -> Result<TeamRecord, PeopleError> {
        let name = name(&input.name)?;
        let limits = limits(input.limits)?;
        let per_model = model_limits(input.model_limits.as_deref())?;
        let soft = soft_limits(input.alerts)?;
        let team = self.store.create_team(&name, self.now).await?;
        self.store.set_own_limits(Owner::Team, team.id, &limits).await?;
        if let Some(entries) = per_model {
            self.store.set_model_limits(Owner::Team, team.id, &entries).await?;
        }
        self.set_soft_limits(Owner::Team, team.id, soft).await?;
        self.changed();
        let team = self.team(team.id).await?;
        self.audit("team.create", team_target(team.id), None, Some(audit::team_json(&team))).await;
        Ok(team)
    }

    pub async fn patch_team(&self, id: i64, patch: PatchTeam) -> Result<TeamRecord, PeopleError> {
        let current = self.team(id).await?;
        let per_model = model_limits(patch.model_limits.as_deref())?;
        let soft = soft_limits(patch.alerts)?;
        if let Some(n) = patch.name {
            let n = name(&n)?;
            if n != current.name {
                self.store.rename_team(id, &n, self.now).await?;
            }
        }
        if let Some(entries) = per_model {
            self.store.set_model_limits(Owner::Team, id, &entries).await?;
        }
        self.set_soft_limits(Owner::Team, id, soft).await?;
        self.changed();
        let after = self.team(id).await?;
        let (b, a) = (audit::team_json(&current), audit::team_json(&after));
        self.audit("team.update", team_target(id), Some(b), Some(a)).await;
        Ok(after)
    }

    pub async fn team_quota(&self, id: i64, patch: &LimitsPatch) -> Result<TeamRecord, PeopleError> {
        let before = self.team(id).await?;
        let mut limits = before.own.limits;
        limits.apply(patch);
        limits.validate().map_err(|m| FieldError::new("limits", m))?;
        self.store.set_own_limits(Owner::Team, id, &limits).await?;
        self.changed();
        let after = self.team(id).await?;
        let (b, a) = (audit::team_json(&before), audit::team_json(&after));
        self.audit("team.quota", team_target(id), Some(b), Some(a)).await;
        Ok(after)
    }

    /// Deletes a team: its users stay, without a team; its history stays.
    pub async fn delete_team(&self, id: i64) -> Result<(), PeopleError> {
        let before = self.team(id).await?;
        if !self.store.delete_team(id).await? {
            return Err(PeopleError::NotFound("team", id));
        }
        self.changed();
        self.audit("team.delete", team_target(id), Some(audit::team_json(&before)), None).await;
        Ok(())
    }

    pub async fn create_user(&self, input: CreateUser) -> Result<UserRecord, PeopleError> {
        let fields = UserFields {
            name: name(&input.name)?,
            email: email(input.email.as_deref())?,
            team_id: input.team_id,
        };
        let limits = limits(input.limits)?;
        let per_model = model_limits(input.model_limits.as_deref())?;
        let soft = soft_limits(input.alerts)?;
        self.check_team(fields.team_id).await?;
        let user = self.store.create_user(&fields, self.now).await?;
        self.store.set_own_limits(Owner::User, user.id, &limits).await?;
        if let Some(entries) = per_model {
            self.store.set_model_limits(Owner::User, user.id, &entries).await?;
        }
        self.set_soft_limits(Owner::User, user.id, soft).await?;
        self.changed();
        let user = self.user(user.id).await?;
        self.audit("user.create", user_target(user.id), None, Some(audit::user_json(&user))).await;
        Ok(user)
    }

    pub async fn patch_user(&self, id: i64, patch: PatchUser) -> Result<UserRecord, PeopleError> {
        let current = self.user(id).await?;
        let before = audit::user_json(&current);
        let mut fields = UserFields { name: current.name, email: current.email, team_id: current.team_id };
        if let Some(n) = patch.name {
            fields.name = name(&n)?;
        }
        if let Some(e) = patch.email {
            fields.email = email(e.as_deref())?;
        }
        if let Some(t) = patch.team_id {
            fields.team_id = t;
        }
        let per_model = model_limits(patch.model_limits.as_deref())?;
        let soft = soft_limits(patch.alerts)?;
        self.check_team(fields.team_id).await?;
        self.store.save_user(id, &fields, self.now).await?;
        if let Some(entries) = per_model {
            self.store.set_model_limits(Owner::User, id, &entries).await?;
        }
        self.set_soft_limits(Owner::User, id, soft).await?;
        self.changed();
        let after = self.user(id).await?;
        self.audit("user.update", user_target(id), Some(before), Some(audit::user_json(&after))).await;
        Ok(after)
    }

    pub async fn user_quota(&self, id: i64, patch: &LimitsPatch) -> Result<UserRecord, PeopleError> {
        let before = self.user(id).await?;
        let mut limits = before.own.limits;
        limits.apply(patch);
        limits.validate().map_err(|m| FieldError::new("limits", m))?;
        self.store.set_own_limits(Owner::User, id, &limits).await?;
        self.changed();
        let after = self.user(id).await?;
        let (b, a) = (audit::user_json(&before), audit::user_json(&after));
        self.audit("user.quota", user_target(id), Some(b), Some(a)).await;
        Ok(after)
    }

    /// Deletes a user: their keys stay, without a user; their history stays.
    pub async fn delete_user(&self, id: i64) -> Result<(), PeopleError> {
        let before = self.user(id).await?;
        if !self.store.delete_user(id).await? {
            return Err(PeopleError::NotFound("user", id));
        }
        self.changed();
        self.audit("user.delete", user_target(id), Some(audit::user_json(&before)), None).await;
        Ok(())
    }
}

fn team_target(id: i64) -> String {
    format!("team:{id}")
}

fn user_target(id: i64) -> String {
    format!("user:{id}")
}

/// A team as the admin API shows it.
pub fn team_json(t: &TeamRecord, w: &Windows) -> Value {
    let usage = t.own.usage_at(w);
    json!({
        "id": t.id,
        "name": t.name,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
        "limits": t.own.limits,
        "model_limits": crate::admin::api::model_limits_json(&t.models, w),
        "alerts": t.alerts.to_json(),
        "usage": crate::admin::api::usage_json(&usage),
        "remaining": t.own.limits.remaining(&usage),
    })
}

/// A user as the admin API shows them, with their keys' ids.
pub fn user_json(u: &UserRecord, w: &Windows) -> Value {
    let usage = u.own.usage_at(w);
    json!({
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "team_id": u.team_id,
        "key_ids": u.key_ids,
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.updated_at),
        "limits": u.own.limits,
        "model_limits": crate::admin::api::model_limits_json(&u.models, w),
        "alerts": u.alerts.to_json(),
        "usage": crate::admin::api::usage_json(&usage),
        "remaining": u.own.limits.remaining(&usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_one_at_and_no_spaces() {
        assert_eq!(email(Some(" ana@example.org ")).unwrap().as_deref(), Some("ana@example.org"));
        assert_eq!(email(Some("")).unwrap(), None);
        for bad in ["ana", "@x", "a@", "a@b@c", "a b@c", "a@b\u{0}"] {
            assert!(email(Some(bad)).is_err(), "{bad}");
        }
    }
}
