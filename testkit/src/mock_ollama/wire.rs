//! Go's `encoding/json` as Ollama writes it, or another server's spaced JSON.

use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use std::io;

/// Go's `encoding/json` (compact, HTML-safe escapes) or, spaced, another server's.
pub(super) struct Wire {
    pub(super) spaced: bool,
}

impl serde_json::ser::Formatter for Wire {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        if self.spaced {
            return w.write_all(fragment.as_bytes());
        }
        let mut last = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[last..i])?;
            w.write_all(escaped.as_bytes())?;
            last = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[last..])
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match (first, self.spaced) {
            (true, _) => Ok(()),
            (false, true) => w.write_all(b", "),
            (false, false) => w.write_all(b","),
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match (first, self.spaced) {
            (true, true) => w.write_all(b" "),
            (false, true) => w.write_all(b", "),
            (true, false) => Ok(()),
            (false, false) => w.write_all(b","),
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.spaced { b" : " } else { b":" })
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.spaced { b" }" } else { b"}" })
    }
}

/// An object whose members keep the order they are given (Go writes struct fields in order).
pub(super) struct Ordered(pub(super) Vec<(&'static str, Value)>);

impl serde::Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
