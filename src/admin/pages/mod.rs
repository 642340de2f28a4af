//! The HTML console: one template struct per page and per swappable region,
//! plain forms that work without JavaScript, htmx making some of them
//! quicker. Every change is a POST followed by a redirect; the two that make a
//! secret redirect to a page that shows it once (see `reveal`).

mod alert_fields;
mod alerts;
mod audit;
mod backends;
mod bars;
mod chart;
mod connect;
mod dashboard;
mod key_form;
mod key_list;
mod keys;
mod login;
mod model_actions;
mod model_limits;
mod model_names;
mod models;
mod names;
mod person_form;
mod public_keys;
mod pull_task;
mod pulls;
mod refusals;
mod settings;
pub(crate) mod shown;
mod teams;
mod usage;
mod users;

use super::error::{redirect, PageError};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

pub type Page = Result<HttpResponse, PageError>;

/// Form fields, in order; repeated names (checkboxes) keep every value.
pub struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }
    pub fn csrf(&self) -> Option<&str> {
        Some(self.get("csrf_token")).filter(|t| !t.is_empty())
    }
}

impl FromRequest for Form {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Bytes::from_request(req, payload);
        Box::pin(async move { Ok(Form::parse(&body.await?)) })
    }
}

/// The console's sections, one link each in the top bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Keys,
    Users,
    Teams,
    Usage,
    Audit,
    Models,
    Backends,
    Settings,
    Connect,
}

impl Nav {
    const ALL: [Nav; 10] = [
        Nav::Dashboard,
        Nav::Keys,
        Nav::Users,
        Nav::Teams,
        Nav::Usage,
        Nav::Audit,
        Nav::Models,
        Nav::Backends,
        Nav::Settings,
        Nav::Connect,
    ];

    fn href(self) -> &'static str {
        match self {
            Nav::Dashboard => "/",
            Nav::Keys => "/keys",
            Nav::Users => "/users",
            Nav::Teams => "/teams",
            Nav::Usage => "/usage",
            Nav::Audit => "/audit",
            Nav::Models => "/models",
            Nav::Backends => "/backends",
            Nav::Settings => "/settings",
            Nav::Connect => "/connect",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Nav::Dashboard => "Dashboard",
            Nav::Keys => "Keys",
            Nav::Users => "Users",
            Nav::Teams => "Teams",
            Nav::Usage => "Usage",
            Nav::Audit => "Audit",
            Nav::Models => "Models",
            Nav::Backends => "Backends",
            Nav::Settings => "Settings",
            Nav::Connect => "Connect",
        }
    }
}

/// A link in the top bar.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What a change says on the page it redirects to (`?notice=<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Deleted,
    UserDeleted,
    TeamDeleted,
    Saved,
    Activated,
    Deactivated,
    Password,
    ModelDeleted,
    ModelUnloaded,
    GraceEnded,
}

impl Notice {
    const ALL: [Notice; 10] = [
        Notice::Deleted,
        Notice::UserDeleted,
        Notice::TeamDeleted,
        Notice::Saved,
        Notice::Activated,
        Notice::Deactivated,
        Notice::Password,
        Notice::ModelDeleted,
        Notice::ModelUnloaded,
        Notice::GraceEnded,
    ];

    /// The notice a `?notice=` code names; unknown codes say nothing.
    pub fn parse(code: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.code() == code)
    }

    pub fn code(self) -> &'static str {
        match self {
            Notice::Deleted => "deleted",
            Notice::UserDeleted => "user-deleted",
            Notice::TeamDeleted => "team-deleted",
            Notice::Saved => "saved",
            Notice::Activated => "activated",
            Notice::Deactivated => "deactivated",
            Notice::Password => "password",
            Notice::ModelDeleted => "model-deleted",
            Notice::ModelUnloaded => "model-unloaded",
            Notice::GraceEnded => "grace-ended",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Notice::Deleted => "The key was deleted.",
            Notice::UserDeleted => "The user was deleted; their keys keep working under their own limits.",
            Notice::TeamDeleted => "The team was deleted; its users keep their own limits.",
            Notice::Saved => "Saved.",
            Notice::Activated => "The key is active.",
            Notice::Deactivated => "The key is deactivated: it is refused from the next request on.",
            Notice::Password => "The password is changed; every other session has ended.",
            Notice::ModelDeleted => "The model was deleted.",
            Notice::ModelUnloaded => "The model is unloaded from memory; its next request loads it again.",
            Notice::GraceEnded => "The previous secret no longer works.",
        }
    }
}

/// `?notice=` on a page that a change redirects to.
#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

impl NoticeQuery {
    pub fn notice(&self) -> Option<Notice> {
        self.notice.as_deref().and_then(Notice::parse)
    }
}

/// What every logged-in page has around its content (`layout.html`): the
/// CSRF token for its forms and htmx, the current section, a notice.
pub struct Chrome {
    pub csrf: String,
    pub nav: Nav,
    pub notice: Option<Notice>,
}

impl Chrome {
    pub fn new(session: &super::session::SessionData, nav: Nav) -> Chrome {
        Chrome { csrf: session.csrf.clone(), nav, notice: None }
    }

    pub fn with_notice(self, notice: Option<Notice>) -> Chrome {
        Chrome { notice, ..self }
    }

    pub fn links(&self) -> [NavLink; Nav::ALL.len()] {
        Nav::ALL.map(|n| NavLink { href: n.href(), label: n.label(), current: n == self.nav })
    }
}

/// A page with one region that htmx swaps by itself (`*_partial.html`).
pub trait Swappable: Template {
    type Partial: Template;
    fn partial(&self) -> &Self::Partial;
}

/// Marks a partial's template as HTML already escaped, so a page can hold it
/// as a field and write `{{ region }}` (the partial escapes its own values).
macro_rules! html_safe {
    ($($t:ty),*) => { $(impl askama::filters::HtmlSafe for $t {})* };
}
pub(crate) use html_safe;

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body)
}

pub fn render(page: &impl Template) -> Page {
    render_status(StatusCode::OK, page)
}

/// A page with a status other than 200: 422 for a form with errors.
pub fn render_status(status: StatusCode, page: &impl Template) -> Page {
    Ok(html(status, page.render()?))
}

/// Whether htmx sent the request itself (not a boosted link or form, nor a
/// history restore, which both want the whole page).
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

fn wants_partial(req: &HttpRequest) -> bool {
    let h = req.headers();
    is_htmx(req) && !h.contains_key("hx-boosted") && !h.contains_key("hx-history-restore-request")
}

/// The whole page, or for htmx's own request only its swappable region.
pub fn render_swappable<P: Swappable>(req: &HttpRequest, page: &P) -> Page {
    if wants_partial(req) {
        render(page.partial())
    } else {
        render(page)
    }
}

/// After a change: back to a page (htmx follows `HX-Redirect`).
pub fn see_other(req: &HttpRequest, to: &str) -> HttpResponse {
    redirect(is_htmx(req), to)
}

/// After a change: back to a page that says what happened.
pub fn redirect_notice(req: &HttpRequest, to: &str, notice: Notice) -> HttpResponse {
    see_other(req, &format!("{to}?notice={}", notice.code()))
}

/// After a create or a rotate: the secret waits for one view of its page.
pub fn to_secret_page(
    req: &HttpRequest,
    state: &super::AdminState,
    session: &super::session::SessionData,
    heading: String,
    secret: &str,
    id: i64,
) -> HttpResponse {
    let token = crate::admin::reveal::put(&session.id, id, heading, secret, state.clock.now().timestamp());
    see_other(req, &format!("/keys/{id}/secret?t={token}"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard::dashboard))
        .route("/login", web::get().to(login::login_form))
        .route("/login", web::post().to(login::login))
        .route("/logout", web::post().to(login::logout))
        .route("/keys", web::get().to(key_list::keys_page))
        .route("/keys", web::post().to(key_form::create_key))
        .route("/keys/new", web::get().to(key_form::new_key_form))
        .route("/keys/{id}", web::get().to(keys::key_detail))
        .route("/keys/{id}", web::post().to(keys::update_key))
        .route("/keys/{id}/rotate", web::get().to(keys::rotate_form))
        .route("/keys/{id}/rotate", web::post().to(keys::rotate_key))
        .route("/keys/{id}/end-grace", web::post().to(keys::end_grace))
        .route("/keys/{id}/secret", web::get().to(keys::key_secret))
        .route("/keys/{id}/delete", web::get().to(keys::delete_key_form))
        .route("/keys/{id}/delete", web::post().to(keys::delete_key))
        .route("/keys/{id}/public-keys", web::post().to(keys::add_public_key))
        .route("/keys/{id}/public-keys/{pk_id}/remove", web::get().to(public_keys::remove_form))
        .route("/keys/{id}/public-keys/{pk_id}/remove", web::post().to(public_keys::remove))
        .route("/keys/{id}/{action}", web::post().to(keys::set_active))
        .route("/users", web::get().to(users::users_page))
        .route("/users", web::post().to(users::create_user))
        .route("/users/new", web::get().to(users::new_user_form))
        .route("/users/{id}", web::get().to(users::user_detail))
        .route("/users/{id}", web::post().to(users::update_user))
        .route("/users/{id}/delete", web::get().to(users::delete_user_form))
        .route("/users/{id}/delete", web::post().to(users::delete_user))
        .route("/teams", web::get().to(teams::teams_page))
        .route("/teams", web::post().to(teams::create_team))
        .route("/teams/new", web::get().to(teams::new_team_form))
        .route("/teams/{id}", web::get().to(teams::team_detail))
        .route("/teams/{id}", web::post().to(teams::update_team))
        .route("/teams/{id}/delete", web::get().to(teams::delete_team_form))
        .route("/teams/{id}/delete", web::post().to(teams::delete_team))
        .route("/usage", web::get().to(usage::usage_page))
        .route("/usage.csv", web::get().to(usage::usage_csv))
        .route("/audit", web::get().to(audit::audit_page))
        .route("/models", web::get().to(models::models_page))
        .route("/models/pull", web::post().to(pulls::start_pull))
        .route("/models/pulls/{id}", web::get().to(pulls::pull_page))
        .route("/models/delete", web::get().to(model_actions::delete_form))
        .route("/models/delete", web::post().to(model_actions::delete_model))
        .route("/models/unload", web::post().to(model_actions::unload_model))
        .route("/backends", web::get().to(backends::backends_page))
        .route("/backends/{name}/{action}", web::post().to(backends::set_backend))
        .route("/settings", web::get().to(settings::settings_page))
        .route("/settings", web::post().to(settings::save_settings))
        .route("/settings/password", web::post().to(settings::change_password))
        .route("/connect", web::get().to(connect::connect_page))
        .route("/alerts/badge", web::get().to(alerts::badge))
        .route("/alerts/{id}/dismiss", web::post().to(alerts::dismiss));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_reads_back_from_its_code_and_unknown_codes_say_nothing() {
        for notice in Notice::ALL {
            assert_eq!(Notice::parse(notice.code()), Some(notice));
        }
        assert_eq!(Notice::parse("<script>"), None);
    }

    #[test]
    fn the_top_bar_marks_only_the_current_section() {
        let chrome = Chrome { csrf: String::new(), nav: Nav::Usage, notice: None };
        let current: Vec<&str> = chrome.links().iter().filter(|l| l.current).map(|l| l.href).collect();
        assert_eq!(current, ["/usage"]);
    }
}
