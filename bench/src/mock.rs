//! A fast stand-in for Ollama, so that the mock is never what a run measures.
//!
//! Plain HTTP/1.1 over tokio with keep-alive, one write per chunk and
//! `TCP_NODELAY`, so every chunk leaves the moment it is made. It answers the
//! Ollama routes (`/api/chat`, `/api/generate` as NDJSON or one JSON body) and
//! the OpenAI one (`/v1/chat/completions` as SSE or one JSON body), with the
//! counts on the final chunk as Ollama puts them.
//!
//! The shape of a stream is chosen per request, in the model name, so one mock
//! serves every scenario: `bench-c20-d2000-f500` streams 20 chunks, 2,000 µs
//! apart, the first after 500 µs. Every chunk carries `"sent_ns"`, the wall
//! clock when the mock wrote it, so the load client can tell how long each
//! chunk spent on the way and whether any was held back.
//!
//! A shape with `-s<slots>` stands for a GPU that runs that many requests of
//! the model at once: `bench-c2-d200000-s4` serves 4 at a time, first come
//! first served, each sending its first chunk the moment it gets a slot and
//! its last 200 ms later. The rest wait before any byte of their answer is
//! written, as in Ollama's own queue, so time to first chunk is the wait.

use crate::client::now_ns;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Tokens every mock answer reports for the prompt.
pub const PROMPT_TOKENS: u64 = 12;

/// How a response streams, read from the model name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub chunks: u32,
    pub gap: Duration,
    pub first: Duration,
    /// Requests of this shape served at once; 0 for no limit.
    pub slots: u32,
}

impl Shape {
    /// A model on a GPU with `slots` slots: the first chunk as soon as a slot
    /// is free, the last (with the counts) `service` after it.
    pub fn slot_limited(slots: u32, service: Duration) -> Shape {
        Shape { chunks: 2, gap: service, first: Duration::ZERO, slots: slots.max(1) }
    }

    /// `bench-c<chunks>-d<gap µs>-f<first µs>-s<slots>`; each part optional.
    pub fn from_model(model: &str) -> Shape {
        let mut shape = Shape { chunks: 10, gap: Duration::ZERO, first: Duration::ZERO, slots: 0 };
        for part in model.split('-').skip(1) {
            let Some((tag, value)) = part.split_at_checked(1) else { continue };
            let Ok(n) = value.parse::<u64>() else { continue };
            match tag {
                "c" => shape.chunks = n.max(1) as u32,
                "d" => shape.gap = Duration::from_micros(n),
                "f" => shape.first = Duration::from_micros(n),
                "s" => shape.slots = u32::try_from(n).unwrap_or(u32::MAX),
                _ => {}
            }
        }
        shape
    }

    pub fn model(&self) -> String {
        let slots = if self.slots > 0 { format!("-s{}", self.slots) } else { String::new() };
        format!("bench-c{}-d{}-f{}{slots}", self.chunks, self.gap.as_micros(), self.first.as_micros())
    }
}

/// Waits for one of the model's slots when its shape has a limit. One
/// semaphore per model name for the mock's lifetime; tokio's semaphore hands
/// out permits in the order they were asked for, so the wait is FIFO.
async fn slot(model: &str, slots: u32) -> Option<OwnedSemaphorePermit> {
    if slots == 0 {
        return None;
    }
    static GPUS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    let gpu = {
        let mut gpus = GPUS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        gpus.entry(model.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(slots as usize))).clone()
    };
    gpu.acquire_owned().await.ok()
}

pub async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = connection(stream).await;
        });
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

async fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await? else { return Ok(()) };
        respond(&mut stream, &request).await?;
        if request.close {
            return Ok(());
        }
    }
}

/// One request off a keep-alive connection; `None` when the peer closed it.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = memchr::memmem::find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if read_more(stream, buf).await? == 0 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let (mut length, mut chunked, mut close) = (0usize, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(|_| bad("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    buf.drain(..head_end);
    let body =
        if chunked { read_chunked(stream, buf).await? } else { read_exact(stream, buf, length).await? };
    Ok(Some(Request { method, path, body, close }))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16384];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

async fn read_exact(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
    while buf.len() < n {
        if read_more(stream, buf).await? == 0 {
            return Err(bad("body cut short"));
        }
    }
    Ok(buf.drain(..n).collect())
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = memchr::memmem::find(buf, b"\r\n") {
                break i;
            }
            if read_more(stream, buf).await? == 0 {
                return Err(bad("chunked body cut short"));
            }
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        buf.drain(..line_end + 2);
        let data = read_exact(stream, buf, size + 2).await?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&data[..size]);
    }
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

async fn respond(stream: &mut TcpStream, request: &Request) -> io::Result<()> {
    let body = &request.body;
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/api/chat") | ("POST", "/api/generate") => {
            let chat = request.path == "/api/chat";
            let model = json_string(body, "model").unwrap_or_else(|| "bench".into());
            // Held until the answer is written (or the client has gone).
            let _slot = slot(&model, Shape::from_model(&model).slots).await;
            if json_bool(body, "stream").unwrap_or(true) {
                ndjson_stream(stream, &model, chat).await
            } else {
                let text = Answer::new(&model, chat).whole();
                send_json(stream, 200, &text).await
            }
        }
        ("POST", "/v1/chat/completions") => {
            let model = json_string(body, "model").unwrap_or_else(|| "bench".into());
            let _slot = slot(&model, Shape::from_model(&model).slots).await;
            if json_bool(body, "stream").unwrap_or(false) {
                sse_stream(stream, &model, json_bool(body, "include_usage").unwrap_or(false)).await
            } else {
                send_json(stream, 200, &openai_whole(&model)).await
            }
        }
        ("GET", "/") | ("HEAD", "/") => send(stream, 200, "text/plain", "Ollama is running").await,
        ("GET", "/api/version") => send_json(stream, 200, r#"{"version":"0.12.3"}"#).await,
        ("GET", "/api/tags") => send_json(stream, 200, TAGS).await,
        ("GET", "/api/ps") => send_json(stream, 200, r#"{"models":[]}"#).await,
        ("GET", "/v1/models") => send_json(stream, 200, V1_MODELS).await,
        _ => send_json(stream, 404, r#"{"error":"not found"}"#).await,
    }
}

const TAGS: &str = r#"{"models":[{"name":"bench:latest","model":"bench:latest","modified_at":"2026-11-01T00:00:00Z","size":1000,"digest":"0000","details":{"format":"gguf","family":"llama","parameter_size":"1B","quantization_level":"Q4_0"}}]}"#;
const V1_MODELS: &str = r#"{"object":"list","data":[{"id":"bench:latest","object":"model","created":1761955200,"owned_by":"library"}]}"#;

async fn send_json(stream: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    send(stream, status, "application/json; charset=utf-8", body).await
}

async fn send(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await
}

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Writes one HTTP chunk, with the response head first when `head` is given:
/// as Ollama does, the head leaves with the first chunk.
async fn write_chunk(
    stream: &mut TcpStream,
    head: &mut Option<&str>,
    data: &str,
    last: bool,
) -> io::Result<()> {
    let mut out = String::with_capacity(data.len() + 128);
    if let Some(h) = head.take() {
        out.push_str(h);
    }
    out.push_str(&format!("{:x}\r\n{data}\r\n", data.len()));
    if last {
        out.push_str("0\r\n\r\n");
    }
    stream.write_all(out.as_bytes()).await
}

async fn pause(shape: &Shape, index: u32) {
    let wait = if index == 0 { shape.first } else { shape.gap };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

struct Answer<'a> {
    model: &'a str,
    chat: bool,
    shape: Shape,
}

impl<'a> Answer<'a> {
    fn new(model: &'a str, chat: bool) -> Self {
        Answer { model, chat, shape: Shape::from_model(model) }
    }

    fn text_field(&self, text: &str) -> String {
        if self.chat {
            format!(r#""message":{{"role":"assistant","content":"{text}"}}"#)
        } else {
            format!(r#""response":"{text}""#)
        }
    }

    /// Each chunk's text differs, as a model's does: some gateways cut off a
    /// stream that repeats one chunk too often.
    fn chunk(&self, index: u32) -> String {
        format!(
            r#"{{"model":"{}","created_at":"2026-11-21T00:00:00.000000Z",{},"done":false,"sent_ns":{}}}"#,
            self.model,
            self.text_field(&format!(" tok{index}")),
            now_ns()
        ) + "\n"
    }

    fn last(&self, text: &str) -> String {
        format!(
            r#"{{"model":"{}","created_at":"2026-11-21T00:00:00.000000Z",{},"done":true,"done_reason":"stop","total_duration":1000000,"load_duration":1000,"prompt_eval_count":{PROMPT_TOKENS},"prompt_eval_duration":1000,"eval_count":{},"eval_duration":1000000,"sent_ns":{}}}"#,
            self.model,
            self.text_field(text),
            self.shape.chunks,
            now_ns()
        ) + "\n"
    }

    fn whole(&self) -> String {
        self.last(&" tok".repeat(self.shape.chunks as usize))
    }
}

/// Ollama's NDJSON: `chunks - 1` pieces of text, then the final line with the counts.
async fn ndjson_stream(stream: &mut TcpStream, model: &str, chat: bool) -> io::Result<()> {
    let answer = Answer::new(model, chat);
    let mut head = Some(STREAM_HEAD);
    for i in 0..answer.shape.chunks {
        pause(&answer.shape, i).await;
        if i + 1 == answer.shape.chunks {
            write_chunk(stream, &mut head, &answer.last(""), true).await?;
        } else {
            write_chunk(stream, &mut head, &answer.chunk(i), false).await?;
        }
    }
    Ok(())
}

/// OpenAI's SSE: one event per chunk, the last with `finish_reason`, the usage
/// event when asked for, then `[DONE]`.
async fn sse_stream(stream: &mut TcpStream, model: &str, include_usage: bool) -> io::Result<()> {
    let shape = Shape::from_model(model);
    let mut head = Some(SSE_HEAD);
    for i in 0..shape.chunks {
        pause(&shape, i).await;
        let finish = if i + 1 == shape.chunks { r#""stop""# } else { "null" };
        let mut event = format!(
            r#"data: {{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1763683200,"model":"{model}","system_fingerprint":"fp_ollama","choices":[{{"index":0,"delta":{{"role":"assistant","content":" tok{i}"}},"finish_reason":{finish}}}],"sent_ns":{}}}"#,
            now_ns()
        ) + "\n\n";
        let last = i + 1 == shape.chunks;
        if last {
            if include_usage {
                event.push_str(&format!(
                    r#"data: {{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1763683200,"model":"{model}","system_fingerprint":"fp_ollama","choices":[],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{},"total_tokens":{}}}}}"#,
                    shape.chunks,
                    PROMPT_TOKENS + shape.chunks as u64
                ));
                event.push_str("\n\n");
            }
            event.push_str("data: [DONE]\n\n");
        }
        write_chunk(stream, &mut head, &event, last).await?;
    }
    Ok(())
}

fn openai_whole(model: &str) -> String {
    let shape = Shape::from_model(model);
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1763683200,"model":"{model}","system_fingerprint":"fp_ollama","choices":[{{"index":0,"message":{{"role":"assistant","content":"{}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{},"total_tokens":{}}}}}"#,
        " tok".repeat(shape.chunks as usize),
        shape.chunks,
        PROMPT_TOKENS + shape.chunks as u64
    )
}

/// The string value of a top-level-looking `"name": "value"` in a JSON body;
/// bodies here are small and made by the bench, so a scan is enough.
fn json_string(body: &[u8], name: &str) -> Option<String> {
    let rest = after_key(body, name)?;
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

fn json_bool(body: &[u8], name: &str) -> Option<bool> {
    let rest = after_key(body, name)?;
    if rest.starts_with(b"true") {
        Some(true)
    } else if rest.starts_with(b"false") {
        Some(false)
    } else {
        None
    }
}

fn after_key<'b>(body: &'b [u8], name: &str) -> Option<&'b [u8]> {
    let key = format!("\"{name}\"");
    let at = memchr::memmem::find(body, key.as_bytes())?;
    let rest = &body[at + key.len()..];
    let rest = trim_start(rest).strip_prefix(b":")?;
    Some(trim_start(rest))
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_name_carries_the_shape_of_its_stream() {
        let shape = Shape::from_model("bench-c20-d2000-f500");
        assert_eq!(
            shape,
            Shape {
                chunks: 20,
                gap: Duration::from_micros(2000),
                first: Duration::from_micros(500),
                slots: 0
            }
        );
        assert_eq!(Shape::from_model(&shape.model()), shape);
        assert_eq!(Shape::from_model("llama3").chunks, 10);
        // Names without a slot count stay as they were.
        assert_eq!(shape.model(), "bench-c20-d2000-f500");
    }

    #[test]
    fn a_slot_limited_model_names_its_slots_and_service_time() {
        let gpu = Shape::from_model("bench-c2-d200000-s4");
        assert_eq!(
            (gpu.chunks, gpu.gap, gpu.first, gpu.slots),
            (2, Duration::from_millis(200), Duration::ZERO, 4)
        );
        assert_eq!(gpu.model(), "bench-c2-d200000-f0-s4");
        assert_eq!(Shape::from_model(&gpu.model()), gpu);
        assert_eq!(Shape::slot_limited(4, Duration::from_millis(200)), gpu);
        assert_eq!(Shape::from_model("bench-s0").slots, 0);
    }

    /// With one slot, the second of two requests sent together gets its first
    /// chunk only once the first request has finished.
    #[tokio::test]
    async fn a_request_waits_for_a_slot_before_its_first_byte() {
        use crate::client::{Conn, Splitter};
        use crate::load::{Lane, Target};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        let service = Duration::from_millis(100);
        let gpu = Shape::from_model("bench-c2-d100000-s1");
        let request = Lane::Ollama.request(&Target { name: "mock", addr, key: None }, &gpu, true);
        let first_chunk = |request: Vec<u8>| async move {
            let mut conn = Conn::open(addr).await.unwrap();
            let mut splitter = Splitter::new(false);
            let started = std::time::Instant::now();
            let mut first = None;
            let head = conn
                .exchange(&request, |d, r, at| {
                    first.get_or_insert(started.elapsed());
                    splitter.feed(d, r, at)
                })
                .await
                .unwrap();
            assert_eq!((head.status, splitter.chunks.len()), (200, 2));
            first.unwrap()
        };
        let (a, b) = tokio::join!(first_chunk(request.clone()), first_chunk(request));
        let (soon, late) = (a.min(b), a.max(b));
        assert!(soon < service, "{soon:?}");
        assert!(late >= service, "{late:?}");
    }

    #[test]
    fn body_fields_are_read_with_or_without_spaces() {
        assert_eq!(json_bool(br#"{"stream": false}"#, "stream"), Some(false));
        assert_eq!(json_bool(br#"{"stream_options":{"include_usage":true}}"#, "include_usage"), Some(true));
        assert_eq!(json_string(br#"{"model" : "bench-c2"}"#, "model").as_deref(), Some("bench-c2"));
    }
}
