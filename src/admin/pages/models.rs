//! The models the backends have, which backend has which and which are
//! loaded, with the forms that pull, unload and delete one.

use super::model_names::ALL_BACKENDS;
use super::{render, render_status, Chrome, Nav, NoticeQuery, Page};
use crate::admin::auth::Console;
use crate::admin::session::SessionData;
use crate::admin::AdminState;
use crate::domain::model::normalize;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use askama::Template;
use serde_json::Value;
use std::collections::HashSet;

/// Whether one backend has a model, and has it loaded.
struct Presence {
    has: bool,
    loaded: bool,
}

struct ModelView {
    name: String,
    family: String,
    parameters: String,
    quantization: String,
    size: String,
    loaded: bool,
    /// One per backend in `ModelsPage::backends`, in that order.
    on: Vec<Presence>,
}

#[derive(Template)]
#[template(path = "admin/models.html")]
struct ModelsPage {
    chrome: Chrome,
    error: Option<String>,
    models: Vec<ModelView>,
    /// The backends that answered, for the table's columns.
    backends: Vec<String>,
    /// Every enabled backend, for the pull form's choice.
    choices: Vec<String>,
    all_choice: &'static str,
    pull_model: String,
    pull_backend: String,
    pull_error: Option<String>,
}

impl ModelsPage {
    fn several(&self) -> bool {
        self.backends.len() > 1
    }
}

/// The names a listing (`/api/tags`, `/api/ps`) holds, normalised.
pub(super) fn names_in(listing: &Value) -> HashSet<String> {
    listing["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str().or(m["model"].as_str()).map(normalize))
        .collect()
}

async fn build(session: &SessionData, state: &AdminState, client: &awc::Client) -> ModelsPage {
    let (tags, ps) =
        tokio::join!(state.upstreams.each(client, "/api/tags"), state.upstreams.each(client, "/api/ps"));
    let mut errors = Vec::new();
    let mut backends = Vec::new();
    // Each model once, in the order the backends list them, with the first listing's details.
    let mut listed: Vec<(String, Value)> = Vec::new();
    let mut holdings: Vec<(HashSet<String>, HashSet<String>)> = Vec::new();
    for ((backend, tags), (_, ps)) in tags.into_iter().zip(ps) {
        let tags = match tags {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("backend {}: {e}", backend.spec.name));
                continue;
            }
        };
        for m in tags["models"].as_array().into_iter().flatten() {
            let Some(name) = m["name"].as_str().or(m["model"].as_str()) else { continue };
            if !listed.iter().any(|(n, _)| normalize(n) == normalize(name)) {
                listed.push((name.to_owned(), m.clone()));
            }
        }
        let loaded = ps.as_ref().map(names_in).unwrap_or_default();
        holdings.push((names_in(&tags), loaded));
        backends.push(backend.spec.name.clone());
    }
    let error = match (backends.is_empty(), errors.is_empty()) {
        (true, true) => Some("No backend is up: nothing can be listed.".to_owned()),
        (_, false) => Some(format!("Not every backend could be listed: {}", errors.join("; "))),
        (false, true) => None,
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let models = listed
        .into_iter()
        .map(|(name, m)| {
            let key = normalize(&name);
            let on: Vec<Presence> = holdings
                .iter()
                .map(|(has, loaded)| Presence { has: has.contains(&key), loaded: loaded.contains(&key) })
                .collect();
            ModelView {
                loaded: on.iter().any(|p| p.loaded),
                family: text(&m["details"]["family"]),
                parameters: text(&m["details"]["parameter_size"]),
                quantization: text(&m["details"]["quantization_level"]),
                size: m["size"].as_f64().map(|b| format!("{:.1} GB", b / 1e9)).unwrap_or_default(),
                on,
                name,
            }
        })
        .collect();
    let pool = state.upstreams.pool();
    let choices: Vec<String> =
        pool.backends.iter().filter(|b| b.spec.enabled).map(|b| b.spec.name.clone()).collect();
    ModelsPage {
        chrome: Chrome::new(session, Nav::Models),
        error,
        models,
        backends,
        pull_backend: choices.first().cloned().unwrap_or_default(),
        choices,
        all_choice: ALL_BACKENDS,
        pull_model: String::new(),
        pull_error: None,
    }
}

pub async fn models_page(
    console: Console,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    query: Query<NoticeQuery>,
) -> Page {
    let mut page = build(&console.session, &state, &client).await;
    page.chrome.notice = query.notice();
    render(&page)
}

/// The models page again, with the pull form as it was sent and why it was refused.
pub(super) async fn refused_pull(
    session: &SessionData,
    state: &AdminState,
    client: &awc::Client,
    model: &str,
    message: String,
) -> Page {
    let mut page = build(session, state, client).await;
    page.pull_model = model.to_owned();
    page.pull_error = Some(message);
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
