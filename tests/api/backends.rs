//! Several backends and the fair queue: model-aware routing, a backend that
//! goes away and comes back, busy answers retried elsewhere, manage routes
//! to the backend named, and the queue's order, bounds and cancellation.
//! The mock's `gated` model answers only when the test opens its gate, so the
//! order of service is seen in the order requests reach the mock, with no
//! timing in any assertion.

use crate::helpers::{send, spawn_app_with, Options, Reply, TestApp};
use crate::mock_ollama::MockOllama;
use actix_web::http::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Sends a generation in the background; its reply is awaited later.
fn start(app: &TestApp, key: &str, model: &str, prompt: &str) -> actix_web::rt::task::JoinHandle<Reply> {
    let request = app
        .proxy_request("POST", "/api/generate", Some(key))
        .insert_header(("content-type", "application/json"))
        .timeout(Duration::from_secs(60));
    let body = json!({"model": model, "prompt": prompt, "stream": false}).to_string().into_bytes();
    actix_web::rt::spawn(send(request, Some(body)))
}

async fn health(app: &TestApp) -> Value {
    app.get("/health", None).await.json()
}

/// Waits until `/health` says so of the first backend (or times out loudly).
async fn until(app: &TestApp, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let h = health(app).await;
        if check(&h) {
            return h;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "never {what}: {h}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The prompts that reached the mock for `/api/generate`, in order.
fn prompts(mock: &MockOllama) -> Vec<String> {
    mock.field_served("/api/generate", "prompt")
}

async fn one_slot(env: Vec<(&'static str, String)>) -> TestApp {
    let mock = MockOllama::start().await;
    let upstream = format!("{}?name=gpu&slots=1", mock.url);
    let mut app = spawn_app_with(Options { upstream: Some(upstream), env, ..Options::default() }).await;
    app.mock = mock;
    app
}

#[actix_web::test]
async fn a_keys_backlog_delays_another_keys_request_by_one_turn_at_most() {
    let app = one_slot(vec![]).await;
    let (heavy, _) = app.create_key(json!({"name": "heavy"})).await;
    let (light, _) = app.create_key(json!({"name": "light"})).await;
    let mut replies = vec![];
    for i in 0..8 {
        replies.push(start(&app, &heavy, "gated", &format!("heavy {i}")));
        // Sent one by one, so that the heavy key's order is known too.
        until(&app, "queued", |h| {
            h["backends"][0]["busy"].as_u64().unwrap() + h["backends"][0]["queued"].as_u64().unwrap() == i + 1
        })
        .await;
    }
    replies.push(start(&app, &light, "gated", "light"));
    let h = until(&app, "nine in", |h| h["backends"][0]["queued"] == 8).await;
    assert_eq!(h["backends"][0]["busy"], 1, "{h}");
    // One slot: each answer lets the next in, and the mock sees the order of service.
    app.mock.open_gate(9);
    for reply in replies {
        assert_eq!(reply.await.unwrap().status, StatusCode::OK);
    }
    let order = prompts(&app.mock);
    assert_eq!(order.len(), 9);
    assert_eq!(order[0], "heavy 0");
    assert_eq!(order[1], "light", "the light key goes right after the running request: {order:?}");
    let heavy_order: Vec<_> = order.iter().filter(|p| p.starts_with("heavy")).cloned().collect();
    assert_eq!(
        heavy_order,
        (0..8).map(|i| format!("heavy {i}")).collect::<Vec<_>>(),
        "one key's own order is kept"
    );
    assert_eq!(until(&app, "idle", |h| h["backends"][0]["busy"] == 0).await["backends"][0]["queued"], 0);
}

#[actix_web::test]
async fn two_keys_with_backlogs_take_turns_and_keys_of_one_team_share_a_turn() {
    let app = one_slot(vec![]).await;
    let team = app.admin("POST", "/teams", Some(json!({"name": "lab"}))).await.json();
    let (a, _) = app.create_key(json!({"name": "a"})).await;
    let member =
        app.admin("POST", "/users", Some(json!({"name": "ann", "team_id": team["id"]}))).await.json();
    let (t1, _) = app.create_key(json!({"name": "t1", "user_id": member["id"]})).await;
    let (t2, _) = app.create_key(json!({"name": "t2", "user_id": member["id"]})).await;
    let mut replies = vec![start(&app, &a, "gated", "first")];
    until(&app, "running", |h| h["backends"][0]["busy"] == 1).await;
    let sends =
        [(&a, "a1"), (&a, "a2"), (&a, "a3"), (&t1, "t1-1"), (&t2, "t2-1"), (&t1, "t1-2"), (&t2, "t2-2")];
    for (n, (key, prompt)) in sends.iter().enumerate() {
        replies.push(start(&app, key, "gated", prompt));
        until(&app, "queued", |h| h["backends"][0]["queued"] == n as u64 + 1).await;
    }
    app.mock.open_gate(replies.len());
    for reply in replies {
        assert_eq!(reply.await.unwrap().status, StatusCode::OK);
    }
    let order = prompts(&app.mock);
    // The team is one flow: its four requests alternate with key a's three.
    assert_eq!(order, ["first", "t1-1", "a1", "t2-1", "a2", "t1-2", "a3", "t2-2"], "{order:?}");
}

#[actix_web::test]
async fn the_queue_is_bounded_per_key_and_in_time_and_refusals_cost_nothing() {
    let app = one_slot(vec![("QUEUE_MAX_PER_KEY", "2".into()), ("QUEUE_MAX_WAIT_SECS", "1".into())]).await;
    let (key, record) = app.create_key(json!({"name": "batch"})).await;
    let running = start(&app, &key, "gated", "running");
    until(&app, "running", |h| h["backends"][0]["busy"] == 1).await;
    let waiting: Vec<_> = (0..2).map(|i| start(&app, &key, "gated", &format!("waiting {i}"))).collect();
    until(&app, "two waiting", |h| h["backends"][0]["queued"] == 2).await;
    // A third waiter is one too many for this key, in each API's format.
    let native = app.post("/api/generate", Some(&key), json!({"model": "gated", "prompt": "x"})).await;
    assert_eq!(native.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(native.header("retry-after").as_deref(), Some("1"));
    assert!(native.json()["error"].as_str().unwrap().contains("QUEUE_MAX_PER_KEY"), "{}", native.text());
    let openai = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "gated", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(openai.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(openai.json()["error"]["code"], "queue_full");
    // The two waiting ones run out of time (QUEUE_MAX_WAIT_SECS=1).
    for w in waiting {
        let reply = w.await.unwrap();
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text());
        assert!(reply.text().contains("QUEUE_MAX_WAIT_SECS"), "{}", reply.text());
        assert!(reply.header("retry-after").is_some());
    }
    app.mock.open_gate(1);
    assert_eq!(running.await.unwrap().status, StatusCode::OK);
    assert_eq!(prompts(&app.mock), ["running"], "refused and timed-out requests never reached the backend");
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["in_flight"], 0);
    let rows = app.usage_rows(&record["id"]).await;
    let charged: i64 = rows.iter().filter_map(|r| r["total_tokens"].as_i64()).sum();
    let served: i64 =
        rows.iter().filter(|r| r["http_status"] == 200).filter_map(|r| r["total_tokens"].as_i64()).sum();
    assert_eq!(charged, served, "only the served request is charged: {rows:?}");
}

#[actix_web::test]
async fn a_client_that_hangs_up_while_waiting_leaves_the_queue_at_once() {
    let app = one_slot(vec![]).await;
    let (key, record) = app.create_key(json!({"name": "impatient"})).await;
    let running = start(&app, &key, "gated", "running");
    until(&app, "running", |h| h["backends"][0]["busy"] == 1).await;
    let stream =
        crate::raw::post_generate(&app.proxy, &key, &json!({"model": "gated", "prompt": "gone"})).await;
    until(&app, "waiting", |h| h["backends"][0]["queued"] == 1).await;
    drop(stream);
    until(&app, "left", |h| h["backends"][0]["queued"] == 0).await;
    app.mock.open_gate(2);
    assert_eq!(running.await.unwrap().status, StatusCode::OK);
    // The next request is served at once: no slot was kept for the one that left.
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(prompts(&app.mock), ["running", "one two three"]);
    let rows = app.usage_rows(&record["id"]).await;
    let gone: Vec<_> = rows.iter().filter(|r| r["http_status"] == 499).collect();
    assert_eq!(gone.len(), 1, "{rows:?}");
    assert_eq!(gone[0]["total_tokens"], 0);
}

async fn two_backends(a: &MockOllama, b: &MockOllama, extra: &str) -> TestApp {
    let upstream = format!("{}?name=a{extra},{}?name=b{extra}", a.url, b.url);
    spawn_app_with(Options { upstream: Some(upstream), ..Options::default() }).await
}

#[actix_web::test]
async fn a_model_goes_to_the_backend_that_has_it_and_listings_merge() {
    let (a, b) = (MockOllama::start().await, MockOllama::start().await);
    a.set_models(&["llama3:latest", "shared:latest"]);
    b.set_models(&["qwen3:8b", "shared:latest"]);
    let app = two_backends(&a, &b, "").await;
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    until(&app, "probed", |h| h["backends"][1]["version"] == "0.32.15").await;
    for _ in 0..3 {
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
        assert_eq!(app.generate(&key, "qwen3:8b", false).await.status, StatusCode::OK);
    }
    assert_eq!(a.field_served("/api/generate", "model"), ["llama3"; 3]);
    assert_eq!(b.field_served("/api/generate", "model"), ["qwen3:8b"; 3]);
    let tags = app.get("/api/tags", Some(&key)).await.json();
    let names: Vec<&str> =
        tags["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["llama3:latest", "shared:latest", "qwen3:8b"], "each model once");
    let ps = app.get("/api/ps", Some(&key)).await.json();
    assert_eq!(ps["models"].as_array().unwrap().len(), 2);
    // A key with an allow-list sees its models only, merged or not.
    let (narrow, _) = app.create_key(json!({"name": "narrow", "models": ["qwen3:8b"]})).await;
    let tags = app.get("/api/tags", Some(&narrow)).await.json();
    assert_eq!(tags["models"].as_array().unwrap().len(), 1, "{tags}");
}

#[actix_web::test]
async fn a_backend_that_dies_is_taken_out_and_comes_back() {
    let (a, b) = (MockOllama::start().await, MockOllama::start().await);
    let app = two_backends(&a, &b, "").await;
    let (key, record) = app.create_key(json!({"name": "k"})).await;
    until(&app, "both up", |h| {
        h["backends"][1]["status"] == "ok" && h["backends"][0]["version"] == "0.32.15"
    })
    .await;
    a.stop().await;
    // Every request still succeeds: a refused connection moves on to b.
    for _ in 0..6 {
        let reply = app.generate(&key, "llama3", false).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let h = until(&app, "a out", |h| h["backends"][0]["status"] == "down").await;
    assert_eq!(h["upstream"]["status"], "ok", "ok while any backend is");
    assert_eq!(b.count_path("/api/generate"), 6);
    a.restart();
    until(&app, "a back", |h| h["backends"][0]["status"] == "ok").await;
    for _ in 0..6 {
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    }
    assert!(a.count_path("/api/generate") >= 2, "a takes work again: {}", a.count_path("/api/generate"));
    let rows = app.usage_rows(&record["id"]).await;
    assert!(rows.iter().all(|r| r["http_status"] == 200), "{rows:?}");
    // With both out, 503 and nothing is charged.
    a.stop().await;
    b.stop().await;
    let h = until(&app, "both out", |h| h["upstream"]["status"] == "down").await;
    assert_eq!(h["backends"][1]["status"], "down");
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    assert!(reply.header("retry-after").is_some());
}

#[actix_web::test]
async fn busy_answers_are_retried_on_another_backend_but_not_past_the_last() {
    let (a, b) = (MockOllama::start().await, MockOllama::start().await);
    let app = two_backends(&a, &b, "").await;
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    a.set_busy(true);
    for _ in 0..4 {
        let reply = app.generate(&key, "llama3", false).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(b.count_path("/api/generate"), 4);
    b.set_busy(true);
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.text().contains("server busy"), "Ollama's own answer: {}", reply.text());
    // Busy is not down: both stay in use.
    let h = health(&app).await;
    assert_eq!(
        (h["backends"][0]["status"].as_str(), h["backends"][1]["status"].as_str()),
        (Some("ok"), Some("ok"))
    );
}

#[actix_web::test]
async fn manage_routes_go_to_the_backend_named_and_are_never_retried() {
    let (a, b) = (MockOllama::start().await, MockOllama::start().await);
    let app = two_backends(&a, &b, "").await;
    let (key, _) =
        app.create_key(json!({"name": "admin", "scopes": ["inference", "models", "manage"]})).await;
    let pull = app.post("/api/pull?backend=b", Some(&key), json!({"model": "llama3", "stream": false})).await;
    assert_eq!(pull.status, StatusCode::OK, "{}", pull.text());
    assert_eq!(
        (a.count_path("/api/pull"), b.count_path("/api/pull")),
        (0, 1),
        "{:?}",
        b.requests().last().map(|r| r.path.clone())
    );
    let pull = app.post("/api/pull", Some(&key), json!({"model": "llama3", "stream": false})).await;
    assert_eq!(pull.status, StatusCode::OK);
    assert_eq!(a.count_path("/api/pull"), 1, "without a name: the first backend");
    let unknown = app.post("/api/pull?backend=nope", Some(&key), json!({"model": "llama3"})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.text().contains("no backend is named 'nope'"));
    b.stop().await;
    let down = app.post("/api/pull?backend=b", Some(&key), json!({"model": "llama3", "stream": false})).await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY, "not retried on a: {}", down.text());
    assert_eq!(a.count_path("/api/pull"), 1);
}

#[actix_web::test]
async fn backends_are_set_through_the_admin_api_with_their_options() {
    let (a, b) = (MockOllama::start().await, MockOllama::start().await);
    let app = two_backends(&a, &b, "&slots=2").await;
    let got = app.admin("GET", "/settings", None).await.json();
    assert_eq!(
        got["backends"][0],
        json!({"name": "a", "url": format!("{}/", a.url), "slots": 2, "weight": 1, "enabled": true, "draining": false})
    );
    let put = app
        .admin(
            "PUT",
            "/settings",
            Some(json!({"backends": [
                {"url": a.url, "name": "a", "slots": 4, "weight": 3},
                {"url": b.url, "name": "b", "draining": true}
            ]})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let got = put.json();
    assert_eq!(
        (got["backends"][0]["slots"].as_u64(), got["backends"][0]["weight"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(got["backends"][1]["draining"], true);
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    for _ in 0..4 {
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    }
    assert_eq!(b.count_path("/api/generate"), 0, "a draining backend takes no new work");
    // Plain URLs keep the options of backends that stay; upstream_urls is the same field.
    let put = app.admin("PUT", "/settings", Some(json!({"upstream_urls": [a.url]}))).await;
    assert_eq!(
        put.json()["backends"],
        json!([{"name": "a", "url": format!("{}/", a.url), "slots": 4, "weight": 3, "enabled": true, "draining": false}])
    );
    for (bad, says) in [
        (json!({"backends": [{"url": a.url, "slots": 0}]}), "slots=0"),
        (
            json!({"backends": [{"url": a.url, "name": "x"}, {"url": b.url, "name": "x"}]}),
            "two backends are named 'x'",
        ),
        (json!({"backends": [{"url": a.url, "colour": "red"}]}), "colour"),
        (json!({"backends": []}), "at least one"),
        (json!({"ollama_urls": [format!("{}?slots=many", a.url)]}), "slots=many"),
    ] {
        let reply = app.admin("PUT", "/settings", Some(bad.clone())).await;
        assert!(reply.status.is_client_error(), "{bad}: {}", reply.status);
        assert!(reply.text().contains(says), "{bad}: {}", reply.text());
    }
    assert_eq!(
        app.admin("GET", "/settings", None).await.json()["backends"][0]["slots"],
        4,
        "a refused change changes nothing"
    );
}

#[actix_web::test]
async fn a_keys_priority_is_its_share_of_turns_while_keys_wait() {
    let app = one_slot(vec![]).await;
    let (first, _) = app.create_key(json!({"name": "first"})).await;
    let (high, record) = app.create_key(json!({"name": "high", "priority": 3})).await;
    assert_eq!(record["priority"], 3);
    let (low, _) = app.create_key(json!({"name": "low"})).await;
    let mut replies = vec![start(&app, &first, "gated", "first")];
    until(&app, "running", |h| h["backends"][0]["busy"] == 1).await;
    let mut queued = 0;
    for (key, name) in [(&high, "high"), (&low, "low")] {
        for i in 0..6 {
            replies.push(start(&app, key, "gated", &format!("{name} {i}")));
            queued += 1;
            until(&app, "queued", |h| h["backends"][0]["queued"] == queued).await;
        }
    }
    app.mock.open_gate(replies.len());
    for reply in replies {
        assert_eq!(reply.await.unwrap().status, StatusCode::OK);
    }
    let order = prompts(&app.mock);
    assert_eq!(
        order[..9],
        ["first", "high 0", "low 0", "high 1", "high 2", "high 3", "low 1", "high 4", "high 5"],
        "three turns for one: {order:?}"
    );
    for bad in
        [json!(0), json!(101), json!(-1), json!(1.5), json!("3"), json!(9223372036854775808u64), json!(1e19)]
    {
        let reply = app.admin("POST", "/api-keys", Some(json!({"name": "x", "priority": bad.clone()}))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "priority {bad}: {}", reply.text());
    }
    let patched =
        app.admin("PATCH", &format!("/api-keys/{}", record["id"]), Some(json!({"priority": 7}))).await;
    assert_eq!(patched.json()["priority"], 7, "{}", patched.text());
    assert_eq!(app.key(&record["id"]).await["priority"], 7);
}

#[actix_web::test]
async fn other_spellings_of_a_model_wait_in_the_same_queue() {
    let app = one_slot(vec![]).await;
    let (key, _) = app.create_key(json!({"name": "speller"})).await;
    let running = start(&app, &key, "gated", "running");
    until(&app, "running", |h| h["backends"][0]["busy"] == 1).await;
    // As Ollama reads them, all of these are the model that is running.
    let spellings = ["GATED", "gated:latest", "library/gated", "registry.ollama.ai/library/Gated:Latest"];
    let mut waiting = vec![];
    for (n, model) in spellings.iter().enumerate() {
        waiting.push(start(&app, &key, model, &format!("spelled {n}")));
        until(&app, "queued", |h| h["backends"][0]["queued"] == n as u64 + 1).await;
    }
    assert_eq!(prompts(&app.mock), ["running"], "no other spelling found a slot of its own");
    app.mock.open_gate(1);
    assert_eq!(running.await.unwrap().status, StatusCode::OK);
    for reply in waiting {
        assert_eq!(reply.await.unwrap().status, StatusCode::OK);
    }
    assert_eq!(prompts(&app.mock).len(), 5);
}

#[actix_web::test]
async fn a_stream_cut_by_the_client_or_the_upstream_frees_its_slot() {
    // A slot that stayed taken would make the next request wait out QUEUE_MAX_WAIT_SECS and get 429.
    let app = one_slot(vec![("QUEUE_MAX_WAIT_SECS", "5".into())]).await;
    let (key, record) = app.create_key(json!({"name": "cutter"})).await;
    let stream =
        crate::raw::post_generate(&app.proxy, &key, &json!({"model": "slow", "prompt": "a b c"})).await;
    // The first chunks have passed: the request holds the slot, mid-answer.
    let mut got = Vec::new();
    crate::raw::read_more(&stream, Duration::from_millis(300), &mut got).await;
    assert!(String::from_utf8_lossy(&got).contains("\"done\":false"), "{}", String::from_utf8_lossy(&got));
    assert_eq!(health(&app).await["backends"][0]["busy"], 1);
    drop(stream);
    let after_client = app.generate(&key, "llama3", false).await;
    assert_eq!(after_client.status, StatusCode::OK, "{}", after_client.text());
    // The upstream cuts this one after two chunks.
    let cut = app.post("/api/generate", Some(&key), json!({"model": "cut-2", "prompt": "a b c"})).await;
    assert_eq!(cut.status, StatusCode::OK);
    let after_upstream = app.generate(&key, "llama3", false).await;
    assert_eq!(after_upstream.status, StatusCode::OK, "{}", after_upstream.text());
    until(&app, "idle", |h| h["backends"][0]["busy"] == 0).await;
    assert_eq!(app.settled(&record["id"]).await["usage"]["in_flight"], 0);
}
