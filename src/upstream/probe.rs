//! Whether the first upstream answers, for `/health` and the dashboard.

use super::Upstreams;
use actix_web::http::Method;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an upstream probe's answer is reused: health checks from a load
/// balancer must not become load on Ollama.
const PROBE_TTL: Duration = Duration::from_secs(5);

/// The last probe's answer and when it was taken.
#[derive(Default)]
pub struct Probe {
    cached: Mutex<Option<(Instant, Value)>>,
}

impl Probe {
    pub fn clear(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn fresh(&self) -> Option<Value> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached.as_ref().filter(|(at, _)| at.elapsed() < PROBE_TTL).map(|(_, v)| v.clone())
    }

    fn keep(&self, status: Value) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), status));
    }
}

impl Upstreams {
    /// `{"status": "ok"|"down", "version": …}` from the first upstream's `/api/version`.
    pub async fn status(&self, client: &awc::Client) -> Value {
        if let Some(cached) = self.probe.fresh() {
            return cached;
        }
        let url = self.urls()[0].clone();
        let probe = super::request(self, client, Method::GET, &url, "/api/version")
            .timeout(Duration::from_secs(2))
            .send();
        let status = match probe.await {
            Ok(mut r) if r.status().is_success() => {
                let version = r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v.get("version").cloned())
                    .unwrap_or(Value::Null);
                json!({ "status": "ok", "version": version })
            }
            _ => json!({ "status": "down", "version": null }),
        };
        self.probe.keep(status.clone());
        status
    }
}
