//! The answer on its way back: the upstream's head copied, listings filtered
//! to the key's models, and the body passed through the usage tap.

use super::admission::tokenizer_busy;
use super::error::ProxyError;
use super::exchange::Exchange;
use super::forward::ResponseHeaders;
use super::metered::{CutOff, Metered};
use super::policy::plan::Plan;
use super::policy::routes::Kind;
use super::policy::{body, cloud};
use super::settle::{End, Held, Ticket};
use super::stream_watch::StreamWatch;
use super::tap::{DropUsageChunk, Tap};
use super::ProxyState;
use crate::domain::model::ModelList;
use crate::domain::scopes::Scope;
use crate::store::KeyRecord;
use actix_web::body::{BodyStream, SizedStream};
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, HttpResponse, HttpResponseBuilder};
use awc::ClientResponse;
use serde_json::Value;

/// The upstream's answer, relayed; the ticket is settled when it ends.
pub async fn relay(
    mut reply: ClientResponse,
    state: &Data<ProxyState>,
    key: &KeyRecord,
    plan: &Plan,
    ticket: Ticket,
    ex: &Exchange,
) -> Result<HttpResponse, ProxyError> {
    let status = reply.status();
    let kind = plan.route.kind;
    let head = Head::of(&reply, ex);
    // A key with a model allow-list sees only its models in the listings,
    // and one without the `cloud` scope no cloud models.
    if kind.is_listing() && status.is_success() && Seen::of(key).filters() {
        return listing(reply, head.builder, ticket, kind, Seen::of(key)).await;
    }
    let Head { mut builder, content_type, length } = head;
    let sse = content_type.starts_with("text/event-stream");
    let streaming = sse || content_type.starts_with("application/x-ndjson");
    let settings = &state.settings;
    let metered = Metered::new(
        reply.take_payload(),
        Tap::for_route(kind, plan.facts.stream, sse),
        ticket,
        status.as_u16(),
        CutOff {
            idle: settings.stream_idle_timeout,
            max_duration: settings.max_stream_duration,
            watch: Some(StreamWatch::watch(&state.streams, &key.key_hash)),
        },
        streaming.then_some(ex.family),
    );
    Ok(match (length, streaming) {
        (Some(len), false) => builder.body(SizedStream::new(len, metered)),
        _ if plan.strip_usage => builder.body(BodyStream::new(DropUsageChunk::new(metered))),
        _ => builder.body(BodyStream::new(metered)),
    })
}

/// The head of the answer: the upstream's status and the headers that pass,
/// then the gate's own.
struct Head {
    builder: HttpResponseBuilder,
    content_type: String,
    length: Option<u64>,
}

impl Head {
    fn of(reply: &ClientResponse, ex: &Exchange) -> Head {
        let mut builder = HttpResponse::build(reply.status());
        let mut content_type = String::new();
        let mut length: Option<u64> = None;
        let passes = ResponseHeaders::of(reply.headers());
        for (name, value) in reply.headers() {
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
        ex.add_headers(&mut builder);
        Head { builder, content_type, length }
    }
}

/// `/v1/messages/count_tokens`, answered by the gate itself: counted like any
/// request, charged nothing. The count waits on the tokenizer pool, and a full
/// pool gives the request back.
pub async fn count_tokens(
    state: &ProxyState,
    key: &KeyRecord,
    plan: &Plan,
    ticket: Ticket,
    ex: &Exchange,
) -> Result<HttpResponse, ProxyError> {
    let text = plan.body.as_ref().map(|b| body::prompt_text(&b.value)).unwrap_or_default();
    let pending = match state.tokenizer.try_count(key.id, text) {
        Ok(pending) => pending,
        Err(busy) => return Err(ticket.give_back(End::NotForwarded, tokenizer_busy(busy))),
    };
    let mut held = Held::new(ticket);
    let tokens = pending.tokens().await;
    let Some(ticket) = held.take() else {
        return Err(ProxyError::Unavailable("the request was settled while its tokens were counted".into()));
    };
    ticket.settle(End::Completed, 200, None);
    let mut reply = HttpResponse::Ok();
    ex.add_headers(&mut reply);
    Ok(reply.json(serde_json::json!({ "input_tokens": tokens })))
}

/// A listing of several backends, each model once, filtered to the key's models.
pub async fn merged_listing(
    state: &ProxyState,
    client: &awc::Client,
    key: &KeyRecord,
    plan: &Plan,
    ticket: Ticket,
    ex: &Exchange,
) -> Result<HttpResponse, ProxyError> {
    let kind = plan.route.kind;
    let merged = match state.upstreams.merged(client, &plan.route.upstream_path).await {
        Ok(merged) => merged,
        Err(e) => {
            log::warn!("listing {}: {e} request_id={}", plan.route.upstream_path, ex.request_id);
            let error = ProxyError::BadGateway("no backend answered the listing".into());
            return Err(ticket.give_back(End::UpstreamUnreachable, error));
        }
    };
    ticket.settle(End::Completed, 200, None);
    let raw = Bytes::from(serde_json::to_vec(&merged).unwrap_or_default());
    let seen = Seen::of(key);
    let body = if seen.filters() { filter_listing(kind, &raw, seen) } else { raw };
    let mut builder = HttpResponse::Ok();
    builder.content_type("application/json; charset=utf-8");
    ex.add_headers(&mut builder);
    Ok(builder.body(body))
}

/// A listing read whole and filtered to the key's models.
async fn listing(
    mut reply: ClientResponse,
    mut builder: HttpResponseBuilder,
    ticket: Ticket,
    kind: Kind,
    seen: Seen<'_>,
) -> Result<HttpResponse, ProxyError> {
    let status = reply.status().as_u16();
    match reply.body().limit(64 * 1024 * 1024).await {
        Ok(raw) => {
            ticket.settle(End::Completed, status, None);
            Ok(builder.body(filter_listing(kind, &raw, seen)))
        }
        Err(e) => {
            ticket.settle(End::UpstreamBroke, status, None);
            Err(ProxyError::BadGateway(format!("upstream listing could not be read: {e}")))
        }
    }
}

/// What of a listing a key sees: the models of its allow-list, if it has
/// one, and cloud models only with the `cloud` scope.
#[derive(Clone, Copy)]
struct Seen<'a> {
    allowed: Option<&'a ModelList>,
    cloud: bool,
}

impl<'a> Seen<'a> {
    fn of(key: &'a KeyRecord) -> Seen<'a> {
        Seen { allowed: key.fields.models.as_ref(), cloud: key.fields.scopes.contains(Scope::Cloud) }
    }

    fn filters(self) -> bool {
        self.allowed.is_some() || !self.cloud
    }

    fn keeps(self, item: &Value, name_fields: &[&str]) -> bool {
        let name = |f: &&str| item.get(*f).and_then(Value::as_str);
        let allowed = match self.allowed {
            Some(list) => name_fields.iter().filter_map(name).any(|n| list.allows(n)),
            None => true,
        };
        allowed && (self.cloud || !cloud::listed_as_cloud(item, name_fields))
    }
}

/// Drops the models a key may not use from `/api/tags`, `/api/ps` and `/v1/models`.
fn filter_listing(kind: Kind, raw: &[u8], seen: Seen<'_>) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<Value>(raw) else {
        return Bytes::from_static(b"{}");
    };
    let (array, name_fields): (&str, &[&str]) = match kind {
        Kind::OpenAiModels => ("data", &["id"]),
        _ => ("models", &["name", "model"]),
    };
    if let Some(Value::Array(items)) = value.get_mut(array) {
        items.retain(|item| seen.keeps(item, name_fields));
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}
