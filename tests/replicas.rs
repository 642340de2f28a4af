//! Several gate processes on one database enforce one exact quota.

use testkit::{gate, mock_ollama, pg};

use futures_util::future::join_all;
use gate::*;
use mock_ollama::MockOllama;
use serde_json::json;
use std::process::Child;
use std::time::{Duration, Instant};

struct Replicas {
    gates: Vec<Gate>,
    children: Vec<Child>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Replicas {
    async fn start(
        n: usize,
        database_url: &str,
        mock: &MockOllama,
        shared_dir: Option<&std::path::Path>,
    ) -> Replicas {
        let mut gates = vec![];
        let mut dirs = vec![];
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let mut gate = Gate::new(shared_dir.unwrap_or(dir.path()), &mock.url);
            gate.database_url = database_url.to_owned();
            gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
            gate.extra.push(("LOG_FILE".into(), String::new()));
            // Upkeep (and so the reload of shared settings) every second.
            gate.extra.push(("RESERVATION_STALE_AFTER_SECS".into(), "3".into()));
            gates.push(gate);
            dirs.push(dir);
        }
        let mut children = vec![];
        for (i, gate) in gates.iter().enumerate() {
            let mut child = gate.spawn(&format!("replica-{i}.log"));
            gate.wait_ready(&mut child).await;
            children.push(child);
        }
        Replicas { gates, children, _dirs: dirs }
    }

    /// `total` requests released together, spread over the replicas in turn:
    /// request `i` goes to replica `i % n` with key `(i / n) % keys`, so
    /// every key is used on every replica.
    async fn race_keys(&self, keys: &[String], total: usize) -> (usize, usize) {
        let client = awc::Client::builder().connector(awc::Connector::new().limit(0)).finish();
        let replies = join_all((0..total).map(|i| {
            let port = self.gates[i % self.gates.len()].proxy_port();
            let client = client.clone();
            let key = keys[(i / self.gates.len()) % keys.len()].clone();
            async move {
                client
                    .post(format!("http://127.0.0.1:{port}/api/generate"))
                    .insert_header(("authorization", format!("Bearer {key}")))
                    .send_json(&json!({"model": "llama3", "prompt": "one two three", "stream": false}))
                    .await
                    .map(|mut r| {
                        let status = r.status().as_u16();
                        actix_web::rt::spawn(async move {
                            let _ = r.body().await;
                        });
                        status
                    })
                    .unwrap_or(0)
            }
        }))
        .await;
        let ok = replies.iter().filter(|s| **s == 200).count();
        let limited = replies.iter().filter(|s| **s == 429).count();
        (ok, limited)
    }

    /// The usage of the key, user or team at `path` once nothing is in flight.
    async fn settled_at(&self, path: &str) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let key = self.gates[0].admin("GET", path, None).await;
            if key["usage"]["in_flight"] == 0 {
                return key["usage"].clone();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "requests still in flight");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn exactly_the_limit_across(replicas: &Replicas, mock: &MockOllama, rounds: usize) {
    for round in 0..rounds {
        let created = replicas.gates[round % replicas.gates.len()]
            .admin(
                "POST",
                "/api-keys",
                Some(json!({"name": format!("shared {round}"), "limits": {"daily_requests": 100}})),
            )
            .await;
        let key = created["key"].as_str().unwrap().to_owned();
        let path = format!("/api-keys/{}", created["id"]);
        hundred_of_three_hundred(replicas, mock, &[key], &path, round).await;
    }
}

/// 300 requests over `keys` and every replica: exactly 100 admitted, counted
/// at `path` (whose limit is 100 a day), and seen by the upstream.
async fn hundred_of_three_hundred(
    replicas: &Replicas,
    mock: &MockOllama,
    keys: &[String],
    path: &str,
    round: usize,
) {
    let before = mock.count_path("/api/generate");
    let (ok, limited) = replicas.race_keys(keys, 300).await;
    assert_eq!((ok, limited), (100, 200), "round {round}");
    let usage = replicas.settled_at(path).await;
    assert_eq!(usage["day"]["requests"], 100, "round {round}");
    assert_eq!(mock.count_path("/api/generate") - before, 100, "round {round}: the mock saw other than 100");
}

#[actix_web::test]
async fn three_gates_on_one_postgres_database_admit_exactly_the_daily_limit() {
    let Some(cluster) = pg::require_postgres("three_gates_on_one_postgres_database") else { return };
    let mock = MockOllama::start().await;
    let url = pg::fresh_postgres_database(&cluster).await;
    let replicas = Replicas::start(3, &url, &mock, None).await;
    exactly_the_limit_across(&replicas, &mock, 3).await;
}

/// A team's limit, with its keys spread over several users, the users' keys
/// over every replica: exactly the limit gets through.
async fn exactly_the_team_limit_across(replicas: &Replicas, mock: &MockOllama, rounds: usize) {
    for round in 0..rounds {
        let admin = &replicas.gates[round % replicas.gates.len()];
        let team = admin
            .admin(
                "POST",
                "/teams",
                Some(json!({"name": format!("team {round}"), "limits": {"daily_requests": 100}})),
            )
            .await;
        let mut keys = vec![];
        for n in 0..3 {
            let user = admin
                .admin(
                    "POST",
                    "/users",
                    Some(json!({"name": format!("member {round}.{n}"), "team_id": team["id"]})),
                )
                .await;
            for k in 0..2 {
                let key = admin
                    .admin(
                        "POST",
                        "/api-keys",
                        Some(json!({"name": format!("key {round}.{n}.{k}"), "user_id": user["id"]})),
                    )
                    .await;
                keys.push(key["key"].as_str().unwrap().to_owned());
            }
        }
        hundred_of_three_hundred(replicas, mock, &keys, &format!("/teams/{}", team["id"]), round).await;
    }
}

#[actix_web::test]
async fn three_gates_on_one_postgres_database_admit_exactly_a_teams_limit() {
    let Some(cluster) = pg::require_postgres("three_gates_on_one_postgres_database_team") else { return };
    let mock = MockOllama::start().await;
    let url = pg::fresh_postgres_database(&cluster).await;
    let replicas = Replicas::start(3, &url, &mock, None).await;
    exactly_the_team_limit_across(&replicas, &mock, 3).await;
}

#[actix_web::test]
async fn two_gates_on_one_sqlite_file_admit_exactly_a_teams_limit() {
    let mock = MockOllama::start().await;
    let shared = tempfile::tempdir().unwrap();
    let replicas = Replicas::start(2, "sqlite://data/shared.db", &mock, Some(shared.path())).await;
    exactly_the_team_limit_across(&replicas, &mock, 2).await;
}

#[actix_web::test]
async fn two_gates_on_one_sqlite_file_admit_exactly_the_daily_limit() {
    let mock = MockOllama::start().await;
    let shared = tempfile::tempdir().unwrap();
    let replicas = Replicas::start(2, "sqlite://data/shared.db", &mock, Some(shared.path())).await;
    exactly_the_limit_across(&replicas, &mock, 3).await;
}

/// `GET /api/tags` goes through the key cache but not through admission.
async fn tags_status(gate: &Gate, key: &str) -> u16 {
    let reply = awc::Client::default()
        .get(format!("http://127.0.0.1:{}/api/tags", gate.proxy_port()))
        .insert_header(("authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    reply.status().as_u16()
}

#[actix_web::test]
async fn deactivating_a_key_on_one_replica_refuses_it_on_the_others_within_a_second() {
    let Some(cluster) = pg::require_postgres("deactivating_a_key_on_one_replica") else { return };
    let mock = MockOllama::start().await;
    let url = pg::fresh_postgres_database(&cluster).await;
    let replicas = Replicas::start(3, &url, &mock, None).await;
    let created = replicas.gates[0].admin("POST", "/api-keys", Some(json!({"name": "roaming"}))).await;
    let key = created["key"].as_str().unwrap();
    for gate in &replicas.gates {
        assert_eq!(gate.generate(key, "llama3").await.0, 200);
        // A models route, to warm each replica's key cache too.
        assert_eq!(tags_status(gate, key).await, 200);
    }
    replicas.gates[0].admin("PUT", &format!("/api-keys/{}/deactivate", created["id"]), None).await;
    let changed = Instant::now();
    for gate in &replicas.gates[1..] {
        assert_eq!(gate.generate(key, "llama3").await.0, 401, "admission re-checks the key at once");
    }
    actix_web::rt::time::sleep(Duration::from_millis(1000).saturating_sub(changed.elapsed())).await;
    for gate in &replicas.gates[1..] {
        assert_eq!(tags_status(gate, key).await, 401, "cached lookups expire within a second");
    }
}

#[actix_web::test]
async fn a_sqlite_database_moves_to_postgres_with_nothing_lost() {
    let Some(cluster) = pg::require_postgres("a_sqlite_database_moves_to_postgres") else { return };
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    let mut child = gate.spawn("sqlite.log");
    gate.wait_ready(&mut child).await;
    let a = gate.admin("POST", "/api-keys", Some(json!({"name": "alice", "owner": "a@example.org",
        "models": ["llama3"], "scopes": ["inference"], "limits": {"daily_tokens": 5000, "max_concurrent": 2}}))).await;
    let team = gate
        .admin(
            "POST",
            "/teams",
            Some(json!({"name": "lab", "limits": {"monthly_tokens": 90000},
        "model_limits": [{"model": "qwen3:*", "limits": {"daily_requests": 9}}]})),
        )
        .await;
    let user = gate
        .admin(
            "POST",
            "/users",
            Some(json!({"name": "bob", "email": "b@example.org",
        "team_id": team["id"], "limits": {"daily_requests": 50}})),
        )
        .await;
    let b = gate
        .admin(
            "POST",
            "/api-keys",
            Some(json!({"name": "bob", "expires_at": "2099-01-01",
        "user_id": user["id"], "model_limits": [{"model": "qwen3:8b", "limits": {"max_concurrent": 1}}]})),
        )
        .await;
    for _ in 0..3 {
        assert_eq!(gate.generate(a["key"].as_str().unwrap(), "llama3").await.0, 200);
    }
    assert_eq!(gate.generate(b["key"].as_str().unwrap(), "qwen3:8b").await.0, 200);
    gate.admin("PUT", &format!("/api-keys/{}/deactivate", b["id"]), None).await;
    gate.admin("PUT", "/settings", Some(json!({"anthropic_default_model": "llama3"}))).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let keys_before = gate.admin("GET", "/api-keys", None).await;
    let people_before = (gate.admin("GET", "/users", None).await, gate.admin("GET", "/teams", None).await);
    let usage_before = gate.admin("GET", "/usage?limit=1000", None).await;
    // Two refused requests: counted in memory, saved as the gate stops.
    assert_eq!(gate.generate("sk-og-not-a-key", "llama3").await.0, 401);
    assert_eq!(gate.generate("sk-og-not-a-key-either", "llama3").await.0, 401);
    let audit_before = gate.admin("GET", "/audit?limit=1000", None).await;
    assert!(audit_before["rows"].as_array().unwrap().len() >= 5, "{audit_before}");
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;

    let target = pg::fresh_postgres_database(&cluster).await;
    let sqlite_url = format!("sqlite://{}", dir.path().join("data/gate.db").display());
    let out = gate.run(&["migrate", "--from", &sqlite_url, "--to", &target]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("copied 2 keys, 1 users, 1 teams, 4 usage rows"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 refusal counts"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = gate.run(&["migrate", "--from", &sqlite_url, "--to", &target]);
    assert!(!again.status.success(), "copying into a database that is not empty is refused");

    gate.database_url = target;
    let mut child = gate.spawn("postgres.log");
    gate.wait_ready(&mut child).await;
    let mut keys_after = gate.admin("GET", "/api-keys", None).await;
    let mut keys_before = keys_before;
    for list in [&mut keys_before, &mut keys_after] {
        for k in list.as_array_mut().unwrap() {
            // Minute counters belong to the minute they were read in.
            k["usage"].as_object_mut().unwrap().remove("minute");
            k["remaining"].as_object_mut().unwrap().remove("requests_per_minute");
            k["remaining"].as_object_mut().unwrap().remove("tokens_per_minute");
        }
    }
    assert_eq!(keys_after, keys_before);
    assert_eq!(gate.admin("GET", "/usage?limit=1000", None).await, usage_before);
    assert_eq!(gate.admin("GET", "/audit?limit=1000", None).await, audit_before, "the audit log is copied");
    let refusals = gate.admin("GET", "/refusals?group_by=reason", None).await;
    assert_eq!(
        refusals["rows"],
        json!([{"reason": "unauthenticated", "count": 2}]),
        "and the refusal counts"
    );
    let mut people_after = (gate.admin("GET", "/users", None).await, gate.admin("GET", "/teams", None).await);
    let mut people_before = people_before;
    for list in [&mut people_before.0, &mut people_before.1, &mut people_after.0, &mut people_after.1] {
        for p in list.as_array_mut().unwrap() {
            p["usage"].as_object_mut().unwrap().remove("minute");
            for e in p["model_limits"].as_array_mut().unwrap() {
                e["usage"].as_object_mut().unwrap().remove("minute");
            }
        }
    }
    assert_eq!(people_after, people_before, "users, teams, their limits and counters are copied");
    assert_eq!(people_after.0[0]["usage"]["day"]["requests"], 1);
    assert_eq!(gate.admin("GET", "/settings", None).await["anthropic_default_model"], "llama3");
    assert_eq!(gate.generate(a["key"].as_str().unwrap(), "llama3").await.0, 200, "keys still authenticate");
    assert_eq!(gate.generate(b["key"].as_str().unwrap(), "llama3").await.0, 401, "and stay deactivated");
    let c = gate.admin("POST", "/api-keys", Some(json!({"name": "carol"}))).await;
    assert_eq!(c["id"], 3, "new ids continue after the copied ones");
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}

#[actix_web::test]
async fn settings_changed_on_one_replica_reach_the_others() {
    let mock = MockOllama::start().await;
    let shared = tempfile::tempdir().unwrap();
    let replicas = Replicas::start(2, "sqlite://data/shared.db", &mock, Some(shared.path())).await;
    let changed = replicas.gates[0]
        .admin("PUT", "/settings", Some(json!({"anthropic_default_model": "qwen3:8b", "ollama_urls": [mock.url.clone(), "http://127.0.0.1:9"]})))
        .await;
    assert_eq!(changed["anthropic_default_model"], "qwen3:8b");
    let started = Instant::now();
    loop {
        let seen = replicas.gates[1].admin("GET", "/settings", None).await;
        if seen["anthropic_default_model"] == "qwen3:8b"
            && seen["ollama_urls"].as_array().map_or(0, |u| u.len()) == 2
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the other replica still has {seen}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_signed_request_is_accepted_once_across_gates_on_one_postgres_database() {
    let Some(cluster) = pg::require_postgres("a_signed_request_is_accepted_once") else { return };
    let mock = MockOllama::start().await;
    let url = pg::fresh_postgres_database(&cluster).await;
    let replicas = Replicas::start(2, &url, &mock, None).await;
    let client = testkit::signing::OllamaKey::new(11);
    let created = replicas.gates[0].admin("POST", "/api-keys", Some(json!({"name": "cli"}))).await;
    let path = format!("/api-keys/{}/public-keys", created["id"]);
    let added = replicas.gates[0].admin("POST", &path, Some(json!({"public_key": client.pub_line()}))).await;
    assert!(added["fingerprint"].is_string(), "{added}");
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (url_path, header) = client.request("POST", "/api/generate", ts);
    let body = json!({"model": "llama3", "prompt": "hi", "stream": false}).to_string();
    // The same signed request sent to both gates at once, several times over.
    let send = |gate: &Gate| {
        awc::Client::default()
            .post(format!("http://127.0.0.1:{}{url_path}", gate.proxy_port()))
            .insert_header(("authorization", header.clone()))
            .insert_header(("content-type", "application/json"))
            .send_body(body.clone())
    };
    let replies = join_all((0..6).map(|i| send(&replicas.gates[i % 2]))).await;
    let statuses: Vec<u16> = replies.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
}
