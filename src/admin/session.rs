//! Admin sessions: a typed view of the cookie session, CSRF tokens, and the
//! server-side checks that let logout and a password change end a session for
//! real, since a cookie cannot be taken back.

use super::error::AdminError;
use crate::admin::AdminState;
use crate::runtime::SettingName;
use actix_session::Session;
use actix_web::http::header;
use actix_web::web::Data;
use actix_web::HttpRequest;
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Bumped by a password change: every session issued before it ends.
const SESSION: &str = "og";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub id: String,
    pub csrf: String,
    pub admin: bool,
    pub issued_at: i64,
    pub last_seen: i64,
    pub epoch: i64,
}

fn token() -> String {
    let mut rng = rand::thread_rng();
    (0..32).map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)])).collect()
}

pub async fn current_epoch(state: &AdminState) -> Result<i64, AdminError> {
    Ok(state
        .store
        .get_setting(SettingName::SessionEpoch.as_str())
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// The session as it is, or a new anonymous one that carries a CSRF token
/// (the login form needs one before anyone has logged in).
pub fn anonymous(session: &Session, now: i64) -> SessionData {
    if let Ok(Some(data)) = session.get::<SessionData>(SESSION) {
        return data;
    }
    let data =
        SessionData { id: token(), csrf: token(), admin: false, issued_at: now, last_seen: now, epoch: 0 };
    let _ = session.insert(SESSION, &data);
    data
}

/// The logged-in admin's session, or `None`: idle too long, too old, logged
/// out, or issued before the last password change.
pub async fn logged_in(session: &Session, state: &AdminState) -> Result<Option<SessionData>, AdminError> {
    let Ok(Some(mut data)) = session.get::<SessionData>(SESSION) else { return Ok(None) };
    let now = state.clock.now().timestamp();
    let settings = &state.settings;
    let fresh = data.admin
        && now - data.last_seen <= settings.admin_session_idle.as_secs() as i64
        && now - data.issued_at <= settings.admin_session_max.as_secs() as i64;
    if !fresh || data.epoch != current_epoch(state).await? || state.store.is_session_revoked(&data.id).await?
    {
        session.purge();
        return Ok(None);
    }
    // The idle clock restarts at most once a minute, to spare cookie churn.
    if now - data.last_seen >= 60 {
        data.last_seen = now;
        let _ = session.insert(SESSION, &data);
    }
    Ok(Some(data))
}

/// A new session for the admin who just proved the password: new id, new
/// CSRF token, new cookie.
pub async fn log_in(session: &Session, state: &AdminState) -> Result<SessionData, AdminError> {
    let now = state.clock.now().timestamp();
    let data = SessionData {
        id: token(),
        csrf: token(),
        admin: true,
        issued_at: now,
        last_seen: now,
        epoch: current_epoch(state).await?,
    };
    session.renew();
    session
        .insert(SESSION, &data)
        .map_err(|e| AdminError::BadRequest(format!("cannot start a session: {e}")))?;
    Ok(data)
}

pub async fn log_out(session: &Session, state: &AdminState, data: &SessionData) -> Result<(), AdminError> {
    let now = state.clock.now().timestamp();
    let expires_at = data.issued_at + state.settings.admin_session_max.as_secs() as i64;
    state.store.revoke_session(&data.id, expires_at, now).await?;
    session.purge();
    Ok(())
}

/// A state-changing request must carry the session's CSRF token (form field
/// `csrf_token` or header `X-CSRF-Token`) and must not come from another site.
pub fn check_csrf(req: &HttpRequest, data: &SessionData, form_token: Option<&str>) -> Result<(), AdminError> {
    let header_token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
    let presented = form_token.or(header_token).unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(data.csrf.as_bytes())) || presented.is_empty() {
        return Err(AdminError::Forbidden(
            "missing or invalid CSRF token; reload the page and try again".into(),
        ));
    }
    if req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(AdminError::Forbidden("cross-site request refused".into()));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // The host the browser addressed, port included: the Host header, or
        // X-Forwarded-Host from a trusted proxy (never from anyone else).
        let proxies = req
            .app_data::<Data<AdminState>>()
            .map(|s| s.settings.trusted_proxies.clone())
            .unwrap_or_default();
        let host = crate::forwarded::request_host(req, &proxies).unwrap_or_default();
        let origin_host = origin.split("://").nth(1).unwrap_or_default();
        if origin != "null" && (host.is_empty() || !origin_host.eq_ignore_ascii_case(&host)) {
            log::info!("admin request refused: Origin {origin:?} is not the requested host {host:?}");
            return Err(AdminError::Forbidden("request from a foreign origin refused".into()));
        }
    }
    Ok(())
}
