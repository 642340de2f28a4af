//! Every string that is stored or shown has a length limit, checked before
//! anything is stored; a refusal repeats only the start of the value.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};

/// Longest model name a request, an allow-list or an alias may have, in bytes.
const MODEL_NAME: usize = 200;

#[actix_web::test]
async fn an_over_long_model_name_is_refused_in_each_api_format_before_admission() {
    let app = spawn_app().await;
    let scopes = json!(["inference", "models", "manage"]);
    let (key, record) = app
        .create_key(json!({"name": "long names", "scopes": scopes, "limits": {"daily_tokens": 100000}}))
        .await;
    let long = "m".repeat(MODEL_NAME + 1);
    let requests = [
        ("/api/generate", json!({"model": long, "prompt": "hi", "stream": false})),
        (
            "/api/chat",
            json!({"model": long, "messages": [{"role": "user", "content": "hi"}], "stream": false}),
        ),
        ("/api/show", json!({"model": long})),
        ("/api/pull", json!({"name": long})),
        ("/v1/chat/completions", json!({"model": long, "messages": [{"role": "user", "content": "hi"}]})),
        ("/v1/embeddings", json!({"model": long, "input": "hi"})),
        (
            "/v1/messages",
            json!({"model": long, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in requests {
        let reply = app.post(path, Some(&key), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {}", reply.text());
        let message = match path {
            p if p.starts_with("/api/") => reply.json()["error"].as_str().unwrap().to_owned(),
            "/v1/messages" => {
                assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
                reply.json()["error"]["message"].as_str().unwrap().to_owned()
            }
            _ => {
                assert_eq!(reply.json()["error"]["code"], "invalid_request");
                reply.json()["error"]["message"].as_str().unwrap().to_owned()
            }
        };
        assert!(message.contains("at most 200 bytes"), "{path}: {message}");
        assert!(!message.contains(&long), "{path}: the whole name is echoed");
        assert!(reply.body.len() < 400, "{path}: {} bytes", reply.body.len());
    }
    // Nothing admitted, reserved, forwarded or written to the usage history.
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["minute"]["requests"], 0);
    assert_eq!(settled["usage"]["day"], json!({"requests": 0, "tokens": 0}));
    assert!(app.usage_rows(&record["id"]).await.is_empty());
    assert_eq!(app.mock.count(), 0);

    // At the limit the request goes through, and the name is stored whole.
    let at_limit = "m".repeat(MODEL_NAME);
    let reply = app
        .post("/api/generate", Some(&key), json!({"model": at_limit, "prompt": "hi", "stream": false}))
        .await;
    assert_ne!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(app.mock.count(), 1);
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["model"].as_str().unwrap().starts_with(&at_limit), "{:?}", rows[0]);
}

#[actix_web::test]
async fn an_over_long_model_name_in_a_refusal_is_not_repeated_whole() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "one model", "models": ["llama3"]})).await;
    // Within the limit but not allowed: the 403 names it; a path name is not
    // bounded by the body's check, so the message shortens it.
    let path_name = "x".repeat(4000);
    let reply = app.get(&format!("/v1/models/{path_name}"), Some(&key)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(reply.body.len() < 400, "{} bytes: {}", reply.body.len(), &reply.text()[..300]);
}

async fn key_count(app: &TestApp) -> usize {
    let listed = app.admin("GET", "/api-keys", None).await.json();
    match &listed {
        Value::Array(keys) => keys.len(),
        other => other["keys"].as_array().map_or(0, Vec::len),
    }
}

#[actix_web::test]
async fn over_long_key_fields_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let long_model = "m".repeat(MODEL_NAME + 1);
    let many_models: Vec<String> = (0..257).map(|i| format!("model-{i}")).collect();
    let many_aliases: serde_json::Map<String, Value> =
        (0..257).map(|i| (format!("alias-{i}"), json!("llama3"))).collect();
    let before = key_count(&app).await;
    for (body, needle) in [
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "ok", "owner": "o".repeat(201)}), "owner"),
        (json!({"name": "ok", "models": [long_model]}), "model name"),
        (json!({"name": "ok", "models": many_models}), "at most 256"),
        (json!({"name": "ok", "model_aliases": {"claude": long_model}}), "alias"),
        (json!({"name": "ok", "model_aliases": {long_model.clone(): "llama3"}}), "alias"),
        (json!({"name": "ok", "model_aliases": many_aliases}), "at most 256"),
    ] {
        let reply = app.admin("POST", "/api-keys", Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{needle}: {}", reply.text());
        assert!(reply.text().contains(needle), "{needle}: {}", reply.text());
        assert!(!reply.text().contains(&long_model), "the whole value is echoed: {}", reply.text());
        assert!(reply.body.len() < 400, "{needle}: {} bytes", reply.body.len());
    }
    assert_eq!(key_count(&app).await, before, "a refused key was stored");

    // At the limits: accepted.
    let models: Vec<String> = (0..256).map(|i| format!("{}{i:03}", "m".repeat(MODEL_NAME - 3))).collect();
    let (_, key) = app
        .create_key(json!({"name": "n".repeat(100), "owner": "o".repeat(200), "models": models,
            "model_aliases": {"a".repeat(MODEL_NAME): "b".repeat(MODEL_NAME)}}))
        .await;
    assert_eq!(key["models"].as_array().unwrap().len(), 256);

    // A change is checked the same way, and a refused one changes nothing.
    let id = &key["id"];
    for patch in
        [json!({"name": "n".repeat(101)}), json!({"owner": "o".repeat(201)}), json!({"models": [long_model]})]
    {
        let reply = app.admin("PATCH", &format!("/api-keys/{id}"), Some(patch.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{patch}: {}", reply.text());
    }
    let after = app.key(id).await;
    assert_eq!(after["name"], "n".repeat(100));
    assert_eq!(after["owner"], "o".repeat(200));
    assert_eq!(after["models"].as_array().unwrap().len(), 256);
}

#[actix_web::test]
async fn over_long_settings_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let before = app.admin("GET", "/settings", None).await.json();
    let long_model = "m".repeat(MODEL_NAME + 1);
    let many_urls: Vec<String> = (0..65).map(|i| format!("http://127.0.0.1:{}", 20000 + i)).collect();
    let long_url = format!("http://127.0.0.1:11434/{}", "p".repeat(2048));
    for change in [
        json!({"anthropic_default_model": long_model}),
        // An acceptable URL list with a bad model: the URLs are not stored either.
        json!({"ollama_urls": ["http://127.0.0.1:11999"], "anthropic_default_model": long_model}),
        json!({"ollama_urls": many_urls}),
        json!({"ollama_urls": [long_url]}),
    ] {
        let reply = app.admin("PUT", "/settings", Some(change.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{change}: {}", reply.text());
        assert!(reply.body.len() < 400, "{} bytes", reply.body.len());
    }
    assert_eq!(app.admin("GET", "/settings", None).await.json(), before);
}

#[actix_web::test]
async fn an_over_long_password_is_wrong_without_being_hashed() {
    let app = spawn_app().await;
    // Within the header size limit (a megabyte never gets past it: 431), past the password limit.
    let huge = "p".repeat(4096);
    let reply = send(
        app.client
            .get(format!("{}/api/api-keys", app.admin))
            .insert_header(("authorization", format!("Bearer {huge}"))),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
}
