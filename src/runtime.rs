//! Settings an admin may change while the gate runs: the upstream URLs, the
//! model Anthropic clients get by default, the admin password's hash. Saved
//! in the database, where they win over the environment, and reloaded by
//! every replica in its upkeep.

use crate::domain::backend::{parse_list, BackendSpec};
use crate::domain::people::ModelWeights;
use crate::store::{Store, StoreError};
use crate::upstream::Upstreams;
use std::sync::{Arc, RwLock};

/// The names under which run-time settings are kept in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingName {
    /// Comma-separated backends, each spelled as in `OLLAMA_URL` with its options.
    Upstreams,
    /// A model name; empty for none.
    AnthropicDefaultModel,
    /// The admin password's argon2 PHC string.
    AdminPasswordHash,
    /// Bumped to end every admin session (logging out everywhere, a new password).
    SessionEpoch,
    /// Where earlier versions kept the cookie key in plaintext; now always wiped.
    LegacySessionKey,
    /// How much a token of each model counts, as the admin API's JSON object.
    ModelWeights,
}

impl SettingName {
    pub const fn as_str(self) -> &'static str {
        match self {
            SettingName::Upstreams => "ollama_urls",
            SettingName::AnthropicDefaultModel => "anthropic_default_model",
            SettingName::AdminPasswordHash => "admin_password_hash",
            SettingName::SessionEpoch => "admin_session_epoch",
            SettingName::LegacySessionKey => "session_key",
            SettingName::ModelWeights => "model_weights",
        }
    }
}

/// The run-time values the upstream list does not hold itself.
pub struct Runtime {
    anthropic_default_model: RwLock<Option<String>>,
    model_weights: RwLock<Arc<ModelWeights>>,
}

/// A change made through the admin; `None` leaves a value alone. Checked by
/// the caller before it is applied.
#[derive(Debug, Default)]
pub struct Change {
    pub upstreams: Option<Vec<BackendSpec>>,
    /// `Some(None)`: no default model.
    pub anthropic_default_model: Option<Option<String>>,
}

impl Runtime {
    /// What was saved, else the environment's values.
    pub async fn load(
        store: &dyn Store,
        from_env: (&[BackendSpec], Option<&str>),
        default_slots: u32,
    ) -> Result<(Vec<BackendSpec>, Runtime), StoreError> {
        let urls = saved_backends(store, default_slots).await?.unwrap_or_else(|| from_env.0.to_vec());
        let model = match saved_model(store).await? {
            Some(saved) => saved,
            None => from_env.1.map(str::to_owned),
        };
        let weights = saved_weights(store).await?;
        Ok((
            urls,
            Runtime {
                anthropic_default_model: RwLock::new(model),
                model_weights: RwLock::new(Arc::new(weights)),
            },
        ))
    }

    /// How much a token of each model counts against token limits.
    pub fn model_weights(&self) -> Arc<ModelWeights> {
        self.model_weights.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Saves new weights, then uses them. Other replicas pick them up in their upkeep.
    pub async fn set_model_weights(
        &self,
        store: &dyn Store,
        weights: ModelWeights,
    ) -> Result<(), StoreError> {
        store.put_setting(SettingName::ModelWeights.as_str(), &weights.to_json().to_string()).await?;
        *self.model_weights.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(weights);
        Ok(())
    }

    pub fn anthropic_default_model(&self) -> Option<String> {
        self.anthropic_default_model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_anthropic_default_model(&self, model: Option<String>) {
        *self.anthropic_default_model.write().unwrap_or_else(|e| e.into_inner()) = model;
    }

    /// Saves a change, then uses it.
    pub async fn apply(
        &self,
        store: &dyn Store,
        upstreams: &Upstreams,
        change: Change,
    ) -> Result<(), StoreError> {
        if let Some(backends) = change.upstreams {
            let text = backends.iter().map(BackendSpec::to_text).collect::<Vec<_>>().join(",");
            store.put_setting(SettingName::Upstreams.as_str(), &text).await?;
            upstreams.set_backends(backends);
        }
        if let Some(model) = change.anthropic_default_model {
            store
                .put_setting(SettingName::AnthropicDefaultModel.as_str(), model.as_deref().unwrap_or(""))
                .await?;
            self.set_anthropic_default_model(model);
        }
        Ok(())
    }

    /// Picks up what another replica saved.
    pub async fn reload(&self, store: &dyn Store, upstreams: &Upstreams) -> Result<(), StoreError> {
        if let Some(backends) = saved_backends(store, upstreams.default_slots).await? {
            if upstreams.specs() != backends {
                upstreams.set_backends(backends);
            }
        }
        if let Some(model) = saved_model(store).await? {
            self.set_anthropic_default_model(model);
        }
        let weights = saved_weights(store).await?;
        if *self.model_weights() != weights {
            *self.model_weights.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(weights);
        }
        Ok(())
    }
}

/// The saved upstream list; `None` when none was saved (or none of it parses).
async fn saved_backends(
    store: &dyn Store,
    default_slots: u32,
) -> Result<Option<Vec<BackendSpec>>, StoreError> {
    let Some(saved) = store.get_setting(SettingName::Upstreams.as_str()).await? else { return Ok(None) };
    match parse_list(saved.split(','), default_slots) {
        Ok(backends) => Ok(Some(backends)),
        Err(e) => {
            log::warn!("the saved backends do not read ({e}); OLLAMA_URL is used instead");
            Ok(None)
        }
    }
}

/// The saved default model: `Some(None)` when it was saved as none.
async fn saved_model(store: &dyn Store) -> Result<Option<Option<String>>, StoreError> {
    let saved = store.get_setting(SettingName::AnthropicDefaultModel.as_str()).await?;
    Ok(saved.map(|m| Some(m).filter(|m| !m.is_empty())))
}

/// The saved weights; none (every model weighs 1) when none were saved or
/// what was saved no longer reads as weights.
async fn saved_weights(store: &dyn Store) -> Result<ModelWeights, StoreError> {
    let Some(saved) = store.get_setting(SettingName::ModelWeights.as_str()).await? else {
        return Ok(ModelWeights::default());
    };
    let parsed =
        serde_json::from_str(&saved).map_err(|e| e.to_string()).and_then(|v| ModelWeights::from_json(&v));
    Ok(parsed.unwrap_or_else(|e| {
        log::error!("the saved model weights do not read as weights ({e}); every model weighs 1");
        ModelWeights::default()
    }))
}
