//! Requests signed the way the `ollama` command line signs them with
//! OLLAMA_AUTH=1 (Ollama's api/client.go `do` and `stream`, auth/auth.go
//! `Sign`): a registered public key makes the request its key's request.

use crate::helpers::*;
use awc::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use testkit::signing::OllamaKey;

// Made with Python's `cryptography`, independently of the gate's code:
//   k = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
//   k.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
//   base64.b64encode(k.sign(b"POST,/api/generate?ts=1700000000"))
// and the fingerprint as ssh-keygen -l computes it:
//   "SHA256:" + base64(sha256(wire blob)) without padding.
const SEED_LINE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
const SEED_FINGERPRINT: &str = "SHA256:fe85JkIjo8VPe+XqXJGH5Mau1EMFdK1OdKvJUFicyA8";
const SEED_CHALLENGE: &str = "POST,/api/generate?ts=1700000000";
const SEED_SIGNATURE: &str =
    "QwMbGYk3IRAkSgsSC5bsuIW2RvBhFsZ3tDZeGOEbzzA1+pogrsqvrtJUZ4/qqlAUi6dyC4w08IYXaOkxEVFVBw==";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Sends a request as the Go client does: the given URL path and query and
/// Authorization header, JSON body for POSTs.
async fn send_signed(app: &TestApp, method: &str, url: &str, header: &str, body: Option<Value>) -> Reply {
    let request = app
        .client
        .request(awc::http::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{url}", app.proxy))
        .insert_header(("authorization", header.to_owned()))
        .insert_header(("content-type", "application/json"));
    send(request, body.map(|b| b.to_string().into_bytes())).await
}

fn generate_body(stream: bool) -> Value {
    json!({"model": "llama3", "prompt": "one two three", "stream": stream})
}

/// A key with the client's public key registered; returns the key object.
async fn key_with(app: &TestApp, client: &OllamaKey, scopes: Value) -> Value {
    let (_, key) = app.create_key(json!({"name": "cli", "scopes": scopes})).await;
    let path = format!("/api-keys/{}/public-keys", key["id"]);
    let reply = app.admin("POST", &path, Some(json!({"public_key": client.pub_line()}))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    key
}

fn assert_refused(reply: &Reply, status: StatusCode, says: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let error = reply.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(says), "{error:?} should say {says:?}");
}

/// Sends a signed request and expects a 401 that says `says`.
async fn expect_401(app: &TestApp, method: &str, url: &str, header: &str, body: Option<Value>, says: &str) {
    assert_refused(&send_signed(app, method, url, header, body).await, StatusCode::UNAUTHORIZED, says);
}

#[actix_web::test]
async fn the_test_vector_is_what_the_helper_makes() {
    let key = OllamaKey::new(1);
    assert_eq!(key.pub_line().trim(), format!("{SEED_LINE} someone@laptop"));
    assert_eq!(key.sign(SEED_CHALLENGE), format!("{}:{SEED_SIGNATURE}", &SEED_LINE[12..]));
    let (url, header) = key.request("POST", "/api/generate", 1_700_000_000);
    assert_eq!(url, "/api/generate?ts=1700000000");
    assert_eq!(header, key.sign(SEED_CHALLENGE));
}

#[actix_web::test]
async fn admin_api_registers_lists_and_removes_public_keys() {
    let app = spawn_app().await;
    let (_, key) = app.create_key(json!({"name": "cli"})).await;
    let path = format!("/api-keys/{}/public-keys", key["id"]);
    let line = format!("\n  {SEED_LINE}   alice@laptop  \n");
    let reply = app.admin("POST", &path, Some(json!({"public_key": line}))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let added = reply.json();
    assert_eq!(added["key_id"], key["id"]);
    assert_eq!(added["public_key"], SEED_LINE);
    assert_eq!(added["comment"], "alice@laptop");
    assert_eq!(added["fingerprint"], SEED_FINGERPRINT);
    assert!(added["created_at"].is_string());
    assert_eq!(added["last_used_at"], Value::Null);

    let listed = app.admin("GET", &path, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json(), json!([added]));

    // The same key again, to this key or another, bare or as a line: 409.
    let (_, other) = app.create_key(json!({"name": "other"})).await;
    let other_path = format!("/api-keys/{}/public-keys", other["id"]);
    for (p, text) in [(&path, SEED_LINE), (&other_path, &SEED_LINE[12..])] {
        let again = app.admin("POST", p, Some(json!({"public_key": text}))).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
        assert!(again.text().contains("already registered"), "{}", again.text());
    }

    // What is not one ssh-ed25519 key is refused, saying why.
    let field = &SEED_LINE[12..];
    let blob = STANDARD.decode(field).unwrap();
    let mut other_type = blob.clone();
    other_type[4..15].copy_from_slice(b"ssh-ed25518");
    for (text, says) in [
        ("", "empty"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "only ssh-ed25519"),
        ("ecdsa-sha2-nistp256 AAAA", "only ssh-ed25519"),
        ("ssh-ed25519 not*base64", "base64"),
        (&format!("ssh-ed25519 {}", STANDARD.encode(&blob[..40])), "wrong length"),
        (&format!("ssh-ed25519 {}", STANDARD.encode(other_type)), "contents are not"),
    ] {
        let reply = app.admin("POST", &path, Some(json!({"public_key": text}))).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{text}: {}", reply.text());
        assert!(reply.text().contains(says), "{text}: {}", reply.text());
    }
    let unknown =
        app.admin("POST", "/api-keys/9999/public-keys", Some(json!({"public_key": SEED_LINE}))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Removal: only through its own key.
    let pk = &added["id"];
    let wrong = app.admin("DELETE", &format!("{other_path}/{pk}"), None).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    let removed = app.admin("DELETE", &format!("{path}/{pk}"), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text());
    assert_eq!(app.admin("GET", &path, None).await.json(), json!([]));

    // Both changes are in the audit log, with the fingerprint.
    let audit = app.admin("GET", "/audit?limit=50", None).await.text();
    assert!(audit.contains("key.public_key_add") && audit.contains("key.public_key_remove"), "{audit}");
    assert!(audit.contains(SEED_FINGERPRINT), "{audit}");
}

#[actix_web::test]
async fn deleting_a_key_deletes_its_public_keys() {
    let app = spawn_app().await;
    let client = OllamaKey::new(3);
    let key = key_with(&app, &client, json!(["inference"])).await;
    let reply = app.admin("DELETE", &format!("/api-keys/{}", key["id"]), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let (url, header) = client.request("POST", "/api/generate", now());
    let refused = send_signed(&app, "POST", &url, &header, Some(generate_body(false))).await;
    assert_refused(&refused, StatusCode::UNAUTHORIZED, "not registered");
    // The public key is free again: another key may have it.
    key_with(&app, &client, json!(["inference"])).await;
}

#[actix_web::test]
async fn a_signed_request_is_its_keys_request_and_ts_stays_here() {
    let app = spawn_app().await;
    let client = OllamaKey::new(4);
    let key = key_with(&app, &client, json!(["inference", "models"])).await;

    let (url, header) = client.request("POST", "/api/generate", now());
    let reply = send_signed(&app, "POST", &url, &header, Some(generate_body(false))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.json()["response"].is_string());

    // Streamed, as `ollama run` asks.
    let (url, header) = client.request("POST", "/api/generate", now() - 1);
    let reply = send_signed(&app, "POST", &url, &header, Some(generate_body(true))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.lines().last().unwrap()["done"] == true);
    let chat = json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let (url, header) = client.request("POST", "/api/chat", now());
    let reply = send_signed(&app, "POST", &url, &header, Some(chat)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.lines().last().unwrap()["done"] == true);

    // The upstream saw neither ts nor the signature.
    for seen in app
        .mock
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/generate") || r.path.starts_with("/api/chat"))
    {
        assert!(!seen.path.contains('?'), "{}", seen.path);
        assert!(!seen.headers.iter().any(|(h, _)| h == "authorization"), "{:?}", seen.headers);
        let values: String = seen.headers.iter().map(|(_, v)| v.as_str()).collect();
        assert!(!values.contains(&client.public_base64()), "{:?}", seen.headers);
    }

    // Charged to the key, like any of its requests.
    let settled = app.settled(&key["id"]).await;
    assert!(settled["usage"]["total"]["requests"].as_i64().unwrap_or_default() >= 3, "{settled}");
    assert!(settled["usage"]["total"]["tokens"].as_i64().unwrap_or_default() > 0, "{settled}");
    assert_eq!(app.usage_rows(&key["id"]).await.len(), 3);

    // last_used_at is noted (once a minute at most).
    let path = format!("/api-keys/{}/public-keys", key["id"]);
    let mut used = Value::Null;
    for _ in 0..100 {
        used = app.admin("GET", &path, None).await.json()[0]["last_used_at"].clone();
        if used.is_string() {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.is_string(), "last_used_at stays {used}");

    // The key's own secret still works beside its public key.
    let (secret, _) = app.create_key(json!({"name": "plain"})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn every_forgery_and_mistake_is_refused() {
    let app = spawn_app().await;
    let client = OllamaKey::new(5);
    key_with(&app, &client, json!(["inference", "models"])).await;
    let body = || Some(generate_body(false));
    let t = now();

    // Unregistered key, well signed.
    let stranger = OllamaKey::new(6);
    let (url, header) = stranger.request("POST", "/api/generate", t);
    expect_401(&app, "POST", &url, &header, body(), "not registered").await;

    // Stale, in the past and in the future.
    for ts in [t - 400, t + 400] {
        let (url, header) = client.request("POST", "/api/generate", ts);
        expect_401(&app, "POST", &url, &header, body(), "300 seconds").await;
    }

    // ts missing, twice, not digits, or beside another parameter.
    let header = client.sign(&format!("POST,/api/generate?ts={t}"));
    for (url, says) in [
        ("/api/generate".to_owned(), "missing the ts"),
        (format!("/api/generate?ts={t}&ts={t}"), "more than once"),
        (format!("/api/generate?ts={t}.0"), "digits only"),
        ("/api/generate?ts=-1".to_owned(), "digits only"),
        (format!("/api/generate?ts=%3{}", &t.to_string()[..1]), "digits only"),
        (format!("/api/generate?ts={t}&model=other"), "only the ts"),
        (format!("/api/generate?t%73={t}"), "only the ts"),
    ] {
        expect_401(&app, "POST", &url, &header, body(), says).await;
    }

    // What was signed is not what is sent: the path, the method, the ts.
    let (_, for_tags) = client.request("GET", "/api/tags", t);
    let url = format!("/api/generate?ts={t}");
    expect_401(&app, "POST", &url, &for_tags, body(), "does not match").await;
    let (_, as_get) = client.request("GET", "/api/generate", t);
    expect_401(&app, "POST", &url, &as_get, body(), "does not match").await;
    let (_, earlier) = client.request("POST", "/api/generate", t - 1);
    expect_401(&app, "POST", &url, &earlier, body(), "does not match").await;
    // The alias without /api is another path: it must be signed as sent.
    let (_, canonical) = client.request("POST", "/api/generate", t);
    let alias = format!("/generate?ts={t}");
    expect_401(&app, "POST", &alias, &canonical, body(), "does not match").await;

    // Another key's signature under this key's public key.
    let forged_sig = stranger.sign(&format!("POST,/api/generate?ts={t}"));
    let forged = format!("{}:{}", client.public_base64(), forged_sig.split_once(':').unwrap().1);
    expect_401(&app, "POST", &url, &forged, body(), "does not match").await;

    // Garbage after the public key.
    for garbage in ["", "!!!!", "AAAA", "QUJD=="] {
        let header = format!("{}:{garbage}", client.public_base64());
        expect_401(&app, "POST", &url, &header, body(), "not valid base64").await;
    }
    // Not a public key at all: an ordinary (invalid) key.
    let reply = send_signed(&app, "POST", &url, "AAAA:BBBB", body()).await;
    assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid API key");

    // None of that reached the upstream.
    assert_eq!(app.mock.count_path("/api/generate"), 0);

    // The genuine one still passes, once.
    let (url, header) = client.request("POST", "/api/generate", t);
    let first = send_signed(&app, "POST", &url, &header, body()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let replay = send_signed(&app, "POST", &url, &header, body()).await;
    assert_refused(&replay, StatusCode::UNAUTHORIZED, "already used");
    // A replay with another body is still the same signature.
    let other_body = Some(json!({"model": "llama3", "prompt": "something else"}));
    let replay = send_signed(&app, "POST", &url, &header, other_body).await;
    assert_refused(&replay, StatusCode::UNAUTHORIZED, "already used");
    assert_eq!(app.mock.count_path("/api/generate"), 1);
}

#[actix_web::test]
async fn listings_and_details_may_repeat_within_a_second() {
    // `ollama run` asks for /api/show twice in a row: the same challenge,
    // signed the same way. Requests that cost nothing are not claimed.
    let app = spawn_app().await;
    let client = OllamaKey::new(7);
    key_with(&app, &client, json!(["inference", "models"])).await;
    let (url, header) = client.request("POST", "/api/show", now());
    for _ in 0..2 {
        let reply = send_signed(&app, "POST", &url, &header, Some(json!({"model": "llama3"}))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let (url, header) = client.request("GET", "/api/tags", now());
    for _ in 0..2 {
        assert_eq!(send_signed(&app, "GET", &url, &header, None).await.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn a_signed_key_keeps_its_scopes_and_its_state() {
    let app = spawn_app().await;
    let client = OllamaKey::new(8);
    let key = key_with(&app, &client, json!(["models"])).await;

    // Authenticated, but the key may not run models: 403, not 401.
    let (url, header) = client.request("POST", "/api/generate", now());
    let reply = send_signed(&app, "POST", &url, &header, Some(generate_body(false))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());

    let (url, header) = client.request("GET", "/api/tags", now());
    assert_eq!(send_signed(&app, "GET", &url, &header, None).await.status, StatusCode::OK);

    // Deactivated: its public key stops at once, like its secret.
    let off = app.admin("PUT", &format!("/api-keys/{}/deactivate", key["id"]), None).await;
    assert_eq!(off.status, StatusCode::OK);
    let (url, header) = client.request("GET", "/api/tags", now() - 2);
    expect_401(&app, "GET", &url, &header, None, "deactivated").await;

    // Active again, then its public key removed: refused at once.
    app.admin("PUT", &format!("/api-keys/{}/activate", key["id"]), None).await;
    let path = format!("/api-keys/{}/public-keys", key["id"]);
    let pk = app.admin("GET", &path, None).await.json()[0]["id"].clone();
    let (url, header) = client.request("GET", "/api/tags", now() - 3);
    assert_eq!(send_signed(&app, "GET", &url, &header, None).await.status, StatusCode::OK);
    app.admin("DELETE", &format!("{path}/{pk}"), None).await;
    let (url, header) = client.request("GET", "/api/tags", now() - 4);
    expect_401(&app, "GET", &url, &header, None, "not registered").await;
}

#[actix_web::test]
async fn refusals_answer_in_the_callers_api_family() {
    let app = spawn_app().await;
    let client = OllamaKey::new(9);
    key_with(&app, &client, json!(["inference"])).await;
    let t = now();
    let (_, header) = client.request("POST", "/v1/chat/completions", t);
    let body = json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]});
    let reply = send_signed(&app, "POST", "/v1/chat/completions", &header, Some(body)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let error = &reply.json()["error"];
    assert!(error["message"].as_str().unwrap().contains("missing the ts"), "{error}");
}
