//! The OpenAI and Anthropic compatibility routes, as Ollama answers them.

use super::*;
use actix_web::web::Data;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

pub(super) fn openai_completion(chat: bool, model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    let prompt = words(v);
    let chunks = output_chunks(v);
    let usage =
        json!({"prompt_tokens": prompt, "completion_tokens": chunks, "total_tokens": prompt + chunks});
    state.reported_tokens.fetch_add(prompt + chunks, Ordering::SeqCst);
    let tools = v.get("tools").is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()));
    let tool_name = v.pointer("/tools/0/function/name").and_then(Value::as_str).unwrap_or("tool").to_owned();
    let (object, chunk_object) = if chat {
        ("chat.completion", "chat.completion.chunk")
    } else {
        ("text_completion", "text_completion")
    };
    let base = |object: &str| json!({"id": "chatcmpl-42", "object": object, "created": 1763719200, "model": model, "system_fingerprint": "fp_ollama"});
    let text: String = (0..chunks).map(piece_text).collect();
    if !v.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        let mut out = base(object);
        out["choices"] = if !chat {
            json!([{"index": 0, "text": text, "finish_reason": "stop"}])
        } else if tools {
            json!([{"index": 0, "message": {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "index": 0,
                "type": "function", "function": {"name": tool_name, "arguments": "{\"city\":\"Paris\"}"}}]}, "finish_reason": "tool_calls"}])
        } else {
            json!([{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}])
        };
        out["usage"] = usage;
        return state.ok(&out);
    }
    let include_usage = v.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
    let mut events = vec![];
    for i in 0..chunks {
        let mut c = base(chunk_object);
        c["choices"] = if chat {
            json!([{"index": 0, "delta": {"role": "assistant", "content": piece_text(i)}, "finish_reason": null}])
        } else {
            json!([{"index": 0, "text": piece_text(i), "finish_reason": null}])
        };
        if i == chunks - 1 {
            c["choices"][0]["finish_reason"] = json!("stop");
        }
        if include_usage && !chat {
            // Ollama's completions writer puts a zero usage on every chunk.
            c["usage"] = json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0});
        }
        events.push(state.event(None, &c));
    }
    if include_usage {
        let mut c = base(chunk_object);
        c["choices"] = json!([]);
        c["usage"] = usage;
        events.push(state.event(None, &c));
    }
    events.push(state.done_event());
    let mut idle = base(chunk_object);
    idle["choices"] = if chat {
        json!([{"index": 0, "delta": {"content": ""}, "finish_reason": null}])
    } else {
        json!([{"index": 0, "text": "", "finish_reason": null}])
    };
    let idle = state.event(None, &idle);
    deliver(state.clone(), model, "text/event-stream", events, idle)
}

pub(super) fn openai_response(model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    let prompt = words(v);
    let chunks = output_chunks(v);
    state.reported_tokens.fetch_add(prompt + chunks, Ordering::SeqCst);
    let text: String = (0..chunks).map(piece_text).collect();
    let response = json!({"id": "resp_42", "object": "response", "created_at": 1763719200, "status": "completed",
        "model": model, "output": [{"type": "message", "id": "msg_42", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": prompt, "output_tokens": chunks, "total_tokens": prompt + chunks}});
    if !v.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return state.ok(&response);
    }
    let mut events = vec![state.event(
        Some("response.created"),
        &json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_42", "object": "response", "status": "in_progress", "model": model, "output": []}}),
    )];
    for i in 0..chunks {
        events.push(state.event(Some("response.output_text.delta"),
            &json!({"type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_42", "output_index": 0, "content_index": 0, "delta": piece_text(i)})));
    }
    events.push(state.event(
        Some("response.output_text.done"),
        &json!({"type": "response.output_text.done", "sequence_number": chunks + 1, "item_id": "msg_42", "output_index": 0, "content_index": 0, "text": text}),
    ));
    events.push(state.event(
        Some("response.completed"),
        &json!({"type": "response.completed", "sequence_number": chunks + 2, "response": response}),
    ));
    let idle = state.event(
        Some("response.output_text.delta"),
        &json!({"type": "response.output_text.delta", "item_id": "msg_42", "output_index": 0, "content_index": 0, "delta": ""}),
    );
    deliver(state.clone(), model, "text/event-stream", events, idle)
}

pub(super) fn anthropic_message(model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    if model.starts_with("claude") {
        return state.body(actix_web::http::StatusCode::NOT_FOUND, &json!({"type": "error", "error": {"type": "not_found_error", "message": format!("model '{model}' not found")}}));
    }
    let prompt = words(v);
    let chunks = output_chunks(v);
    state.reported_tokens.fetch_add(prompt + chunks, Ordering::SeqCst);
    let tools = v.get("tools").is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()));
    let tool_name = v.pointer("/tools/0/name").and_then(Value::as_str).unwrap_or("tool").to_owned();
    let text: String = (0..chunks).map(piece_text).collect();
    let (content, stop) = if tools {
        (
            json!([{"type": "tool_use", "id": "toolu_1", "name": tool_name, "input": {"city": "Paris"}}]),
            "tool_use",
        )
    } else {
        (json!([{"type": "text", "text": text}]), "end_turn")
    };
    if !v.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return state.ok(&json!({"id": "msg_42", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": chunks}}));
    }
    let event = |name: &str, data: Value| state.event(Some(name), &data);
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_42", "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": prompt, "output_tokens": 0}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for i in 0..chunks {
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece_text(i)}})));
    }
    events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": chunks}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    let idle = event("ping", json!({"type": "ping"}));
    deliver(state.clone(), model, "text/event-stream", events, idle)
}
