//! Which addresses are globally reachable unicast, after IANA's IPv4 and IPv6
//! special-purpose address registries.
//!
//! The gate fetches remote images from inside the operator's network: an
//! address that is not reachable from everywhere (loopback, private, shared,
//! link-local, protocol assignments, documentation, benchmarking, reserved,
//! broadcast, multicast, and the IPv6 forms that carry such an IPv4 address
//! inside) is somewhere only the gate can reach, so it is refused.
//!
//! Each block is one row; the most specific row that holds an address decides,
//! so the registry's few globally reachable exceptions inside a refused block
//! (192.0.0.9/32 inside 192.0.0.0/24) are rows of their own. Beyond the
//! registries:
//! - IPv4 multicast and IPv6 multicast and site-local are refused (they are
//!   not unicast, or deprecated scoped unicast).
//! - ORCHIDv2 and Drone Remote ID tags are refused although the registry calls
//!   them globally reachable: they are identifiers, not locators (RFC 7343,
//!   RFC 9374), so no server listens on one.
//! - Teredo (2001::/32) is refused rather than decoded: its client address is
//!   obfuscated and no image server is reached that way.
//! - 64:ff9b::/96 (NAT64) and 2002::/16 (6to4) carry an IPv4 address: the
//!   address is as reachable as the IPv4 one inside it.
//! - IPv6 outside 2000::/3, the only block IANA allocates as global unicast,
//!   is refused where no row says otherwise.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the most specific row says about its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Not globally reachable: refused.
    Refused,
    /// A globally reachable exception inside a refused block.
    Global,
    /// As reachable as the IPv4 address found at this bit offset (from the top).
    Embeds(u32),
}

/// A special-purpose block.
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    bits: u128,
    len: u8,
    v6: bool,
    pub name: &'static str,
    reach: Reach,
}

impl Block {
    const fn v4(addr: Ipv4Addr, len: u8, name: &'static str, reach: Reach) -> Block {
        Block { bits: addr.to_bits() as u128, len, v6: false, name, reach }
    }

    const fn v6(addr: Ipv6Addr, len: u8, name: &'static str, reach: Reach) -> Block {
        Block { bits: addr.to_bits(), len, v6: true, name, reach }
    }

    fn width(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    fn holds(&self, bits: u128) -> bool {
        let shift = u32::from(self.width() - self.len);
        // A /0 block holds everything; shifting by the full width would overflow.
        shift >= u32::from(self.width()) || (bits >> shift) == (self.bits >> shift)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.v6 {
            write!(f, "{}/{} ({})", Ipv6Addr::from_bits(self.bits), self.len, self.name)
        } else {
            write!(f, "{}/{} ({})", Ipv4Addr::from_bits(self.bits as u32), self.len, self.name)
        }
    }
}

use Reach::{Embeds, Global, Refused};

const fn a4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

#[allow(clippy::too_many_arguments)]
const fn a6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, d, e, f, g, h)
}

const V4: &[Block] = &[
    Block::v4(a4(0, 0, 0, 0), 8, "this network", Refused),
    Block::v4(a4(0, 0, 0, 0), 32, "this host on this network", Refused),
    Block::v4(a4(10, 0, 0, 0), 8, "private-use", Refused),
    Block::v4(a4(100, 64, 0, 0), 10, "shared address space", Refused),
    Block::v4(a4(127, 0, 0, 0), 8, "loopback", Refused),
    Block::v4(a4(169, 254, 0, 0), 16, "link-local", Refused),
    Block::v4(a4(172, 16, 0, 0), 12, "private-use", Refused),
    Block::v4(a4(192, 0, 0, 0), 24, "IETF protocol assignments", Refused),
    Block::v4(a4(192, 0, 0, 0), 29, "IPv4 service continuity prefix", Refused),
    Block::v4(a4(192, 0, 0, 8), 32, "IPv4 dummy address", Refused),
    Block::v4(a4(192, 0, 0, 9), 32, "port control protocol anycast", Global),
    Block::v4(a4(192, 0, 0, 10), 32, "traversal using relays around NAT anycast", Global),
    Block::v4(a4(192, 0, 0, 170), 32, "NAT64/DNS64 discovery", Refused),
    Block::v4(a4(192, 0, 0, 171), 32, "NAT64/DNS64 discovery", Refused),
    Block::v4(a4(192, 0, 2, 0), 24, "documentation (TEST-NET-1)", Refused),
    Block::v4(a4(192, 88, 99, 0), 24, "deprecated 6to4 relay anycast", Refused),
    Block::v4(a4(192, 168, 0, 0), 16, "private-use", Refused),
    Block::v4(a4(198, 18, 0, 0), 15, "benchmarking", Refused),
    Block::v4(a4(198, 51, 100, 0), 24, "documentation (TEST-NET-2)", Refused),
    Block::v4(a4(203, 0, 113, 0), 24, "documentation (TEST-NET-3)", Refused),
    Block::v4(a4(224, 0, 0, 0), 4, "multicast", Refused),
    Block::v4(a4(240, 0, 0, 0), 4, "reserved", Refused),
    Block::v4(a4(255, 255, 255, 255), 32, "limited broadcast", Refused),
];

const V6: &[Block] = &[
    Block::v6(a6(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified", Refused),
    Block::v6(a6(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback", Refused),
    Block::v6(a6(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible (deprecated)", Refused),
    Block::v6(a6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped", Refused),
    Block::v6(a6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64 well-known prefix", Embeds(96)),
    Block::v6(a6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use IPv4/IPv6 translation", Refused),
    Block::v6(a6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only", Refused),
    Block::v6(a6(0x100, 0, 0, 1, 0, 0, 0, 0), 64, "dummy prefix", Refused),
    Block::v6(a6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignments", Refused),
    Block::v6(a6(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo", Refused),
    Block::v6(a6(0x2001, 1, 0, 0, 0, 0, 0, 1), 128, "port control protocol anycast", Global),
    Block::v6(a6(0x2001, 1, 0, 0, 0, 0, 0, 2), 128, "traversal using relays around NAT anycast", Global),
    Block::v6(a6(0x2001, 1, 0, 0, 0, 0, 0, 3), 128, "DNS-SD service registration anycast", Global),
    Block::v6(a6(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, "benchmarking", Refused),
    Block::v6(a6(0x2001, 3, 0, 0, 0, 0, 0, 0), 32, "AMT", Global),
    Block::v6(a6(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48, "AS112-v6", Global),
    Block::v6(a6(0x2001, 0x10, 0, 0, 0, 0, 0, 0), 28, "deprecated ORCHID", Refused),
    Block::v6(a6(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, "ORCHIDv2 identifiers", Refused),
    Block::v6(a6(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, "drone remote ID entity tags", Refused),
    Block::v6(a6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation", Refused),
    Block::v6(a6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4", Embeds(16)),
    Block::v6(a6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation", Refused),
    Block::v6(a6(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "segment routing SIDs", Refused),
    Block::v6(a6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local", Refused),
    Block::v6(a6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local", Refused),
    Block::v6(a6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local (deprecated)", Refused),
    Block::v6(a6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast", Refused),
];

/// Everything outside 2000::/3 that no row names.
const NOT_ALLOCATED: Block =
    Block::v6(a6(0, 0, 0, 0, 0, 0, 0, 0), 0, "outside 2000::/3, not allocated as global unicast", Refused);
const GLOBAL_UNICAST: Block = Block::v6(a6(0x2000, 0, 0, 0, 0, 0, 0, 0), 3, "global unicast", Global);

/// Why an address is not globally reachable unicast.
#[derive(Debug, PartialEq, Eq)]
pub struct NotGlobal {
    /// The block that refuses it (for an embedded IPv4 address, the IPv4 block).
    pub block: &'static Block,
    /// The IPv4 address found inside a NAT64 or 6to4 address.
    pub embedded: Option<Ipv4Addr>,
}

impl fmt::Display for NotGlobal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "it carries {v4}, which is in {}", self.block),
            None => write!(f, "it is in {}", self.block),
        }
    }
}

/// `Ok` when the address is globally reachable unicast.
pub fn check(ip: IpAddr) -> Result<(), NotGlobal> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

fn check_v4(ip: Ipv4Addr) -> Result<(), NotGlobal> {
    match most_specific(V4, u128::from(ip.to_bits())) {
        Some(block) if block.reach == Refused => Err(NotGlobal { block, embedded: None }),
        _ => Ok(()),
    }
}

fn check_v6(ip: Ipv6Addr) -> Result<(), NotGlobal> {
    let bits = ip.to_bits();
    let block = most_specific(V6, bits).unwrap_or(if GLOBAL_UNICAST.holds(bits) {
        &GLOBAL_UNICAST
    } else {
        &NOT_ALLOCATED
    });
    match block.reach {
        Global => Ok(()),
        Refused => Err(NotGlobal { block, embedded: None }),
        Embeds(offset) => {
            let inner = Ipv4Addr::from_bits((bits >> (96 - offset)) as u32);
            check_v4(inner).map_err(|e| NotGlobal { embedded: Some(inner), ..e })
        }
    }
}

fn most_specific(table: &'static [Block], bits: u128) -> Option<&'static Block> {
    table.iter().filter(|b| b.holds(bits)).max_by_key(|b| b.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block name that refuses an address, or `None` when it is global.
    fn verdict(ip: &str) -> Option<&'static str> {
        check(ip.parse().unwrap()).err().map(|e| e.block.name)
    }

    /// One address inside each registry row, and the addresses just outside it.
    const TABLE: &[(&str, Option<&str>)] = &[
        // 0.0.0.0/8 this network; 0.0.0.0/32 this host
        ("0.0.0.0", Some("this host on this network")),
        ("0.0.0.1", Some("this network")),
        ("0.255.255.255", Some("this network")),
        ("1.0.0.0", None),
        // 10.0.0.0/8
        ("9.255.255.255", None),
        ("10.0.0.0", Some("private-use")),
        ("10.255.255.255", Some("private-use")),
        ("11.0.0.0", None),
        // 100.64.0.0/10
        ("100.63.255.255", None),
        ("100.64.0.0", Some("shared address space")),
        ("100.127.255.255", Some("shared address space")),
        ("100.128.0.0", None),
        // 127.0.0.0/8
        ("126.255.255.255", None),
        ("127.0.0.1", Some("loopback")),
        ("127.255.255.255", Some("loopback")),
        ("128.0.0.0", None),
        // 169.254.0.0/16
        ("169.253.255.255", None),
        ("169.254.169.254", Some("link-local")),
        ("169.255.0.0", None),
        // 172.16.0.0/12
        ("172.15.255.255", None),
        ("172.16.0.0", Some("private-use")),
        ("172.31.255.255", Some("private-use")),
        ("172.32.0.0", None),
        // 192.0.0.0/24 and the rows inside it
        ("191.255.255.255", None),
        ("192.0.0.0", Some("IPv4 service continuity prefix")),
        ("192.0.0.7", Some("IPv4 service continuity prefix")),
        ("192.0.0.8", Some("IPv4 dummy address")),
        ("192.0.0.9", None),
        ("192.0.0.10", None),
        ("192.0.0.11", Some("IETF protocol assignments")),
        ("192.0.0.170", Some("NAT64/DNS64 discovery")),
        ("192.0.0.171", Some("NAT64/DNS64 discovery")),
        ("192.0.0.255", Some("IETF protocol assignments")),
        ("192.0.1.0", None),
        // 192.0.2.0/24
        ("192.0.2.0", Some("documentation (TEST-NET-1)")),
        ("192.0.2.255", Some("documentation (TEST-NET-1)")),
        ("192.0.3.0", None),
        // AS112 and AMT are globally reachable
        ("192.31.196.1", None),
        ("192.52.193.1", None),
        ("192.175.48.1", None),
        // 192.88.99.0/24
        ("192.88.98.255", None),
        ("192.88.99.1", Some("deprecated 6to4 relay anycast")),
        ("192.88.100.0", None),
        // 192.168.0.0/16
        ("192.167.255.255", None),
        ("192.168.1.1", Some("private-use")),
        ("192.169.0.0", None),
        // 198.18.0.0/15
        ("198.17.255.255", None),
        ("198.18.0.0", Some("benchmarking")),
        ("198.19.255.255", Some("benchmarking")),
        ("198.20.0.0", None),
        // 198.51.100.0/24
        ("198.51.99.255", None),
        ("198.51.100.7", Some("documentation (TEST-NET-2)")),
        ("198.51.101.0", None),
        // 203.0.113.0/24
        ("203.0.112.255", None),
        ("203.0.113.7", Some("documentation (TEST-NET-3)")),
        ("203.0.114.0", None),
        // 224.0.0.0/4, 240.0.0.0/4, 255.255.255.255/32
        ("223.255.255.255", None),
        ("224.0.0.1", Some("multicast")),
        ("239.255.255.255", Some("multicast")),
        ("240.0.0.0", Some("reserved")),
        ("255.255.255.254", Some("reserved")),
        ("255.255.255.255", Some("limited broadcast")),
        // Ordinary public IPv4
        ("1.1.1.1", None),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        // IPv6: ::/128, ::1/128, ::/96, ::ffff:0:0/96
        ("::", Some("unspecified")),
        ("::1", Some("loopback")),
        ("::2", Some("IPv4-compatible (deprecated)")),
        ("::8.8.8.8", Some("IPv4-compatible (deprecated)")),
        ("::1:0:0", Some("outside 2000::/3, not allocated as global unicast")),
        ("::fffe:ffff:ffff", Some("outside 2000::/3, not allocated as global unicast")),
        ("::ffff:127.0.0.1", Some("IPv4-mapped")),
        ("::ffff:8.8.8.8", Some("IPv4-mapped")),
        ("::1:0:0:0", Some("outside 2000::/3, not allocated as global unicast")),
        // 64:ff9b::/96: as the IPv4 address inside
        ("64:ff9b::8.8.8.8", None),
        ("64:ff9b::127.0.0.1", Some("loopback")),
        ("64:ff9b::10.0.0.1", Some("private-use")),
        ("64:ff9b::192.0.0.9", None),
        ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", Some("outside 2000::/3, not allocated as global unicast")),
        ("64:ff9b:0:0:0:1::", Some("outside 2000::/3, not allocated as global unicast")),
        // 64:ff9b:1::/48
        ("64:ff9b:1::808:808", Some("local-use IPv4/IPv6 translation")),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some("local-use IPv4/IPv6 translation")),
        ("64:ff9b:2::", Some("outside 2000::/3, not allocated as global unicast")),
        // 100::/64 and 100:0:0:1::/64
        ("100::1", Some("discard-only")),
        ("100:0:0:1::1", Some("dummy prefix")),
        ("100:0:0:2::", Some("outside 2000::/3, not allocated as global unicast")),
        // 2001::/23 and its rows
        ("2001::1", Some("Teredo")),
        ("2001:0:ffff:ffff::", Some("Teredo")),
        ("2001:1::", Some("IETF protocol assignments")),
        ("2001:1::1", None),
        ("2001:1::2", None),
        ("2001:1::3", None),
        ("2001:1::4", Some("IETF protocol assignments")),
        ("2001:2::1", Some("benchmarking")),
        ("2001:2:0:ffff::", Some("benchmarking")),
        ("2001:2:1::", Some("IETF protocol assignments")),
        ("2001:3::1", None),
        ("2001:3:ffff::", None),
        ("2001:4::", Some("IETF protocol assignments")),
        ("2001:4:112::1", None),
        ("2001:4:113::", Some("IETF protocol assignments")),
        ("2001:10::1", Some("deprecated ORCHID")),
        ("2001:20::1", Some("ORCHIDv2 identifiers")),
        ("2001:2f:ffff::", Some("ORCHIDv2 identifiers")),
        ("2001:30::1", Some("drone remote ID entity tags")),
        ("2001:40::", Some("IETF protocol assignments")),
        ("2001:1ff:ffff:ffff::", Some("IETF protocol assignments")),
        ("2001:200::", None),
        // 2001:db8::/32
        ("2001:db7:ffff:ffff::", None),
        ("2001:db8::1", Some("documentation")),
        ("2001:db9::", None),
        // 2002::/16: as the IPv4 address inside
        ("2002:808:808::1", None),
        ("2002:7f00:1::", Some("loopback")),
        ("2002:a9fe:a9fe::", Some("link-local")),
        ("2002:c000:209::", Some("documentation (TEST-NET-1)")),
        ("2002:5db8:d822::", None),
        ("2001:ffff:ffff:ffff::", None),
        ("2003::1", None),
        // 3fff::/20
        ("3ffe:ffff::", None),
        ("3fff::1", Some("documentation")),
        ("3fff:fff::", Some("documentation")),
        ("3fff:1000::", None),
        // 2000::/3 ends; beyond it nothing is global unicast
        (
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            Some("outside 2000::/3, not allocated as global unicast"),
        ),
        ("2000::", None),
        ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("4000::", Some("outside 2000::/3, not allocated as global unicast")),
        ("5f00::1", Some("segment routing SIDs")),
        // fc00::/7
        (
            "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            Some("outside 2000::/3, not allocated as global unicast"),
        ),
        ("fc00::1", Some("unique local")),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("unique local")),
        ("fe00::", Some("outside 2000::/3, not allocated as global unicast")),
        // fe80::/10, fec0::/10, ff00::/8
        (
            "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            Some("outside 2000::/3, not allocated as global unicast"),
        ),
        ("fe80::1", Some("link-local")),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("link-local")),
        ("fec0::1", Some("site-local (deprecated)")),
        ("ff02::1", Some("multicast")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("multicast")),
        // Ordinary public IPv6
        ("2606:4700::1111", None),
        ("2a00:1450:4001:80b::200e", None),
    ];

    #[test]
    fn every_row_of_the_table_is_classified_as_listed() {
        let wrong: Vec<String> = TABLE
            .iter()
            .filter(|(ip, want)| verdict(ip) != *want)
            .map(|(ip, want)| format!("{ip}: got {:?}, want {want:?}", verdict(ip)))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Each block's first and last address belong to it, and the addresses on
    /// either side of it do not (they fall in another row, or none).
    #[test]
    fn each_block_ends_where_its_prefix_says() {
        for table in [V4, V6] {
            for block in table {
                let width = u32::from(block.width());
                let size_bits = width - u32::from(block.len);
                let span = if size_bits >= 128 { u128::MAX } else { (1u128 << size_bits) - 1 };
                let first = block.bits;
                let last = first + span;
                let max = if block.v6 { u128::MAX } else { u128::from(u32::MAX) };
                for inside in [first, last] {
                    assert!(block.holds(inside), "{block} holds {inside:x}");
                }
                if first > 0 {
                    assert!(!block.holds(first - 1), "{block} ends before {:x}", first - 1);
                }
                if last < max {
                    assert!(!block.holds(last + 1), "{block} ends before {:x}", last + 1);
                }
            }
        }
    }

    #[test]
    fn refusals_name_the_block_and_the_embedded_address() {
        let e = check("10.1.2.3".parse().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "it is in 10.0.0.0/8 (private-use)");
        let e = check("2002:7f00:1::".parse().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "it carries 127.0.0.1, which is in 127.0.0.0/8 (loopback)");
        let e = check("fd00::1".parse().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "it is in fc00::/7 (unique local)");
    }

    #[test]
    fn every_refusing_row_refuses_its_own_first_address() {
        for block in V4.iter().chain(V6) {
            let ip: IpAddr = if block.v6 {
                Ipv6Addr::from_bits(block.bits).into()
            } else {
                Ipv4Addr::from_bits(block.bits as u32).into()
            };
            match block.reach {
                Refused => assert!(check(ip).is_err(), "{block}"),
                Global => assert!(check(ip).is_ok(), "{block}"),
                // The first address embeds 0.0.0.0.
                Embeds(_) => assert_eq!(check(ip).unwrap_err().embedded, Some(Ipv4Addr::UNSPECIFIED)),
            }
        }
    }
}
