//! Faults around the real `ollama-gate` binary: killed with `kill -9` and
//! started again, a second process on the same database, the database file
//! removed under it.

use testkit::{gate, mock_ollama};

// Shared with the other suites; each uses only part of them.

use gate::*;
use mock_ollama::MockOllama;
use serde_json::{json, Value};
use std::process::Child;
use std::time::{Duration, Instant};

fn gate_in(dir: &std::path::Path, mock: &MockOllama) -> Gate {
    let mut gate = Gate::new(dir, &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    // The default: a dead process's heartbeat needs 30 s to go stale.
    gate.extra.push(("RESERVATION_STALE_AFTER_SECS".into(), "30".into()));
    gate
}

/// Starts a stream that runs until the client hangs up; returns once the
/// gate has admitted it (the response head has arrived).
async fn open_stream(gate: &Gate, key: &str) -> awc::ClientResponse<impl futures_util::Stream> {
    let response = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
        .post(format!("http://127.0.0.1:{}/api/generate", gate.proxy_port()))
        .insert_header(("authorization", format!("Bearer {key}")))
        .send_json(&json!({"model": "hold-1", "prompt": "one two three"}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
}

async fn in_flight(gate: &Gate) -> Value {
    gate.admin("GET", "/api-keys/1", None).await["usage"]["in_flight"].clone()
}

async fn create_one_slot_key(gate: &Gate) -> String {
    let created = gate
        .admin(
            "POST",
            "/api-keys",
            Some(json!({"name": "one-slot", "limits": {"max_concurrent": 1, "daily_tokens": 5000}})),
        )
        .await;
    created["key"].as_str().unwrap().to_owned()
}

async fn kill_hard(child: &mut Child) {
    kill(child, 9);
    wait_exit(child, Duration::from_secs(5)).await;
}

#[actix_web::test]
async fn a_gate_killed_and_started_again_settles_its_own_reservations_at_once() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gate = gate_in(dir.path(), &mock);
    let mut child = gate.spawn("before.log");
    gate.wait_ready(&mut child).await;
    let key = create_one_slot_key(&gate).await;
    let _stream = open_stream(&gate, &key).await;
    assert_eq!(in_flight(&gate).await, 1);
    kill_hard(&mut child).await;

    let mut child = gate.spawn("after.log");
    gate.wait_ready(&mut child).await;
    // No waiting for the 30 s staleness: settled before the gate served anything.
    assert_eq!(in_flight(&gate).await, 0, "the dead process's reservation is settled at startup");
    assert_eq!(gate.generate(&key, "llama3").await.0, 200, "the concurrency slot is free");
    let rows = gate.admin("GET", "/usage?key_id=1", None).await;
    let statuses: Vec<&str> =
        rows["rows"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "interrupted").count(), 1, "settled once: {rows}");
    let log = std::fs::read_to_string(dir.path().join("after.log")).unwrap();
    assert!(log.contains("has ended without unregistering"), "{log}");
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}

#[actix_web::test]
async fn a_live_gate_on_the_same_database_keeps_its_reservations_until_it_dies() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = gate_in(dir.path(), &mock);
    let mut first_child = first.spawn("first.log");
    first.wait_ready(&mut first_child).await;
    let key = create_one_slot_key(&first).await;
    let _stream = open_stream(&first, &key).await;

    let second = gate_in(dir.path(), &mock);
    let mut second_child = second.spawn("second.log");
    second.wait_ready(&mut second_child).await;
    assert_eq!(in_flight(&second).await, 1, "a living process's reservation is not settled");
    assert_eq!(second.generate(&key, "llama3").await.0, 429, "its slot stays taken");

    kill_hard(&mut first_child).await;
    let killed = Instant::now();
    // The survivor's upkeep runs every 10 s; the dead one's heartbeat would
    // need at least 20 s more to go stale, so this is the liveness check.
    while in_flight(&second).await != 0 {
        assert!(killed.elapsed() < Duration::from_secs(16), "the dead process's reservation was kept");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(second.generate(&key, "llama3").await.0, 200);
    kill(&second_child, 15);
    wait_exit(&mut second_child, Duration::from_secs(10)).await;
}

#[actix_web::test]
async fn the_database_file_removed_under_the_gate_is_logged_and_health_goes_down() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gate = gate_in(dir.path(), &mock);
    let mut child = gate.spawn("gate.log");
    gate.wait_ready(&mut child).await;
    let key = create_one_slot_key(&gate).await;
    assert_eq!(gate.generate(&key, "llama3").await.0, 200);
    std::fs::remove_file(dir.path().join("data/gate.db")).unwrap();

    let health = format!("http://127.0.0.1:{}/health", gate.proxy_port());
    let reply = awc::Client::default().get(&health).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 503);
    assert_eq!(gate.generate(&key, "llama3").await.0, 503);
    let log = std::fs::read_to_string(dir.path().join("gate.log")).unwrap();
    let line = log.lines().find(|l| l.contains("was deleted while the gate was running"));
    assert!(line.is_some_and(|l| l.contains("ERROR") && l.contains("restarted")), "{log}");
    assert!(!dir.path().join("data/gate.db").exists(), "no empty database appears in its place");
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}
