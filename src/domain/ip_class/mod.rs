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
mod tests;
