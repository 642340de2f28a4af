//! Who is asking, and by which name: the peer address, unless the peer is a
//! proxy named in `TRUSTED_PROXIES`, in which case its `X-Forwarded-For`,
//! `-Host` and `-Proto` say it. The proxy checks keys' allowed addresses by
//! it; the admin its login throttle, audit log and host names. From anyone else those headers are ignored,
//! or a client could pick the address it is throttled under.

pub use crate::domain::cidr::{canonical, Cidr};
use actix_web::http::header::{self, HeaderMap};
use actix_web::HttpRequest;
use std::net::{IpAddr, Ipv4Addr};

fn trusted(proxies: &[Cidr], ip: IpAddr) -> bool {
    proxies.iter().any(|c| c.contains(ip))
}

fn peer(req: &HttpRequest) -> IpAddr {
    req.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| canonical(a.ip()))
}

fn last_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = headers.get_all(name).last()?.to_str().ok()?;
    value.rsplit(',').next().map(str::trim).filter(|v| !v.is_empty())
}

/// The client's address: walking `X-Forwarded-For` from the right, the first
/// hop that is not a trusted proxy. Hops left of it could be made up.
pub fn client_address(req: &HttpRequest, proxies: &[Cidr]) -> IpAddr {
    let mut address = peer(req);
    if !trusted(proxies, address) {
        return address;
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            // An unreadable hop: the trusted proxy in front of it is as far as we can tell.
            break;
        };
        address = canonical(ip);
        if !trusted(proxies, address) {
            break;
        }
    }
    address
}

/// The host name (with its port, as the browser sent it) this request was made to.
pub fn request_host(req: &HttpRequest, proxies: &[Cidr]) -> Option<String> {
    if trusted(proxies, peer(req)) {
        if let Some(host) = last_value(req.headers(), "x-forwarded-host") {
            return Some(host.to_ascii_lowercase());
        }
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))?;
    Some(host.trim().to_ascii_lowercase()).filter(|h| !h.is_empty())
}

/// `https` when a trusted proxy says the browser used it; the gate itself speaks plain HTTP.
pub fn request_scheme(req: &HttpRequest, proxies: &[Cidr]) -> &'static str {
    let https = trusted(proxies, peer(req))
        && last_value(req.headers(), "x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
    if https {
        "https"
    } else {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies = cidrs(&["127.0.0.1"]);
        let from = |peer: &str| {
            TestRequest::default()
                .peer_addr(format!("{peer}:5000").parse().unwrap())
                .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7"))
                .insert_header(("x-forwarded-host", "admin.example:8443"))
                .insert_header(("x-forwarded-proto", "https"))
                .insert_header(("host", "127.0.0.1:8001"))
                .to_http_request()
        };
        let via_proxy = from("127.0.0.1");
        assert_eq!(client_address(&via_proxy, &proxies), "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(request_host(&via_proxy, &proxies).as_deref(), Some("admin.example:8443"));
        assert_eq!(request_scheme(&via_proxy, &proxies), "https");
        let direct = from("192.0.2.1");
        assert_eq!(client_address(&direct, &proxies), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(request_host(&direct, &proxies).as_deref(), Some("127.0.0.1:8001"));
        assert_eq!(request_scheme(&direct, &proxies), "http");
        assert_eq!(client_address(&via_proxy, &[]), "127.0.0.1".parse::<IpAddr>().unwrap(), "none trusted");
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_from_the_right() {
        let proxies = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let req = TestRequest::default()
            .peer_addr("127.0.0.1:1".parse().unwrap())
            .insert_header(("x-forwarded-for", "1.1.1.1, 198.51.100.4, 10.0.0.5"))
            .to_http_request();
        assert_eq!(client_address(&req, &proxies), "198.51.100.4".parse::<IpAddr>().unwrap());
        let junk = TestRequest::default()
            .peer_addr("127.0.0.1:1".parse().unwrap())
            .insert_header(("x-forwarded-for", "not-an-ip"))
            .to_http_request();
        assert_eq!(client_address(&junk, &proxies), "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
