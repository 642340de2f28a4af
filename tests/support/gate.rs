//! Running the real `ollama-gate` binary from tests: a process per gate, on
//! free ports, in a folder of its own.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ollama-gate");
pub const PASSWORD: &str = "process-test-password";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Gate {
    pub dir: PathBuf,
    pub proxy: u16,
    pub admin: u16,
    upstream: String,
    pub database_url: String,
    pub extra: Vec<(String, String)>,
}

impl Gate {
    pub fn new(dir: &Path, upstream: &str) -> Gate {
        Gate {
            dir: dir.to_path_buf(),
            proxy: free_port(),
            admin: free_port(),
            upstream: upstream.into(),
            database_url: "sqlite://data/gate.db".into(),
            extra: vec![],
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(&self.dir)
            .env_clear()
            .env("PROXY_HOST", "127.0.0.1")
            .env("PROXY_PORT", self.proxy.to_string())
            .env("ADMIN_PORT", self.admin.to_string())
            .env("DATABASE_URL", &self.database_url)
            .env("OLLAMA_URL", &self.upstream)
            .env("LOG_FILE", "logs/usage.log")
            .env("WORKERS", "1");
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    pub fn spawn(&self, stderr: &str) -> Child {
        let log = std::fs::File::create(self.dir.join(stderr)).unwrap();
        self.command().stdout(Stdio::null()).stderr(log).spawn().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    pub async fn wait_ready(&self, child: &mut Child) {
        let client = awc::Client::default();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the gate exited early with {status}");
            }
            if let Ok(r) = client.get(format!("http://127.0.0.1:{}/health", self.proxy)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the gate did not become ready");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = awc::Client::default()
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://127.0.0.1:{}/api{path}", self.admin),
            )
            .insert_header(("authorization", format!("Bearer {PASSWORD}")));
        let mut response = match body {
            Some(b) => request.send_json(&b).await.unwrap(),
            None => request.send().await.unwrap(),
        };
        let bytes = response.body().await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    pub async fn generate(&self, key: &str, model: &str) -> (u16, Vec<u8>) {
        let mut r = awc::Client::default()
            .post(format!("http://127.0.0.1:{}/api/generate", self.proxy))
            .insert_header(("authorization", format!("Bearer {key}")))
            .send_json(&json!({"model": model, "prompt": "one two three", "stream": false}))
            .await
            .unwrap();
        (r.status().as_u16(), r.body().await.unwrap().to_vec())
    }
}

/// Sends a signal with the system's `kill`, as an operator or an orchestrator would.
pub fn kill(child: &Child, signal: i32) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

pub async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < within, "the gate did not exit in time");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
