//! Posting one alert to `ALERT_WEBHOOK_URL`: a timeout per try, a few tries
//! with growing pauses while the receiver is away or failing, and a
//! signature of the body so the receiver can tell the gate sent it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;
use url::Url;

/// What the receiver sees as the caller.
pub const USER_AGENT: &str = concat!("ollama-gate/", env!("CARGO_PKG_VERSION"));
/// The body's HMAC-SHA256 with `ALERT_WEBHOOK_SECRET`, as `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-ollama-gate-signature";
/// How long one try may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The pauses before the second, third and fourth try.
pub const BACKOFF: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30)];

pub struct Webhook {
    pub url: Url,
    pub secret: Option<String>,
}

/// How one try went.
#[derive(Debug, PartialEq, Eq)]
pub enum Try {
    Delivered,
    /// The receiver is away, slow, overloaded or failing: worth another try.
    Again(String),
    /// The receiver refused the alert itself (a 4xx other than 429): another
    /// try would be refused alike.
    Refused(String),
}

/// Whether an answer with this status is worth another try.
pub fn judge(status: u16) -> Try {
    match status {
        200..=299 => Try::Delivered,
        429 | 500..=599 => Try::Again(format!("answered {status}")),
        _ => Try::Refused(format!("answered {status}")),
    }
}

/// HMAC-SHA256 of `body` keyed with `secret`, in hex.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // Any key length is accepted (a long one is hashed first): this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl Webhook {
    /// The receiver as logs may show it: scheme and host, never the path
    /// or credentials, which often carry the token.
    pub fn shown(&self) -> String {
        format!("{}://{}", self.url.scheme(), self.url.host_str().unwrap_or_default())
    }

    /// One POST of `body`.
    pub async fn try_once(&self, client: &awc::Client, body: &str) -> Try {
        let mut request = client
            .post(self.url.as_str())
            .timeout(TIMEOUT)
            .insert_header(("content-type", "application/json"))
            .insert_header(("user-agent", USER_AGENT));
        if let Some(secret) = &self.secret {
            let signed = signature(secret.as_bytes(), body.as_bytes());
            request = request.insert_header((SIGNATURE_HEADER, format!("sha256={signed}")));
        }
        match request.send_body(body.to_owned()).await {
            Ok(response) => judge(response.status().as_u16()),
            // Connection refused, reset, timed out: the receiver may be back soon.
            Err(e) => Try::Again(format!("unreachable: {e}")),
        }
    }

    /// Tries until delivered, refused, or out of tries; returns whether delivered.
    pub async fn deliver(&self, client: &awc::Client, body: &str) -> bool {
        let mut pauses = BACKOFF.iter();
        loop {
            let why = match self.try_once(client, body).await {
                Try::Delivered => return true,
                Try::Refused(why) => {
                    log::warn!("alert webhook {} refused an alert ({why}); not trying again", self.shown());
                    return false;
                }
                Try::Again(why) => why,
            };
            match pauses.next() {
                Some(pause) => {
                    log::warn!("alert webhook {} failed ({why}); trying again in {pause:?}", self.shown());
                    tokio::time::sleep(*pause).await;
                }
                None => {
                    log::warn!("alert webhook {} failed ({why}); giving up on this alert", self.shown());
                    return false;
                }
            }
        }
    }
}

/// The client alerts are sent with: no redirects (a receiver should not
/// send the gate's alerts elsewhere).
pub fn client() -> awc::Client {
    awc::Client::builder().timeout(TIMEOUT).disable_redirects().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn failures_and_overload_are_tried_again_refusals_are_not() {
        assert_eq!(judge(204), Try::Delivered);
        assert!(matches!(judge(500), Try::Again(_)));
        assert!(matches!(judge(503), Try::Again(_)));
        assert!(matches!(judge(429), Try::Again(_)));
        assert!(matches!(judge(400), Try::Refused(_)));
        assert!(matches!(judge(404), Try::Refused(_)));
        assert!(matches!(judge(301), Try::Refused(_)));
    }

    #[test]
    fn logs_show_the_receiver_without_its_token() {
        let hook = Webhook { url: Url::parse("https://u:p@hooks.example/T0/s3cr3t").unwrap(), secret: None };
        assert_eq!(hook.shown(), "https://hooks.example");
    }
}
