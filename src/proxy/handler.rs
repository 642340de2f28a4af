//! The one handler behind every forwarded route: the proxy's path, phase by
//! phase, over one per-request [`Exchange`].
//!
//! authenticate → plan (route policy, rewrites) → admit (one trip to the
//! database, a [`Ticket`](super::settle::Ticket)) → a backend's slot, in fair
//! turn → forward → relay the answer through the usage tap → settle, exactly
//! once, however the request ends.

use super::error::ProxyError;
use super::exchange::Exchange;
use super::forward::{Queued, Target};
use super::policy::images::ImageClient;
use super::policy::plan::Plan;
use super::policy::plan::{self, Incoming};
use super::policy::routes::{self, Kind};
use super::settle::{End, Held};
use super::{access, admission, auth, forward, respond, ProxyState};
use crate::domain::key::MAX_PRIORITY;
use crate::store::KeyRecord;
use crate::upstream::queue::{Flow, Who};
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use std::cell::Cell;
use std::time::Instant;

pub async fn proxy(
    req: HttpRequest,
    payload: web::Payload,
    state: Data<ProxyState>,
    client: Data<awc::Client>,
    images: Data<ImageClient>,
) -> HttpResponse {
    let mut ex = Exchange::begin(&req, &state);
    match run(&req, payload, &state, &client, &images, &mut ex).await {
        Ok(response) => response,
        Err(error) => ex.refuse(&state, &req, &error),
    }
}

async fn run(
    req: &HttpRequest,
    payload: web::Payload,
    state: &Data<ProxyState>,
    client: &awc::Client,
    images: &ImageClient,
    ex: &mut Exchange,
) -> Result<HttpResponse, ProxyError> {
    // Who calls, and may they call this route at all.
    let route = routes::resolve(req.method(), req.path());
    ex.route(&route);
    let mut body = Incoming::new(payload);
    let key = auth::caller(state, req, &route, &mut body).await?;
    ex.key_id = Some(key.id);
    access::check_address(&state.settings, req, &key)?;
    let route = plan::permit(req, &key, route)?;
    let windows = state.windows();
    // Before admission (a refusal has them too): every level, by the model-less scopes.
    let levels: Vec<_> = key.scopes("", &windows).iter().map(|s| (s.limits, s.usage)).collect();
    ex.show_limits(&levels, &windows);

    // What goes upstream: the body checked, rewritten, and checked again.
    let mut plan = plan::plan(req, state, client, &key, route, body).await?;

    // Admission: one transaction that counts the request and reserves its
    // tokens. Every route is admitted: per-minute limits and concurrency
    // protect the upstream from listings too (see `counts_in_request_quotas`).
    let began = ex.span_start();
    let admitted = admission::admit(state, &key, &mut plan, ex).await;
    let ticket = ex.admitted(admitted, began)?;
    if plan.route.kind == Kind::AnthropicCountTokens {
        return respond::count_tokens(state, &key, &plan, ticket, ex).await;
    }

    // Listings of several backends are merged by the gate.
    if plan.route.kind.is_listing() && state.upstreams.pool().reachable().len() > 1 {
        return respond::merged_listing(state, client, &key, &plan, ticket, ex).await;
    }

    // Forward, with remote images fetched in now that the request is admitted.
    let (mut ticket, outbound) = plan.outbound(ticket, images, &state.settings).await?;
    let gone = || req.conn_data::<crate::conn_limit::Slot>().is_some_and(|c| c.peer_gone());
    let model = ticket.model.clone();
    let waited = Cell::new(None);
    let target = target(state, &key, &plan, &model, &gone, ticket.trace.is_some().then_some(&waited));
    let mut outgoing = plan.outgoing(req, &ex.request_id);
    outgoing.trace = ticket.trace.as_mut().map(|t| t.upstream_begins());
    ticket.leaves_gate();
    // Held: a request dropped while it waits for a slot gives its reservation back.
    let mut held = Held::new(ticket);
    let sent = forward::send(client, &state.upstreams, outgoing, outbound, target).await;
    let Some(mut ticket) = held.take() else {
        return Err(ProxyError::Unavailable("the request was settled while it waited".into()));
    };
    if let (Some(trace), Some((start, end))) = (&mut ticket.trace, waited.get()) {
        trace.waited(start, end);
    }
    let reply = match sent {
        Ok(sent) => {
            ticket.slot = sent.slot;
            sent.response
        }
        Err(e @ (ProxyError::QueueFull { .. } | ProxyError::ClientGone)) => {
            return Err(ticket.give_back(End::NotForwarded, e))
        }
        Err(e) => return Err(ticket.give_back(End::UpstreamUnreachable, e)),
    };

    // A copy of a cloud model is one too: known before the next request.
    if plan.route.kind == Kind::Copy && reply.status().is_success() {
        state.upstreams.relist(client).await;
    }

    // The answer, through the usage tap; the ticket settles when it ends.
    respond::relay(reply, state, &key, &plan, ticket, ex).await
}

/// Where the request may go: generations take a slot in fair turn, manage
/// routes go to the backend named, the rest to any backend with the model.
fn target<'a>(
    state: &ProxyState,
    key: &KeyRecord,
    plan: &'a Plan,
    model: &'a str,
    gone: &'a dyn Fn() -> bool,
    waited: Option<&'a Cell<Option<(u64, u64)>>>,
) -> Target<'a> {
    let kind = plan.route.kind;
    if kind.is_manage() {
        return Target::Named(plan.backend.as_deref());
    }
    if !kind.runs_a_model() {
        return Target::Any { model };
    }
    let flow = match (&key.team, &key.user) {
        (Some(team), _) => Flow::Team(team.id),
        (None, Some(user)) => Flow::User(user.id),
        (None, None) => Flow::Key(key.id),
    };
    Target::Slot(Queued {
        model,
        who: Who { key_id: key.id, flow, weight: key.fields.priority.clamp(1, MAX_PRIORITY) as u32 },
        deadline: Instant::now() + state.upstreams.queue_limits.max_wait,
        gone,
        waited,
    })
}
