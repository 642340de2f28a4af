//! Remote images in OpenAI requests, fetched by the gate and inlined.
//!
//! Ollama only takes inline images, so an `image_url` with an http(s) URL is
//! fetched here and replaced by a data URL. That fetch is work done for the
//! caller and a request made from inside the operator's network, so:
//! - Nothing is fetched before the request is admitted. `precheck` runs before
//!   admission and does no I/O: it counts the remote images
//!   (`IMAGE_FETCH_MAX_IMAGES`) and refuses URLs it can judge as written.
//!   `inline` runs after admission, holding the request's ticket: a fetch that
//!   fails gives the request back (nothing charged) and answers 400.
//! - Bounds: each image (`IMAGE_FETCH_MAX_BYTES`), all of one request's images
//!   together (`IMAGE_FETCH_MAX_TOTAL_BYTES`), the time of each fetch from
//!   lookup to last byte (`IMAGE_FETCH_TIMEOUT_SECS`), and the fetches running
//!   in the whole process (`IMAGE_FETCH_MAX_IN_FLIGHT`). A fetch waits up to
//!   `IMAGE_FETCH_QUEUE_WAIT_MS` for a free slot; past that its request gets
//!   503, so a burst is smoothed but a stuck image server cannot queue requests
//!   without end.
//! - Destinations: the host is resolved here, every address it resolves to is
//!   classified (`domain::ip_class`: globally reachable unicast only, unless
//!   `ALLOW_PRIVATE_IMAGE_URLS`), and the connection goes to the checked
//!   address itself: the client's resolver refuses every lookup, so there is
//!   no second one to be answered differently. Redirects are not followed.

use crate::config::Settings;
use crate::domain::ip_class;
use crate::proxy::error::ProxyError;
use crate::proxy::settle::{End, Held, Ticket};
use actix_tls::connect::{Connector as TcpConnector, Resolve, Resolver};
use actix_web::web::Bytes;
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::Semaphore;
use url::{Host, Url};

/// The fetches that may run at once in the whole process, shared by every worker.
#[derive(Clone)]
pub struct FetchSlots(Arc<Semaphore>);

impl FetchSlots {
    pub fn new(settings: &Settings) -> FetchSlots {
        FetchSlots(Arc::new(Semaphore::new(settings.image_fetch_max_in_flight)))
    }
}

/// The image-fetching client of one worker.
pub struct ImageClient {
    http: awc::Client,
    slots: FetchSlots,
}

/// Every fetch names the address it was checked for; a lookup by the
/// connector would be a second, unchecked answer.
struct NoLookups;

impl Resolve for NoLookups {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move { Err(format!("{host} was not resolved and checked first").into()) })
    }
}

pub fn build_client(settings: &Settings, slots: &FetchSlots) -> ImageClient {
    let tcp = TcpConnector::new(Resolver::custom(NoLookups));
    let connector = awc::Connector::new().connector(tcp.service()).timeout(settings.image_fetch_timeout);
    let http = awc::Client::builder()
        .connector(connector)
        .timeout(settings.image_fetch_timeout)
        .disable_redirects()
        .finish();
    ImageClient { http, slots: slots.clone() }
}

/// Before admission, without I/O: whether the body names remote images, and
/// refusals that need no fetch (too many, unusable URLs, inside addresses
/// written out in the URL).
pub fn precheck(body: &Value, settings: &Settings) -> Result<bool, ProxyError> {
    let mut paths = Vec::new();
    remote_paths(body, &mut String::new(), &mut paths);
    if paths.is_empty() {
        return Ok(false);
    }
    let max = settings.image_fetch_max_images;
    if max == 0 {
        return Err(ProxyError::BadRequest(
            "this gate fetches no remote images; send images inline as data URLs".into(),
        ));
    }
    if paths.len() > max {
        return Err(ProxyError::BadRequest(format!(
            "{} remote images in one request; this gate fetches at most {max}",
            paths.len()
        )));
    }
    for path in &paths {
        checked_url(url_at(body, path), settings.allow_private_image_urls)?;
    }
    Ok(true)
}

/// After admission: fetches every remote image of the body and returns the
/// body with data URLs in their place. Whatever stops it (a failed fetch, no
/// free slot, the request future dropped) settles the ticket as not forwarded.
pub async fn inline(
    ticket: Ticket,
    body: Bytes,
    client: &ImageClient,
    settings: &Settings,
) -> Result<(Ticket, Bytes), ProxyError> {
    let mut held = Held::new(ticket);
    let outcome = inline_all(&body, client, settings).await;
    // Back from the await, so the request was not dropped: the ticket is still here.
    let Some(ticket) = held.take() else {
        return Err(ProxyError::Unavailable("the request was settled while its images were fetched".into()));
    };
    match outcome {
        Ok(inlined) => Ok((ticket, inlined)),
        Err(error) => Err(ticket.give_back(End::NotForwarded, error)),
    }
}

async fn inline_all(body: &Bytes, client: &ImageClient, settings: &Settings) -> Result<Bytes, ProxyError> {
    // The body as it will be forwarded, after every rewrite admission made.
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| ProxyError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    let mut paths = Vec::new();
    remote_paths(&value, &mut String::new(), &mut paths);
    let mut left = settings.image_fetch_max_total_bytes;
    for path in &paths {
        let url = url_at(&value, path).to_owned();
        let (content_type, bytes) = fetch(&url, left, client, settings).await?;
        left = left.saturating_sub(bytes.len());
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        if let Some(slot) = value.pointer_mut(path) {
            *slot = Value::String(format!("data:{content_type};base64,{encoded}"));
        }
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| ProxyError::BadRequest(format!("request body cannot be rebuilt: {e}")))
}

/// JSON pointers to the URL strings of image parts that point at http(s).
fn remote_paths(value: &Value, at: &mut String, out: &mut Vec<String>) {
    let len = at.len();
    match value {
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push_str(&format!("/{i}"));
                remote_paths(v, at, out);
                at.truncate(len);
            }
        }
        Value::Object(o) => {
            let is_image = matches!(o.get("type").and_then(Value::as_str), Some("image_url" | "input_image"));
            for (k, v) in o {
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                if is_image && k == "image_url" {
                    let url = match v {
                        Value::Object(inner) => {
                            at.push_str("/url");
                            inner.get("url")
                        }
                        other => Some(other),
                    };
                    if url.and_then(Value::as_str).is_some_and(is_remote) {
                        out.push(at.clone());
                    }
                } else {
                    remote_paths(v, at, out);
                }
                at.truncate(len);
            }
        }
        _ => {}
    }
}

fn url_at<'a>(body: &'a Value, path: &str) -> &'a str {
    body.pointer(path).and_then(Value::as_str).unwrap_or_default()
}

fn is_remote(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The image's URL in refusals, cut short: a URL may be as long as the body.
fn shown(url: &str) -> String {
    match url.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &url[..end]),
        None => url.to_owned(),
    }
}

fn refusal(url: &str, why: impl std::fmt::Display) -> ProxyError {
    ProxyError::BadRequest(format!("image_url {} cannot be used: {why}", shown(url)))
}

/// The URL as it will be fetched, and an address written out in it checked.
fn checked_url(url: &str, allow_private: bool) -> Result<Url, ProxyError> {
    let mut parsed = Url::parse(url).map_err(|e| refusal(url, e))?;
    parsed.set_fragment(None);
    if let Some(ip) = literal(&parsed) {
        if !allow_private {
            ip_class::check(ip).map_err(|e| refusal(url, format!("{ip} is not a public address: {e}")))?;
        }
    }
    Ok(parsed)
}

fn literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// The address to connect to: every address the host resolves to is checked,
/// and the first is used.
async fn destination(url: &Url, allow_private: bool) -> Result<SocketAddr, String> {
    let port = url.port_or_known_default().ok_or("it names no port")?;
    let addresses: Vec<SocketAddr> = match (literal(url), url.host_str()) {
        (Some(ip), _) => vec![SocketAddr::new(ip, port)],
        (None, Some(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| format!("{name} could not be resolved: {e}"))?
            .collect(),
        (None, None) => return Err("it names no host".into()),
    };
    if !allow_private {
        for address in &addresses {
            let ip = address.ip();
            ip_class::check(ip)
                .map_err(|e| format!("it leads to {ip}, which is not a public address: {e}"))?;
        }
    }
    addresses.first().copied().ok_or_else(|| "its host has no address".into())
}

async fn fetch(
    url: &str,
    room: usize,
    client: &ImageClient,
    settings: &Settings,
) -> Result<(String, Bytes), ProxyError> {
    let parsed = checked_url(url, settings.allow_private_image_urls)?;
    let wait = settings.image_fetch_queue_wait;
    let _slot = match tokio::time::timeout(wait, client.slots.0.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            return Err(ProxyError::Unavailable(format!(
                "the gate is fetching as many images as it may at once ({}); try again shortly",
                settings.image_fetch_max_in_flight
            )))
        }
    };
    let limit = room.min(settings.image_fetch_max_bytes);
    let too_large = if room < settings.image_fetch_max_bytes {
        format!(
            "this request's images together are larger than the gate's limit of {} bytes",
            settings.image_fetch_max_total_bytes
        )
    } else {
        format!("it is larger than the gate's limit of {limit} bytes per image")
    };
    let timeout = settings.image_fetch_timeout;
    let attempt = async {
        let address = destination(&parsed, settings.allow_private_image_urls).await?;
        // A fresh connection each time: a pooled one, found by host name, was
        // made to the address an earlier lookup gave.
        let request = client.http.get(parsed.as_str()).address(address).force_close();
        let mut response = request.send().await.map_err(|e| format!("fetch failed: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!("the server answered {status}; redirects are not followed"));
        }
        if !status.is_success() {
            return Err(format!("the server answered {status}"));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !content_type.starts_with("image/") {
            return Err(format!("it is not an image ({content_type})"));
        }
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large.clone());
        }
        let bytes = response.body().limit(limit).await.map_err(|e| match e {
            awc::error::PayloadError::Overflow => too_large.clone(),
            e => format!("it could not be read: {e}"),
        })?;
        // awc reads an HTTP/1.1 body without a length or chunks as empty.
        if bytes.is_empty() {
            return Err("the server sent no image data (an empty body, or one without a length)".into());
        }
        Ok((content_type, bytes))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(fetched)) => Ok(fetched),
        Ok(Err(why)) => Err(refusal(url, why)),
        Err(_) => Err(refusal(url, format!("it took longer than {} s to fetch", timeout.as_secs()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned()).unwrap()
    }

    #[test]
    fn only_http_image_parts_are_collected() {
        let body = serde_json::json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "http://not-an-image"},
            {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            {"type": "input_image", "image_url": "http://example.org/dog.jpg"}]}]});
        let mut paths = vec![];
        remote_paths(&body, &mut String::new(), &mut paths);
        assert_eq!(paths, ["/messages/0/content/1/image_url/url", "/messages/0/content/3/image_url"]);
        assert_eq!(url_at(&body, &paths[1]), "http://example.org/dog.jpg");
    }

    #[test]
    fn keys_with_slashes_and_tildes_are_escaped_in_the_pointer() {
        let body =
            serde_json::json!({"a/b~c": [{"type": "input_image", "image_url": "http://x.test/i.png"}]});
        let mut paths = vec![];
        remote_paths(&body, &mut String::new(), &mut paths);
        assert_eq!(paths, ["/a~1b~0c/0/image_url"]);
        assert_eq!(url_at(&body, &paths[0]), "http://x.test/i.png");
    }

    #[test]
    fn the_precheck_counts_and_reads_urls_without_fetching() {
        let with = |urls: &[&str]| {
            let parts: Vec<Value> = urls
                .iter()
                .map(|u| serde_json::json!({"type": "image_url", "image_url": {"url": u}}))
                .collect();
            serde_json::json!({"messages": [{"role": "user", "content": parts}]})
        };
        let s = settings(&[("IMAGE_FETCH_MAX_IMAGES", "2")]);
        assert!(!precheck(&with(&["data:image/png;base64,AA"]), &s).unwrap());
        assert!(precheck(&with(&["https://example.org/a.png"]), &s).unwrap());
        let three = with(&["https://a.test/1", "https://a.test/2", "https://a.test/3"]);
        assert!(precheck(&three, &s).unwrap_err().to_string().contains("at most 2"));
        for inside in
            ["http://127.0.0.1/x", "http://[::1]/x", "http://2130706433/x", "http://[::ffff:a00:1]/x"]
        {
            let e = precheck(&with(&[inside]), &s).unwrap_err().to_string();
            assert!(e.contains("not a public address"), "{inside}: {e}");
        }
        assert!(
            precheck(&with(&["http://[::1]/x"]), &settings(&[("ALLOW_PRIVATE_IMAGE_URLS", "true")])).unwrap()
        );
        let off = settings(&[("IMAGE_FETCH_MAX_IMAGES", "0")]);
        assert!(precheck(&with(&["https://a.test/1"]), &off).unwrap_err().to_string().contains("inline"));
    }

    #[test]
    fn a_long_url_is_cut_short_in_refusals() {
        let url = format!("http://example.org/{}", "a".repeat(10_000));
        assert!(refusal(&url, "no").to_string().len() < 400);
    }
}
