//! Long and revoked streams: the longest stream duration, and the streams of a
//! key deactivated, rotated or deleted (here or in another process) end
//! within seconds with the family's error event, charged for what passed.

use crate::helpers::{spawn_app_with, Options, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn opts(env: &[(&'static str, &str)]) -> Options {
    Options { env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(), ..Options::default() }
}

/// Starts a stream, reads until `lines` lines have come, and hands back the
/// response to read on.
async fn start_stream(
    app: &TestApp,
    path: &str,
    key: &str,
    body: Value,
    lines: usize,
) -> (
    awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>,
    >,
    Vec<u8>,
) {
    let mut response = app
        .proxy_request("POST", path, Some(key))
        .insert_header(("content-type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("the stream starts");
    assert_eq!(response.status(), 200);
    let mut got = Vec::new();
    while got.iter().filter(|b| **b == b'\n').count() < lines {
        got.extend_from_slice(&response.next().await.expect("more lines").expect("a chunk"));
    }
    (response, got)
}

/// Reads the rest of a stream; panics if it is still running after `within`.
async fn read_to_end<S>(response: &mut S, got: &mut Vec<u8>, within: Duration) -> Duration
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let started = Instant::now();
    loop {
        let left = within.checked_sub(started.elapsed()).expect("the stream ended in time");
        match actix_web::rt::time::timeout(left, response.next()).await {
            Ok(Some(Ok(chunk))) => got.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => panic!("the stream broke instead of ending with an error event: {e}"),
            Ok(None) => return started.elapsed(),
            Err(_) => panic!("the stream still runs after {within:?}"),
        }
    }
}

fn last_line(got: &[u8]) -> Value {
    let text = String::from_utf8_lossy(got);
    let line = text.lines().rfind(|l| !l.trim().is_empty()).expect("a last line");
    serde_json::from_str(line.trim_start_matches("data: ")).expect("the last line is JSON")
}

/// The usage row of the one request the key made, once it is settled (the
/// row outlives a deleted key).
async fn settled_row(app: &TestApp, id: &Value) -> Value {
    for _ in 0..250 {
        if let Some(row) = app.usage_rows(id).await.into_iter().next() {
            return row;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no usage row for key {id}");
}

#[actix_web::test]
async fn a_stream_past_the_longest_duration_ends_with_an_error_event_and_is_charged() {
    let app = spawn_app_with(opts(&[("MAX_STREAM_DURATION_SECS", "2")])).await;
    let (key, record) = app.create_key(json!({"name": "long", "limits": {"daily_tokens": 100000}})).await;
    // `hold-3`: three lines, then lines without text every 50 ms, for ever:
    // never quiet long enough for the idle timeout.
    let started = Instant::now();
    let (mut response, mut got) =
        start_stream(&app, "/api/generate", &key, json!({"model": "hold-3", "prompt": "one two three"}), 3)
            .await;
    read_to_end(&mut response, &mut got, Duration::from_secs(10)).await;
    let lasted = started.elapsed();
    assert!(lasted >= Duration::from_millis(1900), "ended after {lasted:?}");
    assert!(lasted < Duration::from_secs(6), "ended after {lasted:?}");
    let error = last_line(&got);
    assert!(error["error"].as_str().unwrap().contains("MAX_STREAM_DURATION_SECS"), "{error}");

    let row = settled_row(&app, &record["id"]).await;
    assert_eq!(row["status"], "stream_too_long");
    assert_eq!(row["estimated"], true);
    assert_eq!(row["prompt_tokens"], 3);
    assert!(row["completion_tokens"].as_i64().unwrap() >= 1, "{row}");
    let start = Instant::now();
    while app.mock.cancelled() == 0 {
        assert!(start.elapsed() < Duration::from_secs(2), "the upstream was not hung up on");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }

    // OpenAI's family gets its own error event.
    let (mut response, mut got) = start_stream(
        &app,
        "/v1/chat/completions",
        &key,
        json!({"model": "hold-2", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        2,
    )
    .await;
    read_to_end(&mut response, &mut got, Duration::from_secs(10)).await;
    let error = last_line(&got);
    assert_eq!(error["error"]["code"], "upstream_timeout", "{error}");
}

/// Streams `slow` (200 chunks, 6 s), revokes the key with `revoke` after a few
/// lines, and checks the stream ends within 5 s, charged for what passed.
async fn revoked_mid_stream(app: &TestApp, other: &TestApp, what: &str) {
    let (key, record) =
        app.create_key(json!({"name": format!("revoked-{what}"), "limits": {"daily_tokens": 100000}})).await;
    let id = &record["id"];
    let (mut response, mut got) =
        start_stream(app, "/api/generate", &key, json!({"model": "slow", "prompt": "one two three"}), 5)
            .await;
    let reply = match what {
        "deactivate" => other.admin("PUT", &format!("/api-keys/{id}/deactivate"), None).await,
        "rotate" => other.admin("POST", &format!("/api-keys/{id}/rotate"), None).await,
        _ => other.admin("DELETE", &format!("/api-keys/{id}"), None).await,
    };
    assert!(reply.status.is_success(), "{what}: {}", reply.text());
    let took = read_to_end(&mut response, &mut got, Duration::from_secs(5)).await;
    let error = last_line(&got);
    assert!(
        error["error"].as_str().unwrap_or_default().contains("no longer valid"),
        "{what}: the stream ended after {took:?} without the error line: {error}"
    );
    let delivered = String::from_utf8_lossy(&got).lines().count() - 1;
    assert!(delivered < 150, "{what}: {delivered} of 200 chunks passed");

    let row = settled_row(app, id).await;
    assert_eq!(row["status"], "key_revoked", "{what}");
    assert_eq!(row["estimated"], true, "{what}");
    assert_eq!(row["prompt_tokens"], 3, "{what}");
    let completion = row["completion_tokens"].as_i64().unwrap();
    assert!((5..=200).contains(&completion), "{what}: charged {completion} for {delivered} chunks");
}

#[actix_web::test]
async fn a_revoked_keys_streams_end_within_seconds_and_are_charged() {
    let app = spawn_app_with(opts(&[("REVOKED_STREAM_CHECK_SECS", "1")])).await;
    for what in ["deactivate", "rotate", "delete"] {
        revoked_mid_stream(&app, &app, what).await;
    }
}

#[actix_web::test]
async fn a_key_revoked_through_another_replica_ends_the_streams_here() {
    let app = spawn_app_with(opts(&[("REVOKED_STREAM_CHECK_SECS", "1")])).await;
    // A second application on the same database stands for another replica.
    let other = spawn_app_with(Options {
        env: vec![("DATABASE_URL", app.database_url.clone())],
        ..Options::default()
    })
    .await;
    for what in ["deactivate", "rotate", "delete"] {
        revoked_mid_stream(&app, &other, what).await;
    }
}

#[actix_web::test]
async fn a_stream_of_a_key_left_alone_runs_to_its_end() {
    let app = spawn_app_with(opts(&[("REVOKED_STREAM_CHECK_SECS", "1")])).await;
    let (key, record) = app.create_key(json!({"name": "untouched"})).await;
    let (mut response, mut got) =
        start_stream(&app, "/api/generate", &key, json!({"model": "slow", "prompt": "one two three"}), 1)
            .await;
    read_to_end(&mut response, &mut got, Duration::from_secs(30)).await;
    assert_eq!(last_line(&got)["done"], true);
    assert_eq!(settled_row(&app, &record["id"]).await["status"], "ok");
}

#[actix_web::test]
async fn a_client_that_stops_reading_a_stream_is_cut_off_after_the_longest_duration() {
    // An upstream that streams as fast as it can: once the client stops
    // reading, buffers fill and actix stops polling the response stream.
    let hung_up = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = hung_up.clone();
    let upstream = crate::raw::upstream(move |stream| {
        let flag = flag.clone();
        async move {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
            if crate::raw::write_all(&stream, head.as_bytes()).await.is_err() {
                return;
            }
            let line =
                format!("{}\n", json!({"model": "fast", "response": "tok ".repeat(4000), "done": false}));
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            while crate::raw::write_all(&stream, chunk.as_bytes()).await.is_ok() {}
            flag.set(true);
        }
    })
    .await;
    let app = spawn_app_with(Options {
        upstream: Some(upstream),
        env: vec![
            ("MAX_STREAM_DURATION_SECS", "1".into()),
            ("KEEP_ALIVE_SECS", "1".into()),
            ("REQUEST_HEADER_TIMEOUT_SECS", "1".into()),
        ],
        ..Options::default()
    })
    .await;
    let (key, record) = app.create_key(json!({"name": "never-reads"})).await;
    let client =
        crate::raw::post_generate(&app.proxy, &key, &json!({"model": "fast", "prompt": "one two three"}))
            .await;
    // Never read: the gate must give up on this client and hang up upstream.
    let started = Instant::now();
    while !hung_up.get() {
        assert!(started.elapsed() < Duration::from_secs(10), "the stream is still held after 10 s");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(900), "cut off after {:?}", started.elapsed());
    // Megabytes passed before the buffers filled; counting them takes a while.
    let started = Instant::now();
    while app.key(&record["id"]).await["usage"]["in_flight"] != 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the request was never settled");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let row = settled_row(&app, &record["id"]).await;
    assert!(row["completion_tokens"].as_i64().unwrap() > 0, "what passed is charged: {row}");
    drop(client);
}
