//! Ollama's Anthropic-compatible API: `message_start` carries
//! `message.usage.input_tokens`, `message_delta` the final `usage.output_tokens`,
//! `message_stop` ends a complete stream, `event: error` reports a failure.
//! Generated text comes in `content_block_delta` events.

use super::json::{path_is, starts_with, Scalar, Seg, Sink, Step::*};
use super::{number, Event, EventInfo, Tally, UsageParser};

#[derive(Default)]
pub struct Anthropic {
    tally: Tally,
    event: Event,
}

impl Sink for Anthropic {
    fn member(&mut self, path: &[Seg]) {
        if path_is(path, &[K("error")]) {
            self.event.error = true;
        }
    }

    fn scalar(&mut self, path: &[Seg], value: Scalar<'_>) {
        if path_is(path, &[K("type")]) {
            if let Scalar::Str(s, complete) = value {
                self.event.set_kind(s, complete);
            }
        } else if path_is(path, &[K("message"), K("usage"), K("input_tokens")])
            || path_is(path, &[K("usage"), K("input_tokens")])
        {
            self.event.prompt = number(&value);
        } else if path_is(path, &[K("usage"), K("output_tokens")]) {
            // `message_start`'s `message.usage.output_tokens` is a placeholder, not read.
            self.event.completion = number(&value);
        }
    }

    fn captures(&mut self, path: &[Seg]) -> bool {
        if path_is(path, &[K("delta"), K("text")])
            || path_is(path, &[K("delta"), K("partial_json")])
            || path_is(path, &[K("delta"), K("thinking")])
        {
            self.event.conditional = true;
            return true;
        }
        path_is(path, &[K("content"), Any, K("text")])
            || path_is(path, &[K("content"), Any, K("thinking")])
            || starts_with(path, &[K("content"), Any, K("input")])
    }

    fn text(&mut self, bytes: &[u8]) {
        self.tally.delivered.push(bytes);
    }
}

impl UsageParser for Anthropic {
    fn event_end(&mut self, info: &EventInfo<'_>) {
        let event = std::mem::replace(&mut self.event, Event::starting(&self.tally.delivered));
        let kind = event.kind(info);
        if event.conditional && kind != b"content_block_delta" {
            self.tally.delivered.rewind(event.mark);
        }
        if kind == b"error" || (info.parsed && event.error) {
            self.tally.error = true;
            return;
        }
        if !info.parsed {
            return;
        }
        if kind == b"message_stop" {
            self.tally.done = true;
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
