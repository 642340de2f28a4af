//! An incremental (push) JSON scanner: bytes go in as they arrive, in chunks
//! cut anywhere, and the scanner tells a `Sink` what it finds at which path.
//!
//! It keeps only the path from the root to the current value, the current
//! short token, and the state of an escape: no copy of the text. Everything is
//! bounded (depth, key length, number length, short string values); a value
//! past a bound is still walked but never reported. A syntax error makes the
//! scanner ignore everything until `reset` (the framer calls it at the next
//! line or event), so one bad line never spoils the next.

mod frame;
mod path;
mod unescape;

pub use frame::{EventEnd, EventInfo, Events, Framer};
pub use path::{path_is, starts_with, Capped, Scalar, Seg, Sink, Step, MAX_SHORT};

use memchr::memchr2;
use path::Key;
use unescape::{Decoded, Unescape};

/// Deeper values are walked but never reported (no usage field is this deep).
const MAX_DEPTH: usize = 32;
/// Longer numbers are not token counts.
const MAX_NUMBER: usize = 24;

/// Why `feed` stopped before the end of its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A top-level value ended after this many bytes.
    ValueEnd(usize),
    /// The text is not JSON from this byte on.
    Broken(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A value is expected (top level, after `:`, after `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    InKey,
    Colon,
    InString,
    Number,
    Literal,
    /// After a value: `,`, a closing bracket, or (at the top) the next value.
    After,
    Broken,
}

pub struct Scanner {
    state: State,
    path: Vec<Seg>,
    /// Containers below `MAX_DEPTH` that are walked but not on `path`: true for objects.
    hidden: Vec<bool>,
    unescape: Unescape,
    /// The key being read.
    key: Key,
    /// The start of the string value being read, and whether it goes to the sink.
    short: Capped<MAX_SHORT>,
    capturing: bool,
    number: Capped<MAX_NUMBER>,
    literal: &'static [u8],
    literal_pos: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Value,
            path: Vec::with_capacity(8),
            hidden: Vec::new(),
            unescape: Unescape::default(),
            key: Key::EMPTY,
            short: Capped::EMPTY,
            capturing: false,
            number: Capped::EMPTY,
            literal: b"",
            literal_pos: 0,
        }
    }
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
}

/// JSON whitespace.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Scanner {
    /// Forgets the value in progress: the next byte starts a new one.
    pub fn reset(&mut self) {
        self.state = State::Value;
        self.path.clear();
        self.hidden.clear();
        self.unescape = Unescape::default();
    }

    /// Between values at the top level: nothing is in progress.
    pub fn is_idle(&self) -> bool {
        self.depth() == 0 && matches!(self.state, State::Value | State::After)
    }

    fn depth(&self) -> usize {
        self.path.len().saturating_add(self.hidden.len())
    }

    /// Walks `bytes`, stopping where a top-level value ends or the text
    /// stops being JSON; `None` when all of it was taken in.
    pub fn feed<S: Sink + ?Sized>(&mut self, bytes: &[u8], sink: &mut S) -> Option<Stop> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Broken {
                return Some(Stop::Broken(i));
            }
            if self.unescape.is_plain() && matches!(self.state, State::InString | State::InKey) {
                // The common case: a run of plain text, taken in one piece.
                let rest = &bytes[i..];
                let run = memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                self.string_bytes(&rest[..run], sink);
                i += run;
                if run == rest.len() {
                    break;
                }
            } else if self.state == State::Number {
                // The rest of a number, up to the byte that ends it.
                let rest = &bytes[i..];
                let run = rest.iter().position(|&b| !is_number_byte(b)).unwrap_or(rest.len());
                self.number.push(&rest[..run]);
                i += run;
                if run == rest.len() {
                    break;
                }
            }
            let b = bytes[i];
            i += 1;
            if self.step(b, sink) {
                return Some(Stop::ValueEnd(i));
            }
        }
        (self.state == State::Broken).then_some(Stop::Broken(i))
    }

    /// One byte; true when it ends a top-level value.
    fn step<S: Sink + ?Sized>(&mut self, b: u8, sink: &mut S) -> bool {
        match self.state {
            State::Broken => false,
            State::Value | State::ArrayFirst => {
                if is_space(b) {
                    return false;
                }
                if b == b']' && self.state == State::ArrayFirst {
                    return self.close(false);
                }
                self.begin_value(b, sink)
            }
            State::ObjectFirst | State::Key => match b {
                _ if is_space(b) => false,
                b'}' if self.state == State::ObjectFirst => self.close(true),
                b'"' => {
                    self.key.clear();
                    self.state = State::InKey;
                    false
                }
                _ => self.broken(),
            },
            State::InKey | State::InString => {
                match self.unescape.byte(b) {
                    Some(Decoded::End) => return self.string_end(sink),
                    Some(Decoded::Bytes(buf, n)) => self.string_bytes(&buf[..n], sink),
                    Some(Decoded::Invalid) => self.state = State::Broken,
                    None => {}
                }
                false
            }
            State::Colon => match b {
                _ if is_space(b) => false,
                b':' => {
                    self.state = State::Value;
                    false
                }
                _ => self.broken(),
            },
            State::Number => {
                if is_number_byte(b) {
                    self.number.push(&[b]);
                    return false;
                }
                self.end_number(sink);
                if self.value_done() {
                    // The byte that ended a top-level number belongs to what follows.
                    self.step(b, sink);
                    return true;
                }
                self.step(b, sink)
            }
            State::Literal => {
                if self.literal.get(self.literal_pos) != Some(&b) {
                    return self.broken();
                }
                self.literal_pos += 1;
                if self.literal_pos < self.literal.len() {
                    return false;
                }
                if self.reported() {
                    let value = match self.literal {
                        b"true" => Scalar::Bool(true),
                        b"false" => Scalar::Bool(false),
                        _ => Scalar::Null,
                    };
                    sink.scalar(&self.path, value);
                }
                self.value_done()
            }
            State::After => match b {
                _ if is_space(b) => false,
                b',' if self.depth() > 0 => {
                    if self.in_object() {
                        self.state = State::Key;
                    } else {
                        if let Some(Seg::Index(n)) = self.visible_top_mut() {
                            *n = n.saturating_add(1);
                        }
                        self.state = State::Value;
                    }
                    false
                }
                b'}' if self.depth() > 0 && self.in_object() => self.close(true),
                b']' if self.depth() > 0 && !self.in_object() => self.close(false),
                _ if self.depth() == 0 => {
                    // Values in a row at the top level (NDJSON without the newline).
                    self.state = State::Value;
                    self.step(b, sink)
                }
                _ => self.broken(),
            },
        }
    }

    fn begin_value<S: Sink + ?Sized>(&mut self, b: u8, sink: &mut S) -> bool {
        match b {
            b'{' | b'[' => {
                let object = b == b'{';
                if self.hidden.is_empty() && self.path.len() < MAX_DEPTH {
                    self.path.push(if object { Seg::Key(Key::EMPTY) } else { Seg::Index(0) });
                } else if self.depth() < MAX_DEPTH * 8 {
                    self.hidden.push(object);
                } else {
                    return self.broken();
                }
                self.state = if object { State::ObjectFirst } else { State::ArrayFirst };
                false
            }
            b'"' => {
                self.short.clear();
                self.capturing = self.reported() && sink.captures(&self.path);
                self.state = State::InString;
                false
            }
            b'-' | b'0'..=b'9' => {
                self.number.clear();
                self.number.push(&[b]);
                self.state = State::Number;
                false
            }
            b't' | b'f' | b'n' => {
                self.literal = match b {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                self.literal_pos = 1;
                self.state = State::Literal;
                false
            }
            _ => self.broken(),
        }
    }

    /// Values inside hidden (too deep) containers are never reported.
    fn reported(&self) -> bool {
        self.hidden.is_empty()
    }

    fn in_object(&self) -> bool {
        match self.hidden.last() {
            Some(object) => *object,
            None => matches!(self.path.last(), Some(Seg::Key(_))),
        }
    }

    fn visible_top_mut(&mut self) -> Option<&mut Seg> {
        if self.hidden.is_empty() {
            self.path.last_mut()
        } else {
            None
        }
    }

    fn close(&mut self, object: bool) -> bool {
        let closed = match self.hidden.pop() {
            Some(o) => o,
            None => matches!(self.path.pop(), Some(Seg::Key(_))),
        };
        if closed != object {
            return self.broken();
        }
        self.value_done()
    }

    /// A value ended: true when it was a top-level one.
    fn value_done(&mut self) -> bool {
        self.state = State::After;
        self.depth() == 0
    }

    fn broken(&mut self) -> bool {
        self.state = State::Broken;
        false
    }

    fn end_number<S: Sink + ?Sized>(&mut self, sink: &mut S) {
        if !self.reported() {
            return;
        }
        let value = self
            .number
            .whole()
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|s| s.parse::<i64>().ok());
        sink.scalar(&self.path, Scalar::Number(value));
    }

    /// The closing quote of a key (a colon follows) or of a string value.
    fn string_end<S: Sink + ?Sized>(&mut self, sink: &mut S) -> bool {
        if self.state == State::InKey {
            let key = self.key;
            if let Some(Seg::Key(k)) = self.visible_top_mut() {
                *k = key;
            }
            if self.hidden.is_empty() {
                sink.member(&self.path);
            }
            self.state = State::Colon;
            return false;
        }
        if self.reported() {
            let complete = self.short.whole().is_some();
            sink.scalar(&self.path, Scalar::Str(self.short.kept(), complete));
        }
        self.value_done()
    }

    /// Decoded bytes of a key or a string value.
    fn string_bytes<S: Sink + ?Sized>(&mut self, bytes: &[u8], sink: &mut S) {
        if self.state == State::InKey {
            self.key.push_slice(bytes);
            return;
        }
        if bytes.is_empty() {
            return;
        }
        self.short.push(bytes);
        if self.capturing {
            sink.text(bytes);
        }
    }
}
