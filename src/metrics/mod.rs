//! The gate's Prometheus metrics (`GET /metrics` on the admin listener).
//!
//! Built on the `prometheus` crate (the tikv one) rather than the Prometheus
//! org's `prometheus-client`: its `process` feature gives the standard
//! `process_*` figures (CPU, resident memory, open descriptors, threads, start
//! time) read from `/proc`, which `prometheus-client` leaves to hand-written
//! code, and its label vectors cache each label set's series behind a read
//! lock, so recording a request is a hash lookup and an atomic add. Each
//! `Application` has its own registry, so several gates in one test process do
//! not count into each other.
//!
//! # What is counted
//!
//! Every request the proxy's forwarding handler takes ends in exactly one
//! `ollama_gate_requests_total{route,model,key,outcome}`, recorded when its
//! answer is settled (an admitted request: one per usage row) or when it is
//! refused or fails before admission. The outcomes:
//!
//! - `ok`: answered whole (the usage row says `ok`).
//! - `refused`: the gate refused it (any error with a refusal reason: 401,
//!   403, 404, 400, 408, 413, 429 quota, rate limit or queue), before or after
//!   admission. Their sum equals the sum of `ollama_gate_refusals_total`.
//! - `upstream_error`: the backend answered an error status, broke off,
//!   went quiet, could not be reached, or no backend was up for the model.
//! - `client_aborted`: the client hung up before the end (while waiting for a
//!   slot too).
//! - `cut_off`: the gate ended a running stream: longer than
//!   `MAX_STREAM_DURATION_SECS`, or the key was revoked meanwhile.
//! - `error`: the gate itself failed (its database unavailable, its tokenizer
//!   queue full).
//!
//! `ollama_gate_tokens_total{model,key,kind}` adds the prompt and completion
//! tokens each settlement charged, as its usage row records them.
//! `ollama_gate_refusals_total{reason}` counts refusals by
//! `ProxyError::reason` (`unauthenticated`, `forbidden`, `not_found`,
//! `quota`, `rate_limit`, `bad_request`, `too_large`, `queue_full`).
//!
//! # Timings (histograms by `route`)
//!
//! - `ollama_gate_request_duration_seconds`: arrival of the request's head to
//!   its end (the last byte relayed, the client gone, or the refusal written);
//!   one observation per `requests_total`.
//! - `ollama_gate_time_to_first_byte_seconds`: arrival to the first chunk of
//!   the backend's answer passing to the client (for an LLM, the first token);
//!   only answers relayed from a backend with a body.
//! - `ollama_gate_overhead_seconds`: the gate's own time before a request goes
//!   upstream: arrival until it is handed to the fair queue and sender, so
//!   reading the body, authentication, the route policy, admission's
//!   transaction and image fetches; the wait for a slot is not in it (that is
//!   the upstream's capacity, not the gate). Settlement runs after the answer,
//!   off the response path, so it adds nothing. Only forwarded requests.
//! - `ollama_gate_db_transaction_seconds{op}`: `admission` and `settlement` as
//!   the request waits for them (group commit included; a settlement's retries
//!   through an outage included), and `batch`: each group-commit transaction.
//!
//! Gauges read at scrape time from the backends (`backends.rs`):
//! `ollama_gate_in_flight{backend}`, `ollama_gate_queue_length{backend}`,
//! `ollama_gate_upstream_up{backend}`.
//!
//! # Labels are bounded
//!
//! A key holder picks the path and the model name, so neither is a label as
//! sent: `route` is the route's pattern (`/api/generate`,
//! `/v1/models/{model}`), or `unmatched` for a path no route has; `model` is
//! the model's normalised name when some backend lists it or the key's own
//! allow-list names it, else `other`, and `""` before the model is known.
//! `key` is the key's id (`""` when no key was found); `METRICS_KEY_LABEL=false`
//! leaves it out, for gates with many keys.

mod backends;
mod tally;

pub use tally::{model_label, Tally, Verdict};

use crate::upstream::Upstreams;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The route label of a path that no route matches.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The model label of a model that no backend lists and the key does not name.
pub const OTHER_MODEL: &str = "other";

/// Which database write a `db_transaction_seconds` observation times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbOp {
    Admission,
    Settlement,
    /// One group-commit transaction, however many writes it holds.
    Batch,
}

impl DbOp {
    fn as_str(self) -> &'static str {
        match self {
            DbOp::Admission => "admission",
            DbOp::Settlement => "settlement",
            DbOp::Batch => "batch",
        }
    }
}

/// From a few milliseconds (a refusal) to ten minutes (a long generation).
const LONG_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// The gate's own work and its database: tenths of a millisecond to seconds.
const SHORT_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    tokens: IntCounterVec,
    refusals: IntCounterVec,
    duration: HistogramVec,
    first_byte: HistogramVec,
    overhead: HistogramVec,
    db: HistogramVec,
    /// `METRICS_KEY_LABEL`: the request and token counters carry `key`.
    key_label: bool,
}

fn histogram(name: &str, help: &str, buckets: &[f64], label: &str) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), &[label])
}

impl Metrics {
    pub fn new(key_label: bool) -> prometheus::Result<Metrics> {
        let with_key = |labels: &[&'static str]| -> Vec<&'static str> {
            labels.iter().copied().filter(|l| key_label || *l != "key").collect()
        };
        let requests = IntCounterVec::new(
            Opts::new("ollama_gate_requests_total", "Requests to the proxy, by how they ended."),
            &with_key(&["route", "model", "key", "outcome"]),
        )?;
        let tokens = IntCounterVec::new(
            Opts::new("ollama_gate_tokens_total", "Tokens charged, as the usage rows record them."),
            &with_key(&["model", "key", "kind"]),
        )?;
        let refusals = IntCounterVec::new(
            Opts::new("ollama_gate_refusals_total", "Requests the gate refused, by reason."),
            &["reason"],
        )?;
        let duration = histogram(
            "ollama_gate_request_duration_seconds",
            "Arrival to the end of the answer.",
            LONG_BUCKETS,
            "route",
        )?;
        let first_byte = histogram(
            "ollama_gate_time_to_first_byte_seconds",
            "Arrival to the first chunk of the backend's answer.",
            LONG_BUCKETS,
            "route",
        )?;
        let overhead = histogram(
            "ollama_gate_overhead_seconds",
            "The gate's own time before a request goes upstream, the wait for a slot left out.",
            SHORT_BUCKETS,
            "route",
        )?;
        let db = histogram(
            "ollama_gate_db_transaction_seconds",
            "Admission and settlement writes as requests wait for them, and group-commit transactions.",
            SHORT_BUCKETS,
            "op",
        )?;
        let registry = Registry::new();
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(first_byte.clone()))?;
        registry.register(Box::new(overhead.clone()))?;
        registry.register(Box::new(db.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics { registry, requests, tokens, refusals, duration, first_byte, overhead, db, key_label })
    }

    /// The backends' gauges, read from `upstreams` at every scrape.
    pub fn watch_backends(&self, upstreams: Arc<Upstreams>) -> prometheus::Result<()> {
        self.registry.register(Box::new(backends::Backends::new(upstreams)?))
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("metrics could not be written: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }

    /// A request ended: its counter and its duration.
    pub fn ended(&self, tally: &Tally, key: Option<i64>, verdict: Verdict) {
        let key = key_value(key);
        let labels: &[&str] = if self.key_label {
            &[tally.route, &tally.model, &key, verdict.as_str()]
        } else {
            &[tally.route, &tally.model, verdict.as_str()]
        };
        self.requests.with_label_values(labels).inc();
        self.duration.with_label_values(&[tally.route]).observe(secs(tally.arrived.elapsed()));
    }

    /// A refusal, by its reason.
    pub fn refused(&self, reason: &str) {
        self.refusals.with_label_values(&[reason]).inc();
    }

    /// The tokens a settlement charged.
    pub fn charged(&self, tally: &Tally, key: Option<i64>, prompt: i64, completion: i64) {
        let key = key_value(key);
        for (kind, n) in [("prompt", prompt), ("completion", completion)] {
            let labels: &[&str] =
                if self.key_label { &[&tally.model, &key, kind] } else { &[&tally.model, kind] };
            // Created at zero too, so both kinds show from the first settlement.
            self.tokens.with_label_values(labels).inc_by(n.max(0) as u64);
        }
    }

    /// The first chunk of a relayed answer; only the first of a request counts.
    pub fn first_byte(&self, tally: &mut Tally) {
        if !std::mem::replace(&mut tally.first_byte_seen, true) {
            self.first_byte.with_label_values(&[tally.route]).observe(secs(tally.arrived.elapsed()));
        }
    }

    /// The request leaves the gate for the queue and the backend.
    pub fn leaves_gate(&self, tally: &Tally) {
        self.overhead.with_label_values(&[tally.route]).observe(secs(tally.arrived.elapsed()));
    }

    pub fn db(&self, op: DbOp, took: Duration) {
        self.db.with_label_values(&[op.as_str()]).observe(secs(took));
    }

    /// Runs a database write, timing it as `op`.
    pub async fn timed<F: Future>(&self, op: DbOp, write: F) -> F::Output {
        let started = Instant::now();
        let out = write.await;
        self.db(op, started.elapsed());
        out
    }
}

/// The key label: the key's id, empty when no key was found.
fn key_value(key: Option<i64>) -> String {
    key.map(|id| id.to_string()).unwrap_or_default()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests;
