//! The backends: each one's health, slots and queue, and the buttons that
//! drain or disable one without retyping the list.

use super::{redirect_notice, render, Chrome, Nav, Notice, NoticeQuery, Page};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::AdminError;
use crate::admin::AdminState;
use crate::upstream::pool::State;
use actix_web::web::{Data, Path, Query};
use actix_web::HttpRequest;
use askama::Template;

struct BackendView {
    name: String,
    url: String,
    status: &'static str,
    /// The badge's class.
    class: &'static str,
    error: Option<String>,
    version: String,
    slots: u32,
    busy: u32,
    queued: usize,
    weight: u32,
    models: String,
    loaded: String,
    enabled: bool,
    draining: bool,
}

#[derive(Template)]
#[template(path = "admin/backends.html")]
struct BackendsPage {
    chrome: Chrome,
    backends: Vec<BackendView>,
}

pub async fn backends_page(console: Console, state: Data<AdminState>, query: Query<NoticeQuery>) -> Page {
    let pool = state.upstreams.pool();
    let backends = pool
        .backends
        .iter()
        .map(|b| {
            let health = b.health();
            let (busy, queued) = state.upstreams.load_of(b);
            let (status, class) = match (b.spec.enabled, b.spec.draining, health.state) {
                (false, _, _) => ("disabled", "disabled"),
                (true, _, State::Down) => ("down", "down"),
                (true, true, _) => ("draining", "draining"),
                (true, false, State::Unknown) => ("not probed yet", "aborted"),
                (true, false, State::Up) => ("up", "ok"),
            };
            let mut loaded: Vec<&str> = health.loaded.iter().map(String::as_str).collect();
            loaded.sort_unstable();
            BackendView {
                name: b.spec.name.clone(),
                url: b.spec.url.to_string(),
                status,
                class,
                error: (health.state == State::Down).then_some(health.error.clone()).flatten(),
                version: health.version.clone().unwrap_or_default(),
                slots: b.spec.slots,
                busy,
                queued,
                weight: b.spec.weight,
                models: health.models.as_ref().map(|m| m.len().to_string()).unwrap_or_default(),
                loaded: loaded.join(", "),
                enabled: b.spec.enabled,
                draining: b.spec.draining,
            }
        })
        .collect();
    let mut chrome = Chrome::new(&console.session, Nav::Backends);
    chrome.notice = query.notice();
    render(&BackendsPage { chrome, backends })
}

/// Drains, undrains, disables or enables one backend; the rest of the list stays.
pub async fn set_backend(
    req: HttpRequest,
    state: Data<AdminState>,
    path: Path<(String, String)>,
    post: CsrfForm,
) -> Page {
    let (name, action) = path.into_inner();
    let audited = match action.as_str() {
        "drain" => "backend.drain",
        "undrain" => "backend.undrain",
        "disable" => "backend.disable",
        "enable" => "backend.enable",
        _ => return Err(AdminError::NotFound("no such action".into()).into()),
    };
    let mut specs = state.upstreams.specs();
    let Some(spec) = specs.iter_mut().find(|s| s.name == name) else {
        return Err(AdminError::NotFound(format!("no backend is named '{name}'")).into());
    };
    match action.as_str() {
        "drain" => spec.draining = true,
        "undrain" => spec.draining = false,
        "disable" => spec.enabled = false,
        "enable" => spec.enabled = true,
        _ => return Err(AdminError::NotFound("no such action".into()).into()),
    }
    let change = crate::runtime::Change { upstreams: Some(specs), anthropic_default_model: None };
    let target = Some(format!("backend:{name}"));
    crate::admin::audit::settings_change(&state, post.actor, audited, target, change)
        .await
        .map_err(AdminError::from)?;
    log::info!("backend {name}: {action} from the console");
    Ok(redirect_notice(&req, "/backends", Notice::Saved))
}
