//! Cloud models and web tools: a key runs cloud models only with the
//! `cloud` scope, sees them listed only with it, and never reaches web
//! search or fetch.

use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};
use testkit::mock_ollama::MockOllama;

/// The error text, whichever API family wrote it.
fn message(reply: &Reply) -> String {
    let v = reply.json();
    let m = v["error"]["message"].as_str().or_else(|| v["error"].as_str()).unwrap_or_default();
    m.to_owned()
}

/// A body every inference route reads: each takes what it needs.
fn body(model: &str) -> Value {
    json!({"model": model, "prompt": "one two", "input": "one two", "max_tokens": 3, "stream": false,
           "messages": [{"role": "user", "content": "one two"}]})
}

const INFERENCE: [&str; 10] = [
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
    "/api/show",
];

/// Cloud models spelled as Ollama would still run them.
const CLOUD_NAMES: [&str; 9] = [
    "gpt-oss:120b-cloud",
    "GPT-OSS:120B-CLOUD",
    "qwen3-coder:480b-Cloud",
    "deepseek-v3.1:671b-cloud",
    "kimi-k2:1t-cloud",
    "glm-5.1:cloud",
    "gpt-oss:20b:CLOUD",
    "registry.ollama.ai/library/gpt-oss:120b-cloud",
    " gpt-oss:120b-cloud ",
];

fn assert_cloud_refusal(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {}", reply.text());
    assert!(message(reply).contains("'cloud' scope"), "{what}: {}", reply.text());
}

#[actix_web::test]
async fn cloud_models_are_refused_on_every_route_and_family_without_the_cloud_scope() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "local only", "scopes": ["inference", "models"]})).await;
    for path in INFERENCE {
        for model in CLOUD_NAMES {
            let reply = app.post(path, Some(&key), body(model)).await;
            assert_cloud_refusal(&reply, &format!("{path} {model}"));
        }
    }
    for model in ["gpt-oss:120b-cloud", "kimi-k2:1t-CLOUD", "glm-5.1:cloud"] {
        let reply = app.get(&format!("/v1/models/{model}"), Some(&key)).await;
        assert_cloud_refusal(&reply, &format!("/v1/models/{model}"));
    }
    // The Anthropic family answers in its own format.
    let reply = app.post("/v1/messages", Some(&key), body("gpt-oss:120b-cloud")).await;
    assert_eq!(reply.json()["type"], "error", "{}", reply.text());
    let forwarded: Vec<_> = app.mock.requests().iter().map(|r| r.path.clone()).collect();
    assert!(forwarded.is_empty(), "the upstream saw {forwarded:?}");

    // A local model still answers.
    let reply = app.post("/api/generate", Some(&key), body("llama3")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[actix_web::test]
async fn the_cloud_scope_lets_cloud_models_through() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "cloud", "scopes": ["inference", "models", "cloud"]})).await;
    assert_eq!(record["scopes"], json!(["inference", "models", "cloud"]));
    for path in ["/api/generate", "/v1/chat/completions", "/v1/messages"] {
        let reply = app.post(path, Some(&key), body("gpt-oss:120b-cloud")).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    }
    assert_eq!(app.mock.field_served("/api/generate", "model"), ["gpt-oss:120b-cloud"]);
    // New keys do not get it by default.
    let (_, plain) = app.create_key(json!({"name": "plain"})).await;
    assert!(!plain["scopes"].as_array().unwrap().contains(&json!("cloud")), "{plain}");
}

#[actix_web::test]
async fn aliases_and_the_anthropic_default_model_cannot_reach_a_cloud_model() {
    let app = spawn_app_with(Options {
        env: vec![("ANTHROPIC_DEFAULT_MODEL", "gpt-oss:120b-cloud".into())],
        ..Options::default()
    })
    .await;
    let (key, _) = app
        .create_key(
            json!({"name": "aliased", "model_aliases": {"fast": "kimi-k2:1t-cloud", "gpt-4o": "llama3"}}),
        )
        .await;
    let reply = app.post("/v1/chat/completions", Some(&key), body("fast")).await;
    assert_cloud_refusal(&reply, "an alias to a cloud model");
    let reply = app.post("/v1/messages", Some(&key), body("claude-sonnet-4-5")).await;
    assert_cloud_refusal(&reply, "ANTHROPIC_DEFAULT_MODEL a cloud model");
    assert_eq!(app.mock.count_path("/v1/chat/completions") + app.mock.count_path("/v1/messages"), 0);
    let reply = app.post("/v1/chat/completions", Some(&key), body("gpt-4o")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn cloud_key(app: &TestApp) -> String {
    app.create_key(json!({"name": "cloud", "scopes": ["inference", "models", "cloud"]})).await.0
}

/// Waits until the gate's probes have listed the mock's cloud models.
async fn listed(app: &TestApp, key: &str, name: &str) {
    for _ in 0..200 {
        let tags = app.get("/api/tags", Some(key)).await.json();
        if tags["models"].as_array().is_some_and(|m| m.iter().any(|m| m["name"] == name)) {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{name} never listed");
}

#[actix_web::test]
async fn a_model_the_backend_lists_as_remote_is_cloud_whatever_its_name() {
    let app = spawn_app().await;
    app.mock.add_cloud_model("team-assistant:latest", "gpt-oss:120b");
    let cloud_key = cloud_key(&app).await;
    listed(&app, &cloud_key, "team-assistant:latest").await;
    let (key, _) = app.create_key(json!({"name": "local only"})).await;
    for model in
        ["team-assistant", "Team-Assistant:LATEST", "library/team-assistant", "team-a\u{17f}\u{17f}istant"]
    {
        let reply = app.post("/api/chat", Some(&key), body(model)).await;
        assert_cloud_refusal(&reply, model);
    }
    assert_eq!(app.mock.count_path("/api/chat"), 0);
}

#[actix_web::test]
async fn copies_and_creates_from_a_cloud_model_need_the_cloud_scope_and_so_do_their_copies() {
    let app = spawn_app().await;
    app.mock.add_cloud_model("gpt-oss:120b-cloud", "gpt-oss:120b");
    let manager =
        app.create_key(json!({"name": "manager", "scopes": ["inference", "models", "manage"]})).await.0;
    let copy = json!({"source": "gpt-oss:120b-cloud", "destination": "harmless"});
    let reply = app.post("/api/copy", Some(&manager), copy.clone()).await;
    assert_cloud_refusal(&reply, "copy from a cloud model");
    for create in [
        json!({"model": "harmless", "from": "gpt-oss:120b-cloud"}),
        json!({"model": "harmless", "from": "gpt-oss:120b:cloud"}),
        json!({"model": "harmless", "from": "llama3", "remote_host": "https://ollama.com:443"}),
    ] {
        let reply = app.post("/api/create", Some(&manager), create.clone()).await;
        assert_cloud_refusal(&reply, &create.to_string());
    }
    assert_eq!(app.mock.count_path("/api/copy") + app.mock.count_path("/api/create"), 0);

    // A key with the scope makes a local-looking copy; it is still cloud.
    let (owner, _) =
        app.create_key(json!({"name": "owner", "scopes": ["inference", "models", "manage", "cloud"]})).await;
    let reply = app.post("/api/copy", Some(&owner), copy).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = app.post("/api/generate", Some(&manager), body("harmless")).await;
    assert_cloud_refusal(&reply, "a copy of a cloud model, asked for at once");
    let reply = app.post("/api/show", Some(&manager), json!({"model": "harmless"})).await;
    assert_cloud_refusal(&reply, "showing a copy of a cloud model");
    assert_eq!(app.mock.count_path("/api/generate") + app.mock.count_path("/api/show"), 0);
}

#[actix_web::test]
async fn unknown_names_cannot_multiply_the_backend_probes() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "local"})).await;
    let _ = app.post("/api/generate", Some(&key), body("llama3")).await;
    let before = app.mock.probes();
    let started = std::time::Instant::now();
    for i in 0..30 {
        let reply = app.post("/api/generate", Some(&key), body(&format!("unknown-{i}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "the mock answers any name: {}", reply.text());
    }
    // One re-listing a second at most (three probe requests), and the regular probe every two.
    let seconds = started.elapsed().as_secs() + 1;
    let probes = app.mock.probes() - before;
    assert!(probes as u64 <= 3 * seconds + 3 * (seconds / 2 + 1), "{probes} probes in {seconds} s");
}

fn names(listing: &Value, array: &str, field: &str) -> Vec<String> {
    listing[array].as_array().unwrap().iter().map(|m| m[field].as_str().unwrap().to_owned()).collect()
}

/// Whether `/v1/models` lists `model` for the key.
async fn in_openai_models(app: &TestApp, key: &str, model: &str) -> bool {
    let models = app.get("/v1/models", Some(key)).await.json();
    names(&models, "data", "id").iter().any(|id| id == model)
}

#[actix_web::test]
async fn listings_hide_cloud_models_from_keys_without_the_scope() {
    let app = spawn_app().await;
    app.mock.add_cloud_model("gpt-oss:120b-cloud", "gpt-oss:120b");
    app.mock.add_cloud_model("house-model:latest", "kimi-k2:1t");
    let (local, _) = app.create_key(json!({"name": "local"})).await;
    let (cloud, _) =
        app.create_key(json!({"name": "cloud", "scopes": ["inference", "models", "cloud"]})).await;
    let (listed_local, _) =
        app.create_key(json!({"name": "listed", "models": ["llama3", "house-model"]})).await;

    let tags = app.get("/api/tags", Some(&local)).await;
    assert_eq!(tags.status, StatusCode::OK);
    assert_eq!(names(&tags.json(), "models", "name"), ["llama3:latest", "qwen3:8b", "mistral:latest"]);
    let tags = app.get("/api/tags", Some(&cloud)).await.json();
    assert!(names(&tags, "models", "name").contains(&"house-model:latest".to_owned()), "{tags}");
    assert_eq!(tags["models"][3]["remote_host"], "https://ollama.com:443", "passed on as Ollama wrote it");
    let tags = app.get("/api/tags", Some(&listed_local)).await.json();
    assert_eq!(names(&tags, "models", "name"), ["llama3:latest"]);

    let models = app.get("/v1/models", Some(&local)).await.json();
    assert!(!names(&models, "data", "id").iter().any(|n| n.contains("cloud")), "{models}");
    // The gate knows `house-model` is remote from the backend's listing.
    listed(&app, &cloud, "house-model:latest").await;
    assert!(!in_openai_models(&app, &local, "house-model:latest").await);
    assert!(in_openai_models(&app, &cloud, "gpt-oss:120b-cloud").await);
}

#[actix_web::test]
async fn merged_listings_of_several_backends_hide_cloud_models_too() {
    let (first, second) = (MockOllama::start().await, MockOllama::start().await);
    second.add_cloud_model("gpt-oss:120b-cloud", "gpt-oss:120b");
    let upstream = format!("{}?name=a,{}?name=b", first.url, second.url);
    let app = spawn_app_with(Options { upstream: Some(upstream), ..Options::default() }).await;
    let (local, _) = app.create_key(json!({"name": "local"})).await;
    let (cloud, _) =
        app.create_key(json!({"name": "cloud", "scopes": ["inference", "models", "cloud"]})).await;
    listed(&app, &cloud, "gpt-oss:120b-cloud").await;
    let tags = app.get("/api/tags", Some(&local)).await.json();
    assert_eq!(names(&tags, "models", "name"), ["llama3:latest", "qwen3:8b", "mistral:latest"]);
    assert!(!in_openai_models(&app, &local, "gpt-oss:120b-cloud").await);
    assert!(in_openai_models(&app, &cloud, "gpt-oss:120b-cloud").await);
}

#[actix_web::test]
async fn the_cloud_pseudo_pattern_gives_cloud_models_their_own_limits() {
    let app = spawn_app().await;
    app.mock.add_cloud_model("house-model:latest", "kimi-k2:1t");
    let (key, _) = app
        .create_key(json!({"name": "cloud", "scopes": ["inference", "models", "cloud"],
            "model_limits": [{"model": "@cloud", "limits": {"daily_requests": 2}}]}))
        .await;
    listed(&app, &key, "house-model:latest").await;
    for model in ["gpt-oss:120b-cloud", "house-model"] {
        let reply = app.post("/api/generate", Some(&key), body(model)).await;
        assert_eq!(reply.status, StatusCode::OK, "{model}: {}", reply.text());
    }
    for model in ["kimi-k2:1t-cloud", "house-model", "glm-5.1:CLOUD"] {
        let reply = app.post("/api/generate", Some(&key), body(model)).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{model}: {}", reply.text());
    }
    // Local models are not on that entry.
    for _ in 0..3 {
        let reply = app.post("/api/generate", Some(&key), body("llama3")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(app.mock.count_path("/api/generate"), 5);
}

#[actix_web::test]
async fn web_search_and_fetch_are_never_forwarded_whatever_the_scopes() {
    let app = spawn_app().await;
    let scope_sets = [
        json!(["inference"]),
        json!(["models"]),
        json!(["manage"]),
        json!(["cloud"]),
        json!(["inference", "cloud"]),
        json!(["inference", "models", "manage", "cloud"]),
    ];
    let paths = [
        "/api/web_search",
        "/api/web_fetch",
        "/api/experimental/web_search",
        "/api/experimental/web_fetch",
        "/web_search",
        "/web_fetch",
        "/experimental/web_search",
        "/api/Web_Search",
        "/API/web_fetch",
        "/api/web_search/",
        "/api//web_search",
        "/api/./web_fetch",
        "/api/x/../web_search",
        "/api/web%5Fsearch",
        "/api/experimental%2Fweb_search",
        "/v1/web_search",
        "/api/web_search?x=1",
    ];
    for scopes in scope_sets {
        let (key, _) = app.create_key(json!({"name": format!("{scopes}"), "scopes": scopes})).await;
        for path in paths {
            for method in ["POST", "GET"] {
                let reply = send(
                    app.proxy_request(method, path, Some(&key))
                        .insert_header(("content-type", "application/json")),
                    Some(
                        json!({"query": "what is ollama", "url": "https://ollama.com"})
                            .to_string()
                            .into_bytes(),
                    ),
                )
                .await;
                assert_eq!(reply.status, StatusCode::FORBIDDEN, "{scopes} {method} {path}: {}", reply.text());
            }
        }
    }
    let forwarded: Vec<_> = app.mock.requests().iter().map(|r| r.path.clone()).collect();
    assert!(forwarded.is_empty(), "the upstream saw {forwarded:?}");
}
