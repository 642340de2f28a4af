//! Admission: one transaction that counts the request and reserves its
//! tokens, or the refusal that says which limit stands in the way.

use super::error::ProxyError;
use super::exchange::Exchange;
use super::policy::body;
use super::policy::plan::{check_models, Plan};
use super::ratelimit;
use super::reservation::{self, Room};
use super::settle::{Settler, Terms, Ticket};
use super::ProxyState;
use crate::domain::limits::{LimitKind, Limits, Usage};
use crate::domain::model;
use crate::domain::people::{self, Scope};
use crate::domain::windows::Windows;
use crate::metrics::DbOp;
use crate::store::{Admission, Admitted, KeyRecord};
use crate::tokens::Busy;
use std::time::Instant;

/// How many times admission tries again with a smaller output after another
/// request took part of what was left.
const ADMISSION_ATTEMPTS: usize = 3;

/// Admits the planned request against the limits of the key, its user and
/// the user's team (and their entries for the model); the ticket it returns
/// is settled once the request ends, however it ends.
pub async fn admit(
    state: &ProxyState,
    key: &KeyRecord,
    plan: &mut Plan,
    ex: &mut Exchange,
) -> Result<Ticket, ProxyError> {
    let Plan { route, body, facts, .. } = plan;
    let model = facts.models.first().map(|m| model::normalize(m)).unwrap_or_default();
    let weight = state.runtime.model_weights().micros_for(&model);
    ex.tally.model = super::measure::model_label(state, key, &model);
    // Listings, management and count_tokens use no model tokens: they reserve none.
    let counts_tokens = key.has_token_limit() && route.kind.reports_usage();
    // The tokenizer runs only when some token limit needs the estimate now,
    // and only for a key that has room left by what it last read.
    let prompt_estimate = match (&body, counts_tokens) {
        (Some(b), true) => {
            precheck(key, &model, &state.windows())?;
            let pending =
                state.tokenizer.try_count(key.id, body::prompt_text(&b.value)).map_err(tokenizer_busy)?;
            Some(pending.tokens().await)
        }
        _ => None,
    };
    let prompt = prompt_estimate.unwrap_or(0);
    // With token limits, a generating request's output maximum is lowered to
    // what every level has left, in the forwarded body, so the upstream stops
    // where the reservation ends. A request that sets no maximum reserves
    // DEFAULT_OUTPUT_RESERVATION and is left as it is while that fits; once
    // less than that is left, what is left becomes its maximum.
    let default_output = state.settings.default_output_reservation;
    let bounded_output = counts_tokens && route.kind.generates() && body.is_some();
    let mut output = if bounded_output {
        let wanted = facts.max_output.unwrap_or(default_output);
        let windows = state.windows();
        let room = room_or_refusal(&key.scopes(&model, &windows), prompt, wanted, weight, &windows)
            // The cached usage let this through the precheck: the next request reads it fresh.
            .inspect_err(|_| state.keys.forget(&key.key_hash))?;
        (facts.max_output.is_some() || room < wanted).then_some(room)
    } else {
        None
    };
    let scopes = key.scopes(&model, &state.windows());
    let mut budgets: Vec<i64> = scopes.iter().filter_map(|s| s.budget_id).collect();
    budgets.sort_unstable();
    let mut attempt = 0;
    let (reservation_id, usage, admission) = loop {
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
            key_hash: key.key_hash.clone(),
            windows,
            counts_in_request_quotas: route.kind.counts_in_request_quotas(),
            reserve_tokens: people::weighted(reserve, weight),
            prompt_estimate: prompt,
            model: model.clone(),
            route: route.name,
            instance_id: state.instance_id.to_string(),
            budgets: budgets.clone(),
            user_id: key.user.as_ref().map(|u| u.id),
            team_id: key.team.as_ref().map(|t| t.id),
            weighted_prompt: people::weighted(prompt, weight),
        };
        let admitted = state.metrics.timed(DbOp::Admission, state.store.admit(&admission)).await;
        let admitted = admitted.map_err(ProxyError::database("admission", &ex.request_id))?;
        match admitted {
            Admitted::Yes { reservation_id, usage } => break (reservation_id, usage, admission),
            Admitted::KeyGone => {
                state.keys.clear();
                return Err(ProxyError::Unauthorized(
                    "API key is no longer valid (deactivated, rotated, expired or deleted)".into(),
                ));
            }
            Admitted::Refused(now) => {
                // The cached usage let this through: the next request reads it fresh.
                state.keys.forget(&key.key_hash);
                let fresh = now.scopes(&model, &windows);
                // Another request may have taken part of what was left since the
                // key was read: lower the output to what is left now and try again.
                if bounded_output {
                    let current = output.unwrap_or(default_output);
                    let lower = room_or_refusal(&fresh, prompt, current, weight, &windows)?;
                    if lower < current && attempt < ADMISSION_ATTEMPTS {
                        output = Some(lower);
                        continue;
                    }
                }
                return Err(refusal(&fresh, admission.reserve_tokens, &windows));
            }
        }
    };
    // The key's counters are the ones just written; the other levels' are
    // as read with the key (at most KEY_CACHE_TTL_MS old), with this request.
    let levels: Vec<(Limits, Usage)> = scopes
        .iter()
        .map(|s| match s.budget_id {
            None => (s.limits, usage),
            Some(_) => (s.limits, with_one_more(s.usage)),
        })
        .collect();
    ex.show_limits(&levels, &state.windows());
    Ok(Ticket {
        settler: Settler::of(state),
        reservation_id,
        key_id: key.id,
        model,
        route: route.name,
        started: Instant::now(),
        // Handed over with the body on its way upstream (`Plan::outbound`).
        body: None,
        terms: Terms { reports_usage: route.kind.reports_usage(), prompt_estimate },
        weight,
        soft_limits: crate::alerts::soft::watch(
            key,
            &usage,
            admission.reserve_tokens,
            admission.counts_in_request_quotas,
            &admission.windows,
        ),
        budgets,
        slot: None,
        tally: ex.tally.hand_over(),
        request_id: ex.request_id.clone(),
        // The handler hands the trace over with the admission's span (`Exchange::admitted`).
        trace: None,
    })
}

/// Usage as read, plus the request just admitted.
fn with_one_more(mut usage: Usage) -> Usage {
    usage.minute.requests += 1;
    usage.day.requests += 1;
    usage.month.requests += 1;
    usage.total.requests += 1;
    usage
}

/// Refuses, before any tokenizer work, a key that has no room left at some
/// level by the usage read with it. That read may be up to KEY_CACHE_TTL_MS
/// old: it can only have missed use since, so it never refuses what
/// admission would take, except on concurrency, which is left to admission.
fn precheck(key: &KeyRecord, model: &str, windows: &Windows) -> Result<(), ProxyError> {
    let mut scopes = key.scopes(model, windows);
    for s in &mut scopes {
        s.limits.max_concurrent = None;
    }
    match people::first_violation_in(&scopes, 1) {
        None => Ok(()),
        Some(_) => Err(refusal(&scopes, 1, windows)),
    }
}

pub fn tokenizer_busy(busy: Busy) -> ProxyError {
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

/// The output a request may have at every level, or the refusal that says
/// which level leaves it none.
fn room_or_refusal(
    scopes: &[Scope<'_>],
    prompt: i64,
    wanted: i64,
    weight: i64,
    windows: &Windows,
) -> Result<i64, ProxyError> {
    match reservation::output_room_in(scopes, prompt, wanted, weight) {
        (_, Room::Output(n)) => Ok(n),
        (level, Room::None(kind, left)) => {
            let who = scopes.get(level).map(Scope::label).unwrap_or_else(|| "this key".into());
            Err(ProxyError::Limited {
                kind,
                retry_after: ratelimit::retry_after(kind, windows),
                message: format!(
                    "this request's prompt (about {prompt} tokens) leaves no room for output in what {who} has \
                     left ({left} tokens of {}: {}); send a shorter prompt, or ask the gate's admin for more",
                    kind.field(),
                    kind.label()
                ),
            })
        }
    }
}

/// The 429 for a refused admission, naming the level and the limit that is
/// tightest now: `quota exhausted for team 'physics': daily tokens (daily_tokens)`.
fn refusal(scopes: &[Scope<'_>], reserve: i64, windows: &Windows) -> ProxyError {
    // Another request may have freed room between the two reads; the
    // refusal still stands, it names the limit that is tightest now.
    let (who, kind) = match people::first_violation_in(scopes, reserve) {
        Some((scope, kind)) => (scope.label(), kind),
        None => ("this key".to_owned(), LimitKind::Concurrency),
    };
    // The key's own limits keep their short form: `quota exhausted for this key (daily_tokens)`.
    let what = match who.as_str() {
        "this key" => format!(" ({})", kind.field()),
        _ => format!(": {} ({})", kind.label(), kind.field()),
    };
    let message = match kind {
        LimitKind::Concurrency => format!("too many requests in flight for {who}{what}"),
        k if k.is_rate() => format!("rate limit reached for {who}{what}"),
        _ => format!("quota exhausted for {who}{what}"),
    };
    ProxyError::Limited { kind, retry_after: ratelimit::retry_after(kind, windows), message }
}
