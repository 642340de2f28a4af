//! Keys for real life: rotation with a grace period, allowed client
//! addresses (through `TRUSTED_PROXIES`), and HEAD where Ollama answers it.

use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{TimeZone, Utc};
use ollama_gate::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()))
}

async fn rotate(app: &TestApp, id: &Value, body: Option<Value>) -> Reply {
    app.admin("POST", &format!("/api-keys/{id}/rotate"), body).await
}

#[actix_web::test]
async fn a_rotated_secret_works_through_its_grace_period_then_stops() {
    let clock = clock();
    let app = spawn_app_with(Options { clock: Some(clock.clone()), ..Options::default() }).await;
    let (old, key) = app.create_key(json!({"name": "ci"})).await;
    let id = &key["id"];
    let reply = rotate(&app, id, Some(json!({"grace_seconds": 3600}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let rotated = reply.json();
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["previous_secret"]["key_hint"], key["key_hint"]);
    assert_eq!(rotated["previous_secret"]["valid_until"], "2026-03-10T13:00:00Z");

    // Both open the same key, and both count against it.
    for secret in [&old, &new] {
        assert_eq!(app.generate(secret, "llama3", false).await.status, StatusCode::OK);
    }
    assert_eq!(app.settled(id).await["usage"]["total"]["requests"], 2);

    clock.advance(chrono::Duration::seconds(3599));
    assert_eq!(app.generate(&old, "llama3", false).await.status, StatusCode::OK, "the last second of grace");
    clock.advance(chrono::Duration::seconds(1));
    let refused = app.generate(&old, "llama3", false).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "the first second after: even from the key cache");
    assert!(
        refused.json()["error"].as_str().unwrap().contains("replaced by a rotation"),
        "{}",
        refused.text()
    );
    assert_eq!(app.generate(&new, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(app.key(id).await["previous_secret"], Value::Null, "no longer shown once it stopped");
}

#[actix_web::test]
async fn rotating_again_or_ending_the_grace_stops_the_old_secret_at_once() {
    let app = spawn_app().await;
    let (first, key) = app.create_key(json!({"name": "ci"})).await;
    let id = &key["id"];
    let second = rotate(&app, id, Some(json!({"grace_seconds": 86400}))).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.generate(&first, "llama3", false).await.status, StatusCode::OK);

    // One old secret at a time: the second rotation retires the first at once.
    let third = rotate(&app, id, Some(json!({"grace_seconds": 86400}))).await.json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.generate(&first, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.generate(&second, "llama3", false).await.status, StatusCode::OK);

    let ended = app.admin("DELETE", &format!("/api-keys/{id}/previous-secret"), None).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text());
    assert_eq!(ended.json()["previous_secret"], Value::Null);
    assert_eq!(app.generate(&second, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.generate(&third, "llama3", false).await.status, StatusCode::OK);

    // Without a grace period, as before: the old secret stops at once.
    let fourth = rotate(&app, id, None).await.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(app.generate(&third, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.generate(&fourth, "llama3", false).await.status, StatusCode::OK);

    let audit = app.admin("GET", "/audit?action=key.end_grace", None).await.json();
    assert_eq!(audit["rows"].as_array().map(Vec::len), Some(1), "{audit}");
}

#[actix_web::test]
async fn grace_periods_out_of_range_or_oddly_typed_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "ci"})).await;
    let id = &key["id"];
    for body in [
        json!({"grace_seconds": -1}),
        json!({"grace_seconds": 30 * 86400 + 1}),
        json!({"grace_seconds": "3600"}),
        json!({"grace_seconds": 1.5}),
        json!({"grace_seconds": 3600, "grace": 1}),
        json!([3600]),
        json!(null),
    ] {
        let reply = rotate(&app, id, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.text());
        assert!(reply.json()["error"].as_str().is_some(), "{}", reply.text());
    }
    let raw =
        send(app.admin_request("POST", &format!("/api-keys/{id}/rotate")), Some(b"{\"grace".to_vec())).await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "still the same secret");
    assert_eq!(app.key(id).await["key_hint"], key["key_hint"]);
}

async fn key_from(app: &TestApp, allowed: Value) -> (String, Value) {
    app.create_key(json!({"name": "office", "allowed_ips": allowed})).await
}

#[actix_web::test]
async fn a_key_is_refused_from_addresses_its_list_does_not_allow_in_every_api_family() {
    let app = spawn_app().await;
    let (secret, key) = key_from(&app, json!(["10.0.0.0/8", "2001:db8::/32"])).await;
    assert_eq!(key["allowed_ips"], json!(["10.0.0.0/8", "2001:db8::/32"]));
    let before = app.mock.count();

    let native = app.generate(&secret, "llama3", false).await;
    assert_eq!(native.status, StatusCode::FORBIDDEN);
    assert_eq!(native.json()["error"], "this API key may not be used from 127.0.0.1");
    let openai = app
        .post(
            "/v1/chat/completions",
            Some(&secret),
            json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(openai.status, StatusCode::FORBIDDEN);
    assert_eq!(openai.json()["error"]["type"], "permission_error", "{}", openai.text());
    let anthropic = app
        .post(
            "/v1/messages",
            Some(&secret),
            json!({"model": "llama3", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(anthropic.status, StatusCode::FORBIDDEN);
    assert_eq!(anthropic.json()["type"], "error", "{}", anthropic.text());
    for path in ["/api/tags", "/v1/models", "/v1/usage", "/v1/usage/summary"] {
        assert_eq!(app.get(path, Some(&secret)).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.mock.count(), before, "nothing reached the upstream");
    assert_eq!(app.settled(&key["id"]).await["usage"]["total"]["requests"], 0, "nothing was counted");

    // A list that holds the loopback address, in any spelling, lets it in.
    for allowed in [json!(["127.0.0.1"]), json!(["::ffff:127.0.0.1"]), json!(["127.0.0.0/8", "10.0.0.0/8"])] {
        let patched = app
            .admin("PATCH", &format!("/api-keys/{}", key["id"]), Some(json!({"allowed_ips": allowed})))
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
        assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "{allowed}");
    }
    // `null` and `[]` both mean anywhere again.
    for anywhere in [json!(null), json!([])] {
        app.admin("PATCH", &format!("/api-keys/{}", key["id"]), Some(json!({"allowed_ips": ["10.0.0.1"]})))
            .await;
        let patched = app
            .admin("PATCH", &format!("/api-keys/{}", key["id"]), Some(json!({"allowed_ips": anywhere})))
            .await;
        assert_eq!(patched.json()["allowed_ips"], Value::Null);
        assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Untrusted: X-Forwarded-For is ignored, so naming an allowed address does not help.
    let app = spawn_app().await;
    let (secret, _) = key_from(&app, json!(["203.0.113.7"])).await;
    let spoofed = send(
        app.proxy_request("GET", "/api/tags", Some(&secret))
            .insert_header(("x-forwarded-for", "203.0.113.7")),
        None,
    )
    .await;
    assert_eq!(spoofed.status, StatusCode::FORBIDDEN, "{}", spoofed.text());

    // Behind a trusted proxy on loopback: its rightmost untrusted hop is the client.
    let env = vec![("TRUSTED_PROXIES", "127.0.0.1".to_owned())];
    let app = spawn_app_with(Options { env, ..Options::default() }).await;
    let (secret, _) = key_from(&app, json!(["203.0.113.7", "2001:db8::/32"])).await;
    let via = |hops: Vec<&'static str>| {
        let mut request = app.proxy_request("GET", "/api/tags", Some(&secret));
        for hop in hops {
            request = request.append_header(("x-forwarded-for", hop));
        }
        send(request, None)
    };
    let cases: [(Vec<&str>, StatusCode); 9] = [
        (vec!["203.0.113.7"], StatusCode::OK),
        (vec!["2001:db8::5"], StatusCode::OK),
        (vec!["[2001:db8::6]"], StatusCode::OK),
        (vec!["::ffff:203.0.113.7"], StatusCode::OK),
        // A client that writes an allowed address in front of its own is still itself.
        (vec!["203.0.113.7, 198.51.100.9"], StatusCode::FORBIDDEN),
        (vec!["203.0.113.7", "198.51.100.9"], StatusCode::FORBIDDEN),
        (vec!["198.51.100.9, 203.0.113.7"], StatusCode::OK),
        // Unreadable: the trusted proxy's own address is as far as anyone can tell.
        (vec!["not-an-address"], StatusCode::FORBIDDEN),
        (vec![], StatusCode::FORBIDDEN),
    ];
    for (hops, status) in cases {
        let shown = format!("{hops:?}");
        let reply = via(hops).await;
        assert_eq!(reply.status, status, "{shown}: {}", reply.text());
    }
}

#[actix_web::test]
async fn a_key_bound_to_ipv6_loopback_works_over_ipv6_only() {
    let env = vec![("PROXY_HOST", "::1".to_owned())];
    let app = spawn_app_with(Options { env, ..Options::default() }).await;
    let port = app.proxy.rsplit(':').next().unwrap().to_owned();
    let (v6_only, _) = key_from(&app, json!(["::1/128"])).await;
    let (v4_only, _) = key_from(&app, json!(["127.0.0.1"])).await;
    let get = |secret: String| {
        let request = app
            .client
            .get(format!("http://[::1]:{port}/api/tags"))
            .insert_header(("authorization", format!("Bearer {secret}")));
        send(request, None)
    };
    assert_eq!(get(v6_only).await.status, StatusCode::OK);
    let refused = get(v4_only).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["error"], "this API key may not be used from ::1");
}

#[actix_web::test]
async fn address_lists_are_checked_when_given_and_kept_in_their_network_form() {
    let app = spawn_app().await;
    for bad in
        [json!(["10.0.0.0/33"]), json!(["nope"]), json!(["10.0.0.1/8/8"]), json!("10.0.0.0/8"), json!([1])]
    {
        let reply = app.admin("POST", "/api-keys", Some(json!({"name": "x", "allowed_ips": bad}))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text());
    }
    let many: Vec<String> = (0..101).map(|i| format!("10.0.0.{i}")).collect();
    let reply = app.admin("POST", "/api-keys", Some(json!({"name": "x", "allowed_ips": many}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text().contains("at most 100"), "{}", reply.text());
    assert_eq!(app.admin("GET", "/api-keys", None).await.json().as_array().map(Vec::len), Some(0));

    let (_, key) = key_from(&app, json!(["10.1.2.3/16, 10.1.0.0/16", "2001:DB8::1"])).await;
    assert_eq!(key["allowed_ips"], json!(["10.1.0.0/16", "2001:db8::1"]), "deduplicated and normalised");
    let audit = app.admin("GET", "/audit?action=key.create", None).await.json();
    assert_eq!(audit["rows"][0]["after"]["allowed_ips"], json!(["10.1.0.0/16", "2001:db8::1"]), "{audit}");
}

#[actix_web::test]
async fn head_is_answered_where_ollama_answers_it() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "cli", "models": ["llama3"]})).await;
    let head =
        |path: &'static str, key: Option<String>| send(app.proxy_request("HEAD", path, key.as_deref()), None);

    // Without a key, as their GET.
    for path in ["/", "/health"] {
        let reply = head(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.body.is_empty(), "{path}: a HEAD has no body");
    }
    assert_eq!(head("/api/tags", None).await.status, StatusCode::UNAUTHORIZED);

    // With one: the head of the GET, filtered listing and all, and counted like it.
    let get = app.get("/api/tags", Some(&secret)).await;
    let reply = head("/api/tags", Some(secret.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-type"), get.header("content-type"));
    assert_eq!(
        reply.header("content-length"),
        Some(get.body.len().to_string()),
        "the length of the filtered list"
    );
    assert_eq!(head("/api/version", Some(secret.clone())).await.status, StatusCode::OK);
    let upstream: Vec<String> = app
        .mock
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(upstream.iter().all(|r| r.starts_with("GET ")), "listings are asked with GET: {upstream:?}");
    assert_eq!(app.settled(&key["id"]).await["usage"]["minute"]["requests"], 3);

    // Not on routes Ollama does not answer HEAD on, nor without the scope.
    for path in ["/api/generate", "/api/ps", "/v1/models", "/api/show"] {
        assert_eq!(head(path, Some(secret.clone())).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let (inference_only, _) = app.create_key(json!({"name": "gen", "scopes": ["inference"]})).await;
    assert_eq!(head("/api/tags", Some(inference_only)).await.status, StatusCode::FORBIDDEN);
}
