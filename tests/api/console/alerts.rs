//! Alerts in the console: the dashboard's notices, dismissed with a plain
//! form, the count in the top bar, and the soft-limit fields of the forms.

use super::Browser;
use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};

/// The alerts recorded so far, once there are `n`.
async fn recorded(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let alerts = app.admin("GET", "/alerts", None).await.json()["alerts"].as_array().cloned().unwrap();
        if alerts.len() >= n {
            return alerts;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} alerts were recorded");
}

#[actix_web::test]
async fn the_dashboard_shows_an_alert_until_it_is_dismissed() {
    let app = spawn_app().await;
    let (key, record) = app
        .create_key(json!({"name": "ci <b>bot</b>", "limits": {"daily_requests": 4}, "alerts": {"daily_requests": 50}}))
        .await;
    for _ in 0..2 {
        assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    }
    app.settled(&record["id"]).await;
    let id = recorded(&app, 1).await[0]["id"].as_i64().unwrap();

    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("reached 50% of its daily_requests limit: 2 of 4"), "{}", dashboard.body);
    assert!(!dashboard.body.contains("<b>bot</b>"), "names are escaped");
    assert!(dashboard.body.contains(&format!("action=\"/alerts/{id}/dismiss\"")));
    assert!(dashboard.body.contains("hx-get=\"/alerts/badge\""), "the top bar loads the count");
    let badge = browser.get("/alerts/badge").await;
    assert!(badge.body.contains(">1</a>"), "{}", badge.body);

    let forged = browser.post(&format!("/alerts/{id}/dismiss"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token, no dismissal");
    let csrf = browser.csrf().await;
    let dismissed = browser.post(&format!("/alerts/{id}/dismiss"), &[("csrf_token", &csrf)]).await;
    assert_eq!(dismissed.status, StatusCode::SEE_OTHER);
    assert_eq!(dismissed.location(), Some("/#alerts"));
    let after = browser.get("/").await;
    assert!(!after.body.contains("daily_requests limit"), "{}", after.body);
    assert!(!browser.get("/alerts/badge").await.body.contains("</a>"), "no count once none is open");
    assert_eq!(recorded(&app, 1).await[0]["dismissed"], true, "kept, marked dismissed");
    let again = app.admin("POST", &format!("/alerts/{id}/dismiss"), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_forms_set_and_show_soft_limits_and_refuse_bad_ones() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    let made = browser
        .post(
            "/keys",
            &[("csrf_token", &csrf), ("name", "a"), ("scopes", "inference"), ("alert_daily_tokens", "80")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let key = app.admin("GET", "/api-keys", None).await.json()[0].clone();
    assert_eq!(key["alerts"], json!({"daily_tokens": 80}));
    let page = browser.get(&format!("/keys/{}", key["id"])).await;
    assert!(page.body.contains(
        "name=\"alert_daily_tokens\" type=\"number\" min=\"1\" max=\"100\" step=\"1\" value=\"80\""
    ));
    for (value, says) in
        [("150", "from 1 to 100"), ("0", "from 1 to 100"), ("eighty", "is not a whole percent")]
    {
        let refused = browser
            .post("/teams", &[("csrf_token", &csrf), ("name", "physics"), ("alert_monthly_tokens", value)])
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{value}");
        assert!(refused.body.contains(says), "{value}: {}", refused.body);
    }
    assert_eq!(app.admin("GET", "/teams", None).await.json().as_array().unwrap().len(), 0);
    let team = browser
        .post("/teams", &[("csrf_token", &csrf), ("name", "physics"), ("alert_monthly_tokens", "75")])
        .await;
    assert_eq!(team.status, StatusCode::SEE_OTHER, "{}", team.body);
    let teams = app.admin("GET", "/teams", None).await.json();
    assert_eq!(teams[0]["alerts"], json!({"monthly_tokens": 75}));
    let user =
        browser.post("/users", &[("csrf_token", &csrf), ("name", "ana"), ("alert_total_tokens", "90")]).await;
    assert_eq!(user.status, StatusCode::SEE_OTHER, "{}", user.body);
    assert_eq!(app.admin("GET", "/users", None).await.json()[0]["alerts"], json!({"total_tokens": 90}));
}
