//! Ollama's OpenAI-compatible API. Chat completions and completions stream
//! `data: {chunk}` events and end with `data: [DONE]`; the usage is a top-level
//! `usage` (`prompt_tokens`, `completion_tokens`). The Responses API streams
//! typed events and ends with `response.completed`, whose `response.usage`
//! has `input_tokens` and `output_tokens`. Errors are a top-level `error`.
//! With `include_usage`, `/v1/completions` puts a zero `usage` on every chunk
//! and the real one on a last chunk with `"choices": []`, as chat completions do.
//! The usage chunk the gate asked for and the client did not is taken out on
//! the way by `DropUsageChunk` (`usage_chunk.rs`).

use super::reader::{number, Dialect, Event, Reader, Tally};
use super::scan::{path_is, starts_with, EventInfo, Scalar, Seg, Step::*};

/// The tap for the OpenAI-compatible routes.
pub type OpenAiSseTap = Reader<OpenAi>;

pub struct OpenAi;

impl Dialect for OpenAi {
    fn member(&self, path: &[Seg], event: &mut Event) {
        if path.len() == 3 && starts_with(path, &[K("choices"), Any]) {
            event.has_choices = true;
        }
    }

    fn scalar(&self, path: &[Seg], value: Scalar<'_>, event: &mut Event) {
        let usage = match path.first() {
            Some(s) if s.is("usage") => &path[1..],
            Some(s) if s.is("response") && path.get(1).is_some_and(|s| s.is("usage")) => &path[2..],
            _ => {
                if let (true, Scalar::Str(s, complete)) = (path_is(path, &[K("type")]), &value) {
                    event.set_kind(s, *complete);
                }
                return;
            }
        };
        if path_is(usage, &[K("prompt_tokens")]) || path_is(usage, &[K("input_tokens")]) {
            event.prompt = number(&value);
        } else if path_is(usage, &[K("completion_tokens")]) || path_is(usage, &[K("output_tokens")]) {
            event.completion = number(&value);
        }
    }

    fn captures(&self, path: &[Seg], event: &mut Event) -> bool {
        if path_is(path, &[K("delta")]) {
            // Responses: text only in `response.*.delta` events, checked at the event's end.
            event.conditional = true;
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

    fn event_end(&self, event: Event, info: &EventInfo<'_>, tally: &mut Tally) {
        let kind = event.kind(info);
        let text_event = kind.starts_with(b"response.") && kind.ends_with(b".delta");
        if event.conditional && !text_event {
            tally.delivered.rewind(event.mark);
        }
        if info.done_sentinel {
            tally.complete();
        }
        if !info.parsed {
            return;
        }
        if event.error || kind == b"error" || kind == b"response.failed" {
            tally.upstream_error();
            return;
        }
        if kind == b"response.completed" {
            tally.complete();
        }
        // `/v1/completions` with `include_usage` carries a zero `usage` on every
        // streamed chunk; only the usage chunk (`"choices": []`) has the counts.
        if info.sse && event.has_choices {
            return;
        }
        tally.count(&event);
    }
}
