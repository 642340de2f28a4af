//! The per-request context: what the phases of the proxy's path learn about
//! a request that its answer, or its refusal, carries.

use super::error::ProxyError;
use super::policy::routes::Family;
use super::ratelimit;
use super::ProxyState;
use crate::domain::limits::{Limits, Usage};
use crate::domain::windows::Windows;
use crate::metrics::Tally;
use crate::usage_log::UsageEvent;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

pub struct Exchange {
    /// The API family of the path: the format of errors.
    pub family: Family,
    /// The key's `x-ratelimit-*` headers, once the key is known.
    rate_headers: Vec<(HeaderName, HeaderValue)>,
    /// The calling key, once authentication has found it.
    pub key_id: Option<i64>,
    /// The request's labels and stopwatch for the metrics.
    pub tally: Tally,
}

impl Exchange {
    pub fn begin(req: &HttpRequest) -> Exchange {
        Exchange {
            family: Family::of(req.path()),
            rate_headers: Vec::new(),
            key_id: None,
            tally: Tally::begin(),
        }
    }

    /// The key's limits and what it has used of them, for the rate-limit headers.
    /// The tightest limits across the levels a request was measured against.
    pub fn show_limits(&mut self, levels: &[(Limits, Usage)], windows: &Windows) {
        self.rate_headers = ratelimit::headers_across(levels, windows);
    }

    /// Adds the rate-limit headers to an answer.
    pub fn add_headers(&self, builder: &mut HttpResponseBuilder) {
        for (name, value) in &self.rate_headers {
            builder.insert_header((name.clone(), value.clone()));
        }
    }

    /// The refusal, logged once and rendered in the caller's family.
    pub fn refuse(&self, state: &ProxyState, req: &HttpRequest, error: &ProxyError) -> HttpResponse {
        // Debug level: a client hammering a spent quota must not flood the log; the usage log has them all.
        log::debug!("refused {} {}: {} {}", req.method(), req.path(), error.status().as_u16(), error.code());
        state.refusals.note(state.clock.now().timestamp(), self.key_id, error.reason());
        state.usage_log.record(&UsageEvent {
            ts: chrono::Utc::now().to_rfc3339(),
            event: "refused",
            key_id: self.key_id,
            model: "",
            route: req.path(),
            status: error.code(),
            http_status: error.status().as_u16(),
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            estimated: false,
            latency_ms: 0,
        });
        super::measure::refused(state, &self.tally, self.key_id, error);
        error.render(self.family, &self.rate_headers)
    }
}
