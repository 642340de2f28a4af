//! The dashboard's charts and the usage page in Chromium: each chart has its
//! title and its table, and on a phone-sized window its text stays 16px.

use super::Run;
use fantoccini::Locator;
use testkit::gate::Gate;

pub async fn check(run: &mut Run<'_>, gate: &Gate, javascript: bool) {
    // One request of this hour, on a key of its own, so the charts have a bar.
    let created = gate.admin("POST", "/api-keys", Some(serde_json::json!({"name": "charted"}))).await;
    let key = created["key"].as_str().unwrap_or_else(|| panic!("no secret in {created}"));
    assert_eq!(gate.generate(key, "llama3").await.0, 200);
    run.go("/").await;
    run.find(Locator::Css("#tokens-per-day svg")).await;
    let body = run.body().await;
    for id in ["requests-per-hour", "tokens-per-day"] {
        let title = format!(r#"aria-labelledby="{id}-title"><title id="{id}-title">"#);
        assert!(body.contains(&title), "{id}: a chart without a title");
        let rows = run.c.find_all(Locator::Css(&format!("#{id} details table tbody tr"))).await.unwrap();
        let expected = if id == "requests-per-hour" { 48 } else { 30 };
        assert_eq!(rows.len(), expected, "{id}: one table row per column");
    }
    run.find(Locator::Css("#requests-per-hour details summary")).await.click().await.unwrap();
    let table = run.text("#requests-per-hour details table").await;
    assert!(table.contains("served") && table.contains("refused"), "{table}");
    run.shot("dashboard-chart-table").await;

    run.c.set_window_size(390, 844).await.unwrap();
    run.go("/").await;
    run.find(Locator::Css("#tokens-per-day svg")).await;
    if javascript {
        let size = run
            .c
            .execute(
                "return getComputedStyle(document.querySelector('#requests-per-hour svg text')).fontSize;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(size.as_str(), Some("16px"), "chart text on a phone");
    }
    run.shot("dashboard-phone").await;
    run.go("/usage?group_by=hour").await;
    run.find(Locator::Css("table.usage-groups time")).await;
    run.shot("usage-by-hour-phone").await;
    run.c.set_window_size(1280, 1000).await.unwrap();
}
