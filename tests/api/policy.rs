use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::json;

const MANAGE_AND_FORBIDDEN: &[(&str, &str)] = &[
    ("POST", "/api/pull"),
    ("POST", "/pull"),
    ("POST", "/api/create"),
    ("POST", "/api/copy"),
    ("DELETE", "/api/delete"),
    ("DELETE", "/delete"),
    ("POST", "/api/push"),
    ("POST", "/push"),
    ("POST", "/api/me"),
    ("POST", "/api/signout"),
    ("GET", "/api/user/keys"),
    ("POST", "/api/experimental/web_search"),
    ("POST", "/api//pull"),
    ("POST", "/api/./pull"),
    ("POST", "/api/x/../pull"),
    ("POST", "/api%2Fpull"),
    ("POST", "/api/%70ull"),
    ("POST", "/API/pull"),
    ("POST", "/api/Pull"),
    ("POST", "/api/pull/"),
    ("POST", "//api/pull"),
    ("POST", "/api/push/"),
    ("POST", "/Api/Push"),
    ("GET", "/admin"),
    ("POST", "/api/chat/../pull"),
];

#[actix_web::test]
async fn management_and_never_forwarded_routes_and_odd_spellings_are_refused_for_an_inference_key() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "inference only", "scopes": ["inference", "models"]})).await;
    for (method, path) in MANAGE_AND_FORBIDDEN {
        let reply = send(
            app.proxy_request(method, path, Some(&key)),
            Some(
                json!({"model": "llama3", "name": "llama3", "source": "a", "destination": "b"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}: {}", reply.text());
        assert!(reply.json()["error"].is_string(), "{method} {path}");
    }
    assert_eq!(
        app.mock.count(),
        0,
        "the mock saw {:?}",
        app.mock.requests().iter().map(|r| r.path.clone()).collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn even_a_manage_key_cannot_push_or_reach_account_routes() {
    let app = spawn_app().await;
    let (key, _) =
        app.create_key(json!({"name": "admin-ish", "scopes": ["inference", "models", "manage"]})).await;
    for path in ["/api/push", "/api/me", "/api/signout", "/api/user/keys"] {
        let reply = app.post(path, Some(&key), json!({"model": "llama3"})).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(reply.json()["error"].as_str().unwrap().contains("never forwarded"));
    }
    let pull = app.post("/api/pull", Some(&key), json!({"model": "llama3"})).await;
    assert_eq!(pull.status, StatusCode::OK);
    assert_eq!(pull.lines().last().unwrap()["status"], "success");
    let delete = send(
        app.proxy_request("DELETE", "/api/delete", Some(&key)),
        Some(json!({"model": "llama3"}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(delete.status, StatusCode::OK);
    let seen: Vec<_> = app.mock.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(seen, ["POST /api/pull", "DELETE /api/delete"]);
}

#[actix_web::test]
async fn requests_without_a_valid_key_get_401_in_the_callers_format() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "real"})).await;
    let mut typo: Vec<char> = key.chars().collect();
    typo[12] = if typo[12] == 'x' { 'y' } else { 'x' };
    let typo: String = typo.into_iter().collect();
    let unknown = {
        // A well-formed key that was never issued.
        let other = spawn_app().await;
        other.create_key(json!({"name": "elsewhere"})).await.0
    };
    for presented in [None, Some("nonsense"), Some(typo.as_str()), Some(unknown.as_str())] {
        let ollama = app.post("/api/chat", presented, json!({"model": "llama3"})).await;
        assert_eq!(ollama.status, StatusCode::UNAUTHORIZED);
        assert!(ollama.json()["error"].is_string());
        let openai = app.post("/v1/chat/completions", presented, json!({"model": "llama3"})).await;
        assert_eq!(openai.status, StatusCode::UNAUTHORIZED);
        assert_eq!(openai.json()["error"]["code"], "invalid_api_key");
        let anthropic = app.post("/v1/messages", presented, json!({"model": "llama3"})).await;
        assert_eq!(anthropic.json()["error"]["type"], "authentication_error");
        for reply in [&ollama, &openai, &anthropic] {
            if let Some(p) = presented {
                assert!(!reply.text().contains(p), "the key is echoed back");
            }
        }
    }
    assert_eq!(app.mock.count(), 0);
}

#[actix_web::test]
async fn the_key_is_accepted_from_each_documented_header() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "headers"})).await;
    for header in ["authorization", "x-api-key", "anthropic-auth-token"] {
        let reply =
            send(app.proxy_request("GET", "/api/tags", None).insert_header((header, key.clone())), None)
                .await;
        assert_eq!(reply.status, StatusCode::OK, "{header}");
    }
    let in_query = app.get(&format!("/api/tags?api_key={key}"), None).await;
    assert_eq!(in_query.status, StatusCode::UNAUTHORIZED, "keys in the query are off by default");
}

#[actix_web::test]
async fn client_credentials_cookies_and_origin_never_reach_the_upstream() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "clean"})).await;
    let reply = send(
        app.proxy_request("POST", "/api/generate", Some(&key))
            .insert_header(("cookie", "session=secret"))
            .insert_header(("origin", "https://evil.example"))
            .insert_header(("x-api-key", key.clone()))
            .insert_header(("x-request-id", "abc")),
        Some(json!({"model": "llama3", "prompt": "hi", "stream": false}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = &app.mock.requests()[0];
    let names: Vec<&str> = seen.headers.iter().map(|(k, _)| k.as_str()).collect();
    for banned in ["authorization", "cookie", "origin", "x-api-key"] {
        assert!(!names.contains(&banned), "{banned} was forwarded");
    }
    let host = seen.headers.iter().find(|(k, _)| k == "host").unwrap();
    assert!(host.1.starts_with("localhost:"), "{host:?}");
    assert!(names.contains(&"x-request-id"));
    assert_eq!(
        seen.body,
        json!({"model": "llama3", "prompt": "hi", "stream": false}).to_string().into_bytes(),
        "body forwarded unchanged"
    );
}

#[actix_web::test]
async fn the_model_allow_list_refuses_other_models_and_filters_listings() {
    let app = spawn_app().await;
    let (key, _) = app.create_key(json!({"name": "narrow", "models": ["llama3", "qwen3:8b"]})).await;
    assert_eq!(app.generate(&key, "llama3:latest", false).await.status, StatusCode::OK);
    let refused = app.generate(&key, "mistral", false).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["error"], "model 'mistral' is not allowed for this key");
    // Ollama reads JSON keys without regard to case: a second MODEL must not slip through.
    let sneaky = send(
        app.proxy_request("POST", "/api/generate", Some(&key)),
        Some(br#"{"model": "llama3", "MODEL": "mistral", "prompt": "x"}"#.to_vec()),
    )
    .await;
    assert_eq!(sneaky.status, StatusCode::BAD_REQUEST);
    let tags = app.get("/api/tags", Some(&key)).await.json();
    let names: Vec<_> =
        tags["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["llama3:latest", "qwen3:8b"]);
    assert_eq!(app.get("/v1/models/mistral", Some(&key)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.mock.count(), 2, "one generate and one tags");
}

#[actix_web::test]
async fn bad_bodies_get_400_and_nothing_is_forwarded_or_charged() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "sloppy", "limits": {"daily_requests": 100}})).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"".to_vec(),
        b"\xff\xfe{\"model\": \"llama3\"}".to_vec(),
        b"{\"model\": \"ll\xffama\"}".to_vec(),
        br#"{"model": 42}"#.to_vec(),
        br#"{"model": "llama3", "stream": "yes"}"#.to_vec(),
        br#"{"model": "llama3", "options": {"num_predict": "many"}}"#.to_vec(),
        br#"{"model": "llama3", "model": "llama3"}"#.to_vec(),
        br#"["model", "llama3"]"#.to_vec(),
        br#"{"prompt": "no model"}"#.to_vec(),
    ];
    for body in bodies {
        let reply = send(app.proxy_request("POST", "/api/generate", Some(&key)), Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
        assert!(reply.json()["error"].is_string());
        let openai = send(app.proxy_request("POST", "/v1/chat/completions", Some(&key)), Some(body)).await;
        assert_eq!(openai.status, StatusCode::BAD_REQUEST);
        assert_eq!(openai.json()["error"]["type"], "invalid_request_error");
    }
    assert_eq!(app.mock.count(), 0);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 0);
}

#[actix_web::test]
async fn oversized_bodies_get_413_before_anything_is_forwarded() {
    let app =
        spawn_app_with(Options { env: vec![("BODY_LIMIT", "1024".into())], ..Options::default() }).await;
    let (key, _) = app.create_key(json!({"name": "big"})).await;
    let big = json!({"model": "llama3", "prompt": "x".repeat(4096)}).to_string();
    let declared =
        send(app.proxy_request("POST", "/api/generate", Some(&key)), Some(big.clone().into_bytes())).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, with no Content-Length to go by.
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(256)
            .map(|c| Ok::<_, std::io::Error>(actix_web::web::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let mut chunked =
        app.proxy_request("POST", "/api/generate", Some(&key)).send_stream(chunks).await.unwrap();
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = chunked.body().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("larger than the limit"));
    assert_eq!(app.mock.count(), 0);
}

#[actix_web::test]
async fn service_info_and_health_need_no_key() {
    let app = spawn_app().await;
    let info = app.get("/", None).await;
    assert_eq!(info.json()["name"], "ollama-gate");
    let health = app.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let mut body = health.json();
    let backends = body.as_object_mut().unwrap().remove("backends").expect("backends listed");
    assert_eq!(
        body,
        json!({"status": "ok", "database": "ok", "upstream": {"status": "ok", "version": "0.32.15"}})
    );
    let name = app.mock.url.trim_start_matches("http://").replace(':', "-");
    assert_eq!(
        backends,
        json!([{"name": name, "url": format!("{}/", app.mock.url), "status": "ok", "slots": 1024,
                "busy": 0, "queued": 0, "version": "0.32.15"}])
    );
    // Health is answered from the background probes.
    let probes = app.mock.probes();
    for _ in 0..20 {
        app.get("/health", None).await;
    }
    assert!(
        app.mock.probes() <= probes + 6,
        "a load balancer's health checks must not become load on Ollama"
    );
    assert_eq!(app.mock.count(), 0, "probes are not requests");
    let down =
        spawn_app_with(Options { upstream: Some("http://127.0.0.1:9".into()), ..Options::default() }).await;
    let health = down.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK, "the upstream being down does not make the gate unhealthy");
    assert_eq!(health.json()["upstream"]["status"], "down");
}

#[actix_web::test]
async fn blobs_are_streamed_to_the_upstream_for_a_manage_key_only() {
    let app = spawn_app().await;
    let (manager, _) = app.create_key(json!({"name": "manager", "scopes": ["manage"]})).await;
    let (user, _) = app.create_key(json!({"name": "user"})).await;
    let path = format!("/api/blobs/sha256:{}", "ab".repeat(32));
    let layer: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let refused = send(app.proxy_request("POST", &path, Some(&user)), Some(layer.clone())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.mock.count(), 0);
    let head = send(app.proxy_request("HEAD", &path, Some(&manager)), None).await;
    assert_eq!(head.status, StatusCode::OK);
    let upload = send(app.proxy_request("POST", &path, Some(&manager)), Some(layer.clone())).await;
    assert_eq!(upload.status, StatusCode::OK);
    let seen = app.mock.requests();
    assert_eq!((seen[0].method.as_str(), seen[0].body.len()), ("HEAD", 0));
    assert_eq!(seen[1].body, layer, "the layer arrives byte for byte");
}

#[actix_web::test]
async fn keys_in_the_query_or_body_work_only_when_enabled_and_are_never_forwarded() {
    let app = spawn_app_with(Options {
        env: vec![("ALLOW_KEY_IN_QUERY", "true".into()), ("ALLOW_KEY_IN_BODY", "true".into())],
        ..Options::default()
    })
    .await;
    let (key, _) = app.create_key(json!({"name": "legacy client"})).await;
    let in_query = app.get(&format!("/api/tags?api_key={key}"), None).await;
    assert_eq!(in_query.status, StatusCode::OK);
    let in_body = app
        .post(
            "/api/generate",
            None,
            json!({"model": "llama3", "prompt": "hi", "stream": false, "api_key": key}),
        )
        .await;
    assert_eq!(in_body.status, StatusCode::OK, "{}", in_body.text());
    for seen in app.mock.requests() {
        assert!(!seen.path.contains(&key), "the key reached the upstream in {}", seen.path);
        assert!(
            !String::from_utf8_lossy(&seen.body).contains(&key),
            "the key reached the upstream in a body"
        );
    }
    let sent: serde_json::Value = serde_json::from_slice(&app.mock.requests().last().unwrap().body).unwrap();
    assert_eq!(sent, json!({"model": "llama3", "prompt": "hi", "stream": false}));
}
