//! The console in a real headless Chromium over WebDriver (Debian's chromium
//! and chromium-driver), at a desktop's 1366x900 and a phone's 390x844, each
//! with JavaScript on and off (the phone with JavaScript in dark mode): log
//! in, create a key and read its secret once, edit it, deactivate, rotate,
//! delete, log out, and the rest of the console. With JavaScript on, every
//! page is checked by axe-core (tests/vendor/axe.min.js) and must have no
//! violations, in light mode at desktop size and dark mode at phone size; on
//! the phone no page may scroll sideways as a whole. A screenshot of every page
//! goes to target/screenshots/.

#[path = "browser/screen.rs"]
mod screen;

use testkit::{gate, mock_ollama};

#[path = "browser/models.rs"]
mod models;
#[path = "browser/usage.rs"]
mod usage;

use fantoccini::{Client, ClientBuilder, Locator};
use gate::*;
use mock_ollama::MockOllama;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    let found = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("no chromedriver: .ci/run installs Debian's chromium and chromium-driver");
        }
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
    }
    found
}

async fn start_driver(binary: &Path) -> (Driver, u16) {
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "chromedriver did not start");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    (Driver(child), port)
}

/// One way of looking at the console.
#[derive(Clone, Copy)]
struct Screen {
    label: &'static str,
    width: u32,
    height: u32,
    javascript: bool,
    dark: bool,
}

impl Screen {
    const ALL: [Screen; 4] = [
        Screen { label: "desktop-js", width: 1366, height: 900, javascript: true, dark: false },
        Screen { label: "desktop-nojs", width: 1366, height: 900, javascript: false, dark: false },
        Screen { label: "phone-js-dark", width: 390, height: 844, javascript: true, dark: true },
        Screen { label: "phone-nojs", width: 390, height: 844, javascript: false, dark: false },
    ];

    fn phone(self) -> bool {
        self.width < 600
    }
}

async fn browser(driver_port: u16, screen: Screen, profile: &Path) -> Client {
    let javascript = screen.javascript;
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--no-first-run".into(),
        "--disable-sync".into(),
        "--hide-scrollbars".into(),
        format!("--window-size={},{}", screen.width, screen.height),
        format!("--user-data-dir={}", profile.display()),
    ];
    if screen.dark {
        // Blink's preferred colour scheme: 0 is dark.
        args.push("--blink-settings=preferredColorScheme=0".into());
        args.push("--force-dark-mode".into());
    }
    let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
    if screen.phone() {
        // A window cannot be narrower than 500 px: the phone's viewport is
        // emulated. Without touch: emulated taps crawl with JavaScript off.
        options["mobileEmulation"] = json!({"deviceMetrics": {"width": screen.width, "height": screen.height, "pixelRatio": 2.0, "touch": false}});
    }
    // Downloads land in the profile's downloads/ without asking.
    let mut prefs = json!({
        "download.default_directory": profile.join("downloads").display().to_string(),
        "download.prompt_for_download": false,
    });
    if !javascript {
        prefs["profile.managed_default_content_settings.javascript"] = json!(2);
    }
    options["prefs"] = prefs;
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session")
}

pub(crate) struct Run<'a> {
    c: Client,
    base: String,
    label: &'a str,
    screen: Screen,
    shots: PathBuf,
    count: usize,
    downloads: PathBuf,
}

const AXE: &str = include_str!("vendor/axe.min.js");

impl Run<'_> {
    /// Checks the page as it is now (axe-core; on a phone, no sideways
    /// scrolling of the whole page) and saves a screenshot of it.
    async fn shot(&mut self, name: &str) {
        self.count += 1;

        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{}-{:02}-{name}.png", self.label, self.count)), png).unwrap();
        // WebDriver's scripts run only where the page's may: with JavaScript
        // off the same pages were checked already with it on.
        if !self.screen.javascript {
            return;
        }
        self.accessible(name).await;
        if self.screen.phone() {
            let wide = self
                .c
                .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
                .await
                .unwrap();
            let (page, window) = (wide[0].as_i64().unwrap(), wide[1].as_i64().unwrap());
            assert!(
                page <= window,
                "{}: {name} scrolls sideways on a phone ({page} > {window} px)",
                self.label
            );
        }
    }

    /// axe-core on the page: WCAG 2.1 A and AA and best practice, no violations.
    async fn accessible(&self, name: &str) {
        let script = format!(
            "{AXE}\nconst done = arguments[arguments.length - 1];\n\
             axe.run(document, {{ runOnly: {{ type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }} }})\n\
             .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', '))))\n\
             .catch(e => done(['axe failed: ' + e]));"
        );
        let found = match self.c.execute_async(&script, vec![]).await {
            Ok(found) => found,
            Err(e) => panic!("{}: axe-core did not run on {name}: {e}", self.label),
        };
        let found: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(
            found.is_empty(),
            "{}: {name} has accessibility violations:\n{}",
            self.label,
            found.join("\n")
        );
    }

    async fn go(&mut self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn wait_path(&self, part: &str) {
        let started = Instant::now();
        loop {
            let url = self.c.current_url().await.unwrap();
            let here = format!("{}{}", url.path(), url.query().map(|q| format!("?{q}")).unwrap_or_default());
            if here.contains(part) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{}: never reached {part}, at {here}",
                self.label
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Finds an element, waiting for the page that holds it to load.
    async fn find(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        let what = format!("{locator:?}");
        match self.c.wait().at_most(Duration::from_secs(10)).for_element(locator).await {
            Ok(element) => element,
            Err(e) => panic!(
                "{}: no {what} on {:?}: {e}\n{}",
                self.label,
                self.c.current_url().await.ok(),
                self.body().await
            ),
        }
    }

    async fn click_button(&self, text: &str) {
        let xpath = format!("//button[normalize-space()='{text}']");
        self.find(Locator::XPath(&xpath)).await.click().await.unwrap();
    }

    async fn click_link(&self, text: &str) {
        self.find(Locator::LinkText(text)).await.click().await.unwrap();
    }

    async fn fill(&self, id: &str, value: &str) {
        let field = self.find(Locator::Id(id)).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// The element's text; found again when htmx swapped it between the
    /// finding and the reading (a stale element).
    async fn text(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            match self.find(Locator::Css(css)).await.text().await {
                Ok(text) => return text,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("{}: reading {css} again: {e}", self.label);
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{}: {css} could not be read: {e}", self.label),
            }
        }
    }

    async fn body(&self) -> String {
        self.c.source().await.unwrap()
    }
}

async fn status_of(gate: &Gate, key: &str) -> u16 {
    gate.generate(key, "llama3").await.0
}

async fn key_count(gate: &Gate) -> usize {
    let listed = gate.admin("GET", "/api-keys", None).await;
    let keys = listed.as_array().or_else(|| listed["keys"].as_array()).or_else(|| listed["data"].as_array());
    keys.unwrap_or_else(|| panic!("no key list in {listed}")).len()
}

/// Neither the page nor htmx's history cache (sessionStorage, localStorage)
/// holds the secret.
async fn assert_secret_kept_nowhere(run: &Run<'_>, secret: &str, when: &str) {
    assert!(!run.body().await.contains(secret), "{when}: the page shows the secret");
    let stored = run
        .c
        .execute(
            "const all = {}; for (const s of [sessionStorage, localStorage]) \
             for (let i = 0; i < s.length; i++) all[s.key(i)] = s.getItem(s.key(i)); \
             return JSON.stringify(all);",
            vec![],
        )
        .await
        .unwrap();
    let stored = stored.as_str().unwrap_or_default().to_owned();
    assert!(!stored.contains(secret), "{when}: browser storage holds the secret: {stored}");
}

/// A reload of a secret page shows nothing and repeats nothing.
async fn reload_secret_page(run: &mut Run<'_>, gate: &Gate, secret: &str) {
    let keys = key_count(gate).await;
    run.c.refresh().await.unwrap();
    run.find(Locator::Id("secret-gone")).await;
    assert!(!run.body().await.contains(secret), "a reload shows the secret again");
    assert_eq!(key_count(gate).await, keys, "a reload of the secret page made another key");
    assert_eq!(status_of(gate, secret).await, 200, "a reload of the secret page rotated the key again");
    run.shot("secret-reloaded").await;
}

/// JavaScript on: leave the secret page by a boosted link (htmx would keep a
/// snapshot of it), then go Back to it.
async fn back_to_secret_page(run: &mut Run<'_>, secret: &str) {
    run.click_link("Go to the key").await;
    run.find(Locator::Id("daily_tokens")).await;
    assert_secret_kept_nowhere(run, secret, "on the key's page").await;
    run.c.back().await.unwrap();
    run.wait_path("/secret").await;
    run.find(Locator::Id("secret-gone")).await;
    assert_secret_kept_nowhere(run, secret, "after Back").await;
    run.shot("secret-after-back").await;
}

/// JavaScript on: errors that are not form errors get a visible banner.
async fn errors_are_shown(run: &mut Run<'_>, gate: &Gate) {
    // A stale CSRF token: 403, shown, and nothing changed.
    let created = gate.admin("POST", "/api-keys", Some(json!({"name": "stale-csrf"}))).await;
    let (id, key) = (created["id"].as_i64().unwrap(), created["key"].as_str().unwrap().to_owned());
    run.go(&format!("/keys/{id}")).await;
    run.find(Locator::Id("daily_tokens")).await;
    run.c
        .execute(
            "document.querySelectorAll('input[name=csrf_token]').forEach(i => { i.value = 'stale'; });",
            vec![],
        )
        .await
        .unwrap();
    run.click_button("Deactivate").await;
    let banner = run.text("#request-error").await;
    assert!(banner.contains("403") && banner.contains("CSRF"), "{banner}");
    assert_eq!(status_of(gate, &key).await, 200, "a refused request changed the key");
    run.shot("error-stale-csrf").await;

    // A key deleted meanwhile: 404, shown.
    run.go(&format!("/keys/{id}")).await;
    run.find(Locator::Id("daily_tokens")).await;
    gate.admin("DELETE", &format!("/api-keys/{id}"), None).await;
    run.click_button("Rotate secret").await;
    let banner = run.text("#request-error").await;
    assert!(banner.contains("404"), "{banner}");
    run.shot("error-deleted-meanwhile").await;
}

/// The CSV export is a download, with JavaScript on as with it off.
async fn csv_downloads(run: &mut Run<'_>) {
    run.go("/usage").await;
    run.click_link("Export CSV").await;
    let file = run.downloads.join("ollama-gate-usage.csv");
    let started = Instant::now();
    while !file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}: no CSV download in {:?}",
            run.label,
            run.downloads
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("time,key_id,key_name,model,"), "{text}");
    assert!(run.body().await.contains("Export CSV"), "the usage page stays in place");
}

/// A team, a user in it with a key, their pages, usage per team, and
/// deleting the user while the key works on.
async fn people(run: &mut Run<'_>, gate: &Gate, javascript: bool) {
    let team = format!("physics {}", run.label);
    let user = format!("ana {}", run.label);
    run.go("/teams/new").await;
    run.fill("name", &team).await;
    run.fill("daily_requests", "50").await;
    run.fill("model_limits", "llama3 daily_tokens=100000").await;
    run.click_button("Create team").await;
    run.wait_path("notice=saved").await;
    run.shot("team-created").await;

    run.click_link(&format!("New user in {team}")).await;
    run.wait_path("/users/new").await;
    run.fill("name", &user).await;
    run.fill("email", "ana@example.org").await;
    let chosen = run.find(Locator::Id("team_id")).await.prop("value").await.unwrap();
    assert_ne!(chosen.as_deref(), Some(""), "the team's link chose the team");
    run.fill("daily_tokens", "20000").await;
    run.click_button("Create user").await;
    run.wait_path("notice=saved").await;
    run.shot("user-created").await;

    run.click_link(&format!("New key for {user}")).await;
    run.wait_path("/keys/new").await;
    run.fill("name", &format!("laptop of {user}")).await;
    run.click_button("Create key").await;
    let secret = run.text("#secret").await;
    assert_eq!(status_of(gate, &secret).await, 200);
    run.click_link("Go to the key").await;
    run.wait_path("/keys/").await;
    run.click_link(&user).await;
    run.wait_path("/users/").await;
    let page = run.body().await;
    assert!(page.contains(&format!("laptop of {user}")) && page.contains("tokens today"), "{page}");
    run.shot("user-detail").await;
    run.click_link(&team).await;
    run.wait_path("/teams/").await;
    assert!(run.text("table.members").await.contains(&user));
    run.shot("team-detail").await;

    if javascript {
        // htmx: the users filter updates the table in place.
        run.go("/users").await;
        run.fill("q", "nobody-by-this-name").await;
        let started = Instant::now();
        while !run.text("#users-table").await.contains("No users match") {
            assert!(started.elapsed() < Duration::from_secs(5), "the htmx filter did not update the table");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    run.go("/usage?group_by=team").await;
    assert!(run.text("table.usage-groups").await.contains(&team));
    run.shot("usage-per-team").await;

    run.go("/users").await;
    run.click_link(&user).await;
    run.wait_path("/users/").await;
    run.click_link("Delete…").await;
    run.wait_path("/delete").await;
    run.click_button("Delete the user").await;
    run.wait_path("notice=user-deleted").await;
    assert_eq!(status_of(gate, &secret).await, 200, "the key works on without its user");
    run.shot("user-deleted").await;
}

/// The Backends page: the spare (nothing listens there) shows as down with
/// why, and draining the main one from its button takes it out of new work.
async fn backends(run: &mut Run<'_>, gate: &Gate) {
    run.go("/backends").await;
    let started = Instant::now();
    while !run.text("table").await.contains("down") {
        assert!(started.elapsed() < Duration::from_secs(10), "the spare never showed as down");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        run.go("/backends").await;
    }
    let table = run.text("table").await;
    assert!(table.contains("main") && table.contains("spare") && table.contains("up"), "{table}");
    run.shot("backends").await;
    run.click_button("Drain").await;
    run.wait_path("notice=saved").await;
    assert!(run.text("table").await.contains("draining"));
    let settings = gate.admin("GET", "/settings", None).await;
    assert_eq!(settings["backends"][0]["draining"], true, "{settings}");
    run.shot("backend-draining").await;
    run.click_button("Stop draining").await;
    // The address says notice=saved already: wait for the page that follows.
    let started = Instant::now();
    while run.text("table").await.contains("draining") {
        assert!(started.elapsed() < Duration::from_secs(10), "{}: the backend still drains", run.label);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let settings = gate.admin("GET", "/settings", None).await;
    assert_eq!(settings["backends"][0]["draining"], false);
}

async fn walk_through(run: &mut Run<'_>, gate: &Gate, javascript: bool) {
    run.go("/keys").await;
    run.wait_path("/login").await;
    run.shot("login").await;
    run.fill("password", PASSWORD).await;
    run.click_button("Log in").await;
    // Waits for the dashboard itself: "/" is also part of "/login".
    run.find(Locator::XPath("//h1[normalize-space()='Dashboard']")).await;
    assert!(run.body().await.contains("Tokens per day"));
    run.shot("dashboard").await;

    run.go("/keys/new").await;
    run.fill("name", &format!("e2e <b>{}</b>", run.label)).await;
    run.fill("owner", "browser").await;
    run.fill("daily_requests", "100").await;
    run.shot("key-new").await;
    run.click_button("Create key").await;
    let secret = run.text("#secret").await;
    assert!(secret.starts_with("sk-og-"), "{secret}");
    run.shot("key-secret").await;
    assert_eq!(status_of(gate, &secret).await, 200);
    if javascript {
        back_to_secret_page(run, &secret).await;
    }
    reload_secret_page(run, gate, &secret).await;

    if javascript {
        run.c.execute("window.stillHere = true;", vec![]).await.unwrap();
    }
    run.click_link("Go to the key").await;
    run.wait_path("/keys/").await;
    run.find(Locator::Id("daily_tokens")).await;
    if javascript {
        let kept = run.c.execute("return window.stillHere === true;", vec![]).await.unwrap();
        assert_eq!(kept, json!(true), "htmx swapped the page in place instead of loading it");
    }
    let detail = run.body().await;
    assert!(!detail.contains(&secret), "the secret is shown only once");
    assert!(
        detail.contains("&lt;b&gt;") || detail.contains("&#60;b&#62;") || !detail.contains("<b>e2e"),
        "the name is escaped"
    );
    run.shot("key-detail").await;

    run.fill("daily_tokens", "5000").await;
    run.fill("allowed_ips", "10.0.0.0/8").await;
    run.click_button("Save").await;
    run.wait_path("notice=saved").await;
    assert_eq!(
        run.find(Locator::Id("daily_tokens")).await.prop("value").await.unwrap().as_deref(),
        Some("5000")
    );
    assert_eq!(status_of(gate, &secret).await, 403, "loopback is not an allowed address");
    run.fill("allowed_ips", "127.0.0.1\n::1").await;
    run.click_button("Save").await;
    run.wait_path("notice=saved").await;
    assert_eq!(status_of(gate, &secret).await, 200);
    run.shot("key-saved").await;

    run.click_button("Deactivate").await;
    run.wait_path("notice=deactivated").await;
    assert_eq!(status_of(gate, &secret).await, 401);
    run.shot("key-deactivated").await;
    run.click_button("Activate").await;
    run.wait_path("notice=activated").await;

    run.click_button("Rotate secret").await;
    run.wait_path("/rotate").await;
    assert!(run.text("#rotate-warning").await.contains("stops working"));
    assert_eq!(status_of(gate, &secret).await, 200, "asking first changed nothing");
    run.shot("key-rotate-confirm").await;
    run.click_button("Rotate the secret").await;
    let rotated = run.text("#secret").await;
    assert!(rotated.starts_with("sk-og-") && rotated != secret);
    assert_eq!(status_of(gate, &secret).await, 401);
    assert_eq!(status_of(gate, &rotated).await, 200);
    run.shot("key-rotated").await;
    if javascript {
        back_to_secret_page(run, &rotated).await;
    }
    reload_secret_page(run, gate, &rotated).await;

    // Again, with a day's grace: both secrets work until the old one is stopped.
    run.click_link("Go to the key").await;
    run.wait_path("/keys/").await;
    run.click_button("Rotate secret").await;
    run.wait_path("/rotate").await;
    run.find(Locator::Id("grace_seconds")).await.select_by_value("86400").await.unwrap();
    run.click_button("Rotate the secret").await;
    let newest = run.text("#secret").await;
    assert_eq!((status_of(gate, &rotated).await, status_of(gate, &newest).await), (200, 200));
    run.click_link("Go to the key").await;
    run.wait_path("/keys/").await;
    assert!(run.text("#previous-secret").await.contains("keeps working until"));
    run.shot("key-previous-secret").await;
    run.click_button("Stop the previous secret now").await;
    run.wait_path("notice=grace-ended").await;
    assert_eq!((status_of(gate, &rotated).await, status_of(gate, &newest).await), (401, 200));

    run.click_link("Delete…").await;
    run.wait_path("/delete").await;
    run.shot("key-delete-confirm").await;
    run.click_button("Delete the key").await;
    run.wait_path("notice=deleted").await;
    assert_eq!(status_of(gate, &rotated).await, 401);
    run.shot("keys").await;

    if javascript {
        // htmx: the filter updates the table in place, without a page load.
        let created = gate.admin("POST", "/api-keys", Some(json!({"name": "findable"}))).await;
        assert!(created["key"].is_string());
        run.go("/keys").await;
        run.fill("q", "findab").await;
        let started = Instant::now();
        while !run.text("#keys-table").await.contains("findable")
            || run.text("#keys-table").await.contains("e2e")
        {
            assert!(started.elapsed() < Duration::from_secs(5), "the htmx filter did not update the table");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        run.shot("keys-filtered").await;
    }

    people(run, gate, javascript).await;
    backends(run, gate).await;
    screen::check(run, gate, javascript).await;
    models::check(run, gate, javascript).await;

    for (path, name) in
        [("/usage", "usage"), ("/models", "models"), ("/settings", "settings"), ("/connect", "connect")]
    {
        run.go(path).await;
        run.shot(name).await;
    }
    assert!(run.body().await.contains("ANTHROPIC_BASE_URL"));

    usage::check(run, gate, javascript).await;
    csv_downloads(run).await;
    if javascript {
        errors_are_shown(run, gate).await;
    }

    if javascript {
        let seen = run.c.execute("return sessionStorage.getItem('csp-violations');", vec![]).await.unwrap();
        assert!(seen.is_null() || seen == json!("[]"), "Content-Security-Policy violations: {seen}");
    }
    run.click_button("Log out").await;
    run.wait_path("/login").await;
    run.go("/").await;
    run.wait_path("/login").await;
}

#[actix_web::test]
async fn the_console_works_in_chromium_with_and_without_javascript() {
    let Some(driver_binary) = chromedriver() else { return };
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A second backend where nothing listens: the Backends page shows it down.
    let upstreams = format!("{}?name=main&slots=4,http://127.0.0.1:9?name=spare", mock.url);
    let mut gate = Gate::new(dir.path(), &upstreams);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    let mut child = gate.spawn("gate.log");
    gate.wait_ready(&mut child).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (_driver, driver_port) = start_driver(&driver_binary).await;
    for screen in Screen::ALL {
        let javascript = screen.javascript;
        let profile = tempfile::tempdir().unwrap();
        let c = browser(driver_port, screen, profile.path()).await;
        let mut run = Run {
            c,
            base: format!("http://127.0.0.1:{}", gate.admin_port()),
            label: screen.label,
            screen,
            shots: shots.clone(),
            count: 0,
            downloads: profile.path().join("downloads"),
        };
        walk_through(&mut run, &gate, javascript).await;
        run.c.close().await.unwrap();
    }
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}
