//! Who is calling: the key from the request, checked before the database sees it.

use super::error::ProxyError;
use super::policy::plan::Incoming;
use super::policy::routes::{Refusal, Route};
use super::request_id::RequestId;
use crate::domain::api_key::ApiKey;
use crate::proxy::ProxyState;
use crate::store::KeyRecord;
use actix_web::HttpRequest;
use std::sync::Arc;

/// The key as presented, in the documented order of precedence.
pub fn presented_key(req: &HttpRequest, allow_query: bool) -> Option<String> {
    let header = |name: &str| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
    };
    if let Some(auth) = header("authorization") {
        let key = match auth.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => auth,
        };
        return Some(key.to_owned());
    }
    if let Some(key) = header("x-api-key").or_else(|| header("anthropic-auth-token")) {
        return Some(key.to_owned());
    }
    if allow_query {
        let query = url::form_urlencoded::parse(req.query_string().as_bytes());
        for (name, value) in query {
            if name == "api_key" || name == "key" {
                return Some(value.into_owned());
            }
        }
    }
    None
}

/// The caller's key: from the headers or the query or, with
/// ALLOW_KEY_IN_BODY, from a JSON body (taken out of it before forwarding).
pub async fn caller(
    state: &ProxyState,
    req: &HttpRequest,
    route: &Result<Route, Refusal>,
    body: &mut Incoming,
) -> Result<Arc<KeyRecord>, ProxyError> {
    let settings = &state.settings;
    let mut presented = presented_key(req, settings.allow_key_in_query);
    if presented.is_none()
        && settings.allow_key_in_body
        && route.as_ref().is_ok_and(|r| r.kind.has_json_body())
    {
        presented = body.json(req, settings).await?.take_key();
    }
    authenticate(state, presented.as_deref(), &RequestId::of_request(req)).await
}

/// The key presented, found and valid; `request_id` names the request in the log.
pub async fn authenticate(
    state: &ProxyState,
    presented: Option<&str>,
    request_id: &RequestId,
) -> Result<Arc<KeyRecord>, ProxyError> {
    let presented = presented.ok_or_else(|| {
        ProxyError::Unauthorized("missing API key: send it as 'Authorization: Bearer sk-og-...'".into())
    })?;
    // Malformed keys and typos stop here, without a database lookup.
    let key =
        ApiKey::parse(presented).map_err(|e| ProxyError::Unauthorized(format!("invalid API key: {e}")))?;
    let hash = key.hash();
    let now = state.clock.now().timestamp();
    let record = match state.keys.get(&hash) {
        Some(cached) => cached,
        None => {
            let found = state
                .store
                .find_key_by_hash(&hash, now)
                .await
                .map_err(ProxyError::database("key lookup", request_id))?;
            let found = found.map(Arc::new);
            state.keys.put(hash.clone(), found.clone());
            found
        }
    };
    let record = record.ok_or_else(|| ProxyError::Unauthorized("invalid API key: unknown key".into()))?;
    // A cached lookup of a rotated-out secret outlives its grace period.
    if !record.opened_by(&hash, now) {
        return Err(ProxyError::Unauthorized(
            "invalid API key: this secret was replaced by a rotation".into(),
        ));
    }
    if !record.active {
        return Err(ProxyError::Unauthorized("API key is deactivated".into()));
    }
    if record.is_expired(now) {
        return Err(ProxyError::Unauthorized("API key has expired".into()));
    }
    Ok(record)
}
