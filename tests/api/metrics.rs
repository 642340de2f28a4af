//! `GET /metrics`: what it counts matches the usage rows and the refusals,
//! its token guards it, and no client can make its series grow.

use crate::helpers::{send, spawn_app, spawn_app_with, Options, Reply, TestApp, ADMIN_PASSWORD};
use awc::http::StatusCode;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One sample of the text exposition: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The exposition format's samples; comments and blank lines are skipped.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample line: {line}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = inner.find("=\"")?;
            let label = inner[..eq].trim_start_matches(',').to_owned();
            let mut value = String::new();
            let mut chars = inner[eq + 2..].char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(label, value);
            inner = inner[eq + 2 + end + 1..].trim_start_matches(',');
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

struct Scrape(Vec<Sample>);

impl Scrape {
    /// The samples of `name` whose labels include every pair of `with`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.0.iter().filter(move |s| {
            s.name == name && with.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.matching(name, with).map(|s| s.value).sum()
    }

    fn values_of(&self, name: &str, label: &str) -> BTreeSet<String> {
        self.matching(name, &[]).filter_map(|s| s.labels.get(label).cloned()).collect()
    }
}

fn scrape_request(app: &TestApp, token: Option<&str>) -> awc::ClientRequest {
    let request = app.client.get(format!("{}/metrics", app.admin));
    match token {
        Some(t) => request.insert_header(("authorization", format!("Bearer {t}"))),
        None => request,
    }
}

async fn scrape_with(app: &TestApp, token: Option<&str>) -> Scrape {
    let reply = send(scrape_request(app, token), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.header("content-type").unwrap_or_default().starts_with("text/plain"));
    Scrape(parse(&reply.text()))
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_with(app, None).await
}

/// Scrapes until `ready` holds: a settlement's timing is recorded just after
/// its row is written.
async fn scrape_until(app: &TestApp, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let scraped = scrape(app).await;
        if ready(&scraped) {
            return scraped;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the metrics never reached the expected state");
}

/// The backend's first probe has listed its models, so they label as themselves.
async fn probed(app: &TestApp) {
    for _ in 0..300 {
        if app.state.upstreams.pool().backends.iter().all(|b| b.lists("llama3:latest")) {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the backend was never probed");
}

/// What `outcome` a usage row's status is counted under.
fn verdict_of(status: &str) -> &'static str {
    match status {
        "ok" => "ok",
        "upstream_error" | "upstream_failed" | "upstream_timeout" | "upstream_unreachable" => {
            "upstream_error"
        }
        "client_aborted" | "not_forwarded" => "client_aborted",
        "stream_too_long" | "key_revoked" => "cut_off",
        other => panic!("unexpected usage status {other}"),
    }
}

/// The mock's models label as themselves; anything else is `other`.
fn model_label(model: &str) -> &str {
    match model {
        "llama3:latest" | "qwen3:8b" | "mistral:latest" => model,
        _ => "other",
    }
}

async fn hang_up_mid_stream(app: &TestApp, key: &str) {
    let mut response = app
        .proxy_request("POST", "/api/generate", Some(key))
        .send_body(json!({"model": "slow", "prompt": "one two three"}).to_string())
        .await
        .unwrap();
    let mut lines = 0;
    while lines < 3 {
        let chunk = response.next().await.unwrap().unwrap();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    drop(response);
}

#[actix_web::test]
async fn the_counters_equal_the_usage_rows_and_the_refusals() {
    let app = spawn_app().await;
    probed(&app).await;
    let (key, open) = app.create_key(json!({"name": "open"})).await;
    assert_eq!(app.generate(&key, "llama3", true).await.status, StatusCode::OK);
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let chat = json!({"model": "qwen3:8b", "messages": [{"role": "user", "content": "one two"}]});
    assert_eq!(app.post("/v1/chat/completions", Some(&key), chat).await.status, StatusCode::OK);
    assert_eq!(app.generate(&key, "missing", false).await.status, StatusCode::NOT_FOUND);
    app.generate(&key, "broken", true).await;
    hang_up_mid_stream(&app, &key).await;
    assert_eq!(app.generate("sk-og-not-a-key", "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    let (only_qwen, narrow) = app.create_key(json!({"name": "narrow", "models": ["qwen3:8b"]})).await;
    assert_eq!(app.generate(&only_qwen, "llama3", false).await.status, StatusCode::FORBIDDEN);
    let (once, limited) = app.create_key(json!({"name": "once", "limits": {"daily_requests": 1}})).await;
    assert_eq!(app.generate(&once, "llama3", false).await.status, StatusCode::OK);
    assert_eq!(app.generate(&once, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);

    let mut rows: Vec<(String, Value)> = Vec::new();
    for record in [&open, &narrow, &limited] {
        app.settled(&record["id"]).await;
        let id = record["id"].to_string();
        rows.extend(app.usage_rows(&record["id"]).await.into_iter().map(|r| (id.clone(), r)));
    }
    assert_eq!(rows.len(), 7, "{rows:?}");
    let settled = rows.len() as f64;
    let m = scrape_until(&app, |m| {
        m.sum("ollama_gate_db_transaction_seconds_count", &[("op", "settlement")]) >= settled
    })
    .await;

    // Each usage row is one request, under its route, model, key and outcome.
    let mut expected: BTreeMap<(String, String, String, String), f64> = BTreeMap::new();
    for (key_id, row) in &rows {
        let labels = (
            row["route"].as_str().unwrap().to_owned(),
            model_label(row["model"].as_str().unwrap()).to_owned(),
            key_id.clone(),
            verdict_of(row["status"].as_str().unwrap()).to_owned(),
        );
        *expected.entry(labels).or_default() += 1.0;
    }
    // The refusals: no key at all, a model outside the allow-list (refused
    // before the model is labelled), and a spent quota (after).
    let refusals =
        [(String::new(), ""), (narrow["id"].to_string(), ""), (limited["id"].to_string(), "llama3:latest")];
    for (key_id, model) in refusals {
        let labels = ("/api/generate".to_owned(), model.to_owned(), key_id, "refused".to_owned());
        *expected.entry(labels).or_default() += 1.0;
    }
    let mut counted: BTreeMap<(String, String, String, String), f64> = BTreeMap::new();
    for s in m.matching("ollama_gate_requests_total", &[]) {
        let l = |name: &str| s.labels.get(name).cloned().unwrap_or_default();
        counted.insert((l("route"), l("model"), l("key"), l("outcome")), s.value);
    }
    assert_eq!(counted, expected);

    for reason in ["unauthenticated", "forbidden", "quota"] {
        assert_eq!(m.sum("ollama_gate_refusals_total", &[("reason", reason)]), 1.0, "{reason}");
    }
    assert_eq!(m.sum("ollama_gate_refusals_total", &[]), 3.0);
    assert_eq!(m.sum("ollama_gate_requests_total", &[("outcome", "refused")]), 3.0);

    // The tokens are the rows' sums, per key and model.
    for (key_id, row) in &rows {
        let model = model_label(row["model"].as_str().unwrap());
        for (kind, field) in [("prompt", "prompt_tokens"), ("completion", "completion_tokens")] {
            let from_rows: i64 = rows
                .iter()
                .filter(|(k, r)| k == key_id && model_label(r["model"].as_str().unwrap()) == model)
                .map(|(_, r)| r[field].as_i64().unwrap())
                .sum();
            let labels = [("key", key_id.as_str()), ("model", model), ("kind", kind)];
            assert_eq!(m.sum("ollama_gate_tokens_total", &labels), from_rows as f64, "{labels:?}");
        }
    }
    assert!(m.sum("ollama_gate_tokens_total", &[("kind", "completion")]) > 0.0);

    // One duration per request; the first byte and the overhead once per
    // forwarded request (every admitted one here got an answer with a body).
    for route in m.values_of("ollama_gate_requests_total", "route") {
        let requests = m.sum("ollama_gate_requests_total", &[("route", &route)]);
        let durations = m.sum("ollama_gate_request_duration_seconds_count", &[("route", &route)]);
        assert_eq!(durations, requests, "{route}");
        let forwarded = rows.iter().filter(|(_, r)| r["route"] == route.as_str()).count() as f64;
        for histogram in
            ["ollama_gate_time_to_first_byte_seconds_count", "ollama_gate_overhead_seconds_count"]
        {
            assert_eq!(m.sum(histogram, &[("route", &route)]), forwarded, "{histogram} {route}");
        }
        let inf = m.sum("ollama_gate_request_duration_seconds_bucket", &[("route", &route), ("le", "+Inf")]);
        assert_eq!(inf, requests, "{route}");
    }
    assert_eq!(m.sum("ollama_gate_db_transaction_seconds_count", &[("op", "settlement")]), settled);
    // Every admission that reached the database, the refused one included.
    assert!(m.sum("ollama_gate_db_transaction_seconds_count", &[("op", "admission")]) >= settled + 1.0);
    assert!(m.sum("ollama_gate_db_transaction_seconds_count", &[("op", "batch")]) >= 1.0);
    assert!(m.sum("process_resident_memory_bytes", &[]) > 0.0);
}

async fn status_of(app: &TestApp, token: Option<&str>) -> Reply {
    send(scrape_request(app, token), None).await
}

#[actix_web::test]
async fn with_a_metrics_token_the_scrape_needs_it_or_the_admin_password() {
    let env = vec![("METRICS_TOKEN", "scrape-secret-42".to_string())];
    let app = spawn_app_with(Options { env, ..Default::default() }).await;
    for wrong in [None, Some("scrape-secret-4"), Some("scrape-secret-42x"), Some("")] {
        let reply = status_of(&app, wrong).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"), "{wrong:?}");
        assert!(!reply.text().contains("ollama_gate_"), "{wrong:?}");
    }
    for right in ["scrape-secret-42", ADMIN_PASSWORD] {
        let reply = status_of(&app, Some(right)).await;
        assert_eq!(reply.status, StatusCode::OK, "{right}");
        assert!(!parse(&reply.text()).is_empty());
    }
}

#[actix_web::test]
async fn without_a_metrics_token_the_scrape_is_open_and_never_sent_to_the_login_page() {
    let app = spawn_app().await;
    let reply = status_of(&app, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("location").is_none());
    // Counters show once something is counted; the backends and the process always.
    let m = Scrape(parse(&reply.text()));
    assert_eq!(m.matching("ollama_gate_upstream_up", &[]).count(), 1);
    assert!(m.sum("process_start_time_seconds", &[]) > 0.0);
}

#[actix_web::test]
async fn with_metrics_key_label_false_no_series_names_a_key() {
    let env = vec![("METRICS_KEY_LABEL", "false".to_string())];
    let app = spawn_app_with(Options { env, ..Default::default() }).await;
    let (key, record) = app.create_key(json!({"name": "anonymous"})).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    app.settled(&record["id"]).await;
    let m = scrape(&app).await;
    for name in ["ollama_gate_requests_total", "ollama_gate_tokens_total"] {
        let samples: Vec<_> = m.matching(name, &[]).collect();
        assert!(!samples.is_empty(), "{name}");
        assert!(samples.iter().all(|s| !s.labels.contains_key("key")), "{samples:?}");
    }
    assert_eq!(m.sum("ollama_gate_requests_total", &[("route", "/api/generate"), ("outcome", "ok")]), 1.0);
}

#[actix_web::test]
async fn the_backend_gauges_show_a_running_request_and_a_backend_that_is_down() {
    let app = spawn_app().await;
    let backend = app.state.upstreams.pool().backends[0].spec.name.clone();
    let on = |m: &Scrape, name: &str| m.sum(name, &[("backend", &backend)]);
    let m = scrape(&app).await;
    assert_eq!(on(&m, "ollama_gate_upstream_up"), 1.0);
    assert_eq!(on(&m, "ollama_gate_in_flight"), 0.0);
    assert_eq!(on(&m, "ollama_gate_queue_length"), 0.0);

    let (key, record) = app.create_key(json!({"name": "streaming"})).await;
    let mut response = app
        .proxy_request("POST", "/api/generate", Some(&key))
        .send_body(json!({"model": "slow", "prompt": "one"}).to_string())
        .await
        .unwrap();
    response.next().await.unwrap().unwrap();
    assert_eq!(on(&scrape(&app).await, "ollama_gate_in_flight"), 1.0);
    drop(response);
    app.settled(&record["id"]).await;
    assert_eq!(on(&scrape(&app).await, "ollama_gate_in_flight"), 0.0);

    // A request that cannot connect takes the backend out at once.
    app.mock.stop().await;
    let failed = app.generate(&key, "llama3", false).await;
    assert!(failed.status.is_server_error(), "{}", failed.status);
    // Or, had a kept-alive connection hidden it, the probes within seconds.
    let m = scrape_until(&app, |m| on(m, "ollama_gate_upstream_up") == 0.0).await;
    assert_eq!(m.sum("ollama_gate_requests_total", &[("outcome", "upstream_error")]), 1.0);
}

fn random_name(rng: &mut impl Rng) -> String {
    (0..rng.gen_range(8..40)).map(|_| char::from(rng.gen_range(b'a'..=b'z'))).collect()
}

#[actix_web::test]
async fn random_model_names_and_paths_add_no_series() {
    let app = spawn_app().await;
    probed(&app).await;
    let (key, record) = app.create_key(json!({"name": "inventive"})).await;
    let mut rng = rand::thread_rng();
    for _ in 0..40 {
        let model = format!("{}:{}", random_name(&mut rng), random_name(&mut rng));
        assert_eq!(app.generate(&key, &model, false).await.status, StatusCode::OK);
        let path = format!("/api/{}", random_name(&mut rng));
        assert!(app.get(&path, Some(&key)).await.status.is_client_error(), "{path}");
        let path = format!("/v1/{}/{}", random_name(&mut rng), random_name(&mut rng));
        assert!(app.post(&path, None, json!({"model": model})).await.status.is_client_error(), "{path}");
    }
    app.settled(&record["id"]).await;
    let m = scrape(&app).await;
    assert_eq!(m.sum("ollama_gate_requests_total", &[]), 120.0);
    let routes = m.values_of("ollama_gate_requests_total", "route");
    assert_eq!(routes, ["/api/generate", "unmatched"].map(String::from).into());
    let models = m.values_of("ollama_gate_requests_total", "model");
    assert_eq!(models, ["", "other"].map(String::from).into());
    assert!(m.matching("ollama_gate_requests_total", &[]).count() <= 4);
    assert!(m.matching("ollama_gate_tokens_total", &[]).count() <= 2);
    assert!(m.values_of("ollama_gate_request_duration_seconds_count", "route").len() <= 2);
}

#[actix_web::test]
async fn a_request_waiting_for_the_one_slot_shows_in_the_queue_gauge() {
    let mock = crate::mock_ollama::MockOllama::start().await;
    let upstream = format!("{}?name=gpu&slots=1", mock.url);
    let mut app = spawn_app_with(Options { upstream: Some(upstream), ..Options::default() }).await;
    app.mock = mock;
    let (key, record) = app.create_key(json!({"name": "patient"})).await;
    let gpu = [("backend", "gpu")];
    let mut replies = Vec::new();
    for _ in 0..2 {
        let request = app
            .proxy_request("POST", "/api/generate", Some(&key))
            .insert_header(("content-type", "application/json"));
        let body = json!({"model": "gated", "prompt": "one", "stream": false}).to_string().into_bytes();
        replies.push(actix_web::rt::spawn(send(request, Some(body))));
    }
    scrape_until(&app, |m| {
        m.sum("ollama_gate_in_flight", &gpu) == 1.0 && m.sum("ollama_gate_queue_length", &gpu) == 1.0
    })
    .await;
    app.mock.open_gate(2);
    for reply in replies {
        assert_eq!(reply.await.unwrap().status, StatusCode::OK);
    }
    app.settled(&record["id"]).await;
    let m = scrape(&app).await;
    assert_eq!(m.sum("ollama_gate_in_flight", &gpu), 0.0);
    assert_eq!(m.sum("ollama_gate_queue_length", &gpu), 0.0);
    assert_eq!(m.sum("ollama_gate_overhead_seconds_count", &[("route", "/api/generate")]), 2.0);
}

#[actix_web::test]
async fn with_the_database_locked_the_scrape_still_answers_and_counts_the_503_as_error() {
    use sqlx::Connection;
    if crate::helpers::postgres_backend().is_some() {
        eprintln!("skipped: holds SQLite's write lock; the PostgreSQL outage tests stop the server");
        return;
    }
    let env = vec![("DB_BUSY_TIMEOUT_MS", "300".to_string())];
    let app = spawn_app_with(Options { env, ..Default::default() }).await;
    let (key, record) = app.create_key(json!({"name": "unlucky"})).await;
    let mut holder = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text());
    let m = scrape(&app).await;
    let id = record["id"].to_string();
    let failed = [("route", "/api/generate"), ("key", id.as_str()), ("outcome", "error")];
    assert_eq!(m.sum("ollama_gate_requests_total", &failed), 1.0);
    assert_eq!(m.sum("ollama_gate_refusals_total", &[]), 0.0);
    assert_eq!(m.sum("ollama_gate_db_transaction_seconds_count", &[("op", "admission")]), 1.0);
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    app.settled(&record["id"]).await;
    let m = scrape(&app).await;
    assert_eq!(m.sum("ollama_gate_requests_total", &[("key", id.as_str()), ("outcome", "ok")]), 1.0);
}

#[actix_web::test]
async fn guessing_the_metrics_token_is_throttled_like_the_admin_password() {
    let env =
        vec![("METRICS_TOKEN", "scrape-secret-42".to_string()), ("LOGIN_MAX_FAILURES", "2".to_string())];
    let app = spawn_app_with(Options { env, ..Default::default() }).await;
    for guess in ["guess-1", "guess-2"] {
        assert_eq!(status_of(&app, Some(guess)).await.status, StatusCode::UNAUTHORIZED, "{guess}");
    }
    assert_eq!(status_of(&app, Some("guess-3")).await.status, StatusCode::TOO_MANY_REQUESTS);
    // The scraper that holds the token is not locked out by someone else's guesses.
    assert_eq!(status_of(&app, Some("scrape-secret-42")).await.status, StatusCode::OK);
}

/// The names in an expression of the Grafana dashboard: `ollama_gate_*` and `process_*`.
fn dashboard_metric_names() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/dashboards/ollama-gate.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices(['o', 'p']) {
                let rest = &expr[start..];
                if !(rest.starts_with("ollama_gate_") || rest.starts_with("process_")) {
                    continue;
                }
                if start > 0 && expr.as_bytes()[start - 1].is_ascii_alphanumeric() {
                    continue;
                }
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                names.insert(rest[..end].to_owned());
            }
        }
    }
    names
}

#[actix_web::test]
async fn every_metric_the_grafana_dashboard_reads_is_exported() {
    let names = dashboard_metric_names();
    assert!(names.len() >= 12, "{names:?}");
    let app = spawn_app().await;
    probed(&app).await;
    let (key, record) = app.create_key(json!({"name": "dash"})).await;
    assert_eq!(app.generate(&key, "llama3", true).await.status, StatusCode::OK);
    assert_eq!(app.generate("sk-og-not-a-key", "llama3", false).await.status, StatusCode::UNAUTHORIZED);
    app.settled(&record["id"]).await;
    let m = scrape_until(&app, |m| {
        m.sum("ollama_gate_db_transaction_seconds_count", &[("op", "settlement")]) >= 1.0
    })
    .await;
    let exported: BTreeSet<&str> = m.0.iter().map(|s| s.name.as_str()).collect();
    for name in &names {
        assert!(
            exported.contains(name.as_str()),
            "the dashboard reads {name}, which /metrics does not export"
        );
    }
}
