//! Ollama's Anthropic-compatible API: `message_start` carries
//! `message.usage.input_tokens`, `message_delta` the final `usage.output_tokens`,
//! `message_stop` ends a complete stream, `event: error` reports a failure.
//! Generated text comes in `content_block_delta` events.

use super::reader::{number, Dialect, Event, Reader, Tally};
use super::scan::{path_is, starts_with, EventInfo, Scalar, Seg, Step::*};

/// The tap for `/v1/messages`.
pub type AnthropicSseTap = Reader<Anthropic>;

pub struct Anthropic;

impl Dialect for Anthropic {
    fn scalar(&self, path: &[Seg], value: Scalar<'_>, event: &mut Event) {
        if path_is(path, &[K("type")]) {
            if let Scalar::Str(s, complete) = value {
                event.set_kind(s, complete);
            }
        } else if path_is(path, &[K("message"), K("usage"), K("input_tokens")])
            || path_is(path, &[K("usage"), K("input_tokens")])
        {
            event.prompt = number(&value);
        } else if path_is(path, &[K("usage"), K("output_tokens")]) {
            // `message_start`'s `message.usage.output_tokens` is a placeholder, not read.
            event.completion = number(&value);
        }
    }

    fn captures(&self, path: &[Seg], event: &mut Event) -> bool {
        if path_is(path, &[K("delta"), K("text")])
            || path_is(path, &[K("delta"), K("partial_json")])
            || path_is(path, &[K("delta"), K("thinking")])
        {
            event.conditional = true;
            return true;
        }
        path_is(path, &[K("content"), Any, K("text")])
            || path_is(path, &[K("content"), Any, K("thinking")])
            || starts_with(path, &[K("content"), Any, K("input")])
    }

    fn event_end(&self, event: Event, info: &EventInfo<'_>, tally: &mut Tally) {
        let kind = event.kind(info);
        if event.conditional && kind != b"content_block_delta" {
            tally.delivered.rewind(event.mark);
        }
        if kind == b"error" || (info.parsed && event.error) {
            tally.upstream_error();
            return;
        }
        if !info.parsed {
            return;
        }
        if kind == b"message_stop" {
            tally.complete();
        }
        tally.count(&event);
    }
}
