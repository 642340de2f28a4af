//! The official Python clients (ollama, openai, anthropic, langchain-ollama)
//! against the real binary: see tests/clients/.
//!
//! Needs the virtualenv that `.ci/run` creates (`.venv` with
//! tests/clients/requirements.txt). In CI its absence is a failure; elsewhere
//! the test says why it did not run.

use testkit::{gate, mock_ollama};

use serde_json::json;
use std::path::Path;
use std::process::Command;

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
    let mut gate = gate::Gate::new(dir.path(), &mock.url);
    gate.extra.push(("ADMIN_PASSWORD".into(), gate::PASSWORD.into()));
    gate.extra.push(("ANTHROPIC_DEFAULT_MODEL".into(), "llama3".into()));
    let mut child = gate.spawn("gate.log");
    gate.wait_ready(&mut child).await;
    let created = gate.admin("POST", "/api-keys", Some(json!({"name": "python"}))).await;
    let status = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/clients"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OLLAMA_GATE_URL", format!("http://127.0.0.1:{}", gate.proxy_port()))
        .env("OLLAMA_GATE_ADMIN_URL", format!("http://127.0.0.1:{}", gate.admin_port()))
        .env("OLLAMA_GATE_ADMIN_PASSWORD", gate::PASSWORD)
        .env("OLLAMA_GATE_KEY", created["key"].as_str().unwrap())
        .status()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(status.success(), "the Python client suite failed");
}
