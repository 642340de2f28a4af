//! Streams as Ollama sends them, ending early as the model name asks.

use super::*;
use actix_web::web::{Bytes, Data};
use actix_web::HttpResponse;
use futures_util::stream;
use serde_json::Value;
use std::io;
use std::time::Duration;

/// How a stream ends early, from the model name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Early {
    Never,
    /// After this many lines or events the connection dies.
    Cut(usize),
    /// After this many, events without text until the stream is dropped.
    Hold(usize),
    /// After this many, silence.
    Silent(usize),
}

pub(super) fn early(model: &str) -> Early {
    let n = |prefix: &str| model.strip_prefix(prefix).and_then(|n| n.parse().ok());
    match model {
        "cut" => Early::Cut(2),
        "stall" => Early::Silent(1),
        _ => match (n("cut-"), n("hold-")) {
            (Some(k), _) => Early::Cut(k),
            (_, Some(k)) => Early::Hold(k),
            _ => Early::Never,
        },
    }
}

/// Sends `events` one chunk each, ending as the model name says. Failing
/// models pause between chunks, so the head and first chunks are on the wire.
/// `idle` is an event without text, for `hold-N`.
pub(super) fn deliver(
    state: Data<MockState>,
    model: &str,
    content_type: &str,
    mut events: Vec<String>,
    idle: String,
) -> HttpResponse {
    let early = early(model);
    let delay = match (model, early) {
        ("slow", _) => Duration::from_millis(30),
        (_, Early::Never) if model != "broken" => Duration::ZERO,
        _ => Duration::from_millis(20),
    };
    if let Early::Cut(n) | Early::Hold(n) | Early::Silent(n) = early {
        events.truncate(n);
    }
    let mut items: Vec<Result<Bytes, io::Error>> = events.into_iter().map(|e| Ok(Bytes::from(e))).collect();
    if let Early::Cut(_) = early {
        items.push(Err(io::Error::other("connection reset")));
    }
    let watch = Watch { finished: false, state };
    let body = stream::unfold((items.into_iter(), watch, true), move |(mut it, mut watch, first)| {
        let idle = idle.clone();
        async move {
            if !first && !delay.is_zero() {
                actix_web::rt::time::sleep(delay).await;
            }
            match (it.next(), early) {
                (Some(item), _) => Some((item, (it, watch, false))),
                (None, Early::Hold(_)) => {
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                    Some((Ok(Bytes::from(idle)), (it, watch, false)))
                }
                (None, Early::Silent(_)) => {
                    actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
                    None
                }
                (None, _) => {
                    watch.finish();
                    None
                }
            }
        }
    });
    HttpResponse::Ok().content_type(content_type.to_owned()).streaming(body)
}

/// Words in every text the request sends: strings, content parts, system blocks.
pub(super) fn words(v: &Value) -> i64 {
    fn count(v: &Value) -> i64 {
        match v {
            Value::String(s) => s.split_whitespace().count() as i64,
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(o) => o.get("text").map_or(0, count),
            _ => 0,
        }
    }
    let mut n = 0;
    for field in ["prompt", "system", "input", "instructions"] {
        n += v.get(field).map_or(0, count);
    }
    if let Some(Value::Array(ms)) = v.get("messages") {
        for m in ms {
            n += m.get("content").map_or(0, count);
        }
    }
    n
}
