//! Addresses and CIDR blocks, as `TRUSTED_PROXIES` and a key's allowed
//! addresses list them.

use std::fmt;
use std::net::IpAddr;

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
        // `::ffff:10.0.0.0/104` is the IPv4 block 10.0.0.0/8: one client, one
        // name, whichever way it is written (and a prefix that fits its family).
        let (network, prefix) = match network {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (network, prefix),
            },
            v4 => (v4, prefix),
        };
        Ok(Cidr { network: masked(network, prefix), prefix })
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

/// The block's first address: `10.1.2.3/16` is `10.1.0.0/16`.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

impl fmt::Display for Cidr {
    /// A single address without its prefix; a block as `network/prefix`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

/// The most addresses and blocks one key may list.
pub const MAX_ALLOWED_ADDRESSES: usize = 100;

/// The addresses a key may be used from. A key without a list may be used
/// from anywhere; a list is never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressList(Vec<Cidr>);

impl AddressList {
    /// Addresses and blocks as an admin gives them: each item may itself
    /// hold several, separated by commas or white space. Nothing at all is
    /// `None`: anywhere.
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Option<AddressList>, String> {
        let mut list: Vec<Cidr> = Vec::new();
        for item in items {
            for text in item.as_ref().split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty())
            {
                let cidr = Cidr::parse(text)?;
                if !list.contains(&cidr) {
                    list.push(cidr);
                }
            }
        }
        if list.len() > MAX_ALLOWED_ADDRESSES {
            return Err(format!("at most {MAX_ALLOWED_ADDRESSES} addresses or blocks, not {}", list.len()));
        }
        Ok((!list.is_empty()).then_some(AddressList(list)))
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(Cidr::to_string).collect()
    }

    pub fn to_db(&self) -> String {
        self.to_vec().join(",")
    }

    /// What `to_db` wrote; an entry that no longer reads is dropped (never
    /// widened: a list left empty allows no address).
    pub fn from_db(text: &str) -> AddressList {
        AddressList(text.split(',').filter_map(|t| Cidr::parse(t).ok()).collect())
    }
}

/// `::ffff:1.2.3.4` is 1.2.3.4: one client, one name.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_contain_their_addresses_only() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()), "IPv4-mapped is the same address");
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x", "", "/8", "1.2.3.4/-1", "1.2.3.4 /8"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapped_blocks_are_ipv4_blocks_and_never_overflow() {
        let mapped = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(mapped, Cidr::parse("10.0.0.0/8").unwrap());
        assert!(mapped.contains("10.9.9.9".parse().unwrap()));
        // Shorter than the mapped range: an IPv6 block, checked as one.
        let wide = Cidr::parse("::ffff:0:0/90").unwrap();
        assert!(!wide.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(Cidr::parse("::ffff:1.2.3.4").unwrap().to_string(), "1.2.3.4");
    }

    #[test]
    fn blocks_are_shown_by_their_network() {
        assert_eq!(Cidr::parse("10.1.2.3/16").unwrap().to_string(), "10.1.0.0/16");
        assert_eq!(Cidr::parse("[2001:DB8::1]").unwrap().to_string(), "2001:db8::1");
        assert_eq!(Cidr::parse("2001:db8::1/32").unwrap().to_string(), "2001:db8::/32");
    }

    #[test]
    fn lists_split_on_commas_and_space_and_round_trip() {
        let list =
            AddressList::parse_list(&["10.0.0.0/8, 192.168.1.7", "::1\n2001:db8::/32"]).unwrap().unwrap();
        assert_eq!(list.to_vec(), ["10.0.0.0/8", "192.168.1.7", "::1", "2001:db8::/32"]);
        assert_eq!(AddressList::from_db(&list.to_db()), list);
        assert!(list.allows("10.200.0.1".parse().unwrap()));
        assert!(list.allows("::ffff:192.168.1.7".parse().unwrap()));
        assert!(!list.allows("192.168.1.8".parse().unwrap()));
        assert!(!list.allows("2001:db9::1".parse().unwrap()));
        assert_eq!(AddressList::parse_list(&[" ", ""]).unwrap(), None, "nothing given: anywhere");
        assert!(AddressList::parse_list(&["10.0.0.0/8 nope"]).unwrap_err().contains("'nope'"));
        let many: Vec<String> =
            (0..=MAX_ALLOWED_ADDRESSES).map(|i| format!("10.0.{}.{}", i / 256, i % 256)).collect();
        assert!(AddressList::parse_list(&many).is_err());
        assert!(!AddressList::from_db("").allows("127.0.0.1".parse().unwrap()), "never widened");
    }
}
