//! The Models page in the browser: a pull followed to its end on its own
//! page, the pulled model deleted behind its confirmation, a loaded model
//! unloaded.

use super::Run;
use fantoccini::Locator;
use std::time::{Duration, Instant};
use testkit::gate::Gate;

/// Waits until the pull page says the pull is over (htmx polls it with
/// JavaScript, the page refreshes itself without).
async fn until_pulled(run: &Run<'_>, model: &str) -> String {
    let started = Instant::now();
    loop {
        let text = run.text("#pull").await;
        if text.contains(&format!("{model} is pulled on main")) {
            return text;
        }
        assert!(!text.contains("failed"), "{}: the pull failed: {text}", run.label);
        assert!(started.elapsed() < Duration::from_secs(10), "{}: the pull never ended: {text}", run.label);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn check(run: &mut Run<'_>, gate: &Gate, javascript: bool) {
    let model = format!("e2e-{}:1b", run.label);
    run.go("/models").await;
    run.fill("pull-model", &model).await;
    run.shot("models-pull-form").await;
    run.click_button("Pull").await;
    run.wait_path("/models/pulls/").await;
    let done = until_pulled(run, &model).await;
    assert!(done.contains("100%") && done.contains("of 4,661,224,211 bytes"), "{done}");
    let source = run.body().await;
    assert!(!source.contains(r#"hx-trigger="every 1s""#), "{}: still polling once over", run.label);
    run.shot("model-pulled").await;
    let tags = gate.admin("GET", "/ollama-models", None).await;
    assert!(tags.to_string().contains(&model), "the backend lists the pulled model: {tags}");

    run.go("/models").await;
    let row = format!("//tr[td[1][normalize-space()='{model}']]//a[normalize-space()='Delete…']");
    run.find(Locator::XPath(&row)).await.click().await.unwrap();
    run.wait_path("/models/delete").await;
    run.shot("model-delete-confirm").await;
    run.click_button("Delete the model").await;
    run.wait_path("notice=model-deleted").await;
    assert!(!run.text("table.models").await.contains(&model), "{}: the model is still listed", run.label);

    // Every earlier request of the walk loaded llama3 again.
    run.click_button("Unload").await;
    run.wait_path("notice=model-unloaded").await;
    let table = run.text("table.models").await;
    assert!(!table.contains("loaded"), "{}: still loaded after the unload: {table}", run.label);
    run.shot(if javascript { "model-unloaded" } else { "model-unloaded-plain" }).await;
}
