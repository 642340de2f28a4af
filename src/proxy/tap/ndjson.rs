//! Ollama's native API: NDJSON objects on `/api/generate` and `/api/chat`, the
//! final one with `"done": true` and the counts; a single object when not
//! streamed; `{"error": ...}` when generation fails. Ollama leaves out metrics
//! that are zero, so a finished response without a count reports 0.

use super::reader::{number, Dialect, Event, Reader, Tally};
use super::scan::{path_is, starts_with, EventInfo, Scalar, Seg, Step::*};

/// The tap for Ollama's native routes.
pub type NdjsonTap = Reader<Ollama>;

pub struct Ollama {
    /// `/api/embed`: one object, finished when it is whole.
    pub embed: bool,
}

impl Dialect for Ollama {
    fn scalar(&self, path: &[Seg], value: Scalar<'_>, event: &mut Event) {
        if path_is(path, &[K("prompt_eval_count")]) {
            event.prompt = number(&value);
        } else if path_is(path, &[K("eval_count")]) {
            event.completion = number(&value);
        } else if path_is(path, &[K("done")]) {
            event.done = value == Scalar::Bool(true);
        }
    }

    fn captures(&self, path: &[Seg], _event: &mut Event) -> bool {
        path_is(path, &[K("response")])
            || path_is(path, &[K("thinking")])
            || path_is(path, &[K("message"), K("content")])
            || path_is(path, &[K("message"), K("thinking")])
            || starts_with(path, &[K("message"), K("tool_calls")])
    }

    fn event_end(&self, event: Event, info: &EventInfo<'_>, tally: &mut Tally) {
        if !info.parsed {
            return;
        }
        if event.error {
            tally.upstream_error();
            return;
        }
        let finished = event.done || self.embed;
        if finished {
            tally.complete();
        }
        // A finished response without a count reports zero (omitted, not unknown).
        let zero = finished.then_some(0);
        if let Some(n) = event.prompt.or(zero) {
            tally.reading.prompt = Some(n);
        }
        if !self.embed {
            if let Some(n) = event.completion.or(zero) {
                tally.reading.completion = Some(n);
            }
        }
    }
}
