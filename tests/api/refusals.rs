//! Refused proxy requests counted per hour, key and reason: the counts after
//! a flush, a flood that makes one row and no write per request, a database
//! that is locked at flush time, `/api/refusals` groupings and bad
//! parameters. The console's side is in `console/audit.rs`.

use crate::helpers::*;
use awc::http::StatusCode;
use futures_util::future::join_all;
use serde_json::{json, Value};

/// No background flush during a test: the test flushes when it means to.
fn no_background_flush() -> Options {
    Options {
        env: vec![("REFUSALS_FLUSH_MS", "3600000".into()), ("BODY_LIMIT", "2048".into())],
        ..Options::default()
    }
}

async fn flush(app: &TestApp) {
    app.state.refusals.flush(app.state.store.as_ref()).await.expect("the counts are saved");
}

async fn refusals(app: &TestApp, query: &str) -> Vec<Value> {
    let reply = app.admin("GET", &format!("/refusals?{query}"), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
    reply.json()["rows"].as_array().cloned().unwrap()
}

/// `reason → count` of rows grouped by reason.
fn by_reason(rows: &[Value]) -> Vec<(String, i64)> {
    rows.iter().map(|r| (r["reason"].as_str().unwrap().to_owned(), r["count"].as_i64().unwrap())).collect()
}

#[actix_web::test]
async fn a_mix_of_refusals_is_counted_by_reason_and_key_after_the_flush() {
    let app = spawn_app_with(no_background_flush()).await;
    let (secret, key) = app.create_key(json!({"name": "user"})).await;
    let (spent, spent_key) = app.create_key(json!({"name": "spent", "limits": {"daily_requests": 0}})).await;
    let body = json!({"model": "llama3", "prompt": "hi", "stream": false});
    for _ in 0..3 {
        assert_eq!(app.post("/api/generate", None, body.clone()).await.status, StatusCode::UNAUTHORIZED);
    }
    let bad = "sk-og-thisisnotakeythisisnotakeythisisnot";
    assert_eq!(app.post("/api/generate", Some(bad), body.clone()).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.post("/api/pull", Some(&secret), json!({"model": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post("/api/generate", Some(&spent), body.clone()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let large = json!({"model": "llama3", "prompt": "x".repeat(4096)});
    assert_eq!(app.post("/api/generate", Some(&secret), large).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "not a refusal");

    assert!(refusals(&app, "").await.is_empty(), "nothing reaches the database before the flush");
    flush(&app).await;

    let mut reasons = by_reason(&refusals(&app, "group_by=reason").await);
    reasons.sort();
    let too_large_and_forbidden: Vec<(String, i64)> = vec![
        ("forbidden".into(), 1),
        ("quota".into(), 1),
        ("too_large".into(), 1),
        ("unauthenticated".into(), 4),
    ];
    assert_eq!(reasons, too_large_and_forbidden);

    let own = refusals(&app, &format!("key_id={}&group_by=reason", key["id"])).await;
    let mut own = by_reason(&own);
    own.sort();
    assert!(own.contains(&("forbidden".into(), 1)), "{own:?}");
    let spent_rows = refusals(&app, &format!("key_id={}", spent_key["id"])).await;
    assert_eq!(spent_rows.len(), 1, "{spent_rows:?}");
    assert_eq!(spent_rows[0]["reason"], "quota");
    assert_eq!(spent_rows[0]["key_id"], spent_key["id"]);
    let hour = chrono::DateTime::parse_from_rfc3339(spent_rows[0]["hour"].as_str().unwrap()).unwrap();
    assert_eq!(hour.timestamp() % 3600, 0, "an hour's start");

    let anonymous = refusals(&app, "key_id=none").await;
    assert_eq!(by_reason(&anonymous), [("unauthenticated".to_owned(), 4)]);
    assert_eq!(anonymous[0]["key_id"], Value::Null);

    let per_key = refusals(&app, "group_by=key").await;
    assert!(per_key.iter().all(|r| r.as_object().unwrap().len() == 2), "key_id and count: {per_key:?}");
    assert!(per_key.contains(&json!({"key_id": null, "count": 4})), "{per_key:?}");
    let per_hour = refusals(&app, "group_by=hour").await;
    assert_eq!(per_hour.len(), 1, "{per_hour:?}");
    assert_eq!(per_hour[0]["count"], 7);
}

#[actix_web::test]
async fn a_flood_of_unauthenticated_requests_makes_one_row_and_no_write_per_request() {
    let app = spawn_app_with(no_background_flush()).await;
    for _ in 0..20 {
        let batch = (0..100).map(|_| app.get("/api/tags", None));
        for reply in join_all(batch).await {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
    }
    assert!(refusals(&app, "").await.is_empty(), "2000 refusals wrote nothing yet");
    assert_eq!(app.state.refusals.pending().len(), 1, "one counter in memory");
    flush(&app).await;
    let rows = refusals(&app, "").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["count"], 2000);
    assert_eq!(rows[0]["reason"], "unauthenticated");
}

#[actix_web::test]
async fn replicas_add_to_the_same_rows_and_a_second_flush_adds_only_what_is_new() {
    let app = spawn_app_with(no_background_flush()).await;
    for _ in 0..3 {
        app.get("/api/tags", None).await;
    }
    flush(&app).await;
    for _ in 0..2 {
        app.get("/api/tags", None).await;
    }
    // Another replica's counts for the same hour and reason, added to the same row.
    let mine = app.state.refusals.pending();
    app.state.store.add_refusals(&mine).await.unwrap();
    flush(&app).await;
    flush(&app).await;
    let rows = refusals(&app, "").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["count"], 7);
}

#[actix_web::test]
async fn refusals_are_answered_while_the_database_is_locked_and_counted_once_it_is_back() {
    if postgres_backend().is_some() {
        return; // a SQLite write lock; PostgreSQL outages are in tests/pg_outage.rs
    }
    let mut options = no_background_flush();
    options.env.push(("DB_BUSY_TIMEOUT_MS", "200".into()));
    let app = spawn_app_with(options).await;
    use sqlx::Connection;
    let mut holder = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    for reply in join_all((0..50).map(|_| app.get("/api/tags", None))).await {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "refused as ever, not 503");
    }
    let failed = app.state.refusals.flush(app.state.store.as_ref()).await;
    assert!(failed.is_err(), "the flush cannot write while the lock is held");
    assert_eq!(app.state.refusals.pending()[0].count, 50, "the counts wait for the next flush");
    app.get("/api/tags", None).await;
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    flush(&app).await;
    let rows = refusals(&app, "").await;
    assert_eq!(rows[0]["count"], 51, "{rows:?}");
    assert!(app.state.refusals.pending().is_empty());
}

#[actix_web::test]
async fn the_background_flush_saves_counts_without_being_asked() {
    let options = Options { env: vec![("REFUSALS_FLUSH_MS", "20".into())], ..Options::default() };
    let app = spawn_app_with(options).await;
    app.get("/api/tags", None).await;
    // Waits for the flush the setting promises, with a generous bound.
    for _ in 0..500 {
        if !refusals(&app, "").await.is_empty() {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the counts never reached the database");
}

#[actix_web::test]
async fn bad_refusal_parameters_get_400_with_the_parameter_named() {
    let app = spawn_app().await;
    for (query, says) in [
        ("group_by=day", "group_by"),
        ("key_id=abc", "key_id"),
        ("key_id=-3", "key_id"),
        ("from=soon", "from"),
        ("to=2026-02-30", "to"),
    ] {
        let reply = app.admin("GET", &format!("/refusals?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let message = reply.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(says), "{query}: {message}");
    }
    let reply = send(app.client.get(format!("{}/api/refusals", app.admin)), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "admins only");
}

#[actix_web::test]
async fn guessing_keys_through_the_usage_endpoint_is_counted_too() {
    let app = spawn_app_with(no_background_flush()).await;
    for path in ["/v1/usage", "/v1/usage/summary"] {
        let guess = "sk-og-thisisnotakeythisisnotakeythisisnot";
        assert_eq!(app.get(path, Some(guess)).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get(path, None).await.status, StatusCode::UNAUTHORIZED);
    }
    flush(&app).await;
    assert_eq!(by_reason(&refusals(&app, "group_by=reason").await), vec![("unauthenticated".to_owned(), 4)]);
}
