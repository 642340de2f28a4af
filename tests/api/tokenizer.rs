//! Token counting never holds the threads that serve connections, is bounded,
//! and is never spent on a request the key's quota refuses.

use crate::helpers::*;
use awc::http::StatusCode;
use ollama_gate::proxy::policy::body;
use serde_json::{json, Value};
use std::time::Duration;

const BODY_LIMIT: usize = 4 << 20;

/// A `count_tokens` body of BODY_LIMIT bytes whose text is one run of spaces:
/// the worst case for byte-pair encoding (minutes for 32 MiB counted whole).
fn maximal_count_tokens_body() -> Value {
    let frame = json!({"model": "llama3", "messages": [{"role": "user", "content": ""}]}).to_string();
    let content = " ".repeat(BODY_LIMIT - frame.len());
    json!({"model": "llama3", "messages": [{"role": "user", "content": content}]})
}

async fn tokenizer_app(threads: &str) -> TestApp {
    spawn_app_with(Options {
        env: vec![
            ("BODY_LIMIT", BODY_LIMIT.to_string()),
            ("TOKENIZER_THREADS", threads.into()),
            ("TOKENIZER_QUEUE", "6".into()),
            ("TOKENIZER_QUEUE_PER_KEY", "4".into()),
        ],
        ..Options::default()
    })
    .await
}

/// Sends a maximal count_tokens body in the background.
fn send_maximal(app: &TestApp, key: &str, body: &Value) -> actix_web::rt::task::JoinHandle<Reply> {
    let (proxy, key, body) = (app.proxy.clone(), key.to_owned(), body.to_string().into_bytes());
    actix_web::rt::spawn(async move {
        let request = client()
            .post(format!("{proxy}/v1/messages/count_tokens"))
            .timeout(Duration::from_secs(120))
            .insert_header(("x-api-key", key.as_str()));
        send(request, Some(body)).await
    })
}

/// Waits until `n` counts are in the pool (queued or being counted), none of them done.
async fn wait_until_waiting(app: &TestApp, n: usize, running: &[actix_web::rt::task::JoinHandle<Reply>]) {
    let started = std::time::Instant::now();
    while app.proxy_state.tokenizer.waiting() < n {
        assert!(
            running.iter().all(|r| !r.is_finished()),
            "a maximal body was counted before the others arrived"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the maximal bodies never reached the tokenizer"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn while_four_maximal_bodies_are_counted_everyone_else_is_answered() {
    let app = tokenizer_app("1").await;
    let (hog, hog_record) = app.create_key(json!({"name": "hog"})).await;
    let (other, _) = app.create_key(json!({"name": "other", "limits": {"daily_tokens": 100000}})).await;
    let big = maximal_count_tokens_body();
    assert!(big.to_string().len() <= BODY_LIMIT);

    let running: Vec<_> = (0..4).map(|_| send_maximal(&app, &hog, &big)).collect();
    // All four in the pool (queued or being counted), then the hog's fifth is refused.
    let small = json!({"model": "llama3", "messages": [{"role": "user", "content": "two words"}]});
    wait_until_waiting(&app, 4, &running).await;
    let refused = app.post("/v1/messages/count_tokens", Some(&hog), small.clone()).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text());
    assert_eq!(refused.json()["type"], "error");
    assert_eq!(refused.json()["error"]["type"], "rate_limit_error");
    assert!(refused.text().contains("TOKENIZER_QUEUE_PER_KEY"), "{}", refused.text());
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));

    // Meanwhile: the root, another key's count, another key's generation that
    // needs a prompt estimate, and a listing all answer.
    let root = app.get("/", None).await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.text());
    let counted = app.post("/v1/messages/count_tokens", Some(&other), small.clone()).await;
    assert_eq!(counted.status, StatusCode::OK, "{}", counted.text());
    assert_eq!(counted.json()["input_tokens"], body::prompt_tokens(&small));
    let generated = app.generate(&other, "llama3", false).await;
    assert_eq!(generated.status, StatusCode::OK, "{}", generated.text());
    let tags = app.get("/api/tags", Some(&other)).await;
    assert_eq!(tags.status, StatusCode::OK, "{}", tags.text());
    assert!(
        running.iter().all(|r| !r.is_finished()),
        "the others were answered only after the maximal bodies were counted"
    );

    let expected = body::prompt_tokens(&big);
    for reply in running {
        let reply = reply.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.json()["input_tokens"], expected);
    }
    // count_tokens is metered like any request (in the usage history, the
    // per-minute limit and concurrency) and charged no tokens.
    let settled = app.settled(&hog_record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"], 0);
    let rows = app.usage_rows(&hog_record["id"]).await;
    assert_eq!(rows.iter().filter(|r| r["http_status"] == 200).count(), 4, "{rows:?}");
}

#[actix_web::test]
async fn a_full_tokenizer_queue_answers_503_in_each_api_format() {
    let app = tokenizer_app("1").await;
    let big = maximal_count_tokens_body();
    // Six places in all, four for one key: two keys fill them.
    let mut running = vec![];
    for name in ["first", "second"] {
        let (key, _) = app.create_key(json!({"name": name, "limits": {"daily_tokens": 10_000_000}})).await;
        running.extend((0..3).map(|_| send_maximal(&app, &key, &big)));
    }
    let (third, third_record) =
        app.create_key(json!({"name": "third", "limits": {"daily_tokens": 10_000_000}})).await;
    let prompt = json!({"model": "llama3", "prompt": "hello there", "stream": false});
    let chat = json!({"model": "llama3", "messages": [{"role": "user", "content": "hello there"}]});
    let anthropic =
        json!({"model": "llama3", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    wait_until_waiting(&app, 6, &running).await;
    let full = app.post("/api/generate", Some(&third), prompt.clone()).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE, "{}", full.text());
    assert!(full.json()["error"].as_str().unwrap().contains("TOKENIZER_QUEUE"), "{}", full.text());
    assert_eq!(full.header("retry-after").as_deref(), Some("1"));
    let openai = app.post("/v1/chat/completions", Some(&third), chat).await;
    assert_eq!(openai.status, StatusCode::SERVICE_UNAVAILABLE, "{}", openai.text());
    assert_eq!(openai.json()["error"]["code"], "service_unavailable");
    let messages = app.post("/v1/messages", Some(&third), anthropic).await;
    assert_eq!(messages.status, StatusCode::SERVICE_UNAVAILABLE, "{}", messages.text());
    assert_eq!(messages.json()["error"]["type"], "overloaded_error");
    for reply in running {
        assert_eq!(reply.await.unwrap().status, StatusCode::OK);
    }
    // Refused before admission: nothing counted or reserved, nothing forwarded.
    let settled = app.settled(&third_record["id"]).await;
    assert_eq!(settled["usage"]["day"]["requests"], 0);
    assert_eq!(settled["usage"]["day"]["tokens"], 0);
    assert_eq!(app.mock.count(), 0);
    // And once the queue drains, the same key is served again.
    let after = app.post("/api/generate", Some(&third), prompt).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text());
}

#[actix_web::test]
async fn a_spent_key_costs_no_tokenizer_work() {
    let app =
        spawn_app_with(Options { env: vec![("KEY_CACHE_TTL_MS", "60000".into())], ..Options::default() })
            .await;
    let (key, record) = app.create_key(json!({"name": "spent", "limits": {"daily_tokens": 7}})).await;
    // 3 prompt tokens and 4 output tokens: the whole day's 7.
    let spend =
        json!({"model": "llama3", "prompt": "one two three", "stream": false, "options": {"num_predict": 4}});
    assert_eq!(app.post("/api/generate", Some(&key), spend).await.status, StatusCode::OK);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["tokens"], 7);

    let long = "a long prompt that would take the tokenizer a while ".repeat(20_000);
    let hostile = json!({"model": "llama3", "prompt": long, "stream": false});
    let before = app.proxy_state.tokenizer.counts_started();
    for _ in 0..5 {
        let reply = app.post("/api/generate", Some(&key), hostile.clone()).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
        assert!(reply.text().contains("daily_tokens"), "{}", reply.text());
    }
    // The key was cached before it was spent, so the first refusal may have
    // counted; it also dropped the stale entry, so no later one did.
    let counted = app.proxy_state.tokenizer.counts_started() - before;
    assert!(counted <= 1, "{counted} refused requests were tokenized");
    assert_eq!(app.mock.count(), 1);
}
