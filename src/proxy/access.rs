//! Where a key may be used from: the client's address (the peer, or what a
//! proxy in `TRUSTED_PROXIES` says in `X-Forwarded-For`) must be on the key's
//! list of allowed addresses, when it has one.

use super::error::ProxyError;
use crate::config::Settings;
use crate::store::KeyRecord;
use actix_web::HttpRequest;

/// Refuses a key used from an address its list does not allow. Checked after
/// the key is known and before anything else: a refused caller learns nothing
/// of the key's scopes, models or limits.
pub fn check_address(settings: &Settings, req: &HttpRequest, key: &KeyRecord) -> Result<(), ProxyError> {
    let Some(allowed) = &key.fields.allowed_ips else { return Ok(()) };
    let client = crate::forwarded::client_address(req, &settings.trusted_proxies);
    if allowed.allows(client) {
        Ok(())
    } else {
        Err(ProxyError::Forbidden(format!("this API key may not be used from {client}")))
    }
}
