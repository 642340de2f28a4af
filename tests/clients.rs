//! The official Python clients (ollama, openai, anthropic, langchain-ollama)
//! against the real binary: see tests/clients/.
//!
//! Needs the virtualenv that `.ci/run` creates (`.venv` with
//! tests/clients/requirements.txt). In CI its absence is a failure; elsewhere
//! the test says why it did not run.

#[allow(dead_code)]
#[path = "api/mock_ollama.rs"]
mod mock_ollama;

use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[actix_web::test]
async fn the_official_python_clients_work_through_the_gate() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if !python.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("no .venv: .ci/run should have created it (python3 -m venv .venv && .venv/bin/pip install -r tests/clients/requirements.txt)");
        }
        eprintln!("skipped: no .venv with the Python clients (see tests/clients/requirements.txt)");
        return;
    }
    let mock = mock_ollama::MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, admin) = (free_port(), free_port());
    let mut gate = Command::new(env!("CARGO_BIN_EXE_ollama-gate"))
        .current_dir(dir.path())
        .env_clear()
        .env("PROXY_HOST", "127.0.0.1")
        .env("PROXY_PORT", proxy.to_string())
        .env("ADMIN_PORT", admin.to_string())
        .env("OLLAMA_URL", &mock.url)
        .env("ADMIN_PASSWORD", "clients")
        .env("ANTHROPIC_DEFAULT_MODEL", "llama3")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = awc::Client::default();
    let started = Instant::now();
    while client.get(format!("http://127.0.0.1:{proxy}/health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the gate did not start");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let mut r = client
        .post(format!("http://127.0.0.1:{admin}/api/api-keys"))
        .insert_header(("authorization", "Bearer clients"))
        .send_json(&json!({"name": "python"}))
        .await
        .unwrap();
    let created: serde_json::Value = r.json().await.unwrap();
    let status = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/clients"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OLLAMA_GATE_URL", format!("http://127.0.0.1:{proxy}"))
        .env("OLLAMA_GATE_ADMIN_URL", format!("http://127.0.0.1:{admin}"))
        .env("OLLAMA_GATE_KEY", created["key"].as_str().unwrap())
        .status()
        .unwrap();
    let _ = gate.kill();
    let _ = gate.wait();
    assert!(status.success(), "the Python client suite failed");
}
