//! What the metrics learn of one request as it passes, and how it ended.

use super::{OTHER_MODEL, UNMATCHED_ROUTE};
use crate::domain::model::ModelList;
use crate::domain::usage::Outcome;
use crate::upstream::Upstreams;
use std::time::Instant;

/// One request's labels and stopwatch. It lives in the request's exchange
/// and, once the request is admitted, in its ticket, which settles it.
#[derive(Debug, Clone)]
pub struct Tally {
    pub arrived: Instant,
    /// The route's pattern, never the path as sent.
    pub route: &'static str,
    /// Bounded by [`model_label`]; empty until the model is known.
    pub model: String,
    /// The ticket has it now: the exchange no longer counts the request.
    pub handed_over: bool,
    pub first_byte_seen: bool,
    /// How it ended, when the refusal that gave an admitted request back says
    /// more than its usage row's outcome.
    pub verdict: Option<Verdict>,
}

impl Tally {
    pub fn begin() -> Tally {
        Tally {
            arrived: Instant::now(),
            route: UNMATCHED_ROUTE,
            model: String::new(),
            handed_over: false,
            first_byte_seen: false,
            verdict: None,
        }
    }

    /// The copy an admitted request's ticket settles; this one stops counting.
    pub fn hand_over(&mut self) -> Tally {
        self.handed_over = true;
        Tally { handed_over: false, ..self.clone() }
    }
}

/// The model as a label: its normalised name when a backend lists it or the
/// key's allow-list names it (both are set by the operator, so bounded), else
/// `other`. A key holder cannot add series by inventing names.
pub fn model_label(upstreams: &Upstreams, allowed: Option<&ModelList>, normalized: &str) -> String {
    if normalized.is_empty() {
        return String::new();
    }
    let listed = upstreams.pool().backends.iter().any(|b| b.lists(normalized));
    if listed || allowed.is_some_and(|list| list.allows(normalized)) {
        normalized.to_owned()
    } else {
        OTHER_MODEL.to_owned()
    }
}

/// How a request ended, as `ollama_gate_requests_total{outcome}` says it
/// (each is defined in the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Refused,
    UpstreamError,
    ClientAborted,
    CutOff,
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Ok,
        Verdict::Refused,
        Verdict::UpstreamError,
        Verdict::ClientAborted,
        Verdict::CutOff,
        Verdict::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Refused => "refused",
            Verdict::UpstreamError => "upstream_error",
            Verdict::ClientAborted => "client_aborted",
            Verdict::CutOff => "cut_off",
            Verdict::Error => "error",
        }
    }

    /// The verdict on a settled request, from its usage row's outcome. A
    /// request given back before it was sent is the client's leaving (the
    /// future dropped), unless the refusal that gave it back says otherwise.
    pub fn of_outcome(outcome: Outcome) -> Verdict {
        match outcome {
            Outcome::Ok => Verdict::Ok,
            Outcome::UpstreamError
            | Outcome::UpstreamFailed
            | Outcome::UpstreamTimeout
            | Outcome::UpstreamUnreachable => Verdict::UpstreamError,
            Outcome::ClientAborted | Outcome::NotForwarded => Verdict::ClientAborted,
            Outcome::StreamTooLong | Outcome::KeyRevoked => Verdict::CutOff,
            Outcome::Interrupted => Verdict::Error,
        }
    }
}
