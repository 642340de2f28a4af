//! The public keys that sign a key's requests (`proxy/signed.rs`): adding
//! and removing them, shared by the JSON API, the console and the command
//! line. Like the key operations (`keys.rs`), a change clears this
//! process's key cache and is written to the audit log.

use crate::admin::audit;
use crate::admin::error::{AdminError, PageError};
use crate::domain::audit::{Actor, AuditEntry};
use crate::domain::ssh_key::{SshKeyError, SshPublicKey};
use crate::domain::time::rfc3339;
use crate::key_cache::KeyCache;
use crate::state::Shared;
use crate::store::public_keys::{NewPublicKey, PublicKeyRow};
use crate::store::{Store, StoreError};
use serde_json::{json, Value};

/// Why a public key was not added or removed.
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    #[error("no API key with id {0}")]
    NoKey(i64),
    #[error("API key {0} has no public key with id {1}")]
    NotFound(i64, i64),
    #[error(transparent)]
    Invalid(#[from] SshKeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PublicKeyError> for AdminError {
    fn from(e: PublicKeyError) -> Self {
        match e {
            PublicKeyError::NoKey(_) | PublicKeyError::NotFound(..) => AdminError::NotFound(e.to_string()),
            PublicKeyError::Invalid(_) => AdminError::BadRequest(e.to_string()),
            PublicKeyError::Store(e) => e.into(),
        }
    }
}

impl From<PublicKeyError> for PageError {
    fn from(e: PublicKeyError) -> Self {
        PageError::Admin(e.into())
    }
}

/// A public key as the admin API shows it.
pub fn public_key_json(row: &PublicKeyRow) -> Value {
    json!({
        "id": row.id,
        "key_id": row.key_id,
        "public_key": format!("ssh-ed25519 {}", row.public_key),
        "comment": row.comment,
        "fingerprint": row.fingerprint,
        "created_at": rfc3339(row.created_at),
        "last_used_at": row.last_used_at.map(rfc3339),
    })
}

/// Public key changes by one admin at one moment.
pub struct PublicKeyOps<'a> {
    store: &'a dyn Store,
    cache: Option<&'a KeyCache>,
    now: i64,
    actor: Actor,
}

impl<'a> PublicKeyOps<'a> {
    pub fn of(shared: &'a Shared, actor: Actor) -> Self {
        let now = shared.clock.now().timestamp();
        PublicKeyOps { store: shared.store.as_ref(), cache: Some(&shared.keys), now, actor }
    }

    /// For the command line (a running gate sees the change within its cache's TTL).
    pub fn offline(store: &'a dyn Store, now: i64) -> Self {
        PublicKeyOps { store, cache: None, now, actor: Actor::CLI }
    }

    async fn check_key(&self, key_id: i64) -> Result<(), PublicKeyError> {
        match self.store.get_key(key_id).await? {
            Some(_) => Ok(()),
            None => Err(PublicKeyError::NoKey(key_id)),
        }
    }

    pub async fn list(&self, key_id: i64) -> Result<Vec<PublicKeyRow>, PublicKeyError> {
        self.check_key(key_id).await?;
        Ok(self.store.list_public_keys(key_id).await?)
    }

    /// Registers the public key of a `.pub` line (or its base64 field) for a key.
    pub async fn add(&self, key_id: i64, line: &str) -> Result<PublicKeyRow, PublicKeyError> {
        let parsed = SshPublicKey::parse_line(line)?;
        self.check_key(key_id).await?;
        let fingerprint = parsed.fingerprint();
        let new = NewPublicKey {
            key_id,
            public_key: &parsed.base64,
            comment: parsed.comment.as_deref(),
            fingerprint: &fingerprint,
            now: self.now,
        };
        let row = self.store.add_public_key(&new).await?;
        self.changed();
        self.audit("key.public_key_add", key_id, None, Some(&row)).await;
        Ok(row)
    }

    pub async fn remove(&self, key_id: i64, id: i64) -> Result<PublicKeyRow, PublicKeyError> {
        let row = self.store.delete_public_key(key_id, id).await?;
        let row = row.ok_or(PublicKeyError::NotFound(key_id, id))?;
        self.changed();
        self.audit("key.public_key_remove", key_id, Some(&row), None).await;
        Ok(row)
    }

    /// The next signed request reads its key afresh.
    fn changed(&self) {
        if let Some(cache) = self.cache {
            cache.clear();
        }
    }

    async fn audit(
        &self,
        action: &'static str,
        key_id: i64,
        before: Option<&PublicKeyRow>,
        after: Option<&PublicKeyRow>,
    ) {
        let shown = |row: &PublicKeyRow| json!({"fingerprint": row.fingerprint, "comment": row.comment});
        let entry = AuditEntry {
            at: self.now,
            actor: self.actor,
            action,
            target: Some(audit::key_target(key_id)),
            before: before.map(shown),
            after: after.map(shown),
        };
        audit::write(self.store, entry).await;
    }
}
