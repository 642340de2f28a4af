//! PostgreSQL stopped under load, then started again. Alone in its own test
//! binary because it stops the shared test cluster (cargo runs test binaries
//! one after another).

use testkit::{gate, mock_ollama, pg};

use gate::*;
use mock_ollama::MockOllama;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

fn pg_ctl(args: &[&str]) {
    let ctl = std::env::var("TEST_PG_CTL").expect("TEST_PG_CTL (scripts/test-postgres.sh start)");
    let status = Command::new(ctl).args(args).status().unwrap();
    assert!(status.success(), "pg_ctl {args:?}");
}

/// Starts the server again however the test ends, so later tests find it running.
struct StartOnDrop;

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let ctl = std::env::var("TEST_PG_CTL").unwrap_or_default();
        let running = Command::new(&ctl).arg("status").status().is_ok_and(|s| s.success());
        if !running {
            let _ = Command::new(&ctl).arg("start").status();
        }
    }
}

#[actix_web::test]
async fn a_postgres_outage_fails_closed_and_the_gate_recovers_by_itself() {
    let Some(cluster) = pg::require_postgres("a_postgres_outage_fails_closed") else { return };
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.database_url = pg::fresh_postgres_database(&cluster).await;
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    gate.extra.push(("DB_BUSY_TIMEOUT_MS".into(), "500".into()));
    gate.extra.push(("KEY_CACHE_TTL_MS".into(), "60000".into()));
    let mut child = gate.spawn("gate.log");
    gate.wait_ready(&mut child).await;
    let created = gate
        .admin("POST", "/api-keys", Some(json!({"name": "steady", "limits": {"daily_requests": 10000}})))
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let mut ok = 0;
    for _ in 0..20 {
        assert_eq!(gate.generate(&key, "llama3").await.0, 200);
        ok += 1;
    }

    let _restart = StartOnDrop;
    pg_ctl(&["stop", "-m", "fast"]);
    let during = mock.count_path("/api/generate");
    for _ in 0..5 {
        let (status, body) = gate.generate(&key, "llama3").await;
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    }
    let health = awc::Client::default()
        .get(format!("http://127.0.0.1:{}/health", gate.proxy_port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 503);
    assert_eq!(mock.count_path("/api/generate"), during, "nothing is forwarded while the database is down");

    pg_ctl(&["start"]);
    let back = Instant::now();
    loop {
        let (status, _) = gate.generate(&key, "llama3").await;
        if status == 200 {
            ok += 1;
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "the gate did not recover");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let usage = loop {
        let k = gate.admin("GET", &format!("/api-keys/{}", created["id"]), None).await;
        if k["usage"]["in_flight"] == 0 {
            break k["usage"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "a reservation is stuck after the outage");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(usage["day"]["requests"], ok, "every counted request was served, nothing half-counted");
    assert_eq!(mock.count_path("/api/generate"), ok as usize);
    let rows = gate.admin("GET", &format!("/usage?key_id={}&limit=1000", created["id"]), None).await;
    assert_eq!(rows["rows"].as_array().unwrap().len(), ok as usize);
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}
