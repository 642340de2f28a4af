//! CORS on the proxy, for browser clients from `ALLOWED_ORIGINS` only.

use crate::proxy::ProxyState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::HttpResponse;

const EXPOSED: &str =
    "x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, \
    x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, retry-after, \
    x-request-id";

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let allowed = req.headers().get(header::ORIGIN).cloned().filter(|origin| {
        let origins = req
            .app_data::<Data<ProxyState>>()
            .map(|s| s.settings.allowed_origins.clone())
            .unwrap_or_default();
        origin.to_str().is_ok_and(|o| origins.iter().any(|a| a == "*" || a == o))
    });
    // A preflight is answered here, before authentication, as browsers send no key with it.
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        let mut response = HttpResponse::NoContent();
        if let Some(origin) = &allowed {
            response
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, DELETE, HEAD, OPTIONS"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, x-api-key, anthropic-auth-token, anthropic-version, anthropic-beta, \
                    x-request-id, traceparent, tracestate",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        }
        response.insert_header((header::VARY, "Origin"));
        return Ok(req.into_response(response.finish()));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    if let Some(origin) = allowed {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response)
}
