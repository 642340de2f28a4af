//! Cloud models need the `cloud` scope: a signed-in Ollama runs them on its
//! operator's ollama.com account.
//!
//! Checked on the body as it will be forwarded (after aliases and the
//! Anthropic default model), on every model a request names: the model run,
//! the source of a copy or a create, the model shown. A name is cloud by
//! Ollama's own suffix rule or because a backend lists it with a
//! `remote_host` (`domain::cloud`). The gate lists the backends again as
//! soon as it has forwarded a copy, and a name no backend lists may have
//! been copied from a cloud model since the last probe: the backends are
//! asked again (at most once a second) before it goes through. When no
//! backend can list its models, only the name decides.

use crate::domain::cloud;
use crate::domain::lengths::shown;
use crate::domain::scopes::Scope;
use crate::proxy::error::ProxyError;
use crate::store::KeyRecord;
use serde_json::Value;

pub fn refusal(model: &str) -> ProxyError {
    ProxyError::Forbidden(format!(
        "model '{}' is a cloud model (it runs on the operator's ollama.com account): \
         cloud models need the 'cloud' scope, which this key lacks",
        shown(model)
    ))
}

/// Refuses a request that would run, show or copy a cloud model for a key
/// without the `cloud` scope.
pub fn check(key: &KeyRecord, models: &[String], body: Option<&Value>) -> Result<(), ProxyError> {
    if key.fields.scopes.contains(Scope::Cloud) {
        return Ok(());
    }
    // `/api/create` with a `remote_host` makes a cloud model of any name.
    if let Some(host) = body.and_then(|b| b.get("remote_host")).filter(|v| !v.is_null()) {
        let shown_host = host.as_str().map(shown).unwrap_or_else(|| "?".into());
        return Err(ProxyError::Forbidden(format!(
            "'remote_host' ('{shown_host}') makes a cloud model: cloud models need the 'cloud' scope, which this key lacks"
        )));
    }
    // By name, or by what the probes last listed (every 2 s, and at once
    // after a copy the gate forwarded). A request never waits for a listing,
    // so names no backend lists cannot make the gate probe on demand.
    if let Some(m) = models.iter().find(|m| cloud::is_cloud(m)) {
        return Err(refusal(m));
    }
    Ok(())
}

/// Whether one entry of a listing (`/api/tags`, `/api/ps`, `/v1/models`) is
/// a cloud model: listed with a `remote_host` or `remote_model`, or named so.
pub fn listed_as_cloud(item: &Value, name_fields: &[&str]) -> bool {
    let set = |f: &str| item.get(f).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    set("remote_host")
        || set("remote_model")
        || name_fields.iter().any(|f| item.get(*f).and_then(Value::as_str).is_some_and(cloud::is_cloud))
}
