//! Ollama's own `/api/generate` and `/api/chat`.

use super::*;
use actix_web::web::Data;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A content piece; every third has markup, which Go writes as `\u003c` escapes.
pub(super) fn piece_text(i: i64) -> &'static str {
    if i % 3 == 1 {
        "<b>tok</b> & "
    } else {
        "tok "
    }
}

pub(super) const CREATED_AT: &str = "2026-11-21T10:00:00.487312059Z";

pub(super) async fn generate(chat: bool, model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    if model == "sleepy" {
        actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    }
    if model == "missing" {
        return state
            .body(actix_web::http::StatusCode::NOT_FOUND, &json!({"error": "model 'missing' not found"}));
    }
    let prompt_tokens = words(v);
    let requested = v.pointer("/options/num_predict").and_then(Value::as_i64).filter(|n| *n >= 0);
    let chunks: i64 = match model {
        "slow" => 200,
        _ => requested.unwrap_or(3).min(50),
    };
    let stream_wanted = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    // Fields in the order Go writes them; metrics that are zero are left out (omitempty).
    let piece = |text: &str, done: bool| {
        let mut fields: Vec<(&'static str, Value)> =
            vec![("model", json!(model)), ("created_at", json!(CREATED_AT))];
        if chat {
            fields.push(("message", json!({"role": "assistant", "content": text})));
        } else {
            fields.push(("response", json!(text)));
        }
        fields.push(("done", json!(done)));
        if done {
            fields.push(("done_reason", json!("stop")));
            fields.push(("total_duration", json!(1_234_567_890u64)));
            fields.push(("load_duration", json!(56_789_012u64)));
            if prompt_tokens > 0 {
                fields.push(("prompt_eval_count", json!(prompt_tokens)));
                fields.push(("prompt_eval_duration", json!(23_456_789u64)));
            }
            if chunks > 0 {
                fields.push(("eval_count", json!(chunks)));
                fields.push(("eval_duration", json!(987_654_321u64)));
            }
        }
        Ordered(fields)
    };

    if !stream_wanted {
        state.reported_tokens.fetch_add(prompt_tokens + chunks, Ordering::SeqCst);
        let text: String = (0..chunks).map(piece_text).collect();
        return state.ok(&piece(&text, true));
    }

    let content_chunks = match model {
        "broken" | "cut" => 2,
        "stall" => 1,
        _ => chunks,
    };
    // `echo` says the prompt back first, whatever it holds.
    let prompt_text = v.get("prompt").and_then(Value::as_str).unwrap_or_default().to_owned();
    let text_of = |i: i64| if model == "echo" && i == 0 { prompt_text.as_str() } else { piece_text(i) };
    let mut lines: Vec<String> =
        (0..content_chunks).map(|i| format!("{}\n", state.line(&piece(text_of(i), false)))).collect();
    match model {
        "broken" => lines
            .push(format!("{}\n", state.line(&json!({"error": "model runner has unexpectedly stopped"})))),
        "cut" | "stall" => {}
        _ => {
            if early(model) == Early::Never {
                state.reported_tokens.fetch_add(prompt_tokens + chunks, Ordering::SeqCst);
            }
            lines.push(format!("{}\n", state.line(&piece("", true))));
        }
    }
    let idle = format!("{}\n", state.line(&piece("", false)));
    deliver(state.clone(), model, "application/x-ndjson", lines, idle)
}

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0,
    0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0,
    1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

pub(super) fn output_chunks(v: &Value) -> i64 {
    ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|f| v.get(*f).and_then(Value::as_i64))
        .or_else(|| v.pointer("/options/num_predict").and_then(Value::as_i64))
        .unwrap_or(3)
        .clamp(1, 50)
}
