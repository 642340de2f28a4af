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

fn words(v: &Value) -> i64 {
    let mut n = 0;
    for field in ["prompt", "system", "input"] {
        if let Some(Value::String(s)) = v.get(field) {
            n += s.split_whitespace().count() as i64;
        }
    }
    if let Some(Value::Array(ms)) = v.get("messages") {
        for m in ms {
            if let Some(Value::String(s)) = m.get("content") {
                n += s.split_whitespace().count() as i64;
            }
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
