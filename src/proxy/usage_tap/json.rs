//! An incremental (push) JSON scanner: bytes go in as they arrive, in chunks
//! cut anywhere, and the scanner tells a `Sink` what it finds at which path.
//!
//! It keeps only the path from the root to the current value, the current
//! short token, and the state of an escape: no copy of the text. Everything is
//! bounded (depth, key length, number length, short string values); a value
//! past a bound is still walked but never reported. A syntax error makes the
//! scanner ignore everything until `reset` (the framer calls it at the next
//! line or event), so one bad line never spoils the next.

use memchr::memchr2;

/// Deeper values are walked but never reported (no usage field is this deep).
const MAX_DEPTH: usize = 32;
/// Longer keys never match a known name.
pub const MAX_KEY: usize = 32;
/// Longer numbers are not token counts.
const MAX_NUMBER: usize = 24;
/// Short string values (`"type":"message_stop"`) are kept to this length.
pub const MAX_SHORT: usize = 48;

/// One step of a path: an object member's key, or an array position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(Key),
    Index(u32),
}

/// A decoded object key, kept if it is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; MAX_KEY],
    len: u8,
    overlong: bool,
}

impl Key {
    const EMPTY: Key = Key { bytes: [0; MAX_KEY], len: 0, overlong: false };

    fn push(&mut self, b: u8) {
        match self.bytes.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = b;
                self.len = self.len.saturating_add(1);
            }
            None => self.overlong = true,
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.overlong = false;
    }

    /// Appends a run of plain (unescaped) bytes.
    fn push_slice(&mut self, run: &[u8]) {
        let at = usize::from(self.len);
        let kept = run.len().min(MAX_KEY - at);
        self.bytes[at..at + kept].copy_from_slice(&run[..kept]);
        self.len = (at + kept) as u8;
        self.overlong |= kept < run.len();
    }

    pub fn is(&self, name: &str) -> bool {
        !self.overlong && self.bytes.get(..usize::from(self.len)) == Some(name.as_bytes())
    }
}

impl Seg {
    pub fn is(&self, name: &str) -> bool {
        matches!(self, Seg::Key(k) if k.is(name))
    }
}

/// A path pattern step: a key name, or any array position.
#[derive(Clone, Copy)]
pub enum Step {
    K(&'static str),
    Any,
}

/// Whether `path` is exactly `pattern`.
pub fn path_is(path: &[Seg], pattern: &[Step]) -> bool {
    path.len() == pattern.len() && starts_with(path, pattern)
}

/// Whether `path` begins with `pattern`.
pub fn starts_with(path: &[Seg], pattern: &[Step]) -> bool {
    path.len() >= pattern.len()
        && path.iter().zip(pattern).all(|(seg, step)| match step {
            Step::K(name) => seg.is(name),
            Step::Any => matches!(seg, Seg::Index(_)),
        })
}

/// A complete scalar value.
#[derive(Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// A whole number that fits; `None` for fractions, exponents and overlong ones.
    Number(Option<i64>),
    /// A string's first `MAX_SHORT` decoded bytes, and whether that is all of it.
    Str(&'a [u8], bool),
    Bool(bool),
    Null,
}

/// What a scanner reports to.
pub trait Sink {
    /// An object member's key was read; `path` ends with it.
    fn member(&mut self, _path: &[Seg]) {}
    /// A scalar value at `path`.
    fn scalar(&mut self, _path: &[Seg], _value: Scalar<'_>) {}
    /// Whether the decoded text of the string at `path` should go to `text`.
    fn captures(&mut self, _path: &[Seg]) -> bool {
        false
    }
    /// Decoded UTF-8 bytes of a captured string, in pieces as they arrive.
    fn text(&mut self, _bytes: &[u8]) {}
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// Hex digits of a `\uXXXX` read so far, and their value.
    Unicode(u8, u16),
}

pub struct Scanner {
    state: State,
    path: Vec<Seg>,
    /// Containers below `MAX_DEPTH` that are walked but not on `path`: true for objects.
    hidden: Vec<bool>,
    escape: Escape,
    /// A high surrogate waiting for its low half.
    high_surrogate: Option<u16>,
    /// The key being read.
    key: Key,
    /// The start of the string value being read, and whether it goes to the sink.
    short: [u8; MAX_SHORT],
    short_len: usize,
    short_complete: bool,
    capturing: bool,
    number: [u8; MAX_NUMBER],
    number_len: usize,
    literal: &'static [u8],
    literal_pos: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Value,
            path: Vec::with_capacity(8),
            hidden: Vec::new(),
            escape: Escape::None,
            high_surrogate: None,
            key: Key::EMPTY,
            short: [0; MAX_SHORT],
            short_len: 0,
            short_complete: true,
            capturing: false,
            number: [0; MAX_NUMBER],
            number_len: 0,
            literal: b"",
            literal_pos: 0,
        }
    }
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Scanner {
    /// Forgets the value in progress: the next byte starts a new one.
    pub fn reset(&mut self) {
        self.state = State::Value;
        self.path.clear();
        self.hidden.clear();
        self.escape = Escape::None;
        self.high_surrogate = None;
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
            let plain = self.escape == Escape::None && self.high_surrogate.is_none();
            if plain && matches!(self.state, State::InString | State::InKey) {
                // The common case: a run of plain text, taken in one piece.
                let rest = &bytes[i..];
                let run = memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                if self.state == State::InKey {
                    self.key.push_slice(&rest[..run]);
                } else {
                    self.string_bytes(&rest[..run], sink);
                }
                i += run;
                if run == rest.len() {
                    break;
                }
            } else if self.state == State::Number {
                // The rest of a number, up to the byte that ends it.
                let rest = &bytes[i..];
                let run = rest.iter().position(|&b| !is_number_byte(b)).unwrap_or(rest.len());
                for &b in &rest[..run] {
                    if let Some(slot) = self.number.get_mut(self.number_len) {
                        *slot = b;
                    }
                    self.number_len = self.number_len.saturating_add(1);
                }
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
            State::InKey => {
                if let Some(decoded) = self.string_byte(b) {
                    match decoded {
                        Decoded::End => {
                            let key = self.key;
                            if let Some(Seg::Key(k)) = self.visible_top_mut() {
                                *k = key;
                            }
                            if self.hidden.is_empty() {
                                sink.member(&self.path);
                            }
                            self.state = State::Colon;
                        }
                        Decoded::Bytes(buf, n) => {
                            for &c in &buf[..n] {
                                self.key.push(c);
                            }
                        }
                    }
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
            State::InString => {
                if let Some(decoded) = self.string_byte(b) {
                    match decoded {
                        Decoded::End => {
                            if self.reported() {
                                let (short, complete) = (&self.short[..self.short_len], self.short_complete);
                                sink.scalar(&self.path, Scalar::Str(short, complete));
                            }
                            return self.value_done();
                        }
                        Decoded::Bytes(buf, n) => self.string_bytes(&buf[..n], sink),
                    }
                }
                false
            }
            State::Number => {
                if is_number_byte(b) {
                    if let Some(slot) = self.number.get_mut(self.number_len) {
                        *slot = b;
                    }
                    self.number_len = self.number_len.saturating_add(1);
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
                self.short_len = 0;
                self.short_complete = true;
                self.capturing = self.reported() && sink.captures(&self.path);
                self.state = State::InString;
                false
            }
            b'-' | b'0'..=b'9' => {
                self.number[0] = b;
                self.number_len = 1;
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
        let digits = self.number.get(..self.number_len);
        let value = digits
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|s| s.parse::<i64>().ok());
        sink.scalar(&self.path, Scalar::Number(value));
    }

    fn string_bytes<S: Sink + ?Sized>(&mut self, bytes: &[u8], sink: &mut S) {
        if bytes.is_empty() {
            return;
        }
        let room = MAX_SHORT.saturating_sub(self.short_len);
        let kept = bytes.len().min(room);
        self.short[self.short_len..self.short_len + kept].copy_from_slice(&bytes[..kept]);
        self.short_len += kept;
        if kept < bytes.len() {
            self.short_complete = false;
        }
        if self.capturing {
            sink.text(bytes);
        }
    }

    /// A byte inside a string (key or value): the decoded bytes it completes,
    /// the end of the string, or nothing yet.
    fn string_byte(&mut self, b: u8) -> Option<Decoded> {
        match self.escape {
            Escape::None => match b {
                b'"' => {
                    self.high_surrogate = None;
                    Some(Decoded::End)
                }
                b'\\' => {
                    self.escape = Escape::Backslash;
                    None
                }
                _ => {
                    let lone = self.high_surrogate.take().map(|_| '\u{FFFD}');
                    Some(with_lone(lone, &[b]))
                }
            },
            Escape::Backslash => {
                self.escape = Escape::None;
                let c = match b {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        self.escape = Escape::Unicode(0, 0);
                        return None;
                    }
                    _ => {
                        self.state = State::Broken;
                        return None;
                    }
                };
                let lone = self.high_surrogate.take().map(|_| '\u{FFFD}');
                Some(with_lone(lone, &[c]))
            }
            Escape::Unicode(n, acc) => {
                let Some(digit) = (b as char).to_digit(16) else {
                    self.state = State::Broken;
                    self.escape = Escape::None;
                    return None;
                };
                let acc = (acc << 4) | digit as u16;
                if n < 3 {
                    self.escape = Escape::Unicode(n + 1, acc);
                    return None;
                }
                self.escape = Escape::None;
                Some(self.code_unit(acc))
            }
        }
    }

    fn code_unit(&mut self, unit: u16) -> Decoded {
        match (self.high_surrogate.take(), unit) {
            (None, 0xD800..=0xDBFF) => {
                self.high_surrogate = Some(unit);
                Decoded::Bytes([0; 8], 0)
            }
            (Some(high), 0xDC00..=0xDFFF) => {
                let c = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                encode(None, char::from_u32(c).unwrap_or('\u{FFFD}'))
            }
            (Some(_), 0xD800..=0xDBFF) => {
                self.high_surrogate = Some(unit);
                encode(None, '\u{FFFD}')
            }
            (lone, _) => {
                encode(lone.map(|_| '\u{FFFD}'), char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'))
            }
        }
    }
}

/// Decoded bytes (at most two characters' worth), or the string's end.
enum Decoded {
    Bytes([u8; 8], usize),
    End,
}

fn with_lone(lone: Option<char>, bytes: &[u8]) -> Decoded {
    let mut buf = [0u8; 8];
    let mut n = 0;
    if let Some(c) = lone {
        n += c.encode_utf8(&mut buf).len();
    }
    for &b in bytes {
        if let Some(slot) = buf.get_mut(n) {
            *slot = b;
            n += 1;
        }
    }
    Decoded::Bytes(buf, n)
}

fn encode(lone: Option<char>, c: char) -> Decoded {
    let mut buf = [0u8; 8];
    let mut n = 0;
    if let Some(l) = lone {
        n += l.encode_utf8(&mut buf).len();
    }
    n += c.encode_utf8(&mut buf[n..]).len();
    Decoded::Bytes(buf, n)
}
