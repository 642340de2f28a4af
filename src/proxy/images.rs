//! Remote images in OpenAI requests, fetched by the gate and inlined.
//!
//! Ollama only takes inline images, so an `image_url` with an http(s) URL is
//! fetched here and replaced by a data URL. The fetch is someone else's URL
//! fetched from inside your network, so: loopback, private, link-local and
//! other non-public addresses are refused (unless `ALLOW_PRIVATE_IMAGE_URLS`),
//! checked by the resolver itself so that the address checked is the address
//! connected to; no redirects; a size and a time limit; image types only.

use super::error::ProxyError;
use crate::config::Settings;
use actix_tls::connect::{Connector as TcpConnector, Resolve, Resolver};
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// At most this many remote images are fetched for one request.
const MAX_FETCHES: usize = 16;

/// The image-fetching client of one worker.
pub struct ImageClient(awc::Client);

struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            let usable: Vec<SocketAddr> =
                found.into_iter().filter(|a| self.allow_private || is_public(a.ip())).collect();
            if usable.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(usable)
        })
    }
}

pub fn build_client(settings: &Settings) -> ImageClient {
    let tcp =
        TcpConnector::new(Resolver::custom(PublicOnly { allow_private: settings.allow_private_image_urls }));
    let connector = awc::Connector::new().connector(tcp.service()).timeout(settings.image_fetch_timeout);
    ImageClient(
        awc::Client::builder()
            .connector(connector)
            .timeout(settings.image_fetch_timeout)
            .disable_redirects()
            .finish(),
    )
}

/// Not somewhere inside: loopback, private, link-local, shared, documentation,
/// multicast or unspecified addresses (and IPv4 mapped into IPv6).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Replaces every http(s) image URL in the body by a data URL; true when any was.
pub async fn inline_remote(
    body: &mut Value,
    settings: &Settings,
    client: &ImageClient,
) -> Result<bool, ProxyError> {
    let mut slots = Vec::new();
    collect(body, &mut slots);
    if slots.is_empty() {
        return Ok(false);
    }
    if slots.len() > MAX_FETCHES {
        return Err(ProxyError::BadRequest(format!("at most {MAX_FETCHES} remote images per request")));
    }
    for slot in slots {
        let url = slot.as_str().unwrap_or_default().to_owned();
        *slot = Value::String(fetch(&url, settings, client).await?);
    }
    Ok(true)
}

/// The URL strings of image parts that point at http(s).
fn collect<'a>(value: &'a mut Value, out: &mut Vec<&'a mut Value>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| collect(v, out)),
        Value::Object(o) => {
            let is_image = matches!(o.get("type").and_then(Value::as_str), Some("image_url" | "input_image"));
            for (k, v) in o.iter_mut() {
                if is_image && k == "image_url" {
                    let url = match v {
                        Value::Object(inner) => inner.get_mut("url"),
                        other => Some(other),
                    };
                    if let Some(url) = url.filter(|u| u.as_str().is_some_and(is_remote)) {
                        out.push(url);
                    }
                } else {
                    collect(v, out);
                }
            }
        }
        _ => {}
    }
}

fn is_remote(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

async fn fetch(url: &str, settings: &Settings, client: &ImageClient) -> Result<String, ProxyError> {
    let refuse = |why: String| ProxyError::BadRequest(format!("image_url {url} cannot be used: {why}"));
    let parsed = url::Url::parse(url).map_err(|e| refuse(e.to_string()))?;
    // An address written out in the URL never reaches the resolver: check it here.
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| !settings.allow_private_image_urls && !is_public(ip)) {
        return Err(refuse("it points at a private, loopback or link-local address".into()));
    }
    let mut response = client.0.get(url).send().await.map_err(|e| refuse(format!("fetch failed: {e}")))?;
    if !response.status().is_success() {
        return Err(refuse(format!("the server answered {}", response.status())));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !content_type.starts_with("image/") {
        return Err(refuse(format!("it is not an image ({content_type})")));
    }
    let bytes = response.body().limit(settings.image_fetch_max_bytes).await.map_err(|e| {
        refuse(format!("larger than {} bytes, or unreadable: {e}", settings.image_fetch_max_bytes))
    })?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(format!("data:{content_type};base64,{encoded}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_http_image_parts_are_collected() {
        let mut body = serde_json::json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "http://not-an-image"},
            {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            {"type": "input_image", "image_url": "http://example.org/dog.jpg"}]}]});
        let mut slots = vec![];
        collect(&mut body, &mut slots);
        assert_eq!(slots.len(), 2);
    }
}
