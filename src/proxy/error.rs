//! Refusals and failures, rendered in the format of the API family that was called.

use super::policy::routes::Family;
use super::request_id::RequestId;
use crate::domain::limits::LimitKind;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("{message}")]
    Limited { kind: LimitKind, retry_after: i64, message: String },
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    /// The fair queue is full for this key, or the wait ran out.
    #[error("{message}")]
    QueueFull { retry_after: u64, message: String },
    /// The client hung up while its request waited; nobody reads this answer.
    #[error("the client closed the connection")]
    ClientGone,
}

impl ProxyError {
    /// The 503 for a failed trip to the database; the cause is logged once, here.
    pub fn database<'a>(
        what: &'static str,
        request_id: &'a RequestId,
    ) -> impl FnOnce(crate::store::StoreError) -> ProxyError + 'a {
        move |e| {
            log::error!("{what} failed: {e} request_id={request_id}");
            ProxyError::Unavailable("the gate's database is unavailable; try again shortly".into())
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ProxyError::Forbidden(_) => StatusCode::FORBIDDEN,
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ProxyError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::ClientGone => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        }
    }

    /// OpenAI's `code`: also what the usage log calls the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "invalid_request",
            ProxyError::Unauthorized(_) => "invalid_api_key",
            ProxyError::Forbidden(_) => "permission_denied",
            ProxyError::NotFound(_) => "not_found",
            ProxyError::RequestTimeout(_) => "request_timeout",
            ProxyError::TooLarge(_) => "request_too_large",
            ProxyError::Limited { kind, .. } if kind.is_rate() => "rate_limit_exceeded",
            ProxyError::Limited { .. } => "insufficient_quota",
            ProxyError::BadGateway(_) => "upstream_unreachable",
            ProxyError::GatewayTimeout(_) => "upstream_timeout",
            ProxyError::Unavailable(_) => "service_unavailable",
            ProxyError::QueueFull { .. } => "queue_full",
            ProxyError::ClientGone => "client_closed",
        }
    }

    /// Why a request was refused, in the words of the refusal counts and the
    /// metrics (`ollama_gate_refusals_total{reason}`); `None` when the request
    /// was not refused but failed (upstream, database, a client that hung up).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ProxyError::BadRequest(_) | ProxyError::RequestTimeout(_) => Some("bad_request"),
            ProxyError::Unauthorized(_) => Some("unauthenticated"),
            ProxyError::Forbidden(_) => Some("forbidden"),
            ProxyError::NotFound(_) => Some("not_found"),
            ProxyError::TooLarge(_) => Some("too_large"),
            ProxyError::Limited { kind, .. } if kind.is_rate() => Some("rate_limit"),
            ProxyError::Limited { .. } => Some("quota"),
            ProxyError::QueueFull { .. } => Some("queue_full"),
            ProxyError::BadGateway(_)
            | ProxyError::GatewayTimeout(_)
            | ProxyError::Unavailable(_)
            | ProxyError::ClientGone => None,
        }
    }

    fn openai_type(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::RequestTimeout(_)
            | ProxyError::TooLarge(_)
            | ProxyError::NotFound(_) => "invalid_request_error",
            ProxyError::Unauthorized(_) => "authentication_error",
            ProxyError::Forbidden(_) => "permission_error",
            ProxyError::Limited { kind, .. } if kind.is_rate() => "requests",
            ProxyError::Limited { .. } => "insufficient_quota",
            ProxyError::QueueFull { .. } => "requests",
            _ => "server_error",
        }
    }

    fn anthropic_type(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) | ProxyError::RequestTimeout(_) => "invalid_request_error",
            ProxyError::Unauthorized(_) => "authentication_error",
            ProxyError::Forbidden(_) => "permission_error",
            ProxyError::NotFound(_) => "not_found_error",
            ProxyError::TooLarge(_) => "request_too_large",
            ProxyError::Limited { .. } | ProxyError::QueueFull { .. } => "rate_limit_error",
            ProxyError::Unavailable(_) => "overloaded_error",
            _ => "api_error",
        }
    }

    /// The error body alone, as the family expects it.
    pub fn body(&self, family: Family) -> serde_json::Value {
        let message = self.to_string();
        match family {
            Family::Ollama => json!({ "error": message }),
            Family::OpenAi => json!({
                "error": { "message": message, "type": self.openai_type(), "param": null, "code": self.code() }
            }),
            Family::Anthropic => json!({
                "type": "error", "error": { "type": self.anthropic_type(), "message": message }
            }),
        }
    }

    /// The error body with the request's id at its top level, where
    /// Anthropic's API puts its own and the other families have room.
    pub fn body_for(&self, family: Family, request_id: &str) -> serde_json::Value {
        let mut body = self.body(family);
        if let Some(fields) = body.as_object_mut() {
            fields.insert("request_id".into(), request_id.into());
        }
        body
    }

    pub fn render(
        &self,
        family: Family,
        extra: &[(HeaderName, HeaderValue)],
        request_id: &str,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        if let ProxyError::Limited { kind, retry_after, .. } = self {
            response.insert_header(("retry-after", retry_after.to_string()));
            // A spent quota comes back in hours: the Anthropic SDKs and
            // openai-node would otherwise sleep through that Retry-After.
            if !kind.is_rate() {
                response.insert_header(("x-should-retry", "false"));
            }
        }
        if let ProxyError::QueueFull { retry_after, .. } = self {
            response.insert_header(("retry-after", retry_after.to_string()));
        }
        if matches!(self, ProxyError::Unavailable(_)) {
            // Every 503 here is a queue or the database catching up: soon, not never.
            response.insert_header(("retry-after", "1"));
        }
        if matches!(self, ProxyError::RequestTimeout(_)) {
            // The rest of the body may still be trickling in: the connection is not reused.
            response.force_close();
        }
        if matches!(self, ProxyError::Unauthorized(_)) {
            response.insert_header(("www-authenticate", "Bearer"));
        }
        for (name, value) in extra {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.body_for(family, request_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_gets_its_own_shape() {
        let e = ProxyError::Limited { kind: LimitKind::DailyTokens, retry_after: 5, message: "over".into() };
        assert_eq!(e.body(Family::Ollama), json!({"error": "over"}));
        assert_eq!(e.body(Family::OpenAi)["error"]["code"], "insufficient_quota");
        assert_eq!(e.body(Family::Anthropic)["error"]["type"], "rate_limit_error");
        let e =
            ProxyError::Limited { kind: LimitKind::RequestsPerMinute, retry_after: 5, message: "x".into() };
        assert_eq!(e.body(Family::OpenAi)["error"]["code"], "rate_limit_exceeded");
    }

    #[test]
    fn the_request_id_sits_at_the_top_level_of_every_family() {
        let e = ProxyError::Forbidden("no".into());
        assert_eq!(e.body_for(Family::Ollama, "r1"), json!({"error": "no", "request_id": "r1"}));
        for family in [Family::OpenAi, Family::Anthropic] {
            let body = e.body_for(family, "r1");
            assert_eq!(body["request_id"], "r1");
            assert!(body["error"]["message"].is_string());
        }
    }
}
