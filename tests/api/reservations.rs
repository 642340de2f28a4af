//! What a request reserves and what it is told when it asks for more than is left.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};

/// The body the mock received on its last request to `path`.
fn forwarded(app: &TestApp, path: &str) -> Value {
    let seen = app.mock.requests().into_iter().rev().find(|r| r.path == path).expect("the mock saw it");
    serde_json::from_slice(&seen.body).expect("JSON went upstream")
}

#[actix_web::test]
async fn a_request_asking_for_more_output_than_is_left_is_served_with_what_is_left() {
    let app = spawn_app().await;
    let (key, created) = app.create_key(json!({"name": "agent", "limits": {"daily_tokens": 1000}})).await;
    // A coding agent asks for 32k tokens of output on a key with 1,000 left.
    let body = json!({"model": "llama3", "max_tokens": 32000, "stream": false,
        "messages": [{"role": "user", "content": "one two three four"}]});
    let reply = app.post("/v1/messages", Some(&key), body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let sent = forwarded(&app, "/v1/messages");
    let max = sent["max_tokens"].as_i64().unwrap();
    assert!(max > 900 && max < 1000, "forwarded max_tokens {max}: what is left after the prompt");
    let key = app.settled(&created["id"]).await;
    assert!(key["usage"]["day"]["tokens"].as_i64().unwrap() <= 1000);

    // The same on the native and OpenAI routes, in the field each one obeys.
    let (key, native_key) = app.create_key(json!({"name": "native", "limits": {"daily_tokens": 500}})).await;
    let native = json!({"model": "llama3", "prompt": "hi", "stream": false, "options": {"num_predict": -1}});
    assert_eq!(app.post("/api/generate", Some(&key), native).await.status, StatusCode::OK);
    let predict = forwarded(&app, "/api/generate")["options"]["num_predict"].as_i64().unwrap();
    assert!(predict > 0 && predict < 500, "num_predict {predict}");
    // Its reservation of nearly everything ends when it settles.
    app.settled(&native_key["id"]).await;
    let openai = json!({"model": "llama3", "max_completion_tokens": 100000, "max_tokens": 100000,
        "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(app.post("/v1/chat/completions", Some(&key), openai).await.status, StatusCode::OK);
    let sent = forwarded(&app, "/v1/chat/completions");
    for field in ["max_completion_tokens", "max_tokens"] {
        let n = sent[field].as_i64().unwrap();
        assert!(n > 0 && n < 500, "{field} {n}");
    }
}

#[actix_web::test]
async fn a_request_without_a_maximum_gets_what_is_left_once_the_default_no_longer_fits() {
    let app = spawn_app().await;
    let chat = json!({"model": "llama3", "stream": false, "messages": [{"role": "user", "content": "hi"}]});
    // Plenty left: forwarded as asked, reserving DEFAULT_OUTPUT_RESERVATION.
    let (roomy, _) = app.create_key(json!({"name": "roomy", "limits": {"monthly_tokens": 1000000}})).await;
    assert_eq!(app.post("/api/chat", Some(&roomy), chat.clone()).await.status, StatusCode::OK);
    assert!(forwarded(&app, "/api/chat").get("options").is_none());
    // Less left than the default: what is left becomes the maximum.
    let (tight, tight_record) =
        app.create_key(json!({"name": "tight", "limits": {"daily_tokens": 100}})).await;
    assert_eq!(app.post("/api/chat", Some(&tight), chat.clone()).await.status, StatusCode::OK);
    let predict = forwarded(&app, "/api/chat")["options"]["num_predict"].as_i64().unwrap();
    assert!(predict > 90 && predict < 100, "num_predict {predict}");
    // Settlement follows the answer: until it lands, that request's reservation
    // of nearly everything is still held, and the next would rightly get 429.
    app.settled(&tight_record["id"]).await;
    let openai = json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(app.post("/v1/chat/completions", Some(&tight), openai).await.status, StatusCode::OK);
    let max = forwarded(&app, "/v1/chat/completions")["max_tokens"].as_i64().unwrap();
    assert!(max > 0 && max < 100, "max_tokens {max}");
}

#[actix_web::test]
async fn a_prompt_that_leaves_no_room_is_refused_saying_why_and_not_to_retry() {
    let app = spawn_app().await;
    let (key, created) = app.create_key(json!({"name": "small", "limits": {"daily_tokens": 5}})).await;
    let long = "word ".repeat(50);
    for (path, body) in [
        ("/api/chat", json!({"model": "llama3", "messages": [{"role": "user", "content": long}]})),
        ("/v1/chat/completions", json!({"model": "llama3", "messages": [{"role": "user", "content": long}]})),
        (
            "/v1/messages",
            json!({"model": "llama3", "max_tokens": 10, "messages": [{"role": "user", "content": long}]}),
        ),
    ] {
        let reply = app.post(path, Some(&key), body).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(reply.header("x-should-retry").as_deref(), Some("false"), "{path}");
        assert!(reply.header("retry-after").is_some());
        assert!(reply.text().contains("leaves no room for output"), "{path}: {}", reply.text());
    }
    assert_eq!(app.mock.count_path("/api/chat") + app.mock.count_path("/v1/chat/completions"), 0);
    let key = app.settled(&created["id"]).await;
    assert_eq!(key["usage"]["day"]["tokens"], 0, "a refusal charges nothing");
}

#[actix_web::test]
async fn a_spent_quota_says_not_to_retry_and_a_rate_limit_does_not() {
    let app = spawn_app().await;
    let (spent, _) = app.create_key(json!({"name": "spent", "limits": {"daily_requests": 0}})).await;
    let reply = app.generate(&spent, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("x-should-retry").as_deref(), Some("false"));
    let (rated, _) = app.create_key(json!({"name": "rated", "limits": {"requests_per_minute": 0}})).await;
    let reply = app.generate(&rated, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("x-should-retry"), None, "a per-minute limit passes by itself soon");
}

#[actix_web::test]
async fn keep_alive_is_judged_as_ollama_reads_it() {
    let app =
        spawn_app_with(Options { env: vec![("MAX_KEEP_ALIVE", "30m".into())], ..Options::default() }).await;
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    let refused =
        [json!(0.5), json!("900ms"), json!(-0.5), json!("-1ns"), json!("31m"), json!(1801), json!(1e19)];
    for keep_alive in refused {
        let body = json!({"model": "llama3", "prompt": "hi", "stream": false, "keep_alive": keep_alive});
        let reply = app.post("/api/generate", Some(&key), body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "keep_alive {keep_alive}: {}", reply.text());
    }
    for unreadable in [json!("10"), json!("5 minutes"), json!(true)] {
        let body = json!({"model": "llama3", "prompt": "hi", "stream": false, "keep_alive": unreadable});
        let reply = app.post("/api/generate", Some(&key), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "keep_alive {unreadable}");
    }
    assert_eq!(app.mock.count_path("/api/generate"), 0);
    for fine in [json!("30m"), json!(1800), json!("1m30s"), json!(60.5)] {
        let body = json!({"model": "llama3", "prompt": "hi", "stream": false, "keep_alive": fine});
        assert_eq!(app.post("/api/generate", Some(&key), body).await.status, StatusCode::OK, "{fine}");
    }
}

#[actix_web::test]
async fn an_api_key_in_the_body_never_goes_upstream() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    let body = json!({"model": "llama3", "prompt": "hi", "stream": false, "api_key": key});
    assert_eq!(app.post("/api/generate", Some(&key), body).await.status, StatusCode::OK);
    let seen = app.mock.requests().into_iter().find(|r| r.path == "/api/generate").unwrap();
    assert!(!String::from_utf8_lossy(&seen.body).contains("sk-og-"), "the key went upstream");
    assert!(forwarded(&app, "/api/generate").get("api_key").is_none());
}

#[actix_web::test]
async fn usage_records_each_model_under_one_name() {
    let app = spawn_app().await;
    let (key, created) = app.create_key(json!({"name": "k", "models": ["llama3.2"]})).await;
    for name in ["llama3.2", "llama3.2:latest", "LLAMA3.2", "library/llama3.2"] {
        let body = json!({"model": name, "prompt": "hi", "stream": false});
        assert_eq!(app.post("/api/generate", Some(&key), body).await.status, StatusCode::OK, "{name}");
    }
    app.settled(&created["id"]).await;
    let models: Vec<Value> =
        app.usage_rows(&created["id"]).await.iter().map(|r| r["model"].clone()).collect();
    assert_eq!(models, vec![json!("llama3.2:latest"); 4]);
}
