//! Reads token counts from a response as it streams past, without holding it back.
//!
//! The bytes are framed (NDJSON lines and plain JSON bodies, or server-sent
//! events) and walked by an incremental JSON scanner that keeps only the path
//! to the current value: a count is read from its place in the structure
//! (`usage.completion_tokens`), never from anywhere in the text, so a model
//! that writes `"eval_count":999` in its answer changes nothing. One parser
//! per API family says which paths matter and what ends a response. The
//! generated text that passes is kept (bounded) so that a stream cut short can
//! be charged for what it delivered.

mod anthropic;
mod json;
mod ollama;
mod openai;
mod sse;

pub use json::Sink;

use super::routes::Kind;
use json::{Scanner, Stop};
use memchr::memchr;
use sse::SseFramer;

/// Generated text kept for the estimate of a stream cut short; past this,
/// the rest is counted as one token per four bytes.
pub const DELIVERED_CAP: usize = 1024 * 1024;

/// What a complete response of a route ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndMarker {
    /// An Ollama object with `"done": true`.
    OllamaDone,
    /// `data: [DONE]`.
    OpenAiDone,
    /// A `response.completed` event.
    ResponseCompleted,
    /// A `message_stop` event.
    MessageStop,
}

impl EndMarker {
    /// What a complete response of this route ends with, if it has such a marker.
    pub fn for_route(kind: Kind, streamed: bool) -> Option<EndMarker> {
        match kind {
            Kind::Generate | Kind::Chat => Some(EndMarker::OllamaDone),
            Kind::OpenAiChat | Kind::OpenAiCompletions if streamed => Some(EndMarker::OpenAiDone),
            Kind::OpenAiResponses if streamed => Some(EndMarker::ResponseCompleted),
            Kind::AnthropicMessages if streamed => Some(EndMarker::MessageStop),
            _ => None,
        }
    }
}

/// The end of one NDJSON line, JSON body or SSE event.
pub struct EventInfo<'a> {
    /// The SSE `event:` name (empty elsewhere).
    pub name: &'a [u8],
    /// The event's data was exactly `[DONE]`.
    pub done_sentinel: bool,
    /// Its JSON was read whole; otherwise only the text seen counts.
    pub parsed: bool,
    /// An SSE event (a streamed chunk), not a whole JSON body.
    pub sse: bool,
}

impl EventInfo<'_> {
    const JSON: EventInfo<'static> = EventInfo { name: b"", done_sentinel: false, parsed: true, sse: false };
    const BROKEN: EventInfo<'static> =
        EventInfo { name: b"", done_sentinel: false, parsed: false, sse: false };
}

/// The generated text that passed, decoded, up to `DELIVERED_CAP`.
#[derive(Default)]
pub struct Delivered {
    text: Vec<u8>,
    /// Bytes past the cap.
    overflow: u64,
}

impl Delivered {
    pub fn push(&mut self, bytes: &[u8]) {
        let room = DELIVERED_CAP.saturating_sub(self.text.len());
        let kept = bytes.len().min(room);
        self.text.extend_from_slice(&bytes[..kept]);
        self.overflow = self.overflow.saturating_add((bytes.len() - kept) as u64);
    }

    fn mark(&self) -> (usize, u64) {
        (self.text.len(), self.overflow)
    }

    /// Forgets what was pushed since `mark`.
    fn rewind(&mut self, mark: (usize, u64)) {
        self.text.truncate(mark.0);
        self.overflow = mark.1;
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.overflow == 0
    }

    /// The token count of the text: tokenized on the pool, plus four bytes a
    /// token past the cap.
    pub async fn tokens(self, tokenizer: &crate::tokens::Tokenizer) -> i64 {
        let text = String::from_utf8(self.text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let counted = tokenizer.count(text).tokens().await;
        counted.saturating_add(i64::try_from(self.overflow / 4).unwrap_or(i64::MAX))
    }
}

/// What the parsers have read so far, shared by every family.
#[derive(Default)]
pub struct Tally {
    pub prompt: Option<i64>,
    pub completion: Option<i64>,
    /// The family's end of a complete response was seen.
    pub done: bool,
    /// The upstream reported an error in the body.
    pub error: bool,
    pub delivered: Delivered,
}

impl Tally {
    /// Takes the counts an event reported; the last report wins.
    fn count(&mut self, event: &Event) {
        if let Some(n) = event.prompt {
            self.prompt = Some(n);
        }
        if let Some(n) = event.completion {
            self.completion = Some(n);
        }
    }
}

/// One API family's reading of the events: which paths carry counts and text,
/// and which event ends a response.
pub trait UsageParser: Sink {
    /// An event (NDJSON line, JSON body, SSE event) ended.
    fn event_end(&mut self, info: &EventInfo<'_>);
    fn tally(&self) -> &Tally;
    fn tally_mut(&mut self) -> &mut Tally;
}

enum Framing {
    /// JSON values one after another: NDJSON, or a single (maybe pretty) body.
    Json,
    Sse(SseFramer),
}

pub struct UsageTap {
    framing: Framing,
    scanner: Scanner,
    parser: Box<dyn UsageParser>,
    end: Option<EndMarker>,
}

impl UsageTap {
    /// A tap for a route's response; `sse` when it is an event stream.
    pub fn new(kind: Kind, sse: bool, end: Option<EndMarker>) -> Self {
        let parser: Box<dyn UsageParser> = match kind {
            Kind::Generate | Kind::Chat => Box::new(ollama::Ollama::new(false)),
            Kind::Embed => Box::new(ollama::Ollama::new(true)),
            Kind::AnthropicMessages | Kind::AnthropicCountTokens => Box::new(anthropic::Anthropic::default()),
            Kind::OpenAiChat | Kind::OpenAiCompletions | Kind::OpenAiEmbeddings | Kind::OpenAiResponses => {
                Box::new(openai::OpenAi::default())
            }
            // Routes that report no counts: nothing is read.
            _ => Box::new(NoCounts::default()),
        };
        let framing = if sse { Framing::Sse(SseFramer::default()) } else { Framing::Json };
        UsageTap { framing, scanner: Scanner::default(), parser, end }
    }

    /// The response has an end marker, so its absence means it was cut short.
    pub fn expects_end(&self) -> bool {
        self.end.is_some()
    }

    pub fn prompt(&self) -> Option<i64> {
        self.parser.tally().prompt
    }

    pub fn completion(&self) -> Option<i64> {
        self.parser.tally().completion
    }

    pub fn done(&self) -> bool {
        self.parser.tally().done
    }

    pub fn error(&self) -> bool {
        self.parser.tally().error
    }

    /// A response that should have ended with its marker and did not, or that
    /// reported an error: its counts, if any, are not the final ones.
    pub fn cut_short(&self) -> bool {
        self.error() || (self.expects_end() && !self.done())
    }

    /// The generated text seen, for the estimate; leaves the tap without it.
    pub fn take_delivered(&mut self) -> Delivered {
        std::mem::take(&mut self.parser.tally_mut().delivered)
    }

    /// Looks at a chunk on its way to the client.
    pub fn observe(&mut self, chunk: &[u8]) {
        match &mut self.framing {
            Framing::Sse(framer) => framer.feed(chunk, &mut self.scanner, self.parser.as_mut()),
            Framing::Json => feed_json(chunk, &mut self.scanner, self.parser.as_mut()),
        }
    }
}

/// JSON values in a row. A line that is not JSON is skipped to its newline.
fn feed_json(mut bytes: &[u8], scanner: &mut Scanner, parser: &mut dyn UsageParser) {
    while let Some(stop) = scanner.feed(bytes, parser) {
        match stop {
            Stop::ValueEnd(n) => {
                parser.event_end(&EventInfo::JSON);
                bytes = bytes.get(n..).unwrap_or_default();
            }
            Stop::Broken(n) => {
                let rest = bytes.get(n..).unwrap_or_default();
                let Some(newline) = memchr(b'\n', rest) else { return };
                parser.event_end(&EventInfo::BROKEN);
                scanner.reset();
                bytes = rest.get(newline + 1..).unwrap_or_default();
            }
        }
    }
}

/// For routes whose responses carry no counts (legacy embeddings, model management).
#[derive(Default)]
struct NoCounts {
    tally: Tally,
}

impl Sink for NoCounts {}

impl UsageParser for NoCounts {
    fn event_end(&mut self, _info: &EventInfo<'_>) {}

    fn tally(&self) -> &Tally {
        &self.tally
    }

    fn tally_mut(&mut self) -> &mut Tally {
        &mut self.tally
    }
}

/// What one event has shown so far; the parsers commit it at the event's end.
#[derive(Default)]
struct Event {
    prompt: Option<i64>,
    completion: Option<i64>,
    done: bool,
    error: bool,
    /// The `type` member, if short.
    kind: Option<([u8; json::MAX_SHORT], usize)>,
    /// The delivered text's length when the event began.
    mark: (usize, u64),
    /// Text captured that belongs to the delivered text only for some event types.
    conditional: bool,
    /// The event has `choices` entries (so its `usage`, if any, is a placeholder).
    has_choices: bool,
}

impl Event {
    fn starting(delivered: &Delivered) -> Self {
        Event { mark: delivered.mark(), ..Event::default() }
    }

    fn set_kind(&mut self, value: &[u8], complete: bool) {
        if complete {
            let mut buf = [0u8; json::MAX_SHORT];
            let n = value.len().min(json::MAX_SHORT);
            buf[..n].copy_from_slice(&value[..n]);
            self.kind = Some((buf, n));
        }
    }

    /// The `type` member, or else the SSE event name.
    fn kind<'a>(&'a self, info: &'a EventInfo<'_>) -> &'a [u8] {
        match &self.kind {
            Some((buf, n)) => buf.get(..*n).unwrap_or_default(),
            None => info.name,
        }
    }
}

fn number(value: &json::Scalar<'_>) -> Option<i64> {
    match value {
        json::Scalar::Number(Some(n)) if *n >= 0 => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
