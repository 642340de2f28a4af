//! Cutting the byte stream into events for the scanner: JSON values one
//! after another (NDJSON lines, or one body, maybe pretty), or server-sent
//! events. Either way the bytes go straight on to the scanner, never copied,
//! and each event's end is reported with what the framing knows of it.

use super::path::Capped;
use super::{Scanner, Sink, Stop};
use memchr::{memchr, memchr2};

/// What a framer reports to: the scanner's findings, and each event's end.
pub trait Events: Sink {
    /// An event (NDJSON line, JSON body, SSE event) ended.
    fn event_end(&mut self, info: &EventInfo<'_>);
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

/// How a response is cut into events.
pub enum Framer {
    /// JSON values one after another: NDJSON, or a single (maybe pretty) body.
    Json,
    Sse(SseFramer),
}

impl Framer {
    pub fn new(sse: bool) -> Framer {
        if sse {
            Framer::Sse(SseFramer::default())
        } else {
            Framer::Json
        }
    }

    pub fn feed(&mut self, bytes: &[u8], scanner: &mut Scanner, events: &mut dyn Events) {
        match self {
            Framer::Sse(framer) => framer.feed(bytes, scanner, events),
            Framer::Json => feed_json(bytes, scanner, events),
        }
    }
}

/// JSON values in a row. A line that is not JSON is skipped to its newline.
fn feed_json(mut bytes: &[u8], scanner: &mut Scanner, events: &mut dyn Events) {
    while let Some(stop) = scanner.feed(bytes, events) {
        match stop {
            Stop::ValueEnd(n) => {
                events.event_end(&EventInfo::JSON);
                bytes = bytes.get(n..).unwrap_or_default();
            }
            Stop::Broken(n) => {
                let rest = bytes.get(n..).unwrap_or_default();
                let Some(newline) = memchr(b'\n', rest) else { return };
                events.event_end(&EventInfo::BROKEN);
                scanner.reset();
                bytes = rest.get(newline + 1..).unwrap_or_default();
            }
        }
    }
}

/// Only `data` and `event` matter; longer field names are ignored.
const MAX_FIELD: usize = 8;
/// Longer event names match nothing known.
const MAX_NAME: usize = 48;
/// `[DONE]` and a little room.
const MAX_HEAD: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Nothing read on this line yet.
    Start,
    Field,
    /// Just after the colon: one space may be skipped.
    ValueStart,
    Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Data,
    Event,
    Other,
}

/// Server-sent events framed by the WHATWG event-stream rules: lines end in
/// CRLF, LF or CR; `data:` with or without its one leading space; several
/// `data:` lines joined by newlines; `:` comments; `event:` names; a blank
/// line dispatches.
pub struct SseFramer {
    line: Line,
    field: Capped<MAX_FIELD>,
    kind: Field,
    after_cr: bool,
    name: Capped<MAX_NAME>,
    /// The start of the event's data, joining newlines included.
    head: Capped<MAX_HEAD>,
    data_lines: usize,
}

impl Default for SseFramer {
    fn default() -> Self {
        SseFramer {
            line: Line::Start,
            field: Capped::EMPTY,
            kind: Field::Other,
            after_cr: false,
            name: Capped::EMPTY,
            head: Capped::EMPTY,
            data_lines: 0,
        }
    }
}

impl SseFramer {
    pub fn feed(&mut self, mut bytes: &[u8], scanner: &mut Scanner, events: &mut dyn Events) {
        while let Some((&b, rest)) = bytes.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    bytes = rest;
                    continue;
                }
            }
            if self.line == Line::Value && self.kind == Field::Data && b != b'\r' && b != b'\n' {
                // The rest of a data line, in one piece.
                let run = memchr2(b'\r', b'\n', bytes).unwrap_or(bytes.len());
                self.data(&bytes[..run], scanner, events);
                bytes = &bytes[run..];
                continue;
            }
            bytes = rest;
            if b == b'\r' || b == b'\n' {
                self.after_cr = b == b'\r';
                self.end_of_line(scanner, events);
                continue;
            }
            match self.line {
                Line::Start if b == b':' => {
                    // A comment: the rest of the line is ignored.
                    self.kind = Field::Other;
                    self.line = Line::Value;
                }
                Line::Start | Line::Field => {
                    self.line = Line::Field;
                    if b == b':' {
                        self.begin_value(scanner);
                        self.line = Line::ValueStart;
                    } else {
                        self.field.push(&[b]);
                    }
                }
                Line::ValueStart | Line::Value => {
                    let skip = self.line == Line::ValueStart && b == b' ';
                    self.line = Line::Value;
                    if !skip {
                        self.value_byte(b, scanner, events);
                    }
                }
            }
        }
    }

    fn field_name(&self) -> Field {
        match self.field.whole() {
            Some(b"data") => Field::Data,
            Some(b"event") => Field::Event,
            _ => Field::Other,
        }
    }

    fn begin_value(&mut self, scanner: &mut Scanner) {
        self.kind = self.field_name();
        match self.kind {
            Field::Data => {
                if self.data_lines > 0 {
                    // Data lines are joined by a newline, which is JSON whitespace.
                    self.head.push(b"\n");
                    scanner_space(scanner);
                }
                self.data_lines += 1;
            }
            Field::Event => self.name.clear(),
            Field::Other => {}
        }
    }

    fn value_byte(&mut self, b: u8, scanner: &mut Scanner, events: &mut dyn Events) {
        match self.kind {
            Field::Data => self.data(&[b], scanner, events),
            Field::Event => self.name.push(&[b]),
            Field::Other => {}
        }
    }

    fn data(&mut self, bytes: &[u8], scanner: &mut Scanner, events: &mut dyn Events) {
        self.head.push(bytes);
        let mut rest = bytes;
        // Not JSON (`[DONE]`, or broken): the rest of the event's data is ignored.
        while let Some(Stop::ValueEnd(n)) = scanner.feed(rest, events) {
            rest = rest.get(n..).unwrap_or_default();
        }
    }

    fn end_of_line(&mut self, scanner: &mut Scanner, events: &mut dyn Events) {
        match self.line {
            Line::Start => self.dispatch(scanner, events),
            Line::Field => {
                // A field name alone: its value is empty.
                self.begin_value(scanner);
            }
            Line::ValueStart | Line::Value => {}
        }
        self.line = Line::Start;
        self.field.clear();
        self.kind = Field::Other;
    }

    fn dispatch(&mut self, scanner: &mut Scanner, events: &mut dyn Events) {
        if self.data_lines > 0 {
            let info = EventInfo {
                name: self.name.whole().unwrap_or_default(),
                done_sentinel: self.head.whole() == Some(&b"[DONE]"[..]),
                parsed: scanner.is_idle(),
                sse: true,
            };
            events.event_end(&info);
        }
        scanner.reset();
        self.name.clear();
        self.head.clear();
        self.data_lines = 0;
    }
}

/// The newline that joins two data lines.
fn scanner_space(scanner: &mut Scanner) {
    struct Nothing;
    impl Sink for Nothing {}
    scanner.feed(b"\n", &mut Nothing);
}

/// A search for the blank line that ends an event (WHATWG: lines end in
/// CRLF, LF or CR) in bytes kept whole (the usage-chunk stripper), that
/// resumes where it stopped, so an event arriving in
/// many small pieces is read once, not once per piece.
#[derive(Default)]
pub struct EventEnd {
    /// Bytes already read.
    at: usize,
    /// Something other than a line end was read since the last line end.
    line_has_text: bool,
}

impl EventEnd {
    /// The length of the first event in `buf` through its blank line; `None`
    /// while it is incomplete.
    pub fn find(&mut self, buf: &[u8]) -> Option<usize> {
        while self.at < buf.len() {
            let rest = &buf[self.at..];
            let Some(pos) = memchr::memchr2(b'\r', b'\n', rest) else {
                self.line_has_text |= !rest.is_empty();
                self.at = buf.len();
                return None;
            };
            let terminator = match (rest[pos], rest.get(pos + 1)) {
                (b'\r', Some(b'\n')) => 2,
                // A CR last: an LF may follow in the next piece.
                (b'\r', None) => {
                    self.line_has_text |= pos > 0;
                    self.at += pos;
                    return None;
                }
                _ => 1,
            };
            let blank = pos == 0 && !self.line_has_text;
            self.at += pos + terminator;
            self.line_has_text = false;
            if blank {
                return Some(self.at);
            }
        }
        None
    }
}
