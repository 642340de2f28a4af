//! Deleting a model (behind a confirmation page) and unloading one: the
//! gate asks the backends that hold it, as Ollama's own API does it
//! (`DELETE /api/delete`; `/api/generate` with `keep_alive: 0`).

use super::model_names::check_name;
use super::models::names_in;
use super::{redirect_notice, render, Chrome, Nav, Notice, Page};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::AdminError;
use crate::admin::AdminState;
use crate::domain::audit::{Actor, AuditEntry};
use crate::domain::model::normalize;
use crate::upstream::pool::Backend;
use crate::upstream::request;
use actix_web::http::{Method, StatusCode};
use actix_web::web::{Data, Query};
use actix_web::HttpRequest;
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A delete or an unload is quick; a backend that takes longer is stuck.
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A model change in the audit log: which model, on which backends.
pub(super) async fn audit(
    state: &AdminState,
    actor: Actor,
    action: &'static str,
    model: &str,
    backends: &[String],
) {
    let entry = AuditEntry {
        at: state.clock.now().timestamp(),
        actor,
        action,
        target: Some(format!("model:{model}")),
        before: None,
        after: Some(json!({"backends": backends})),
    };
    crate::admin::audit::write(state.store.as_ref(), entry).await;
}

/// The backends whose listing (`/api/tags` or `/api/ps`) holds the model.
async fn holding(state: &AdminState, client: &awc::Client, path: &str, model: &str) -> Vec<Arc<Backend>> {
    let key = normalize(model);
    state
        .upstreams
        .each(client, path)
        .await
        .into_iter()
        .filter(|(_, listing)| listing.as_ref().is_ok_and(|l| names_in(l).contains(&key)))
        .map(|(b, _)| b)
        .collect()
}

fn checked(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    check_name(name).map_err(AdminError::BadRequest)?;
    Ok(name.to_owned())
}

#[derive(Deserialize)]
pub struct NameQuery {
    #[serde(default)]
    name: String,
}

#[derive(Template)]
#[template(path = "admin/model_delete.html")]
struct DeletePage {
    chrome: Chrome,
    name: String,
    holders: Vec<String>,
}

pub async fn delete_form(
    console: Console,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    query: Query<NameQuery>,
) -> Page {
    let name = checked(&query.name)?;
    let holders =
        holding(&state, &client, "/api/tags", &name).await.iter().map(|b| b.spec.name.clone()).collect();
    render(&DeletePage { chrome: Chrome::new(&console.session, Nav::Models), name, holders })
}

/// Ollama's words when it refuses, or the status alone.
async fn refusal<S>(response: &mut awc::ClientResponse<S>) -> String
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = response.status();
    match response.json::<Value>().await.ok().and_then(|v| v["error"].as_str().map(str::to_owned)) {
        Some(e) => format!("answered {status}: {e}"),
        None => format!("answered {status}"),
    }
}

/// How one backend took the change.
enum Answer {
    Done,
    NotFound(String),
    Failed(String),
}

async fn ask(
    state: &AdminState,
    client: &awc::Client,
    backend: &Backend,
    method: Method,
    path: &str,
    body: Value,
) -> Answer {
    let sent = request(&state.upstreams, client, method, backend.url(), path)
        .timeout(ACTION_TIMEOUT)
        .send_json(&body)
        .await;
    let name = &backend.spec.name;
    match sent {
        Err(e) => Answer::Failed(format!("backend {name} could not be reached: {e}")),
        Ok(r) if r.status().is_success() => Answer::Done,
        Ok(mut r) if r.status() == StatusCode::NOT_FOUND => {
            Answer::NotFound(format!("backend {name} {}", refusal(&mut r).await))
        }
        Ok(mut r) => Answer::Failed(format!("backend {name} {}", refusal(&mut r).await)),
    }
}

/// Asks each backend; any failure is the page's error, otherwise it is done
/// where at least one had the model.
async fn on_each(
    state: &AdminState,
    client: &awc::Client,
    backends: &[Arc<Backend>],
    method: Method,
    path: &str,
    body: Value,
    what: &str,
) -> Result<Vec<String>, AdminError> {
    let mut done = Vec::new();
    let (mut missing, mut failed) = (Vec::new(), Vec::new());
    for b in backends {
        match ask(state, client, b, method.clone(), path, body.clone()).await {
            Answer::Done => done.push(b.spec.name.clone()),
            Answer::NotFound(e) => missing.push(e),
            Answer::Failed(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        let partly = if done.is_empty() { String::new() } else { format!(" (done on {})", done.join(", ")) };
        return Err(AdminError::Upstream(format!(
            "The model could not be {what}: {}{partly}",
            failed.join("; ")
        )));
    }
    if done.is_empty() {
        let why = if missing.is_empty() { "no backend is up".to_owned() } else { missing.join("; ") };
        return Err(AdminError::NotFound(format!("The model could not be {what}, no backend has it: {why}")));
    }
    Ok(done)
}

/// The backends a form names (`backend`), or by default those holding the
/// model, or when none lists it every reachable one (so Ollama says why).
async fn targets(
    state: &AdminState,
    client: &awc::Client,
    choice: &str,
    path: &str,
    model: &str,
) -> Result<Vec<Arc<Backend>>, AdminError> {
    if !choice.is_empty() {
        return super::model_names::chosen(state, choice).map_err(AdminError::BadRequest);
    }
    let holders = holding(state, client, path, model).await;
    if holders.is_empty() {
        return Ok(state.upstreams.pool().reachable());
    }
    Ok(holders)
}

pub async fn delete_model(
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    post: CsrfForm,
) -> Page {
    let name = checked(post.form.get("name"))?;
    let backends = targets(&state, &client, post.form.get("backend"), "/api/tags", &name).await?;
    let done =
        on_each(&state, &client, &backends, Method::DELETE, "/api/delete", json!({"model": name}), "deleted")
            .await?;
    log::info!("deleted model {name} from the console on {}", done.join(", "));
    audit(&state, post.actor, "model.delete", &name, &done).await;
    Ok(redirect_notice(&req, "/models", Notice::ModelDeleted))
}

pub async fn unload_model(
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    post: CsrfForm,
) -> Page {
    let name = checked(post.form.get("name"))?;
    let backends = targets(&state, &client, post.form.get("backend"), "/api/ps", &name).await?;
    // An empty generation with `keep_alive: 0` is how Ollama unloads a model.
    let body = json!({"model": name, "keep_alive": 0, "stream": false});
    let done = on_each(&state, &client, &backends, Method::POST, "/api/generate", body, "unloaded").await?;
    log::info!("unloaded model {name} from the console on {}", done.join(", "));
    audit(&state, post.actor, "model.unload", &name, &done).await;
    Ok(redirect_notice(&req, "/models", Notice::ModelUnloaded))
}
