//! Ollama's model management: `/api/pull` streaming its progress as
//! `server/images.go` does, `/api/delete`, and the unload that
//! `/api/generate` with `keep_alive: 0` and no prompt is, and `/api/copy`.
//!
//! A pull of a model whose name starts with `missing` fails as a name the
//! registry does not know: `pulling manifest`, then an `{"error": ...}` line
//! under HTTP 200. Any other name succeeds and is listed by `/api/tags` from
//! then on. `set_pull_delay` spaces the lines; `hold_pulls` stops every pull
//! half-way through its first layer until `release_pulls`.

use super::*;
use std::time::Duration;

/// Ollama's own name for a model given without a tag.
pub(super) fn full_name(name: &str) -> String {
    if name.rsplit('/').next().unwrap_or(name).contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// The model a management body names (`model`, or the older `name`).
fn named(v: &Value) -> String {
    v.get("model").or_else(|| v.get("name")).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Two layers of a pull: the weights and the template, as digests and sizes.
const LAYERS: [(&str, i64); 2] = [
    ("sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa", 4_661_211_808),
    ("sha256:4fa551d4f938f68b8c1e6afa9d28befb70e3f33f75d0753248d530364aeea40f", 12_403),
];

/// The progress lines of a pull that succeeds, in Go's field order
/// (`status`, `digest`, `total`, `completed`; zero ones left out).
fn pull_lines(state: &MockState) -> Vec<String> {
    let mut lines = vec![state.line(&json!({"status": "pulling manifest"}))];
    for (digest, total) in LAYERS {
        let status = format!("pulling {}", &digest[7..19]);
        for step in 0..=4 {
            let mut fields =
                vec![("status", json!(status)), ("digest", json!(digest)), ("total", json!(total))];
            if step > 0 {
                fields.push(("completed", json!(total * step / 4)));
            }
            lines.push(state.line(&Ordered(fields)));
        }
    }
    for status in ["verifying sha256 digest", "writing manifest", "success"] {
        lines.push(state.line(&json!({"status": status})));
    }
    lines.into_iter().map(|l| l + "\n").collect()
}

/// Where a held pull stops: half of the first layer.
const HOLD_AFTER: usize = 4;

pub(super) fn pull(v: &Value, state: Data<MockState>) -> HttpResponse {
    state.pulls.fetch_add(1, Ordering::SeqCst);
    let model = full_name(&named(v));
    let failing = model.starts_with("missing");
    let stream_wanted = v.get("stream").and_then(Value::as_bool).unwrap_or(true);
    if !stream_wanted {
        if failing {
            return state.body(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "pull model manifest: file does not exist"}),
            );
        }
        state.pulled.lock().unwrap().push(model);
        return state.ok(&json!({"status": "success"}));
    }
    let lines = if failing {
        vec![
            state.line(&json!({"status": "pulling manifest"})) + "\n",
            state.line(&json!({"error": "pull model manifest: file does not exist"})) + "\n",
        ]
    } else {
        pull_lines(&state)
    };
    let delay = Duration::from_millis(state.pull_delay_ms.load(Ordering::SeqCst));
    let held = state.pull_held.load(Ordering::SeqCst);
    let body = stream::unfold((0usize, lines, state, model), move |(i, lines, state, model)| async move {
        if i >= lines.len() {
            if lines.last().is_some_and(|l| l.contains("success")) {
                state.pulled.lock().unwrap().push(model.clone());
            }
            return None;
        }
        if i > 0 && !delay.is_zero() {
            actix_web::rt::time::sleep(delay).await;
        }
        if held && i == HOLD_AFTER {
            state.pull_gate.0.acquire().await.expect("the pull gate stays open").forget();
        }
        let line = Bytes::from(lines[i].clone());
        Some((Ok::<_, actix_web::Error>(line), (i + 1, lines, state, model)))
    });
    HttpResponse::Ok().content_type("application/x-ndjson").streaming(body)
}

/// `DELETE /api/delete`: 200 with no body, or Ollama's 404.
pub(super) fn delete(v: &Value, state: &MockState) -> HttpResponse {
    let model = full_name(&named(v));
    if !tag_names(state).contains(&model) {
        let name = named(v);
        return state.body(
            actix_web::http::StatusCode::NOT_FOUND,
            &json!({"error": format!("model '{name}' not found")}),
        );
    }
    state.pulled.lock().unwrap().retain(|m| *m != model);
    state.deleted.lock().unwrap().insert(model);
    HttpResponse::Ok().finish()
}

/// Whether a generate request is Ollama's unload: `keep_alive` zero and nothing to generate.
pub(super) fn is_unload(v: &Value) -> bool {
    let zero = match v.get("keep_alive") {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m"),
        _ => false,
    };
    let prompt = v.get("prompt").and_then(Value::as_str).unwrap_or_default();
    zero && prompt.is_empty()
}

/// The unload's answer, as Ollama writes it.
pub(super) fn unload(v: &Value, state: &MockState) -> HttpResponse {
    let model = named(v);
    state.unloaded.lock().unwrap().insert(full_name(&model));
    state.ok(&Ordered(vec![
        ("model", json!(model)),
        ("created_at", json!(CREATED_AT)),
        ("response", json!("")),
        ("done", json!(true)),
        ("done_reason", json!("unload")),
    ]))
}

/// `/api/copy`: the destination is listed from then on; a copy of a cloud
/// model keeps its source's remote model, as Ollama's manifest copy does.
pub(super) fn copy(v: &Value, state: &MockState) -> HttpResponse {
    let field = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (source, destination) = (full_name(&field("source")), full_name(&field("destination")));
    let mut remote = state.remote.lock().unwrap();
    if let Some(model) = remote.iter().find(|(n, _)| *n == source).map(|(_, m)| m.clone()) {
        remote.push((destination, model));
    } else if tag_names(state).contains(&source) {
        state.pulled.lock().unwrap().push(destination);
    } else {
        return state.body(
            actix_web::http::StatusCode::NOT_FOUND,
            &json!({"error": format!("model '{source}' not found")}),
        );
    }
    HttpResponse::Ok().finish()
}

/// The names `/api/tags` lists now.
pub(super) fn tag_names(state: &MockState) -> Vec<String> {
    let base =
        state.models.lock().unwrap().clone().unwrap_or_else(|| DEFAULT_MODELS.map(str::to_owned).to_vec());
    let deleted = state.deleted.lock().unwrap().clone();
    let mut names: Vec<String> = base.into_iter().filter(|m| !deleted.contains(m)).collect();
    for m in state.pulled.lock().unwrap().iter() {
        if !names.contains(m) {
            names.push(m.clone());
        }
    }
    names
}

pub(super) const DEFAULT_MODELS: [&str; 3] = ["llama3:latest", "qwen3:8b", "mistral:latest"];
