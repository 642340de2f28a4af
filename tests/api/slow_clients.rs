//! Slow and idle clients on real loopback sockets: trickled headers and
//! bodies, idle keep-alive connections, and the connection caps.

use crate::helpers::{spawn_app_with, Options, TestApp};
use crate::raw::{read_more, read_response, read_until_closed, write_all};
use actix_web::rt::net::TcpStream;
use awc::http::StatusCode;
use serde_json::{json, Value};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn opts(env: &[(&'static str, &str)]) -> Options {
    Options { env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(), ..Options::default() }
}

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://")).await.expect("connects to the gate")
}

/// Enough descriptors for both ends of a thousand connections in one process.
fn raise_fd_limit(wanted: u64) {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

async fn timed_get(app: &TestApp, url: String) -> (StatusCode, Duration) {
    let started = Instant::now();
    let reply = app.client.get(url).send().await.expect("the gate answers");
    (reply.status(), started.elapsed())
}

#[actix_web::test]
async fn a_thousand_slow_connections_leave_the_proxy_and_the_admin_answering() {
    raise_fd_limit(8192);
    let app = spawn_app_with(opts(&[
        ("REQUEST_HEADER_TIMEOUT_SECS", "120"),
        ("REQUEST_BODY_TIMEOUT_SECS", "120"),
        ("MAX_CONNECTIONS_PER_ADDRESS", "2000"),
    ]))
    .await;
    let (key, _) = app.create_key(json!({"name": "patient"})).await;

    let mut slow = Vec::new();
    // Headers trickled to the proxy and to the admin.
    for i in 0..700 {
        let base = if i % 2 == 0 { &app.proxy } else { &app.admin };
        let stream = connect(base).await;
        write_all(&stream, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
        slow.push(stream);
    }
    // Bodies trickled to an inference route, past authentication.
    let head = format!(
        "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"model\":\"llama3\",\"prompt\":\""
    );
    for _ in 0..300 {
        let stream = connect(&app.proxy).await;
        write_all(&stream, head.as_bytes()).await.unwrap();
        slow.push(stream);
    }
    let slow = Rc::new(slow);
    let trickle = {
        let slow = slow.clone();
        actix_web::rt::spawn(async move {
            loop {
                for (i, stream) in slow.iter().enumerate() {
                    let byte: &[u8] = if i < 700 { b"X-Slow: 1\r\n" } else { b"a" };
                    let _ = stream.try_write(byte);
                }
                actix_web::rt::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;

    for _ in 0..3 {
        let (status, took) = timed_get(&app, format!("{}/", app.proxy)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(took < Duration::from_secs(5), "GET / took {took:?}");
        let (status, took) = timed_get(&app, format!("{}/login", app.admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(took < Duration::from_secs(5), "the login page took {took:?}");
        let started = Instant::now();
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(5), "a generation took {:?}", started.elapsed());
    }
    // The slow ones were all still being served (none was dropped to make room).
    let mut open = 0;
    let mut buf = [0u8; 64];
    for stream in slow.iter() {
        if matches!(stream.try_read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            open += 1;
        }
    }
    assert_eq!(open, 1000, "every slow connection is still open");
    trickle.abort();
}

#[actix_web::test]
async fn trickled_request_headers_get_408_within_the_header_timeout() {
    let app = spawn_app_with(opts(&[("REQUEST_HEADER_TIMEOUT_SECS", "1")])).await;
    for base in [&app.proxy, &app.admin] {
        let stream = connect(base).await;
        write_all(&stream, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
        let started = Instant::now();
        let mut reply = Vec::new();
        let mut closed = false;
        while !closed && started.elapsed() < Duration::from_secs(6) {
            // One more header line every 200 ms: still slower than the deadline.
            let _ = stream.try_write(b"X-Slow: 1\r\n");
            closed = read_more(&stream, Duration::from_millis(200), &mut reply).await;
        }
        assert!(closed, "the connection is closed within 6 s");
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
}

#[actix_web::test]
async fn a_request_head_trickled_on_a_kept_alive_connection_is_cut_too() {
    // actix times the head of a connection's first request only; the next
    // request on the same connection must not trickle forever.
    let app = spawn_app_with(opts(&[("REQUEST_HEADER_TIMEOUT_SECS", "1"), ("KEEP_ALIVE_SECS", "1")])).await;
    for base in [&app.proxy, &app.admin] {
        let stream = connect(base).await;
        let path = if *base == app.proxy { "/" } else { "/login" };
        write_all(&stream, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        assert!(read_response(&stream).await.starts_with("HTTP/1.1 200"));
        write_all(&stream, b"GET / HTTP/1.1\r\n").await.unwrap();
        let started = Instant::now();
        let mut closed = false;
        let mut got = Vec::new();
        while !closed && started.elapsed() < Duration::from_secs(8) {
            let _ = stream.try_write(b"X-Slow: 1\r\n");
            closed = read_more(&stream, Duration::from_millis(300), &mut got).await;
        }
        assert!(closed, "a trickled second request head kept its connection for 8 s");
        assert!(started.elapsed() >= Duration::from_millis(900), "cut before its time");
    }
}

#[actix_web::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_setting() {
    let app = spawn_app_with(opts(&[("KEEP_ALIVE_SECS", "1")])).await;
    let stream = connect(&app.proxy).await;
    write_all(&stream, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    assert!(read_response(&stream).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    let closed = read_until_closed(&stream, Duration::from_secs(5)).await;
    assert_eq!(closed, Some(vec![]), "closed without another byte");
    assert!(idle.elapsed() >= Duration::from_millis(900), "closed after {:?}", idle.elapsed());
}

/// A JSON body sent slowly: `sent` first, then a byte every 300 ms.
async fn trickle_body(app: &TestApp, path: &str, key: &str, first: &str) -> (String, Duration) {
    let stream = connect(&app.proxy).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{first}"
    );
    write_all(&stream, head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        let _ = stream.try_write(b" ");
        if read_more(&stream, Duration::from_millis(300), &mut got).await {
            break;
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
}

#[actix_web::test]
async fn a_trickled_body_gets_408_in_the_callers_format() {
    let app =
        spawn_app_with(opts(&[("REQUEST_BODY_TIMEOUT_SECS", "1"), ("REQUEST_BODY_MIN_RATE", "100")])).await;
    let (key, record) = app.create_key(json!({"name": "trickler"})).await;

    let (reply, took) =
        trickle_body(&app, "/api/generate", &key, "{\"model\":\"llama3\",\"prompt\":\"").await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let body: Value = serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert!(body["error"].as_str().unwrap().contains("REQUEST_BODY_MIN_RATE"), "{body}");

    let (reply, _) = trickle_body(&app, "/v1/chat/completions", &key, "{\"model\":\"llama3\",").await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    let body: Value = serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");

    let (reply, _) = trickle_body(&app, "/v1/messages", &key, "{\"model\":\"llama3\",").await;
    let body: Value = serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["type"], "error", "{body}");

    assert_eq!(app.mock.count_path("/api/generate") + app.mock.count_path("/v1/chat/completions"), 0);
    // Nothing was admitted, nothing is charged.
    let key = app.key(&record["id"]).await;
    assert_eq!(key["usage"]["total"]["requests"], 0, "{key}");
}

#[actix_web::test]
async fn a_body_at_the_minimum_rate_arrives_whole() {
    let app =
        spawn_app_with(opts(&[("REQUEST_BODY_TIMEOUT_SECS", "1"), ("REQUEST_BODY_MIN_RATE", "100")])).await;
    let (key, _) = app.create_key(json!({"name": "steady"})).await;
    let body = json!({"model": "llama3", "prompt": "one two three", "stream": false, "pad": "x".repeat(200)})
        .to_string();
    let stream = connect(&app.proxy).await;
    let head = format!(
        "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    write_all(&stream, head.as_bytes()).await.unwrap();
    // 50 bytes every 250 ms: 200 bytes a second, above the minimum, for about 1.5 s.
    for piece in body.as_bytes().chunks(50) {
        write_all(&stream, piece).await.unwrap();
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(read_response(&stream).await.starts_with("HTTP/1.1 200"));
}

#[actix_web::test]
async fn connections_over_the_per_address_cap_are_refused_at_once() {
    let app = spawn_app_with(opts(&[("MAX_CONNECTIONS_PER_ADDRESS", "5")])).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let stream = connect(&app.proxy).await;
        write_all(&stream, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        assert!(read_response(&stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let sixth = connect(&app.proxy).await;
    let started = Instant::now();
    let refused =
        read_until_closed(&sixth, Duration::from_secs(3)).await.expect("the sixth is closed at once");
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = String::from_utf8_lossy(&refused);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    // The admin listener keeps its own count.
    assert_eq!(timed_get(&app, format!("{}/login", app.admin)).await.0, StatusCode::OK);

    // A place given back is a place to take.
    drop(held.pop());
    let started = Instant::now();
    loop {
        let stream = connect(&app.proxy).await;
        write_all(&stream, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let reply = read_until_closed(&stream, Duration::from_millis(500)).await;
        match reply {
            None => break,
            Some(text) if text.starts_with(b"HTTP/1.1 200") => break,
            Some(_) => {
                assert!(started.elapsed() < Duration::from_secs(5), "the freed place was not given back")
            }
        }
    }
}

#[actix_web::test]
async fn connections_over_the_total_cap_are_refused_at_once() {
    let app = spawn_app_with(opts(&[("MAX_CONNECTIONS", "3"), ("MAX_CONNECTIONS_PER_ADDRESS", "0")])).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let stream = connect(&app.proxy).await;
        write_all(&stream, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        assert!(read_response(&stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let fourth = connect(&app.proxy).await;
    let refused = read_until_closed(&fourth, Duration::from_secs(3)).await.expect("the fourth is closed");
    assert!(refused.starts_with(b"HTTP/1.1 503"), "{}", String::from_utf8_lossy(&refused));
}
