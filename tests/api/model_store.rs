//! The guarded model store: what a `manage` key may pull, create, copy and
//! delete, from where, and only while the backend runs a fixed Ollama.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn manager(app: &TestApp) -> String {
    app.create_key(json!({"name": "manager", "scopes": ["inference", "models", "manage"]})).await.0
}

async fn delete(app: &TestApp, key: &str, body: Value) -> Reply {
    send(
        app.proxy_request("DELETE", "/api/delete", Some(key))
            .insert_header(("content-type", "application/json")),
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// A body sent exactly as written (duplicate keys, odd spellings).
async fn post_raw(app: &TestApp, path: &str, key: &str, raw: &str) -> Reply {
    send(
        app.proxy_request("POST", path, Some(key)).insert_header(("content-type", "application/json")),
        Some(raw.as_bytes().to_vec()),
    )
    .await
}

fn forwarded(app: &TestApp) -> Vec<String> {
    app.mock.requests().iter().map(|r| r.path.clone()).collect()
}

#[actix_web::test]
async fn hostile_model_names_never_reach_a_pull_copy_delete_or_create() {
    let app = spawn_app().await;
    let key = manager(&app).await;
    let megabyte = "a".repeat(1024 * 1024);
    let hostile = [
        "../../etc/passwd",
        "registry.ollama.ai/library/../../x",
        "%2e%2e/%2e%2e/x",
        "model:tag/../x",
        "library\\..\\x",
        "/etc/passwd",
        "llam\u{430}3",
        "llama3\u{ff0e}2",
        "\u{212a}imi-k2",
        "llama3\u{0}",
        "llama3\n",
        "a/b/c/d",
        "a//b",
        "model:",
        "ns.with.dots/model",
        megabyte.as_str(),
    ];
    for name in hostile {
        let short: String = name.chars().take(40).collect();
        for body in [json!({"model": name}), json!({"name": name}), json!({"model": "llama3", "name": name})]
        {
            let reply = app.post("/api/pull", Some(&key), body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "pull {short:?}: {}", reply.text());
            assert!(reply.json()["error"].is_string());
        }
        let reply = app.post("/api/copy", Some(&key), json!({"source": "llama3", "destination": name})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "copy to {short:?}: {}", reply.text());
        let reply = app.post("/api/create", Some(&key), json!({"model": name, "from": "llama3"})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "create {short:?}: {}", reply.text());
        let reply = delete(&app, &key, json!({"model": name})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "delete {short:?}: {}", reply.text());
    }
    assert!(forwarded(&app).is_empty(), "the upstream saw {:?}", forwarded(&app));
}

#[actix_web::test]
async fn json_tricks_cannot_slip_a_second_name_past_the_check() {
    let app = spawn_app().await;
    let key = manager(&app).await;
    for raw in [
        r#"{"model": "llama3", "model": "../../x"}"#,
        r#"{"model": "llama3", "Model": "../../x"}"#,
        r#"{"model": "llama3", "NAME": "../../x"}"#,
        r#"{"model": "", "name": "../../x"}"#,
        r#"{"model": "llama3", "name": "llama3", "name": "../x"}"#,
        r#"{"model": "..\u002f..\u002fx"}"#,
    ] {
        let reply = post_raw(&app, "/api/pull", &key, raw).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{raw}: {}", reply.text());
    }
    assert_eq!(app.mock.pulls(), 0);
}

#[actix_web::test]
async fn pulls_come_only_from_allowed_registries() {
    let app = spawn_app().await;
    let key = manager(&app).await;
    for name in
        ["llama3.2:1b", "registry.ollama.ai/library/llama3", "ollama.com/library/qwen3:8b", "someone/model"]
    {
        let reply = app.post("/api/pull", Some(&key), json!({"model": name, "stream": false})).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
    }
    for (body, why) in [
        (json!({"model": "evil.example/library/llama3"}), "not allowed"),
        (json!({"model": "hf.co/someone/model:Q4_K_M"}), "not allowed"),
        (json!({"model": "registry.ollama.ai:8080/library/llama3"}), "not allowed"),
        (json!({"model": "llama3", "insecure": true}), "insecure"),
        (json!({"model": "evil.example/x/y", "insecure": true}), "not allowed"),
    ] {
        let reply = app.post("/api/pull", Some(&key), body.clone()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{body}: {}", reply.text());
        assert!(reply.json()["error"].as_str().unwrap().contains(why), "{body}: {}", reply.text());
    }
    assert_eq!(app.mock.pulls(), 4);

    let app = spawn_app_with(Options {
        env: vec![("PULL_ALLOWED_REGISTRIES", "models.internal:5000, hf.co".into())],
        ..Options::default()
    })
    .await;
    let key = manager(&app).await;
    let ok = app
        .post("/api/pull", Some(&key), json!({"model": "models.internal:5000/team/m", "insecure": true}))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let ok = app.post("/api/pull", Some(&key), json!({"model": "HF.CO/someone/model:Q4_K_M"})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let refused = app.post("/api/pull", Some(&key), json!({"model": "llama3"})).await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "Ollama's registry is off the list: {}",
        refused.text()
    );
    assert_eq!(app.mock.pulls(), 2);

    let app =
        spawn_app_with(Options { env: vec![("PULL_ALLOWED_REGISTRIES", "*".into())], ..Options::default() })
            .await;
    let key = manager(&app).await;
    let ok = app.post("/api/pull", Some(&key), json!({"model": "anything.example/x/y"})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let refused =
        app.post("/api/pull", Some(&key), json!({"model": "anything.example/x/y", "insecure": true})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "'*' never allows insecure: {}", refused.text());
}

#[actix_web::test]
async fn creates_that_name_files_on_the_server_are_refused() {
    let app = spawn_app().await;
    let key = manager(&app).await;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let refused = [
        json!({"model": "mine", "path": "/root/Modelfile"}),
        json!({"model": "mine", "path": "Modelfile"}),
        json!({"model": "mine", "modelfile": "FROM /etc/passwd"}),
        json!({"model": "mine", "modelfile": "FROM llama3\nADAPTER ./lora.gguf"}),
        json!({"model": "mine", "modelfile": "  from   ~/x.gguf"}),
        json!({"model": "mine", "from": "/root/.ollama/models/blobs/sha256-x"}),
        json!({"model": "mine", "from": "./x.gguf"}),
        json!({"model": "mine", "from": "../x"}),
        json!({"model": "mine", "from": "~/x.gguf"}),
        json!({"model": "mine", "from": "C:\\models\\x.gguf"}),
        json!({"model": "mine", "from": "D:/x.gguf"}),
        json!({"model": "mine", "files": {"../x.gguf": digest}}),
        json!({"model": "mine", "files": {"/etc/x.gguf": digest}}),
        json!({"model": "mine", "files": {"x.gguf": "/etc/passwd"}}),
        json!({"model": "mine", "files": {"x.gguf": format!("sha256-{}", "ab".repeat(32))}}),
        json!({"model": "mine", "adapters": {"lora/../../x": digest}}),
        json!({"model": "mine", "draft_files": {"x.gguf": "sha256:123"}}),
    ];
    for body in refused {
        let reply = app.post("/api/create", Some(&key), body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.text());
    }
    // Old Ollamas read `Path` as `path`: other spellings are refused too.
    for raw in [r#"{"model": "mine", "Path": "/x"}"#, r#"{"model": "mine", "ModelFile": "FROM /x"}"#] {
        let reply = post_raw(&app, "/api/create", &key, raw).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{raw}: {}", reply.text());
    }
    assert_eq!(app.mock.count_path("/api/create"), 0);

    for body in [
        json!({"model": "mine", "from": "llama3", "system": "be brief"}),
        json!({"model": "mine", "files": {"model.gguf": digest, "sub/adapter.gguf": digest}}),
    ] {
        let reply = app.post("/api/create", Some(&key), body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}: {}", reply.text());
    }
    assert_eq!(app.mock.count_path("/api/create"), 2);
}

#[actix_web::test]
async fn blobs_are_named_by_their_sha256_digest_only() {
    let app = spawn_app().await;
    let key = manager(&app).await;
    let hex = "ab".repeat(32);
    for digest in
        [format!("sha256-{hex}"), format!("sha256:{}", hex.to_uppercase()), format!("sha256:{hex}0")]
    {
        let reply = send(app.proxy_request("HEAD", &format!("/api/blobs/{digest}"), Some(&key)), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{digest}");
    }
    assert!(forwarded(&app).is_empty(), "{:?}", forwarded(&app));
    let reply = send(app.proxy_request("HEAD", &format!("/api/blobs/sha256:{hex}"), Some(&key)), None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Waits until the gate's probe has read this version (every two seconds).
async fn probed(app: &TestApp, version: &str) {
    for _ in 0..100 {
        if app.get("/health", None).await.json()["backends"][0]["version"] == version {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the probe never read {version}");
}

async fn pull(app: &TestApp, key: &str) -> Reply {
    app.post("/api/pull", Some(key), json!({"model": "llama3", "stream": false})).await
}

#[actix_web::test]
async fn manage_routes_wait_for_a_fixed_ollama() {
    // Too old from the first probe on: no manage request may get through.
    let mock = testkit::mock_ollama::MockOllama::start().await;
    mock.set_version("0.17.0");
    let mut app = spawn_app_with(Options { upstream: Some(mock.url.clone()), ..Options::default() }).await;
    app.mock = mock;
    let key = manager(&app).await;
    for version in ["0.17.0", "0.17.1-rc1", "0.1.34", "0.0.0", "dev", ""] {
        app.mock.set_version(version);
        probed(&app, version).await;
        let reply = pull(&app, &key).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{version}: {}", reply.text());
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("0.17.1") && error.contains("MIN_OLLAMA_VERSION_FOR_MANAGE"),
            "{version}: {error}"
        );
        let reply = delete(&app, &key, json!({"model": "llama3"})).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{version}");
        let reply = send(
            app.proxy_request("HEAD", &format!("/api/blobs/sha256:{}", "0".repeat(64)), Some(&key)),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{version}");
        // Inference is not held back.
        assert_eq!(
            app.post("/api/generate", Some(&key), json!({"model": "llama3", "prompt": "hi"})).await.status,
            StatusCode::OK
        );
    }
    let reached: Vec<_> = forwarded(&app).into_iter().filter(|p| p != "/api/generate").collect();
    assert!(reached.is_empty(), "the upstream saw {reached:?}");
    for version in ["0.17.1", "0.33.0-rc2", "v0.32.15"] {
        app.mock.set_version(version);
        probed(&app, version).await;
        let reply = pull(&app, &key).await;
        assert_eq!(reply.status, StatusCode::OK, "{version}: {}", reply.text());
    }

    let app = spawn_app_with(Options {
        env: vec![("MIN_OLLAMA_VERSION_FOR_MANAGE", "0".into())],
        ..Options::default()
    })
    .await;
    app.mock.set_version("0.0.0");
    let key = manager(&app).await;
    let reply = app.post("/api/pull", Some(&key), json!({"model": "llama3", "stream": false})).await;
    assert_eq!(reply.status, StatusCode::OK, "0 turns the check off: {}", reply.text());
}

#[actix_web::test]
async fn the_version_checked_is_that_of_the_backend_the_request_goes_to() {
    let (old, new) =
        (testkit::mock_ollama::MockOllama::start().await, testkit::mock_ollama::MockOllama::start().await);
    old.set_version("0.12.6");
    let upstream = format!("{}?name=old,{}?name=new", old.url, new.url);
    let app = spawn_app_with(Options { upstream: Some(upstream), ..Options::default() }).await;
    let key = manager(&app).await;
    let to_new =
        app.post("/api/pull?backend=new", Some(&key), json!({"model": "llama3", "stream": false})).await;
    assert_eq!(to_new.status, StatusCode::OK, "{}", to_new.text());
    let to_old =
        app.post("/api/pull?backend=old", Some(&key), json!({"model": "llama3", "stream": false})).await;
    assert_eq!(to_old.status, StatusCode::SERVICE_UNAVAILABLE, "{}", to_old.text());
    assert!(to_old.json()["error"].as_str().unwrap().contains("'old'"), "{}", to_old.text());
    assert_eq!((old.pulls(), new.pulls()), (0, 1));
}
