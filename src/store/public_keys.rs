//! The public keys that sign requests for a key (`proxy/signed.rs`) and the
//! signatures already accepted. Written for SQLite and PostgreSQL alike,
//! like `sql_store!`.

use super::StoreResult;

/// One registered public key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicKeyRow {
    pub id: i64,
    pub key_id: i64,
    /// The base64 field of the `.pub` line.
    pub public_key: String,
    pub comment: Option<String>,
    pub fingerprint: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A public key to register.
pub struct NewPublicKey<'a> {
    pub key_id: i64,
    pub public_key: &'a str,
    pub comment: Option<&'a str>,
    pub fingerprint: &'a str,
    pub now: i64,
}

#[async_trait::async_trait]
pub trait PublicKeys: Send + Sync {
    /// Registers a public key; `StoreError::Conflict` when any key has it already.
    async fn add_public_key(&self, new: &NewPublicKey<'_>) -> StoreResult<PublicKeyRow>;
    async fn list_public_keys(&self, key_id: i64) -> StoreResult<Vec<PublicKeyRow>>;
    /// Removes one of a key's public keys: the row removed, `None` when the key has none with that id.
    async fn delete_public_key(&self, key_id: i64, id: i64) -> StoreResult<Option<PublicKeyRow>>;
    async fn find_public_key(&self, public_key: &str) -> StoreResult<Option<PublicKeyRow>>;
    /// Notes when a public key (its base64) last signed a request.
    async fn public_key_used(&self, public_key: &str, now: i64) -> StoreResult<()>;
    /// Claims a signature: true for the one caller whose insert went in,
    /// false for every later one (a replay), whichever process it is.
    async fn claim_signature(&self, hash: &str, expires_at: i64) -> StoreResult<bool>;
    /// Forgets signatures whose window has passed; returns how many.
    async fn prune_signatures(&self, now: i64) -> StoreResult<u64>;
}

const COLUMNS: &str = "id, key_id, public_key, comment, fingerprint, created_at, last_used_at";

pub fn insert_sql() -> String {
    format!(
        "INSERT INTO key_public_keys (key_id, public_key, comment, fingerprint, created_at) \
        VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    )
}
pub fn list_sql() -> String {
    format!("SELECT {COLUMNS} FROM key_public_keys WHERE key_id = $1 ORDER BY id")
}
pub fn delete_sql() -> String {
    format!("DELETE FROM key_public_keys WHERE key_id = $1 AND id = $2 RETURNING {COLUMNS}")
}
pub fn find_sql() -> String {
    format!("SELECT {COLUMNS} FROM key_public_keys WHERE public_key = $1")
}
pub const DELETE_OF_KEY: &str = "DELETE FROM key_public_keys WHERE key_id = $1";
pub const USED: &str = "UPDATE key_public_keys SET last_used_at = $2 WHERE public_key = $1";
pub const CLAIM: &str = "INSERT INTO used_signatures (signature_hash, expires_at) VALUES ($1, $2) \
    ON CONFLICT (signature_hash) DO NOTHING";
pub const PRUNE: &str = "DELETE FROM used_signatures WHERE expires_at < $1";

/// A public key registered already: the admin gets a 409 saying so.
pub fn conflict(e: sqlx::Error) -> super::StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => super::StoreError::Conflict(
            "this public key is already registered (to this or another API key); remove it there first"
                .into(),
        ),
        _ => e.into(),
    }
}

macro_rules! public_keys_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::public_keys::PublicKeys for $store {
            async fn add_public_key(
                &self,
                new: &$crate::store::public_keys::NewPublicKey<'_>,
            ) -> StoreResult<$crate::store::public_keys::PublicKeyRow> {
                use $crate::store::public_keys as pk;
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let row: pk::PublicKeyRow = sqlx::query_as(&pk::insert_sql())
                        .bind(new.key_id)
                        .bind(new.public_key.to_owned())
                        .bind(new.comment.map(str::to_owned))
                        .bind(new.fingerprint.to_owned())
                        .bind(new.now)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(pk::conflict)?;
                    row
                })
            }

            async fn list_public_keys(
                &self,
                key_id: i64,
            ) -> StoreResult<Vec<$crate::store::public_keys::PublicKeyRow>> {
                Ok(sqlx::query_as(&$crate::store::public_keys::list_sql())
                    .bind(key_id)
                    .fetch_all(self.reader()?)
                    .await?)
            }

            async fn delete_public_key(
                &self,
                key_id: i64,
                id: i64,
            ) -> StoreResult<Option<$crate::store::public_keys::PublicKeyRow>> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    let row: Option<$crate::store::public_keys::PublicKeyRow> =
                        sqlx::query_as(&$crate::store::public_keys::delete_sql())
                            .bind(key_id)
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    row
                })
            }

            async fn find_public_key(
                &self,
                public_key: &str,
            ) -> StoreResult<Option<$crate::store::public_keys::PublicKeyRow>> {
                Ok(sqlx::query_as(&$crate::store::public_keys::find_sql())
                    .bind(public_key.to_owned())
                    .fetch_optional(self.reader()?)
                    .await?)
            }

            async fn public_key_used(&self, public_key: &str, now: i64) -> StoreResult<()> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::public_keys::USED)
                        .bind(public_key.to_owned())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                })
            }

            async fn claim_signature(&self, hash: &str, expires_at: i64) -> StoreResult<bool> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::public_keys::CLAIM)
                        .bind(hash.to_owned())
                        .bind(expires_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1
                })
            }

            async fn prune_signatures(&self, now: i64) -> StoreResult<u64> {
                $crate::store::sql_steps::write_tx!(self, tx, {
                    sqlx::query($crate::store::public_keys::PRUNE)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                })
            }
        }
    };
}

pub(crate) use public_keys_store;
