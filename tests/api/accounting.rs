use crate::helpers::*;
use awc::http::StatusCode;
use futures_util::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn charged_tokens_equal_the_upstreams_counts_streamed_and_not() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "count", "limits": {"daily_tokens": 100000}})).await;
    let streamed = app
        .post(
            "/api/chat",
            Some(&key),
            json!({"model": "llama3",
        "messages": [{"role": "user", "content": "tell me a short story"}], "options": {"num_predict": 7}}),
        )
        .await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert_eq!(streamed.header("content-type").as_deref(), Some("application/x-ndjson"));
    let lines = streamed.lines();
    assert_eq!(lines.len(), 8, "7 chunks and the final one, passed through as sent");
    assert_eq!(lines[7]["done"], true);
    let whole = app
        .post("/api/generate", Some(&key), json!({"model": "llama3", "prompt": "a b c d", "stream": false}))
        .await;
    assert_eq!(whole.json()["eval_count"], 3);
    let embed = app.post("/api/embed", Some(&key), json!({"model": "llama3", "input": "x y"})).await;
    assert_eq!(embed.status, StatusCode::OK);

    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"].as_i64().unwrap(), app.mock.reported_tokens());
    assert_eq!(app.mock.reported_tokens(), (5 + 7) + (4 + 3) + 2);
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "ok" && r["estimated"] == false), "{rows:?}");
    let chat = rows.iter().find(|r| r["route"] == "/api/chat").unwrap();
    assert_eq!((chat["prompt_tokens"].as_i64(), chat["completion_tokens"].as_i64()), (Some(5), Some(7)));
}

#[actix_web::test]
async fn legacy_embeddings_are_charged_by_estimate_and_marked_so() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "legacy"})).await;
    let reply = app
        .post("/api/embeddings", Some(&key), json!({"model": "llama3", "prompt": "hello there world"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["estimated"], true);
    assert_eq!(rows[0]["prompt_tokens"], 3);
}

#[actix_web::test]
async fn a_client_that_disconnects_mid_stream_cancels_the_upstream_and_pays_for_what_it_got() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "impatient", "limits": {"daily_tokens": 100000}})).await;
    let mut response = app
        .proxy_request("POST", "/api/generate", Some(&key))
        .send_body(json!({"model": "slow", "prompt": "one two three"}).to_string())
        .await
        .unwrap();
    let mut seen = 0;
    while seen < 5 {
        let chunk = response.next().await.unwrap().unwrap();
        seen += chunk.iter().filter(|b| **b == b'\n').count();
    }
    drop(response);
    let hung_up = Instant::now();
    while app.mock.cancelled() == 0 {
        assert!(hung_up.elapsed() < Duration::from_secs(1), "upstream not cancelled within a second");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let settled = app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["status"], "client_aborted");
    assert_eq!(rows[0]["estimated"], true);
    let completion = rows[0]["completion_tokens"].as_i64().unwrap();
    assert!((5..200).contains(&completion), "charged {completion} of 200 chunks");
    assert_eq!(rows[0]["prompt_tokens"], 3);
    // The reservation (3 + 512) was replaced by what was generated.
    assert_eq!(settled["usage"]["day"]["tokens"].as_i64().unwrap(), 3 + completion);
}

#[actix_web::test]
async fn an_error_from_the_upstream_mid_stream_reaches_the_client_and_is_charged_partially() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "broken"})).await;
    let reply = app.generate(&key, "broken", true).await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines = reply.lines();
    assert_eq!(lines.last().unwrap()["error"], "model runner has unexpectedly stopped");
    app.settled(&record["id"]).await;
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows[0]["status"], "upstream_failed");
    assert_eq!(rows[0]["estimated"], true);
    assert!(rows[0]["completion_tokens"].as_i64().unwrap() >= 2);
}

#[actix_web::test]
async fn an_upstream_that_dies_mid_stream_ends_the_client_stream_with_an_error_line() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "cut"})).await;
    let reply = app.generate(&key, "cut", true).await;
    let lines = reply.lines();
    assert_eq!(lines.len(), 3, "{}", reply.text());
    assert!(lines[2]["error"].as_str().unwrap().contains("upstream connection lost"));
    app.settled(&record["id"]).await;
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_failed");
}

#[actix_web::test]
async fn an_upstream_that_goes_quiet_is_cut_off_after_the_idle_timeout() {
    let app =
        spawn_app_with(Options { env: vec![("STREAM_IDLE_TIMEOUT_SECS", "1".into())], ..Options::default() })
            .await;
    let (key, record) = app.create_key(json!({"name": "stall"})).await;
    let started = Instant::now();
    let reply = app.generate(&key, "stall", true).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(reply.lines().last().unwrap()["error"].as_str().unwrap().contains("nothing for too long"));
    app.settled(&record["id"]).await;
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_timeout");
}

#[actix_web::test]
async fn an_unreachable_upstream_gets_502_and_the_request_is_given_back() {
    let app =
        spawn_app_with(Options { upstream: Some("http://127.0.0.1:9".into()), ..Options::default() }).await;
    let (key, record) =
        app.create_key(json!({"name": "down", "limits": {"daily_requests": 5, "daily_tokens": 10000}})).await;
    let reply = app.generate(&key, "llama3", false).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert_eq!(reply.json()["error"], "upstream Ollama is unreachable");
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"], json!({"requests": 0, "tokens": 0}));
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_unreachable");
}

#[actix_web::test]
async fn an_upstream_error_status_passes_through_and_charges_no_tokens() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "404"})).await;
    let reply = app.generate(&key, "missing", false).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "model 'missing' not found");
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["tokens"], 0);
    assert_eq!(app.usage_rows(&record["id"]).await[0]["status"], "upstream_error");
}

#[actix_web::test]
async fn a_locked_database_fails_closed_with_503_and_recovers_without_a_restart() {
    if postgres_backend().is_some() {
        // A PostgreSQL outage is tested against a server that is really stopped: tests/pg_outage.rs.
        return;
    }
    let app =
        spawn_app_with(Options { env: vec![("DB_BUSY_TIMEOUT_MS", "200".into())], ..Options::default() })
            .await;
    let (key, _) = app.create_key(json!({"name": "locked"})).await;
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
    let before = app.mock.count();

    use sqlx::Connection;
    let mut other = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.unwrap();
    let reply =
        app.post("/v1/chat/completions", Some(&key), json!({"model": "llama3", "messages": []})).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"]["type"], "server_error");
    assert_eq!(app.mock.count(), before, "nothing is forwarded while the database is away");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();

    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn key_holders_read_their_own_usage() {
    let app = spawn_app().await;
    let (key, record) =
        app.create_key(json!({"name": "me", "limits": {"daily_tokens": 1000, "daily_requests": 10}})).await;
    // One at a time: each reserves 515 tokens of the 1000 until it settles.
    app.generate(&key, "llama3", false).await;
    app.settled(&record["id"]).await;
    app.generate(&key, "qwen3:8b", false).await;
    app.settled(&record["id"]).await;
    let usage = app.get("/v1/usage", Some(&key)).await.json();
    assert_eq!(usage["key"]["name"], "me");
    assert_eq!(usage["usage"]["day"], json!({"requests": 2, "tokens": 12}));
    assert_eq!(usage["remaining"]["daily_tokens"], 988);
    assert_eq!(usage["remaining"]["daily_requests"], 8);
    assert_eq!(usage["remaining"]["monthly_tokens"], serde_json::Value::Null);
    let summary = app.get("/v1/usage/summary", Some(&key)).await.json();
    let models: Vec<_> =
        summary["models"].as_array().unwrap().iter().map(|m| m["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["llama3:latest", "qwen3:8b"]);
    assert_eq!(app.get("/v1/usage", None).await.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_upstream_slower_than_the_first_byte_timeout_gets_504_and_the_request_back() {
    let app =
        spawn_app_with(Options { env: vec![("FIRST_BYTE_TIMEOUT_SECS", "1".into())], ..Options::default() })
            .await;
    let (key, record) = app.create_key(json!({"name": "cold", "limits": {"daily_requests": 1}})).await;
    let reply = app.generate(&key, "sleepy", false).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(reply.json()["error"].as_str().unwrap().contains("FIRST_BYTE_TIMEOUT_SECS"));
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["day"]["requests"], 0, "a request that got no answer is given back");
    // The quota of one request is still there to use.
    let chat = app.post("/api/chat", Some(&key), json!({"model": "sleepy", "messages": []})).await;
    assert_eq!(chat.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(app.settled(&record["id"]).await["usage"]["day"]["requests"], 0);
}

/// An API family's streamed request, as the accounting tests send it.
struct Family {
    name: &'static str,
    path: &'static str,
    /// The request for a model, asking for four output tokens, three prompt words.
    body: fn(&str) -> serde_json::Value,
    /// Lines or events in a complete stream, and the cut points to try: before
    /// the first, mid-stream, just before the final usage event.
    cuts: [usize; 3],
}

const PROMPT: &str = "one two three";

fn families() -> Vec<Family> {
    vec![
        Family {
            name: "native chat",
            path: "/api/chat",
            body: |m| json!({"model": m, "messages": [{"role": "user", "content": PROMPT}], "options": {"num_predict": 4}}),
            cuts: [0, 2, 4],
        },
        Family {
            name: "native generate",
            path: "/api/generate",
            body: |m| json!({"model": m, "prompt": PROMPT, "options": {"num_predict": 4}}),
            cuts: [0, 2, 4],
        },
        Family {
            name: "openai chat",
            path: "/v1/chat/completions",
            body: |m| json!({"model": m, "stream": true, "max_tokens": 4, "messages": [{"role": "user", "content": PROMPT}]}),
            cuts: [0, 2, 4],
        },
        Family {
            name: "openai completions",
            path: "/v1/completions",
            body: |m| json!({"model": m, "stream": true, "max_tokens": 4, "prompt": PROMPT}),
            cuts: [0, 2, 4],
        },
        Family {
            name: "openai responses",
            path: "/v1/responses",
            body: |m| json!({"model": m, "stream": true, "max_output_tokens": 4, "input": PROMPT}),
            cuts: [0, 3, 6],
        },
        Family {
            name: "anthropic messages",
            path: "/v1/messages",
            body: |m| json!({"model": m, "stream": true, "max_tokens": 4, "messages": [{"role": "user", "content": PROMPT}]}),
            cuts: [0, 5, 8],
        },
    ]
}

/// The JSON objects of an NDJSON or SSE body (`data:` with or without its space).
fn stream_objects(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| l.strip_prefix("data:").map_or(l, str::trim_start))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The generated text a client received, read the way a client reads it.
fn delivered_text(text: &str) -> String {
    stream_objects(text)
        .iter()
        .filter_map(|o| {
            let kind = o["type"].as_str().unwrap_or_default();
            [
                o["response"].as_str(),
                o["message"]["content"].as_str(),
                o["choices"][0]["delta"]["content"].as_str(),
                o["choices"][0]["text"].as_str(),
                o["delta"].as_str().filter(|_| kind == "response.output_text.delta"),
                o["delta"]["text"].as_str().filter(|_| kind == "content_block_delta"),
            ]
            .into_iter()
            .flatten()
            .next()
            .map(str::to_owned)
        })
        .collect()
}

/// Events (SSE) or lines (NDJSON) complete in what was received so far.
fn complete_events(received: &[u8], sse: bool) -> usize {
    let text = String::from_utf8_lossy(received).replace("\r\n", "\n");
    if sse {
        text.matches("\n\n").count()
    } else {
        text.matches('\n').count()
    }
}

async fn one_usage_row(app: &TestApp, record: &serde_json::Value) -> serde_json::Value {
    let settled = app.settled(&record["id"]).await;
    assert_eq!(settled["usage"]["in_flight"], 0, "the reservation is released");
    let rows = app.usage_rows(&record["id"]).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].clone()
}

async fn complete_streams_charge_the_reported_counts(spaced: bool) {
    let app = spawn_app().await;
    app.mock.set_spaced(spaced);
    for family in families() {
        let (key, record) =
            app.create_key(json!({"name": family.name, "limits": {"daily_tokens": 100000}})).await;
        let reply = app.post(family.path, Some(&key), (family.body)("llama3")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", family.name);
        let text = reply.text();
        assert!(
            !text.contains("incomplete"),
            "{}: no error appended to a complete stream: {text}",
            family.name
        );
        assert!(
            !family.path.contains("completions")
                || stream_objects(&text).iter().all(|o| o.get("usage").is_none()),
            "{}: no usage the client did not ask for: {text}",
            family.name
        );
        assert_eq!(delivered_text(&text), "tok <b>tok</b> & tok tok ", "{}: {text}", family.name);
        let row = one_usage_row(&app, &record).await;
        assert_eq!(
            (row["status"].as_str(), row["estimated"].as_bool()),
            (Some("ok"), Some(false)),
            "{}: {row}",
            family.name
        );
        assert_eq!(
            (row["prompt_tokens"].as_i64(), row["completion_tokens"].as_i64()),
            (Some(3), Some(4)),
            "{}: the upstream's counts exactly",
            family.name
        );
    }
}

#[actix_web::test]
async fn complete_streams_in_go_compact_json_charge_the_reported_counts() {
    complete_streams_charge_the_reported_counts(false).await;
}

#[actix_web::test]
async fn complete_streams_in_spaced_json_with_crlf_events_charge_the_reported_counts() {
    complete_streams_charge_the_reported_counts(true).await;
}

#[actix_web::test]
async fn whole_bodies_in_pretty_json_are_charged_like_compact_ones() {
    for spaced in [false, true] {
        let app = spawn_app().await;
        app.mock.set_spaced(spaced);
        let (key, record) = app.create_key(json!({"name": "whole"})).await;
        let bodies = [
            (
                "/api/chat",
                json!({"model": "llama3", "stream": false, "messages": [{"role": "user", "content": PROMPT}]}),
            ),
            ("/api/generate", json!({"model": "llama3", "stream": false, "prompt": PROMPT})),
            ("/api/embed", json!({"model": "llama3", "input": PROMPT})),
            (
                "/v1/chat/completions",
                json!({"model": "llama3", "messages": [{"role": "user", "content": PROMPT}]}),
            ),
            ("/v1/completions", json!({"model": "llama3", "prompt": PROMPT})),
            ("/v1/responses", json!({"model": "llama3", "input": PROMPT})),
            (
                "/v1/messages",
                json!({"model": "llama3", "max_tokens": 3, "messages": [{"role": "user", "content": PROMPT}]}),
            ),
        ];
        for (path, body) in bodies {
            assert_eq!(app.post(path, Some(&key), body).await.status, StatusCode::OK, "{path}");
        }
        app.settled(&record["id"]).await;
        let rows = app.usage_rows(&record["id"]).await;
        assert_eq!(rows.len(), 7);
        for row in rows {
            assert_eq!(
                (row["status"].as_str(), row["estimated"].as_bool()),
                (Some("ok"), Some(false)),
                "{row}"
            );
            let completion = if row["route"] == "/api/embed" { 0 } else { 3 };
            assert_eq!(
                (row["prompt_tokens"].as_i64(), row["completion_tokens"].as_i64()),
                (Some(3), Some(completion)),
                "spaced {spaced}: {row}"
            );
        }
    }
}

#[actix_web::test]
async fn a_finished_ollama_response_without_counts_is_charged_zero_exactly() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "zero"})).await;
    // No prompt words and no output: Ollama leaves both counts out.
    let reply = app
        .post(
            "/api/generate",
            Some(&key),
            json!({"model": "llama3", "prompt": "", "options": {"num_predict": 0}}),
        )
        .await;
    let last = reply.lines().pop().unwrap();
    assert!(last.get("prompt_eval_count").is_none() && last.get("eval_count").is_none(), "{last}");
    let row = one_usage_row(&app, &record).await;
    assert_eq!(
        (row["prompt_tokens"].as_i64(), row["completion_tokens"].as_i64(), row["estimated"].as_bool()),
        (Some(0), Some(0), Some(false)),
        "{row}"
    );
}

async fn check_cut_row(app: &TestApp, record: &serde_json::Value, what: &str, status: &str, received: &str) {
    let row = one_usage_row(app, record).await;
    let text = delivered_text(received);
    let expected = ollama_gate::tokens::count_now(&text);
    assert_eq!(row["status"], status, "{what}: {row}");
    assert_eq!(row["estimated"], true, "{what}: {row}");
    assert_eq!(row["completion_tokens"].as_i64(), Some(expected), "{what}: charged the delivered {text:?}");
    assert_eq!(expected > 0, !text.is_empty(), "{what}");
    assert_eq!(row["prompt_tokens"], 3, "{what}");
}

async fn streams_cut_by_the_upstream_are_charged_for_what_was_delivered(spaced: bool) {
    let app = spawn_app().await;
    app.mock.set_spaced(spaced);
    for family in families() {
        for cut in family.cuts {
            let what = format!("{} cut by the upstream after {cut} (spaced {spaced})", family.name);
            let (key, record) =
                app.create_key(json!({"name": what, "limits": {"daily_tokens": 100000}})).await;
            let reply = app.post(family.path, Some(&key), (family.body)(&format!("cut-{cut}"))).await;
            if cut == 0 {
                // No response at all: the request is given back.
                assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{what}");
                let row = one_usage_row(&app, &record).await;
                assert_eq!(row["status"], "upstream_unreachable", "{what}");
                assert_eq!(
                    (row["prompt_tokens"].as_i64(), row["completion_tokens"].as_i64()),
                    (Some(0), Some(0))
                );
                continue;
            }
            assert!(reply.text().contains("upstream connection lost"), "{what}: {}", reply.text());
            check_cut_row(&app, &record, &what, "upstream_failed", &reply.text()).await;
        }
    }
}

#[actix_web::test]
async fn streams_cut_by_the_upstream_are_charged_for_what_was_delivered_in_go_json() {
    streams_cut_by_the_upstream_are_charged_for_what_was_delivered(false).await;
}

#[actix_web::test]
async fn streams_cut_by_the_upstream_are_charged_for_what_was_delivered_in_spaced_json() {
    streams_cut_by_the_upstream_are_charged_for_what_was_delivered(true).await;
}

async fn streams_cut_by_the_client_are_charged_for_what_was_delivered(spaced: bool) {
    let app = spawn_app().await;
    app.mock.set_spaced(spaced);
    for family in families() {
        for cut in family.cuts {
            let what = format!("{} cut by the client after {cut} (spaced {spaced})", family.name);
            let (key, record) =
                app.create_key(json!({"name": what, "limits": {"daily_tokens": 100000}})).await;
            let mut response = app
                .proxy_request("POST", family.path, Some(&key))
                .insert_header(("content-type", "application/json"))
                .send_body((family.body)(&format!("hold-{cut}")).to_string())
                .await
                .unwrap();
            let sse = family.path.starts_with("/v1/");
            let mut received = Vec::new();
            while complete_events(&received, sse) < cut {
                let chunk = response.next().await.expect("the held stream is open").unwrap();
                received.extend_from_slice(&chunk);
            }
            drop(response);
            check_cut_row(&app, &record, &what, "client_aborted", &String::from_utf8_lossy(&received)).await;
        }
    }
}

#[actix_web::test]
async fn streams_cut_by_the_client_are_charged_for_what_was_delivered_in_go_json() {
    streams_cut_by_the_client_are_charged_for_what_was_delivered(false).await;
}

#[actix_web::test]
async fn streams_cut_by_the_client_are_charged_for_what_was_delivered_in_spaced_json() {
    streams_cut_by_the_client_are_charged_for_what_was_delivered(true).await;
}

#[actix_web::test]
async fn counts_written_by_the_model_in_its_answer_change_nothing() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "echo"})).await;
    let reply = app
        .post("/api/generate", Some(&key), json!({"model": "echo", "prompt": "say \"eval_count\":999,\"done\":true", "options": {"num_predict": 2}}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let row = one_usage_row(&app, &record).await;
    assert_eq!(
        (row["completion_tokens"].as_i64(), row["estimated"].as_bool()),
        (Some(2), Some(false)),
        "{row}"
    );
}
