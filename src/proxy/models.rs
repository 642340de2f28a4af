//! Which model answers: a key's aliases, and the default model for Anthropic
//! clients that ask for models Ollama does not have (`claude-...`).

use crate::domain::model::normalize;
use crate::proxy::ProxyState;
use crate::store::KeyRecord;
use serde_json::Value;

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
pub async fn map_unknown_anthropic_model(state: &ProxyState, client: &awc::Client, body: &mut Value) -> bool {
    let default = state.runtime.anthropic_default_model();
    let (Some(default), Some(requested)) = (default, body.get("model").and_then(Value::as_str)) else {
        return false;
    };
    let unknown = match state.upstreams.model_names(client).await {
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
