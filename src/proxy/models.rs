//! Which model answers: a key's aliases, and the default model for Anthropic
//! clients that ask for models Ollama does not have (`claude-...`).

use crate::domain::model::normalize;
use crate::state::AppState;
use crate::store::KeyRecord;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Normalised model names; `None` when the upstream could not list them.
type Names = Option<Arc<HashSet<String>>>;

/// The upstream's model names, fetched at most once a minute.
#[derive(Default)]
pub struct Catalog {
    cached: Mutex<Option<(Instant, Names)>>,
}

const FRESH_FOR: Duration = Duration::from_secs(60);
/// After a failed fetch, how long before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Catalog {
    pub fn clear(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// `None` when the upstream could not say.
    pub async fn names(&self, state: &AppState, client: &awc::Client) -> Names {
        if let Some((at, names)) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            let ttl = if names.is_some() { FRESH_FOR } else { RETRY_AFTER };
            if at.elapsed() < ttl {
                return names;
            }
        }
        let names = crate::upstream::tags(state, client).await.ok().map(|tags| {
            let list = tags.get("models").and_then(Value::as_array).cloned().unwrap_or_default();
            Arc::new(
                list.iter()
                    .filter_map(|m| m.get("name").or_else(|| m.get("model")).and_then(Value::as_str))
                    .map(normalize)
                    .collect::<HashSet<_>>(),
            )
        });
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), names.clone()));
        names
    }
}

/// Replaces a model name the key has an alias for; true when it did.
pub fn apply_aliases(key: &KeyRecord, body: &mut Value) -> bool {
    let Some(aliases) = &key.fields.aliases else { return false };
    let field = if body.get("model").is_some() { "model" } else { "name" };
    let Some(target) = body.get(field).and_then(Value::as_str).and_then(|m| aliases.resolve(m)) else {
        return false;
    };
    body[field] = Value::String(target.to_owned());
    true
}

/// For `/v1/messages`: a model Ollama does not have becomes `ANTHROPIC_DEFAULT_MODEL`.
pub async fn map_unknown_anthropic_model(state: &AppState, client: &awc::Client, body: &mut Value) -> bool {
    let default = state.anthropic_default_model.read().unwrap_or_else(|e| e.into_inner()).clone();
    let (Some(default), Some(requested)) = (default, body.get("model").and_then(Value::as_str)) else {
        return false;
    };
    let unknown = match state.catalog.names(state, client).await {
        Some(names) => !names.contains(&normalize(requested)),
        // The upstream cannot list its models: map only names that are surely not Ollama's.
        None => requested.starts_with("claude"),
    };
    if unknown {
        log::debug!("mapping Anthropic model '{requested}' to '{default}'");
        body["model"] = Value::String(default);
    }
    unknown
}
