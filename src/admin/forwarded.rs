//! Who is asking, and by which name: the peer address, unless the peer is a
//! proxy named in `TRUSTED_PROXIES`, in which case its `X-Forwarded-For`,
//! `-Host` and `-Proto` say it. From anyone else those headers are ignored,
//! or a client could pick the address it is throttled under.

use actix_web::http::header::{self, HeaderMap};
use actix_web::HttpRequest;
use std::net::{IpAddr, Ipv4Addr};

/// One address or a CIDR block, as `TRUSTED_PROXIES` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("'{text}' is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network: canonical(network), prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:1.2.3.4` is 1.2.3.4: one client, one name.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

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
    fn blocks_contain_their_addresses_only() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped is the same address");
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
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
