//! The usage page, the dashboard's numbers and charts, and the CSV export:
//! times in `APP_TZ` with the zone, numbers with thousands separators,
//! deleted keys as text, refusals beside served requests.

use super::Browser;
use crate::helpers::*;
use awc::http::StatusCode;
use chrono::{TimeZone, Utc};
use ollama_gate::clock::ManualClock;
use ollama_gate::store::{RefusalCount, UsageRow};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// 2026-12-04 14:30:00 UTC, 15:30 in Berlin (CET, +1).
fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 14, 30, 0).unwrap()
}

async fn berlin_app() -> TestApp {
    spawn_app_with(Options {
        env: vec![("APP_TZ", "Europe/Berlin".into())],
        clock: Some(Arc::new(ManualClock::new(now()))),
        ..Options::default()
    })
    .await
}

fn row(id: i64, created_at: i64, key: (i64, &str), model: &str, tokens: (i64, i64)) -> UsageRow {
    UsageRow {
        id,
        created_at,
        key_id: key.0,
        key_name: key.1.to_owned(),
        model: model.to_owned(),
        route: "/api/generate".to_owned(),
        status: "ok".to_owned(),
        http_status: 200,
        prompt_tokens: tokens.0,
        completion_tokens: tokens.1,
        total_tokens: tokens.0 + tokens.1,
        estimated: false,
        latency_ms: 1500,
        user_id: None,
        team_id: None,
        weighted_tokens: tokens.0 + tokens.1,
        request_id: Some(format!("r{id}")),
    }
}

#[actix_web::test]
async fn pages_show_local_times_grouped_numbers_deleted_keys_charts_and_refusals() {
    let app = berlin_app().await;
    let (_, kept) = app.create_key(json!({"name": "kept"})).await;
    let (_, gone) = app.create_key(json!({"name": "gone"})).await;
    let (kept, gone) = (kept["id"].as_i64().unwrap(), gone["id"].as_i64().unwrap());
    let t = now().timestamp();
    let rows = [
        row(1, t - 3600, (kept, "kept"), "llama3", (1_234_567, 1000)),
        row(2, t - 7200, (gone, "gone"), "qwen3", (6, 4)),
    ];
    app.state.store.import_usage(&rows).await.unwrap();
    let refused = RefusalCount { hour: t - 1800, key_id: Some(kept), reason: "rate_limited", count: 1234 };
    app.state.store.add_refusals(&[refused]).await.unwrap();
    let deleted = app.admin("DELETE", &format!("/api-keys/{gone}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let usage = browser.get("/usage").await;
    assert_eq!(usage.status, StatusCode::OK);
    let body = &usage.body;
    assert!(
        body.contains(r#"<time datetime="2026-12-04T13:30:00Z">2026-12-04 14:30:00 CET</time>"#),
        "{body}"
    );
    assert!(body.contains("1,234,567") && body.contains("1,500"), "numbers are grouped: {body}");
    assert!(body.contains(&format!("deleted key #{gone} (gone)")), "{body}");
    assert!(!body.contains(&format!("href=\"/keys/{gone}\"")), "no link to a deleted key");
    assert!(body.contains(&format!("href=\"/keys/{kept}\"")));
    let by_key = browser.get("/usage?group_by=key").await.body;
    assert!(
        by_key.contains(&format!("deleted key #{gone} (gone)")) && by_key.contains("1,235,567"),
        "{by_key}"
    );

    let dashboard = browser.get("/").await.body;
    assert!(dashboard.contains("1,235,577 tokens"), "today's tokens are grouped: {dashboard}");
    assert!(dashboard.contains("1,234 refused"), "refusals beside served requests: {dashboard}");
    let key_page = browser.get(&format!("/keys/{kept}")).await.body;
    for (page, id) in
        [(&dashboard, "requests-per-hour"), (&dashboard, "tokens-per-day"), (&key_page, "key-tokens-per-day")]
    {
        let svg = format!(r#"role="img" aria-labelledby="{id}-title"><title id="{id}-title">"#);
        assert!(page.contains(&svg), "{id} has a title: {page}");
        let chart = &page[page.find(&svg).unwrap()..];
        assert!(chart.contains("<details><summary>Table</summary>"), "{id} has a table");
    }
    // The key's own chart: its tokens on its day (in Berlin), not the deleted key's.
    let cell = r#"<th scope="row">2026-12-04</th><td class="num">1,235,567</td>"#;
    assert!(key_page.contains(cell), "{cell}: {key_page}");
    // Hours in Berlin time: the kept key's request in the 14:00 hour, the
    // refusals in the current one, the deleted key's an hour before.
    let hour = |utc: &str, local: &str, served: &str, refused: &str| {
        format!(
            r#"<th scope="row"><time datetime="{utc}">{local}</time></th><td class="num">{served}</td><td class="num">{refused}</td>"#
        )
    };
    for (utc, local, served, refused) in [
        ("2026-12-04T13:00:00Z", "2026-12-04 14:00 CET", "1", "0"),
        ("2026-12-04T14:00:00Z", "2026-12-04 15:00 CET", "0", "1,234"),
        ("2026-12-04T12:00:00Z", "2026-12-04 13:00 CET", "1", "0"),
    ] {
        assert!(dashboard.contains(&hour(utc, local, served, refused)), "{local}: {dashboard}");
    }
    // 48 hours, each a table row; 30 days, with the models in order of tokens.
    assert_eq!(dashboard.matches(r#"<th scope="row"><time"#).count(), 48);
    assert!(
        dashboard
            .contains(r#"<th scope="col" class="num">llama3</th><th scope="col" class="num">qwen3</th>"#),
        "{dashboard}"
    );
    assert!(
        dashboard.contains(
            r#"<th scope="row">2026-12-04</th><td class="num">1,235,567</td><td class="num">10</td>"#
        ),
        "{dashboard}"
    );
    assert!(dashboard.contains(r#"<th scope="row">2026-11-05</th>"#), "the first of the 30 days");
}

#[actix_web::test]
async fn the_csv_export_streams_every_row_past_one_batch_with_utc_and_local_times() {
    let app = berlin_app().await;
    let (_, key) = app.create_key(json!({"name": "bulk"})).await;
    let id = key["id"].as_i64().unwrap();
    let t = now().timestamp();
    let rows: Vec<UsageRow> =
        (1..=2500).map(|i| row(i, t - 2500 + i, (id, "bulk"), "llama3", (i, 1))).collect();
    app.state.store.import_usage(&rows).await.unwrap();
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csv = browser.get("/usage.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "time,key_id,key_name,model,route,status,http_status,prompt_tokens,completion_tokens,total_tokens,\
         estimated,latency_ms,user_id,user_name,team_id,weighted_tokens,request_id,local_time"
    );
    assert_eq!(lines.len(), 2501, "every row, and only once");
    let ids: HashSet<&str> = lines[1..].iter().map(|l| l.split(',').nth(16).unwrap()).collect();
    assert_eq!(ids.len(), 2500);
    // Newest first; the time in UTC first, in Berlin with its zone last.
    assert!(
        lines[1].starts_with("2026-12-04T14:30:00Z,") && lines[1].contains(",\"r2500\","),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",\"2026-12-04 15:30:00 CET\""), "{}", lines[1]);
    assert!(lines[2500].contains(",\"r1\",\"2026-12-04 14:48:21 CET\""), "{}", lines[2500]);
    assert!(lines[1].contains(",2500,1,2501,"), "tokens stay plain numbers in CSV: {}", lines[1]);
}
