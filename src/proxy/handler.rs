//! The one handler behind every forwarded route.

use super::auth::{authenticate, presented_key};
use super::body_pace::{BodyPace, Paced};
use super::error::ProxyError;
use super::forward::{self, Outbound};
use super::metered::{CutOff, End, Held, Metered, Ticket};
use super::models;
use super::policy::body::{self, Facts};
use super::policy::clamps;
use super::policy::images::{self, ImageClient};
use super::policy::rewrite;
use super::policy::routes::{self, Family, Kind, Refusal, Route};
use super::ratelimit;
use super::reservation::{self, Room};
use super::stream_watch::StreamWatch;
use super::tap::{DropUsageChunk, Tap};
use crate::domain::limits::{first_violation, LimitKind, Limits, Usage};
use crate::domain::model;
use crate::domain::windows::Windows;
use crate::proxy::ProxyState;
use crate::store::{Admission, Admitted, KeyRecord};
use crate::tokens::Busy;
use crate::usage_log::UsageEvent;
use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, Bytes, BytesMut, Data};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

type Headers = Vec<(HeaderName, HeaderValue)>;

pub async fn proxy(
    req: HttpRequest,
    payload: web::Payload,
    state: Data<ProxyState>,
    client: Data<awc::Client>,
    images: Data<ImageClient>,
) -> HttpResponse {
    let family = Family::of(req.path());
    let mut rate_headers = Headers::new();
    match handle(&req, payload, &state, &client, &images, &mut rate_headers).await {
        Ok(response) => response,
        Err(error) => {
            log_refusal(&state, &req, &error);
            error.render(family, &rate_headers)
        }
    }
}

async fn handle(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &Data<ProxyState>,
    client: &awc::Client,
    images: &ImageClient,
    rate_headers: &mut Headers,
) -> Result<HttpResponse, ProxyError> {
    let settings = &state.settings;
    let route = routes::resolve(req.method(), req.path());
    let mut presented = presented_key(req, settings.allow_key_in_query);

    // With ALLOW_KEY_IN_BODY, a JSON body may carry the key; it is removed before forwarding.
    let mut json: Option<(Value, bool)> = None;
    if presented.is_none() && settings.allow_key_in_body {
        if let Ok(r) = &route {
            if r.kind.has_json_body() {
                let mut value = body::parse_strict(&read_body(req, &mut payload, settings).await?)?;
                if let Some(Value::String(k)) = value.as_object_mut().and_then(|o| o.remove("api_key")) {
                    presented = Some(k);
                }
                json = Some((value, true));
            }
        }
    }

    let key = authenticate(state, presented.as_deref()).await?;
    let route = route.map_err(|refusal| refused_route(req, refusal))?;
    if !key.fields.scopes.contains(route.scope) {
        return Err(ProxyError::Forbidden(format!(
            "this key lacks the '{}' scope needed for {} {}",
            route.scope,
            req.method(),
            crate::domain::lengths::shown(req.path())
        )));
    }
    let windows = state.windows();
    *rate_headers = ratelimit::headers(&key.fields.limits, &key.usage_at(&windows), &windows);

    // The body, and what policy needs from it.
    let mut facts = Facts::default();
    let mut body: Option<Body> = None;
    let mut strip_usage = false;
    let mut remote_images = false;
    let mut body_timed_out = None;
    let outbound = if route.kind.has_json_body() {
        let (mut value, mut changed, raw) = match json.take() {
            Some((value, changed)) => (value, changed, None),
            None => {
                let raw = read_body(req, &mut payload, settings).await?;
                (body::parse_strict(&raw)?, false, Some(raw))
            }
        };
        // The client's credentials never go upstream, whichever way the key came.
        changed |= value.as_object_mut().and_then(|o| o.remove("api_key")).is_some();
        // Checked as sent, then changed: aliases, model mapping, clamps, usage
        // reporting. Whatever changed, what is forwarded is read again below, so
        // that the model checked and the tokens reserved are the ones sent.
        body::facts(route.kind, &value)?;
        changed |= models::apply_aliases(&key, &mut value);
        if matches!(route.kind, Kind::AnthropicMessages | Kind::AnthropicCountTokens) {
            changed |= models::map_unknown_anthropic_model(state, client, &mut value).await;
        }
        changed |= clamps::apply(route.kind, &mut value, &key.fields.clamps, settings.max_keep_alive)?;
        // Remote images are only looked at here; they are fetched once admitted.
        if matches!(route.kind, Kind::OpenAiChat | Kind::OpenAiResponses) {
            remote_images = images::precheck(&value, settings)?;
        }
        if matches!(route.kind, Kind::OpenAiChat | Kind::OpenAiCompletions)
            && value.get("stream").and_then(Value::as_bool) == Some(true)
        {
            strip_usage = rewrite::request_usage(&mut value);
            changed |= strip_usage;
        }
        let mut prepared = Body { value, raw: if changed { None } else { raw } };
        facts = prepared.reread(route.kind)?;
        check_models(&key, &facts.models)?;
        let bytes = prepared.bytes();
        body = Some(prepared);
        Outbound::Bytes(bytes)
    } else if route.kind == Kind::Blob && req.method() == actix_web::http::Method::POST {
        // Model layers are gigabytes: streamed through as they arrive, not held
        // or limited in size, but held to the body pace.
        let paced = Paced::new(payload, settings.request_body_timeout, settings.request_body_min_rate);
        body_timed_out = Some(paced.timed_out());
        Outbound::Stream(paced)
    } else {
        Outbound::Empty
    };
    if route.kind == Kind::OpenAiModel {
        let model = route.upstream_path.trim_start_matches("/v1/models/");
        check_models(&key, &[model.to_owned()])?;
    }
    // Admission: one transaction that counts the request and reserves its
    // tokens. Every route is admitted: per-minute limits and concurrency
    // protect the upstream from listings too (see `counts_in_request_quotas`).
    // count_tokens is answered by the gate itself: its body stays here.
    let (body, count_tokens) = match route.kind {
        Kind::AnthropicCountTokens => (None, Some(body)),
        _ => (body, None),
    };
    let (ticket, usage, outbound) = admit(state, &key, &route, &mut facts, body, outbound).await?;
    *rate_headers = ratelimit::headers(&key.fields.limits, &usage, &state.windows());
    if let Some(request) = count_tokens {
        // Counted like any request, charged nothing; the count waits on the
        // tokenizer pool, and a full pool gives the request back.
        let text = request.as_ref().map(|b| body::prompt_text(&b.value)).unwrap_or_default();
        let pending = match state.tokenizer.try_count(key.id, text) {
            Ok(pending) => pending,
            Err(busy) => {
                let e = tokenizer_busy(busy);
                ticket.settle(End::NotForwarded, e.status().as_u16(), None);
                return Err(e);
            }
        };
        let mut held = Held::new(ticket);
        let tokens = pending.tokens().await;
        let Some(ticket) = held.take() else {
            return Err(ProxyError::Unavailable(
                "the request was settled while its tokens were counted".into(),
            ));
        };
        ticket.settle_answered(200);
        let mut reply = HttpResponse::Ok();
        add_headers(&mut reply, rate_headers);
        return Ok(reply.json(serde_json::json!({ "input_tokens": tokens })));
    }

    let (ticket, outbound) = match (remote_images, outbound) {
        (true, Outbound::Bytes(bytes)) => {
            let (ticket, bytes) = images::inline(ticket, bytes, images, settings).await?;
            (ticket, Outbound::Bytes(bytes))
        }
        (_, outbound) => (ticket, outbound),
    };

    let path_and_query = upstream_path_and_query(req, &route, settings.allow_key_in_query);
    let response =
        forward::send(client, &state.upstreams, req.method(), &path_and_query, req.headers(), outbound).await;
    let mut response = match response {
        Ok(r) => r,
        Err(e) => {
            let e = match body_timed_out {
                Some(flag) if flag.load(std::sync::atomic::Ordering::Acquire) => ProxyError::RequestTimeout(
                    "the request body arrived too slowly (REQUEST_BODY_TIMEOUT_SECS and REQUEST_BODY_MIN_RATE)"
                        .into(),
                ),
                _ => e,
            };
            ticket.settle(End::UpstreamUnreachable, e.status().as_u16(), None);
            return Err(e);
        }
    };

    let status = response.status();
    let mut builder = HttpResponse::build(status);
    let mut content_type = String::new();
    let mut length: Option<u64> = None;
    let passes = forward::ResponseHeaders::of(response.headers());
    for (name, value) in response.headers() {
        if name == header::CONTENT_LENGTH {
            length = value.to_str().ok().and_then(|v| v.parse().ok());
            continue;
        }
        if name == header::CONTENT_TYPE {
            content_type = value.to_str().unwrap_or_default().to_owned();
        }
        if passes.allows(name) {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    add_headers(&mut builder, rate_headers);

    // A key with a model allow-list sees only its models in the listings.
    if let (Some(models), true) = (&key.fields.models, is_listing(route.kind) && status.is_success()) {
        let raw = response.body().limit(64 * 1024 * 1024).await;
        let raw = match raw {
            Ok(raw) => {
                ticket.settle_answered(status.as_u16());
                raw
            }
            Err(e) => {
                ticket.settle(End::UpstreamBroke, status.as_u16(), None);
                return Err(ProxyError::BadGateway(format!("upstream listing could not be read: {e}")));
            }
        };
        return Ok(builder.body(filter_listing(route.kind, &raw, models)));
    }

    let streaming =
        content_type.starts_with("application/x-ndjson") || content_type.starts_with("text/event-stream");
    let error_family = streaming.then(|| Family::of(req.path()));
    let metered = Metered::new(
        response.take_payload(),
        Tap::for_route(route.kind, facts.stream, content_type.starts_with("text/event-stream")),
        Some(ticket),
        status.as_u16(),
        settings.stream_idle_timeout,
        CutOff {
            max_duration: settings.max_stream_duration,
            watch: Some(StreamWatch::watch(&state.streams, &key.key_hash)),
        },
        error_family,
    );
    Ok(match (length, streaming) {
        (Some(len), false) => builder.body(SizedStream::new(len, metered)),
        _ if strip_usage => builder.body(BodyStream::new(DropUsageChunk::new(metered))),
        _ => builder.body(BodyStream::new(metered)),
    })
}

/// A JSON body on its way upstream.
struct Body {
    value: Value,
    /// The bytes as received, while the gate has changed nothing.
    raw: Option<Bytes>,
}

impl Body {
    fn bytes(&self) -> Bytes {
        match &self.raw {
            Some(raw) => raw.clone(),
            None => Bytes::from(serde_json::to_vec(&self.value).unwrap_or_default()),
        }
    }

    /// The facts of exactly what will be forwarded, read from those bytes with
    /// the same rules as the client's: a change can never slip past a check.
    fn reread(&mut self, kind: Kind) -> Result<Facts, ProxyError> {
        if self.raw.is_some() {
            return body::facts(kind, &self.value);
        }
        let bytes = self.bytes();
        let forwarded = body::parse_strict(&bytes)?;
        let facts = body::facts(kind, &forwarded)?;
        self.value = forwarded;
        self.raw = Some(bytes);
        Ok(facts)
    }

    /// Sets the output maximum the upstream obeys on this route.
    fn set_output(&mut self, kind: Kind, max: i64) -> Result<Facts, ProxyError> {
        if clamps::lower_output(kind, &mut self.value, max) {
            self.raw = None;
        }
        self.reread(kind)
    }
}

/// How many times admission tries again with a smaller output after another
/// request took part of what was left.
const ADMISSION_ATTEMPTS: usize = 3;

async fn admit(
    state: &Data<ProxyState>,
    key: &Arc<KeyRecord>,
    route: &Route,
    facts: &mut Facts,
    mut body: Option<Body>,
    outbound: Outbound,
) -> Result<(Ticket, crate::domain::limits::Usage, Outbound), ProxyError> {
    let limits = &key.fields.limits;
    // Listings, management and count_tokens use no model tokens: they reserve none.
    let counts_tokens = limits.has_token_limit() && route.kind.reports_usage();
    // The tokenizer runs only when some token limit needs the estimate now,
    // and only for a key that has room left by what it last read.
    let prompt_estimate = match (&body, counts_tokens) {
        (Some(b), true) => {
            precheck(key, &state.windows())?;
            let pending =
                state.tokenizer.try_count(key.id, body::prompt_text(&b.value)).map_err(tokenizer_busy)?;
            Some(pending.tokens().await)
        }
        _ => None,
    };
    let prompt = prompt_estimate.unwrap_or(0);
    // With token limits, a generating request's output maximum is lowered to
    // what the key has left, in the forwarded body, so the upstream stops where
    // the reservation ends. A request that sets no maximum reserves
    // DEFAULT_OUTPUT_RESERVATION and is left as it is while that fits; once
    // less than that is left, what is left becomes its maximum.
    let default_output = state.settings.default_output_reservation;
    let bounded_output = counts_tokens && route.kind.generates() && body.is_some();
    let mut output = if bounded_output {
        let wanted = facts.max_output.unwrap_or(default_output);
        let windows = state.windows();
        let room = room_or_refusal(limits, &key.usage_at(&windows), prompt, wanted, &windows)
            // The cached usage let this through the precheck: the next request reads it fresh.
            .inspect_err(|_| state.keys.forget(&key.key_hash))?;
        (facts.max_output.is_some() || room < wanted).then_some(room)
    } else {
        None
    };
    let model = facts.models.first().map(|m| model::normalize(m)).unwrap_or_default();
    let mut attempt = 0;
    let (reservation_id, usage) = loop {
        attempt += 1;
        if let (Some(max), Some(b)) = (output, body.as_mut()) {
            if facts.max_output != Some(max) {
                *facts = b.set_output(route.kind, max)?;
                check_models(key, &facts.models)?;
            }
        }
        let reserve = match (counts_tokens, route.kind.generates()) {
            (false, _) => 0,
            (true, false) => reservation::tokens(prompt, 0),
            (true, true) => {
                reservation::tokens(prompt, facts.max_output.or(output).unwrap_or(default_output))
            }
        };
        let windows = state.windows();
        let admission = Admission {
            key_id: key.id,
            key_hash: &key.key_hash,
            windows,
            counts_in_request_quotas: route.kind.counts_in_request_quotas(),
            reserve_tokens: reserve,
            prompt_estimate: prompt,
            model: &model,
            route: route.name,
            instance_id: &state.instance_id,
        };
        let admitted = state.store.admit(&admission).await.map_err(|e| {
            log::error!("admission failed: {e}");
            ProxyError::Unavailable("the gate's database is unavailable; try again shortly".into())
        })?;
        match admitted {
            Admitted::Yes { reservation_id, usage } => break (reservation_id, usage),
            Admitted::KeyGone => {
                state.keys.clear();
                return Err(ProxyError::Unauthorized(
                    "API key is no longer valid (deactivated, rotated, expired or deleted)".into(),
                ));
            }
            Admitted::Refused { limits, usage } => {
                // The cached usage let this through: the next request reads it fresh.
                state.keys.forget(&key.key_hash);
                // Another request may have taken part of what was left since the
                // key was read: lower the output to what is left now and try again.
                if bounded_output {
                    let current = output.unwrap_or(default_output);
                    let lower = room_or_refusal(&limits, &usage, prompt, current, &windows)?;
                    if lower < current && attempt < ADMISSION_ATTEMPTS {
                        output = Some(lower);
                        continue;
                    }
                }
                return Err(refusal(&limits, &usage, reserve, &windows));
            }
        }
    };
    let outbound = match (&body, outbound) {
        (Some(b), Outbound::Bytes(_)) => Outbound::Bytes(b.bytes()),
        (_, other) => other,
    };
    let ticket = Ticket {
        state: state.clone(),
        reservation_id,
        key_id: key.id,
        model,
        route: route.name,
        started: Instant::now(),
        // With an estimate made, the parsed body need not live as long as the stream.
        body: if prompt_estimate.is_some() { None } else { body.map(|b| Arc::new(b.value)) },
        prompt_estimate,
        reports_usage: route.kind.reports_usage(),
    };
    Ok((ticket, usage, outbound))
}

/// Refuses, before any tokenizer work, a key that has no room left by the
/// usage read with it. That read may be up to KEY_CACHE_TTL_MS old: it can
/// only have missed use since, so it never refuses what admission would take,
/// except on concurrency, which is left to admission.
fn precheck(key: &KeyRecord, windows: &Windows) -> Result<(), ProxyError> {
    let limits = Limits { max_concurrent: None, ..key.fields.limits };
    let usage = key.usage_at(windows);
    match first_violation(&limits, &usage, 1) {
        None => Ok(()),
        Some(_) => Err(refusal(&limits, &usage, 1, windows)),
    }
}

fn tokenizer_busy(busy: Busy) -> ProxyError {
    match busy {
        Busy::Full => ProxyError::Unavailable(
            "the gate's tokenizer is busy counting other requests; try again shortly (TOKENIZER_QUEUE)"
                .into(),
        ),
        Busy::KeyFull(n) => ProxyError::Limited {
            kind: LimitKind::Concurrency,
            retry_after: 1,
            message: format!(
                "this key already has {n} requests waiting for the gate's tokenizer (TOKENIZER_QUEUE_PER_KEY)"
            ),
        },
    }
}

/// The output a request may have, or the refusal that says why it has none.
fn room_or_refusal(
    limits: &Limits,
    usage: &Usage,
    prompt: i64,
    wanted: i64,
    windows: &Windows,
) -> Result<i64, ProxyError> {
    match reservation::output_room(limits, usage, prompt, wanted) {
        Room::Output(n) => Ok(n),
        Room::None(kind, left) => Err(ProxyError::Limited {
            kind,
            retry_after: ratelimit::retry_after(kind, windows),
            message: format!(
                "this request's prompt (about {prompt} tokens) leaves no room for output in what this key has left \
                 ({left} tokens of {}); send a shorter prompt, or ask the gate's admin for more",
                kind.field()
            ),
        }),
    }
}

/// The 429 for a refused admission, naming the limit that is tightest now.
fn refusal(limits: &Limits, usage: &Usage, reserve: i64, windows: &Windows) -> ProxyError {
    // Another request may have freed room between the two reads; the
    // refusal still stands, it names the limit that is tightest now.
    let kind = first_violation(limits, usage, reserve).unwrap_or(LimitKind::Concurrency);
    let message = match kind {
        LimitKind::Concurrency => "too many requests in flight for this key (max_concurrent)".to_owned(),
        k if k.is_rate() => format!("rate limit reached for this key ({})", k.field()),
        k => format!("quota exhausted for this key ({})", k.field()),
    };
    ProxyError::Limited { kind, retry_after: ratelimit::retry_after(kind, windows), message }
}

async fn read_body(
    req: &HttpRequest,
    payload: &mut web::Payload,
    settings: &crate::config::Settings,
) -> Result<Bytes, ProxyError> {
    let limit = settings.body_limit;
    let mut pace = BodyPace::new(settings.request_body_timeout, settings.request_body_min_rate);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::TooLarge(limit));
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = pace.next(payload).await? {
        let chunk =
            chunk.map_err(|e| ProxyError::BadRequest(format!("request body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ProxyError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.is_empty() {
        return Err(ProxyError::BadRequest("request body is empty; expected a JSON object".into()));
    }
    Ok(buf.freeze())
}

fn check_models(key: &KeyRecord, models: &[String]) -> Result<(), ProxyError> {
    let Some(list) = &key.fields.models else { return Ok(()) };
    match models.iter().find(|m| !list.allows(m)) {
        Some(m) => Err(ProxyError::Forbidden(format!(
            "model '{}' is not allowed for this key",
            crate::domain::lengths::shown(m)
        ))),
        None => Ok(()),
    }
}

fn refused_route(req: &HttpRequest, refusal: Refusal) -> ProxyError {
    // The path is the client's: a long one is shortened, not repeated.
    let path = crate::domain::lengths::shown(req.path());
    match refusal {
        Refusal::NeverForwarded => {
            ProxyError::Forbidden(format!("{} {path} is never forwarded by this gate", req.method()))
        }
        Refusal::NotAllowed => {
            ProxyError::Forbidden(format!("{} {path} is not a route this gate forwards", req.method()))
        }
    }
}

fn upstream_path_and_query(req: &HttpRequest, route: &Route, strip_key: bool) -> String {
    let query = req.query_string();
    if query.is_empty() {
        return route.upstream_path.clone();
    }
    let query = if strip_key {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "api_key" && k != "key"),
            )
            .finish()
    } else {
        query.to_owned()
    };
    if query.is_empty() {
        route.upstream_path.clone()
    } else {
        format!("{}?{query}", route.upstream_path)
    }
}

fn is_listing(kind: Kind) -> bool {
    matches!(kind, Kind::Tags | Kind::Ps | Kind::OpenAiModels)
}

/// Drops the models a key may not use from `/api/tags`, `/api/ps` and `/v1/models`.
fn filter_listing(kind: Kind, raw: &[u8], allowed: &crate::domain::model::ModelList) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<Value>(raw) else {
        return Bytes::from_static(b"{}");
    };
    let (array, name_fields): (&str, &[&str]) = match kind {
        Kind::OpenAiModels => ("data", &["id"]),
        _ => ("models", &["name", "model"]),
    };
    if let Some(Value::Array(items)) = value.get_mut(array) {
        items.retain(|item| {
            name_fields
                .iter()
                .any(|f| item.get(*f).and_then(Value::as_str).is_some_and(|n| allowed.allows(n)))
        });
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn add_headers(builder: &mut actix_web::HttpResponseBuilder, headers: &Headers) {
    for (name, value) in headers {
        builder.insert_header((name.clone(), value.clone()));
    }
}

fn log_refusal(state: &ProxyState, req: &HttpRequest, error: &ProxyError) {
    // Debug level: a client hammering a spent quota must not flood the log; the usage log has them all.
    log::debug!("refused {} {}: {} {}", req.method(), req.path(), error.status().as_u16(), error.code());
    state.usage_log.record(&UsageEvent {
        ts: chrono::Utc::now().to_rfc3339(),
        event: "refused",
        key_id: None,
        model: "",
        route: req.path(),
        status: error.code(),
        http_status: error.status().as_u16(),
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
        estimated: false,
        latency_ms: 0,
    });
}
