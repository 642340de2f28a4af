//! Admin API errors: `{"error": "..."}` with a status that says what went wrong.

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
}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
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
