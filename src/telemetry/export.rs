//! The background exporter: spans gather in a bounded queue and leave in
//! batches, one `POST` at a time, so a slow or dead receiver costs the
//! request path nothing but a dropped span.

use super::otlp::{self, Resource};
use super::span::SpanData;
use crate::config::OtelSettings;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Spans leave at least this often while any are waiting...
pub const EVERY: Duration = Duration::from_secs(1);
/// ...or as soon as this many have gathered (the OpenTelemetry SDKs' batch size).
pub const MAX_BATCH: usize = 512;
/// The longest one `POST` may take (the SDKs' `OTEL_EXPORTER_OTLP_TIMEOUT` default).
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before the one retry of a batch the receiver could not take.
const RETRY_AFTER: Duration = Duration::from_millis(200);

pub enum Message {
    /// The spans of one request.
    Spans(Vec<SpanData>),
    /// Send everything queued, then answer.
    Flush(oneshot::Sender<()>),
}

/// What the exporter counts, shared with the request path.
#[derive(Default)]
pub struct Counts {
    /// Spans dropped: the queue was full, or the receiver refused or never took them.
    pub dropped: AtomicU64,
    /// Spans the receiver took.
    pub exported: AtomicU64,
}

impl Counts {
    /// Counts `n` dropped spans; says so in the log now and then, not once a request.
    pub fn drop_spans(&self, n: usize, why: &str) {
        if n == 0 {
            return;
        }
        let before = self.dropped.fetch_add(n as u64, Ordering::Relaxed);
        let after = before + n as u64;
        // Once each time the total passes a power of two.
        if before == 0 || (after.ilog2() > before.ilog2()) {
            log::warn!("traces: {after} spans dropped so far ({why})");
        }
    }
}

pub struct Exporter {
    client: awc::Client,
    url: String,
    /// The URL without any user or password in it, for the log.
    shown: String,
    headers: Vec<(String, String)>,
    resource: Resource,
    counts: Arc<Counts>,
}

impl Exporter {
    pub fn new(settings: &OtelSettings, counts: Arc<Counts>) -> Exporter {
        let client = awc::Client::builder()
            .timeout(POST_TIMEOUT)
            .disable_redirects()
            .add_default_header(("user-agent", concat!("ollama-gate/", env!("CARGO_PKG_VERSION"))))
            .finish();
        let mut shown = settings.traces_url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        log::info!("traces: exporting spans to {shown} (OTLP/HTTP, JSON)");
        Exporter {
            client,
            url: settings.traces_url.to_string(),
            shown: shown.to_string(),
            headers: settings.headers.iter().map(|(k, v)| (k.clone(), v.expose().clone())).collect(),
            resource: Resource {
                service_name: settings.service_name.clone(),
                service_version: env!("CARGO_PKG_VERSION"),
            },
            counts,
        }
    }

    pub async fn run(self, mut queue: mpsc::Receiver<Message>) {
        let mut batch: Vec<SpanData> = Vec::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = queue.recv() => match message {
                    Some(Message::Spans(spans)) => {
                        batch.extend(spans);
                        if batch.len() >= MAX_BATCH {
                            self.send(std::mem::take(&mut batch)).await;
                        }
                    }
                    Some(Message::Flush(done)) => {
                        while let Ok(Message::Spans(spans)) = queue.try_recv() {
                            batch.extend(spans);
                            if batch.len() >= MAX_BATCH {
                                self.send(std::mem::take(&mut batch)).await;
                            }
                        }
                        if !batch.is_empty() {
                            self.send(std::mem::take(&mut batch)).await;
                        }
                        let _ = done.send(());
                    }
                    None => {
                        if !batch.is_empty() {
                            self.send(batch).await;
                        }
                        return;
                    }
                },
                _ = tick.tick() => {
                    if !batch.is_empty() {
                        self.send(std::mem::take(&mut batch)).await;
                    }
                }
            }
        }
    }

    /// One batch, retried once after a connection error, a timeout or an
    /// answer that says "later" (429, 5xx); then given up and counted.
    async fn send(&self, batch: Vec<SpanData>) {
        let body = match serde_json::to_vec(&otlp::encode(&self.resource, &batch)) {
            Ok(body) => bytes::Bytes::from(body),
            Err(e) => return self.counts.drop_spans(batch.len(), &format!("cannot encode them: {e}")),
        };
        let mut why = String::new();
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(RETRY_AFTER).await;
            }
            let mut request = self.client.post(&self.url).insert_header(("content-type", "application/json"));
            for (name, value) in &self.headers {
                request = request.insert_header((name.as_str(), value.as_str()));
            }
            match request.send_body(body.clone()).await {
                Ok(response) if response.status().is_success() => {
                    self.counts.exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    return;
                }
                Ok(response) => {
                    let status = response.status();
                    why = format!("the receiver at {} answered {status}", self.shown);
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        break;
                    }
                }
                Err(e) => why = format!("the receiver at {} is unreachable: {e}", self.shown),
            }
        }
        self.counts.drop_spans(batch.len(), &why);
    }
}
