//! `GET /metrics`: the Prometheus scrape. It needs no console session (a
//! scraper has none) and is never sent to the login page. With
//! `METRICS_TOKEN` set, the scraper shows that token or the admin password as
//! a bearer token; a token that is neither counts as a wrong admin password
//! in the login throttle, so guessing it is as slow as guessing the password.

use super::auth::bearer;
use super::error::AdminError;
use super::AdminState;
use crate::metrics::Metrics;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub async fn metrics(req: HttpRequest, state: Data<AdminState>) -> Result<HttpResponse, AdminError> {
    if let Some(token) = &state.settings.metrics_token {
        let allowed = match bearer(&req) {
            None => false,
            Some(given) if same_secret(given, token.expose()) => true,
            Some(given) => {
                let ip = crate::forwarded::client_address(&req, &state.settings.trusted_proxies);
                state.login_throttle.check(&state.password, ip, state.clock.as_ref(), given).await?
            }
        };
        if !allowed {
            return Err(AdminError::Unauthorized);
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(Metrics::content_type())
        .insert_header(("cache-control", "no-store"))
        .body(state.metrics.render()))
}

/// Compared by digest, in constant time whatever the lengths.
fn same_secret(given: &str, expected: &str) -> bool {
    let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    let expected: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    bool::from(given.ct_eq(&expected))
}
