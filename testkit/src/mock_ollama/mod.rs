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
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

mod compat;
mod manage;
mod native;
mod streams;
mod wire;

use compat::*;
use manage::*;
pub use native::PNG;
use native::*;
use streams::*;
use wire::*;

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
    /// The gate's health probes (they say so in their User-Agent): counted
    /// here, not among the requests, so that "nothing was forwarded" holds.
    pub probes: AtomicUsize,
    /// Model `gated` answers only once a permit is added here.
    pub gate: Gate,
    /// Answer generations with Ollama's 503 "server busy".
    pub busy: AtomicBool,
    /// What `/api/tags` and `/api/ps` list instead of the usual three models.
    pub models: Mutex<Option<Vec<String>>>,
    /// `/api/pull` requests received (see `manage`).
    pub pulls: AtomicUsize,
    /// Milliseconds between a pull's progress lines.
    pub pull_delay_ms: AtomicU64,
    /// Pulls stop half-way until a permit is added to `pull_gate`.
    pub pull_held: AtomicBool,
    pub pull_gate: Gate,
    /// Models pulled since the start: listed by `/api/tags` too.
    pub pulled: Mutex<Vec<String>>,
    /// Models deleted: no longer listed.
    pub deleted: Mutex<HashSet<String>>,
    /// Models unloaded (`keep_alive: 0`): no longer in `/api/ps`.
    pub unloaded: Mutex<HashSet<String>>,
    /// Cloud models (listed name, remote model): listed by `/api/tags` with
    /// `remote_model` and `remote_host`, as a signed-in Ollama lists them,
    /// and by `/v1/models`. A copy of one is one too (`/api/copy`).
    pub remote: Mutex<Vec<(String, String)>>,
    /// What `/api/version` answers; `DEFAULT_VERSION` when unset.
    pub version: Mutex<Option<String>>,
}

/// What the mock's `/api/version` says unless told otherwise.
pub const DEFAULT_VERSION: &str = "0.32.15";

pub struct MockOllama {
    pub url: String,
    pub state: Arc<MockState>,
    server: Mutex<Option<actix_web::dev::ServerHandle>>,
}

impl MockOllama {
    pub async fn start() -> MockOllama {
        let state = Arc::new(MockState::default());
        let (url, handle) = serve(state.clone(), 0);
        MockOllama { url, state, server: Mutex::new(Some(handle)) }
    }

    /// Stops listening, as a backend that went away: connections are refused.
    pub async fn stop(&self) {
        let handle = self.server.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Listens again on the same port, with the same state.
    pub fn restart(&self) {
        let port: u16 = self.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        let (_, handle) = serve(self.state.clone(), port);
        *self.server.lock().unwrap() = Some(handle);
    }

    /// Lets `n` requests for model `gated` answer.
    pub fn open_gate(&self, n: usize) {
        self.state.gate.0.add_permits(n);
    }

    /// Generations answer 503 "server busy" while set.
    pub fn set_busy(&self, busy: bool) {
        self.state.busy.store(busy, Ordering::SeqCst);
    }

    /// `/api/tags` and `/api/ps` list these models from now on.
    pub fn set_models(&self, models: &[&str]) {
        *self.state.models.lock().unwrap() = Some(models.iter().map(|m| m.to_string()).collect());
    }

    /// Lists a cloud model from now on, as a signed-in Ollama does:
    /// `gpt-oss:120b-cloud` with `remote_model` `gpt-oss:120b`.
    pub fn add_cloud_model(&self, name: &str, remote_model: &str) {
        self.state.remote.lock().unwrap().push((name.to_owned(), remote_model.to_owned()));
    }

    /// `/api/version` answers this from now on.
    pub fn set_version(&self, version: &str) {
        *self.state.version.lock().unwrap() = Some(version.to_owned());
    }

    /// `/api/pull` requests received so far.
    pub fn pulls(&self) -> usize {
        self.state.pulls.load(Ordering::SeqCst)
    }

    /// Spaces a pull's progress lines by this much from now on.
    pub fn set_pull_delay(&self, delay: std::time::Duration) {
        self.state.pull_delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Pulls started from now on stop half-way through their first layer
    /// until `release_pulls`.
    pub fn hold_pulls(&self) {
        self.state.pull_held.store(true, Ordering::SeqCst);
    }

    /// Lets `n` held pulls go on to the end.
    pub fn release_pulls(&self, n: usize) {
        self.state.pull_gate.0.add_permits(n);
    }

    /// What `/api/tags` lists now.
    pub fn model_names(&self) -> Vec<String> {
        tag_names(&self.state)
    }

    /// Health probes received so far.
    pub fn probes(&self) -> usize {
        self.state.probes.load(Ordering::SeqCst)
    }

    /// One string field of the request bodies sent to a path (`"model"`,
    /// `"prompt"`), in the order they arrived.
    pub fn field_served(&self, path: &str, field: &str) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.path == path)
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter_map(|v| v.get(field).and_then(Value::as_str).map(str::to_owned))
            .collect()
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

/// A semaphore that starts closed.
pub struct Gate(pub tokio::sync::Semaphore);

impl Default for Gate {
    fn default() -> Self {
        Gate(tokio::sync::Semaphore::new(0))
    }
}

fn serve(state: Arc<MockState>, port: u16) -> (String, actix_web::dev::ServerHandle) {
    let data = Data::from(state);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("mock binds");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), handle)
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
    let probe = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("health probe"));
    if probe {
        state.probes.fetch_add(1, Ordering::SeqCst);
        return listing(req.path(), &state);
    }
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
    if matches!(req.path(), "/api/generate" | "/api/chat") && !is_unload(&v) {
        // A generation loads the model again.
        state.unloaded.lock().unwrap().remove(&full_name(&model));
    }
    let generation = matches!(
        req.path(),
        "/api/generate"
            | "/api/chat"
            | "/api/embed"
            | "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/messages"
    );
    if generation && state.busy.load(Ordering::SeqCst) {
        // Ollama's own words when its queue is full (OLLAMA_MAX_QUEUE).
        return state.body(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "server busy, please try again.  maximum pending requests exceeded"}),
        );
    }
    if model == "gated" {
        state.gate.0.acquire().await.expect("the gate stays open").forget();
    }
    match req.path() {
        "/api/tags" | "/api/ps" | "/api/version" => listing(req.path(), &state),
        "/api/generate" if is_unload(&v) => unload(&v, &state),
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
        "/v1/models" => {
            let mut data = vec![
                json!({"id": "llama3:latest", "object": "model", "created": 1761990000, "owned_by": "library"}),
                json!({"id": "qwen3:8b", "object": "model", "created": 1761990000, "owned_by": "library"}),
                json!({"id": "mistral:latest", "object": "model", "created": 1761990000, "owned_by": "library"}),
            ];
            for (name, _) in state.remote.lock().unwrap().iter() {
                data.push(json!({"id": name, "object": "model", "created": 1761990000, "owned_by": "library"}));
            }
            HttpResponse::Ok().json(json!({"object": "list", "data": data}))
        }
        p if p.starts_with("/v1/models/") => {
            let id = p.trim_start_matches("/v1/models/");
            HttpResponse::Ok().json(json!({"id": id, "object": "model", "created": 1761990000, "owned_by": "library"}))
        }
        "/api/show" => HttpResponse::Ok().json(json!({
            "license": "LLAMA 3 COMMUNITY LICENSE", "modelfile": "FROM llama3", "parameters": "stop \"<|eot_id|>\"",
            "template": "{{ .Prompt }}", "details": {"parent_model": "", "format": "gguf", "family": "llama",
            "families": ["llama"], "parameter_size": "8.0B", "quantization_level": "Q4_0"},
            "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
            "capabilities": ["completion"], "modified_at": "2026-11-01T10:00:00Z"
        })),
        "/api/pull" => pull(&v, state),
        "/api/delete" => delete(&v, &state),
        "/api/copy" => copy(&v, &state),
        _ => HttpResponse::Ok().json(json!({})),
    }
}

/// `/api/tags`, `/api/ps`, `/api/version`: what the gate's probes read too.
/// Deleted models are left out, pulled ones added, unloaded ones not in `/api/ps`.
fn listing(path: &str, state: &MockState) -> HttpResponse {
    let names = tag_names(state);
    let unloaded = state.unloaded.lock().unwrap().clone();
    if state.models.lock().unwrap().is_some() {
        let list: Vec<Value> = names.iter().map(|m| json!({"name": m, "model": m, "size": 1000})).collect();
        match path {
            "/api/tags" => return HttpResponse::Ok().json(json!({"models": list})),
            "/api/ps" => {
                let first = list
                    .first()
                    .cloned()
                    .filter(|m| !unloaded.contains(m["name"].as_str().unwrap_or_default()));
                return HttpResponse::Ok().json(json!({"models": first.into_iter().collect::<Vec<_>>()}));
            }
            _ => {}
        }
    }
    match path {
        "/api/tags" => {
            let known = json!([
            {"name": "llama3:latest", "model": "llama3:latest", "modified_at": "2026-11-01T10:00:00Z", "size": 4661224676u64,
             "digest": "365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1",
             "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_0"}},
            {"name": "qwen3:8b", "model": "qwen3:8b", "modified_at": "2026-11-02T10:00:00Z", "size": 5200000000u64,
             "digest": "500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41",
             "details": {"format": "gguf", "family": "qwen3", "parameter_size": "8.2B", "quantization_level": "Q4_K_M"}},
            {"name": "mistral:latest", "model": "mistral:latest", "modified_at": "2026-11-03T10:00:00Z", "size": 4100000000u64,
             "digest": "f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091",
             "details": {"format": "gguf", "family": "llama", "parameter_size": "7.2B", "quantization_level": "Q4_0"}}
            ]);
            let list: Vec<Value> = names
                .iter()
                .map(|n| {
                    known.as_array().into_iter().flatten().find(|m| m["name"] == n.as_str()).cloned().unwrap_or_else(|| {
                        json!({"name": n, "model": n, "modified_at": "2026-11-21T10:00:00Z", "size": 4661224676u64,
                               "digest": "6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa",
                               "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_0"}})
                    })
                })
                .collect();
            let mut list = list;
            list.extend(state.remote.lock().unwrap().iter().map(|(name, remote)| cloud_entry(name, remote)));
            HttpResponse::Ok().json(json!({"models": list}))
        }
        "/api/ps" => {
            let loaded = names.iter().any(|n| n == "llama3:latest") && !unloaded.contains("llama3:latest");
            let list: Vec<Value> = loaded
                .then(|| {
                    json!({"name": "llama3:latest", "model": "llama3:latest",
                    "size": 5137025024u64, "digest": "365c0bd3c000", "details": {"family": "llama"},
                    "expires_at": "2026-11-21T10:05:00Z", "size_vram": 5137025024u64})
                })
                .into_iter()
                .collect();
            HttpResponse::Ok().json(json!({"models": list}))
        }
        "/api/version" => {
            let version = state.version.lock().unwrap().clone().unwrap_or_else(|| DEFAULT_VERSION.into());
            HttpResponse::Ok().json(json!({"version": version}))
        }
        _ => HttpResponse::Ok().json(json!({})),
    }
}

/// A cloud model in `/api/tags`, as Ollama's `ListModelResponse` has it:
/// a stub of a few hundred bytes that names the model it runs remotely.
fn cloud_entry(name: &str, remote_model: &str) -> Value {
    json!({"name": name, "model": name, "remote_model": remote_model, "remote_host": "https://ollama.com:443",
           "modified_at": "2026-11-04T10:00:00Z", "size": 384,
           "digest": "8fbbd4d1a0f5a0e9b4b0c6d0e6f1b1a5c43f0b0f6e7d9a2b3c4d5e6f7a8b9c0d",
           "details": {"format": "", "family": "gptoss", "parameter_size": "116.8B", "quantization_level": "MXFP4"}})
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
