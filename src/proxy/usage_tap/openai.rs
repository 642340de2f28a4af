//! Ollama's OpenAI-compatible API. Chat completions and completions stream
//! `data: {chunk}` events and end with `data: [DONE]`; the usage is a top-level
//! `usage` (`prompt_tokens`, `completion_tokens`). The Responses API streams
//! typed events and ends with `response.completed`, whose `response.usage`
//! has `input_tokens` and `output_tokens`. Errors are a top-level `error`.
//! With `include_usage`, `/v1/completions` puts a zero `usage` on every chunk
//! and the real one on a last chunk with `"choices": []`, as chat completions do.

use super::json::{path_is, starts_with, Scalar, Seg, Sink, Step::*};
use super::{number, Event, EventInfo, Tally, UsageParser};

#[derive(Default)]
pub struct OpenAi {
    tally: Tally,
    event: Event,
}

impl Sink for OpenAi {
    fn member(&mut self, path: &[Seg]) {
        if path_is(path, &[K("error")]) {
            self.event.error = true;
        } else if path.len() == 3 && starts_with(path, &[K("choices"), Any]) {
            self.event.has_choices = true;
        }
    }

    fn scalar(&mut self, path: &[Seg], value: Scalar<'_>) {
        let usage = match path.first() {
            Some(s) if s.is("usage") => &path[1..],
            Some(s) if s.is("response") && path.get(1).is_some_and(|s| s.is("usage")) => &path[2..],
            _ => {
                if let (true, Scalar::Str(s, complete)) = (path_is(path, &[K("type")]), &value) {
                    self.event.set_kind(s, *complete);
                }
                return;
            }
        };
        if path_is(usage, &[K("prompt_tokens")]) || path_is(usage, &[K("input_tokens")]) {
            self.event.prompt = number(&value);
        } else if path_is(usage, &[K("completion_tokens")]) || path_is(usage, &[K("output_tokens")]) {
            self.event.completion = number(&value);
        }
    }

    fn captures(&mut self, path: &[Seg]) -> bool {
        if path_is(path, &[K("delta")]) {
            // Responses: text only in `response.*.delta` events, checked at the event's end.
            self.event.conditional = true;
            return true;
        }
        if !starts_with(path, &[K("choices"), Any]) {
            return starts_with(path, &[K("output"), Any]) && path.last().is_some_and(|s| s.is("text"));
        }
        let choice = path.get(2..).unwrap_or_default();
        path_is(choice, &[K("text")])
            || path_is(choice, &[K("delta"), K("content")])
            || path_is(choice, &[K("delta"), K("reasoning")])
            || path_is(choice, &[K("delta"), K("refusal")])
            || path_is(choice, &[K("message"), K("content")])
            || path_is(choice, &[K("message"), K("reasoning")])
            || starts_with(choice, &[K("delta"), K("tool_calls"), Any, K("function")])
            || starts_with(choice, &[K("message"), K("tool_calls"), Any, K("function")])
    }

    fn text(&mut self, bytes: &[u8]) {
        self.tally.delivered.push(bytes);
    }
}

impl UsageParser for OpenAi {
    fn event_end(&mut self, info: &EventInfo<'_>) {
        let event = std::mem::replace(&mut self.event, Event::starting(&self.tally.delivered));
        let kind = event.kind(info);
        let text_event = kind.starts_with(b"response.") && kind.ends_with(b".delta");
        if event.conditional && !text_event {
            self.tally.delivered.rewind(event.mark);
        }
        if info.done_sentinel {
            self.tally.done = true;
        }
        if !info.parsed {
            return;
        }
        if event.error || kind == b"error" || kind == b"response.failed" {
            self.tally.error = true;
            return;
        }
        if kind == b"response.completed" {
            self.tally.done = true;
        }
        // `/v1/completions` with `include_usage` carries a zero `usage` on every
        // streamed chunk; only the usage chunk (`"choices": []`) has the counts.
        if info.sse && event.has_choices {
            return;
        }
        self.tally.count(&event);
    }

    fn tally(&self) -> &Tally {
        &self.tally
    }

    fn tally_mut(&mut self) -> &mut Tally {
        &mut self.tally
    }
}
