//! Pulls started from the console: each runs as a task in the gate that
//! reads the backend's NDJSON progress (`status`, `digest`, `total`,
//! `completed`, or `error`) and keeps only the latest state here, in this
//! process's memory, under a random id. The pull page reads it; a reload
//! reads it again and never starts another pull. Finished pulls stay a few
//! minutes so their page can still say how they ended.

use crate::upstream::pool::Backend;
use crate::upstream::{request, Upstreams};
use actix_web::http::Method;
use futures_util::StreamExt;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a finished pull's page still finds it.
const KEEP_FINISHED: Duration = Duration::from_secs(300);
/// A bound on pulls known at once, so a loop of posts cannot grow memory.
const MAX_PULLS: usize = 64;
/// A pull whose backend says nothing for this long is given up: verifying a
/// large blob is quiet for a while, so this is generous.
const IDLE_LIMIT: Duration = Duration::from_secs(600);
/// A progress line longer than this is not Ollama's.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Done,
    Failed(String),
}

/// One blob of the model, as the progress lines report it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub digest: String,
    pub total: i64,
    pub completed: i64,
}

/// One backend's side of a pull.
#[derive(Debug, Clone)]
pub struct Track {
    pub backend: String,
    pub status: String,
    pub layers: Vec<Layer>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub model: String,
    /// When it was started, in seconds since the epoch.
    pub started_at: i64,
    pub tracks: Vec<Track>,
    finished_at: Option<Instant>,
}

impl Pull {
    pub fn running(&self) -> bool {
        self.tracks.iter().any(|t| t.outcome == Outcome::Running)
    }
}

fn pulls() -> &'static Mutex<HashMap<String, Pull>> {
    static PULLS: OnceLock<Mutex<HashMap<String, Pull>>> = OnceLock::new();
    PULLS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Pull>> {
    pulls().lock().unwrap_or_else(|e| e.into_inner())
}

fn new_id() -> String {
    let mut rng = rand::thread_rng();
    (0..24).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect()
}

/// The pull's latest state, if it is still known.
pub fn get(id: &str) -> Option<Pull> {
    lock().get(id).cloned()
}

/// Starts pulling `model` on each backend, each in a task of its own on this
/// worker (the HTTP client is not `Send`). Returns the pull's id, or why
/// none could start.
pub fn start(
    upstreams: Arc<Upstreams>,
    client: awc::Client,
    model: &str,
    backends: Vec<Arc<Backend>>,
    now: i64,
) -> Result<String, String> {
    let id = new_id();
    {
        let mut map = lock();
        map.retain(|_, p| p.finished_at.is_none_or(|at| at.elapsed() < KEEP_FINISHED));
        if map.len() >= MAX_PULLS {
            // Finished ones make room first, the oldest first.
            let oldest = map
                .iter()
                .filter_map(|(id, p)| p.finished_at.map(|at| (at, id.clone())))
                .min()
                .map(|(_, id)| id);
            match oldest {
                Some(old) => {
                    map.remove(&old);
                }
                None => {
                    return Err(format!("{MAX_PULLS} pulls are running already; try again once one ends"))
                }
            }
        }
        let tracks = backends
            .iter()
            .map(|b| Track {
                backend: b.spec.name.clone(),
                status: "starting".into(),
                layers: vec![],
                outcome: Outcome::Running,
            })
            .collect();
        map.insert(id.clone(), Pull { model: model.to_owned(), started_at: now, tracks, finished_at: None });
    }
    for (i, backend) in backends.into_iter().enumerate() {
        let (upstreams, client, id, model) =
            (upstreams.clone(), client.clone(), id.clone(), model.to_owned());
        actix_web::rt::spawn(async move {
            let outcome = follow(&upstreams, &client, &backend, &model, &id, i).await;
            if let Outcome::Failed(e) = &outcome {
                log::warn!("pull of {model} on {} failed: {e}", backend.spec.name);
            } else {
                log::info!("pulled {model} on {}", backend.spec.name);
            }
            update(&id, i, |t| t.outcome = outcome);
        });
    }
    Ok(id)
}

/// Changes one track; the pull is finished when no track runs any more.
fn update(id: &str, track: usize, change: impl FnOnce(&mut Track)) {
    let mut map = lock();
    let Some(pull) = map.get_mut(id) else { return };
    if let Some(t) = pull.tracks.get_mut(track) {
        change(t);
    }
    if !pull.running() && pull.finished_at.is_none() {
        pull.finished_at = Some(Instant::now());
    }
}

/// One line of `/api/pull`'s stream (`api.ProgressResponse`, or an error).
#[derive(Debug, Default, Deserialize)]
struct Line {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    total: Option<i64>,
    #[serde(default)]
    completed: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

/// Reads one backend's pull to its end; the outcome is how it ended.
async fn follow(
    upstreams: &Upstreams,
    client: &awc::Client,
    backend: &Backend,
    model: &str,
    id: &str,
    track: usize,
) -> Outcome {
    let name = &backend.spec.name;
    let sent = request(upstreams, client, Method::POST, backend.url(), "/api/pull")
        .send_json(&json!({"model": model, "stream": true}))
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("backend {name} could not be reached: {e}")),
    };
    if !response.status().is_success() {
        let status = response.status();
        let said = response.json::<Line>().await.ok().and_then(|l| l.error);
        return Outcome::Failed(match said {
            Some(e) => format!("backend {name} answered {status}: {e}"),
            None => format!("backend {name} answered {status}"),
        });
    }
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(IDLE_LIMIT, response.next()).await {
            Err(_) => {
                return Outcome::Failed(format!("backend {name} said nothing for {}s", IDLE_LIMIT.as_secs()))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Outcome::Failed(format!("backend {name} broke off the pull: {e}")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(outcome) = apply(id, track, &line) {
                return outcome;
            }
        }
        if pending.len() > MAX_LINE {
            return Outcome::Failed(format!(
                "backend {name} sent a progress line longer than {MAX_LINE} bytes"
            ));
        }
    }
    // The last line may come without its newline.
    if let Some(outcome) = apply(id, track, &pending) {
        return outcome;
    }
    Outcome::Failed(format!("backend {name} ended the stream before the pull was done"))
}

/// Takes in one progress line; `Some` once it says how the pull ended.
fn apply(id: &str, track: usize, line: &[u8]) -> Option<Outcome> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let line: Line = match serde_json::from_slice(line) {
        Ok(l) => l,
        Err(e) => {
            return Some(Outcome::Failed(format!("the backend sent a progress line that is not JSON: {e}")))
        }
    };
    if let Some(error) = line.error {
        return Some(Outcome::Failed(error));
    }
    let done = line.status.as_deref() == Some("success");
    update(id, track, |t| {
        if let Some(status) = line.status {
            t.status = status;
        }
        if let Some(digest) = line.digest {
            let total = line.total.unwrap_or(0).max(0);
            // Go leaves `completed` out while it is zero.
            let completed = line.completed.unwrap_or(0).clamp(0, total.max(0));
            match t.layers.iter_mut().find(|l| l.digest == digest) {
                Some(layer) => {
                    layer.total = total;
                    layer.completed = completed;
                }
                None => t.layers.push(Layer { digest, total, completed }),
            }
        }
    });
    done.then_some(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(id: &str) -> Pull {
        let track =
            Track { backend: "a".into(), status: String::new(), layers: vec![], outcome: Outcome::Running };
        let pull = Pull { model: "m".into(), started_at: 0, tracks: vec![track], finished_at: None };
        lock().insert(id.to_owned(), pull.clone());
        pull
    }

    #[test]
    fn progress_lines_fill_the_layers_and_success_ends_the_pull() {
        one("t-progress");
        let digest = "sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa";
        assert_eq!(apply("t-progress", 0, br#"{"status":"pulling manifest"}"#), None);
        let first = format!(r#"{{"status":"pulling 6a0746a1ec1a","digest":"{digest}","total":100}}"#);
        assert_eq!(apply("t-progress", 0, first.as_bytes()), None);
        let half =
            format!(r#"{{"status":"pulling 6a0746a1ec1a","digest":"{digest}","total":100,"completed":50}}"#);
        assert_eq!(apply("t-progress", 0, half.as_bytes()), None);
        let t = &get("t-progress").unwrap().tracks[0];
        assert_eq!((t.layers.len(), t.layers[0].total, t.layers[0].completed), (1, 100, 50));
        assert_eq!(t.status, "pulling 6a0746a1ec1a");
        assert_eq!(apply("t-progress", 0, br#"{"status":"success"}"#), Some(Outcome::Done));
    }

    #[test]
    fn an_error_line_or_a_line_that_is_not_json_ends_the_pull_with_its_words() {
        one("t-error");
        let failed = apply("t-error", 0, br#"{"error":"pull model manifest: file does not exist"}"#);
        assert_eq!(failed, Some(Outcome::Failed("pull model manifest: file does not exist".into())));
        assert!(matches!(apply("t-error", 0, b"<html>"), Some(Outcome::Failed(e)) if e.contains("not JSON")));
        assert_eq!(apply("t-error", 0, b"\r\n"), None, "blank lines are skipped");
    }
}
