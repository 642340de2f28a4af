//! The key pages without JavaScript: the list sorted and paged, usage and
//! reached limits, every form error at once, the model picker, the rotate
//! confirmation and expiry dates in `APP_TZ`.

use super::{Browser, Page};
use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;

const ZONE: &str = "Europe/Berlin";

async fn berlin_app() -> TestApp {
    spawn_app_with(Options { env: vec![("APP_TZ", ZONE.into())], ..Options::default() }).await
}

async fn logged_in(app: &TestApp) -> Browser {
    let mut browser = Browser::new(app);
    browser.log_in(ADMIN_PASSWORD).await;
    browser
}

/// The text from the element with `id` up to the end of its `div`.
fn field<'a>(page: &'a Page, id: &str) -> &'a str {
    let at =
        page.body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no field {id}: {}", page.body));
    &page.body[at..at + page.body[at..].find("</div>").unwrap()]
}

/// Where each linked key name stands on the page, in page order.
fn names_in_order(page: &Page) -> Vec<String> {
    page.body
        .split("<td><a href=\"/keys/")
        .skip(1)
        .filter_map(|row| {
            row.split_once("\">").and_then(|(_, rest)| rest.split_once("</a>")).map(|(n, _)| n.to_owned())
        })
        .collect()
}

#[actix_web::test]
async fn the_list_sorts_and_pages_a_hundred_and_twenty_keys() {
    let app = spawn_app().await;
    for i in 0..120 {
        app.create_key(json!({"name": format!("key-{i:03}")})).await;
    }
    let mut browser = logged_in(&app).await;

    let first = browser.get("/keys").await;
    assert_eq!(first.status, StatusCode::OK);
    let names = names_in_order(&first);
    assert_eq!(names.len(), 50, "{names:?}");
    assert_eq!((names[0].as_str(), names[49].as_str()), ("key-000", "key-049"));
    assert!(first.body.contains("Page 1 of 3 (120 keys)"));
    assert!(
        first.body.contains("href=\"/keys?sort=name&#38;dir=asc&#38;page=2\""),
        "a link to the next page"
    );
    assert!(!first.body.contains("rel=\"prev\""), "no page before the first");
    assert!(first.body.contains("aria-sort=\"ascending\""));
    assert!(
        first.body.contains("href=\"/keys?sort=name&#38;dir=desc&#38;page=1\""),
        "the current column turns round"
    );

    let third = browser.get("/keys?sort=name&dir=desc&page=3").await;
    let names = names_in_order(&third);
    let expected: Vec<String> = (0..20).rev().map(|i| format!("key-{i:03}")).collect();
    assert_eq!(names, expected);
    assert!(third.body.contains("Page 3 of 3 (120 keys)"));
    assert!(third.body.contains("href=\"/keys?sort=name&#38;dir=desc&#38;page=2\""), "a link back");
    assert!(!third.body.contains("rel=\"next\""), "no page after the last");

    let created = browser.get("/keys?sort=created&dir=desc").await;
    assert_eq!(names_in_order(&created)[0], "key-119", "the newest key first");

    // Unknown values fall back: by name, ascending, the first page.
    let odd = browser.get("/keys?sort=password&dir=sideways&page=zero").await;
    assert_eq!(odd.status, StatusCode::OK);
    assert_eq!(names_in_order(&odd)[0], "key-000");
    let past = browser.get("/keys?page=99").await;
    assert!(past.body.contains("Page 3 of 3"), "a page past the end shows the last");

    // The filter keeps its place in the sort and page links.
    let filtered = browser.get("/keys?q=key-11&sort=name&dir=desc").await;
    let names = names_in_order(&filtered);
    assert_eq!(names.first().map(String::as_str), Some("key-119"));
    assert_eq!(names.len(), 10);
    assert!(filtered.body.contains("href=\"/keys?q=key-11&#38;sort=name&#38;dir=asc&#38;page=1\""));
    assert!(!filtered.body.contains("class=\"pager\""), "one page needs no pager");

    // htmx swaps the table with its pager, not the whole page.
    let req =
        browser.client.get(format!("{}/keys?page=2", browser.base)).insert_header(("hx-request", "true"));
    let partial = browser.send(req, None).await;
    assert!(
        partial.body.starts_with("<div id=\"keys-table\">"),
        "{}",
        &partial.body[..80.min(partial.body.len())]
    );
    assert!(!partial.body.contains("<html"));
    assert_eq!(names_in_order(&partial)[0], "key-050");
    assert!(partial.body.contains("Page 2 of 3"));
}

#[actix_web::test]
async fn every_error_of_a_form_shows_at_once_next_to_its_field() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let csrf = browser.csrf().await;
    let long_name = "x".repeat(300);
    let bad = browser
        .post(
            "/keys",
            &[
                ("csrf_token", &csrf),
                ("name", &long_name),
                ("scopes", "inference"),
                ("priority", "500"),
                ("expires_at", "the day after tomorrow"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (id, words) in
        [("name", "name must be"), ("priority", "priority must be"), ("expires_at", "expires_at")]
    {
        let f = field(&bad, id);
        assert!(f.contains("aria-invalid=\"true\""), "{id}: {f}");
        assert!(f.contains(&format!("aria-describedby=\"{id}-error\"")), "{id}: {f}");
        assert!(f.contains(&format!("<p class=\"error\" id=\"{id}-error\">{words}")), "{id}: {f}");
    }
    let summary = &bad.body[bad.body.find("class=\"error-summary\"").expect("a summary")..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    assert!(summary.contains("role=\"alert\""));
    for id in ["name", "priority", "expires_at"] {
        assert!(summary.contains(&format!("<a href=\"#{id}\">")), "{id} in {summary}");
    }
    assert!(
        summary.find("#name").unwrap() < summary.find("#priority").unwrap()
            && summary.find("#priority").unwrap() < summary.find("#expires_at").unwrap(),
        "in the form's order: {summary}"
    );
    let keys = app.admin("GET", "/api-keys", None).await.json();
    assert_eq!(keys.as_array().map(Vec::len).unwrap_or(keys["keys"].as_array().map_or(0, Vec::len)), 0);

    // Errors of reading the form and of the domain's checks come together.
    let mixed = browser
        .post(
            "/keys",
            &[
                ("csrf_token", &csrf),
                ("name", "ok"),
                ("priority", "0"),
                ("daily_tokens", "-5"),
                ("max_images", "x"),
            ],
        )
        .await;
    assert_eq!(mixed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mixed.body.contains("choose at least one scope"));
    assert!(mixed.body.contains("daily_tokens must be a whole number"));
    assert!(mixed.body.contains("max_images must be a whole number"));
    assert!(field(&mixed, "priority").contains("priority must be a whole number from 1 to 100"));
}

#[actix_web::test]
async fn the_model_picker_lists_the_backends_models_and_flags_unknown_names() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let new = browser.get("/keys/new").await;
    for model in ["llama3:latest", "qwen3:8b", "mistral:latest"] {
        assert!(new.body.contains(&format!("name=\"model_picks\" value=\"{model}\" >")), "{model}");
    }
    assert!(new.body.contains("<legend>Models this key may use"), "the group is labelled");

    let (_, key) = app.create_key(json!({"name": "picky", "models": ["llama3", "gone-model:1b"]})).await;
    let id = key["id"].as_i64().unwrap();
    let page = browser.get(&format!("/keys/{id}")).await;
    assert!(
        page.body.contains("name=\"model_picks\" value=\"llama3:latest\" checked"),
        "llama3 is llama3:latest"
    );
    assert!(page.body.contains("name=\"model_picks\" value=\"qwen3:8b\" >"));
    let models = field(&page, "models");
    assert!(models.contains("value=\"gone-model:1b\""), "{models}");
    assert!(models.contains("aria-describedby=\"models-warning \""), "{models}");
    assert!(models.contains("<code>gone-model:1b</code>: not on any backend"), "{models}");
    assert!(!models.contains("llama3"), "a picked model is not typed again: {models}");

    let csrf = browser.csrf().await;
    let saved = browser
        .post(
            &format!("/keys/{id}"),
            &[
                ("csrf_token", &csrf),
                ("name", "picky"),
                ("scopes", "inference"),
                ("model_picks", "qwen3:8b"),
                ("model_picks", "mistral:latest"),
                ("models", "other:2b, qwen3:8b"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(app.key(&key["id"]).await["models"], json!(["qwen3:8b", "mistral:latest", "other:2b"]));

    // A backend that cannot be asked leaves the free text, and says why.
    let offline =
        spawn_app_with(Options { upstream: Some("http://127.0.0.1:9".into()), ..Options::default() }).await;
    let mut browser = logged_in(&offline).await;
    let new = browser.get("/keys/new").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(!new.body.contains("model_picks"));
    assert!(field(&new, "models").contains("could not be listed"), "{}", field(&new, "models"));
}

#[actix_web::test]
async fn an_unlimited_key_shows_its_usage() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "free"})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    let settled = app.settled(&key["id"]).await;
    let tokens = settled["usage"]["day"]["tokens"].as_i64().unwrap();
    assert!(tokens > 0, "{settled}");
    let mut browser = logged_in(&app).await;
    let list = browser.get("/keys").await;
    let line = format!("today 1 requests, {tokens} tokens · this month 1 requests, {tokens} tokens");
    assert!(list.body.contains(&line), "{}", list.body);
    assert!(list.body.contains("unlimited"), "no meters without limits");
    let page = browser.get(&format!("/keys/{}", key["id"])).await;
    assert!(page.body.contains(&format!("Usage: {line}")));
}

#[actix_web::test]
async fn a_key_that_reached_a_limit_says_which_and_when_it_resets() {
    let app = berlin_app().await;
    let (secret, key) = app.create_key(json!({"name": "small", "limits": {"daily_tokens": 5}})).await;
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    let used = app.settled(&key["id"]).await["usage"]["day"]["tokens"].as_i64().unwrap();
    assert!(used >= 5, "the request used the day's tokens: {used}");
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);

    let tz: Tz = ZONE.parse().unwrap();
    let tomorrow = Utc::now().with_timezone(&tz).date_naive().succ_opt().unwrap();
    let midnight = tz.from_local_datetime(&tomorrow.and_hms_opt(0, 0, 0).unwrap()).unwrap();
    let resets = midnight.format("%Y-%m-%d 00:00 %Z").to_string();
    let mut browser = logged_in(&app).await;
    let page = browser.get(&format!("/keys/{}", key["id"])).await;
    let line = format!("Daily token limit reached: {used} of 5; resets {resets}");
    assert!(page.body.contains(&line), "{line} in {}", page.body);
    let list = browser.get("/keys").await;
    assert!(list.body.contains("limit reached: daily tokens"));

    let (_, fresh) = app.create_key(json!({"name": "fresh", "limits": {"daily_tokens": 5}})).await;
    let page = browser.get(&format!("/keys/{}", fresh["id"])).await;
    assert!(!page.body.contains("limit reached"), "a key under its limits says nothing");
}

#[actix_web::test]
async fn rotate_asks_first_and_needs_the_csrf_token() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "turning"})).await;
    let id = key["id"].as_i64().unwrap();
    let mut browser = logged_in(&app).await;
    let detail = browser.get(&format!("/keys/{id}")).await;
    assert!(detail.body.contains(&format!("<form method=\"get\" action=\"/keys/{id}/rotate\">")));

    let confirm = browser.get(&format!("/keys/{id}/rotate")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("it stops working at once"));
    assert!(confirm
        .body
        .contains(&format!("<form method=\"post\" action=\"/keys/{id}/rotate\" class=\"stacked\">")));
    assert!(
        confirm.body.contains("<option value=\"0\" selected>stops at once</option>"),
        "no grace unless chosen"
    );
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "asking rotates nothing");
    assert_eq!(browser.get("/keys/999999/rotate").await.status, StatusCode::NOT_FOUND);

    let forged = browser.post(&format!("/keys/{id}/rotate"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);

    let done = browser.post(&format!("/keys/{id}/rotate"), &[("csrf_token", &confirm.csrf())]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let to = done.location().unwrap().to_owned();
    let shown = browser.get(&to).await;
    assert!(shown.body.contains("id=\"secret\""));
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    let again = browser.get(&to).await;
    assert!(again.body.contains("id=\"secret-gone\""), "the secret is shown once");
}

#[actix_web::test]
async fn an_expiry_date_means_the_end_of_that_day_in_app_tz() {
    let app = berlin_app().await;
    let (_, key) = app.create_key(json!({"name": "dated"})).await;
    let id = key["id"].as_i64().unwrap();
    let mut browser = logged_in(&app).await;
    let csrf = browser.csrf().await;
    let saved = browser
        .post(
            &format!("/keys/{id}"),
            &[
                ("csrf_token", &csrf),
                ("name", "dated"),
                ("scopes", "inference"),
                ("expires_at", "2026-12-31"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(app.key(&key["id"]).await["expires_at"], "2026-12-31T23:00:00Z", "midnight in Berlin");
    let page = browser.get(&format!("/keys/{id}")).await;
    assert!(page.body.contains("expires 2026-12-31 end of day CET"));
    let input = field(&page, "expires_at");
    assert!(input.contains("value=\"2026-12-31\""), "{input}");
    assert!(page.body.contains("a date means the end of that day in Europe/Berlin"));
    assert!(page.body.contains("created <time datetime=\""));
    let list = browser.get("/keys").await;
    assert!(list.body.contains("<td>2026-12-31 end of day CET</td>"));
}

#[actix_web::test]
async fn a_rotation_with_grace_shows_both_secrets_until_the_old_one_is_stopped() {
    let app = spawn_app().await;
    let (old, key) = app.create_key(json!({"name": "turning"})).await;
    let id = key["id"].as_i64().unwrap();
    let mut browser = logged_in(&app).await;
    let confirm = browser.get(&format!("/keys/{id}/rotate")).await;
    let csrf = confirm.csrf();
    let odd = browser
        .post(&format!("/keys/{id}/rotate"), &[("csrf_token", &csrf), ("grace_seconds", "soon")])
        .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST, "{}", odd.body);
    assert!(odd.body.contains("is not a whole number of seconds"), "{}", odd.body);
    let done = browser
        .post(&format!("/keys/{id}/rotate"), &[("csrf_token", &csrf), ("grace_seconds", "86400")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.generate(&old, "llama3", false).await.status,
        StatusCode::OK,
        "the old secret is in its grace"
    );

    let page = browser.get(&format!("/keys/{id}")).await;
    assert!(page.body.contains("id=\"previous-secret\""), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("<code>{}</code> keeps working until", key["key_hint"].as_str().unwrap())));
    let again = browser.get(&format!("/keys/{id}/rotate")).await;
    assert!(again.body.contains("id=\"rotate-previous\""), "a second rotation says it ends the first grace");

    let stopped = browser.post(&format!("/keys/{id}/end-grace"), &[("csrf_token", &csrf)]).await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER);
    assert_eq!(app.generate(&old, "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    let page = browser.get(stopped.location().unwrap()).await;
    assert!(page.body.contains("The previous secret no longer works."));
    assert!(!page.body.contains("id=\"previous-secret\""));
    assert_eq!(
        browser.post(&format!("/keys/{id}/end-grace"), &[]).await.status,
        StatusCode::FORBIDDEN,
        "CSRF"
    );
}

#[actix_web::test]
async fn allowed_addresses_are_edited_in_the_key_form_with_errors_at_the_field() {
    let app = spawn_app().await;
    let (secret, key) = app.create_key(json!({"name": "office"})).await;
    let id = key["id"].as_i64().unwrap();
    let mut browser = logged_in(&app).await;
    let csrf = browser.csrf().await;
    let form = |ips: &'static str| {
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "office".to_owned()),
            ("scopes", "inference".to_owned()),
            ("allowed_ips", ips.to_owned()),
        ]
    };
    let fields = form("10.0.0.0/8\nnot-an-ip");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser.post(&format!("/keys/{id}"), &refs).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("id=\"allowed_ips-error\""), "{}", refused.body);
    assert!(refused.body.contains("not-an-ip"), "what was typed stays");
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "nothing saved");

    let fields = form("10.0.0.0/8\n192.168.1.9, 2001:db8::/32");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post(&format!("/keys/{id}"), &refs).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.key(&json!(id)).await["allowed_ips"],
        json!(["10.0.0.0/8", "192.168.1.9", "2001:db8::/32"])
    );
    assert_eq!(
        app.generate(&secret, "llama3", false).await.status,
        StatusCode::FORBIDDEN,
        "loopback is not listed"
    );
    let page = browser.get(&format!("/keys/{id}")).await;
    assert!(page.body.contains("10.0.0.0/8\n192.168.1.9\n2001:db8::/32</textarea>"), "one a line");
}
