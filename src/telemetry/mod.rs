//! OpenTelemetry traces, exported over OTLP/HTTP with the JSON encoding to
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` on it; the OpenTelemetry
//! Collector, Jaeger and Tempo take it on port 4318).
//!
//! The exporter is written against the awc client the gate already has,
//! rather than the opentelemetry SDK crates: those bring a second HTTP stack
//! and runtime glue for what is here a bounded queue, a timer and one `POST`.
//! The spans, their ids and `traceparent` follow the specifications exactly
//! (W3C Trace Context, the OTLP JSON mapping), so any OTLP receiver reads them.
//!
//! With tracing off there is no [`Tracer`] at all: the request path checks an
//! `Option` and does nothing else.

pub mod context;
pub mod export;
pub mod otlp;
pub mod span;

use crate::config::OtelSettings;
use export::{Counts, Exporter, Message};
use span::SpanData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests whose spans may wait for the exporter; past that they are dropped and counted.
const QUEUE: usize = 2048;

/// The request path's handle on the exporter: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Tracer {
    queue: mpsc::Sender<Message>,
    counts: Arc<Counts>,
}

impl Tracer {
    /// Starts the exporter on the current (actix) runtime: its awc client is not `Send`.
    pub fn start(settings: &OtelSettings) -> Tracer {
        let (tracer, queue) = Tracer::with_queue(QUEUE);
        actix_web::rt::spawn(Exporter::new(settings, tracer.counts.clone()).run(queue));
        tracer
    }

    fn with_queue(capacity: usize) -> (Tracer, mpsc::Receiver<Message>) {
        let (queue, receiver) = mpsc::channel(capacity);
        (Tracer { queue, counts: Arc::default() }, receiver)
    }

    /// Hands one request's spans to the exporter, or drops them if it is behind.
    pub fn export(&self, spans: Vec<SpanData>) {
        let n = spans.len();
        if self.queue.try_send(Message::Spans(spans)).is_err() {
            self.counts.drop_spans(n, "the exporter is behind: the receiver is slow or down");
        }
    }

    /// Sends what is queued, waiting at most `within` (on shutdown).
    pub async fn flush(&self, within: Duration) {
        let (done, flushed) = oneshot::channel();
        let sent = async {
            if self.queue.send(Message::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        };
        if tokio::time::timeout(within, sent).await.is_err() {
            log::warn!("traces: the last spans could not be sent within {} s", within.as_secs());
        }
    }

    /// Spans dropped so far.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Spans the receiver took so far.
    pub fn exported(&self) -> u64 {
        self.counts.exported.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::context::{SpanId, TraceId};
    use super::span::{SpanData, SpanKind};
    use super::*;

    fn spans(n: usize) -> Vec<SpanData> {
        let trace_id = TraceId::random();
        (0..n)
            .map(|_| SpanData {
                trace_id,
                span_id: SpanId::random(),
                parent: None,
                name: "x".into(),
                kind: SpanKind::Internal,
                start: 1,
                end: 2,
                attributes: vec![],
                error: None,
            })
            .collect()
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (tracer, mut queue) = Tracer::with_queue(2);
        for _ in 0..5 {
            tracer.export(spans(3));
        }
        assert_eq!(tracer.dropped(), 9);
        let mut queued = 0;
        while let Ok(Message::Spans(s)) = queue.try_recv() {
            queued += s.len();
        }
        assert_eq!(queued, 6);
    }
}
