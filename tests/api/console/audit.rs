//! The audit log and refusal counts in the console: logins, changes made
//! through forms (recorded once, as `session`, with the address), the
//! password change without the password, the audit page with its filters
//! and pager, and refusal tables on the key, usage and dashboard pages.

use super::Browser;
use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};

async fn entries(app: &TestApp) -> Vec<Value> {
    let mut rows =
        app.admin("GET", "/audit?limit=1000", None).await.json()["rows"].as_array().cloned().unwrap();
    rows.reverse();
    rows
}

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn logins_and_changes_through_forms_are_recorded_once_as_the_session() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.log_in("wrong-password").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(browser.log_in(ADMIN_PASSWORD).await.status, StatusCode::SEE_OTHER);
    let csrf = browser.csrf().await;
    let made =
        browser.post("/keys", &[("csrf_token", &csrf), ("name", "web"), ("scopes", "inference")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let id = app.admin("GET", "/api-keys", None).await.json()[0]["id"].clone();
    let off = browser.post(&format!("/keys/{id}/deactivate"), &[("csrf_token", &csrf)]).await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.post("/teams", &[("csrf_token", &csrf), ("name", "physics")]).await.status,
        StatusCode::SEE_OTHER
    );
    let name = app.mock.url.trim_start_matches("http://").replace(':', "-");
    let drained = browser.post(&format!("/backends/{name}/drain"), &[("csrf_token", &csrf)]).await;
    assert_eq!(drained.status, StatusCode::SEE_OTHER);
    let refused = browser.post("/teams", &[("csrf_token", &csrf), ("name", "  ")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "a refused form is no change");
    assert_eq!(browser.post("/logout", &[("csrf_token", &csrf)]).await.status, StatusCode::SEE_OTHER);

    let rows = entries(&app).await;
    assert_eq!(
        actions(&rows),
        ["login", "login", "key.create", "key.deactivate", "team.create", "backend.drain", "logout"]
    );
    assert_eq!(rows[0]["after"], json!({"ok": false}));
    assert_eq!(rows[1]["after"], json!({"ok": true}));
    for row in &rows {
        assert_eq!(row["actor"], "session", "{row}");
        assert_eq!(row["address"], "127.0.0.1", "{row}");
    }
    assert_eq!(rows[2]["target"], format!("key:{id}").as_str());
    assert_eq!(rows[5]["target"], format!("backend:{name}").as_str());
    assert_eq!(rows[5]["before"]["backends"][0]["draining"], false);
    assert_eq!(rows[5]["after"]["backends"][0]["draining"], true);
}

#[actix_web::test]
async fn the_settings_form_and_a_password_change_are_recorded_without_the_password() {
    let app =
        spawn_app_with(Options { env: vec![("ADMIN_PASSWORD", String::new())], ..Options::default() }).await;
    let phc = ollama_gate::admin::password::hash("first-password-123").unwrap();
    app.state.store.put_setting("admin_password_hash", &phc).await.unwrap();
    app.state.password.set_hash(phc.clone());
    let mut browser = Browser::new(&app);
    assert_eq!(browser.log_in("first-password-123").await.status, StatusCode::SEE_OTHER);
    let csrf = browser.csrf().await;
    let saved = browser
        .post(
            "/settings",
            &[("csrf_token", &csrf), ("ollama_urls", &app.mock.url), ("anthropic_default_model", "llama3")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let form = [
        ("csrf_token", csrf.as_str()),
        ("current", "first-password-123"),
        ("new", "second-password-456"),
        ("confirm", "second-password-456"),
    ];
    assert_eq!(browser.post("/settings/password", &form).await.status, StatusCode::SEE_OTHER);
    let new_phc = app.state.store.get_setting("admin_password_hash").await.unwrap().unwrap();

    let listed = send(
        app.client
            .get(format!("{}/api/audit?limit=1000", app.admin))
            .insert_header(("authorization", "Bearer second-password-456")),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let rows: Vec<Value> = listed.json()["rows"].as_array().cloned().unwrap();
    let names: Vec<&str> = rows.iter().rev().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(names, ["login", "settings.update", "password.change"]);
    let settings = &rows[1];
    assert_eq!(settings["after"], json!({"anthropic_default_model": "llama3"}), "only what changed");
    let text = listed.text();
    for secret in ["first-password-123", "second-password-456", phc.as_str(), new_phc.as_str(), &csrf] {
        assert!(!text.contains(secret), "a secret in the audit log: {text}");
    }
}

#[actix_web::test]
async fn the_audit_page_filters_pages_and_swaps_its_entries_for_htmx() {
    let app = spawn_app().await;
    for i in 0..55 {
        app.create_key(json!({"name": format!("key-{i:02}")})).await;
    }
    app.admin("PUT", "/settings", Some(json!({"anthropic_default_model": "<script>x</script>"}))).await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;

    let page = browser.get("/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("href=\"/audit\"") && page.body.contains("aria-current"), "in the top bar");
    assert!(page.body.contains("<td>settings.update</td>") && page.body.contains("key-54"), "newest first");
    assert!(!page.body.contains("<script>x"), "entries are escaped");
    assert!(page.body.contains("page=2"), "a second page");
    assert!(!page.body.contains("key-00"), "the oldest are on page 2");

    let second = browser.get("/audit?action=key.create&page=2").await;
    assert!(
        second.body.contains("key-00") && !second.body.contains("<td>settings.update</td>"),
        "{}",
        second.body
    );
    let only_logins = browser.get("/audit?action=login&actor=session").await;
    assert!(only_logins.body.contains("<td>login</td>") && !only_logins.body.contains("<td>key.create</td>"));

    let req =
        browser.client.get(format!("{}/audit?page=2", browser.base)).insert_header(("hx-request", "true"));
    let partial = browser.send(req, None).await;
    assert!(partial.body.starts_with("<div id=\"audit-results\">"), "{}", partial.body);
    assert!(!partial.body.contains("<html"));

    let bad = browser.get("/audit?actor=root").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("actor must be session, bearer or cli"), "{}", bad.body);
}

#[actix_web::test]
async fn refusals_show_on_the_key_page_the_usage_page_and_the_dashboard() {
    let app =
        spawn_app_with(Options { env: vec![("REFUSALS_FLUSH_MS", "3600000".into())], ..Options::default() })
            .await;
    let (secret, key) = app.create_key(json!({"name": "user"})).await;
    for _ in 0..3 {
        app.post("/api/pull", Some(&secret), json!({"model": "x"})).await;
    }
    for _ in 0..2 {
        app.get("/api/tags", None).await;
    }
    app.state.refusals.flush(app.state.store.as_ref()).await.unwrap();
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;

    let count = |body: &str, reason: &str, n: i64| {
        body.contains(&format!("<td>{reason}</td><td class=\"num\">{n}</td>"))
    };
    let key_page = browser.get(&format!("/keys/{}", key["id"])).await;
    assert!(
        key_page.body.contains("Refused, last 24 hours") && key_page.body.contains("Refused, last 30 days")
    );
    assert!(count(&key_page.body, "forbidden", 3), "{}", key_page.body);
    assert!(!key_page.body.contains("<td>unauthenticated</td>"), "not this key's");

    let dashboard = browser.get("/").await;
    assert!(count(&dashboard.body, "forbidden", 3) && count(&dashboard.body, "unauthenticated", 2));

    let usage = browser.get(&format!("/usage?key_id={}", key["id"])).await;
    assert!(count(&usage.body, "forbidden", 3) && !usage.body.contains("<td>unauthenticated</td>"));
    let long_ago = browser.get("/usage?from=2020-01-01&to=2020-01-31").await;
    assert!(long_ago.body.contains("No refused requests."), "{}", long_ago.body);
}
