//! The pace a request body must keep: all of it within
//! `REQUEST_BODY_TIMEOUT_SECS`, plus one second per `REQUEST_BODY_MIN_RATE`
//! bytes received. A body trickled slower than that gets 408, so a slow
//! client cannot hold a connection and a worker's attention for long. Blob
//! uploads, streamed upstream as they arrive, keep the same pace.

use super::error::ProxyError;
use futures_util::{Stream, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

pub struct BodyPace {
    started: Instant,
    floor: Duration,
    min_rate: u64,
    received: u64,
}

impl BodyPace {
    pub fn new(floor: Duration, min_rate: u64) -> BodyPace {
        BodyPace { started: Instant::now(), floor, min_rate: min_rate.max(1), received: 0 }
    }

    /// When the body must be whole, given what came so far.
    pub fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        self.started + self.floor + earned
    }

    /// The next chunk of `body`, or 408 once the deadline has passed.
    pub async fn next<S, T, E>(&mut self, body: &mut S) -> Result<Option<Result<T, E>>, ProxyError>
    where
        S: Stream<Item = Result<T, E>> + Unpin,
        T: AsRef<[u8]>,
    {
        match tokio::time::timeout_at(self.deadline(), body.next()).await {
            Ok(item) => {
                if let Some(Ok(chunk)) = &item {
                    self.received += chunk.as_ref().len() as u64;
                }
                Ok(item)
            }
            Err(_) => Err(ProxyError::RequestTimeout(format!(
                "the request body arrived too slowly ({} bytes in {} s; REQUEST_BODY_TIMEOUT_SECS and \
                 REQUEST_BODY_MIN_RATE)",
                self.received,
                self.started.elapsed().as_secs()
            ))),
        }
    }
}

/// A streamed body (blob uploads) held to the same pace on its way upstream:
/// past the deadline it ends with an error, which aborts the upload.
pub struct Paced<S> {
    inner: S,
    pace: BodyPace,
    timer: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl<S> Paced<S> {
    pub fn new(inner: S, floor: Duration, min_rate: u64) -> Paced<S> {
        let pace = BodyPace::new(floor, min_rate);
        let timer = Box::pin(tokio::time::sleep_until(pace.deadline()));
        Paced { inner, pace, timer, timed_out: Arc::default() }
    }

    /// Set once the body fell behind, so the caller answers 408 rather than 502.
    pub fn timed_out(&self) -> Arc<AtomicBool> {
        self.timed_out.clone()
    }
}

impl<S, T, E> Stream for Paced<S>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    T: AsRef<[u8]>,
    E: Into<Box<dyn std::error::Error>>,
{
    type Item = Result<T, Box<dyn std::error::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.pace.received += chunk.as_ref().len() as u64;
                let deadline = this.pace.deadline();
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.timed_out.store(true, Ordering::Release);
                    Poll::Ready(Some(Err("the request body arrived too slowly".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// A whole request body, within `BODY_LIMIT` and at the body pace.
pub async fn read_body(
    req: &actix_web::HttpRequest,
    payload: &mut actix_web::web::Payload,
    settings: &crate::config::Settings,
) -> Result<actix_web::web::Bytes, ProxyError> {
    let limit = settings.body_limit;
    let mut pace = BodyPace::new(settings.request_body_timeout, settings.request_body_min_rate);
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::TooLarge(limit));
    }
    let mut buf = actix_web::web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_byte_earns_time_beyond_the_floor() {
        let mut pace = BodyPace::new(Duration::from_secs(30), 1000);
        let start = pace.deadline();
        pace.received = 5000;
        assert_eq!(pace.deadline() - start, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_a_steady_one_does_not() {
        let mut stalled = futures_util::stream::pending::<Result<Vec<u8>, ()>>();
        let mut pace = BodyPace::new(Duration::from_millis(100), 1000);
        let err = pace.next(&mut stalled).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 408);

        let mut steady = futures_util::stream::iter(vec![Ok::<_, ()>(vec![0u8; 10]); 3]);
        let mut pace = BodyPace::new(Duration::from_secs(2), 1000);
        let mut n = 0;
        while let Some(chunk) = pace.next(&mut steady).await.unwrap() {
            n += chunk.unwrap().len();
        }
        assert_eq!(n, 30);
    }
}
