//! The models page: a pull followed on its own page (htmx polling, or the
//! page refreshing itself without JavaScript), delete behind a confirmation,
//! unload, and which of several backends has which model.

use super::{Browser, Page};
use crate::helpers::*;
use crate::mock_ollama::MockOllama;
use awc::http::StatusCode;
use serde_json::Value;
use std::time::Duration;

const REFRESH: &str = r#"<meta http-equiv="refresh" content="2">"#;
const POLL: &str = r#"hx-trigger="every 1s""#;

async fn logged_in(app: &TestApp) -> (Browser, String) {
    let mut browser = Browser::new(app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    (browser, csrf)
}

/// Starts a pull from the form; returns the pull page's path.
async fn pull(browser: &mut Browser, csrf: &str, model: &str, backend: Option<&str>) -> String {
    let mut form = vec![("csrf_token", csrf), ("model", model)];
    if let Some(b) = backend {
        form.push(("backend", b));
    }
    let started = browser.post("/models/pull", &form).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let to = started.location().expect("a redirect to the pull's page").to_owned();
    assert!(to.starts_with("/models/pulls/"), "{to}");
    to
}

/// The pull page, once it says `text`.
async fn page_saying(browser: &mut Browser, path: &str, text: &str) -> Page {
    for _ in 0..1000 {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if page.body.contains(text) {
            return page;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the pull page never said {text:?}: {}", browser.get(path).await.body);
}

/// The table row of one model.
fn row<'a>(body: &'a str, model: &str) -> &'a str {
    let at =
        body.find(&format!("<tr><td>{model}</td>")).unwrap_or_else(|| panic!("no row for {model}: {body}"));
    &body[at..at + body[at..].find("</tr>").unwrap()]
}

#[actix_web::test]
async fn a_pull_shows_its_progress_while_it_runs_and_a_reload_never_starts_another() {
    let app = spawn_app().await;
    app.mock.hold_pulls();
    let (mut browser, csrf) = logged_in(&app).await;
    let models = browser.get("/models").await;
    assert!(models.body.contains(r#"action="/models/pull""#), "{}", models.body);
    let path = pull(&mut browser, &csrf, "llama3.2:1b", None).await;

    // Held half-way through the first layer: 2 of its 4 steps are in.
    let mid = page_saying(&mut browser, &path, "2,330,605,904 of 4,661,211,808 bytes").await;
    assert!(mid.body.contains("pulling 6a0746a1ec1a"), "{}", mid.body);
    assert!(
        mid.body.contains(r#"<progress value="2330605904" max="4661211808">50%</progress>"#),
        "{}",
        mid.body
    );
    assert!(mid.body.contains(" 50% "), "{}", mid.body);
    assert!(mid.body.contains("Started <time datetime=\"20"), "when it started: {}", mid.body);
    assert!(mid.body.contains(REFRESH), "the page refreshes itself without JavaScript while it runs");
    assert!(mid.body.contains(POLL) && mid.body.contains(&format!(r#"hx-get="{path}""#)), "{}", mid.body);

    // htmx's own request gets the region alone, still polling.
    let req = browser.client.get(format!("{}{path}", browser.base)).insert_header(("hx-request", "true"));
    let partial = browser.send(req, None).await;
    assert_eq!(partial.status, StatusCode::OK);
    assert!(partial.body.trim_start().starts_with(r#"<section id="pull""#), "{}", partial.body);
    assert!(!partial.body.contains("<html") && partial.body.contains(POLL), "{}", partial.body);

    for _ in 0..3 {
        browser.get(&path).await;
    }
    assert_eq!(app.mock.pulls(), 1, "reloads and polls never pull again");

    app.mock.release_pulls(1);
    let done = page_saying(&mut browser, &path, "llama3.2:1b is pulled on").await;
    assert!(done.body.contains("<strong>done</strong>"), "{}", done.body);
    assert!(done.body.contains("100% · 4,661,224,211 of 4,661,224,211 bytes"), "{}", done.body);
    assert!(!done.body.contains(REFRESH), "no refresh once it is over");
    assert!(!done.body.contains(POLL), "htmx stops polling once it is over");
    assert!(done.body.contains("<code>4fa551d4f938</code>"), "each layer has its row: {}", done.body);
    assert_eq!(app.mock.pulls(), 1);
    assert!(browser.get("/models").await.body.contains("<tr><td>llama3.2:1b</td>"));
    let audited = app.admin("GET", "/audit?action=model.pull", None).await.json();
    let entries = audited["rows"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().any(|e| e["target"] == "model:llama3.2:1b"), "{audited}");
}

#[actix_web::test]
async fn an_error_from_the_backend_or_a_backend_away_is_said_on_the_pull_page() {
    let app = spawn_app().await;
    let (mut browser, csrf) = logged_in(&app).await;
    let path = pull(&mut browser, &csrf, "missing-model", None).await;
    let failed = page_saying(&mut browser, &path, "<strong>failed</strong>").await;
    assert!(failed.body.contains("pull model manifest: file does not exist"), "{}", failed.body);
    assert!(failed.body.contains(r#"role="alert""#), "{}", failed.body);
    assert!(!failed.body.contains(REFRESH) && !failed.body.contains(POLL), "over: {}", failed.body);

    app.mock.stop().await;
    let path = pull(&mut browser, &csrf, "llama3", None).await;
    let away = page_saying(&mut browser, &path, "<strong>failed</strong>").await;
    assert!(away.body.contains("could not be reached"), "{}", away.body);

    let unknown = browser.get("/models/pulls/0123456789abcdef01234567").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("No such pull"), "{}", unknown.body);
}

#[actix_web::test]
async fn bad_names_are_refused_next_to_the_form_and_a_pull_needs_the_csrf_token() {
    let app = spawn_app().await;
    let (mut browser, csrf) = logged_in(&app).await;
    let long = "a".repeat(201);
    let cases = [
        ("", "Type the name of a model"),
        ("llama 3", "no spaces"),
        ("../../etc/passwd", "cannot contain “..”"),
        ("llama3;rm", "letters, digits"),
        (long.as_str(), "at most 200 characters"),
        // The proxy's model store rules hold on the console too.
        ("a/b/c/d", "has too many"),
        ("someone.x/model", "in its namespace"),
        ("model:tag:x", "in its model"),
        ("evil.example/library/llama3", "are not allowed on this gate"),
    ];
    for (name, message) in cases {
        let refused = browser.post("/models/pull", &[("csrf_token", &csrf), ("model", name)]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(refused.body.contains(message), "{name}: {}", refused.body);
        assert!(refused.body.contains(r#"aria-invalid="true""#), "{name}");
    }
    let unknown = browser
        .post("/models/pull", &[("csrf_token", &csrf), ("model", "llama3"), ("backend", "nope")])
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("No backend is named nope"), "{}", unknown.body);
    let forged = browser.post("/models/pull", &[("model", "llama3")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.mock.pulls(), 0);
}

#[actix_web::test]
async fn a_model_is_deleted_only_after_its_confirmation_and_with_the_csrf_token() {
    let app = spawn_app().await;
    let (mut browser, csrf) = logged_in(&app).await;
    let models = browser.get("/models").await;
    assert!(
        models
            .body
            .contains(r#"href="/models/delete?name=mistral%3Alatest" aria-label="Delete mistral:latest""#),
        "{}",
        models.body
    );
    let confirm = browser.get("/models/delete?name=mistral%3Alatest").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Delete the model “mistral:latest”?"), "{}", confirm.body);
    assert!(confirm.body.contains(r#"action="/models/delete""#), "{}", confirm.body);
    assert_eq!(app.mock.count_path("/api/delete"), 0, "the confirmation deletes nothing");

    let forged = browser.post("/models/delete", &[("name", "mistral:latest")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.mock.count_path("/api/delete"), 0);

    let deleted = browser.post("/models/delete", &[("csrf_token", &csrf), ("name", "mistral:latest")]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.location(), Some("/models?notice=model-deleted"));
    let sent = app.mock.requests().into_iter().find(|r| r.path == "/api/delete").unwrap();
    assert_eq!(sent.method, "DELETE");
    assert_eq!(serde_json::from_slice::<Value>(&sent.body).unwrap()["model"], "mistral:latest");
    assert!(!app.mock.model_names().contains(&"mistral:latest".to_owned()));
    let after = browser.get("/models?notice=model-deleted").await;
    assert!(after.body.contains("The model was deleted."), "{}", after.body);
    assert!(!after.body.contains("<tr><td>mistral:latest</td>"), "{}", after.body);

    let again = browser.post("/models/delete", &[("csrf_token", &csrf), ("name", "mistral:latest")]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(
        again.body.contains("no backend has it") && again.body.contains("mistral:latest"),
        "{}",
        again.body
    );
    assert!(again.body.contains("not found"), "Ollama's words: {}", again.body);
    let bad = browser.get("/models/delete?name=..%2Fx").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn a_loaded_model_is_unloaded_with_keep_alive_zero() {
    let app = spawn_app().await;
    let (mut browser, csrf) = logged_in(&app).await;
    let models = browser.get("/models").await;
    let llama = row(&models.body, "llama3:latest");
    assert!(llama.contains("loaded") && llama.contains(r#"action="/models/unload""#), "{llama}");
    assert!(!row(&models.body, "qwen3:8b").contains("/models/unload"), "only loaded models unload");

    let forged = browser.post("/models/unload", &[("name", "llama3:latest")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let unloaded = browser.post("/models/unload", &[("csrf_token", &csrf), ("name", "llama3:latest")]).await;
    assert_eq!(unloaded.status, StatusCode::SEE_OTHER);
    assert_eq!(unloaded.location(), Some("/models?notice=model-unloaded"));
    let sent = app.mock.requests().into_iter().find(|r| r.path == "/api/generate").unwrap();
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!((&body["model"], &body["keep_alive"]), (&Value::from("llama3:latest"), &Value::from(0)));
    assert!(body.get("prompt").is_none(), "an unload has nothing to generate: {body}");
    let after = browser.get("/models?notice=model-unloaded").await;
    assert!(after.body.contains("The model is unloaded"), "{}", after.body);
    assert!(!row(&after.body, "llama3:latest").contains("loaded</span>"), "{}", after.body);
}

#[actix_web::test]
async fn with_two_backends_the_table_says_which_has_which_and_pulls_go_where_chosen() {
    let (a, b) = (MockOllama::start().await, MockOllama::start().await);
    a.set_models(&["llama3:latest", "shared:latest"]);
    b.set_models(&["qwen3:8b", "shared:latest"]);
    let upstream = format!("{}?name=a,{}?name=b", a.url, b.url);
    let app = spawn_app_with(Options { upstream: Some(upstream), ..Options::default() }).await;
    let (mut browser, csrf) = logged_in(&app).await;
    let page = browser.get("/models").await;
    assert!(page.body.contains("<th>a</th><th>b</th>"), "a column per backend: {}", page.body);
    let shared = row(&page.body, "shared:latest");
    assert_eq!(shared.matches("has it").count(), 2, "{shared}");
    let qwen = row(&page.body, "qwen3:8b");
    assert!(qwen.contains("—") && qwen.contains("loaded</span>"), "on b only, loaded there: {qwen}");
    let llama = row(&page.body, "llama3:latest");
    assert!(llama.find("loaded</span>") < llama.find("—"), "on a, loaded: {llama}");
    assert!(page.body.contains(r#"<option value="a" selected>on a</option>"#), "{}", page.body);
    assert!(page.body.contains(r#"<option value="*">on every backend</option>"#), "{}", page.body);

    let on_b = pull(&mut browser, &csrf, "phi3", Some("b")).await;
    page_saying(&mut browser, &on_b, "is pulled on b").await;
    assert_eq!((a.pulls(), b.pulls()), (0, 1));
    let on_all = pull(&mut browser, &csrf, "gemma3", Some("*")).await;
    let both = page_saying(&mut browser, &on_all, "is pulled on b").await;
    let both = if both.body.contains("is pulled on a") {
        both
    } else {
        page_saying(&mut browser, &on_all, "is pulled on a").await
    };
    assert!(both.body.contains("<h2>On a</h2>") && both.body.contains("<h2>On b</h2>"), "{}", both.body);
    assert_eq!((a.pulls(), b.pulls()), (1, 2));

    let confirm = browser.get("/models/delete?name=shared%3Alatest").await;
    assert!(confirm.body.contains("<strong>a</strong>, <strong>b</strong>"), "{}", confirm.body);
    let deleted = browser
        .post("/models/delete", &[("csrf_token", &csrf), ("name", "shared:latest"), ("backend", "")])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!((a.count_path("/api/delete"), b.count_path("/api/delete")), (1, 1), "each backend holding it");
    assert!(
        !a.model_names().contains(&"shared:latest".to_owned())
            && !b.model_names().contains(&"shared:latest".to_owned())
    );
    // A model only b has is deleted on b alone.
    browser.post("/models/delete", &[("csrf_token", &csrf), ("name", "qwen3:8b")]).await;
    assert_eq!((a.count_path("/api/delete"), b.count_path("/api/delete")), (1, 2));
}
