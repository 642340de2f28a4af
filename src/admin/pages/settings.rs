//! The settings page: the upstream URLs, the Anthropic default model, and
//! the admin password.

use super::{redirect_notice, render, render_status, Chrome, Nav, Notice, NoticeQuery, Page};
use crate::admin::api::settings::{apply_settings, check_settings, SettingsChange};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::AdminError;
use crate::admin::session::{self, SessionData};
use crate::admin::AdminState;
use crate::runtime::SettingName;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::HttpRequest;
use askama::Template;

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    ollama_urls: String,
    anthropic_default_model: String,
    upstream_error: Option<String>,
    model_error: Option<String>,
    password_from_env: bool,
    password_error: Option<String>,
}

fn password_from_env(state: &AdminState) -> bool {
    state.settings.password_from_env()
}

impl SettingsPage {
    fn new(state: &AdminState, session: &SessionData) -> SettingsPage {
        SettingsPage {
            chrome: Chrome::new(session, Nav::Settings),
            ollama_urls: state.upstreams.specs().iter().map(|b| b.to_text()).collect::<Vec<_>>().join("\n"),
            anthropic_default_model: state.runtime.anthropic_default_model().unwrap_or_default(),
            upstream_error: None,
            model_error: None,
            password_from_env: password_from_env(state),
            password_error: None,
        }
    }

    /// The page again, with a form's error next to it.
    fn refused(self) -> Page {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &self)
    }
}

pub async fn settings_page(console: Console, state: Data<AdminState>, query: Query<NoticeQuery>) -> Page {
    let mut page = SettingsPage::new(&state, &console.session);
    page.chrome.notice = query.notice();
    render(&page)
}

pub async fn save_settings(req: HttpRequest, state: Data<AdminState>, post: CsrfForm) -> Page {
    let form = &post.form;
    let urls = || SettingsChange {
        ollama_urls: Some(form.get("ollama_urls").lines().map(str::to_owned).collect()),
        ..SettingsChange::default()
    };
    let model = || SettingsChange {
        anthropic_default_model: Some(Some(form.get("anthropic_default_model").to_owned())),
        ..SettingsChange::default()
    };
    // Each field is checked alone so that every error shows at once, next to
    // its field, with everything typed kept.
    let upstream_error = check_settings(&state, urls()).err().map(|e| e.to_string());
    let model_error = check_settings(&state, model()).err().map(|e| e.to_string());
    if upstream_error.is_some() || model_error.is_some() {
        let page = SettingsPage {
            ollama_urls: form.get("ollama_urls").to_owned(),
            anthropic_default_model: form.get("anthropic_default_model").to_owned(),
            upstream_error,
            model_error,
            ..SettingsPage::new(&state, &post.session)
        };
        return page.refused();
    }
    let change = SettingsChange { anthropic_default_model: model().anthropic_default_model, ..urls() };
    apply_settings(&state, post.actor, change).await?;
    Ok(redirect_notice(&req, "/settings", Notice::Saved))
}

/// Why a password change is refused, if it is.
async fn password_problem(
    req: &HttpRequest,
    state: &AdminState,
    post: &CsrfForm,
) -> Result<Option<&'static str>, AdminError> {
    let form = &post.form;
    Ok(if password_from_env(state) {
        Some("The password is set by ADMIN_PASSWORD or ADMIN_PASSWORD_HASH; change it there.")
    } else if !state
        .login_throttle
        .check(
            &state.password,
            crate::forwarded::client_address(req, &state.settings.trusted_proxies),
            state.clock.as_ref(),
            form.get("current"),
        )
        .await?
    {
        // A stolen session may not guess the password here any faster than at the door.
        Some("The current password is wrong.")
    } else if form.get("new").chars().count() < 12 {
        Some("The new password needs 12 characters or more.")
    } else if form.get("new").len() > crate::domain::lengths::PASSWORD {
        Some("The new password may have at most 1024 bytes.")
    } else if form.get("new") != form.get("confirm") {
        Some("The two new passwords differ.")
    } else {
        None
    })
}

pub async fn change_password(
    req: HttpRequest,
    session: Session,
    state: Data<AdminState>,
    post: CsrfForm,
) -> Page {
    if let Some(problem) = password_problem(&req, &state, &post).await? {
        let page =
            SettingsPage { password_error: Some(problem.into()), ..SettingsPage::new(&state, &post.session) };
        return page.refused();
    }
    let new = post.form.get("new").to_owned();
    let phc = tokio::task::spawn_blocking(move || crate::admin::password::hash(&new))
        .await
        .map_err(|e| AdminError::BadRequest(e.to_string()))?
        .map_err(AdminError::BadRequest)?;
    state.store.put_setting(SettingName::AdminPasswordHash.as_str(), &phc).await?;
    state.password.set_hash(phc);
    // Every session issued before now ends; this one starts again at once.
    let epoch = session::current_epoch(&state).await? + 1;
    state.store.put_setting(SettingName::SessionEpoch.as_str(), &epoch.to_string()).await?;
    session::log_in(&session, &state).await?;
    crate::admin::audit::event(&state, post.actor, "password.change").await;
    log::info!("admin password changed from the console");
    Ok(redirect_notice(&req, "/settings", Notice::Password))
}
