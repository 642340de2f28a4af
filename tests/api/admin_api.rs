use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::json;
use std::time::Duration;

#[actix_web::test]
async fn the_admin_api_requires_the_admin_password() {
    let app = spawn_app().await;
    for auth in [None, Some("Bearer wrong"), Some("Basic dGVzdA==")] {
        let mut r = app.client.get(format!("{}/api/api-keys", app.admin));
        if let Some(a) = auth {
            r = r.insert_header(("authorization", a));
        }
        let reply = send(r, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.json()["error"].is_string());
    }
    assert_eq!(app.admin("GET", "/api-keys", None).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn a_created_key_matches_the_contract_and_its_secret_is_shown_once() {
    let app = spawn_app().await;
    let (secret, key) = app
        .create_key(json!({"name": "ci-bot", "owner": "alice", "limits": {"daily_requests": 1000, "monthly_tokens": 5000000}}))
        .await;
    assert!(secret.starts_with("sk-og-"));
    assert_eq!(key["key_hint"], format!("sk-og-…{}", &secret[secret.len() - 4..]));
    assert_eq!(key["scopes"], json!(["inference", "models"]));
    assert_eq!(key["models"], serde_json::Value::Null);
    assert_eq!(key["active"], true);
    assert_eq!(key["limits"]["daily_requests"], 1000);
    assert_eq!(key["limits"]["requests_per_minute"], serde_json::Value::Null);
    assert_eq!(key["usage"]["day"], json!({"requests": 0, "tokens": 0}));
    assert!(chrono::DateTime::parse_from_rfc3339(key["created_at"].as_str().unwrap()).is_ok());
    let listed = app.admin("GET", "/api-keys", None).await;
    assert!(!listed.text().contains(&secret));
    assert!(!app.key(&key["id"]).await.to_string().contains(&secret));
}

#[actix_web::test]
async fn invalid_key_definitions_are_refused_with_a_reason() {
    let app = spawn_app().await;
    for (body, needle) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "scopes": ["root"]}), "unknown scope"),
        (json!({"name": "x", "limits": {"daily_tokens": -1}}), "daily_tokens"),
        (json!({"name": "x", "limits": {"daily_tokenz": 5}}), "daily_tokenz"),
        (json!({"name": "x", "expires_at": "next tuesday"}), "expires_at"),
    ] {
        let reply = app.admin("POST", "/api-keys", Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.json()["error"].as_str().unwrap().contains(needle), "{body}: {}", reply.text());
    }
    assert_eq!(app.admin("GET", "/api-keys/999", None).await.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn quota_patches_treat_null_as_unlimited_and_leave_absent_fields_alone() {
    let app = spawn_app().await;
    let (_, key) =
        app.create_key(json!({"name": "q", "limits": {"daily_requests": 5, "daily_tokens": 10}})).await;
    let path = format!("/api-keys/{}/quota", key["id"]);
    let reply = app.admin("PATCH", &path, Some(json!({"daily_tokens": null, "monthly_tokens": 99}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let limits = &reply.json()["limits"];
    assert_eq!(
        (
            limits["daily_requests"].as_i64(),
            limits["daily_tokens"].as_i64(),
            limits["monthly_tokens"].as_i64()
        ),
        (Some(5), None, Some(99))
    );
    let patched = app
        .admin(
            "PATCH",
            &format!("/api-keys/{}", key["id"]),
            Some(json!({"owner": null, "models": ["llama3"], "name": "renamed"})),
        )
        .await;
    assert_eq!(patched.json()["name"], "renamed");
    assert_eq!(patched.json()["models"], json!(["llama3"]));
}

#[actix_web::test]
async fn deactivate_rotate_delete_and_expiry_take_effect_on_the_next_request() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "lifecycle"})).await;
    let id = &key["id"];
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);

    app.admin("PUT", &format!("/api-keys/{id}/deactivate"), None).await;
    let refused = app.generate(&secret, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json()["error"], "API key is deactivated");
    app.admin("PUT", &format!("/api-keys/{id}/activate"), None).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);

    let rotated = app.admin("POST", &format!("/api-keys/{id}/rotate"), None).await.json();
    let new_secret = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["id"], *id);
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.generate(&new_secret, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(app.settled(id).await["usage"]["total"]["requests"], 3, "usage survives rotation");

    let past = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    app.admin("PATCH", &format!("/api-keys/{id}"), Some(json!({"expires_at": past}))).await;
    let expired = app.generate(&new_secret, "llama3", false).await;
    assert_eq!(expired.json()["error"], "API key has expired");
    app.admin("PATCH", &format!("/api-keys/{id}"), Some(json!({"expires_at": null}))).await;
    assert_eq!(app.generate(&new_secret, "llama3", false).await.status, StatusCode::OK);

    assert_eq!(app.admin("DELETE", &format!("/api-keys/{id}"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.generate(&new_secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    let history = app.usage_rows(id).await;
    assert_eq!(history.len(), 4, "usage history outlives the key");
    assert_eq!(history[0]["key_name"], "lifecycle");
}

#[actix_web::test]
async fn a_change_in_another_process_is_seen_within_a_second() {
    // A second application on the same database file stands for another process.
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "shared"})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    let other = spawn_app_with(Options {
        env: vec![("DATABASE_URL", app.database_url.clone())],
        ..Options::default()
    })
    .await;
    assert_eq!(
        other.admin("PUT", &format!("/api-keys/{}/deactivate", key["id"]), None).await.status,
        StatusCode::OK
    );
    // Admission re-checks the key inside its transaction: refused at once, not after the cache expires.
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/api/tags", Some(&secret)).await.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn usage_can_be_grouped_by_hour_day_model_and_key() {
    let app = spawn_app().await;
    let (a, ka) = app.create_key(json!({"name": "a"})).await;
    let (b, _) = app.create_key(json!({"name": "b"})).await;
    app.generate(&a, "llama3", false).await;
    app.generate(&a, "qwen3:8b", false).await;
    app.generate(&b, "llama3", false).await;
    app.settled(&ka["id"]).await;
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    let by_model = app.admin("GET", "/usage?group_by=model", None).await.json();
    assert_eq!(
        by_model["rows"][0],
        json!({"model": "llama3:latest", "requests": 2, "prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12, "weighted_tokens": 12})
    );
    let by_key = app.admin("GET", "/usage?group_by=key", None).await.json();
    assert_eq!(by_key["rows"][0]["key_name"], "a");
    assert_eq!(by_key["rows"][0]["requests"], 2);
    for g in ["hour", "day"] {
        let rows = app.admin("GET", &format!("/usage?group_by={g}"), None).await.json();
        assert_eq!(rows["rows"][0]["requests"], 3, "{g}");
    }
    let filtered = app.admin("GET", &format!("/usage?key_id={}&model=qwen3:8b", ka["id"]), None).await.json();
    assert_eq!(filtered["rows"].as_array().unwrap().len(), 1);
    let stats = app.admin("GET", "/stats", None).await.json();
    assert_eq!(stats["rows"].as_array().unwrap().len(), 3, "per key and model");
    assert_eq!(app.admin("GET", "/usage?group_by=week", None).await.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn settings_change_the_upstream_at_run_time_and_models_come_from_it() {
    let app = spawn_app().await;
    let models = app.admin("GET", "/ollama-models", None).await.json();
    assert_eq!(models["models"].as_array().unwrap().len(), 3);
    let bad = app.admin("PUT", "/settings", Some(json!({"ollama_urls": ["ftp://nope"]}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let moved = app
        .admin(
            "PUT",
            "/settings",
            Some(json!({"ollama_urls": ["http://127.0.0.1:9"], "anthropic_default_model": "llama3"})),
        )
        .await;
    assert_eq!(moved.json()["ollama_urls"], json!(["http://127.0.0.1:9/"]));
    assert_eq!(moved.json()["anthropic_default_model"], "llama3");
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::BAD_GATEWAY);
    let info = app.admin("GET", "/proxy-info", None).await.json();
    assert_eq!(info["base_url"], app.proxy);
    assert!(info["snippets"]["openai_python"].as_str().unwrap().contains("/v1"));
}
