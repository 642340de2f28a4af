//! OpenTelemetry traces: a span tree per request, exported as OTLP/JSON to a
//! receiver on loopback, continuing the caller's trace and handed upstream.

use crate::helpers::{send, spawn_app_with, Options, Reply, TestApp};
use crate::mock_ollama::MockOllama;
use awc::http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::otlp::{int, text, Receiver};

/// Long enough for a batch (sent every second) to arrive on a loaded machine.
const ARRIVES: Duration = Duration::from_secs(20);

async fn traced(receiver: &Receiver, mut env: Vec<(&'static str, String)>) -> TestApp {
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()));
    spawn_app_with(Options { env, ..Options::default() }).await
}

/// The spans of the trace whose root has this request id: the root, then its children.
fn trace_of(receiver: &Receiver, request_id: &str) -> Option<(Value, Vec<Value>)> {
    let spans = receiver.spans();
    let root = spans.iter().find(|s| text(s, "ollama_gate.request_id") == Some(request_id))?.clone();
    let children: Vec<Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == root["spanId"] && s["traceId"] == root["traceId"])
        .cloned()
        .collect();
    Some((root, children))
}

async fn wait_for_trace(receiver: &Receiver, request_id: &str) -> (Value, Vec<Value>) {
    receiver.until(ARRIVES, |r| trace_of(r, request_id).is_some()).await;
    trace_of(receiver, request_id)
        .unwrap_or_else(|| panic!("no trace for {request_id}: {:?}", receiver.spans()))
}

fn child<'a>(children: &'a [Value], name: &str) -> Option<&'a Value> {
    children.iter().find(|c| c["name"] == name)
}

fn nanos(span: &Value, field: &str) -> u64 {
    span[field].as_str().unwrap().parse().unwrap()
}

/// The one `traceparent` the mock received with the request at `i`.
fn traceparent_upstream(mock: &MockOllama, i: usize) -> Option<String> {
    let request = &mock.requests()[i];
    let sent: Vec<&String> =
        request.headers.iter().filter(|(k, _)| k == "traceparent").map(|(_, v)| v).collect();
    assert!(sent.len() <= 1, "{:?}", request.headers);
    sent.first().map(|s| s.to_string())
}

fn header_upstream(mock: &MockOllama, i: usize, name: &str) -> Option<String> {
    mock.requests()[i].headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

async fn post_with(
    app: &TestApp,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    let mut req = app.proxy_request("POST", path, key).insert_header(("content-type", "application/json"));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    send(req, Some(body.to_string().into_bytes())).await
}

fn chat(stream: bool) -> Value {
    json!({"model": "llama3", "messages": [{"role": "user", "content": "one two three"}], "stream": stream})
}

#[actix_web::test]
async fn a_request_is_a_server_span_with_children_and_the_tokens_of_its_usage_row() {
    let receiver = Receiver::start().await;
    let app = traced(
        &receiver,
        vec![
            ("OTEL_SERVICE_NAME", "gate-under-test".into()),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-otlp-token=tok%2C123".into()),
        ],
    )
    .await;
    let (key, record) = app.create_key(json!({"name": "traced", "limits": {"daily_tokens": 100000}})).await;
    let reply = app.post("/v1/chat/completions", Some(&key), chat(false)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let request_id = reply.header("x-request-id").unwrap();
    let (root, children) = wait_for_trace(&receiver, &request_id).await;

    // The export itself.
    let export = &receiver.exports()[0];
    assert_eq!(export.path, "/v1/traces");
    assert_eq!(export.header("content-type"), Some("application/json"));
    assert_eq!(export.header("x-otlp-token"), Some("tok,123"));
    let resource = root["resource"].as_array().unwrap();
    assert!(resource.contains(&json!({"key": "service.name", "value": {"stringValue": "gate-under-test"}})));
    assert!(resource.iter().any(|a| a["key"] == "service.version"));

    // The root: a SERVER span named by the route, never by the raw path.
    assert_eq!(root["name"], "POST /v1/chat/completions");
    assert_eq!(root["kind"], 2);
    assert!(root.get("parentSpanId").is_none(), "{root}");
    assert_eq!(root["status"], json!({}), "a success leaves the status unset");
    assert_eq!(root["traceId"].as_str().unwrap().len(), 32);
    assert_eq!(root["spanId"].as_str().unwrap().len(), 16);
    assert_eq!(text(&root, "http.request.method"), Some("POST"));
    assert_eq!(text(&root, "http.route"), Some("/v1/chat/completions"));
    assert_eq!(int(&root, "http.response.status_code"), Some(200));
    assert_eq!(text(&root, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(text(&root, "gen_ai.provider.name"), Some("ollama"));
    assert_eq!(text(&root, "gen_ai.system"), Some("ollama"));
    assert_eq!(int(&root, "ollama_gate.key_id"), record["id"].as_i64());

    // The counts are the ones charged.
    app.settled(&record["id"]).await;
    let row = app.usage_rows(&record["id"]).await[0].clone();
    assert_eq!(row["request_id"], request_id.as_str());
    assert_eq!(text(&root, "gen_ai.request.model"), row["model"].as_str());
    assert_eq!(int(&root, "gen_ai.usage.input_tokens"), row["prompt_tokens"].as_i64());
    assert_eq!(int(&root, "gen_ai.usage.output_tokens"), row["completion_tokens"].as_i64());
    assert!(row["completion_tokens"].as_i64().unwrap() > 0);

    // Its children, inside it; the upstream one is a CLIENT span named upstream in traceparent.
    let names: Vec<&str> = children.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in ["admission", "upstream", "settlement"] {
        let c = child(&children, name).unwrap_or_else(|| panic!("no {name} span: {names:?}"));
        assert!(nanos(c, "startTimeUnixNano") >= nanos(&root, "startTimeUnixNano"), "{name}");
        assert!(nanos(c, "endTimeUnixNano") <= nanos(&root, "endTimeUnixNano"), "{name}");
        assert!(nanos(c, "startTimeUnixNano") <= nanos(c, "endTimeUnixNano"), "{name}");
    }
    assert!(child(&children, "queue").is_none(), "the request did not wait for a slot");
    let upstream = child(&children, "upstream").unwrap();
    assert_eq!(upstream["kind"], 3);
    assert_eq!(int(upstream, "http.response.status_code"), Some(200));
    assert_eq!(text(upstream, "gen_ai.request.model"), row["model"].as_str());
    assert_eq!(child(&children, "admission").unwrap()["kind"], 1);
    let expected =
        format!("00-{}-{}-01", root["traceId"].as_str().unwrap(), upstream["spanId"].as_str().unwrap());
    assert_eq!(traceparent_upstream(&app.mock, 0), Some(expected));
}

#[actix_web::test]
async fn a_stream_is_traced_until_it_settles_with_its_counts() {
    let receiver = Receiver::start().await;
    let app = traced(&receiver, vec![]).await;
    let (key, record) =
        app.create_key(json!({"name": "streaming", "limits": {"daily_tokens": 100000}})).await;
    let reply = app
        .post(
            "/api/generate",
            Some(&key),
            json!({"model": "llama3", "prompt": "one two three", "stream": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let request_id = reply.header("x-request-id").unwrap();
    let (root, children) = wait_for_trace(&receiver, &request_id).await;
    app.settled(&record["id"]).await;
    let row = app.usage_rows(&record["id"]).await[0].clone();
    assert_eq!(root["name"], "POST /api/generate");
    assert_eq!(text(&root, "gen_ai.operation.name"), Some("text_completion"));
    assert_eq!(int(&root, "gen_ai.usage.input_tokens"), row["prompt_tokens"].as_i64());
    assert_eq!(int(&root, "gen_ai.usage.output_tokens"), row["completion_tokens"].as_i64());
    let upstream = child(&children, "upstream").unwrap();
    let settlement = child(&children, "settlement").unwrap();
    assert!(
        nanos(upstream, "endTimeUnixNano") <= nanos(settlement, "startTimeUnixNano"),
        "the upstream call lasts until its stream ends, then the settlement begins"
    );
}

#[actix_web::test]
async fn a_callers_traceparent_is_continued_and_replaced_upstream() {
    let receiver = Receiver::start().await;
    let app = traced(&receiver, vec![]).await;
    let (key, _) = app.create_key(json!({"name": "continued"})).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let incoming = format!("00-{trace_id}-{parent}-01");
    let reply = post_with(
        &app,
        "/api/chat",
        Some(&key),
        &[("traceparent", &incoming), ("tracestate", "vendor=opaque"), ("x-request-id", "continued-1")],
        chat(false),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let (root, children) = wait_for_trace(&receiver, "continued-1").await;
    assert_eq!(root["traceId"], trace_id);
    assert_eq!(root["parentSpanId"], parent, "the caller's span is the root's parent");
    let upstream = child(&children, "upstream").unwrap();
    assert_eq!(
        traceparent_upstream(&app.mock, 0),
        Some(format!("00-{trace_id}-{}-01", upstream["spanId"].as_str().unwrap())),
        "the upstream's parent is the gate's upstream span, not the caller's"
    );
    assert_eq!(header_upstream(&app.mock, 0, "tracestate").as_deref(), Some("vendor=opaque"));

    // Invalid ones start a new trace, and the caller's tracestate goes with them.
    for (n, bad) in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "garbage",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("bad-{n}");
        let headers = [("traceparent", *bad), ("tracestate", "vendor=opaque"), ("x-request-id", id.as_str())];
        assert_eq!(
            post_with(&app, "/api/chat", Some(&key), &headers, chat(false)).await.status,
            StatusCode::OK
        );
        let (root, children) = wait_for_trace(&receiver, &id).await;
        assert_ne!(root["traceId"], trace_id, "{bad}");
        assert!(root.get("parentSpanId").is_none(), "{bad}");
        let upstream = child(&children, "upstream").unwrap();
        let sent =
            format!("00-{}-{}-01", root["traceId"].as_str().unwrap(), upstream["spanId"].as_str().unwrap());
        assert_eq!(traceparent_upstream(&app.mock, n + 1), Some(sent), "{bad}");
        assert_eq!(header_upstream(&app.mock, n + 1, "tracestate"), None, "{bad}");
    }
}

#[actix_web::test]
async fn an_unsampled_trace_is_propagated_but_never_exported() {
    let receiver = Receiver::start().await;
    let app = traced(&receiver, vec![]).await;
    let (key, record) = app.create_key(json!({"name": "unsampled"})).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let headers = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")];
    assert_eq!(post_with(&app, "/api/chat", Some(&key), &headers, chat(false)).await.status, StatusCode::OK);
    let sent = traceparent_upstream(&app.mock, 0).unwrap();
    assert!(sent.starts_with(&format!("00-{trace_id}-")) && sent.ends_with("-00"), "{sent}");
    assert!(!sent.contains("b7ad6b7169203331"), "the upstream's parent is the gate's span: {sent}");

    // A sampled request after it settled: its spans arrive, the unsampled one's never do.
    app.settled(&record["id"]).await;
    let reply = app.post("/api/chat", Some(&key), chat(false)).await;
    wait_for_trace(&receiver, &reply.header("x-request-id").unwrap()).await;
    assert!(receiver.spans().iter().all(|s| s["traceId"] != trace_id), "{:?}", receiver.spans());
}

#[actix_web::test]
async fn refusals_and_failures_end_their_root_span_with_an_error_status() {
    let receiver = Receiver::start().await;
    let app = traced(&receiver, vec![]).await;
    let (spent, record) = app.create_key(json!({"name": "spent", "limits": {"daily_requests": 0}})).await;

    // No key: refused before admission, so no admission span.
    let reply = post_with(&app, "/api/chat", None, &[("x-request-id", "nokey")], chat(false)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let (root, children) = wait_for_trace(&receiver, "nokey").await;
    assert_eq!(root["name"], "POST /api/chat");
    assert_eq!(root["status"]["code"], 2);
    assert_eq!(root["status"]["message"], "invalid_api_key");
    assert_eq!(text(&root, "error.type"), Some("invalid_api_key"));
    assert_eq!(int(&root, "http.response.status_code"), Some(401));
    assert!(children.is_empty(), "{children:?}");

    // Over quota: the admission span fails too.
    let message =
        json!({"model": "llama3", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let reply = post_with(&app, "/v1/messages", Some(&spent), &[("x-request-id", "spent")], message).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let (root, children) = wait_for_trace(&receiver, "spent").await;
    assert_eq!(root["name"], "POST /v1/messages");
    assert_eq!(
        (root["status"]["code"].as_u64(), int(&root, "http.response.status_code")),
        (Some(2), Some(429))
    );
    assert_eq!(int(&root, "ollama_gate.key_id"), record["id"].as_i64());
    let admission = child(&children, "admission").unwrap();
    assert_eq!(admission["status"]["code"], 2);

    // An unknown path is named by its method alone: a client's paths are not span names.
    let unknown = "/api/made-up/path/9f8e7d";
    let reply = post_with(&app, unknown, None, &[("x-request-id", "unknown")], json!({})).await;
    assert!(reply.status.is_client_error());
    let (root, _) = wait_for_trace(&receiver, "unknown").await;
    assert_eq!(root["name"], "POST");
    assert!(text(&root, "http.route").is_none());
    assert!(!receiver.spans().iter().any(|s| s.to_string().contains("made-up")));
    assert_eq!(app.mock.count(), 0);
}

#[actix_web::test]
async fn an_unreachable_upstream_fails_the_upstream_span_and_the_root() {
    let receiver = Receiver::start().await;
    let env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone())];
    let app =
        spawn_app_with(Options { upstream: Some("http://127.0.0.1:9".into()), env, ..Options::default() })
            .await;
    let (key, _) = app.create_key(json!({"name": "down"})).await;
    let reply = post_with(&app, "/api/chat", Some(&key), &[("x-request-id", "down")], chat(false)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let (root, children) = wait_for_trace(&receiver, "down").await;
    assert_eq!(root["status"], json!({"code": 2, "message": "upstream_unreachable"}));
    assert_eq!(int(&root, "http.response.status_code"), Some(502));
    assert_eq!(child(&children, "upstream").unwrap()["status"]["code"], 2);
    assert_eq!(
        (int(&root, "gen_ai.usage.input_tokens"), int(&root, "gen_ai.usage.output_tokens")),
        (Some(0), Some(0))
    );
}

#[actix_web::test]
async fn a_request_that_waited_for_a_slot_has_a_queue_span_before_its_upstream_call() {
    let receiver = Receiver::start().await;
    let mock = MockOllama::start().await;
    let env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone())];
    let upstream = format!("{}?name=gpu&slots=1", mock.url);
    let mut app = spawn_app_with(Options { upstream: Some(upstream), env, ..Options::default() }).await;
    app.mock = mock;
    let (key, _) = app.create_key(json!({"name": "waits"})).await;
    let body = json!({"model": "gated", "prompt": "hi", "stream": false});
    let first = actix_web::rt::spawn({
        let req =
            app.proxy_request("POST", "/api/generate", Some(&key)).insert_header(("x-request-id", "first"));
        send(req, Some(body.to_string().into_bytes()))
    });
    until_health(&app, |h| h["backends"][0]["busy"] == 1).await;
    let second = actix_web::rt::spawn({
        let req =
            app.proxy_request("POST", "/api/generate", Some(&key)).insert_header(("x-request-id", "second"));
        send(req, Some(body.to_string().into_bytes()))
    });
    until_health(&app, |h| h["backends"][0]["queued"] == 1).await;
    app.mock.open_gate(2);
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    assert_eq!(second.await.unwrap().status, StatusCode::OK);

    let (_, children) = wait_for_trace(&receiver, "second").await;
    let queue = child(&children, "queue").expect("a queue span");
    let upstream = child(&children, "upstream").unwrap();
    assert!(nanos(queue, "endTimeUnixNano") <= nanos(upstream, "startTimeUnixNano"));
    let (_, children) = wait_for_trace(&receiver, "first").await;
    assert!(child(&children, "queue").is_none(), "the first found its slot free");
}

/// Waits until `/health` shows what `done` wants (or fails loudly).
async fn until_health(app: &TestApp, done: impl Fn(&Value) -> bool) {
    for _ in 0..500 {
        let h = app.get("/health", None).await.json();
        if done(&h) {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/health never got there: {}", app.get("/health", None).await.text());
}

#[actix_web::test]
async fn a_receiver_that_fails_is_retried_once_and_never_slows_requests() {
    let receiver = Receiver::start().await;
    receiver.fail_with(500);
    let app = traced(&receiver, vec![]).await;
    let (key, _) = app.create_key(json!({"name": "unlucky"})).await;
    for _ in 0..5 {
        assert_eq!(app.post("/api/chat", Some(&key), chat(false)).await.status, StatusCode::OK);
    }
    assert!(receiver.until(ARRIVES, |r| r.exports().len() >= 2).await, "the batch came twice");
    let exports = receiver.exports();
    assert_eq!(exports[0].body, exports[1].body, "the retry sends the same batch");
    // Five requests of four spans each (the request, admission, upstream, settlement).
    let tracer = app.proxy_state.tracer.clone().unwrap();
    for _ in 0..1000 {
        if tracer.dropped() >= 20 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tracer.dropped(), 20, "batches the receiver would not take are dropped and counted");
    assert_eq!(receiver.exports().len() % 2, 0, "each batch was sent twice");

    // A 400 will not change on a retry: sent once. Back to 200, the next request's spans arrive.
    receiver.fail_with(400);
    let before = receiver.exports().len();
    app.post("/api/chat", Some(&key), chat(false)).await;
    assert!(receiver.until(ARRIVES, |r| r.exports().len() > before).await);
    receiver.fail_with(0);
    let reply = app.post("/api/chat", Some(&key), chat(false)).await;
    wait_for_trace(&receiver, &reply.header("x-request-id").unwrap()).await;
    assert_eq!(receiver.exports().len(), before + 2, "the refused batch was not sent again");
}

#[actix_web::test]
async fn a_receiver_that_is_down_or_never_answers_does_not_affect_requests() {
    // Down: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    // Hanging: accepts connections and never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://127.0.0.1:{}", hanging.local_addr().unwrap().port());
    let held = actix_web::rt::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            open.push(socket);
        }
    });
    for endpoint in [down, hanging_url] {
        let env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone())];
        let app = spawn_app_with(Options { env, ..Options::default() }).await;
        let (key, record) = app.create_key(json!({"name": "unobserved"})).await;
        for stream in [false, true, false, true] {
            let reply = app.post("/v1/chat/completions", Some(&key), chat(stream)).await;
            assert_eq!(reply.status, StatusCode::OK, "{endpoint}");
            assert!(reply.header("x-request-id").is_some());
        }
        app.settled(&record["id"]).await;
        assert_eq!(app.usage_rows(&record["id"]).await.len(), 4, "{endpoint}");
    }
    held.abort();
}

#[actix_web::test]
async fn without_traces_a_callers_traceparent_passes_through_untouched() {
    let app = spawn_app_with(Options::default()).await;
    assert!(app.proxy_state.tracer.is_none());
    let (key, _) = app.create_key(json!({"name": "plain"})).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [("traceparent", incoming), ("tracestate", "vendor=opaque")];
    assert_eq!(post_with(&app, "/api/chat", Some(&key), &headers, chat(false)).await.status, StatusCode::OK);
    assert_eq!(traceparent_upstream(&app.mock, 0).as_deref(), Some(incoming));
    assert_eq!(header_upstream(&app.mock, 0, "tracestate").as_deref(), Some("vendor=opaque"));

    let disabled = spawn_app_with(Options {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
            ("OTEL_SDK_DISABLED", "true".into()),
        ],
        ..Options::default()
    })
    .await;
    assert!(disabled.proxy_state.tracer.is_none(), "OTEL_SDK_DISABLED wins over an endpoint");
}

#[actix_web::test]
async fn spans_still_queued_at_shutdown_are_sent_before_the_gate_stops() {
    // The application is run here rather than by the helpers, to stop it and
    // wait for it; the database does not matter, so it is SQLite.
    let receiver = Receiver::start().await;
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("usage.log");
    let env: std::collections::HashMap<&str, String> = [
        ("PROXY_HOST", "127.0.0.1".to_owned()),
        ("PROXY_PORT", "0".into()),
        ("ADMIN_PORT", "0".into()),
        ("DATABASE_URL", format!("sqlite://{}", dir.path().join("gate.db").display())),
        ("OLLAMA_URL", mock.url.clone()),
        ("ADMIN_PASSWORD", crate::helpers::ADMIN_PASSWORD.into()),
        ("LOG_FILE", log.display().to_string()),
        ("WORKERS", "1".into()),
        ("SHUTDOWN_TIMEOUT_SECS", "1".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()),
    ]
    .into_iter()
    .collect();
    let settings = ollama_gate::config::Settings::from_lookup(|n| env.get(n).cloned()).unwrap();
    let app = ollama_gate::startup::Application::build(settings).await.unwrap();
    let (proxy_port, admin_port) = (app.proxy_port(), app.admin_port());
    let (proxy, admin) = app.handles();
    let running = actix_web::rt::spawn(app.run_until_stopped());

    let client = crate::helpers::client();
    let created = send(
        client
            .post(format!("http://127.0.0.1:{admin_port}/api/api-keys"))
            .insert_header(("authorization", format!("Bearer {}", crate::helpers::ADMIN_PASSWORD)))
            .insert_header(("content-type", "application/json")),
        Some(json!({"name": "last"}).to_string().into_bytes()),
    )
    .await;
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let reply = send(
        client
            .post(format!("http://127.0.0.1:{proxy_port}/api/chat"))
            .insert_header(("authorization", format!("Bearer {key}")))
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-request-id", "the-last-one")),
        Some(chat(false).to_string().into_bytes()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // The settlement queues the spans before it writes the usage log line.
    for _ in 0..500 {
        if std::fs::read_to_string(&log).is_ok_and(|l| l.contains("the-last-one")) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }

    futures_util::future::join(proxy.stop(true), admin.stop(true)).await;
    running.await.unwrap().unwrap();
    assert!(trace_of(&receiver, "the-last-one").is_some(), "flushed before the gate stopped");
}
