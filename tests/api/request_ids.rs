//! `x-request-id`: kept when well formed, replaced otherwise, on every
//! answer, upstream, in usage rows, the usage log and error bodies.

use crate::helpers::{send, spawn_app, spawn_app_with, Options, Reply, TestApp};
use awc::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

fn generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Posts `body` with the given `x-request-id` headers (none, one or several).
async fn post_with_ids(app: &TestApp, path: &str, key: Option<&str>, ids: &[&str], body: Value) -> Reply {
    let mut req = app.proxy_request("POST", path, key).insert_header(("content-type", "application/json"));
    for id in ids {
        req = req.append_header(("x-request-id", *id));
    }
    send(req, Some(body.to_string().into_bytes())).await
}

fn generate_body() -> Value {
    json!({"model": "llama3", "prompt": "one two three", "stream": false})
}

/// The `x-request-id` of each request the mock received, in order.
fn ids_upstream(app: &TestApp) -> Vec<String> {
    app.mock
        .requests()
        .iter()
        .map(|r| {
            let ids: Vec<&String> =
                r.headers.iter().filter(|(k, _)| k == "x-request-id").map(|(_, v)| v).collect();
            assert_eq!(ids.len(), 1, "exactly one x-request-id goes upstream: {:?}", r.headers);
            ids[0].clone()
        })
        .collect()
}

/// The usage log's lines, once it has `n` of them.
async fn log_lines(app: &TestApp, n: usize) -> Vec<Value> {
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&app.log_path).unwrap_or_default();
        if text.lines().count() >= n {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[actix_web::test]
async fn a_well_formed_client_id_is_kept_sent_upstream_and_recorded() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "ids"})).await;
    let id = "client-Req_1.2";
    let reply = post_with_ids(&app, "/api/generate", Some(&key), &[id], generate_body()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-request-id").as_deref(), Some(id));
    assert_eq!(ids_upstream(&app), [id]);

    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["request_id"], id);
    let lines = log_lines(&app, 1).await;
    assert_eq!((lines[0]["event"].as_str(), lines[0]["request_id"].as_str()), (Some("request"), Some(id)));

    let longest = "a".repeat(128);
    let reply = post_with_ids(&app, "/api/generate", Some(&key), &[&longest], generate_body()).await;
    assert_eq!(reply.header("x-request-id"), Some(longest), "128 characters are still kept");
}

#[actix_web::test]
async fn a_malformed_client_id_is_replaced_everywhere_by_a_generated_one() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "bad ids"})).await;
    let too_long = "a".repeat(129);
    let huge = "b".repeat(6000);
    let cases: Vec<Vec<&str>> = vec![
        vec![&too_long],
        vec![&huge],
        vec!["has space"],
        vec!["slash/and;semicolon"],
        vec!["<script>alert(1)</script>"],
        vec!["quote\"d"],
        vec![""],
        vec!["one", "two"],
    ];
    let mut answered = Vec::new();
    for ids in &cases {
        let reply = post_with_ids(&app, "/api/generate", Some(&key), ids, generate_body()).await;
        assert_eq!(reply.status, StatusCode::OK, "{ids:?}");
        let id = reply.header("x-request-id").unwrap();
        assert!(generated(&id), "{ids:?} answered with {id}");
        assert_eq!(reply.headers.get_all("x-request-id").count(), 1);
        answered.push(id);
    }
    assert_eq!(ids_upstream(&app), answered, "the upstream sees the replacement, never the client's");
    app.settled(&record["id"]).await;
    let recorded: HashSet<String> = app
        .usage_rows(&record["id"])
        .await
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recorded, answered.iter().cloned().collect::<HashSet<_>>());
}

#[actix_web::test]
async fn generated_ids_are_unique_across_concurrent_requests() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "many"})).await;
    let replies = futures_util::future::join_all(
        (0..24).map(|_| app.post("/api/generate", Some(&key), generate_body())),
    )
    .await;
    let ids: HashSet<String> = replies.iter().map(|r| r.header("x-request-id").unwrap()).collect();
    assert_eq!(ids.len(), 24, "{ids:?}");
    assert!(ids.iter().all(|id| generated(id)));
    app.settled(&record["id"]).await;
    let rows: HashSet<String> = app
        .usage_rows(&record["id"])
        .await
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rows, ids, "each usage row has its own request's id (settled in batches too)");
}

#[actix_web::test]
async fn refusals_carry_the_id_in_the_header_and_the_body_of_each_family() {
    let app = spawn_app().await;
    let (spent, _) = app.create_key(json!({"name": "spent", "limits": {"daily_requests": 0}})).await;
    let families = [
        ("/api/chat", json!({"model": "llama3", "messages": []})),
        ("/v1/chat/completions", json!({"model": "llama3", "messages": []})),
        ("/v1/messages", json!({"model": "llama3", "max_tokens": 5, "messages": []})),
    ];
    for (path, body) in &families {
        // Unauthenticated, with the client's id kept.
        let reply = post_with_ids(&app, path, None, &["refused-1"], body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.header("x-request-id").as_deref(), Some("refused-1"), "{path}");
        assert_eq!(reply.json()["request_id"], "refused-1", "{path}: {}", reply.text());
        // Over quota, with a generated one.
        let reply = app.post(path, Some(&spent), body.clone()).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        let id = reply.header("x-request-id").unwrap();
        assert!(generated(&id));
        assert_eq!(reply.json()["request_id"], id.as_str(), "{path}: {}", reply.text());
    }
    // The family's own shape is untouched beside the id.
    let reply = post_with_ids(&app, "/api/chat", None, &["x"], json!({})).await;
    assert_eq!(reply.json().as_object().unwrap().len(), 2, "{}", reply.text());
    let reply = post_with_ids(&app, "/v1/messages", None, &["x"], json!({})).await;
    assert_eq!(reply.json()["type"], "error");
    assert!(reply.json()["error"]["message"].is_string());

    // Routes the gate answers itself, and an unknown one.
    let reply = app.get("/v1/usage", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["request_id"].as_str(), reply.header("x-request-id").as_deref());
    let reply = app.post("/api/nothing-here", Some(&spent), json!({})).await;
    assert_eq!(reply.json()["request_id"].as_str(), reply.header("x-request-id").as_deref());
    assert!(app.get("/health", None).await.header("x-request-id").is_some());
    assert_eq!(app.mock.count(), 0, "nothing was forwarded");

    // Refusals are in the usage log with their ids.
    let lines = log_lines(&app, 8).await;
    let refused: Vec<&Value> = lines.iter().filter(|l| l["event"] == "refused").collect();
    assert!(refused.iter().any(|l| l["request_id"] == "refused-1"));
    assert!(refused.iter().all(|l| l["request_id"].as_str().is_some_and(|s| !s.is_empty())));
}

#[actix_web::test]
async fn a_preflight_gets_an_id_and_browsers_may_read_it() {
    let app = spawn_app_with(Options {
        env: vec![("ALLOWED_ORIGINS", "https://app.example".into())],
        ..Options::default()
    })
    .await;
    let preflight = app
        .proxy_request("OPTIONS", "/v1/chat/completions", None)
        .insert_header(("origin", "https://app.example"))
        .insert_header(("access-control-request-method", "POST"))
        .insert_header(("access-control-request-headers", "x-request-id, traceparent"))
        .insert_header(("x-request-id", "pre-1"));
    let reply = send(preflight, None).await;
    assert_eq!(reply.header("x-request-id").as_deref(), Some("pre-1"));
    assert!(reply.header("access-control-allow-headers").unwrap().contains("x-request-id"));
    let (key, _) = app.create_key(json!({"name": "browser"})).await;
    let req =
        app.proxy_request("GET", "/v1/models", Some(&key)).insert_header(("origin", "https://app.example"));
    let reply = send(req, None).await;
    assert!(reply.header("access-control-expose-headers").unwrap().contains("x-request-id"));
}

#[actix_web::test]
async fn streams_upstream_failures_and_broken_streams_carry_the_id() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "failing"})).await;

    let streamed = post_with_ids(
        &app,
        "/v1/chat/completions",
        Some(&key),
        &["stream-1"],
        json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
    )
    .await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert_eq!(streamed.header("x-request-id").as_deref(), Some("stream-1"));

    // The upstream breaks the stream: its last line, the gate's error, names the request.
    let broken = post_with_ids(
        &app,
        "/api/generate",
        Some(&key),
        &["cut-1"],
        json!({"model": "cut", "prompt": "hi", "stream": true}),
    )
    .await;
    let last = broken.lines().pop().unwrap();
    assert_eq!((last["error"].is_string(), last["request_id"].as_str()), (true, Some("cut-1")), "{last}");

    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    let by_id = |id: &str| rows.iter().find(|r| r["request_id"] == id).map(|r| r["status"].clone());
    assert_eq!(by_id("stream-1"), Some(json!("ok")));
    assert_eq!(by_id("cut-1"), Some(json!("upstream_failed")));
}

#[actix_web::test]
async fn an_unreachable_upstream_answer_and_its_usage_row_carry_the_id() {
    let app =
        spawn_app_with(Options { upstream: Some("http://127.0.0.1:9".into()), ..Options::default() }).await;
    let (key, record) = app.create_key(json!({"name": "down"})).await;
    let down =
        post_with_ids(&app, "/v1/chat/completions", Some(&key), &["down-1"], json!({"model": "llama3"}))
            .await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY);
    assert_eq!(down.header("x-request-id").as_deref(), Some("down-1"));
    assert_eq!(down.json()["request_id"], "down-1");
    assert_eq!(down.json()["error"]["code"], "upstream_unreachable");
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(
        (rows[0]["request_id"].as_str(), rows[0]["status"].as_str()),
        (Some("down-1"), Some("upstream_unreachable"))
    );
}
