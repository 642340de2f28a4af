//! The HTML console over real HTTP, as a browser without JavaScript uses it.

mod alerts;
mod audit;
mod keys;
mod models;
mod people;
mod public_keys;
mod usage;

use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use ollama_gate::clock::ManualClock;
use serde_json::json;
use std::sync::Arc;

/// A cookie jar of one cookie and no redirect following, like a careful browser.
struct Browser {
    client: awc::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: awc::http::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf_token\" value=\"").expect("a form with a CSRF token") + 25;
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }
    fn set_cookie(&self) -> Option<String> {
        self.headers.get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        let client = awc::Client::builder().disable_redirects().finish();
        Browser { client, base: app.admin.clone(), cookie: None }
    }

    async fn send(&mut self, req: awc::ClientRequest, body: Option<String>) -> Page {
        let req = match &self.cookie {
            Some(c) => req.insert_header(("cookie", c.clone())),
            None => req,
        };
        let mut r = match body {
            Some(b) => {
                req.insert_header(("content-type", "application/x-www-form-urlencoded")).send_body(b).await
            }
            None => req.send().await,
        }
        .unwrap();
        let page = Page {
            status: r.status(),
            headers: r.headers().clone(),
            body: String::from_utf8_lossy(&r.body().limit(1 << 22).await.unwrap()).into_owned(),
        };
        if let Some(set) = page.set_cookie() {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let req = self.client.post(format!("{}{path}", self.base));
        self.send(req, Some(body)).await
    }

    async fn log_in(&mut self, password: &str) -> Page {
        let login = self.get("/login").await;
        let csrf = login.csrf();
        self.post("/login", &[("csrf_token", &csrf), ("password", password)]).await
    }

    /// The CSRF token of the session, read from a page's logout form.
    async fn csrf(&mut self) -> String {
        self.get("/keys/new").await.csrf()
    }
}

/// `<script>` as HTML text, in either of the spellings escapers use.
fn escaped(body: &str) -> bool {
    body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;")
}

#[actix_web::test]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    for path in [
        "/",
        "/keys",
        "/keys/new",
        "/keys/1",
        "/keys/1/delete",
        "/users",
        "/users/new",
        "/users/1",
        "/users/1/delete",
        "/teams",
        "/teams/new",
        "/teams/1",
        "/teams/1/delete",
        "/usage",
        "/usage.csv",
        "/models",
        "/settings",
        "/connect",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), Some("/login"), "{path}");
    }
    for path in [
        "/keys",
        "/keys/1",
        "/keys/1/rotate",
        "/keys/1/delete",
        "/keys/1/deactivate",
        "/users",
        "/users/1",
        "/users/1/delete",
        "/teams",
        "/teams/1",
        "/teams/1/delete",
        "/settings",
        "/logout",
    ] {
        let page = browser.post(path, &[("name", "x")]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
    }
    let login = browser.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Admin password"));
}

#[actix_web::test]
async fn login_issues_a_new_strict_http_only_cookie_and_pages_carry_security_headers() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let form = browser.get("/login").await;
    let before = browser.cookie.clone().expect("the login form starts a session for its CSRF token");
    let flags = form.set_cookie().unwrap();
    assert!(flags.contains("HttpOnly") && flags.contains("SameSite=Strict"), "{flags}");
    assert!(!flags.contains("Secure"), "plain HTTP with COOKIE_SECURE=auto");
    let wrong = browser.post("/login", &[("csrf_token", &form.csrf()), ("password", "nope")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong password"));
    let ok = browser.log_in(ADMIN_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_ne!(browser.cookie.clone().unwrap(), before, "a new cookie after login");
    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("Dashboard"));
    let csp = dashboard.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe")
    );
    assert_eq!(dashboard.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(dashboard.headers.get("referrer-policy").unwrap(), "no-referrer");
    assert_eq!(dashboard.headers.get("cache-control").unwrap(), "no-store");
    let htmx = browser.get("/static/htmx.min.js").await;
    assert_eq!(htmx.status, StatusCode::OK);
}

#[actix_web::test]
async fn state_changes_need_the_sessions_csrf_token_and_a_same_site_origin() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    let missing = browser.post("/keys", &[("name", "a"), ("scopes", "inference")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    // A browser (it asks for HTML) is told why on a page, not in JSON.
    let req = browser.client.post(format!("{}/keys", browser.base)).insert_header(("accept", "text/html"));
    let page = browser.send(req, Some("name=a".into())).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    assert!(page.body.contains("CSRF token") && page.body.contains("Back to the console"));
    assert!(page.headers.get("content-security-policy").is_some());
    let foreign = browser
        .post(
            "/keys",
            &[("csrf_token", "0123456789abcdef0123456789abcdef"), ("name", "a"), ("scopes", "inference")],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    for (header, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")] {
        let req = browser.client.post(format!("{}/keys", browser.base)).insert_header((header, value));
        let body = format!("csrf_token={csrf}&name=a&scopes=inference");
        let page = browser.send(req, Some(body)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{header}");
    }
    // Another session's token is no good either.
    let mut other = Browser::new(&app);
    other.log_in(ADMIN_PASSWORD).await;
    let theirs = other.csrf().await;
    let crossed =
        browser.post("/keys", &[("csrf_token", &theirs), ("name", "a"), ("scopes", "inference")]).await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.admin("GET", "/api-keys", None).await.json().as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    let made = browser.post("/keys", &[("csrf_token", &csrf), ("name", "a"), ("scopes", "inference")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "the right token is let through");
    let id = app.admin("GET", "/api-keys", None).await.json()[0]["id"].as_i64().unwrap();
    // Every state-changing route, without the token and with a foreign one.
    for path in [
        "/keys".to_owned(),
        format!("/keys/{id}"),
        format!("/keys/{id}/rotate"),
        format!("/keys/{id}/delete"),
        format!("/keys/{id}/deactivate"),
        format!("/keys/{id}/activate"),
        "/settings".to_owned(),
        "/settings/password".to_owned(),
        "/logout".to_owned(),
    ] {
        for token in ["", "0123456789abcdef0123456789abcdef"] {
            let page =
                browser.post(&path, &[("csrf_token", token), ("name", "b"), ("scopes", "inference")]).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} with token '{token}'");
        }
    }
    let key = app.key(&json!(id)).await;
    assert_eq!((key["active"].as_bool(), key["name"].as_str()), (Some(true), Some("a")), "nothing changed");
    assert_eq!(browser.get("/").await.status, StatusCode::OK, "still logged in");
}

#[actix_web::test]
async fn a_new_keys_secret_is_shown_once_and_names_with_html_are_escaped() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    let evil = "<script>alert(1)</script>";
    let created = browser
        .post(
            "/keys",
            &[
                ("csrf_token", &csrf),
                ("name", evil),
                ("owner", "\"><img src=x>"),
                ("scopes", "inference"),
                ("scopes", "models"),
                ("daily_requests", "100"),
                ("max_output_tokens", "256"),
            ],
        )
        .await;
    // Post, redirect, one view: the POST answer holds no secret, so nothing
    // that a browser repeats (reload, Back, Forward) makes or shows one again.
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert!(!created.body.contains("sk-og-"));
    let to = created.headers.get("location").unwrap().to_str().unwrap().to_owned();
    assert!(to.contains("/secret?t="), "{to}");
    // Hostile first: another session with the same address sees nothing and
    // does not use up the one view.
    let mut other = Browser::new(&app);
    other.log_in(ADMIN_PASSWORD).await;
    let stolen = other.get(&to).await;
    assert!(!stolen.body.contains("sk-og-"), "another session read the secret");
    let created = browser.get(&to).await;
    assert_eq!(created.status, StatusCode::OK);
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    assert!(created.body.contains(r#"hx-history="false""#), "htmx must not keep the page in its history");
    let at = created.body.find("sk-og-").expect("the secret is shown");
    let secret = created.body[at..at + 44].to_owned();
    assert!(!created.body.contains(evil));
    assert!(escaped(&created.body), "the name is shown, escaped");
    let again = browser.get(&to).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(!again.body.contains(&secret) && again.body.contains("already shown"), "a second view");
    let keys = app.admin("GET", "/api-keys", None).await.json();
    assert_eq!(keys.as_array().unwrap().len(), 1, "views never make another key");
    let id = keys[0]["id"].as_i64().unwrap();
    assert_eq!(keys[0]["limits"]["daily_requests"], 100);
    assert_eq!(keys[0]["clamps"]["max_output_tokens"], 256);
    for path in [
        "/keys".to_owned(),
        format!("/keys/{id}"),
        "/keys?q=script".to_owned(),
        "/".to_owned(),
        "/usage".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert!(!page.body.contains(&secret), "{path} shows the secret again");
        assert!(!page.body.contains(evil) && !page.body.contains("<img src=x>"), "{path} does not escape");
    }
    // The htmx partial for the filter escapes too.
    let req =
        browser.client.get(format!("{}/keys?q=alert", browser.base)).insert_header(("hx-request", "true"));
    let partial = browser.send(req, None).await;
    assert!(escaped(&partial.body) && !partial.body.contains(evil));
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "the shown secret works");
}

#[actix_web::test]
async fn keys_are_edited_deactivated_rotated_and_deleted_with_plain_forms() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "class 7b"})).await;
    let id = key["id"].as_i64().unwrap();
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    let path = format!("/keys/{id}");
    let bad = browser
        .post(
            &path,
            &[("csrf_token", &csrf), ("name", "class 7b"), ("scopes", "inference"), ("daily_tokens", "-5")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("daily_tokens must be a whole number"), "the error stands next to the field");
    let saved = browser
        .post(
            &path,
            &[
                ("csrf_token", &csrf),
                ("name", "class 7c"),
                ("scopes", "inference"),
                ("daily_tokens", "5000"),
                ("models", "llama3, qwen3:8b"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), Some(format!("/keys/{id}?notice=saved").as_str()));
    let k = app.key(&key["id"]).await;
    assert_eq!((k["name"].as_str(), k["limits"]["daily_tokens"].as_i64()), (Some("class 7c"), Some(5000)));
    assert_eq!(k["models"], json!(["llama3", "qwen3:8b"]));
    assert_eq!(k["scopes"], json!(["inference"]));

    browser.post(&format!("{path}/deactivate"), &[("csrf_token", &csrf)]).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    browser.post(&format!("{path}/activate"), &[("csrf_token", &csrf)]).await;
    let rotated = browser.post(&format!("{path}/rotate"), &[("csrf_token", &csrf)]).await;
    let to = rotated.headers.get("location").unwrap().to_str().unwrap().to_owned();
    let shown = browser.get(&to).await;
    assert!(shown.body.contains("New secret") && shown.body.contains("sk-og-"));
    assert!(!browser.get(&to).await.body.contains("sk-og-"), "a reload shows the new secret again");
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);

    let confirm = browser.get(&format!("{path}/delete")).await;
    assert!(confirm.body.contains("Delete the key"));
    let deleted = browser.post(&format!("{path}/delete"), &[("csrf_token", &csrf)]).await;
    assert_eq!(deleted.location(), Some("/keys?notice=deleted"));
    assert_eq!(app.admin("GET", &format!("/api-keys/{id}"), None).await.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn logout_makes_the_old_cookie_useless() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let stolen = browser.cookie.clone();
    let csrf = browser.csrf().await;
    let out = browser.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.location(), Some("/login"));
    let mut thief = Browser::new(&app);
    thief.cookie = stolen;
    assert_eq!(thief.get("/").await.location(), Some("/login"), "the cookie from before logout is refused");
    let api = thief
        .client
        .get(format!("{}/api/api-keys", app.admin))
        .insert_header(("cookie", thief.cookie.clone().unwrap()));
    assert_eq!(thief.send(api, None).await.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn sessions_end_after_idle_time_and_after_their_absolute_lifetime() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()));
    let app = spawn_app_with(Options {
        env: vec![("ADMIN_SESSION_IDLE_MINUTES", "30".into()), ("ADMIN_SESSION_MAX_HOURS", "1".into())],
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    clock.advance(Duration::minutes(31));
    assert_eq!(browser.get("/").await.location(), Some("/login"), "idle for 31 minutes");

    browser.log_in(ADMIN_PASSWORD).await;
    for _ in 0..2 {
        clock.advance(Duration::minutes(25));
        assert_eq!(browser.get("/").await.status, StatusCode::OK, "active within the idle time");
    }
    clock.advance(Duration::minutes(25));
    assert_eq!(
        browser.get("/").await.location(),
        Some("/login"),
        "75 minutes after login, past the 1 hour limit"
    );
}

#[actix_web::test]
async fn repeated_wrong_passwords_are_throttled() {
    let app =
        spawn_app_with(Options { env: vec![("LOGIN_MAX_FAILURES", "3".into())], ..Options::default() }).await;
    let mut browser = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(browser.log_in("guess").await.status, StatusCode::UNAUTHORIZED);
    }
    let refused = browser.log_in(ADMIN_PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "even the right password, for a while");
    assert!(refused.headers.get("retry-after").is_some());
}

#[actix_web::test]
async fn changing_the_password_ends_every_other_session() {
    let app =
        spawn_app_with(Options { env: vec![("ADMIN_PASSWORD", String::new())], ..Options::default() }).await;
    let phc = ollama_gate::admin::password::hash("first-password-123").unwrap();
    app.state.store.put_setting("admin_password_hash", &phc).await.unwrap();
    app.state.password.set_hash(phc);
    let (mut mine, mut theirs) = (Browser::new(&app), Browser::new(&app));
    mine.log_in("first-password-123").await;
    theirs.log_in("first-password-123").await;
    let csrf = mine.csrf().await;
    let short = mine
        .post(
            "/settings/password",
            &[
                ("csrf_token", &csrf),
                ("current", "first-password-123"),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let changed = mine
        .post(
            "/settings/password",
            &[
                ("csrf_token", &csrf),
                ("current", "first-password-123"),
                ("new", "second-password-456"),
                ("confirm", "second-password-456"),
            ],
        )
        .await;
    assert_eq!(changed.location(), Some("/settings?notice=password"));
    assert_eq!(mine.get("/").await.status, StatusCode::OK, "the session that changed it goes on");
    assert_eq!(theirs.get("/").await.location(), Some("/login"), "every other session ends");
    assert_eq!(Browser::new(&app).log_in("first-password-123").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(Browser::new(&app).log_in("second-password-456").await.status, StatusCode::SEE_OTHER);
    let stored = app.state.store.get_setting("admin_password_hash").await.unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains("second-password"));
}

#[actix_web::test]
async fn a_backend_is_drained_and_disabled_with_plain_forms() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let name = app.mock.url.trim_start_matches("http://").replace(':', "-");
    // `/health` probes a backend no probe has seen yet, so the page shows it up.
    app.get("/health", None).await;
    let page = browser.get("/backends").await;
    assert!(page.body.contains(&name) && page.body.contains(">up<"), "{}", page.body);
    let forged = browser.post(&format!("/backends/{name}/drain"), &[("csrf_token", "wrong")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = browser.csrf().await;
    let drained = browser.post(&format!("/backends/{name}/drain"), &[("csrf_token", &csrf)]).await;
    assert_eq!(drained.status, StatusCode::SEE_OTHER);
    assert_eq!(app.admin("GET", "/settings", None).await.json()["backends"][0]["draining"], true);
    let (key, _) = app.create_key(json!({"name": "k"})).await;
    let refused = app.generate(&key, "llama3", false).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "draining takes no new work: {}",
        refused.text()
    );
    browser.post(&format!("/backends/{name}/undrain"), &[("csrf_token", &csrf)]).await;
    browser.post(&format!("/backends/{name}/disable"), &[("csrf_token", &csrf)]).await;
    assert!(browser.get("/backends").await.body.contains(">disabled<"));
    assert_eq!(
        app.get("/health", None).await.json()["backends"][0]["status"],
        "down",
        "a disabled backend serves nothing"
    );
    browser.post(&format!("/backends/{name}/enable"), &[("csrf_token", &csrf)]).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let unknown = browser.post("/backends/nope/drain", &[("csrf_token", &csrf)]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let odd = browser.post(&format!("/backends/{name}/explode"), &[("csrf_token", &csrf)]).await;
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn every_page_renders_and_usage_exports_as_csv() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "reporter", "limits": {"daily_tokens": 1000}})).await;
    let request_id = app.generate(&secret, "llama3", false).await.header("x-request-id").unwrap();
    app.settled(&key["id"]).await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    for (path, needle) in [
        ("/usage", request_id.as_str()),
        ("/", "Tokens per day"),
        ("/keys", "reporter"),
        ("/keys/new", "Create key"),
        ("/users", "New user"),
        ("/users/new", "Create user"),
        ("/teams", "New team"),
        ("/teams/new", "Create team"),
        (&*format!("/keys/{}", key["id"]), "Recent requests"),
        ("/usage", "llama3"),
        ("/usage?model=nothing", "No requests"),
        ("/models", "qwen3:8b"),
        ("/backends", "Slots"),
        ("/settings", "Ollama URLs"),
        ("/connect", "ANTHROPIC_BASE_URL"),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains(needle), "{path} lacks {needle}");
    }
    let csv = browser.get(&format!("/usage.csv?key_id={}", key["id"])).await;
    assert!(csv.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains("\"reporter\",\"llama3:latest\""), "{}", lines[1]);
    assert!(
        lines[0].ends_with(",request_id,local_time") && lines[1].contains(&format!(",\"{request_id}\",")),
        "{}",
        csv.body
    );
}

#[actix_web::test]
async fn an_htmx_request_gets_only_the_swapped_region_and_a_plain_one_the_whole_page() {
    let app = spawn_app().await;
    app.create_key(json!({"name": "region"})).await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    for (path, region) in [
        ("/keys", "<div id=\"keys-table\">"),
        ("/users", "<div id=\"users-table\">"),
        ("/teams", "<div id=\"teams-table\">"),
        ("/usage", "<div id=\"usage-results\">"),
    ] {
        let whole = browser.get(path).await;
        assert_eq!(whole.status, StatusCode::OK, "{path}");
        assert!(whole.body.contains("<html") && whole.body.contains(region), "{path}: the whole page");
        let req = browser.client.get(format!("{}{path}", browser.base)).insert_header(("hx-request", "true"));
        let partial = browser.send(req, None).await;
        assert_eq!(partial.status, StatusCode::OK, "{path}");
        assert!(partial.body.trim_start().starts_with(region), "{path}: {}", partial.body);
        assert!(
            !partial.body.contains("<html") && !partial.body.contains("csrf_token"),
            "{path}: only the region"
        );
        // A boosted link or form wants the whole page, as does a history restore.
        for header in ["hx-boosted", "hx-history-restore-request"] {
            let req = browser
                .client
                .get(format!("{}{path}", browser.base))
                .insert_header(("hx-request", "true"))
                .insert_header((header, "true"));
            assert!(browser.send(req, None).await.body.contains("<html"), "{path} with {header}");
        }
    }
    let req = browser.client.get(format!("{}/keys", browser.base)).insert_header(("hx-request", "true"));
    assert!(browser.send(req, None).await.body.contains("region"), "the region holds the keys");
}

#[actix_web::test]
async fn a_form_error_stands_next_to_the_field_it_belongs_to() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    let owner = "o".repeat(300);
    let page = browser
        .post("/keys", &[("csrf_token", &csrf), ("name", "fine"), ("scopes", "inference"), ("owner", &owner)])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let field = page.body.find("id=\"owner\"").expect("the owner field");
    let next = &page.body[field..page.body[field..].find("</div>").map_or(page.body.len(), |e| field + e)];
    assert!(next.contains("class=\"error\"") && next.contains("owner must be"), "{next}");
    let expiry = browser
        .post(
            "/keys",
            &[("csrf_token", &csrf), ("name", "fine"), ("scopes", "inference"), ("expires_at", "soon")],
        )
        .await;
    let field = expiry.body.find("id=\"expires_at\"").expect("the expiry field");
    let next = &expiry.body[field..field + expiry.body[field..].find("</div>").unwrap()];
    assert!(next.contains("class=\"error\"") && next.contains("expires_at"), "{next}");
    for (typed, says) in [("high", "is not a whole number"), ("0", "from 1 to 100")] {
        let page = browser
            .post(
                "/keys",
                &[("csrf_token", &csrf), ("name", "fine"), ("scopes", "inference"), ("priority", typed)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "priority {typed}");
        let field = page.body.find("id=\"priority\"").expect("the priority field");
        let next = &page.body[field..field + page.body[field..].find("</div>").unwrap()];
        assert!(next.contains("class=\"error\"") && next.contains(says), "{next}");
    }
    let saved = browser
        .post(
            "/keys",
            &[("csrf_token", &csrf), ("name", "urgent"), ("scopes", "inference"), ("priority", "4")],
        )
        .await;
    assert!(saved.status.is_success() || saved.status.is_redirection(), "{}", saved.status);
    let keys = app.admin("GET", "/api-keys", None).await.json();
    let urgent = keys.as_array().unwrap().iter().find(|k| k["name"] == "urgent").expect("created").clone();
    assert_eq!(urgent["priority"], 4);
}
