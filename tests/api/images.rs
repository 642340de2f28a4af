//! Remote images (`image_url` with an http(s) URL): fetched only for admitted
//! requests, within per-request and process-wide bounds, never from inside
//! addresses. The image servers here listen on loopback and count every
//! connection they accept; nothing here connects anywhere else.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A web server on loopback that counts the connections it accepts. Paths:
/// - `/img-N`: an image of N bytes, with its length
/// - `/stream-N`: an image of N bytes in two chunks, without a length
/// - `/empty`: an image response without a length or chunks, which awc reads as empty
/// - `/hold`: an image, once `release` is called
/// - `/drip`: an image that arrives one byte every 200 ms, in chunks, without end
/// - `/page`: an HTML page
/// - `/missing`: 404
/// - `/redirect?to=URL`: 302 to URL
struct ImageServer {
    url: String,
    connections: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
}

impl ImageServer {
    async fn start() -> ImageServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let counter = connections.clone();
        actix_web::rt::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                actix_web::rt::spawn(serve(stream, released.clone()));
            }
        });
        ImageServer { url: format!("http://127.0.0.1:{port}"), connections, release }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn release(&self) {
        let _ = self.release.send(true);
    }

    /// Waits until the server has accepted `n` connections.
    async fn until_connections(&self, n: usize) {
        let started = Instant::now();
        while self.connections() < n {
            assert!(started.elapsed() < Duration::from_secs(10), "the gate never fetched");
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(mut stream: TcpStream, mut released: watch::Receiver<bool>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let image = |n: usize| {
        let mut reply =
            format!("HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {n}\r\n\r\n").into_bytes();
        reply.extend(std::iter::repeat_n(b'P', n));
        reply
    };
    let reply = if let Some(n) = target.strip_prefix("/img-") {
        image(n.parse().unwrap())
    } else if let Some(n) = target.strip_prefix("/stream-") {
        let n: usize = n.parse().unwrap();
        let mut reply = CHUNKED.to_vec();
        for size in [n / 2, n - n / 2] {
            reply.extend(format!("{size:x}\r\n").into_bytes());
            reply.extend(std::iter::repeat_n(b'P', size));
            reply.extend(b"\r\n");
        }
        reply.extend(b"0\r\n\r\n");
        reply
    } else if target == "/hold" {
        let _ = released.wait_for(|r| *r).await;
        image(8)
    } else if target == "/drip" {
        let _ = stream.write_all(CHUNKED).await;
        loop {
            if stream.write_all(b"1\r\nP\r\n").await.is_err() {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    } else if target == "/empty" {
        b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\nconnection: close\r\n\r\n".to_vec()
    } else if target == "/page" {
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<html></html>".to_vec()
    } else if let Some(to) = target.strip_prefix("/redirect?to=") {
        format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n").into_bytes()
    } else {
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ntransfer-encoding: chunked\r\n\r\n";

fn chat_with(urls: &[String]) -> Value {
    let mut content = vec![json!({"type": "text", "text": "what is this"})];
    content.extend(urls.iter().map(|u| json!({"type": "image_url", "image_url": {"url": u}})));
    json!({"model": "llama3", "max_tokens": 8, "messages": [{"role": "user", "content": content}]})
}

fn forwarded_chats(app: &TestApp) -> Vec<Value> {
    app.mock
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn app_with(env: &[(&'static str, &str)]) -> TestApp {
    spawn_app_with(Options {
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        ..Options::default()
    })
    .await
}

/// The key's day counters once every request has settled.
async fn day_usage(app: &TestApp, record: &Value) -> (i64, i64) {
    let key = app.settled(&record["id"]).await;
    (key["usage"]["day"]["requests"].as_i64().unwrap(), key["usage"]["day"]["tokens"].as_i64().unwrap())
}

#[actix_web::test]
async fn a_refused_request_fetches_no_image() {
    let app = app_with(&[("ALLOW_PRIVATE_IMAGE_URLS", "true"), ("IMAGE_FETCH_MAX_IMAGES", "2")]).await;
    let images = ImageServer::start().await;
    let one = chat_with(&[format!("{}/img-8", images.url)]);
    let (good, _) = app.create_key(json!({"name": "good"})).await;
    let (listed, _) = app.create_key(json!({"name": "listed", "models": ["mistral"]})).await;
    let (spent, _) = app.create_key(json!({"name": "spent", "limits": {"daily_requests": 0}})).await;
    let (no_scope, _) = app.create_key(json!({"name": "lister", "scopes": ["models"]})).await;
    let (one_image, _) = app.create_key(json!({"name": "one image", "clamps": {"max_images": 1}})).await;
    let (inactive, inactive_record) = app.create_key(json!({"name": "inactive"})).await;
    let id = &inactive_record["id"];
    let off = app.admin("PUT", &format!("/api-keys/{id}/deactivate"), None).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    let bogus = "sk-og-not-a-key-at-all";
    let two = chat_with(&[format!("{}/img-8", images.url), format!("{}/img-9", images.url)]);
    let three = chat_with(&(0..3).map(|i| format!("{}/img-{i}", images.url)).collect::<Vec<_>>());

    let cases: Vec<(&str, Option<&str>, &Value, StatusCode)> = vec![
        ("no key", None, &one, StatusCode::UNAUTHORIZED),
        ("an unknown key", Some(bogus), &one, StatusCode::UNAUTHORIZED),
        ("a deactivated key", Some(&inactive), &one, StatusCode::UNAUTHORIZED),
        ("a key without the inference scope", Some(&no_scope), &one, StatusCode::FORBIDDEN),
        ("a model off the key's allow-list", Some(&listed), &one, StatusCode::FORBIDDEN),
        ("a spent quota", Some(&spent), &one, StatusCode::TOO_MANY_REQUESTS),
        ("more images than the key's clamp", Some(&one_image), &two, StatusCode::FORBIDDEN),
        ("more remote images than the gate fetches", Some(&good), &three, StatusCode::BAD_REQUEST),
    ];
    for (what, key, body, status) in cases {
        let reply = app.post("/v1/chat/completions", key, body.clone()).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text());
        assert!(reply.json()["error"]["message"].is_string(), "{what}: OpenAI's error shape");
        assert_eq!(images.connections(), 0, "{what}: the image was fetched for a refused request");
    }
    assert!(forwarded_chats(&app).is_empty());

    // The same image for an admitted request is fetched: the server would have seen the others.
    let reply = app.post("/v1/chat/completions", Some(&good), one.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(images.connections(), 1);
}

#[actix_web::test]
async fn an_inside_address_is_refused_with_400_without_connecting() {
    let app = spawn_app().await;
    let images = ImageServer::start().await;
    let port = images.port();
    let (key, record) = app.create_key(json!({"name": "eyes"})).await;
    for (url, says) in [
        (format!("http://127.0.0.1:{port}/img-8"), "127.0.0.0/8 (loopback)"),
        (format!("http://127.1:{port}/img-8"), "127.0.0.0/8 (loopback)"),
        (format!("http://2130706433:{port}/img-8"), "127.0.0.0/8 (loopback)"),
        (format!("http://[::1]:{port}/img-8"), "::1/128 (loopback)"),
        (format!("http://[::ffff:127.0.0.1]:{port}/img-8"), "::ffff:0.0.0.0/96 (IPv4-mapped)"),
        (format!("http://localhost:{port}/img-8"), "(loopback)"),
        (format!("http://LocalHost:{port}/img-8"), "(loopback)"),
    ] {
        let reply = app.post("/v1/chat/completions", Some(&key), chat_with(std::slice::from_ref(&url))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{url}: {}", reply.text());
        let error = &reply.json()["error"];
        assert_eq!(error["type"], "invalid_request_error", "{url}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("not a public address") && message.contains(says), "{url}: {message}");
    }
    assert_eq!(images.connections(), 0, "nothing connected to the inside address");
    assert!(forwarded_chats(&app).is_empty());
    // Names are refused after admission (they need a lookup): given back all the same.
    assert_eq!(day_usage(&app, &record).await, (0, 0));
    let rows = app.usage_rows(&record["id"]).await;
    assert!(!rows.is_empty() && rows.iter().all(|r| r["status"] == "not_forwarded"), "{rows:?}");
}

#[actix_web::test]
async fn a_failed_fetch_gives_the_request_back_and_charges_nothing() {
    let app = app_with(&[("ALLOW_PRIVATE_IMAGE_URLS", "true")]).await;
    let images = ImageServer::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (key, record) = app.create_key(json!({"name": "eyes", "limits": {"daily_requests": 10}})).await;
    for (url, says) in [
        (format!("{}/page", images.url), "not an image (text/html)"),
        (format!("{}/missing", images.url), "answered 404"),
        (format!("{}/empty", images.url), "sent no image data"),
        (format!("http://127.0.0.1:{closed}/img-8"), "fetch failed"),
    ] {
        let reply = app.post("/v1/chat/completions", Some(&key), chat_with(std::slice::from_ref(&url))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{url}: {}", reply.text());
        let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{url}: {message}");
    }
    assert!(forwarded_chats(&app).is_empty(), "nothing went upstream");
    assert_eq!(day_usage(&app, &record).await, (0, 0), "every request given back, nothing charged");
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!((row["status"].as_str(), row["http_status"].as_i64()), (Some("not_forwarded"), Some(400)));
        assert_eq!((row["prompt_tokens"].as_i64(), row["completion_tokens"].as_i64()), (Some(0), Some(0)));
    }
    // The key still works, and an image that can be fetched is.
    let reply =
        app.post("/v1/chat/completions", Some(&key), chat_with(&[format!("{}/img-8", images.url)])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(day_usage(&app, &record).await.0, 1);
}

#[actix_web::test]
async fn the_images_of_one_request_share_a_byte_budget() {
    let app = app_with(&[
        ("ALLOW_PRIVATE_IMAGE_URLS", "true"),
        ("IMAGE_FETCH_MAX_BYTES", "1000"),
        ("IMAGE_FETCH_MAX_TOTAL_BYTES", "1500"),
    ])
    .await;
    let images = ImageServer::start().await;
    let (key, record) = app.create_key(json!({"name": "eyes"})).await;
    let u = |path: &str| format!("{}/{path}", images.url);
    for (urls, says) in [
        (vec![u("img-1001")], "limit of 1000 bytes per image"),
        (vec![u("stream-1001")], "limit of 1000 bytes per image"),
        (vec![u("img-800"), u("img-800")], "together are larger than the gate's limit of 1500 bytes"),
        (vec![u("img-800"), u("stream-800")], "together are larger than the gate's limit of 1500 bytes"),
    ] {
        let reply = app.post("/v1/chat/completions", Some(&key), chat_with(&urls)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{urls:?}: {}", reply.text());
        let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{urls:?}: {message}");
    }
    assert!(forwarded_chats(&app).is_empty());
    assert_eq!(day_usage(&app, &record).await, (0, 0));

    let reply =
        app.post("/v1/chat/completions", Some(&key), chat_with(&[u("img-750"), u("stream-750")])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let sent = forwarded_chats(&app).pop().unwrap();
    use base64::Engine;
    for part in 1..=2 {
        let url = sent["messages"][0]["content"][part]["image_url"]["url"].as_str().unwrap();
        let data = url.strip_prefix("data:image/png;base64,").expect("inlined as a data URL");
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(data).unwrap(), vec![b'P'; 750]);
    }
}

#[actix_web::test]
async fn fetches_beyond_the_process_cap_wait_briefly_then_get_503() {
    let app = app_with(&[
        ("ALLOW_PRIVATE_IMAGE_URLS", "true"),
        ("IMAGE_FETCH_MAX_IN_FLIGHT", "1"),
        ("IMAGE_FETCH_QUEUE_WAIT_MS", "300"),
    ])
    .await;
    let images = ImageServer::start().await;
    let (first, _) = app.create_key(json!({"name": "first"})).await;
    let (second, second_record) = app.create_key(json!({"name": "second"})).await;
    let held = {
        let request = app
            .proxy_request("POST", "/v1/chat/completions", Some(&first))
            .insert_header(("content-type", "application/json"));
        let body = chat_with(&[format!("{}/hold", images.url)]).to_string().into_bytes();
        actix_web::rt::spawn(async move { send(request, Some(body)).await })
    };
    images.until_connections(1).await;

    let started = Instant::now();
    let reply =
        app.post("/v1/chat/completions", Some(&second), chat_with(&[format!("{}/img-8", images.url)])).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert_eq!(reply.json()["error"]["type"], "server_error");
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("as many images as it may at once"));
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(images.connections(), 1, "the refused fetch never started");
    assert_eq!(day_usage(&app, &second_record).await, (0, 0), "the refused request was given back");

    images.release();
    let first_reply = held.await.unwrap();
    assert_eq!(first_reply.status, StatusCode::OK, "{}", first_reply.text());
    // The slot is free again.
    let reply =
        app.post("/v1/chat/completions", Some(&second), chat_with(&[format!("{}/img-8", images.url)])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[actix_web::test]
async fn a_fetch_waits_for_a_slot_that_frees_within_the_queue_wait() {
    let app = app_with(&[
        ("ALLOW_PRIVATE_IMAGE_URLS", "true"),
        ("IMAGE_FETCH_MAX_IN_FLIGHT", "1"),
        ("IMAGE_FETCH_QUEUE_WAIT_MS", "10000"),
    ])
    .await;
    let images = ImageServer::start().await;
    let (key, _) = app.create_key(json!({"name": "patient"})).await;
    let request = |path: &str| {
        let r = app
            .proxy_request("POST", "/v1/chat/completions", Some(&key))
            .insert_header(("content-type", "application/json"));
        let body = chat_with(&[format!("{}/{path}", images.url)]).to_string().into_bytes();
        actix_web::rt::spawn(async move { send(r, Some(body)).await })
    };
    let first = request("hold");
    images.until_connections(1).await;
    let second = request("img-8");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(images.connections(), 1, "the second fetch waits for the slot");
    images.release();
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    let second = second.await.unwrap();
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(images.connections(), 2);
}

#[actix_web::test]
async fn redirects_are_not_followed() {
    let app = app_with(&[("ALLOW_PRIVATE_IMAGE_URLS", "true")]).await;
    let images = ImageServer::start().await;
    let elsewhere = ImageServer::start().await;
    let (key, record) = app.create_key(json!({"name": "eyes"})).await;
    let url = format!("{}/redirect?to={}/img-8", images.url, elsewhere.url);
    let reply = app.post("/v1/chat/completions", Some(&key), chat_with(&[url])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("redirects are not followed"));
    assert_eq!((images.connections(), elsewhere.connections()), (1, 0));
    assert_eq!(day_usage(&app, &record).await, (0, 0));
}

#[actix_web::test]
async fn a_slow_image_server_is_cut_off_at_the_fetch_timeout() {
    let app = app_with(&[("ALLOW_PRIVATE_IMAGE_URLS", "true"), ("IMAGE_FETCH_TIMEOUT_SECS", "1")]).await;
    let images = ImageServer::start().await;
    let (key, record) = app.create_key(json!({"name": "eyes"})).await;
    let started = Instant::now();
    let reply =
        app.post("/v1/chat/completions", Some(&key), chat_with(&[format!("{}/drip", images.url)])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("longer than 1 s"));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(day_usage(&app, &record).await, (0, 0));
}
