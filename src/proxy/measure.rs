//! The proxy's side of the metrics: the verdict on a request that ended in
//! an error, and the ticket's moments. The recording itself is in `metrics`.

use super::error::ProxyError;
use super::settle::{End, Ticket};
use super::ProxyState;
use crate::domain::usage::Outcome;
use crate::metrics::{self, Tally, Verdict};
use crate::store::KeyRecord;

/// The verdict on a request that ended in `error`; `end` is how its ticket
/// was given back, when it had one.
pub fn verdict(error: &ProxyError, end: Option<End>) -> Verdict {
    if error.reason().is_some() {
        return Verdict::Refused;
    }
    match error {
        ProxyError::ClientGone => Verdict::ClientAborted,
        ProxyError::BadGateway(_) | ProxyError::GatewayTimeout(_) => Verdict::UpstreamError,
        // No backend up for the model.
        _ if end == Some(End::UpstreamUnreachable) => Verdict::UpstreamError,
        _ => Verdict::Error,
    }
}

/// A refusal or failure rendered to the client: counted by reason, and as the
/// request's end unless its ticket settles it.
pub fn refused(state: &ProxyState, tally: &Tally, key_id: Option<i64>, error: &ProxyError) {
    if let Some(reason) = error.reason() {
        state.metrics.refused(reason);
    }
    if !tally.handed_over {
        state.metrics.ended(tally, key_id, verdict(error, None));
    }
}

/// The model as the metrics label it, once admission knows it.
pub fn model_label(state: &ProxyState, key: &KeyRecord, normalized: &str) -> String {
    metrics::model_label(&state.upstreams, key.fields.models.as_ref(), normalized)
}

impl Ticket {
    /// The request is settled now: its counter and duration.
    pub fn measure_end(&self, outcome: Outcome) {
        let verdict = self.tally.verdict.unwrap_or_else(|| Verdict::of_outcome(outcome));
        self.settler.metrics.ended(&self.tally, Some(self.key_id), verdict);
    }

    /// Given back by `error`, which says how it ended better than the outcome.
    pub fn measure_give_back(&mut self, end: End, error: &ProxyError) {
        self.tally.verdict = Some(verdict(error, Some(end)));
    }

    /// A chunk of the answer passes to the client; the first one counts.
    pub fn first_byte(&mut self) {
        self.settler.metrics.first_byte(&mut self.tally);
    }

    /// The request leaves the gate for the queue and the backend.
    pub fn leaves_gate(&self) {
        self.settler.metrics.leaves_gate(&self.tally);
    }
}
