//! Logging in and out.

use super::{render, render_status, see_other, Form, Page};
use crate::admin::auth::CsrfForm;
use crate::admin::session;
use crate::admin::AdminState;
use crate::domain::audit::{Actor, Via};
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::HttpRequest;
use askama::Template;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

pub async fn login_form(session: Session, state: Data<AdminState>) -> Page {
    let data = session::anonymous(&session, state.clock.now().timestamp());
    render(&LoginPage { csrf: data.csrf, error: None })
}

pub async fn login(req: HttpRequest, session: Session, state: Data<AdminState>, form: Form) -> Page {
    let now = state.clock.now().timestamp();
    let data = session::anonymous(&session, now);
    session::check_csrf(&req, &data, form.csrf())?;
    let ip = crate::forwarded::client_address(&req, &state.settings.trusted_proxies);
    let right = match state
        .login_throttle
        .check(&state.password, ip, state.clock.as_ref(), form.get("password"))
        .await
    {
        Ok(right) => right,
        Err(refused) => {
            log::warn!("admin login from {ip} refused: too many wrong passwords");
            return Err(refused.into());
        }
    };
    let actor = Actor { via: Via::Session, address: Some(ip) };
    crate::admin::audit::login(&state, actor, right).await;
    if !right {
        let page = LoginPage { csrf: data.csrf, error: Some("Wrong password.".into()) };
        return render_status(StatusCode::UNAUTHORIZED, &page);
    }
    session::log_in(&session, &state).await?;
    log::info!("admin logged in from {ip}");
    Ok(see_other(&req, "/"))
}

pub async fn logout(req: HttpRequest, session: Session, state: Data<AdminState>, post: CsrfForm) -> Page {
    session::log_out(&session, &state, &post.session).await?;
    crate::admin::audit::event(&state, post.actor, "logout").await;
    Ok(see_other(&req, "/login"))
}
