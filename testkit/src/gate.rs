//! Running the real `ollama-gate` binary from tests: a process per gate, on
//! free ports, in a folder of its own.

use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The gate binary cargo built for this test run: it sits beside the `deps`
/// folder the test binary runs from (`target/<profile>/`).
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own path");
    let profile = exe.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps");
    profile.join("ollama-gate")
}
pub const PASSWORD: &str = "process-test-password";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Gates listen on port 0 and the ports they got are read from their startup
/// line: a port picked in advance could be taken by anything meanwhile.
pub struct Gate {
    pub dir: PathBuf,
    ports: Cell<(u16, u16)>,
    log: RefCell<PathBuf>,
    upstream: String,
    pub database_url: String,
    pub extra: Vec<(String, String)>,
}

impl Gate {
    pub fn new(dir: &Path, upstream: &str) -> Gate {
        Gate {
            dir: dir.to_path_buf(),
            ports: Cell::new((0, 0)),
            log: RefCell::new(PathBuf::new()),
            upstream: upstream.into(),
            database_url: "sqlite://data/gate.db".into(),
            extra: vec![],
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(&self.dir)
            .env_clear()
            .env("PROXY_HOST", "127.0.0.1")
            .env("PROXY_PORT", "0")
            .env("ADMIN_PORT", "0")
            .env("DATABASE_URL", &self.database_url)
            .env("OLLAMA_URL", &self.upstream)
            // Tests hold many requests at once; the fair queue has tests of its own.
            .env("BACKEND_DEFAULT_SLOTS", "1024")
            .env("LOG_FILE", "logs/usage.log")
            .env("WORKERS", "1");
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    pub fn proxy_port(&self) -> u16 {
        self.ports.get().0
    }

    pub fn admin_port(&self) -> u16 {
        self.ports.get().1
    }

    pub fn spawn(&self, stderr: &str) -> Child {
        self.ports.set((0, 0));
        *self.log.borrow_mut() = self.dir.join(stderr);
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
                let log = std::fs::read_to_string(&*self.log.borrow()).unwrap_or_default();
                panic!("the gate exited early with {status}:\n{log}");
            }
            if self.proxy_port() == 0 {
                let log = std::fs::read_to_string(&*self.log.borrow()).unwrap_or_default();
                if let Some(ports) = announced_ports(&log) {
                    self.ports.set(ports);
                }
            } else if let Ok(r) =
                client.get(format!("http://127.0.0.1:{}/health", self.proxy_port())).send().await
            {
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
                format!("http://127.0.0.1:{}/api{path}", self.admin_port()),
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
            .post(format!("http://127.0.0.1:{}/api/generate", self.proxy_port()))
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

/// The ports the gate announced it is serving on.
fn announced_ports(log: &str) -> Option<(u16, u16)> {
    let (proxy, admin) = ollama_gate::cli::announced_addresses(log)?;
    let port = |addr: &str| addr.rsplit(':').next()?.parse().ok();
    Some((port(proxy)?, port(admin)?))
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
