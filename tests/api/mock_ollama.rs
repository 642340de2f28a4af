//! A mock Ollama that speaks NDJSON like the real one, reports token counts on
//! the final chunk, and misbehaves on request.
//!
//! The model name picks the behaviour:
//! - any name: `num_predict` (default 3) content chunks, then `done` with counts
//! - `slow`: 200 chunks, 30 ms apart (for disconnects and concurrency)
//! - `broken`: two chunks, then an `{"error": ...}` line under HTTP 200
//! - `cut`: two chunks, then the connection dies
//! - `stall`: one chunk, then silence
//! - `missing`: 404 model not found
//! - `sleepy`: answers only after 3 seconds (a cold model load)
//!
//! Counts: `prompt_eval_count` is the number of words in the prompt (which is
//! what the gate's tokenizer estimates for plain words), `eval_count` the chunks sent.
//!
//! The OpenAI-compatible routes (`/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/v1/responses`, `/v1/models`) and the Anthropic one
//! (`/v1/messages`) answer as Ollama's compatibility layers do: SSE events,
//! usage in a last `choices: []` chunk only when `stream_options.include_usage`
//! is set, Anthropic counts on `message_start` and `message_delta`. A request
//! with `tools` gets a tool call back.

use actix_web::web::{self, Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use futures_util::stream;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Default)]
pub struct MockState {
    pub requests: Mutex<Vec<Recorded>>,
    /// Streams dropped before their last chunk: the gate hung up on us.
    pub cancelled: AtomicUsize,
    /// Sum of every prompt_eval_count + eval_count reported.
    pub reported_tokens: AtomicI64,
}

pub struct MockOllama {
    pub url: String,
    pub state: Arc<MockState>,
}

impl MockOllama {
    pub async fn start() -> MockOllama {
        let state = Arc::new(MockState::default());
        let data = Data::from(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
                .workers(2)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("mock binds");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        MockOllama { url: format!("http://127.0.0.1:{port}"), state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Requests to one path only (health probes also reach the mock).
    pub fn count_path(&self, path: &str) -> usize {
        self.state.requests.lock().unwrap().iter().filter(|r| r.path == path).count()
    }

    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    pub fn reported_tokens(&self) -> i64 {
        self.state.reported_tokens.load(Ordering::SeqCst)
    }
}

/// Words in every text the request sends: strings, content parts, system blocks.
fn words(v: &Value) -> i64 {
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

async fn handle(req: HttpRequest, body: Bytes, state: Data<MockState>) -> HttpResponse {
    state.requests.lock().unwrap().push(Recorded {
        method: req.method().to_string(),
        path: req.uri().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = v.get("model").and_then(Value::as_str).unwrap_or("llama3").to_owned();
    match req.path() {
        "/api/generate" | "/api/chat" => generate(req.path() == "/api/chat", &model, &v, state).await,
        "/api/embed" => {
            let n = words(&v);
            state.reported_tokens.fetch_add(n, Ordering::SeqCst);
            HttpResponse::Ok().json(json!({"model": model, "embeddings": [[0.1, 0.2, 0.3]], "prompt_eval_count": n}))
        }
        "/api/embeddings" => HttpResponse::Ok().json(json!({"embedding": [0.1, 0.2, 0.3]})),
        // Not Ollama: a web server holding an image, for image_url fetches.
        "/cat.png" => HttpResponse::Ok().content_type("image/png").body(PNG),
        "/page.html" => HttpResponse::Ok().content_type("text/html").body("<html></html>"),
        "/v1/chat/completions" | "/v1/completions" => openai_completion(req.path() == "/v1/chat/completions", &model, &v, state),
        "/v1/responses" => openai_response(&model, &v, state),
        "/v1/messages" => anthropic_message(&model, &v, state),
        "/v1/embeddings" => {
            let n = words(&v);
            state.reported_tokens.fetch_add(n, Ordering::SeqCst);
            HttpResponse::Ok().json(json!({"object": "list", "model": model,
                "data": [{"object": "embedding", "embedding": [0.1, 0.2, 0.3], "index": 0}],
                "usage": {"prompt_tokens": n, "total_tokens": n}}))
        }
        "/v1/models" => HttpResponse::Ok().json(json!({"object": "list", "data": [
            {"id": "llama3:latest", "object": "model", "created": 1761990000, "owned_by": "library"},
            {"id": "qwen3:8b", "object": "model", "created": 1761990000, "owned_by": "library"},
            {"id": "mistral:latest", "object": "model", "created": 1761990000, "owned_by": "library"}
        ]})),
        p if p.starts_with("/v1/models/") => {
            let id = p.trim_start_matches("/v1/models/");
            HttpResponse::Ok().json(json!({"id": id, "object": "model", "created": 1761990000, "owned_by": "library"}))
        }
        "/api/tags" => HttpResponse::Ok().json(json!({"models": [
            {"name": "llama3:latest", "model": "llama3:latest", "modified_at": "2026-11-01T10:00:00Z", "size": 4661224676u64,
             "digest": "365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1",
             "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_0"}},
            {"name": "qwen3:8b", "model": "qwen3:8b", "modified_at": "2026-11-02T10:00:00Z", "size": 5200000000u64,
             "digest": "500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41",
             "details": {"format": "gguf", "family": "qwen3", "parameter_size": "8.2B", "quantization_level": "Q4_K_M"}},
            {"name": "mistral:latest", "model": "mistral:latest", "modified_at": "2026-11-03T10:00:00Z", "size": 4100000000u64,
             "digest": "f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091",
             "details": {"format": "gguf", "family": "llama", "parameter_size": "7.2B", "quantization_level": "Q4_0"}}
        ]})),
        "/api/ps" => HttpResponse::Ok().json(json!({"models": [{"name": "llama3:latest", "model": "llama3:latest",
            "size": 5137025024u64, "digest": "365c0bd3c000", "details": {"family": "llama"},
            "expires_at": "2026-11-21T10:05:00Z", "size_vram": 5137025024u64}]})),
        "/api/version" => HttpResponse::Ok().json(json!({"version": "0.12.6"})),
        "/api/show" => HttpResponse::Ok().json(json!({
            "license": "LLAMA 3 COMMUNITY LICENSE", "modelfile": "FROM llama3", "parameters": "stop \"<|eot_id|>\"",
            "template": "{{ .Prompt }}", "details": {"parent_model": "", "format": "gguf", "family": "llama",
            "families": ["llama"], "parameter_size": "8.0B", "quantization_level": "Q4_0"},
            "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
            "capabilities": ["completion"], "modified_at": "2026-11-01T10:00:00Z"
        })),
        "/api/pull" => {
            let lines = ["{\"status\":\"pulling manifest\"}\n", "{\"status\":\"verifying sha256 digest\"}\n", "{\"status\":\"success\"}\n"];
            HttpResponse::Ok()
                .content_type("application/x-ndjson")
                .streaming(stream::iter(lines.map(|l| Ok::<_, actix_web::Error>(Bytes::from(l)))))
        }
        _ => HttpResponse::Ok().json(json!({})),
    }
}

/// Counts a stream as cancelled if it is dropped before its last chunk.
struct Watch {
    finished: bool,
    state: Data<MockState>,
}

impl Watch {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.finished {
            self.state.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn generate(chat: bool, model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    if model == "sleepy" {
        actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    }
    if model == "missing" {
        return HttpResponse::NotFound().json(json!({"error": "model 'missing' not found"}));
    }
    let prompt_tokens = words(v);
    let requested = v.pointer("/options/num_predict").and_then(Value::as_i64).filter(|n| *n >= 0);
    let chunks: i64 = match model {
        "slow" => 200,
        _ => requested.unwrap_or(3).min(50),
    };
    // Failures come after a pause, so the response head and first chunks are on the wire.
    let delay = match model {
        "slow" => Duration::from_millis(30),
        "broken" | "cut" | "stall" => Duration::from_millis(20),
        _ => Duration::ZERO,
    };
    let stream_wanted = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let piece = |text: &str| {
        if chat {
            json!({"model": model, "created_at": "2026-11-21T10:00:00Z", "message": {"role": "assistant", "content": text}, "done": false})
        } else {
            json!({"model": model, "created_at": "2026-11-21T10:00:00Z", "response": text, "done": false})
        }
    };
    let mut last = piece("");
    last["done"] = json!(true);
    last["done_reason"] = json!("stop");
    last["total_duration"] = json!(123456);
    // Like Ollama (omitempty), zero counts are left out.
    if prompt_tokens > 0 {
        last["prompt_eval_count"] = json!(prompt_tokens);
    }
    last["eval_count"] = json!(chunks);

    if !stream_wanted {
        state.reported_tokens.fetch_add(prompt_tokens + chunks, Ordering::SeqCst);
        let mut whole = last.clone();
        let text = "tok ".repeat(chunks as usize);
        if chat {
            whole["message"]["content"] = json!(text);
        } else {
            whole["response"] = json!(text);
        }
        return HttpResponse::Ok().json(whole);
    }

    let mut lines: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    let content_chunks = match model {
        "broken" | "cut" => 2,
        "stall" => 1,
        _ => chunks,
    };
    for _ in 0..content_chunks {
        lines.push(Ok(Bytes::from(format!("{}\n", piece("tok ")))));
    }
    match model {
        "broken" => lines.push(Ok(Bytes::from("{\"error\":\"model runner has unexpectedly stopped\"}\n"))),
        "cut" => lines.push(Err(std::io::Error::other("connection reset"))),
        "stall" => {}
        _ => {
            state.reported_tokens.fetch_add(prompt_tokens + chunks, Ordering::SeqCst);
            lines.push(Ok(Bytes::from(format!("{last}\n"))));
        }
    }
    let stall = model == "stall";
    let watch = Watch { finished: false, state: state.clone() };
    let body =
        stream::unfold((lines.into_iter(), watch, true), move |(mut it, mut watch, first)| async move {
            if !first && !delay.is_zero() {
                actix_web::rt::time::sleep(delay).await;
            }
            match it.next() {
                Some(item) => Some((item, (it, watch, false))),
                None if stall => {
                    actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
                    None
                }
                None => {
                    watch.finish();
                    None
                }
            }
        });
    HttpResponse::Ok().content_type("application/x-ndjson").streaming(body)
}

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0,
    0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0,
    1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// SSE: each event is `data: <json>` and a blank line, as Ollama writes them.
/// For the model `cut`, the connection dies after the first two events.
fn sse_for(model: &str, mut events: Vec<String>) -> HttpResponse {
    use futures_util::StreamExt;
    let cut = model == "cut";
    if cut {
        events.truncate(2);
    }
    let chunks: Vec<Result<Bytes, std::io::Error>> = events.into_iter().map(|e| Ok(Bytes::from(e))).collect();
    let tail = stream::once(async move {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::other("connection reset"))
    })
    .filter(move |_| std::future::ready(cut));
    HttpResponse::Ok().content_type("text/event-stream").streaming(stream::iter(chunks).chain(tail))
}

fn output_chunks(v: &Value) -> i64 {
    ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|f| v.get(*f).and_then(Value::as_i64))
        .or_else(|| v.pointer("/options/num_predict").and_then(Value::as_i64))
        .unwrap_or(3)
        .clamp(1, 50)
}

fn openai_completion(chat: bool, model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
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
    let text = "tok ".repeat(chunks as usize);
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
        return HttpResponse::Ok().json(out);
    }
    let mut events = vec![];
    for i in 0..chunks {
        let mut c = base(chunk_object);
        c["choices"] = if chat {
            json!([{"index": 0, "delta": {"role": "assistant", "content": "tok "}, "finish_reason": null}])
        } else {
            json!([{"index": 0, "text": "tok ", "finish_reason": null}])
        };
        if i == chunks - 1 {
            c["choices"][0]["finish_reason"] = json!("stop");
        }
        events.push(format!("data: {c}\n\n"));
    }
    if v.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
        let mut c = base(chunk_object);
        c["choices"] = json!([]);
        c["usage"] = usage;
        events.push(format!("data: {c}\n\n"));
    }
    events.push("data: [DONE]\n\n".into());
    sse_for(model, events)
}

fn openai_response(model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    let prompt = words(v);
    let chunks = output_chunks(v);
    state.reported_tokens.fetch_add(prompt + chunks, Ordering::SeqCst);
    let text = "tok ".repeat(chunks as usize);
    let response = json!({"id": "resp_42", "object": "response", "created_at": 1763719200, "status": "completed",
        "model": model, "output": [{"type": "message", "id": "msg_42", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": prompt, "output_tokens": chunks, "total_tokens": prompt + chunks}});
    if !v.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return HttpResponse::Ok().json(response);
    }
    let mut events = vec![format!(
        "event: response.created\ndata: {}\n\n",
        json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_42", "object": "response", "status": "in_progress", "model": model, "output": []}})
    )];
    for i in 0..chunks {
        events.push(format!("event: response.output_text.delta\ndata: {}\n\n",
            json!({"type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_42", "output_index": 0, "content_index": 0, "delta": "tok "})));
    }
    events.push(format!(
        "event: response.completed\ndata: {}\n\n",
        json!({"type": "response.completed", "sequence_number": chunks + 1, "response": response})
    ));
    sse_for(model, events)
}

fn anthropic_message(model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
    if model.starts_with("claude") {
        return HttpResponse::NotFound().json(json!({"type": "error", "error": {"type": "not_found_error", "message": format!("model '{model}' not found")}}));
    }
    let prompt = words(v);
    let chunks = output_chunks(v);
    state.reported_tokens.fetch_add(prompt + chunks, Ordering::SeqCst);
    let tools = v.get("tools").is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()));
    let tool_name = v.pointer("/tools/0/name").and_then(Value::as_str).unwrap_or("tool").to_owned();
    let text = "tok ".repeat(chunks as usize);
    let (content, stop) = if tools {
        (
            json!([{"type": "tool_use", "id": "toolu_1", "name": tool_name, "input": {"city": "Paris"}}]),
            "tool_use",
        )
    } else {
        (json!([{"type": "text", "text": text}]), "end_turn")
    };
    if !v.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return HttpResponse::Ok().json(
            json!({"id": "msg_42", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": chunks}}),
        );
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
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
    for _ in 0..chunks {
        events.push(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tok "}})));
    }
    events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": chunks}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse_for(model, events)
}
