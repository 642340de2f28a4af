//! What an admitted request is charged, and the settlement that records it.
//!
//! Every admitted request holds a [`Ticket`]: its reservation, to be replaced
//! by the real count. However the request ends, the ticket is settled exactly
//! once, by [`Ticket::settle`]: [`charge`] decides from how it ended and what
//! the usage tap read what is billed, and the [`Settler`] writes that off the
//! request path and logs the usage line.

use super::error::ProxyError;
use super::request_id::RequestId;
use super::tap::{Delivered, Reading};
use super::trace::{Finish, RequestTrace};
use crate::clock::Clock;
use crate::domain::people;
use crate::domain::usage::Outcome;
use crate::metrics::{DbOp, Metrics, Tally};
use crate::store::{Settlement, Store};
use crate::telemetry::span;
use crate::tokens::Tokenizer;
use crate::usage_log::{UsageEvent, UsageLog};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How an admitted request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The upstream's answer ended (with an error status, it refused).
    Completed,
    ClientAborted,
    UpstreamBroke,
    UpstreamIdle,
    /// No response at all: the request is given back.
    UpstreamUnreachable,
    /// Admitted, then stopped by the gate before it was sent (an image it
    /// names could not be fetched, or the client left meanwhile): given back.
    NotForwarded,
    /// Ran past `MAX_STREAM_DURATION_SECS`.
    TooLong,
    /// The key was deactivated, rotated, expired or deleted meanwhile.
    KeyRevoked,
}

impl End {
    #[cfg(test)]
    pub const ALL: [End; 8] = [
        End::Completed,
        End::ClientAborted,
        End::UpstreamBroke,
        End::UpstreamIdle,
        End::UpstreamUnreachable,
        End::NotForwarded,
        End::TooLong,
        End::KeyRevoked,
    ];
}

/// What the usage tap read of a response, taken once when it ends.
#[derive(Default)]
pub struct Received {
    /// The counts, and whether the end or an error was seen.
    pub tap: Reading,
    /// The response has an end marker, so its absence means it was cut short.
    pub expects_end: bool,
    /// The generated text that reached the client, for an estimate.
    pub delivered: Delivered,
}

impl Received {
    /// Cut short, or reporting an error: its counts, if any, are not the final ones.
    fn cut_short(&self) -> bool {
        self.tap.upstream_error || (self.expects_end && !self.tap.complete)
    }

    /// The counts as reported, missing ones as zero.
    fn reported(&self) -> (Tokens, Tokens) {
        (Tokens::N(self.tap.prompt.unwrap_or(0)), Tokens::N(self.tap.completion.unwrap_or(0)))
    }
}

/// A token count, or what to count it from at settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    N(i64),
    /// The request's prompt, tokenized.
    Prompt,
    /// The generated text that reached the client, tokenized.
    Delivered,
}

/// What admission fixed that the charge depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// The route's answers carry token counts. Listings, model management and
    /// what the gate answers itself use none: they are charged nothing, exactly.
    pub reports_usage: bool,
    /// The prompt tokens admission estimated, when a token limit needed them.
    pub prompt_estimate: Option<i64>,
}

/// What a request is charged, and what its client is still owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub outcome: Outcome,
    pub prompt: Tokens,
    pub completion: Tokens,
    /// Not the upstream's own final counts.
    pub estimated: bool,
    /// Given back: the request does not count against the request quotas.
    pub refund: bool,
    /// The client has an incomplete stream that does not say so: it ends with an error event.
    pub tell_client: bool,
}

/// The money decision: what a request that ended so, with the tap's reading of
/// its answer (`None` when none passed through a tap), is charged.
pub fn charge(end: End, http_status: u16, read: Option<&Received>, terms: Terms) -> Charge {
    // An answer with an error status that ended normally is the upstream's refusal.
    let refused = end == End::Completed && http_status >= 400;
    let clean = match end {
        // Cut off by the gate: the counts are final only if the end was seen.
        End::TooLong | End::KeyRevoked => read.is_some_and(|r| r.tap.complete && !r.tap.upstream_error),
        _ => read.map_or(!terms.reports_usage, |r| !r.cut_short()),
    };
    let outcome = match end {
        _ if refused => Outcome::UpstreamError,
        End::Completed if clean => Outcome::Ok,
        End::Completed | End::UpstreamBroke => Outcome::UpstreamFailed,
        End::UpstreamIdle => Outcome::UpstreamTimeout,
        End::ClientAborted => Outcome::ClientAborted,
        End::UpstreamUnreachable => Outcome::UpstreamUnreachable,
        End::NotForwarded => Outcome::NotForwarded,
        End::TooLong => Outcome::StreamTooLong,
        End::KeyRevoked => Outcome::KeyRevoked,
    };
    let refund = matches!(end, End::UpstreamUnreachable | End::NotForwarded);
    // The prompt as reported early, or else as estimated.
    let prompt = |reported: Option<i64>| match reported.or(terms.prompt_estimate) {
        Some(n) => Tokens::N(n),
        None => Tokens::Prompt,
    };
    let ((prompt, completion), estimated) = match read {
        _ if refund || !terms.reports_usage => ((Tokens::N(0), Tokens::N(0)), false),
        Some(r) if refused => (r.reported(), false),
        None if refused => ((Tokens::N(0), Tokens::N(0)), false),
        // The final counts arrived: they stand, however the connection ended after them.
        Some(r) if clean && (r.tap.prompt.is_some() || r.tap.completion.is_some()) => (r.reported(), false),
        // Cut short or never counted: the prompt as reported early or
        // estimated, the output as delivered.
        Some(r) => {
            let completion = match r.tap.completion {
                Some(n) if clean => Tokens::N(n),
                _ => Tokens::Delivered,
            };
            ((prompt(r.tap.prompt), completion), true)
        }
        None => ((prompt(None), Tokens::N(0)), true),
    };
    let tell_client = match end {
        // An upstream that closes a chunked body early can look like a normal
        // end; an answer without its end marker was cut short all the same.
        End::Completed => {
            !refused && read.is_some_and(|r| r.expects_end && !r.tap.complete && !r.tap.upstream_error)
        }
        End::ClientAborted | End::UpstreamUnreachable | End::NotForwarded => false,
        _ => true,
    };
    Charge { outcome, prompt, completion, estimated, refund, tell_client }
}

/// What a settlement needs of the gate, and nothing more.
#[derive(Clone)]
pub struct Settler {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub usage_log: UsageLog,
    pub tokenizer: Arc<Tokenizer>,
    pub metrics: Arc<Metrics>,
    pub alerts: crate::alerts::Alerts,
}

impl Settler {
    pub fn of(state: &super::ProxyState) -> Settler {
        Settler {
            store: state.store.clone(),
            clock: state.clock.clone(),
            usage_log: state.usage_log.clone(),
            tokenizer: state.tokenizer.clone(),
            metrics: state.metrics.clone(),
            alerts: state.alerts.clone(),
        }
    }
}

/// An admitted request's reservation, to be replaced by the real count.
pub struct Ticket {
    pub settler: Settler,
    pub reservation_id: i64,
    pub key_id: i64,
    pub model: String,
    pub route: &'static str,
    pub started: Instant,
    /// The request body, for a token estimate when the upstream reports no counts.
    pub body: Option<Arc<Value>>,
    pub terms: Terms,
    /// The model's weight (millionths) when admitted: settlement counts with it.
    pub weight: i64,
    /// The budget rows the reservation holds room on.
    pub budgets: Vec<i64>,
    /// The backend slot the request runs in; freed as soon as it ends, not
    /// once its settlement is written.
    pub slot: Option<crate::upstream::slots::Slot>,
    /// The request's labels and stopwatch for the metrics.
    pub tally: Tally,
    pub request_id: RequestId,
    /// The request's spans, when it is traced: they end with the settlement.
    pub trace: Option<RequestTrace>,
    /// The levels with soft limits and their usage as admitted; `None` for most keys.
    pub soft_limits: Option<Box<crate::alerts::soft::Watch>>,
}

impl Ticket {
    /// Settles the request, however it ended: `read` is what the usage tap
    /// read of an answer that passed through one. Returns what was charged.
    pub fn settle(mut self, end: End, http_status: u16, read: Option<Received>) -> Charge {
        drop(self.slot.take());
        let charge = charge(end, http_status, read.as_ref(), self.terms);
        self.measure_end(charge.outcome);
        let latency_ms = self.started.elapsed().as_millis() as i64;
        let delivered = read.map(|r| r.delivered).unwrap_or_default();
        let settling = self.trace.as_mut().map(|trace| {
            let error = upstream_error(end, http_status);
            trace.upstream_ends(end != End::NotForwarded, http_status, error, &self.model);
            span::now()
        });
        // Shutting down, there is no runtime: the stale-reservation sweep of the next start settles it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.record(charge, http_status, latency_ms, delivered, settling));
        }
        charge
    }

    /// Gives the request back, stopped by `error` before any answer.
    pub fn give_back(mut self, end: End, error: ProxyError) -> ProxyError {
        self.measure_give_back(end, &error);
        self.settle(end, error.status().as_u16(), None);
        error
    }

    async fn record(
        mut self,
        charge: Charge,
        http_status: u16,
        latency_ms: i64,
        mut delivered: Delivered,
        settling: Option<u64>,
    ) {
        let prompt = self.count(charge.prompt, &mut delivered).await;
        let completion = self.count(charge.completion, &mut delivered).await;
        let status = charge.outcome.as_str();
        let settlement = Settlement {
            reservation_id: self.reservation_id,
            key_id: self.key_id,
            prompt_tokens: prompt,
            completion_tokens: completion,
            estimated: charge.estimated,
            status,
            http_status,
            latency_ms,
            refund_request: charge.refund,
            now: self.settler.clock.now().timestamp(),
            weighted_tokens: people::weighted(prompt.saturating_add(completion), self.weight),
            budgets: self.budgets.clone(),
            request_id: Some(self.request_id.to_string()),
        };
        // Counted before the row is written: whoever sees the row sees the tokens.
        self.settler.metrics.charged(&self.tally, Some(self.key_id), prompt, completion);
        let written = settle_until_done(&*self.settler.store, &settlement);
        self.settler.metrics.timed(DbOp::Settlement, written).await;
        // Before the usage log line: a reader who sees the line knows the spans are queued.
        if let (Some(mut trace), Some(settling)) = (self.trace.take(), settling) {
            let failed = (charge.outcome != Outcome::Ok).then_some(status);
            trace.child("settlement", settling, span::now(), None);
            trace.finish(Finish {
                http_status,
                error: failed,
                key_id: Some(self.key_id),
                request_id: self.request_id.as_str(),
                model: Some(&self.model),
                tokens: Some((prompt, completion)),
            });
        }
        if let Some(watch) = &self.soft_limits {
            self.settler.alerts.settled(watch, settlement.weighted_tokens, charge.refund);
        }
        self.settler.usage_log.record(&UsageEvent {
            ts: chrono::Utc::now().to_rfc3339(),
            event: "request",
            key_id: Some(self.key_id),
            model: &self.model,
            route: self.route,
            status,
            http_status,
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            estimated: charge.estimated,
            latency_ms,
            request_id: self.request_id.as_str(),
        });
    }

    async fn count(&self, tokens: Tokens, delivered: &mut Delivered) -> i64 {
        let tokenizer = &self.settler.tokenizer;
        match tokens {
            Tokens::N(n) => n,
            Tokens::Prompt => match &self.body {
                Some(body) => tokenizer.count(super::policy::body::prompt_text(body)).tokens().await,
                None => 0,
            },
            Tokens::Delivered if delivered.is_empty() => 0,
            Tokens::Delivered => std::mem::take(delivered).tokens(tokenizer).await,
        }
    }
}

/// Why the upstream call failed, if it did, for its span.
fn upstream_error(end: End, http_status: u16) -> Option<&'static str> {
    match end {
        End::Completed if http_status >= 400 => Some("upstream_error"),
        End::Completed | End::ClientAborted | End::NotForwarded | End::KeyRevoked => None,
        End::UpstreamBroke => Some("upstream_failed"),
        End::UpstreamIdle => Some("upstream_timeout"),
        End::UpstreamUnreachable => Some("upstream_unreachable"),
        End::TooLong => Some("stream_too_long"),
    }
}

/// A ticket that is given back if the request's future is dropped during an
/// await before forwarding (image fetches, a token count). actix drops it on
/// shutdown; an HTTP/1 client that hangs up is noticed only when the answer is
/// written, so the wait's own bound applies.
pub struct Held(Option<Ticket>);

impl Held {
    pub fn new(ticket: Ticket) -> Held {
        Held(Some(ticket))
    }

    /// The ticket, back from the await; `None` only if it was already settled.
    pub fn take(&mut self) -> Option<Ticket> {
        self.0.take()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(ticket) = self.0.take() {
            // 499: the client closed the connection before the answer.
            ticket.settle(End::NotForwarded, 499, None);
        }
    }
}

/// How long a settlement keeps trying while the database is away. Past that,
/// the reservation is left for the stale-reservation sweep after this process ends.
const SETTLE_RETRY_FOR: Duration = Duration::from_secs(600);

/// Settles, retrying with backoff through a database outage: a reservation
/// left behind by a live process would hold its tokens and concurrency slot.
async fn settle_until_done(store: &dyn Store, settlement: &Settlement) {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match store.settle(settlement).await {
            Ok(_) => return,
            Err(e) if started.elapsed() < SETTLE_RETRY_FOR => {
                log::warn!(
                    "settling reservation {} failed, retrying: {e} request_id={}",
                    settlement.reservation_id,
                    settlement.request_id.as_deref().unwrap_or("-")
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                log::error!(
                    "giving up settling reservation {}: {e} request_id={}",
                    settlement.reservation_id,
                    settlement.request_id.as_deref().unwrap_or("-")
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
