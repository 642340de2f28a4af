//! The response stream on its way to the client, and the settlement it owes.
//!
//! `Metered` passes each upstream chunk on as it arrives, lets the usage tap
//! look at it, and enforces the idle timeout, the longest stream duration and
//! the key's revocation. Whatever way the stream ends (finished, upstream
//! broke, upstream went quiet, ran too long, key revoked, client went away and
//! the stream was dropped) the `Ticket` is settled exactly once.

use super::error::ProxyError;
use super::policy::routes::Family;
use super::stream_watch::Watch;
use super::tap::{Delivered, Tap as UsageTap};
use crate::proxy::ProxyState;
use crate::store::Settlement;
use crate::usage_log::UsageEvent;
use actix_web::web::{Bytes, Data};
use futures_util::Stream;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How a metered request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Completed,
    ClientAborted,
    UpstreamBroke,
    UpstreamIdle,
    /// The upstream answered with an error status.
    UpstreamRefused,
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

/// An admitted request's reservation, to be replaced by the real count.
pub struct Ticket {
    pub state: Data<ProxyState>,
    pub reservation_id: i64,
    pub key_id: i64,
    pub model: String,
    pub route: &'static str,
    pub started: Instant,
    /// The request body, for a token estimate when the upstream reports no counts.
    pub body: Option<Arc<Value>>,
    pub prompt_estimate: Option<i64>,
    /// The route's answers carry token counts. Listings, model management and
    /// what the gate answers itself use none: they are charged nothing, exactly.
    pub reports_usage: bool,
}

/// The output tokens to charge.
enum Completion {
    Reported(i64),
    /// The generated text that reached the client, tokenized at settlement.
    Delivered(Delivered),
}

impl Ticket {
    /// Settles a request the gate answered whole without streaming it through
    /// a tap (a filtered listing, `count_tokens`).
    pub fn settle_answered(self, http_status: u16) {
        let end = if http_status >= 400 { End::UpstreamRefused } else { End::Completed };
        self.settle(end, http_status, None);
    }

    pub fn settle(self, end: End, http_status: u16, tap: Option<&mut UsageTap>) {
        let clean = match end {
            // Cut off by the gate: the counts are final only if the end was seen.
            End::TooLong | End::KeyRevoked => tap.as_ref().is_some_and(|t| t.done() && !t.error()),
            _ => tap.as_ref().map_or(!self.reports_usage, |t| !t.cut_short()),
        };
        let exact_counts = tap.as_ref().is_some_and(|t| t.prompt().is_some() || t.completion().is_some());
        let status = match end {
            End::Completed if clean => "ok",
            End::Completed | End::UpstreamBroke => "upstream_failed",
            End::UpstreamIdle => "upstream_timeout",
            End::ClientAborted => "client_aborted",
            End::UpstreamRefused => "upstream_error",
            End::UpstreamUnreachable => "upstream_unreachable",
            End::NotForwarded => "not_forwarded",
            End::TooLong => "stream_too_long",
            End::KeyRevoked => "key_revoked",
        };
        let (prompt, completion, estimated) = match (end, tap) {
            (End::UpstreamUnreachable | End::NotForwarded, _) => (Some(0), Completion::Reported(0), false),
            _ if !self.reports_usage => (Some(0), Completion::Reported(0), false),
            (End::UpstreamRefused, t) => (
                Some(t.as_ref().and_then(|t| t.prompt()).unwrap_or(0)),
                Completion::Reported(t.and_then(|t| t.completion()).unwrap_or(0)),
                false,
            ),
            // The final counts arrived: they stand, however the connection ended after them.
            (_, Some(t)) if clean && exact_counts => {
                (Some(t.prompt().unwrap_or(0)), Completion::Reported(t.completion().unwrap_or(0)), false)
            }
            // Cut short or never counted: the prompt as reported early or
            // estimated, the output as delivered.
            (_, Some(t)) => {
                let completion = match t.completion() {
                    Some(n) if clean => Completion::Reported(n),
                    _ => Completion::Delivered(t.take_delivered()),
                };
                (t.prompt(), completion, true)
            }
            (_, None) => (None, Completion::Reported(0), true),
        };
        let refund = matches!(end, End::UpstreamUnreachable | End::NotForwarded);
        let latency_ms = self.started.elapsed().as_millis() as i64;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Shutting down: the stale-reservation sweep of the next start settles it.
            return;
        };
        runtime.spawn(async move {
            let prompt = match prompt {
                Some(p) => p,
                None => self.estimate_prompt().await,
            };
            let completion = match completion {
                Completion::Reported(n) => n,
                Completion::Delivered(text) if text.is_empty() => 0,
                Completion::Delivered(text) => text.tokens(&self.state.tokenizer).await,
            };
            let now = self.state.clock.now().timestamp();
            let settlement = Settlement {
                reservation_id: self.reservation_id,
                prompt_tokens: prompt,
                completion_tokens: completion,
                estimated,
                status,
                http_status,
                latency_ms,
                refund_request: refund,
                now,
            };
            settle_until_done(&self.state, &settlement).await;
            self.state.usage_log.record(&UsageEvent {
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
                estimated,
                latency_ms,
            });
        });
    }

    async fn estimate_prompt(&self) -> i64 {
        if let Some(n) = self.prompt_estimate {
            return n;
        }
        let Some(body) = &self.body else { return 0 };
        self.state.tokenizer.count(super::policy::body::prompt_text(body)).tokens().await
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
async fn settle_until_done(state: &ProxyState, settlement: &Settlement) {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match state.store.settle(settlement).await {
            Ok(_) => return,
            Err(e) if started.elapsed() < SETTLE_RETRY_FOR => {
                log::warn!("settling reservation {} failed, retrying: {e}", settlement.reservation_id);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                log::error!("giving up settling reservation {}: {e}", settlement.reservation_id);
                return;
            }
        }
    }
}

/// What may end a stream before its upstream does, besides silence.
pub struct CutOff {
    pub max_duration: Duration,
    /// The key's revocation, for streams of an admitted key.
    pub watch: Option<Watch>,
}

pub struct Metered<S> {
    inner: S,
    tap: UsageTap,
    ticket: Option<Ticket>,
    http_status: u16,
    idle: Duration,
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    /// The longest stream duration; polled also between chunks, so a stream
    /// that never goes quiet still ends.
    max_timer: Pin<Box<tokio::time::Sleep>>,
    watch: Option<Watch>,
    /// Set when the response is a stream that can carry an error event at its end.
    error_family: Option<Family>,
    finished: bool,
}

impl<S> Metered<S> {
    pub fn new(
        inner: S,
        tap: UsageTap,
        ticket: Option<Ticket>,
        http_status: u16,
        idle: Duration,
        cut_off: CutOff,
        error_family: Option<Family>,
    ) -> Self {
        Metered {
            inner,
            tap,
            ticket,
            http_status,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            max_timer: Box::pin(tokio::time::sleep(cut_off.max_duration)),
            watch: cut_off.watch,
            error_family,
            finished: false,
        }
    }

    fn finish(&mut self, end: End) -> Option<Bytes> {
        self.finished = true;
        let refused = self.http_status >= 400;
        let end = if refused && end == End::Completed { End::UpstreamRefused } else { end };
        // An upstream that closes a chunked body early can look like a normal end;
        // a response without its end marker was cut short all the same.
        let cut_short =
            end == End::Completed && self.tap.expects_end() && !self.tap.done() && !self.tap.error();
        if let Some(ticket) = self.ticket.take() {
            ticket.settle(end, self.http_status, Some(&mut self.tap));
        }
        if (end == End::Completed && !cut_short) || end == End::UpstreamRefused {
            return None;
        }
        let error = match end {
            End::UpstreamIdle => {
                ProxyError::BadGateway("upstream sent nothing for too long; the response is incomplete".into())
            }
            End::TooLong => ProxyError::GatewayTimeout(
                "the response ran past the longest stream duration (MAX_STREAM_DURATION_SECS); it is incomplete"
                    .into(),
            ),
            End::KeyRevoked => ProxyError::Unauthorized(
                "API key is no longer valid (deactivated, rotated, expired or deleted); the response is incomplete"
                    .into(),
            ),
            _ => ProxyError::BadGateway("upstream connection lost; the response is incomplete".into()),
        };
        self.error_family.map(|family| error_event(family, &error))
    }

    /// The stream's own limits, checked on every poll: a stream whose
    /// upstream never pauses must end too.
    fn cut_off(&mut self, cx: &mut Context<'_>) -> Option<End> {
        if self.watch.as_ref().is_some_and(|w| w.revoked(cx)) {
            return Some(End::KeyRevoked);
        }
        self.max_timer.as_mut().poll(cx).is_ready().then_some(End::TooLong)
    }
}

/// The last event of a stream that broke, in the family's streaming format.
fn error_event(family: Family, error: &ProxyError) -> Bytes {
    let body = error.body(family);
    Bytes::from(match family {
        Family::Ollama => format!("{body}\n"),
        Family::OpenAi => format!("data: {body}\n\n"),
        Family::Anthropic => format!("event: error\ndata: {body}\n\n"),
    })
}

impl<S, E> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        if let Some(end) = this.cut_off(cx) {
            // The upstream response is dropped with this stream right after
            // the error event, which cancels the generation.
            return Poll::Ready(this.finish(end).map(Ok));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.tap.observe(&chunk);
                let deadline = tokio::time::Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                log::warn!("upstream stream broke: {e}");
                Poll::Ready(this.finish(End::UpstreamBroke).map(Ok))
            }
            Poll::Ready(None) => Poll::Ready(this.finish(End::Completed).map(Ok)),
            Poll::Pending => match this.idle_timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(this.finish(End::UpstreamIdle).map(Ok)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        // Dropped before the end: the client went away. Dropping `inner` here
        // closes the upstream connection, which cancels the generation.
        if let Some(ticket) = self.ticket.take() {
            ticket.settle(End::ClientAborted, self.http_status, Some(&mut self.tap));
        }
    }
}
