//! Decoding the inside of a JSON string, byte by byte: escapes, `\uXXXX`
//! and surrogate pairs, whose pieces may arrive in different chunks.

/// The state of an escape, and a high surrogate waiting for its low half.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unescape {
    escape: Escape,
    high_surrogate: Option<u16>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    Backslash,
    /// Hex digits of a `\uXXXX` read so far, and their value.
    Unicode(u8, u16),
}

impl Unescape {
    /// Nothing is pending: the next bytes up to a quote or backslash are plain text.
    pub fn is_plain(&self) -> bool {
        self.escape == Escape::None && self.high_surrogate.is_none()
    }

    /// A byte inside a string (key or value): the decoded bytes it completes,
    /// the end of the string, an invalid escape, or nothing yet.
    pub fn byte(&mut self, b: u8) -> Option<Decoded> {
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
                    _ => return Some(Decoded::Invalid),
                };
                let lone = self.high_surrogate.take().map(|_| '\u{FFFD}');
                Some(with_lone(lone, &[c]))
            }
            Escape::Unicode(n, acc) => {
                let Some(digit) = (b as char).to_digit(16) else {
                    self.escape = Escape::None;
                    return Some(Decoded::Invalid);
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

/// Decoded bytes (at most two characters' worth), the string's end, or an
/// escape that is not JSON.
pub enum Decoded {
    Bytes([u8; 8], usize),
    End,
    Invalid,
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
