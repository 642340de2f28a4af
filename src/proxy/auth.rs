//! Who is calling: the key from the request, checked before the database sees it.

use super::error::ProxyError;
use super::policy::plan::Incoming;
use super::policy::routes::{Refusal, Route};
use super::request_id::RequestId;
use super::signed::{self, SignedError, SignedHeader};
use crate::domain::api_key::ApiKey;
use crate::key_cache;
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
    if let Some(signed) = signed_header(req) {
        let signed = signed.map_err(unauthorized)?;
        return signed_caller(state, req, route, signed).await;
    }
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

/// The Authorization header, when it has the signed form (`signed.rs`).
fn signed_header(req: &HttpRequest) -> Option<Result<SignedHeader, SignedError>> {
    SignedHeader::detect(req.headers().get("authorization")?.to_str().ok()?)
}

fn unauthorized(e: SignedError) -> ProxyError {
    ProxyError::Unauthorized(e.to_string())
}

/// A request signed by a registered public key is its key's request. The
/// cheap checks come first, then the signature, the key, and last the claim
/// that makes the signature good for one request.
async fn signed_caller(
    state: &ProxyState,
    req: &HttpRequest,
    route: &Result<Route, Refusal>,
    signed: SignedHeader,
) -> Result<Arc<KeyRecord>, ProxyError> {
    let request_id = RequestId::of_request(req);
    let window = state.settings.signed_request_window.as_secs();
    let ts = signed::timestamp(req.query_string()).map_err(unauthorized)?;
    let now = state.clock.now().timestamp();
    signed::check_fresh(ts, now, window).map_err(unauthorized)?;
    signed.verify(&signed::challenge(req.method().as_str(), req.uri().path(), ts)).map_err(unauthorized)?;
    let public_key = &signed.public_key.base64;
    let entry = key_cache::public_key_entry(public_key);
    let record = match state.keys.get(&entry) {
        Some(cached) => cached,
        None => {
            let found = key_of_public_key(state, public_key, &request_id).await?.map(Arc::new);
            state.keys.put(entry, found.clone());
            found
        }
    };
    let record = record.ok_or_else(|| unauthorized(SignedError::UnknownKey))?;
    check_usable(state, &record)?;
    // Listings and model details may come twice in one second (`ollama run`
    // asks for /api/show twice), and ed25519 signs the same challenge the
    // same way: only requests that cost or change something are claimed.
    let once_only = route.as_ref().map_or(true, |r| r.kind.counts_in_request_quotas());
    if once_only {
        let claimed = state
            .store
            .claim_signature(&signed.replay_hash(), ts.saturating_add(window as i64 + 1))
            .await
            .map_err(ProxyError::database("signature claim", &request_id))?;
        if !claimed {
            return Err(unauthorized(SignedError::Replayed));
        }
    }
    if state.keys.use_due(public_key) {
        let (store, public_key) = (state.store.clone(), public_key.clone());
        actix_web::rt::spawn(async move {
            if let Err(e) = store.public_key_used(&public_key, now).await {
                log::warn!("could not note when a public key was last used: {e}");
            }
        });
    }
    signed::mark_signed(req);
    Ok(record)
}

/// The key a public key is registered to, as `find_key_by_hash` reads it.
async fn key_of_public_key(
    state: &ProxyState,
    public_key: &str,
    request_id: &RequestId,
) -> Result<Option<KeyRecord>, ProxyError> {
    let found = state.store.find_public_key(public_key).await;
    let Some(row) = found.map_err(ProxyError::database("public key lookup", request_id))? else {
        return Ok(None);
    };
    state.store.get_key(row.key_id).await.map_err(ProxyError::database("key lookup", request_id))
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
    check_usable(state, &record)?;
    Ok(record)
}

/// Active and not expired.
fn check_usable(state: &ProxyState, record: &KeyRecord) -> Result<(), ProxyError> {
    if !record.active {
        return Err(ProxyError::Unauthorized("API key is deactivated".into()));
    }
    if record.is_expired(state.clock.now().timestamp()) {
        return Err(ProxyError::Unauthorized("API key has expired".into()));
    }
    Ok(())
}
