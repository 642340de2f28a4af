//! A mock Ollama that speaks NDJSON like the real one, reports token counts on
//! the final chunk, and misbehaves on request.
//!
//! The model name picks the behaviour:
//! - any name: `num_predict` (default 3) content chunks, then `done` with counts
//! - `slow`: 200 chunks, 30 ms apart (for disconnects and concurrency)
//! - `broken`: two chunks, then an `{"error": ...}` line under HTTP 200
//! - `cut`: two chunks, then the connection dies
//! - `stall`: one chunk, then silence
//! - `cut-N`: the first N lines or events of the stream, then the connection dies
//! - `hold-N`: the first N lines or events, then every 50 ms one without text
//!   (as a model emitting special tokens does), until the client hangs up
//! - `echo`: the first chunk of `/api/generate` is the prompt itself
//! - `missing`: 404 model not found
//! - `sleepy`: answers only after 3 seconds (a cold model load)
//!
//! `add_response_headers` puts extra headers on every answer from then on.
//!
//! Counts: `prompt_eval_count` is the number of words in the prompt (which is
//! what the gate's tokenizer estimates for plain words), `eval_count` the chunks sent.
//!
//! The OpenAI-compatible routes (`/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/v1/responses`, `/v1/models`) and the Anthropic one
//! (`/v1/messages`) answer as Ollama's compatibility layers do: SSE events,
//! usage in a last `choices: []` chunk only when `stream_options.include_usage`
//! is set, Anthropic counts on `message_start` and `message_delta`. A request
//! with `tools` gets a tool call back. With `include_usage`, `/v1/completions`
//! puts a zero `usage` on every chunk, as Ollama does.
//!
//! The wire format is Go's `encoding/json`, as Ollama writes it: compact,
//! `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`..., metrics left out
//! when zero, durations in nanoseconds, `created_at` with nanoseconds; SSE as
//! `data: {..}\n\n`. `set_spaced(true)` switches to another upstream's way:
//! spaced JSON (pretty for whole bodies), SSE lines ending in CRLF and
//! `data:` without its space.

use actix_web::web::{self, Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use futures_util::stream;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{json, Value};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
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
    /// Spaced JSON and CRLF SSE instead of Go's compact output.
    pub spaced: AtomicBool,
    /// Appended to every response.
    pub extra_headers: Mutex<Vec<(String, String)>>,
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

    /// Every answer from now on also carries these headers.
    pub fn add_response_headers(&self, headers: &[(&str, &str)]) {
        let mut extra = self.state.extra_headers.lock().unwrap();
        extra.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }

    /// Answers from now on as an upstream that writes spaced JSON and CRLF SSE.
    pub fn set_spaced(&self, spaced: bool) {
        self.state.spaced.store(spaced, Ordering::SeqCst);
    }
}

/// Go's `encoding/json` (compact, HTML-safe escapes) or, spaced, another server's.
struct Wire {
    spaced: bool,
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
struct Ordered(Vec<(&'static str, Value)>);

impl serde::Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl MockState {
    fn spaced(&self) -> bool {
        self.spaced.load(Ordering::SeqCst)
    }

    /// One line of JSON as this upstream writes it.
    fn line<T: serde::Serialize>(&self, value: &T) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Wire { spaced: self.spaced() });
        value.serialize(&mut ser).expect("mock JSON serializes");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// A whole JSON body: Go's compact form, or pretty.
    fn body<T: serde::Serialize>(&self, status: actix_web::http::StatusCode, value: &T) -> HttpResponse {
        let text = if self.spaced() {
            serde_json::to_string_pretty(value).expect("mock JSON serializes")
        } else {
            self.line(value)
        };
        HttpResponse::build(status).content_type("application/json; charset=utf-8").body(text)
    }

    fn ok<T: serde::Serialize>(&self, value: &T) -> HttpResponse {
        self.body(actix_web::http::StatusCode::OK, value)
    }

    /// An SSE event, named or not.
    fn event(&self, name: Option<&str>, data: &Value) -> String {
        let data = self.line(data);
        match (name, self.spaced()) {
            (Some(n), false) => format!("event: {n}\ndata: {data}\n\n"),
            (None, false) => format!("data: {data}\n\n"),
            (Some(n), true) => format!("event:{n}\r\ndata:{data}\r\n\r\n"),
            (None, true) => format!("data:{data}\r\n\r\n"),
        }
    }

    fn done_event(&self) -> String {
        if self.spaced() {
            "data:[DONE]\r\n\r\n".into()
        } else {
            "data: [DONE]\n\n".into()
        }
    }
}

/// How a stream ends early, from the model name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Early {
    Never,
    /// After this many lines or events the connection dies.
    Cut(usize),
    /// After this many, events without text until the stream is dropped.
    Hold(usize),
    /// After this many, silence.
    Silent(usize),
}

fn early(model: &str) -> Early {
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
fn deliver(
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
    let extra = state.extra_headers.lock().unwrap().clone();
    let mut response = respond(req, body, state).await;
    for (name, value) in extra {
        response.headers_mut().append(
            actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            actix_web::http::header::HeaderValue::from_str(&value).expect("a header value"),
        );
    }
    response
}

async fn respond(req: HttpRequest, body: Bytes, state: Data<MockState>) -> HttpResponse {
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
            let mut reply = json!({"model": model, "embeddings": [[0.1, 0.2, 0.3]], "total_duration": 14143917u64, "load_duration": 1019500u64});
            // Like Ollama (omitempty), a zero count is left out.
            if n > 0 {
                reply["prompt_eval_count"] = json!(n);
            }
            state.ok(&reply)
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
            state.ok(&json!({"object": "list", "model": model,
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

/// A content piece; every third has markup, which Go writes as `\u003c` escapes.
fn piece_text(i: i64) -> &'static str {
    if i % 3 == 1 {
        "<b>tok</b> & "
    } else {
        "tok "
    }
}

const CREATED_AT: &str = "2026-11-21T10:00:00.487312059Z";

async fn generate(chat: bool, model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
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

fn openai_response(model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
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

fn anthropic_message(model: &str, v: &Value, state: Data<MockState>) -> HttpResponse {
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
