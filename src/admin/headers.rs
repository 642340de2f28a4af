//! Headers on every admin response: a strict Content-Security-Policy (no
//! inline script, no eval: htmx is configured not to need them), no framing,
//! no sniffing, no referrer, no caching; and the cookie's `Secure` flag when
//! `COOKIE_SECURE=auto` and the request came over HTTPS. The console's own
//! handlers answer errors with a page (`PageError`); the refusals made before
//! a handler runs (a bad path or query, a foreign host) come as JSON and are
//! redrawn as a page for browsers here. The JSON API keeps its JSON.

use crate::admin::AdminState;
use crate::config::CookieSecure;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let wants_page = !req.path().starts_with("/api/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let https = req.connection_info().scheme() == "https"
        || req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https");
    let auto =
        req.app_data::<Data<AdminState>>().is_some_and(|s| s.settings.cookie_secure == CookieSecure::Auto);
    let is_static = req.path().starts_with("/static/");
    let mut response = next.call(req).await?.map_into_boxed_body();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if wants_page && is_json && response.status().is_client_error() {
        response = as_page(response).await;
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !is_static {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if auto && https {
        let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or_default();
            let secured = if text.contains("; Secure") { text.to_owned() } else { format!("{text}; Secure") };
            if let Ok(value) = HeaderValue::from_str(&secured) {
                headers.append(header::SET_COOKIE, value);
            }
        }
    }
    Ok(response)
}

/// `{"error": "..."}` from a console route, redrawn as a small page.
async fn as_page(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let (req, res) = response.into_parts();
    let headers = res.headers().clone();
    let body = actix_web::body::to_bytes(res.into_body()).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    ServiceResponse::new(req, super::error::error_page(status, &message, &headers))
}
