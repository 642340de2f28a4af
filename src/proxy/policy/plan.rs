//! The plan: what reaches the upstream once the route policy has had its say.
//!
//! A JSON body is checked as sent, then changed (aliases, model mapping,
//! clamps, usage reporting); whatever changed, what is forwarded is read
//! again, so that the model checked and the tokens reserved are the ones sent.

use super::body::{self, Facts};
use super::images::{self, ImageClient};
use super::routes::{Kind, Refusal, Route};
use super::{clamps, cloud, rewrite, store, store_version};
use crate::config::Settings;
use crate::domain::lengths::shown;
use crate::proxy::body_pace::{self, Paced};
use crate::proxy::error::ProxyError;
use crate::proxy::forward::{Outbound, Outgoing};
use crate::proxy::request_id::RequestId;
use crate::proxy::settle::Ticket;
use crate::proxy::{models, ProxyState};
use crate::store::KeyRecord;
use actix_web::http::Method;
use actix_web::web::{self, Bytes};
use actix_web::HttpRequest;
use serde_json::Value;
use std::sync::Arc;

/// A JSON body on its way upstream.
pub struct Body {
    pub value: Value,
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

    /// Takes out a key sent in the body: the client's credentials never go upstream.
    pub fn take_key(&mut self) -> Option<String> {
        let removed = self.value.as_object_mut().and_then(|o| o.remove("api_key"));
        if removed.is_some() {
            self.raw = None;
        }
        match removed {
            Some(Value::String(key)) => Some(key),
            _ => None,
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
    pub fn set_output(&mut self, kind: Kind, max: i64) -> Result<Facts, ProxyError> {
        if clamps::lower_output(kind, &mut self.value, max) {
            self.raw = None;
        }
        self.reread(kind)
    }
}

/// The request body, read at most once: for a key sent in it, or for the plan.
pub struct Incoming {
    payload: web::Payload,
    json: Option<Body>,
}

impl Incoming {
    pub fn new(payload: web::Payload) -> Incoming {
        Incoming { payload, json: None }
    }

    /// The body as strict JSON, read on first use.
    pub async fn json(&mut self, req: &HttpRequest, settings: &Settings) -> Result<&mut Body, ProxyError> {
        let body = match self.json.take() {
            Some(body) => body,
            None => read_json(req, &mut self.payload, settings).await?,
        };
        Ok(self.json.insert(body))
    }
}

async fn read_json(
    req: &HttpRequest,
    payload: &mut web::Payload,
    settings: &Settings,
) -> Result<Body, ProxyError> {
    let raw = body_pace::read_body(req, payload, settings).await?;
    Ok(Body { value: body::parse_strict(&raw)?, raw: Some(raw) })
}

pub struct Plan {
    pub route: Route,
    /// A JSON body, as it will be forwarded.
    pub body: Option<Body>,
    /// What policy needs from that body.
    pub facts: Facts,
    /// A blob upload, streamed through as it arrives.
    upload: Option<Paced<web::Payload>>,
    /// The client did not ask for the usage chunk the gate asked for: it is taken out again.
    pub strip_usage: bool,
    /// Remote images are only looked at here; they are fetched once admitted.
    remote_images: bool,
    pub path_and_query: String,
    /// The backend a manage request names, if any.
    pub backend: Option<String>,
}

/// The route, if this gate forwards it and the key has its scope.
pub fn permit(
    req: &HttpRequest,
    key: &KeyRecord,
    route: Result<Route, Refusal>,
) -> Result<Route, ProxyError> {
    // The path is the client's: a long one is shortened, not repeated.
    let path = shown(req.path());
    let route = route.map_err(|refusal| match refusal {
        Refusal::NeverForwarded => {
            ProxyError::Forbidden(format!("{} {path} is never forwarded by this gate", req.method()))
        }
        Refusal::NotAllowed => {
            ProxyError::Forbidden(format!("{} {path} is not a route this gate forwards", req.method()))
        }
    })?;
    if !key.fields.scopes.contains(route.scope) {
        return Err(ProxyError::Forbidden(format!(
            "this key lacks the '{}' scope needed for {} {path}",
            route.scope,
            req.method(),
        )));
    }
    Ok(route)
}

pub async fn plan(
    req: &HttpRequest,
    state: &ProxyState,
    client: &awc::Client,
    key: &KeyRecord,
    route: Route,
    mut incoming: Incoming,
) -> Result<Plan, ProxyError> {
    let settings = &state.settings;
    let kind = route.kind;
    let (path_and_query, backend) = upstream_path_and_query(req, &route, settings.allow_key_in_query);
    let mut plan = Plan {
        route,
        body: None,
        facts: Facts::default(),
        upload: None,
        strip_usage: false,
        remote_images: false,
        path_and_query,
        backend,
    };
    if kind.has_json_body() {
        let mut body = match incoming.json.take() {
            Some(body) => body,
            None => read_json(req, &mut incoming.payload, settings).await?,
        };
        rewrite(&mut plan, &mut body, state, client, key).await?;
        plan.facts = body.reread(kind)?;
        check_models(key, &plan.facts.models)?;
        cloud::check(key, &plan.facts.models, (kind == Kind::Create).then_some(&body.value))?;
        store::check(kind, &body.value, &settings.pull_allowed_registries)?;
        plan.body = Some(body);
    } else if kind == Kind::Blob && req.method() == Method::POST {
        // Model layers are gigabytes: streamed through as they arrive, not held
        // or limited in size, but held to the body pace.
        plan.upload =
            Some(Paced::new(incoming.payload, settings.request_body_timeout, settings.request_body_min_rate));
    }
    if kind == Kind::OpenAiModel {
        let model = plan.route.upstream_path.trim_start_matches("/v1/models/");
        let model = [model.to_owned()];
        check_models(key, &model)?;
        cloud::check(key, &model, None)?;
    }
    if kind.is_manage() {
        // Last: a request refused for what it asks never waits on a probe.
        store_version::check(state, client, plan.backend.as_deref()).await?;
    }
    Ok(plan)
}

/// Checked as sent, then changed: aliases, model mapping, clamps, usage reporting.
async fn rewrite(
    plan: &mut Plan,
    body: &mut Body,
    state: &ProxyState,
    client: &awc::Client,
    key: &KeyRecord,
) -> Result<(), ProxyError> {
    let (kind, settings) = (plan.route.kind, &state.settings);
    // The client's credentials never go upstream, whichever way the key came.
    body.take_key();
    let value = &mut body.value;
    body::facts(kind, value)?;
    let mut changed = models::apply_aliases(key, value);
    if matches!(kind, Kind::AnthropicMessages | Kind::AnthropicCountTokens) {
        changed |= models::map_unknown_anthropic_model(state, client, value).await;
    }
    changed |= clamps::apply(kind, value, &key.fields.clamps, settings.max_keep_alive)?;
    if matches!(kind, Kind::OpenAiChat | Kind::OpenAiResponses) {
        plan.remote_images = images::precheck(value, settings)?;
    }
    if matches!(kind, Kind::OpenAiChat | Kind::OpenAiCompletions)
        && value.get("stream").and_then(Value::as_bool) == Some(true)
    {
        plan.strip_usage = rewrite::request_usage(value);
        changed |= plan.strip_usage;
    }
    if changed {
        body.raw = None;
    }
    Ok(())
}

impl Plan {
    /// The request to send upstream, but for its body.
    pub fn outgoing<'a>(&'a self, req: &'a HttpRequest, request_id: &'a RequestId) -> Outgoing<'a> {
        // A HEAD of a listing asks the upstream with GET, so its head (length
        // included) is that of the filtered listing; the listener sends the head
        // alone. A blob's HEAD stays a HEAD: Ollama answers it without a body.
        static GET: Method = Method::GET;
        let method =
            if req.method() == Method::HEAD && self.route.kind != Kind::Blob { &GET } else { req.method() };
        Outgoing {
            method,
            path_and_query: &self.path_and_query,
            headers: req.headers(),
            request_id,
            trace: None,
        }
    }

    /// What goes upstream once admitted: the body as admission left it, with
    /// remote images fetched into it. The parsed body goes to the ticket when
    /// its settlement may need to estimate the prompt.
    pub async fn outbound(
        &mut self,
        mut ticket: Ticket,
        images: &ImageClient,
        settings: &Settings,
    ) -> Result<(Ticket, Outbound), ProxyError> {
        if let Some(upload) = self.upload.take() {
            return Ok((ticket, Outbound::Stream(upload)));
        }
        let Some(body) = self.body.take() else { return Ok((ticket, Outbound::Empty)) };
        let bytes = body.bytes();
        if ticket.terms.prompt_estimate.is_none() {
            // With an estimate made, the parsed body need not live as long as the stream.
            ticket.body = Some(Arc::new(body.value));
        }
        if !self.remote_images {
            return Ok((ticket, Outbound::Bytes(bytes)));
        }
        let (ticket, bytes) = images::inline(ticket, bytes, images, settings).await?;
        Ok((ticket, Outbound::Bytes(bytes)))
    }
}

pub fn check_models(key: &KeyRecord, models: &[String]) -> Result<(), ProxyError> {
    let Some(list) = &key.fields.models else { return Ok(()) };
    match models.iter().find(|m| !list.allows(m)) {
        Some(m) => Err(ProxyError::Forbidden(format!("model '{}' is not allowed for this key", shown(m)))),
        None => Ok(()),
    }
}

/// The path and query that go upstream, and the backend a manage request
/// names (`?backend=`, the gate's own parameter). The key's parameters,
/// a signed request's `ts` and `backend` are taken out; a query with none
/// of them is passed as it came.
fn upstream_path_and_query(req: &HttpRequest, route: &Route, strip_key: bool) -> (String, Option<String>) {
    let query = req.query_string();
    let signed = crate::proxy::signed::was_signed(req);
    let ours =
        |k: &str| k == "backend" || (strip_key && (k == "api_key" || k == "key")) || (signed && k == "ts");
    let pairs: Vec<_> = url::form_urlencoded::parse(query.as_bytes()).collect();
    if !pairs.iter().any(|(k, _)| ours(k)) {
        let path = if query.is_empty() {
            route.upstream_path.clone()
        } else {
            format!("{}?{query}", route.upstream_path)
        };
        return (path, None);
    }
    let backend = pairs.iter().rev().find(|(k, _)| k == "backend").map(|(_, v)| v.to_string());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(k, _)| !ours(k)))
        .finish();
    let path = if query.is_empty() {
        route.upstream_path.clone()
    } else {
        format!("{}?{query}", route.upstream_path)
    };
    (path, backend)
}
