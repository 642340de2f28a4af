//! Server-sent events framed by the WHATWG event-stream rules: lines end in
//! CRLF, LF or CR; `data:` with or without its one leading space; several
//! `data:` lines joined by newlines; `:` comments; `event:` names; a blank
//! line dispatches. The data goes straight on to the JSON scanner, never copied.

use super::json::{Scanner, Stop};
use super::{EventInfo, UsageParser};
use memchr::memchr2;

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

pub struct SseFramer {
    line: Line,
    field: [u8; MAX_FIELD],
    field_len: usize,
    kind: Field,
    after_cr: bool,
    name: [u8; MAX_NAME],
    name_len: usize,
    head: [u8; MAX_HEAD],
    head_len: usize,
    data_len: usize,
    data_lines: usize,
}

impl Default for SseFramer {
    fn default() -> Self {
        SseFramer {
            line: Line::Start,
            field: [0; MAX_FIELD],
            field_len: 0,
            kind: Field::Other,
            after_cr: false,
            name: [0; MAX_NAME],
            name_len: 0,
            head: [0; MAX_HEAD],
            head_len: 0,
            data_len: 0,
            data_lines: 0,
        }
    }
}

impl SseFramer {
    pub fn feed(&mut self, mut bytes: &[u8], scanner: &mut Scanner, parser: &mut dyn UsageParser) {
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
                self.data(&bytes[..run], scanner, parser);
                bytes = &bytes[run..];
                continue;
            }
            bytes = rest;
            if b == b'\r' || b == b'\n' {
                self.after_cr = b == b'\r';
                self.end_of_line(scanner, parser);
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
                    } else if let Some(slot) = self.field.get_mut(self.field_len) {
                        *slot = b;
                        self.field_len += 1;
                    } else {
                        self.field_len = MAX_FIELD + 1;
                    }
                }
                Line::ValueStart | Line::Value => {
                    let skip = self.line == Line::ValueStart && b == b' ';
                    self.line = Line::Value;
                    if !skip {
                        self.value_byte(b, scanner, parser);
                    }
                }
            }
        }
    }

    fn field_name(&self) -> Field {
        match self.field.get(..self.field_len) {
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
                    self.data_len = self.data_len.saturating_add(1);
                    scanner_space(scanner);
                }
                self.data_lines += 1;
            }
            Field::Event => self.name_len = 0,
            Field::Other => {}
        }
    }

    fn value_byte(&mut self, b: u8, scanner: &mut Scanner, parser: &mut dyn UsageParser) {
        match self.kind {
            Field::Data => self.data(&[b], scanner, parser),
            Field::Event => {
                if let Some(slot) = self.name.get_mut(self.name_len) {
                    *slot = b;
                }
                self.name_len = self.name_len.saturating_add(1);
            }
            Field::Other => {}
        }
    }

    fn data(&mut self, bytes: &[u8], scanner: &mut Scanner, parser: &mut dyn UsageParser) {
        for &b in bytes.iter().take(MAX_HEAD.saturating_sub(self.data_len)) {
            if let Some(slot) = self.head.get_mut(self.head_len) {
                *slot = b;
                self.head_len += 1;
            }
        }
        self.data_len = self.data_len.saturating_add(bytes.len());
        let mut rest = bytes;
        // Not JSON (`[DONE]`, or broken): the rest of the event's data is ignored.
        while let Some(Stop::ValueEnd(n)) = scanner.feed(rest, parser) {
            rest = rest.get(n..).unwrap_or_default();
        }
    }

    fn end_of_line(&mut self, scanner: &mut Scanner, parser: &mut dyn UsageParser) {
        match self.line {
            Line::Start => self.dispatch(scanner, parser),
            Line::Field => {
                // A field name alone: its value is empty.
                self.begin_value(scanner);
            }
            Line::ValueStart | Line::Value => {}
        }
        self.line = Line::Start;
        self.field_len = 0;
        self.kind = Field::Other;
    }

    fn dispatch(&mut self, scanner: &mut Scanner, parser: &mut dyn UsageParser) {
        if self.data_lines > 0 {
            let name = self.name.get(..self.name_len).unwrap_or_default();
            let head = self.head.get(..self.head_len).unwrap_or_default();
            let info = EventInfo {
                name,
                done_sentinel: self.data_len == b"[DONE]".len() && head == b"[DONE]",
                parsed: scanner.is_idle(),
                sse: true,
            };
            parser.event_end(&info);
        }
        scanner.reset();
        self.name_len = 0;
        self.head_len = 0;
        self.data_len = 0;
        self.data_lines = 0;
    }
}

/// The newline that joins two data lines.
fn scanner_space(scanner: &mut Scanner) {
    struct Nothing;
    impl super::json::Sink for Nothing {}
    scanner.feed(b"\n", &mut Nothing);
}
