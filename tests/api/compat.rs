//! The OpenAI- and Anthropic-compatible routes, clamps and aliases.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};

fn sse_data(reply: &Reply) -> Vec<Value> {
    reply
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn forwarded(app: &TestApp, path: &str) -> Value {
    let seen = app.mock.requests();
    let r = seen.iter().rev().find(|r| r.path == path).expect("forwarded");
    serde_json::from_slice(&r.body).unwrap()
}

#[actix_web::test]
async fn a_streamed_openai_chat_is_charged_exactly_and_the_client_sees_only_the_usage_it_asked_for() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "openai", "limits": {"daily_tokens": 100000}})).await;
    let chat = json!({"model": "llama3", "stream": true, "max_tokens": 4,
        "messages": [{"role": "user", "content": "hello there"}]});
    let silent = app.post("/v1/chat/completions", Some(&key), chat.clone()).await;
    assert_eq!(silent.header("content-type").as_deref(), Some("text/event-stream"));
    let events = sse_data(&silent);
    assert_eq!(events.len(), 4, "four content chunks and no usage chunk: {}", silent.text());
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert!(silent.text().ends_with("data: [DONE]\n\n"));
    assert_eq!(forwarded(&app, "/v1/chat/completions")["stream_options"]["include_usage"], true);

    let mut asking = chat.clone();
    asking["stream_options"] = json!({"include_usage": true});
    let told = app.post("/v1/chat/completions", Some(&key), asking).await;
    let usage: Vec<&Value> = sse_data(&told)
        .iter()
        .filter_map(|e| e.get("usage"))
        .cloned()
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .collect();
    assert_eq!(usage.len(), 1, "exactly one usage chunk");
    assert_eq!(usage[0]["total_tokens"], 6);

    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"], 12, "2 prompt + 4 completion tokens, twice");
    let rows = app.usage_rows(&record["id"]).await;
    assert!(rows.iter().all(|r| r["estimated"] == false && r["status"] == "ok"));
}

#[actix_web::test]
async fn completions_embeddings_and_responses_are_charged_from_their_usage() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "v1"})).await;
    let whole = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "llama3", "messages": [{"role": "user", "content": "a b c"}]}),
        )
        .await;
    assert_eq!(whole.json()["usage"]["total_tokens"], 6);
    let legacy = app
        .post(
            "/v1/completions",
            Some(&key),
            json!({"model": "llama3", "prompt": "a b", "stream": true, "max_tokens": 2}),
        )
        .await;
    assert_eq!(sse_data(&legacy).len(), 2);
    let embed = app
        .post("/v1/embeddings", Some(&key), json!({"model": "llama3", "input": "one two three four"}))
        .await;
    assert_eq!(embed.json()["usage"]["prompt_tokens"], 4);
    let response = app
        .post("/v1/responses", Some(&key), json!({"model": "llama3", "input": "x y", "stream": true}))
        .await;
    assert!(response.text().contains("event: response.completed"));
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"].as_i64().unwrap(), app.mock.reported_tokens());
    assert_eq!(app.mock.reported_tokens(), 6 + 4 + 4 + 5);
}

#[actix_web::test]
async fn anthropic_messages_stream_and_claude_names_map_to_the_default_model() {
    let app = spawn_app_with(Options {
        env: vec![("ANTHROPIC_DEFAULT_MODEL", "qwen3:8b".into())],
        ..Options::default()
    })
    .await;
    let (key, record) = app.create_key(json!({"name": "claude code"})).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 3, "stream": true,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "one two"}]}]});
    let reply = send(
        app.proxy_request("POST", "/v1/messages", None)
            .insert_header(("x-api-key", key.clone()))
            .insert_header(("anthropic-version", "2023-06-01")),
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.text().contains("event: message_stop"));
    let sent = forwarded(&app, "/v1/messages");
    assert_eq!(sent["model"], "qwen3:8b", "an unknown model goes to ANTHROPIC_DEFAULT_MODEL");
    let seen = app.mock.requests();
    assert!(seen
        .iter()
        .any(|r| r.headers.iter().any(|(k, v)| k == "anthropic-version" && v == "2023-06-01")));
    let known = app
        .post(
            "/v1/messages",
            Some(&key),
            json!({"model": "llama3", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(known.json()["model"], "llama3", "a model Ollama has is left alone");
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"], (2 + 3) + (1 + 2));

    let before = app.mock.count();
    let counted = app
        .post(
            "/v1/messages/count_tokens",
            Some(&key),
            json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "one two three"}]}),
        )
        .await;
    assert_eq!(counted.json(), json!({"input_tokens": 3}));
    assert_eq!(app.mock.count_path("/v1/messages"), 2);
    assert!(
        app.mock.count() - before <= 1,
        "count_tokens is answered by the gate (the catalog may be fetched once)"
    );
}

#[actix_web::test]
async fn a_stream_that_breaks_ends_with_an_error_event_in_the_callers_format() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "broken"})).await;
    let openai = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "cut", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    let last = sse_data(&openai).pop().unwrap();
    assert!(
        last["error"]["message"].as_str().unwrap().contains("upstream connection lost"),
        "{}",
        openai.text()
    );
    let anthropic = app.post("/v1/messages", Some(&key), json!({"model": "cut", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "x"}]})).await;
    assert!(anthropic.text().contains("event: error\ndata: {\"error\":{\"message\""), "{}", anthropic.text());
    let last = sse_data(&anthropic).pop().unwrap();
    assert_eq!(last["type"], "error");
}

#[actix_web::test]
async fn clamps_lower_what_is_forwarded_and_what_is_reserved() {
    let app = spawn_app().await;
    let (key, record) = app
        .create_key(json!({"name": "clamped", "limits": {"daily_tokens": 40},
            "clamps": {"max_num_ctx": 2048, "max_output_tokens": 8, "max_images": 1}}))
        .await;
    assert_eq!(record["clamps"]["max_output_tokens"], 8);
    // Without the clamp this would reserve 512 output tokens and be refused.
    let reply = app
        .post(
            "/api/chat",
            Some(&key),
            json!({"model": "llama3", "stream": false,
        "options": {"num_ctx": 131072}, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let sent = forwarded(&app, "/api/chat");
    assert_eq!(sent["options"], json!({"num_ctx": 2048, "num_predict": 8}));
    let openai = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "llama3", "max_tokens": 9999, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(openai.status, StatusCode::OK);
    assert_eq!(forwarded(&app, "/v1/chat/completions")["max_tokens"], 8);

    let pinned = app
        .post("/api/generate", Some(&key), json!({"model": "llama3", "prompt": "x", "keep_alive": -1}))
        .await;
    assert_eq!(pinned.status, StatusCode::FORBIDDEN);
    assert!(pinned.json()["error"].as_str().unwrap().contains("keep_alive"));
    let images = app
        .post("/api/generate", Some(&key), json!({"model": "llama3", "prompt": "x", "images": ["AA", "BB"]}))
        .await;
    assert_eq!(images.status, StatusCode::FORBIDDEN);
    let patched = app
        .admin(
            "PATCH",
            &format!("/api-keys/{}", record["id"]),
            Some(json!({"clamps": {"allow_keep_alive_extremes": true}})),
        )
        .await;
    assert_eq!(patched.json()["clamps"]["max_output_tokens"], 8, "other clamps stay");
    let allowed = app
        .post(
            "/api/generate",
            Some(&key),
            json!({"model": "llama3", "prompt": "x", "keep_alive": -1, "stream": false}),
        )
        .await;
    assert_eq!(allowed.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_keys_aliases_choose_the_model_that_answers() {
    let app = spawn_app().await;
    let (key, _) = app
        .create_key(json!({"name": "aliased", "models": ["llama3"], "model_aliases": {"gpt-4o": "llama3", "big": "mistral"}}))
        .await;
    let reply = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(forwarded(&app, "/v1/chat/completions")["model"], "llama3");
    let refused = app.post("/v1/chat/completions", Some(&key), json!({"model": "big", "messages": []})).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "the allow-list applies to the model that would answer"
    );
    let models = app.get("/v1/models", Some(&key)).await.json();
    let ids: Vec<_> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["llama3:latest"]);
}

fn with_image(url: &str) -> Value {
    json!({"model": "llama3", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
}

#[actix_web::test]
async fn remote_images_on_inside_addresses_are_refused_by_default() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "eyes"})).await;
    let port = app.mock.url.rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("http://127.0.0.1:{port}/cat.png"),
        format!("http://localhost:{port}/cat.png"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://[::1]:{port}/cat.png"),
    ] {
        let reply = app.post("/v1/chat/completions", Some(&key), with_image(&url)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{url}: {}", reply.text());
        assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    }
    assert_eq!(app.mock.count(), 0, "nothing fetched, nothing forwarded");
}

#[actix_web::test]
async fn a_remote_image_is_fetched_and_inlined_when_the_operator_allows_the_address() {
    let app = spawn_app_with(Options {
        env: vec![("ALLOW_PRIVATE_IMAGE_URLS", "true".into()), ("IMAGE_FETCH_MAX_BYTES", "1000".into())],
        ..Options::default()
    })
    .await;
    let (key, _) = app.create_key(json!({"name": "eyes"})).await;
    let reply =
        app.post("/v1/chat/completions", Some(&key), with_image(&format!("{}/cat.png", app.mock.url))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let sent = forwarded(&app, "/v1/chat/completions");
    let url = sent["messages"][0]["content"][1]["image_url"]["url"].as_str().unwrap().to_owned();
    use base64::Engine;
    let data = url.strip_prefix("data:image/png;base64,").expect("a data URL");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(data).unwrap(), crate::mock_ollama::PNG);
    let page = app
        .post("/v1/chat/completions", Some(&key), with_image(&format!("{}/page.html", app.mock.url)))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.json()["error"]["message"].as_str().unwrap().contains("not an image"));
}
