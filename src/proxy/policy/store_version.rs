//! Manage routes only while the backend they go to runs an Ollama without
//! a known critical advisory on them (`MIN_OLLAMA_VERSION_FOR_MANAGE`).
//!
//! The version is the one the backend's health probe last read from
//! `/api/version` (every two seconds; a backend no probe has reached yet is
//! probed first). A version that does not parse, or a development build's
//! `0.0.0`, counts as too old: nothing says it has the fixes.

use crate::domain::lengths::shown;
use crate::domain::version::Version;
use crate::proxy::error::ProxyError;
use crate::proxy::forward::named_backend;
use crate::proxy::ProxyState;

pub async fn check(
    state: &ProxyState,
    client: &awc::Client,
    backend: Option<&str>,
) -> Result<(), ProxyError> {
    let Some(min) = &state.settings.min_ollama_version_for_manage else { return Ok(()) };
    let target = named_backend(&state.upstreams, backend)?;
    let reported = state.upstreams.version_of(client, &target).await;
    let version = reported.as_deref().and_then(Version::parse).filter(|v| !v.is_dev_build());
    match version {
        Some(v) if v >= *min => Ok(()),
        _ => Err(ProxyError::Unavailable(format!(
            "model management is off for backend '{}': it runs Ollama {}, and this gate forwards pulls, \
             creates, copies, deletes and blob uploads only to Ollama {min} or newer \
             (MIN_OLLAMA_VERSION_FOR_MANAGE), the first release without a known critical advisory on them; \
             upgrade that Ollama",
            shown(&target.spec.name),
            reported
                .as_deref()
                .map(shown)
                .map(|v| format!("'{v}'"))
                .unwrap_or_else(|| "an unknown version".into()),
        ))),
    }
}
