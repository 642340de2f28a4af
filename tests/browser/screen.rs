//! What every screen owes its reader: the menu folds on a phone and stays
//! open on a desktop, a skip link comes first, dark mode follows the system,
//! copy buttons show only where they work, and the Settings form keeps what
//! was typed when its fields are wrong, saying every error at once.

use super::Run;
use fantoccini::key::Key;
use fantoccini::Locator;
use std::time::Duration;
use testkit::gate::Gate;

pub async fn check(run: &mut Run<'_>, gate: &Gate, javascript: bool) {
    menu(run).await;
    if javascript {
        skip_link(run).await;
        colours(run).await;
    }
    connect(run, gate, javascript).await;
    settings(run).await;
}

async fn displayed(run: &Run<'_>, css: &str) -> bool {
    run.find(Locator::Css(css)).await.is_displayed().await.unwrap()
}

async fn menu(run: &mut Run<'_>) {
    run.go("/usage").await;
    let link = "nav[aria-label='Main'] a[href='/keys']";
    if run.screen.phone() {
        assert!(!displayed(run, link).await, "{}: the menu is folded on a phone", run.label);
        assert!(displayed(run, ".menu > summary").await);
        run.find(Locator::Css(".menu > summary")).await.click().await.unwrap();
        assert!(displayed(run, link).await, "{}: the menu opens", run.label);
        run.shot("menu-open").await;
        run.find(Locator::Css(link)).await.click().await.unwrap();
        run.wait_path("/keys").await;
    } else {
        // WebDriver counts what is inside a closed <details> as hidden, even
        // where the page's style shows it: measure the link instead.
        let (_, _, width, height) = run.find(Locator::Css(link)).await.rectangle().await.unwrap();
        assert!(width > 10.0 && height > 10.0, "{}: the menu is open on a desktop", run.label);
        if run.screen.javascript {
            let shown = run
                .c
                .execute(&format!("return document.querySelector(\"{link}\").checkVisibility();"), vec![])
                .await
                .unwrap();
            assert_eq!(shown, serde_json::json!(true), "{}: the menu is open on a desktop", run.label);
        }
        assert!(!displayed(run, ".menu > summary").await);
    }
}

async fn skip_link(run: &mut Run<'_>) {
    run.go("/usage").await;
    run.find(Locator::Css("body")).await.send_keys(&Key::Tab.to_string()).await.unwrap();
    let focused = run.c.active_element().await.unwrap();
    assert_eq!(focused.attr("href").await.unwrap().as_deref(), Some("#content"), "{}", run.label);
    assert!(focused.is_displayed().await.unwrap(), "{}: the skip link shows when focused", run.label);
    run.shot("skip-link").await;
}

async fn colours(run: &mut Run<'_>) {
    let seen = run
        .c
        .execute(
            "return [matchMedia('(prefers-color-scheme: dark)').matches, getComputedStyle(document.body).backgroundColor];",
            vec![],
        )
        .await
        .unwrap();
    let dark = seen[0].as_bool().unwrap();
    assert_eq!(dark, run.screen.dark, "{}: the browser's colour scheme", run.label);
    let background = seen[1].as_str().unwrap().to_owned();
    let expected = if dark { "rgb(17, 21, 28)" } else { "rgb(246, 247, 249)" };
    assert_eq!(background, expected, "{}: the page follows prefers-color-scheme", run.label);
}

async fn connect(run: &mut Run<'_>, gate: &Gate, javascript: bool) {
    let info = gate.admin("GET", "/proxy-info", None).await;
    run.go("/connect").await;
    let curl = run.text("#snippet-1").await;
    assert_eq!(
        curl,
        info["snippets"]["curl"].as_str().unwrap(),
        "{}: the page shows the API's snippet",
        run.label
    );
    assert!(!curl.contains("llama3.2"), "{}: the snippet names a model the backend has: {curl}", run.label);
    let button = "button[data-copy='snippet-1']";
    assert_eq!(
        displayed(run, button).await,
        javascript,
        "{}: a copy button only where it can copy",
        run.label
    );
    assert_eq!(
        run.find(Locator::Css("#snippet-1")).await.css_value("user-select").await.unwrap(),
        "all",
        "{}: a click selects the whole snippet",
        run.label
    );
    if javascript {
        run.find(Locator::Css(button)).await.click().await.unwrap();
        let started = std::time::Instant::now();
        loop {
            let label = run.text(button).await;
            if label == "Copied" || label == "Press Ctrl+C" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{}: the copy button said nothing",
                run.label
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn settings(run: &mut Run<'_>) {
    run.go("/settings").await;
    let urls = value(run, "ollama_urls").await;
    run.fill("ollama_urls", "not a url").await;
    let long_model = "m".repeat(300);
    run.fill("anthropic_default_model", &long_model).await;
    run.click_button("Save").await;
    run.find(Locator::Id("ollama_urls-error")).await;
    run.find(Locator::Id("anthropic_default_model-error")).await;
    assert_eq!(value(run, "ollama_urls").await, "not a url", "{}: the typed URLs are kept", run.label);
    assert_eq!(
        value(run, "anthropic_default_model").await,
        long_model,
        "{}: the typed model is kept",
        run.label
    );
    assert_eq!(
        run.find(Locator::Id("anthropic_default_model"))
            .await
            .attr("aria-describedby")
            .await
            .unwrap()
            .as_deref(),
        Some("anthropic_default_model-error")
    );
    run.shot("settings-errors").await;
    // Nothing was saved.
    run.go("/settings").await;
    assert_eq!(value(run, "ollama_urls").await, urls, "{}: a refused form changes nothing", run.label);
}

async fn value(run: &Run<'_>, id: &str) -> String {
    run.find(Locator::Id(id)).await.prop("value").await.unwrap().unwrap_or_default()
}
