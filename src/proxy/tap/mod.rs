//! Reads token counts from a response as it streams past, without holding it back.
//!
//! The bytes are framed (NDJSON lines and plain JSON bodies, or server-sent
//! events) and walked by an incremental JSON scanner that keeps only the path
//! to the current value (`scan`): a count is read from its place in the
//! structure (`usage.completion_tokens`), never from anywhere in the text, so a
//! model that writes `"eval_count":999` in its answer changes nothing. One
//! dialect per API family (`ndjson`, `openai_sse`, `anthropic_sse`) says which
//! paths matter and what ends a response. The generated text that passes is
//! kept (bounded) so that a stream cut short can be charged for what it
//! delivered.

mod anthropic_sse;
mod ndjson;
mod openai_sse;
mod reader;
mod scan;
mod usage_chunk;

pub use anthropic_sse::AnthropicSseTap;
pub use ndjson::NdjsonTap;
pub use openai_sse::OpenAiSseTap;
pub use reader::Reader;
pub use usage_chunk::DropUsageChunk;

use super::policy::routes::Kind;
use reader::NoCounts;

/// Generated text kept for the estimate of a stream cut short; past this,
/// the rest is counted as one token per four bytes.
pub const DELIVERED_CAP: usize = 1024 * 1024;

/// What a tap has read of a response so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub prompt: Option<i64>,
    pub completion: Option<i64>,
    /// Events ended: NDJSON lines, JSON bodies, SSE events.
    pub units: u64,
    /// The family's end of a complete response was seen.
    pub complete: bool,
    /// The upstream reported an error in the body.
    pub upstream_error: bool,
}

/// Bytes in, counts out; memory stays bounded however long the response.
pub trait UsageParser {
    /// Looks at a chunk on its way to the client.
    fn feed(&mut self, chunk: &[u8]);
    fn reading(&self) -> Reading;
    /// The generated text seen, for the estimate; leaves the parser without it.
    fn take_delivered(&mut self) -> Delivered;
}

/// What a complete response of a route ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndMarker {
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
    fn of(kind: Kind, streamed: bool) -> Option<EndMarker> {
        match kind {
            Kind::Generate | Kind::Chat => Some(EndMarker::OllamaDone),
            Kind::OpenAiChat | Kind::OpenAiCompletions if streamed => Some(EndMarker::OpenAiDone),
            Kind::OpenAiResponses if streamed => Some(EndMarker::ResponseCompleted),
            Kind::AnthropicMessages if streamed => Some(EndMarker::MessageStop),
            _ => None,
        }
    }
}

/// The usage tap of one response: the parser of its route's family.
pub enum Tap {
    Ollama(NdjsonTap),
    OpenAi(OpenAiSseTap),
    Anthropic(AnthropicSseTap),
    /// Routes that report no counts (legacy embeddings, model management): nothing is read.
    Silent(Reader<NoCounts>),
}

/// Runs `$body` on whichever parser the tap holds.
macro_rules! each {
    ($tap:expr, $t:ident => $body:expr) => {
        match $tap {
            Tap::Ollama($t) => $body,
            Tap::OpenAi($t) => $body,
            Tap::Anthropic($t) => $body,
            Tap::Silent($t) => $body,
        }
    };
}

impl Tap {
    /// The tap for a route's response: `streamed` when the request asked for a
    /// stream, `sse` when the response is an event stream (its content type).
    pub fn for_route(kind: Kind, streamed: bool, sse: bool) -> Tap {
        Tap::new(kind, sse, EndMarker::of(kind, streamed))
    }

    fn new(kind: Kind, sse: bool, end: Option<EndMarker>) -> Tap {
        let ends = end.is_some();
        match kind {
            Kind::Generate | Kind::Chat => {
                Tap::Ollama(Reader::new(ndjson::Ollama { embed: false }, sse, ends))
            }
            Kind::Embed => Tap::Ollama(Reader::new(ndjson::Ollama { embed: true }, sse, ends)),
            Kind::AnthropicMessages | Kind::AnthropicCountTokens => {
                Tap::Anthropic(Reader::new(anthropic_sse::Anthropic, sse, ends))
            }
            Kind::OpenAiChat | Kind::OpenAiCompletions | Kind::OpenAiEmbeddings | Kind::OpenAiResponses => {
                Tap::OpenAi(Reader::new(openai_sse::OpenAi, sse, ends))
            }
            _ => Tap::Silent(Reader::new(NoCounts, sse, ends)),
        }
    }

    /// Looks at a chunk on its way to the client.
    pub fn observe(&mut self, chunk: &[u8]) {
        self.feed(chunk);
    }

    /// The response has an end marker, so its absence means it was cut short.
    pub fn expects_end(&self) -> bool {
        each!(self, t => t.expects_end())
    }

    /// The generated text seen, for the estimate; leaves the tap without it.
    pub fn take_delivered(&mut self) -> Delivered {
        each!(self, t => t.take_delivered())
    }
}

/// What the tests ask of a tap. Settlement reads `reading()` once, at the
/// end, and judges it in `settle::charge`.
#[cfg(test)]
impl Tap {
    pub fn prompt(&self) -> Option<i64> {
        self.reading().prompt
    }

    pub fn completion(&self) -> Option<i64> {
        self.reading().completion
    }

    pub fn done(&self) -> bool {
        self.reading().complete
    }

    pub fn error(&self) -> bool {
        self.reading().upstream_error
    }

    pub fn cut_short(&self) -> bool {
        self.error() || (self.expects_end() && !self.done())
    }
}

impl UsageParser for Tap {
    fn feed(&mut self, chunk: &[u8]) {
        each!(self, t => t.feed(chunk))
    }

    fn reading(&self) -> Reading {
        each!(self, t => t.reading())
    }

    fn take_delivered(&mut self) -> Delivered {
        Tap::take_delivered(self)
    }
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

#[cfg(test)]
mod tests;
