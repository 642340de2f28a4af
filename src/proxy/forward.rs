//! Sending a request upstream: a slot in turn, backend failover and
//! retries, upstream keys, header hygiene.

use super::body_pace::Paced;
use super::error::ProxyError;
use super::request_id::{RequestId, HEADER as REQUEST_ID};
use super::trace::UpstreamTrace;
use crate::domain::lengths::shown;
use crate::telemetry::span;
use crate::upstream::pool::Backend;
use crate::upstream::queue::Who;
use crate::upstream::slots::{Acquired, Refused, Slot, Waiter};
use crate::upstream::{self, Upstreams};
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use awc::error::{ConnectError, SendRequestError};
use awc::ClientResponse;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The request as it goes upstream, but for its body.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    /// The client's headers; those that must not go upstream are left out here.
    pub headers: &'a HeaderMap,
    /// Sent upstream in place of the client's `x-request-id`.
    pub request_id: &'a RequestId,
    /// The trace headers, in place of the client's, when the request is traced.
    pub trace: Option<UpstreamTrace>,
}

/// Where a request may go.
pub enum Target<'a> {
    /// A generation: a slot on a backend that serves the model, waiting in
    /// the fair queue while every slot is busy.
    Slot(Queued<'a>),
    /// Listings and model details: a backend that has the model (or any), no slot.
    Any { model: &'a str },
    /// Manage routes: the backend named, else the first; never retried, as
    /// a pull or a delete is not the same on another backend.
    Named(Option<&'a str>),
}

/// A generation's place in the queue.
pub struct Queued<'a> {
    pub model: &'a str,
    pub who: Who,
    /// The longest it may wait for a slot, retries included.
    pub deadline: Instant,
    /// True once the client has hung up: it leaves the queue.
    pub gone: &'a dyn Fn() -> bool,
    /// When the request is traced: set to when it began and stopped waiting for a slot.
    pub waited: Option<&'a std::cell::Cell<Option<(u64, u64)>>>,
}

/// The upstream's answer, and the slot it holds until the answer ends.
pub struct Sent {
    pub response: ClientResponse,
    pub slot: Option<Slot>,
}

/// The backend a manage request goes to: the one named, else the first
/// reachable, else the first enabled.
pub fn named_backend(upstreams: &Upstreams, name: Option<&str>) -> Result<Arc<Backend>, ProxyError> {
    let pool = upstreams.pool();
    match name {
        Some(name) => pool
            .named(name)
            .cloned()
            .ok_or_else(|| ProxyError::BadRequest(format!("no backend is named '{}'", shown(name)))),
        None => pool
            .reachable()
            .into_iter()
            .next()
            .or_else(|| pool.backends.iter().find(|b| b.spec.enabled).cloned())
            .ok_or_else(|| ProxyError::Unavailable("every backend is disabled".into())),
    }
}

/// Sends the request where the target allows. A blob upload whose body fell
/// behind its pace is the client's fault: 408, not 502.
pub async fn send(
    client: &awc::Client,
    upstreams: &Arc<Upstreams>,
    outgoing: Outgoing<'_>,
    body: Outbound,
    target: Target<'_>,
) -> Result<Sent, ProxyError> {
    let timed_out = match &body {
        Outbound::Stream(paced) => Some(paced.timed_out()),
        _ => None,
    };
    let sent = match target {
        Target::Slot(queued) => send_in_turn(client, upstreams, &outgoing, body, queued).await,
        Target::Any { model } => {
            // A draining backend still answers listings and model details.
            let pool = upstreams.pool();
            let mut backends = pool.for_model(model);
            if backends.is_empty() {
                backends = pool.reachable();
            }
            let backends = upstreams.in_turn(backends);
            send_to_first(client, upstreams, &outgoing, body, backends).await
        }
        Target::Named(name) => {
            let backend = named_backend(upstreams, name)?;
            send_to_first(client, upstreams, &outgoing, body, vec![backend]).await
        }
    };
    sent.map_err(|e| match timed_out {
        Some(flag) if flag.load(std::sync::atomic::Ordering::Acquire) => ProxyError::RequestTimeout(
            "the request body arrived too slowly (REQUEST_BODY_TIMEOUT_SECS and REQUEST_BODY_MIN_RATE)"
                .into(),
        ),
        _ => e,
    })
}

/// A generation: a slot, then the backend; on a connection error or a 5xx
/// before the first byte, another backend with a free slot, while the
/// request's deadline lasts. Nothing has reached the client yet.
async fn send_in_turn(
    client: &awc::Client,
    upstreams: &Arc<Upstreams>,
    outgoing: &Outgoing<'_>,
    body: Outbound,
    queued: Queued<'_>,
) -> Result<Sent, ProxyError> {
    let mut body = Some(body);
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<Result<ClientResponse, ProxyError>> = None;
    loop {
        let slot = match upstreams.acquire(queued.model, queued.who, &tried) {
            Ok(Acquired::Now(slot)) => slot,
            Ok(Acquired::Wait(waiter)) => {
                let began = queued.waited.map(|_| span::now());
                let slot = wait_in_queue(waiter, &queued, upstreams).await;
                if let (Some(cell), Some(began)) = (queued.waited, began) {
                    // Over several waits (retries on other backends): from the first to the last.
                    let first = cell.get().map_or(began, |(first, _)| first);
                    cell.set(Some((first, span::now())));
                }
                slot?
            }
            Err(Refused::KeyFull(n)) => {
                return Err(ProxyError::QueueFull {
                    retry_after: 1,
                    message: format!(
                        "this key already has {n} requests waiting for a free slot (QUEUE_MAX_PER_KEY)"
                    ),
                })
            }
            Err(Refused::NoBackend) => {
                return match last {
                    Some(Ok(response)) => Ok(Sent { response, slot: None }),
                    Some(Err(e)) => Err(e),
                    None => Err(ProxyError::Unavailable(format!(
                        "no backend that is up serves model '{}'",
                        shown(queued.model)
                    ))),
                }
            }
        };
        let backend = slot.backend.clone();
        let Some(this_body) = body.take() else { break };
        let (result, again) = send_once(client, upstreams, &backend, outgoing, this_body).await;
        let retryable = again.is_some() && Instant::now() < queued.deadline;
        match result {
            Ok(response) if response.status().is_server_error() && retryable => {
                log::warn!(
                    "backend {} answered {}; trying another request_id={}",
                    backend.spec.name,
                    response.status(),
                    outgoing.request_id
                );
                last = Some(Ok(response));
            }
            Ok(response) => return Ok(Sent { response, slot: Some(slot) }),
            Err(Failure::Timeout(e)) => return Err(e),
            Err(Failure::Other(e)) if retryable => last = Some(Err(e)),
            Err(Failure::Other(e)) => return Err(e),
        }
        tried.push(backend.url().to_string());
        body = again;
    }
    match last {
        Some(Ok(response)) => Ok(Sent { response, slot: None }),
        Some(Err(e)) => Err(e),
        None => Err(ProxyError::BadGateway("no upstream configured".into())),
    }
}

/// Waits for this request's turn; gives up at the deadline or when the
/// client hangs up (the waiter leaves the queue as it is dropped).
async fn wait_in_queue(
    mut waiter: Waiter,
    queued: &Queued<'_>,
    upstreams: &Upstreams,
) -> Result<Slot, ProxyError> {
    let mut look = tokio::time::interval(HANG_UP_CHECK);
    let deadline = tokio::time::Instant::from_std(queued.deadline);
    loop {
        tokio::select! {
            slot = waiter.slot() => {
                return slot.ok_or_else(|| ProxyError::Unavailable("the queue was closed".into()));
            }
            _ = tokio::time::sleep_until(deadline) => {
                let waited = upstreams.queue_limits.max_wait.as_secs();
                return Err(ProxyError::QueueFull {
                    retry_after: (waited / 4).clamp(1, 30),
                    message: format!(
                        "no slot for model '{}' came free within {waited} s (QUEUE_MAX_WAIT_SECS); {} requests are waiting",
                        shown(queued.model),
                        waiter.queued()
                    ),
                });
            }
            _ = look.tick() => {
                if (queued.gone)() {
                    return Err(ProxyError::ClientGone);
                }
            }
        }
    }
}

/// How often a waiting request looks whether its client is still there.
const HANG_UP_CHECK: Duration = Duration::from_millis(100);

/// Tries the backends in order; the next one only when one cannot be reached.
async fn send_to_first(
    client: &awc::Client,
    upstreams: &Upstreams,
    outgoing: &Outgoing<'_>,
    body: Outbound,
    backends: Vec<Arc<Backend>>,
) -> Result<Sent, ProxyError> {
    let mut body = Some(body);
    let mut last_error = ProxyError::Unavailable("no backend is up".into());
    for backend in backends {
        let Some(this_body) = body.take() else { break };
        let (result, again) = send_once(client, upstreams, &backend, outgoing, this_body).await;
        match result {
            Ok(response) => return Ok(Sent { response, slot: None }),
            Err(Failure::Timeout(e)) => return Err(e),
            Err(Failure::Other(e)) => last_error = e,
        }
        body = again;
    }
    Err(last_error)
}

enum Failure {
    /// No answer in time: the request may be running there; not retried.
    Timeout(ProxyError),
    Other(ProxyError),
}

/// One backend, with upstream API keys rotated on its 429. Returns the body
/// back when it can be sent again.
async fn send_once(
    client: &awc::Client,
    upstreams: &Upstreams,
    backend: &Backend,
    outgoing: &Outgoing<'_>,
    body: Outbound,
) -> (Result<ClientResponse, Failure>, Option<Outbound>) {
    let Outgoing { method, path_and_query, headers: incoming, request_id, ref trace } = *outgoing;
    let listed = connection_listed(incoming);
    let url = backend.url();
    let name = &backend.spec.name;
    let mut body = body;
    let mut key_attempts = upstreams.api_key_count().max(1);
    loop {
        // The caller's Host and credentials are among the dropped headers.
        let mut request = upstream::request(upstreams, client, method.clone(), url, path_and_query);
        for (name, value) in incoming.iter() {
            let replaced = *name == REQUEST_ID || trace.as_ref().is_some_and(|t| t.replaces(name));
            if !drop_request_header(name) && !listed.iter().any(|l| l == name.as_str()) && !replaced {
                request = request.append_header((name.clone(), value.clone()));
            }
        }
        request = request.insert_header((REQUEST_ID, request_id.header_value()));
        if let Some(trace) = trace {
            request = request.insert_header(("traceparent", trace.traceparent.clone()));
        }
        let (result, again) = match body {
            Outbound::Empty => (request.send().await, Some(Outbound::Empty)),
            Outbound::Bytes(bytes) => (request.send_body(bytes.clone()).await, Some(Outbound::Bytes(bytes))),
            Outbound::Stream(payload) => (request.send_stream(payload).await, None),
        };
        let failure = match result {
            Ok(response)
                if response.status() == StatusCode::TOO_MANY_REQUESTS
                    && key_attempts > 1
                    && again.is_some() =>
            {
                log::warn!(
                    "backend {name} answered 429; trying the next upstream API key request_id={request_id}"
                );
                upstreams.rotate_api_key();
                key_attempts -= 1;
                body = again.expect("checked above");
                continue;
            }
            Ok(response) => return (Ok(response), again),
            Err(SendRequestError::Timeout) => Failure::Timeout(ProxyError::GatewayTimeout(
                "upstream did not answer in time (FIRST_BYTE_TIMEOUT_SECS)".into(),
            )),
            // The connection closed before an answer (a kept-alive one the
            // backend had just dropped, or a crash mid-request): not proof
            // that the backend is gone.
            Err(SendRequestError::Connect(e @ ConnectError::Disconnected)) => {
                log::warn!(
                    "backend {name} closed the connection before answering: {e} request_id={request_id}"
                );
                Failure::Other(ProxyError::BadGateway("upstream Ollama is unreachable".into()))
            }
            Err(SendRequestError::Connect(e)) => {
                if backend.unreachable(format!("connection failed: {e}")) {
                    log::warn!("backend {name} is out: {e} request_id={request_id}");
                } else {
                    log::warn!("backend {name} unreachable: {e} request_id={request_id}");
                }
                Failure::Other(ProxyError::BadGateway("upstream Ollama is unreachable".into()))
            }
            Err(e) => {
                log::warn!("backend {name} failed: {e} request_id={request_id}");
                Failure::Other(ProxyError::BadGateway("upstream Ollama failed to answer".into()))
            }
        };
        return (Err(failure), again);
    }
}
