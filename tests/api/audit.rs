//! The audit log through the JSON API: one entry per change with the fields
//! it changed, who made it and from where; nothing for a refused change;
//! failed bearer logins; filters, paging and bad parameters; retention; and
//! never a secret. The console's side is in `console/audit.rs`.

use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use ollama_gate::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::Arc;

/// Every entry, oldest first.
async fn entries(app: &TestApp) -> Vec<Value> {
    let reply = app.admin("GET", "/audit?limit=1000", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut rows = reply.json()["rows"].as_array().cloned().unwrap();
    rows.reverse();
    rows
}

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap()).collect()
}

fn find<'a>(rows: &'a [Value], action: &str) -> &'a Value {
    rows.iter().find(|r| r["action"] == action).unwrap_or_else(|| panic!("no {action} in {rows:?}"))
}

#[actix_web::test]
async fn every_key_change_through_the_api_is_one_entry_with_the_fields_it_changed() {
    let app = spawn_app().await;
    let (_, key) = app.create_key(json!({"name": "ci", "limits": {"daily_requests": 5}})).await;
    let id = &key["id"];
    let path = |p: &str| format!("/api-keys/{id}{p}");
    assert_eq!(app.admin("PATCH", &path(""), Some(json!({"name": "ci-bot"}))).await.status, StatusCode::OK);
    let quota = json!({"daily_requests": 7});
    assert_eq!(app.admin("PATCH", &path("/quota"), Some(quota)).await.status, StatusCode::OK);
    let per_model = json!({"model_limits": [{"model": "llama3", "limits": {"daily_tokens": 9}}]});
    assert_eq!(app.admin("PATCH", &path(""), Some(per_model)).await.status, StatusCode::OK);
    assert_eq!(app.admin("PUT", &path("/deactivate"), None).await.status, StatusCode::OK);
    assert_eq!(app.admin("PUT", &path("/activate"), None).await.status, StatusCode::OK);
    assert_eq!(app.admin("POST", &path("/rotate"), None).await.status, StatusCode::OK);
    assert_eq!(app.admin("DELETE", &path(""), None).await.status, StatusCode::NO_CONTENT);

    let rows = entries(&app).await;
    assert_eq!(
        actions(&rows),
        [
            "key.create",
            "key.update",
            "key.quota",
            "key.model_limits",
            "key.deactivate",
            "key.activate",
            "key.rotate",
            "key.delete"
        ]
    );
    let target = format!("key:{id}");
    for row in &rows {
        assert_eq!(row["actor"], "bearer", "{row}");
        assert_eq!(row["address"], "127.0.0.1", "{row}");
        assert_eq!(row["target"], target.as_str(), "{row}");
        assert!(chrono::DateTime::parse_from_rfc3339(row["at"].as_str().unwrap()).is_ok(), "{row}");
    }
    let created = find(&rows, "key.create");
    assert_eq!(created["before"], Value::Null);
    assert_eq!(created["after"]["name"], "ci");
    assert_eq!(created["after"]["limits"]["daily_requests"], 5);
    let renamed = find(&rows, "key.update");
    assert_eq!(renamed["before"], json!({"name": "ci"}), "only the changed field");
    assert_eq!(renamed["after"], json!({"name": "ci-bot"}));
    let quota = find(&rows, "key.quota");
    assert_eq!(quota["before"]["limits"]["daily_requests"], 5);
    assert_eq!(quota["after"]["limits"]["daily_requests"], 7);
    assert_eq!(find(&rows, "key.model_limits")["after"]["model_limits"][0]["model"], "llama3");
    assert_eq!(find(&rows, "key.deactivate")["after"], json!({"active": false}));
    assert_eq!(find(&rows, "key.activate")["after"], json!({"active": true}));
    let rotated = find(&rows, "key.rotate");
    assert_eq!(rotated["before"].as_object().unwrap().keys().collect::<Vec<_>>(), ["key_hint"]);
    assert_eq!(find(&rows, "key.delete")["before"]["name"], "ci-bot");
    assert_eq!(find(&rows, "key.delete")["after"], Value::Null);
}

#[actix_web::test]
async fn people_weights_and_settings_changes_are_entries_too() {
    let app = spawn_app().await;
    let team = app.admin("POST", "/teams", Some(json!({"name": "physics"}))).await.json();
    let user = app.admin("POST", "/users", Some(json!({"name": "ana", "team_id": team["id"]}))).await.json();
    let (t, u) = (format!("/teams/{}", team["id"]), format!("/users/{}", user["id"]));
    assert_eq!(app.admin("PATCH", &t, Some(json!({"name": "optics"}))).await.status, StatusCode::OK);
    let limits = json!({"daily_tokens": 100});
    assert_eq!(app.admin("PATCH", &format!("{t}/quota"), Some(limits.clone())).await.status, StatusCode::OK);
    assert_eq!(
        app.admin("PATCH", &u, Some(json!({"email": "ana@example.org"}))).await.status,
        StatusCode::OK
    );
    assert_eq!(app.admin("PATCH", &format!("{u}/quota"), Some(limits)).await.status, StatusCode::OK);
    let weights = json!({"weights": {"llama3": 2}});
    assert_eq!(app.admin("PUT", "/model-weights", Some(weights)).await.status, StatusCode::OK);
    let settings = json!({"anthropic_default_model": "llama3"});
    assert_eq!(app.admin("PUT", "/settings", Some(settings)).await.status, StatusCode::OK);
    assert_eq!(app.admin("DELETE", &u, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.admin("DELETE", &t, None).await.status, StatusCode::NO_CONTENT);

    let rows = entries(&app).await;
    assert_eq!(
        actions(&rows),
        [
            "team.create",
            "user.create",
            "team.update",
            "team.quota",
            "user.update",
            "user.quota",
            "weights.update",
            "settings.update",
            "user.delete",
            "team.delete"
        ]
    );
    let team_target = format!("team:{}", team["id"]);
    assert_eq!(find(&rows, "team.update")["target"], team_target.as_str());
    assert_eq!(find(&rows, "team.update")["before"], json!({"name": "physics"}));
    assert_eq!(find(&rows, "team.quota")["after"]["limits"]["daily_tokens"], 100);
    assert_eq!(find(&rows, "user.update")["after"], json!({"email": "ana@example.org"}));
    assert_eq!(find(&rows, "weights.update")["after"]["llama3"].as_f64(), Some(2.0));
    let settings = find(&rows, "settings.update");
    assert_eq!(settings["before"], json!({"anthropic_default_model": null}));
    assert_eq!(settings["after"], json!({"anthropic_default_model": "llama3"}));
    assert_eq!(find(&rows, "user.delete")["before"]["name"], "ana");
}

#[actix_web::test]
async fn refused_and_empty_changes_leave_no_entry() {
    let app = spawn_app().await;
    let (_, key) = app.create_key(json!({"name": "ci"})).await;
    let id = &key["id"];
    let bad_limit = json!({"daily_requests": -1});
    let reply = app.admin("PATCH", &format!("/api-keys/{id}/quota"), Some(bad_limit)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app.admin("PATCH", &format!("/api-keys/{id}"), Some(json!({"name": ""}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.admin("DELETE", "/api-keys/999", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.admin("POST", "/teams", Some(json!({"name": " "}))).await.status, StatusCode::BAD_REQUEST);
    let bad_url = json!({"ollama_urls": ["ftp://nowhere"]});
    assert_eq!(app.admin("PUT", "/settings", Some(bad_url)).await.status, StatusCode::BAD_REQUEST);
    // Saving what is already there changes nothing.
    assert_eq!(
        app.admin("PATCH", &format!("/api-keys/{id}"), Some(json!({"name": "ci"}))).await.status,
        StatusCode::OK
    );
    assert_eq!(app.admin("PUT", &format!("/api-keys/{id}/activate"), None).await.status, StatusCode::OK);
    assert_eq!(actions(&entries(&app).await), ["key.create"]);
}

#[actix_web::test]
async fn a_wrong_bearer_password_is_a_failed_login() {
    let app = spawn_app().await;
    let reply = send(
        app.client
            .get(format!("{}/api/api-keys", app.admin))
            .insert_header(("authorization", "Bearer wrong")),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let rows = entries(&app).await;
    assert_eq!(actions(&rows), ["login"]);
    assert_eq!(rows[0]["actor"], "bearer");
    assert_eq!(rows[0]["address"], "127.0.0.1");
    assert_eq!(rows[0]["after"], json!({"ok": false}));
    assert!(!rows[0].to_string().contains("wrong"), "the tried password is not kept: {}", rows[0]);
}

#[actix_web::test]
async fn the_log_filters_by_time_actor_and_action_and_pages_newest_first() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()));
    let app = spawn_app_with(Options { clock: Some(clock.clone()), ..Options::default() }).await;
    for name in ["a", "b", "c"] {
        app.create_key(json!({"name": name})).await;
        clock.advance(Duration::days(1));
    }
    let reply = app.admin("PUT", "/settings", Some(json!({"anthropic_default_model": "x"}))).await;
    assert_eq!(reply.status, StatusCode::OK);

    let get = |q: &'static str| {
        let app = &app;
        async move {
            let reply = app.admin("GET", &format!("/audit?{q}"), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{q}: {}", reply.text());
            reply.json()["rows"].as_array().cloned().unwrap()
        }
    };
    let names = |rows: &[Value]| -> Vec<String> {
        rows.iter().map(|r| r["after"]["name"].as_str().unwrap_or("-").to_owned()).collect()
    };
    assert_eq!(names(&get("action=key.create").await), ["c", "b", "a"], "newest first");
    assert_eq!(names(&get("action=key.create&limit=1&offset=1").await), ["b"]);
    assert_eq!(names(&get("from=2026-03-02&to=2026-03-02").await), ["b"], "to is the end of that day");
    assert_eq!(names(&get("from=2026-03-02T12:00:00Z&action=key.create").await), ["c", "b"]);
    assert_eq!(get("actor=bearer").await.len(), 4);
    assert!(get("actor=cli").await.is_empty());
    assert_eq!(get("action=settings.update").await.len(), 1);
    assert_eq!(get("").await.len(), 4, "limit defaults to 100");

    for (query, says) in [
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("actor=root", "actor"),
        ("action=drop.table", "action"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
    ] {
        let reply = app.admin("GET", &format!("/audit?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let message = reply.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(says), "{query}: {message}");
    }
}

#[actix_web::test]
async fn upkeep_deletes_entries_older_than_the_retention_and_keeps_the_rest() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
    let options = Options {
        clock: Some(clock.clone()),
        env: vec![("AUDIT_RETENTION_DAYS", "30".into())],
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    app.create_key(json!({"name": "old"})).await;
    clock.advance(Duration::days(29));
    app.create_key(json!({"name": "recent"})).await;
    clock.advance(Duration::days(2));
    ollama_gate::upkeep::once(&app.state).await.unwrap();
    let rows = entries(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["after"]["name"], "recent");
}

#[actix_web::test]
async fn a_retention_of_zero_keeps_every_entry() {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()));
    let options = Options {
        clock: Some(clock.clone()),
        env: vec![("AUDIT_RETENTION_DAYS", "0".into())],
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    app.create_key(json!({"name": "old"})).await;
    clock.advance(Duration::days(3650));
    ollama_gate::upkeep::once(&app.state).await.unwrap();
    assert_eq!(entries(&app).await.len(), 1);
}

#[actix_web::test]
async fn no_entry_holds_a_key_its_hash_or_the_admin_password() {
    let app = spawn_app().await;
    let (first, key) = app.create_key(json!({"name": "ci"})).await;
    let rotated = app.admin("POST", &format!("/api-keys/{}/rotate", key["id"]), None).await.json();
    let second = rotated["key"].as_str().unwrap().to_owned();
    let (third, _) = app.create_key(json!({"name": "other", "owner": "ana"})).await;
    send(
        app.client
            .get(format!("{}/api/audit", app.admin))
            .insert_header(("authorization", "Bearer guess-123")),
        None,
    )
    .await;
    let record = app.state.store.get_key(key["id"].as_i64().unwrap()).await.unwrap().unwrap();

    let text = serde_json::to_string(&entries(&app).await).unwrap();
    assert!(text.contains("key.rotate"), "{text}");
    for secret in
        [first.as_str(), second.as_str(), third.as_str(), &record.key_hash, ADMIN_PASSWORD, "guess-123"]
    {
        assert!(!text.contains(secret), "an audit entry holds a secret: {text}");
    }
    // Nor does any part of a key past its public prefix show, but for the hint.
    for secret in [&first, &second, &third] {
        assert!(!text.contains(&secret[6..20]), "{text}");
    }
}
