//! `x-request-id`: one id per request through the proxy, on its answer, on
//! the request sent upstream, in its usage row, its usage log line, its error
//! body and every log line about it.
//!
//! A client's own id is kept when it is well formed: one header, 1 to 128
//! characters of `[A-Za-z0-9._-]`. Anything else (several headers, empty,
//! too long, other characters) is replaced, never echoed: the id lands in
//! logs, headers and the database, where a client's control characters or
//! megabyte of text have no business. A generated id is 32 lowercase hex
//! characters (128 random bits).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use std::sync::Arc;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id a client may choose.
pub const MAX_LEN: usize = 128;

/// A request's id; only ever holds a well-formed one, so it is always a valid header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The client's id if it sent exactly one well-formed one, else a new one.
    pub fn of(headers: &HeaderMap) -> RequestId {
        let mut sent = headers.get_all(HEADER);
        match (sent.next(), sent.next()) {
            (Some(one), None) => {
                one.to_str().ok().and_then(RequestId::parse).unwrap_or_else(RequestId::generate)
            }
            _ => RequestId::generate(),
        }
    }

    /// A client's id, if it is well formed.
    pub fn parse(text: &str) -> Option<RequestId> {
        let well_formed = (1..=MAX_LEN).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        well_formed.then(|| RequestId(text.into()))
    }

    pub fn generate() -> RequestId {
        RequestId(format!("{:032x}", rand::random::<u128>()).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn header_value(&self) -> HeaderValue {
        // Only `[A-Za-z0-9._-]` gets here, which is always a valid value.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// The id the middleware gave this request (a new one should it be missing).
    pub fn of_request(req: &HttpRequest) -> RequestId {
        let given = req.extensions().get::<RequestId>().cloned();
        given.unwrap_or_else(|| RequestId::of(req.headers()))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Gives every request on the proxy listener its id and puts it on the
/// answer, whatever answers: the forwarding handler, the gate's own routes,
/// a CORS preflight.
pub async fn tag(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::of(req.headers());
    req.extensions_mut().insert(id.clone());
    let mut response = next.call(req).await?;
    response.headers_mut().insert(HEADER, id.header_value());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(HEADER, HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
        map
    }

    #[test]
    fn a_well_formed_client_id_is_kept() {
        for id in ["a", "req-1.2_3", "ABCdef0123", &"x".repeat(MAX_LEN)] {
            assert_eq!(RequestId::of(&headers(&[id])).as_str(), id);
        }
    }

    #[test]
    fn anything_else_is_replaced_by_a_generated_id() {
        let long = "x".repeat(MAX_LEN + 1);
        for sent in
            [vec![], vec![""], vec![long.as_str()], vec!["a b"], vec!["a/b"], vec!["é"], vec!["a", "b"]]
        {
            let id = RequestId::of(&headers(&sent));
            assert_eq!(id.as_str().len(), 32, "{sent:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        assert!(RequestId::parse("tab\there").is_none());
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
