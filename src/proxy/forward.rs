//! Sending a request upstream: backend failover, upstream keys, header hygiene.

use super::body_pace::Paced;
use super::error::ProxyError;
use crate::upstream::{self, Upstreams};
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use awc::error::SendRequestError;
use awc::ClientResponse;

pub enum Outbound {
    Empty,
    Bytes(Bytes),
    /// Streamed as it arrives (blob uploads); cannot be retried on another backend.
    Stream(Paced<web::Payload>),
}

/// Headers that never cross the gate towards the upstream: the client's
/// credentials and cookies, its origin, hop-by-hop headers, and encodings the
/// usage tap could not read.
fn drop_request_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization"
            | "x-api-key"
            | "anthropic-auth-token"
            | "cookie"
            | "origin"
            | "referer"
            | "host"
            | "content-length"
            | "accept-encoding"
            | "expect"
    ) || is_hop_by_hop(name)
}

pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Also names listed in a message's own `Connection` header are hop-by-hop.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

/// Which of the upstream's response headers reach the client: an allow-list.
///
/// The upstream is another party (a local Ollama, a cloud endpoint, whatever
/// sits in front of it), and the client's contract is the gate's. A deny-list
/// would pass whatever the upstream, or a proxy beside it, adds next (cookies
/// under new names, `Alt-Svc`, `Location` to an internal host, its own CORS
/// or HSTS policy, software versions); an allow-list passes only what a client
/// of these APIs needs. The gate's own CORS policy (`ALLOWED_ORIGINS`) and
/// rate-limit headers are added after this, and the body's length and framing
/// are the gate's to set.
const PASSED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-language",
    "content-disposition",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "retry-after",
];

/// The upstream's response headers as they are filtered.
pub struct ResponseHeaders {
    /// Names the upstream's `Connection` header declared hop-by-hop.
    listed: Vec<String>,
}

impl ResponseHeaders {
    pub fn of(headers: &HeaderMap) -> ResponseHeaders {
        ResponseHeaders { listed: connection_listed(headers) }
    }

    pub fn allows(&self, name: &HeaderName) -> bool {
        PASSED_RESPONSE_HEADERS.contains(&name.as_str())
            && !is_hop_by_hop(name)
            && !self.listed.iter().any(|l| l == name.as_str())
    }
}

/// Sends the request to the first upstream that answers. A blob upload whose
/// body fell behind its pace is the client's fault: 408, not 502.
/// The request as it goes upstream, but for its body.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    /// The client's headers; those that must not go upstream are left out here.
    pub headers: &'a HeaderMap,
}

pub async fn send(
    client: &awc::Client,
    upstreams: &Upstreams,
    outgoing: Outgoing<'_>,
    body: Outbound,
) -> Result<ClientResponse, ProxyError> {
    let timed_out = match &body {
        Outbound::Stream(paced) => Some(paced.timed_out()),
        _ => None,
    };
    let sent = send_to_first(client, upstreams, &outgoing, body).await;
    sent.map_err(|e| match timed_out {
        Some(flag) if flag.load(std::sync::atomic::Ordering::Acquire) => ProxyError::RequestTimeout(
            "the request body arrived too slowly (REQUEST_BODY_TIMEOUT_SECS and REQUEST_BODY_MIN_RATE)"
                .into(),
        ),
        _ => e,
    })
}

async fn send_to_first(
    client: &awc::Client,
    upstreams: &Upstreams,
    outgoing: &Outgoing<'_>,
    body: Outbound,
) -> Result<ClientResponse, ProxyError> {
    let Outgoing { method, path_and_query, headers: incoming } = *outgoing;
    let listed = connection_listed(incoming);
    let mut body = Some(body);
    let mut key_attempts = upstreams.api_key_count().max(1);
    let mut last_error = ProxyError::BadGateway("no upstream configured".into());
    let backends = upstreams.in_turn();
    let mut i = 0;
    while i < backends.len() {
        let url = &backends[i];
        // The caller's Host and credentials are among the dropped headers.
        let mut request = upstream::request(upstreams, client, method.clone(), url, path_and_query);
        for (name, value) in incoming.iter() {
            if !drop_request_header(name) && !listed.iter().any(|l| l == name.as_str()) {
                request = request.append_header((name.clone(), value.clone()));
            }
        }
        let (result, retryable_body) = match body.take() {
            Some(Outbound::Empty) | None => (request.send().await, Some(Outbound::Empty)),
            Some(Outbound::Bytes(bytes)) => {
                (request.send_body(bytes.clone()).await, Some(Outbound::Bytes(bytes)))
            }
            Some(Outbound::Stream(payload)) => (request.send_stream(payload).await, None),
        };
        match result {
            Ok(response)
                if response.status() == StatusCode::TOO_MANY_REQUESTS
                    && key_attempts > 1
                    && retryable_body.is_some() =>
            {
                log::warn!("upstream {} answered 429; trying the next upstream API key", url);
                upstreams.rotate_api_key();
                key_attempts -= 1;
                body = retryable_body;
                continue;
            }
            Ok(response) => return Ok(response),
            Err(SendRequestError::Timeout) => {
                return Err(ProxyError::GatewayTimeout(
                    "upstream did not answer in time (FIRST_BYTE_TIMEOUT_SECS)".into(),
                ))
            }
            Err(SendRequestError::Connect(e)) => {
                log::warn!("upstream {url} unreachable: {e}");
                last_error = ProxyError::BadGateway("upstream Ollama is unreachable".into());
            }
            Err(e) => {
                log::warn!("upstream {url} failed: {e}");
                last_error = ProxyError::BadGateway("upstream Ollama failed to answer".into());
            }
        }
        match retryable_body {
            Some(b) => body = Some(b),
            None => break,
        }
        i += 1;
    }
    Err(last_error)
}
