//! The response stream on its way to the client.
//!
//! `Metered` passes each upstream chunk on as it arrives, lets the usage tap
//! look at it, and enforces the idle timeout, the longest stream duration and
//! the key's revocation. Whatever way the stream ends (finished, upstream
//! broke, upstream went quiet, ran too long, key revoked, client went away and
//! the stream was dropped) its `Ticket` is settled exactly once, with the
//! tap's reading taken then.

use super::error::ProxyError;
use super::policy::routes::Family;
use super::request_id::RequestId;
use super::settle::{End, Received, Ticket};
use super::stream_watch::Watch;
use super::tap::{Tap as UsageTap, UsageParser};
use actix_web::web::Bytes;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What may end a stream before its upstream does, besides silence.
pub struct CutOff {
    pub idle: Duration,
    pub max_duration: Duration,
    /// The key's revocation, for streams of an admitted key.
    pub watch: Option<Watch>,
}

pub struct Metered<S> {
    inner: S,
    tap: UsageTap,
    /// Taken by the one settlement, at the end or on drop.
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
    /// For the log and the error event, after the ticket is gone.
    request_id: RequestId,
}

impl<S> Metered<S> {
    pub fn new(
        inner: S,
        tap: UsageTap,
        ticket: Ticket,
        http_status: u16,
        cut_off: CutOff,
        error_family: Option<Family>,
    ) -> Self {
        Metered {
            request_id: ticket.request_id.clone(),
            inner,
            tap,
            ticket: Some(ticket),
            http_status,
            idle: cut_off.idle,
            idle_timer: Box::pin(tokio::time::sleep(cut_off.idle)),
            max_timer: Box::pin(tokio::time::sleep(cut_off.max_duration)),
            watch: cut_off.watch,
            error_family,
            finished: false,
        }
    }

    /// Settles the ticket, if it is still here; true when the client is owed
    /// an error event.
    fn settle(&mut self, end: End) -> bool {
        let Some(ticket) = self.ticket.take() else { return false };
        let tap = &mut self.tap;
        let reading =
            Received { tap: tap.reading(), expects_end: tap.expects_end(), delivered: tap.take_delivered() };
        ticket.settle(end, self.http_status, Some(reading)).tell_client
    }

    fn finish(&mut self, end: End) -> Option<Bytes> {
        self.finished = true;
        if !self.settle(end) {
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
        self.error_family.map(|family| error_event(family, &error, self.request_id.as_str()))
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
fn error_event(family: Family, error: &ProxyError, request_id: &str) -> Bytes {
    let body = error.body_for(family, request_id);
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
                if let Some(ticket) = this.ticket.as_mut() {
                    ticket.first_byte();
                }
                let deadline = tokio::time::Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                log::warn!("upstream stream broke: {e} request_id={}", this.request_id);
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
        self.settle(End::ClientAborted);
    }
}
