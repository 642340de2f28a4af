//! The per-request context: what the phases of the proxy's path learn about
//! a request that its answer, or its refusal, carries.

use super::error::ProxyError;
use super::policy::routes::{Family, Refusal, Route};
use super::ratelimit;
use super::request_id::RequestId;
use super::settle::Ticket;
use super::trace::{Finish, RequestTrace};
use super::ProxyState;
use crate::domain::limits::{Limits, Usage};
use crate::domain::windows::Windows;
use crate::metrics::Tally;
use crate::telemetry::span;
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
    pub request_id: RequestId,
    /// The request's spans while it is traced, until its ticket takes them.
    pub trace: Option<RequestTrace>,
}

impl Exchange {
    pub fn begin(req: &HttpRequest, state: &ProxyState) -> Exchange {
        Exchange {
            family: Family::of(req.path()),
            rate_headers: Vec::new(),
            key_id: None,
            tally: Tally::begin(),
            request_id: RequestId::of_request(req),
            trace: state.tracer.as_ref().map(|tracer| RequestTrace::begin(tracer, req)),
        }
    }

    /// The route is known: the metrics' label, and the trace's name.
    pub fn route(&mut self, route: &Result<Route, Refusal>) {
        self.tally.route = route.as_ref().map_or(crate::metrics::UNMATCHED_ROUTE, |r| r.name);
        if let (Some(trace), Ok(route)) = (&mut self.trace, route) {
            trace.route(route);
        }
    }

    /// Now, when the request is traced: the start of a span.
    pub fn span_start(&self) -> Option<u64> {
        self.trace.as_ref().map(|_| span::now())
    }

    /// The admission span ends with `admitted`; an admitted request's ticket
    /// takes the trace along, to end it when it settles.
    pub fn admitted(
        &mut self,
        admitted: Result<Ticket, ProxyError>,
        began: Option<u64>,
    ) -> Result<Ticket, ProxyError> {
        let Some(mut trace) = self.trace.take() else { return admitted };
        let error = admitted.as_ref().err().map(ProxyError::code);
        trace.child("admission", began.unwrap_or_else(span::now), span::now(), error);
        match admitted {
            Ok(mut ticket) => {
                ticket.trace = Some(trace);
                Ok(ticket)
            }
            Err(e) => {
                self.trace = Some(trace);
                Err(e)
            }
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
    pub fn refuse(&mut self, state: &ProxyState, req: &HttpRequest, error: &ProxyError) -> HttpResponse {
        // Debug level: a client hammering a spent quota must not flood the log; the usage log has them all.
        let (status, code) = (error.status().as_u16(), error.code());
        log::debug!(
            "refused {} {}: {status} {code} request_id={}",
            req.method(),
            req.path(),
            self.request_id
        );
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
            request_id: self.request_id.as_str(),
        });
        super::measure::refused(state, &self.tally, self.key_id, error);
        // Refused before admission: the request ends here. After it, the ticket's settlement ended it.
        if let Some(trace) = self.trace.take() {
            trace.finish(Finish {
                http_status: status,
                error: Some(code),
                key_id: self.key_id,
                request_id: self.request_id.as_str(),
                model: None,
                tokens: None,
            });
        }
        error.render(self.family, &self.rate_headers, self.request_id.as_str())
    }
}
