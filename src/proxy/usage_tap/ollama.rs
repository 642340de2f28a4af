//! Ollama's native API: NDJSON objects on `/api/generate` and `/api/chat`, the
//! final one with `"done": true` and the counts; a single object when not
//! streamed; `{"error": ...}` when generation fails. Ollama leaves out metrics
//! that are zero, so a finished response without a count reports 0.

use super::json::{path_is, starts_with, Scalar, Seg, Sink, Step::*};
use super::{number, Event, EventInfo, Tally, UsageParser};

pub struct Ollama {
    tally: Tally,
    event: Event,
    /// `/api/embed`: one object, finished when it is whole.
    embed: bool,
}

impl Ollama {
    pub fn new(embed: bool) -> Self {
        Ollama { tally: Tally::default(), event: Event::default(), embed }
    }
}

impl Sink for Ollama {
    fn member(&mut self, path: &[Seg]) {
        if path_is(path, &[K("error")]) {
            self.event.error = true;
        }
    }

    fn scalar(&mut self, path: &[Seg], value: Scalar<'_>) {
        if path_is(path, &[K("prompt_eval_count")]) {
            self.event.prompt = number(&value);
        } else if path_is(path, &[K("eval_count")]) {
            self.event.completion = number(&value);
        } else if path_is(path, &[K("done")]) {
            self.event.done = value == Scalar::Bool(true);
        }
    }

    fn captures(&mut self, path: &[Seg]) -> bool {
        path_is(path, &[K("response")])
            || path_is(path, &[K("thinking")])
            || path_is(path, &[K("message"), K("content")])
            || path_is(path, &[K("message"), K("thinking")])
            || starts_with(path, &[K("message"), K("tool_calls")])
    }

    fn text(&mut self, bytes: &[u8]) {
        self.tally.delivered.push(bytes);
    }
}

impl UsageParser for Ollama {
    fn event_end(&mut self, info: &EventInfo<'_>) {
        let event = std::mem::replace(&mut self.event, Event::starting(&self.tally.delivered));
        if !info.parsed {
            return;
        }
        if event.error {
            self.tally.error = true;
            return;
        }
        let finished = event.done || self.embed;
        if finished {
            self.tally.done = true;
        }
        // A finished response without a count reports zero (omitted, not unknown).
        let zero = finished.then_some(0);
        if let Some(n) = event.prompt.or(zero) {
            self.tally.prompt = Some(n);
        }
        if !self.embed {
            if let Some(n) = event.completion.or(zero) {
                self.tally.completion = Some(n);
            }
        }
    }

    fn tally(&self) -> &Tally {
        &self.tally
    }

    fn tally_mut(&mut self) -> &mut Tally {
        &mut self.tally
    }
}
