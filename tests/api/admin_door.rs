//! The admin's door: password guessing by every way in is throttled per
//! address and overall without locking the real admin out; the admin answers
//! only its own host names; forwarded headers count only from trusted
//! proxies; whoever reads the database cannot forge a session.

use crate::helpers::*;
use actix_web::cookie::{Cookie, CookieJar, Key};
use awc::http::StatusCode;
use chrono::{Duration as Span, TimeZone, Utc};
use ollama_gate::clock::ManualClock;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client whose connections come from `from` (any 127.x.y.z is loopback on Linux).
fn client_from(from: &str) -> awc::Client {
    let ip: IpAddr = from.parse().unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0).local_address(ip))
        .disable_redirects()
        .timeout(Duration::from_secs(60))
        .finish()
}

async fn bearer(client: &awc::Client, app: &TestApp, password: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = client
        .get(format!("{}/api/api-keys", app.admin))
        .insert_header(("authorization", format!("Bearer {password}")));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    send(req, None).await
}

/// The login form's session cookie and CSRF token.
async fn login_form(client: &awc::Client, base: &str) -> (String, String) {
    let page = send(client.get(format!("{base}/login")), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let cookie = page.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_owned();
    let body = page.text();
    let at = body.find("name=\"csrf_token\" value=\"").expect("a CSRF token") + 25;
    (cookie, body[at..at + body[at..].find('"').unwrap()].to_owned())
}

async fn console_login(
    client: &awc::Client,
    base: &str,
    session: &(String, String),
    password: &str,
) -> Reply {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf_token", session.1.as_str()), ("password", password)])
        .finish();
    let req = client
        .post(format!("{base}/login"))
        .insert_header(("cookie", session.0.clone()))
        .insert_header(("content-type", "application/x-www-form-urlencoded"));
    send(req, Some(form.into_bytes())).await
}

fn retry_after(reply: &Reply) -> u64 {
    reply.header("retry-after").expect("Retry-After on every 429").parse().unwrap()
}

fn hashed_password() -> String {
    ollama_gate::admin::password::hash(ADMIN_PASSWORD).unwrap()
}

/// Standing still, so no backoff runs out while fifty requests are sent.
fn stopped_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()))
}

fn door_options(extra: &[(&'static str, &str)]) -> Options {
    let mut env = vec![("ADMIN_PASSWORD", String::new()), ("ADMIN_PASSWORD_HASH", hashed_password())];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    Options { env, ..Options::default() }
}

#[actix_web::test]
async fn fifty_bearer_guesses_at_once_are_all_counted_and_another_address_still_gets_in() {
    let app = spawn_app_with(Options { clock: Some(stopped_clock()), ..door_options(&[]) }).await;
    let attacker = client_from("127.0.0.2");
    let guesses = (0..50).map(|i| {
        let attacker = attacker.clone();
        let app = &app;
        async move { bearer(&attacker, app, &format!("guess-{i}"), &[]).await }
    });
    let replies = futures_util::future::join_all(guesses).await;
    let verified = replies.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!(verified, 3, "only the free tries were checked; the others waited for their outcome");
    assert_eq!(refused.len(), 47, "every other guess was refused, none slipped through");
    assert!(refused.iter().all(|r| retry_after(r) >= 1));
    let admin = client_from("127.0.0.1");
    let started = Instant::now();
    assert_eq!(bearer(&admin, &app, ADMIN_PASSWORD, &[]).await.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5), "the admin's address is not held up");
    let same = bearer(&attacker, &app, ADMIN_PASSWORD, &[]).await;
    assert_eq!(
        same.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address waits, even with the right one"
    );
}

#[actix_web::test]
async fn fifty_console_guesses_at_once_are_all_counted_and_the_admin_logs_in_elsewhere() {
    let app = spawn_app_with(Options {
        clock: Some(stopped_clock()),
        ..door_options(&[("LOGIN_MAX_FAILURES", "5")])
    })
    .await;
    let attacker = client_from("127.0.0.3");
    let session = login_form(&attacker, &app.admin).await;
    let guesses = (0..50).map(|i| {
        let (attacker, session, base) = (attacker.clone(), session.clone(), app.admin.clone());
        async move { console_login(&attacker, &base, &session, &format!("guess-{i}")).await }
    });
    let replies = futures_util::future::join_all(guesses).await;
    let verified = replies.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
    let refused = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((verified, refused), (3, 47));
    let admin = client_from("127.0.0.1");
    let mine = login_form(&admin, &app.admin).await;
    let reply = console_login(&admin, &app.admin, &mine, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(reply.header("location").as_deref(), Some("/"));
}

#[actix_web::test]
async fn backoff_doubles_until_the_lockout_and_both_doors_share_it() {
    let clock = stopped_clock();
    let mut options = door_options(&[("LOGIN_MAX_FAILURES", "6")]);
    options.clock = Some(clock.clone());
    let app = spawn_app_with(options).await;
    let attacker = client_from("127.0.0.4");
    let session = login_form(&attacker, &app.admin).await;
    for _ in 0..3 {
        assert_eq!(bearer(&attacker, &app, "guess", &[]).await.status, StatusCode::UNAUTHORIZED);
    }
    let mut waits = vec![];
    for round in 0..3 {
        let early = bearer(&attacker, &app, "guess", &[]).await;
        assert_eq!(early.status, StatusCode::TOO_MANY_REQUESTS);
        waits.push(retry_after(&early));
        // The console is the same door: it waits just as long.
        let console = console_login(&attacker, &app.admin, &session, "guess").await;
        assert_eq!((console.status, retry_after(&console)), (StatusCode::TOO_MANY_REQUESTS, waits[round]));
        clock.advance(Span::seconds(waits[round] as i64));
        assert_eq!(
            console_login(&attacker, &app.admin, &session, "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(waits, vec![1, 2, 4], "each wait doubles");
    let locked = bearer(&attacker, &app, ADMIN_PASSWORD, &[]).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "six failures: locked out, right password or not"
    );
    assert_eq!(retry_after(&locked), 15 * 60);
    clock.advance(Span::minutes(10));
    assert!(retry_after(&bearer(&attacker, &app, "guess", &[]).await) <= 5 * 60, "the lockout runs down");
    assert_eq!(bearer(&client_from("127.0.0.5"), &app, ADMIN_PASSWORD, &[]).await.status, StatusCode::OK);
    clock.advance(Span::minutes(5));
    assert_eq!(
        bearer(&attacker, &app, ADMIN_PASSWORD, &[]).await.status,
        StatusCode::OK,
        "over after 15 minutes"
    );
}

#[actix_web::test]
async fn many_addresses_guessing_slow_every_stranger_down_but_lock_nobody_out() {
    let app = spawn_app_with(door_options(&[
        ("LOGIN_GLOBAL_MAX_FAILURES", "4"),
        ("LOGIN_GLOBAL_INTERVAL_MS", "300"),
    ]))
    .await;
    let regular = client_from("127.0.0.1");
    assert_eq!(bearer(&regular, &app, ADMIN_PASSWORD, &[]).await.status, StatusCode::OK);
    for i in 10..14 {
        let reply = bearer(&client_from(&format!("127.0.1.{i}")), &app, "guess", &[]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // Past the overall limit: six strangers at once are checked one per 300 ms.
    let started = Instant::now();
    let strangers = (20..26).map(|i| {
        let app = &app;
        async move { bearer(&client_from(&format!("127.0.1.{i}")), app, "guess", &[]).await.status }
    });
    let statuses = futures_util::future::join_all(strangers).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED), "delayed, never refused: {statuses:?}");
    assert!(started.elapsed() >= Duration::from_millis(1400), "paced: {:?}", started.elapsed());
    // A new address with the right password: slowed at most, let in.
    let reply = bearer(&client_from("127.0.2.1"), &app, ADMIN_PASSWORD, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "the overall limit never refuses a right password");
    // The address that logged in before is not paced at all.
    let started = Instant::now();
    assert_eq!(bearer(&regular, &app, "guess", &[]).await.status, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_web::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    // Not trusted: a guesser rotating X-Forwarded-For is still one address.
    let app = spawn_app_with(door_options(&[("LOGIN_MAX_FAILURES", "3")])).await;
    let client = client_from("127.0.0.6");
    for i in 0..3 {
        let spoof = format!("198.51.100.{i}");
        let reply = bearer(&client, &app, "guess", &[("x-forwarded-for", &spoof)]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let spoofed = bearer(&client, &app, ADMIN_PASSWORD, &[("x-forwarded-for", "198.51.100.99")]).await;
    assert_eq!(spoofed.status, StatusCode::TOO_MANY_REQUESTS);

    // Trusted (a proxy on 127.0.0.7): each forwarded client is its own address.
    let app =
        spawn_app_with(door_options(&[("LOGIN_MAX_FAILURES", "3"), ("TRUSTED_PROXIES", "127.0.0.7/32")]))
            .await;
    let proxy = client_from("127.0.0.7");
    for _ in 0..3 {
        let reply = bearer(&proxy, &app, "guess", &[("x-forwarded-for", "6.6.6.6, 203.0.113.5")]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let locked = bearer(&proxy, &app, ADMIN_PASSWORD, &[("x-forwarded-for", "203.0.113.5")]).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "the client behind the proxy is locked out");
    let other = bearer(&proxy, &app, ADMIN_PASSWORD, &[("x-forwarded-for", "203.0.113.6")]).await;
    assert_eq!(other.status, StatusCode::OK, "not everyone behind the same proxy");
}

#[actix_web::test]
async fn only_the_admins_own_host_names_are_answered() {
    let app = spawn_app().await;
    let port = app.admin.rsplit(':').next().unwrap().to_owned();
    let client = client_from("127.0.0.1");
    for host in ["evil.example", &format!("evil.example:{port}"), "localhost.evil.example", "127.0.0.2"] {
        for path in ["/login", "/api/api-keys"] {
            let req = client
                .get(format!("{}{path}", app.admin))
                .insert_header(("host", host))
                .insert_header(("authorization", format!("Bearer {ADMIN_PASSWORD}")));
            let reply = send(req, None).await;
            assert_eq!(reply.status, StatusCode::MISDIRECTED_REQUEST, "{host}{path}");
            assert!(reply.header("set-cookie").is_none(), "no session for a foreign host");
        }
    }
    // X-Forwarded-Host from an untrusted peer changes nothing.
    let req = client.get(format!("{}/login", app.admin)).insert_header(("x-forwarded-host", "evil.example"));
    assert_eq!(send(req, None).await.status, StatusCode::OK);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "ollama-gate".into(),
    ] {
        let req = client.get(format!("{}/login", app.admin)).insert_header(("host", host.clone()));
        assert_eq!(send(req, None).await.status, StatusCode::OK, "{host}");
    }

    let app = spawn_app_with(Options {
        env: vec![
            ("ADMIN_ALLOWED_HOSTS", "admin.example:8443".into()),
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
        ],
        ..Options::default()
    })
    .await;
    let direct = send(client.get(format!("{}/login", app.admin)), None).await;
    assert_eq!(direct.status, StatusCode::MISDIRECTED_REQUEST, "127.0.0.1 is no longer listed");
    let forwarded =
        client.get(format!("{}/login", app.admin)).insert_header(("x-forwarded-host", "admin.example:8443"));
    let forwarded = send(forwarded, None).await;
    assert_eq!(forwarded.status, StatusCode::OK, "a trusted proxy names the host");
}

#[actix_web::test]
async fn the_origin_check_compares_the_host_with_its_port() {
    let app = spawn_app().await;
    let client = client_from("127.0.0.1");
    let host = app.admin.trim_start_matches("http://").to_owned();
    let without_port = host.rsplit_once(':').unwrap().0.to_owned();
    for (origin, expected) in [
        (format!("http://{without_port}"), StatusCode::FORBIDDEN),
        (format!("http://{without_port}:1"), StatusCode::FORBIDDEN),
        (format!("http://{host}"), StatusCode::SEE_OTHER),
    ] {
        let session = login_form(&client, &app.admin).await;
        let form = format!("csrf_token={}&password={ADMIN_PASSWORD}", session.1);
        let req = client
            .post(format!("{}/login", app.admin))
            .insert_header(("cookie", session.0.clone()))
            .insert_header(("origin", origin.clone()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"));
        assert_eq!(send(req, Some(form.into_bytes())).await.status, expected, "{origin}");
    }
}

/// An admin session cookie made by someone holding `key`, as actix-session
/// would make it: encrypted, holding the session's JSON.
fn forged_cookie(key: &[u8], now: i64, epoch: i64) -> String {
    let data = json!({"id": "forged", "csrf": "0123456789abcdef0123456789abcdef", "admin": true,
        "issued_at": now, "last_seen": now, "epoch": epoch});
    let state: HashMap<String, String> = HashMap::from([("og".to_owned(), data.to_string())]);
    let mut jar = CookieJar::new();
    jar.private_mut(&Key::from(key))
        .add(Cookie::new("ollama_gate_admin", serde_json::to_string(&state).unwrap()));
    format!("ollama_gate_admin={}", jar.get("ollama_gate_admin").unwrap().value())
}

async fn dashboard_with(app: &TestApp, cookie: &str) -> StatusCode {
    let client = client_from("127.0.0.1");
    send(client.get(format!("{}/", app.admin)).insert_header(("cookie", cookie.to_owned())), None)
        .await
        .status
}

fn database_bytes(app: &TestApp) -> Vec<u8> {
    std::fs::read_dir(app._dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("gate.db"))
        .flat_map(|e| std::fs::read(e.path()).unwrap_or_default())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[actix_web::test]
async fn reading_the_database_neither_forges_a_session_nor_reveals_a_key() {
    use base64::Engine;
    let now = Utc::now().timestamp();
    // The forging method works: with SESSION_KEY known, a made-up cookie gets in.
    let known = [7u8; 64];
    let b64 = base64::engine::general_purpose::STANDARD.encode(known);
    let with_env =
        spawn_app_with(Options { env: vec![("SESSION_KEY", b64.clone())], ..Options::default() }).await;
    assert_eq!(dashboard_with(&with_env, &forged_cookie(&known, now, 0)).await, StatusCode::OK);

    // A database written by an earlier version that kept the key in plaintext.
    let app = spawn_app().await;
    if postgres_backend().is_some() {
        return;
    }
    let legacy = [9u8; 64];
    app.state
        .store
        .put_setting("session_key", &base64::engine::general_purpose::STANDARD.encode(legacy))
        .await
        .unwrap();
    let (secret, _) = app.create_key(json!({"name": "k"})).await;
    let reopened = spawn_app_with(Options {
        env: vec![("DATABASE_URL", app.database_url.clone())],
        ..Options::default()
    })
    .await;
    assert_eq!(reopened.state.store.get_setting("session_key").await.unwrap().as_deref(), Some(""), "wiped");
    assert_eq!(
        dashboard_with(&reopened, &forged_cookie(&legacy, now, 0)).await,
        StatusCode::SEE_OTHER,
        "the key the database held opens nothing"
    );
    let key_file = app._dir.path().join("session.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    let file_key = std::fs::read_to_string(&key_file).unwrap();
    let db = database_bytes(&app);
    assert!(!db.is_empty());
    for needle in [file_key.trim().as_bytes(), secret.as_bytes(), ADMIN_PASSWORD.as_bytes()] {
        assert!(!contains(&db, needle), "the database holds a secret");
    }
    // And the file's key is the one in use (the control for the test above).
    let file_bytes = base64::engine::general_purpose::STANDARD.decode(file_key.trim()).unwrap();
    assert_eq!(dashboard_with(&reopened, &forged_cookie(&file_bytes, now, 0)).await, StatusCode::OK);
}
