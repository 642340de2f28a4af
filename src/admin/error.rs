//! Admin errors. The JSON API's: `{"error": "..."}` with a status that says
//! what went wrong. The console's: the same status and message on a page.

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin authentication required: send 'Authorization: Bearer <ADMIN_PASSWORD>'")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many wrong admin passwords from this address; try again in {0} seconds")]
    Throttled(u64),
    #[error("{0}")]
    Upstream(String),
    #[error("the gate's database is unavailable")]
    Unavailable,
    /// A name already taken.
    #[error("{0}")]
    Conflict(String),
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::Conflict(message) = e {
            return AdminError::Conflict(message);
        }
        log::error!("admin request failed: {e}");
        AdminError::Unavailable
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AdminError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, AdminError::Unauthorized) {
            response.insert_header(("www-authenticate", "Bearer"));
        }
        if let AdminError::Throttled(seconds) = self {
            response.insert_header(("retry-after", seconds.to_string()));
        }
        response.json(json!({ "error": self.to_string() }))
    }
}

/// A console page's error, drawn as a small HTML page with the status and
/// headers (`Retry-After`) the JSON API would give; a page that cannot be
/// drawn is a 500. Not logged in is a trip to `/login`.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("log in first")]
    LoggedOut { htmx: bool },
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the page could not be drawn: {0}")]
    Template(#[from] askama::Error),
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Admin(e.into())
    }
}

#[derive(askama::Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    status: String,
    message: &'a str,
}

/// `status` with `message` as a page; `headers` are kept, except the body's own.
pub fn error_page(status: StatusCode, message: &str, headers: &HeaderMap) -> HttpResponse {
    use askama::Template;
    let page = ErrorPage {
        status: format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or_default()),
        message,
    };
    let mut out = HttpResponse::build(status);
    for (name, value) in
        headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH)
    {
        out.append_header((name.clone(), value.clone()));
    }
    out.content_type("text/html; charset=utf-8").body(page.render().unwrap_or_else(|_| message.to_owned()))
}

/// To another page: `303 See Other`, or for htmx `HX-Redirect`, which it follows.
pub fn redirect(htmx: bool, to: &str) -> HttpResponse {
    if htmx {
        HttpResponse::Ok().insert_header(("hx-redirect", to.to_owned())).finish()
    } else {
        HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_owned())).finish()
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::LoggedOut { htmx: true } => StatusCode::OK,
            PageError::LoggedOut { htmx: false } => StatusCode::SEE_OTHER,
            PageError::Admin(e) => e.status_code(),
            PageError::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::LoggedOut { htmx } => redirect(*htmx, "/login"),
            PageError::Admin(e) => {
                let json = e.error_response();
                error_page(e.status_code(), &e.to_string(), json.headers())
            }
            PageError::Template(e) => {
                log::error!("template failed: {e}");
                error_page(self.status_code(), "the page could not be drawn", &HeaderMap::new())
            }
        }
    }
}
