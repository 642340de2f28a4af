//! A finished span, as the exporter sends it.

use super::context::{SpanId, TraceId};
use std::time::{SystemTime, UNIX_EPOCH};

/// OTLP's `SpanKind`, by its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Str(bounded(text))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Str(bounded(&text))
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

/// The longest attribute text sent: a client's model name or error text
/// reaches a trace store that is not built for megabytes in one field.
pub const MAX_VALUE_LEN: usize = 256;

fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_VALUE_LEN) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct SpanData {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// `Some(message)` for a span that failed; unset otherwise.
    pub error: Option<String>,
}

/// Now, in Unix nanoseconds.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let Value::Str(cut) = Value::from("é".repeat(MAX_VALUE_LEN + 5)) else { panic!() };
        assert_eq!(cut.chars().count(), MAX_VALUE_LEN);
        assert_eq!(Value::from("short"), Value::Str("short".into()));
    }
}
