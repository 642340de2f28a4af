use crate::helpers::*;
use awc::http::StatusCode;
use ollama_gate::store::{Admission, Admitted};
use serde_json::json;
use std::task::Poll;
use std::time::Duration;

#[actix_web::test]
async fn reservations_left_by_a_dead_process_are_settled_exactly_once() {
    let app = spawn_app().await;
    let (_, key) = app
        .create_key(json!({"name": "orphan", "limits": {"daily_tokens": 10000, "max_concurrent": 1}}))
        .await;
    let key_id = key["id"].as_i64().unwrap();
    let record = app.state.store.get_key(key_id).await.unwrap().unwrap();
    // A process that admitted a request and then died: its instance never sent a heartbeat.
    let admitted = app
        .state
        .store
        .admit(&Admission {
            key_id,
            key_hash: record.key_hash.clone(),
            windows: app.state.windows(),
            counts_in_request_quotas: true,
            reserve_tokens: 600,
            prompt_estimate: 40,
            model: "llama3".into(),
            route: "/api/generate",
            instance_id: "dead-process".into(),
            budgets: vec![],
            user_id: None,
            team_id: None,
            weighted_prompt: 40,
        })
        .await
        .unwrap();
    assert!(matches!(admitted, Admitted::Yes { .. }));
    assert_eq!(app.key(&key["id"]).await["usage"]["in_flight"], 1);

    // Two more processes start on the same database; both sweep at startup.
    let env = vec![("DATABASE_URL", app.database_url.clone())];
    let first = spawn_app_with(Options { env: env.clone(), ..Options::default() }).await;
    let second = spawn_app_with(Options { env, ..Options::default() }).await;
    let after = second.key(&key["id"]).await;
    assert_eq!(after["usage"]["in_flight"], 0);
    assert_eq!(
        after["usage"]["day"]["tokens"], 40,
        "the prompt is charged once; the rest of the reservation is released"
    );
    let rows = first.usage_rows(&key["id"]).await;
    assert_eq!(rows.len(), 1, "settled exactly once: {rows:?}");
    assert_eq!(rows[0]["status"], "interrupted");
    assert_eq!(rows[0]["estimated"], true);
}

/// A client that goes away mid-admission drops the admission's future. Wherever
/// that lands, the request is either wholly counted with its reservation or not
/// at all, and the next write on the database goes through.
#[actix_web::test]
async fn an_admission_dropped_part_way_leaves_no_half_written_counter() {
    let app = spawn_app().await;
    let (_, key) = app.create_key(json!({"name": "dropped", "limits": {"daily_tokens": 1000000}})).await;
    let key_id = key["id"].as_i64().unwrap();
    let record = app.state.store.get_key(key_id).await.unwrap().unwrap();
    let admission = Admission {
        key_id,
        key_hash: record.key_hash.clone(),
        windows: app.state.windows(),
        counts_in_request_quotas: true,
        reserve_tokens: 10,
        prompt_estimate: 4,
        model: "llama3".into(),
        route: "/api/generate",
        instance_id: "dropping-process".into(),
        budgets: vec![],
        user_id: None,
        team_id: None,
        weighted_prompt: 4,
    };
    for i in 0..60 {
        let mut admit = app.state.store.admit(&admission);
        // Polled a few times, then dropped: sent to the database and abandoned at different points.
        for _ in 0..i % 6 {
            let done = std::future::poll_fn(|cx| Poll::Ready(admit.as_mut().poll(cx).is_ready())).await;
            if done {
                break;
            }
            actix_web::rt::task::yield_now().await;
        }
    }
    let admitted = app.state.store.admit(&admission).await.expect("the writer is usable after drops");
    assert!(matches!(admitted, Admitted::Yes { .. }));

    let counters = app.state.store.get_key(key_id).await.unwrap().unwrap().counters;
    assert_eq!(
        counters.in_flight, counters.total_requests,
        "a counted request without its slot: {counters:?}"
    );
    assert_eq!(counters.day_tokens, 10 * counters.total_requests, "{counters:?}");
    // Every counted request left exactly one reservation: settling them all frees every slot.
    let now = app.state.clock.now().timestamp();
    let settled = app.state.store.settle_stale(now + 1, now).await.unwrap();
    assert_eq!(settled as i64, counters.in_flight);
    let counters = app.state.store.get_key(key_id).await.unwrap().unwrap().counters;
    assert_eq!(counters.in_flight, 0, "{counters:?}");
}

#[actix_web::test]
async fn the_usage_log_gets_a_line_per_request_without_keys_or_prompts() {
    let app = spawn_app().await;
    let (key, record) = app.create_key(json!({"name": "logged", "limits": {"daily_requests": 1}})).await;
    let secret_prompt = "the launch codes are 0000";
    let reply = app
        .post(
            "/api/generate",
            Some(&key),
            json!({"model": "llama3", "prompt": secret_prompt, "stream": false}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.generate(&key, "llama3", false).await.status, StatusCode::TOO_MANY_REQUESTS);
    app.settled(&record["id"]).await;
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(&app.log_path).unwrap_or_default();
        if log.lines().count() >= 2 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{log}");
    let request = lines.iter().find(|l| l["event"] == "request").unwrap();
    assert_eq!(request["total_tokens"], 8);
    assert_eq!(request["status"], "ok");
    let refusal = lines.iter().find(|l| l["event"] == "refused").unwrap();
    assert_eq!(refusal["http_status"], 429);
    assert!(!log.contains(&key) && !log.contains(&key[6..]), "the key is in the usage log");
    assert!(!log.contains("launch codes"), "the prompt is in the usage log");
}
