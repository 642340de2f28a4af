use crate::helpers::*;
use awc::http::StatusCode;
use futures_util::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn charged_tokens_equal_the_upstreams_counts_streamed_and_not() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "count", "limits": {"daily_tokens": 100000}})).await;
    let streamed = app
        .post(
            "/api/chat",
            Some(&key),
            json!({"model": "llama3",
        "messages": [{"role": "user", "content": "tell me a short story"}], "options": {"num_predict": 7}}),
        )
        .await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert_eq!(streamed.header("content-type").as_deref(), Some("application/x-ndjson"));
    let lines = streamed.lines();
    assert_eq!(lines.len(), 8, "7 chunks and the final one, passed through as sent");
    assert_eq!(lines[7]["done"], true);
    let whole = app
        .post("/api/generate", Some(&key), json!({"model": "llama3", "prompt": "a b c d", "stream": false}))
        .await;
    assert_eq!(whole.json()["eval_count"], 3);
    let embed = app.post("/api/embed", Some(&key), json!({"model": "llama3", "input": "x y"})).await;
    assert_eq!(embed.status, StatusCode::OK);

    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"].as_i64().unwrap(), app.mock.reported_tokens());
    assert_eq!(app.mock.reported_tokens(), (5 + 7) + (4 + 3) + 2);
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "ok" && r["estimated"] == false), "{rows:?}");
    let chat = rows.iter().find(|r| r["route"] == "/api/chat").unwrap();
    assert_eq!((chat["prompt_tokens"].as_i64(), chat["completion_tokens"].as_i64()), (Some(5), Some(7)));
}

#[actix_web::test]
async fn legacy_embeddings_are_charged_by_estimate_and_marked_so() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "legacy"})).await;
    let reply = app
        .post("/api/embeddings", Some(&key), json!({"model": "llama3", "prompt": "hello there world"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["estimated"], true);
    assert_eq!(rows[0]["prompt_tokens"], 3);
}

#[actix_web::test]
async fn a_client_that_disconnects_mid_stream_cancels_the_upstream_and_pays_for_what_it_got() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "impatient", "limits": {"daily_tokens": 100000}})).await;
    let mut response = app
        .proxy_request("POST", "/api/generate", Some(&key))
        .send_body(json!({"model": "slow", "prompt": "one two three"}).to_string())
        .await
        .unwrap();
    let mut seen = 0;
    while seen < 5 {
        let chunk = response.next().await.unwrap().unwrap();
        seen += chunk.iter().filter(|b| **b == b'\n').count();
    }
    drop(response);
    let hung_up = Instant::now();
    while app.mock.cancelled() == 0 {
        assert!(hung_up.elapsed() < Duration::from_secs(1), "upstream not cancelled within a second");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let settled = app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["status"], "client_aborted");
    assert_eq!(rows[0]["estimated"], true);
    let completion = rows[0]["completion_tokens"].as_i64().unwrap();
    assert!((5..200).contains(&completion), "charged {completion} of 200 chunks");
    assert_eq!(rows[0]["prompt_tokens"], 3);
    // The reservation (3 + 512) was replaced by what was generated.
    assert_eq!(settled["usage"]["day"]["tokens"].as_i64().unwrap(), 3 + completion);
}

#[actix_web::test]
async fn an_error_from_the_upstream_mid_stream_reaches_the_client_and_is_charged_partially() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "broken"})).await;
    let reply = app.generate(&key, "broken", true).await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines = reply.lines();
    assert_eq!(lines.last().unwrap()["error"], "model runner has unexpectedly stopped");
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["status"], "upstream_failed");
    assert_eq!(rows[0]["estimated"], true);
    assert!(rows[0]["completion_tokens"].as_i64().unwrap() >= 2);
}

#[actix_web::test]
async fn an_upstream_that_dies_mid_stream_ends_the_client_stream_with_an_error_line() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "cut"})).await;
    let reply = app.generate(&key, "cut", true).await;
    let lines = reply.lines();
    assert_eq!(lines.len(), 3, "{}", reply.text());
    assert!(lines[2]["error"].as_str().unwrap().contains("upstream connection lost"));
    app.settled(&record["id"]).await;
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_failed");
}

#[actix_web::test]
async fn an_upstream_that_goes_quiet_is_cut_off_after_the_idle_timeout() {
    let app =
        spawn_app_with(Options { env: vec![("STREAM_IDLE_TIMEOUT_SECS", "1".into())], ..Options::default() })
            .await;
    let (key, record) = app.create_key(json!({"name": "stall"})).await;
    let started = Instant::now();
    let reply = app.generate(&key, "stall", true).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(reply.lines().last().unwrap()["error"].as_str().unwrap().contains("nothing for too long"));
    app.settled(&record["id"]).await;
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_timeout");
}

#[actix_web::test]
async fn an_unreachable_upstream_gets_502_and_the_request_is_given_back() {
    let app =
        spawn_app_with(Options { upstream: Some("http://127.0.0.1:9".into()), ..Options::default() }).await;
    let (key, record) =
        app.create_key(json!({"name": "down", "limits": {"daily_requests": 5, "daily_tokens": 10000}})).await;
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.json()["error"], "upstream Ollama is unreachable");
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"], json!({"requests": 0, "tokens": 0}));
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_unreachable");
}

#[actix_web::test]
async fn an_upstream_error_status_passes_through_and_charges_no_tokens() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "404"})).await;
    let reply = app.generate(&key, "missing", false).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "model 'missing' not found");
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"], 0);
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_error");
}

#[actix_web::test]
async fn a_locked_database_fails_closed_with_503_and_recovers_without_a_restart() {
    if postgres_backend().is_some() {
        // A PostgreSQL outage is tested against a server that is really stopped: tests/pg_outage.rs.
        return;
    }
    let app =
        spawn_app_with(Options { env: vec![("DB_BUSY_TIMEOUT_MS", "200".into())], ..Options::default() })
            .await;
    let (key, _) = app.create_key(json!({"name": "locked"})).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let before = app.mock.count();

    use sqlx::Connection;
    let mut other = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.unwrap();
    let reply =
        app.post("/v1/chat/completions", Some(&key), json!({"model": "llama3", "messages": []})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["type"], "server_error");
    assert_eq!(app.mock.count(), before, "nothing is forwarded while the database is away");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();

    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn key_holders_read_their_own_usage() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "me", "limits": {"daily_tokens": 1000, "daily_requests": 10}})).await;
    // One at a time: each reserves 515 tokens of the 1000 until it settles.
    app.generate(&key, "llama3", false).await;
    app.settled(&record["id"]).await;
    app.generate(&key, "qwen3:8b", false).await;
    app.settled(&record["id"]).await;
    let usage = app.get("/v1/usage", Some(&key)).await.json();
    assert_eq!(usage["key"]["name"], "me");
    assert_eq!(usage["usage"]["day"], json!({"requests": 2, "tokens": 12}));
    assert_eq!(usage["remaining"]["daily_tokens"], 988);
    assert_eq!(usage["remaining"]["daily_requests"], 8);
    assert_eq!(usage["remaining"]["monthly_tokens"], serde_json::Value::Null);
    let summary = app.get("/v1/usage/summary", Some(&key)).await.json();
    let models: Vec<_> =
        summary["models"].as_array().unwrap().iter().map(|m| m["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["llama3:latest", "qwen3:8b"]);
    assert_eq!(app.get("/v1/usage", None).await.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_upstream_slower_than_the_first_byte_timeout_gets_504_and_the_request_back() {
    let app =
        spawn_app_with(Options { env: vec![("FIRST_BYTE_TIMEOUT_SECS", "1".into())], ..Options::default() })
            .await;
    let (key, record) = app.create_key(json!({"name": "cold", "limits": {"daily_requests": 1}})).await;
    let reply = app.generate(&key, "sleepy", false).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(reply.json()["error"].as_str().unwrap().contains("FIRST_BYTE_TIMEOUT_SECS"));
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["requests"], 0, "a request that got no answer is given back");
    // The quota of one request is still there to use.
    let chat = app.post("/api/chat", Some(&key), json!({"model": "sleepy", "messages": []})).await;
    assert_eq!(chat.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 0);
}
