//! Every backend probed in the background (`/api/version`, `/api/tags`,
//! `/api/ps`), what the probes found, and the listings merged across
//! backends.
//!
//! A backend that fails its probes twice in a row, or refuses a request's
//! connection, is out: no request goes to it until a probe answers again.

use super::catalog::{ModelInfo, Names, Tags};
use super::pool::{Backend, State};
use super::{get_json, Upstreams};
use crate::domain::cloud;
use crate::domain::model::normalize;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How often a backend in use is probed; one that is out, every second.
const PROBE_EVERY: Duration = Duration::from_secs(2);
const PROBE_DOWN_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Upstreams {
    /// Runs for the life of the process (on the thread that started it: the
    /// HTTP client is not `Send`).
    pub async fn watch(self: Arc<Self>, client: awc::Client) {
        let mut ticks: u64 = 0;
        let every = (PROBE_EVERY.as_millis() / PROBE_DOWN_EVERY.as_millis()).max(1) as u64;
        loop {
            let pool = self.pool();
            let due: Vec<_> = pool
                .backends
                .iter()
                .filter(|b| b.spec.enabled && (ticks % every == 0 || b.is_down()))
                .cloned()
                .collect();
            join_all(due.iter().map(|b| self.probe(&client, b, true))).await;
            ticks += 1;
            tokio::time::sleep(PROBE_DOWN_EVERY).await;
        }
    }

    /// Asks a backend for its version and models. `judge`: a failure counts
    /// against the backend; a re-listing out of turn only learns, so that a
    /// request's own check never takes a backend out (its send would say so).
    async fn probe(&self, client: &awc::Client, backend: &Arc<Backend>, judge: bool) {
        let url = backend.url();
        let version = match get_json(self, client, url, "/api/version", PROBE_TIMEOUT, true).await {
            Ok(v) => v.get("version").and_then(Value::as_str).map(str::to_owned),
            Err(_) if !judge => return,
            Err(why) => {
                if backend.probe_failed(why.clone()) {
                    log::warn!("backend {} is out: /api/version {why}", backend.spec.name);
                }
                return;
            }
        };
        let listed =
            |listing: Result<Value, String>| -> Option<Tags> { serde_json::from_value(listing.ok()?).ok() };
        let names = |tags: &Tags| -> HashSet<String> {
            tags.models.iter().filter_map(ModelInfo::name).map(normalize).collect()
        };
        let Some(tags) = listed(get_json(self, client, url, "/api/tags", PROBE_TIMEOUT, true).await) else {
            if judge && backend.probe_failed("/api/tags did not answer with a model list".into()) {
                log::warn!("backend {} is out: /api/tags failed", backend.spec.name);
            }
            return;
        };
        let models = names(&tags);
        let remote = tags.models.iter().filter(|m| m.is_remote()).filter_map(ModelInfo::name).map(normalize);
        cloud::set_remote(url.as_str(), remote.collect());
        // Older Ollamas have no /api/ps: nothing is known to be loaded.
        let loaded = listed(get_json(self, client, url, "/api/ps", PROBE_TIMEOUT, true).await)
            .map(|ps| names(&ps))
            .unwrap_or_default();
        if backend.probed(version, models, loaded) {
            log::info!("backend {} is back", backend.spec.name);
            self.serve_all_waiting();
        }
    }

    /// Backends no probe has seen yet are probed now, so that a fresh start
    /// reports what it found rather than "unknown".
    async fn probe_unknown(&self, client: &awc::Client) {
        let pool = self.pool();
        let unknown: Vec<_> = pool
            .backends
            .iter()
            .filter(|b| b.spec.enabled && b.health().state == State::Unknown)
            .cloned()
            .collect();
        join_all(unknown.iter().map(|b| self.probe(client, b, true))).await;
    }

    /// Every reachable backend listed now, out of turn: after the gate
    /// forwarded a copy, whose result may be a cloud model under a local
    /// name, known before the next request rather than the next probe.
    pub async fn relist(&self, client: &awc::Client) {
        let reachable = self.pool().reachable();
        join_all(reachable.iter().map(|b| self.probe(client, b, false))).await;
    }

    /// The version a backend reported, probed now if no probe has reached it yet.
    pub async fn version_of(&self, client: &awc::Client, backend: &Arc<Backend>) -> Option<String> {
        if backend.health().version.is_none() {
            self.probe(client, backend, true).await;
        }
        backend.health().version
    }

    /// `{"status": "ok"|"down", "version": …}`: ok while any backend is, with
    /// the first such backend's version.
    pub async fn status(&self, client: &awc::Client) -> Value {
        self.probe_unknown(client).await;
        let pool = self.pool();
        let up = pool.backends.iter().filter(|b| b.spec.enabled).find(|b| b.health().state == State::Up);
        match up {
            Some(b) => json!({ "status": "ok", "version": b.health().version }),
            None => json!({ "status": "down", "version": null }),
        }
    }

    /// Each backend for `/health`, and with `detail` (its options, models,
    /// why it is down) for the admin.
    pub fn backends_json(&self, detail: bool) -> Vec<Value> {
        let pool = self.pool();
        pool.backends
            .iter()
            .map(|b| {
                let health = b.health();
                let (busy, queued) = self.load_of(b);
                // The contract's two words: a disabled backend serves nothing,
                // so it is down (`enabled` says why, for the admin).
                let serving = b.spec.enabled && health.state != State::Down;
                let status = if serving { "ok" } else { "down" };
                let mut shown = json!({
                    "name": b.spec.name,
                    "url": b.spec.url.as_str(),
                    "status": status,
                    "slots": b.spec.slots,
                    "busy": busy,
                    "queued": queued,
                    "version": health.version,
                });
                if detail {
                    let mut loaded: Vec<_> = health.loaded.iter().collect();
                    loaded.sort();
                    shown["weight"] = json!(b.spec.weight);
                    shown["enabled"] = json!(b.spec.enabled);
                    shown["draining"] = json!(b.spec.draining);
                    shown["models"] = json!(health.models.map(|m| m.len()));
                    shown["loaded"] = json!(loaded);
                    shown["error"] = json!(health.error);
                    shown["since_secs"] = json!(health.since.elapsed().as_secs());
                }
                shown
            })
            .collect()
    }

    /// The normalised names of every backend's models; `None` when no
    /// backend could say.
    pub async fn model_names(&self, client: &awc::Client) -> Names {
        self.probe_unknown(client).await;
        let pool = self.pool();
        let mut names: Option<HashSet<String>> = None;
        for b in pool.reachable() {
            if let Some(models) = b.health().models {
                names.get_or_insert_with(HashSet::new).extend(models.iter().cloned());
            }
        }
        names.map(Arc::new)
    }

    /// A listing (`/api/tags`, `/api/ps`, `/v1/models`) of every reachable
    /// backend, each model once, in the order the backends are listed.
    pub async fn merged(&self, client: &awc::Client, path: &str) -> Result<Value, String> {
        let backends = self.pool().reachable();
        if backends.is_empty() {
            return Err("no backend is up".into());
        }
        let timeout = Duration::from_secs(10);
        let answers =
            join_all(backends.iter().map(|b| get_json(self, client, b.url(), path, timeout, false))).await;
        let (array, id) = if path.starts_with("/v1/") { ("data", "id") } else { ("models", "name") };
        let mut merged: Option<Value> = None;
        let mut seen = HashSet::new();
        let mut errors = Vec::new();
        for (backend, answer) in backends.iter().zip(answers) {
            let mut answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    errors.push(format!("{}: {e}", backend.spec.name));
                    continue;
                }
            };
            let items = match answer.get_mut(array).map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => vec![],
            };
            let out = merged.get_or_insert_with(|| {
                answer[array] = json!([]);
                answer
            });
            for item in items {
                let name = item.get(id).or_else(|| item.get("model")).and_then(Value::as_str).map(normalize);
                if name.is_none_or(|n| seen.insert(n)) {
                    if let Some(Value::Array(list)) = out.get_mut(array) {
                        list.push(item);
                    }
                }
            }
        }
        merged.ok_or_else(|| format!("no backend listed {path}: {}", errors.join("; ")))
    }

    /// A listing of each reachable backend on its own, in the order they are
    /// listed: the console shows which backend has which model.
    pub async fn each(&self, client: &awc::Client, path: &str) -> Vec<(Arc<Backend>, Result<Value, String>)> {
        let backends = self.pool().reachable();
        let timeout = Duration::from_secs(10);
        let answers =
            join_all(backends.iter().map(|b| get_json(self, client, b.url(), path, timeout, false))).await;
        backends.into_iter().zip(answers).collect()
    }

    /// `/api/tags` of every backend, for the console and the admin API.
    pub async fn tags(&self, client: &awc::Client) -> Result<Value, String> {
        self.merged(client, "/api/tags").await
    }
}
