//! The real `ollama-gate` binary as a user runs it: startup, the command line,
//! a kill -9 in the middle of a stream and of busy batches, SIGTERM, and what
//! ends up on disk.

use testkit::{gate, mock_ollama};

// Shared with the other suites; each uses only part of them.

use gate::*;
use mock_ollama::MockOllama;
use serde_json::json;
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn startup_fails_fast_with_one_line_naming_the_bad_setting() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), "http://127.0.0.1:11434");
    for (name, value) in [
        ("APP_TZ", "Mars/Olympus"),
        ("OLLAMA_URL", "not a url"),
        ("DATABASE_URL", "mysql://x"),
        ("PROXY_PORT", "99999"),
    ] {
        let out = gate.command().env(name, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = gate
        .command()
        .env("PROXY_PORT", taken.local_addr().unwrap().port().to_string())
        .env("ADMIN_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PROXY_PORT"));
}

#[actix_web::test]
async fn an_unreachable_postgresql_is_reported_with_its_cause_and_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), "http://127.0.0.1:11434");
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://gate:hunter2secret@127.0.0.1:{port}/gate");
    let started = Instant::now();
    let out = gate.command().env("DATABASE_URL", &url).env("ADMIN_PASSWORD", "x").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(stderr.contains(&format!("PostgreSQL at 127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "the cause: {stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "fails fast");
}

#[actix_web::test]
async fn an_unknown_setting_in_the_config_file_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), "http://127.0.0.1:11434");
    let file = dir.path().join("gate.toml");
    std::fs::write(&file, "proxy_prot = 9000\n").unwrap();
    let out = gate.command().arg("--config").arg(&file).env("ADMIN_PASSWORD", "x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PROXY_PROT") && stderr.contains("PROXY_PORT"), "{stderr}");
}

#[actix_web::test]
async fn help_lists_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), "http://127.0.0.1:11434");
    let out = gate.command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (name, _, _) in ollama_gate::config::SETTINGS {
        assert!(help.contains(name), "--help does not name {name}");
    }
}

#[actix_web::test]
async fn a_first_start_prints_a_generated_password_once_and_stores_only_its_hash() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), &mock.url);
    let mut first = gate.spawn("first.log");
    gate.wait_ready(&mut first).await;
    kill(&first, 15);
    wait_exit(&mut first, Duration::from_secs(10)).await;
    let log = std::fs::read_to_string(dir.path().join("first.log")).unwrap();
    let password = log
        .lines()
        .find_map(|l| l.strip_prefix("ollama-gate: generated admin password: "))
        .expect("the generated password is printed")
        .trim()
        .to_owned();
    let mut second = gate.spawn("second.log");
    gate.wait_ready(&mut second).await;
    let reply = awc::Client::default()
        .get(format!("http://127.0.0.1:{}/api/api-keys", gate.admin_port()))
        .insert_header(("authorization", format!("Bearer {password}")))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200, "the printed password opens the admin API");
    kill(&second, 15);
    wait_exit(&mut second, Duration::from_secs(10)).await;
    assert!(!std::fs::read_to_string(dir.path().join("second.log"))
        .unwrap()
        .contains("generated admin password"));
    // The main file and its write-ahead log: a recent write may still be in the latter.
    let db: Vec<u8> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!contains(&db, password.as_bytes()), "the plaintext password is in the database");
    assert!(contains(&db, b"$argon2id$"), "an argon2id hash is stored");
}

#[actix_web::test]
async fn keys_made_on_the_command_line_work_through_the_gate() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    let out = gate.run(&["keys", "create", "--name", "laptop", "--daily-tokens", "100000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("sk-og-"));
    let listed = String::from_utf8(gate.run(&["keys", "list"]).stdout).unwrap();
    assert!(listed.contains("laptop") && !listed.contains(&key));
    assert!(listed.contains("daily_tokens=100000"), "keys list shows limits: {listed}");
    let listed: serde_json::Value =
        serde_json::from_slice(&gate.run(&["keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["limits"]["daily_tokens"], 100000);
    assert!(!listed.to_string().contains(&key));
    let mut child = gate.spawn("gate.log");
    gate.wait_ready(&mut child).await;
    assert_eq!(gate.generate(&key, "llama3").await.0, 200);
    // The container healthcheck: the running gate's /health, through its own PROXY_PORT.
    let port = gate.proxy_port().to_string();
    let health = gate.command().args(["health"]).env("PROXY_PORT", &port).output().unwrap();
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    assert!(String::from_utf8_lossy(&health.stdout).contains("\"database\":\"ok\""));
    let closed = free_port().to_string();
    assert!(!gate.command().args(["health"]).env("PROXY_PORT", closed).output().unwrap().status.success());
    assert!(gate.run(&["keys", "revoke", "1"]).status.success());
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(gate.generate(&key, "llama3").await.0, 401);
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}

#[actix_web::test]
async fn a_process_killed_mid_stream_leaves_nothing_stuck_after_a_restart() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    gate.extra.push(("RESERVATION_STALE_AFTER_SECS".into(), "1".into()));
    let mut child = gate.spawn("before.log");
    gate.wait_ready(&mut child).await;
    let created = gate
        .admin(
            "POST",
            "/api-keys",
            Some(json!({"name": "k", "limits": {"max_concurrent": 1, "daily_tokens": 5000}})),
        )
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let stream = awc::Client::default()
        .post(format!("http://127.0.0.1:{}/api/generate", gate.proxy_port()))
        .insert_header(("authorization", format!("Bearer {key}")))
        .send_json(&json!({"model": "slow", "prompt": "one two three"}));
    let _response = stream.await.unwrap();
    kill(&child, 9);
    wait_exit(&mut child, Duration::from_secs(5)).await;

    let mut child = gate.spawn("after.log");
    gate.wait_ready(&mut child).await;
    let started = Instant::now();
    loop {
        let k = gate.admin("GET", "/api-keys/1", None).await;
        if k["usage"]["in_flight"] == 0 {
            assert_eq!(
                k["usage"]["day"]["tokens"], 3,
                "the prompt estimate is charged, the reservation released"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the stale reservation was never settled");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = gate.admin("GET", "/usage?key_id=1", None).await;
    assert_eq!(rows["rows"].as_array().unwrap().len(), 1);
    assert_eq!(rows["rows"][0]["status"], "interrupted");
    assert_eq!(gate.generate(&key, "llama3").await.0, 200, "the concurrency slot is free again");
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;
}

#[actix_web::test]
async fn sigterm_lets_running_streams_finish_then_exits_cleanly() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    gate.extra.push(("SHUTDOWN_TIMEOUT_SECS".into(), "20".into()));
    let mut child = gate.spawn("gate.log");
    gate.wait_ready(&mut child).await;
    let created = gate.admin("POST", "/api-keys", Some(json!({"name": "k"}))).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let mut response = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .post(format!("http://127.0.0.1:{}/api/generate", gate.proxy_port()))
        .insert_header(("authorization", format!("Bearer {key}")))
        .send_json(&json!({"model": "slow", "prompt": "one two three"}))
        .await
        .unwrap();
    kill(&child, 15);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let refused = std::net::TcpStream::connect(("127.0.0.1", gate.proxy_port()));
    assert!(refused.is_err(), "new connections are refused while draining");
    let body = response.body().limit(1 << 20).await.unwrap();
    let last = String::from_utf8_lossy(&body).lines().last().unwrap().to_owned();
    let log = std::fs::read_to_string(dir.path().join("gate.log")).unwrap();
    assert!(last.contains("\"done\":true"), "the running stream finished: {last}\n{log}");
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}");
}

#[actix_web::test]
async fn no_plaintext_key_reaches_the_database_the_logs_or_the_usage_log() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    gate.extra.push(("RUST_LOG".into(), "debug".into()));
    let mut child = gate.spawn("debug.log");
    gate.wait_ready(&mut child).await;
    let mut secrets = vec![];
    let created =
        gate.admin("POST", "/api-keys", Some(json!({"name": "k", "limits": {"daily_requests": 2}}))).await;
    secrets.push(created["key"].as_str().unwrap().to_owned());
    for _ in 0..3 {
        gate.generate(&secrets[0], "llama3").await;
    }
    gate.generate(&secrets[0], "broken").await;
    let rotated = gate.admin("POST", "/api-keys/1/rotate", None).await;
    secrets.push(rotated["key"].as_str().unwrap().to_owned());
    gate.generate(&secrets[1], "llama3").await;
    gate.generate(&secrets[0], "llama3").await;
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;

    let mut files = vec![dir.path().join("debug.log"), dir.path().join("logs/usage.log")];
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let debug_log = std::fs::read_to_string(dir.path().join("debug.log")).unwrap();
    assert!(debug_log.contains("DEBUG"), "the gate really ran at debug level");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for secret in &secrets {
            // The secret part alone, so a key split or re-encoded would show too.
            assert!(!contains(&bytes, &secret.as_bytes()[6..30]), "a key is in {}", file.display());
        }
    }
}

/// Many clients at once, so the writer is almost always in the middle of a
/// batch, then kill -9; three times over, and a restart each time.
#[actix_web::test]
async fn killed_in_the_middle_of_batches_no_admission_is_lost_and_each_is_settled_once() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut gate = Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), PASSWORD.into()));
    let mut child = gate.spawn("start.log");
    gate.wait_ready(&mut child).await;
    let big = 1_000_000_000i64;
    let created = gate
        .admin(
            "POST",
            "/api-keys",
            Some(json!({"name": "k", "limits": {"daily_requests": big, "daily_tokens": big, "total_tokens": big}})),
        )
        .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let mut answered = 0;
    for (round, run_for) in [150u64, 320, 90].into_iter().enumerate() {
        let port = gate.proxy_port();
        let clients: Vec<_> = (0..24)
            .map(|i| {
                let key = key.clone();
                actix_web::rt::spawn(async move {
                    let client = awc::Client::default();
                    let mut ok = 0;
                    // Until the gate is gone: every other request streams.
                    loop {
                        let sent = client
                            .post(format!("http://127.0.0.1:{port}/api/generate"))
                            .insert_header(("authorization", format!("Bearer {key}")))
                            .send_json(
                                &json!({"model": "llama3", "prompt": "one two three", "stream": i % 2 == 0}),
                            )
                            .await;
                        let Ok(mut response) = sent else { return ok };
                        match response.body().await {
                            Ok(_) if response.status() == 200 => ok += 1,
                            _ => return ok,
                        }
                    }
                })
            })
            .collect();
        actix_web::rt::time::sleep(Duration::from_millis(run_for)).await;
        kill(&child, 9);
        wait_exit(&mut child, Duration::from_secs(5)).await;
        for c in clients {
            answered += c.await.unwrap();
        }
        child = gate.spawn(&format!("restart-{round}.log"));
        gate.wait_ready(&mut child).await;
    }
    // The last start settles what the last kill left (its process is known dead).
    let started = Instant::now();
    while gate.admin("GET", "/api-keys/1", None).await["usage"]["in_flight"] != 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "reservations left unsettled");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(10)).await;

    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("data/gate.db").display()))
        .await
        .unwrap();
    let one = |sql: &'static str| {
        let db = db.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await.unwrap() }
    };
    let rows = one("SELECT COUNT(*) FROM usage WHERE key_id = 1").await;
    let charged = one("SELECT COALESCE(SUM(total_tokens), 0) FROM usage WHERE key_id = 1").await;
    let given_back =
        one("SELECT COUNT(*) FROM usage WHERE status IN ('not_forwarded', 'upstream_unreachable')").await;
    let interrupted = one("SELECT COUNT(*) FROM usage WHERE status = 'interrupted'").await;
    assert_eq!(one("SELECT COUNT(*) FROM reservations").await, 0, "no reservation is left behind");
    assert_eq!(one("SELECT in_flight FROM api_keys WHERE id = 1").await, 0);
    assert_eq!(
        one("SELECT total_tokens_used FROM api_keys WHERE id = 1").await,
        charged,
        "the counters hold exactly what the usage rows charge: nothing settled twice, nothing lost"
    );
    assert_eq!(one("SELECT total_requests_used FROM api_keys WHERE id = 1").await, rows - given_back);
    assert!(answered > 0 && rows >= answered, "{answered} answered, {rows} usage rows");
    assert!(rows as usize >= mock.count_path("/api/generate"), "every forwarded request has its usage row");
    assert!(interrupted > 0, "the kills caught requests in flight");
}
