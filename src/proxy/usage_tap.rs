//! Reads token counts from a response as it streams past, without holding it back.
//!
//! Counts are found by their JSON key (`"eval_count":123`). A key inside a
//! string value is escaped (`\"eval_count\"`) and cannot match; a key inside a
//! tool call's arguments could, so the last occurrence wins: Ollama writes the
//! real counts after the message. A match may straddle two chunks, so the last
//! few bytes of each chunk are kept and scanned together with the next.

use memchr::memmem;
use std::sync::OnceLock;

/// Longest pattern plus whitespace and a 20-digit number.
const CARRY: usize = 96;

/// A byte pattern and its searcher. Building a searcher costs more than
/// running it over a chunk, so each is built once, on first use.
pub struct Pattern {
    bytes: &'static [u8],
    finder: OnceLock<memmem::Finder<'static>>,
}

impl Pattern {
    const fn new(bytes: &'static [u8]) -> Self {
        Pattern { bytes, finder: OnceLock::new() }
    }

    fn find_iter<'h, 'p>(&'p self, haystack: &'h [u8]) -> memmem::FindIter<'h, 'p> {
        self.finder.get_or_init(|| memmem::Finder::new(self.bytes)).find_iter(haystack)
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Prompt,
    Completion,
}

/// How one API family reports usage and errors.
pub struct Dialect {
    numbers: &'static [(&'static Pattern, Field)],
    /// Seen at the start of a line when the upstream reports an error mid-stream.
    error: &'static Pattern,
    /// One of these per streamed chunk of generated text (roughly one token).
    unit: &'static Pattern,
}

static PROMPT_EVAL_COUNT: Pattern = Pattern::new(b"\"prompt_eval_count\":");
static EVAL_COUNT: Pattern = Pattern::new(b"\"eval_count\":");
static PROMPT_TOKENS: Pattern = Pattern::new(b"\"prompt_tokens\":");
static COMPLETION_TOKENS: Pattern = Pattern::new(b"\"completion_tokens\":");
static INPUT_TOKENS: Pattern = Pattern::new(b"\"input_tokens\":");
static OUTPUT_TOKENS: Pattern = Pattern::new(b"\"output_tokens\":");
static NDJSON_ERROR: Pattern = Pattern::new(b"\n{\"error\":");
static SSE_ERROR: Pattern = Pattern::new(b"\ndata: {\"error\":");
static ANTHROPIC_ERROR: Pattern = Pattern::new(b"\nevent: error");
static LINE: Pattern = Pattern::new(b"\n");
static SSE_DATA: Pattern = Pattern::new(b"\ndata:");

pub static OLLAMA: Dialect = Dialect {
    numbers: &[(&PROMPT_EVAL_COUNT, Field::Prompt), (&EVAL_COUNT, Field::Completion)],
    error: &NDJSON_ERROR,
    unit: &LINE,
};

pub static OPENAI: Dialect = Dialect {
    numbers: &[
        (&PROMPT_TOKENS, Field::Prompt),
        (&COMPLETION_TOKENS, Field::Completion),
        (&INPUT_TOKENS, Field::Prompt),
        (&OUTPUT_TOKENS, Field::Completion),
    ],
    error: &SSE_ERROR,
    unit: &SSE_DATA,
};

pub static ANTHROPIC: Dialect = Dialect {
    numbers: &[(&INPUT_TOKENS, Field::Prompt), (&OUTPUT_TOKENS, Field::Completion)],
    error: &ANTHROPIC_ERROR,
    unit: &SSE_DATA,
};

/// What a complete response ends with, where there is such a thing: a
/// response that ends without it was cut short, even if the connection closed cleanly.
pub static OLLAMA_DONE: Pattern = Pattern::new(b"\"done\":true");
pub static OPENAI_DONE: Pattern = Pattern::new(b"data: [DONE]");
pub static RESPONSES_DONE: Pattern = Pattern::new(b"\"type\":\"response.completed\"");
pub static ANTHROPIC_DONE: Pattern = Pattern::new(b"\"type\":\"message_stop\"");

pub struct UsageTap {
    dialect: &'static Dialect,
    end: Option<&'static Pattern>,
    tail: Vec<u8>,
    pub prompt: Option<i64>,
    pub completion: Option<i64>,
    pub done: bool,
    pub error: bool,
    /// Streamed chunks seen: the completion estimate when no count arrives.
    pub units: i64,
}

impl UsageTap {
    pub fn new(dialect: &'static Dialect, end: Option<&'static Pattern>) -> Self {
        // A virtual newline before the first byte lets "start of line" patterns
        // match at the very start of the body.
        let mut tail = Vec::with_capacity(CARRY * 2);
        tail.push(b'\n');
        UsageTap { dialect, end, tail, prompt: None, completion: None, done: false, error: false, units: 0 }
    }

    /// The response has an end marker, so its absence means it was cut short.
    pub fn expects_end(&self) -> bool {
        self.end.is_some()
    }

    pub fn observe(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.units += self.dialect.unit.find_iter(chunk).count() as i64;
        // Matches that begin in earlier bytes and complete in this chunk.
        let carried = self.tail.len();
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(&chunk[..chunk.len().min(CARRY)]);
        self.scan(&window, Some(carried));
        // Matches that begin in this chunk.
        self.scan(chunk, None);
        // Keep the last CARRY bytes of everything seen so far.
        if chunk.len() >= CARRY {
            window.clear();
            window.extend_from_slice(&chunk[chunk.len() - CARRY..]);
        } else {
            window.truncate(carried);
            window.extend_from_slice(chunk);
            let excess = window.len().saturating_sub(CARRY);
            window.drain(..excess);
        }
        self.tail = window;
    }

    /// With `boundary`, only matches that start before it and complete at or after it.
    fn scan(&mut self, buf: &[u8], boundary: Option<usize>) {
        let starts_ok = |pos: usize| boundary.is_none_or(|b| pos < b);
        let completes_ok = |end: usize| boundary.is_none_or(|b| end >= b);
        for (pattern, field) in self.dialect.numbers {
            for pos in pattern.find_iter(buf) {
                if !starts_ok(pos) {
                    break;
                }
                if let Some((value, end)) = number_after(buf, pos + pattern.len()) {
                    if completes_ok(end) {
                        match field {
                            Field::Prompt => self.prompt = Some(value),
                            Field::Completion => self.completion = Some(value),
                        }
                    }
                }
            }
        }
        for (pattern, flag) in [(self.end, &mut self.done), (Some(self.dialect.error), &mut self.error)] {
            let Some(pattern) = pattern else { continue };
            for pos in pattern.find_iter(buf) {
                if starts_ok(pos) && completes_ok(pos + pattern.len() - 1) {
                    *flag = true;
                }
            }
        }
    }
}

/// A whole number after optional spaces, and the index of the byte that ends it.
/// `None` while the number may still go on in the next chunk.
fn number_after(buf: &[u8], mut i: usize) -> Option<(i64, usize)> {
    while i < buf.len() && buf[i] == b' ' {
        i += 1;
    }
    let start = i;
    let mut value: i64 = 0;
    while i < buf.len() && buf[i].is_ascii_digit() {
        value = value.saturating_mul(10).saturating_add(i64::from(buf[i] - b'0'));
        i += 1;
    }
    (i > start && i < buf.len()).then_some((value, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "{\"model\":\"m\",\"response\":\"say \\\"eval_count\\\":999 \",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"hi\",\"done\":false}\n",
        "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",",
        "\"prompt_eval_count\":26,\"eval_count\":290}\n"
    );

    fn tap_in_chunks(text: &str, size: usize) -> UsageTap {
        let mut tap = UsageTap::new(&OLLAMA, Some(&OLLAMA_DONE));
        for chunk in text.as_bytes().chunks(size) {
            tap.observe(chunk);
        }
        tap
    }

    #[test]
    fn counts_are_read_whatever_the_chunking() {
        for size in 1..=STREAM.len() {
            let tap = tap_in_chunks(STREAM, size);
            assert_eq!(
                (tap.prompt, tap.completion, tap.done, tap.error),
                (Some(26), Some(290), true, false),
                "size {size}"
            );
            assert_eq!(tap.units, 3);
        }
    }

    #[test]
    fn an_error_line_mid_stream_is_noticed() {
        let text = "{\"response\":\"a\",\"done\":false}\n{\"error\":\"model crashed\"}\n";
        for size in 1..=text.len() {
            let tap = tap_in_chunks(text, size);
            assert!(tap.error && !tap.done, "size {size}");
        }
        assert!(tap_in_chunks("{\"error\":\"boom\"}", 4).error);
    }

    #[test]
    fn a_number_at_the_very_end_of_the_body_is_not_yet_complete() {
        let tap = tap_in_chunks("{\"eval_count\":12", 5);
        assert_eq!(tap.completion, None);
    }

    #[test]
    fn openai_usage_in_the_last_sse_event_is_read() {
        let text = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n\
            data: [DONE]\n\n";
        let mut tap = UsageTap::new(&OPENAI, Some(&OPENAI_DONE));
        for c in text.as_bytes().chunks(7) {
            tap.observe(c);
        }
        assert_eq!((tap.prompt, tap.completion, tap.done), (Some(11), Some(7), true));
    }
}
