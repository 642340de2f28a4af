//! Admin authentication in the types. A handler names what it needs in its
//! arguments and cannot run without it, so a new handler cannot forget the
//! check:
//!
//! - [`ApiAdmin`]: the JSON API. The admin password as a bearer token
//!   (throttled like the login form), or a logged-in console session whose
//!   changes also carry the CSRF token in `X-CSRF-Token`.
//! - [`Console`]: a console page. A logged-in session, or a trip to `/login`.
//! - [`CsrfForm`]: a console form post. A logged-in session and the form's
//!   body, with the session's CSRF token (field `csrf_token` or header
//!   `X-CSRF-Token`) and a same-site origin.

use super::error::{AdminError, PageError};
use super::pages::Form;
use super::session::{self, SessionData};
use super::AdminState;
use crate::domain::audit::{Actor, AuditEntry, Via};
use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

fn admin_state(req: &HttpRequest) -> Result<Data<AdminState>, AdminError> {
    req.app_data::<Data<AdminState>>().cloned().ok_or_else(|| {
        log::error!("admin route without the admin state");
        AdminError::Unavailable
    })
}

/// The token of `Authorization: Bearer <token>`, if the request has one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Every admin API route first proves it holds the admin password, or a
/// logged-in console session (whose changes also need the CSRF token).
pub struct ApiAdmin {
    /// Who is asking, for the audit log.
    pub actor: Actor,
}

impl FromRequest for ApiAdmin {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = admin_state(&req)?;
            if let Some(token) = bearer(&req) {
                // The bearer password is a way in like the login form: throttled the same way.
                let ip = crate::forwarded::client_address(&req, &state.settings.trusted_proxies);
                let right =
                    state.login_throttle.check(&state.password, ip, state.clock.as_ref(), token).await?;
                let actor = Actor { via: Via::Bearer, address: Some(ip) };
                if !right {
                    // A wrong bearer password is a failed login; the throttle bounds how many.
                    let at = state.clock.now().timestamp();
                    let entry = AuditEntry {
                        at,
                        actor,
                        action: "login",
                        target: None,
                        before: None,
                        after: Some(serde_json::json!({"ok": false})),
                    };
                    super::audit::write(state.store.as_ref(), entry).await;
                }
                return if right { Ok(ApiAdmin { actor }) } else { Err(AdminError::Unauthorized) };
            }
            let data =
                session::logged_in(&req.get_session(), &state).await?.ok_or(AdminError::Unauthorized)?;
            if req.method() != Method::GET {
                session::check_csrf(&req, &data, None)?;
            }
            Ok(ApiAdmin { actor: super::audit::actor(&req, &state, Via::Session) })
        })
    }
}

/// The logged-in admin on a console page; anyone else goes to `/login`.
pub struct Console {
    pub session: SessionData,
    /// Who is asking, for the audit log.
    pub actor: Actor,
}

async fn console(req: &HttpRequest) -> Result<Console, PageError> {
    let state = admin_state(req)?;
    match session::logged_in(&req.get_session(), &state).await? {
        Some(session) => Ok(Console { session, actor: super::audit::actor(req, &state, Via::Session) }),
        None => Err(PageError::LoggedOut { htmx: super::pages::is_htmx(req) }),
    }
}

impl FromRequest for Console {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { console(&req).await })
    }
}

/// A state-changing console form: the logged-in admin, the form, and a valid
/// CSRF token. Not logged in goes to `/login` before the token is looked at.
pub struct CsrfForm {
    pub session: SessionData,
    pub form: Form,
    /// Who is asking, for the audit log.
    pub actor: Actor,
}

impl FromRequest for CsrfForm {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = Form::from_request(&req, payload);
        Box::pin(async move {
            let form = body.await?;
            let Console { session, actor } = console(&req).await?;
            session::check_csrf(&req, &session, form.csrf()).map_err(PageError::from)?;
            Ok(CsrfForm { session, form, actor })
        })
    }
}
