//! A real `Application` on port 0, a fresh SQLite file and a mock Ollama per test.

use crate::mock_ollama::MockOllama;
use crate::pg::fresh_postgres_database;
use awc::http::StatusCode;
use ollama_gate::admin::AdminState;
use ollama_gate::clock::{Clock, ManualClock, SystemClock};
use ollama_gate::config::Settings;
use ollama_gate::proxy::ProxyState;
use ollama_gate::startup::Application;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "test-admin-password";

pub struct TestApp {
    pub proxy: String,
    pub admin: String,
    pub mock: MockOllama,
    pub state: actix_web::web::Data<AdminState>,
    pub proxy_state: actix_web::web::Data<ProxyState>,
    /// `sqlite://...` in a temporary folder, or a fresh PostgreSQL database.
    pub database_url: String,
    pub log_path: PathBuf,
    pub client: awc::Client,
    /// Keeps the database and log files until the test ends.
    pub _dir: tempfile::TempDir,
}

#[derive(Default)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
    pub clock: Option<Arc<ManualClock>>,
    pub upstream: Option<String>,
}

/// The suite runs on SQLite, and a second time on PostgreSQL with
/// `TEST_BACKEND=postgres` and `TEST_DATABASE_URL` (see scripts/test-postgres.sh).
pub fn postgres_backend() -> Option<String> {
    if std::env::var("TEST_BACKEND").ok()? != "postgres" {
        return None;
    }
    Some(std::env::var("TEST_DATABASE_URL").expect("TEST_BACKEND=postgres needs TEST_DATABASE_URL"))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub fn client() -> awc::Client {
    awc::Client::builder().connector(awc::Connector::new().limit(0)).timeout(Duration::from_secs(30)).finish()
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = match postgres_backend() {
        Some(cluster) => fresh_postgres_database(&cluster).await,
        None => format!("sqlite://{}", dir.path().join("gate.db").display()),
    };
    let log_path = dir.path().join("usage.log");
    let mut env: HashMap<String, String> = HashMap::from([
        ("PROXY_HOST".into(), "127.0.0.1".into()),
        ("PROXY_PORT".into(), "0".into()),
        ("ADMIN_PORT".into(), "0".into()),
        ("DATABASE_URL".into(), database_url.clone()),
        ("OLLAMA_URL".into(), options.upstream.clone().unwrap_or_else(|| mock.url.clone())),
        ("ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ("LOG_FILE".into(), log_path.display().to_string()),
        ("WORKERS".into(), "2".into()),
        ("SHUTDOWN_TIMEOUT_SECS".into(), "1".into()),
        // Most tests hold many requests at once and are not about the fair
        // queue; the queue's own tests set `slots=` on the backend's URL.
        ("BACKEND_DEFAULT_SLOTS".into(), "1024".into()),
    ]);
    for (k, v) in options.env {
        env.insert(k.to_owned(), v);
    }
    let database_url = env["DATABASE_URL"].clone();
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("test settings are valid");
    let clock: Arc<dyn Clock> = match &options.clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let app = Application::build_with_clock(settings, clock).await.expect("application builds");
    let proxy = format!("http://127.0.0.1:{}", app.proxy_port());
    let admin = format!("http://127.0.0.1:{}", app.admin_port());
    let state = app.state();
    let proxy_state = app.proxy_state();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp { proxy, admin, mock, state, proxy_state, database_url, log_path, client: client(), _dir: dir }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&self.body)}))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// NDJSON lines as values.
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub async fn send(request: awc::ClientRequest, body: Option<Vec<u8>>) -> Reply {
    let result = match body {
        Some(b) => request.send_body(b).await,
        None => request.send().await,
    };
    let mut response = result.expect("request reaches the gate");
    let body = response.body().limit(64 * 1024 * 1024).await.expect("body is read").to_vec();
    Reply { status: response.status(), headers: response.headers().clone(), body }
}

impl TestApp {
    pub fn admin_request(&self, method: &str, path: &str) -> awc::ClientRequest {
        self.client
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/api{path}", self.admin),
            )
            .insert_header(("authorization", format!("Bearer {ADMIN_PASSWORD}")))
            .insert_header(("content-type", "application/json"))
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        send(self.admin_request(method, path), body.map(|b| b.to_string().into_bytes())).await
    }

    /// Creates a key through the admin API and returns (secret, key object).
    pub async fn create_key(&self, body: Value) -> (String, Value) {
        let reply = self.admin("POST", "/api-keys", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let v = reply.json();
        (v["key"].as_str().unwrap().to_owned(), v)
    }

    pub async fn key(&self, id: &Value) -> Value {
        self.admin("GET", &format!("/api-keys/{id}"), None).await.json()
    }

    pub fn proxy_request(&self, method: &str, path: &str, key: Option<&str>) -> awc::ClientRequest {
        let mut r = self.client.request(
            awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.proxy),
        );
        if let Some(k) = key {
            r = r.insert_header(("authorization", format!("Bearer {k}")));
        }
        r
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> Reply {
        send(
            self.proxy_request("POST", path, key).insert_header(("content-type", "application/json")),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        send(self.proxy_request("GET", path, key), None).await
    }

    pub async fn generate(&self, key: &str, model: &str, stream: bool) -> Reply {
        self.post(
            "/api/generate",
            Some(key),
            json!({"model": model, "prompt": "one two three", "stream": stream}),
        )
        .await
    }

    /// Waits until settlements spawned after responses have reached the database.
    pub async fn settled(&self, id: &Value) -> Value {
        for _ in 0..200 {
            let key = self.key(id).await;
            if key["usage"]["in_flight"] == 0 {
                return key;
            }
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("key {id} still has requests in flight");
    }

    pub async fn usage_rows(&self, id: &Value) -> Vec<Value> {
        let reply = self.admin("GET", &format!("/usage?key_id={id}&limit=1000"), None).await;
        reply.json()["rows"].as_array().cloned().unwrap_or_default()
    }
}
