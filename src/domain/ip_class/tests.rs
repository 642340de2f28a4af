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
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("outside 2000::/3, not allocated as global unicast")),
    ("2000::", None),
    ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
    ("4000::", Some("outside 2000::/3, not allocated as global unicast")),
    ("5f00::1", Some("segment routing SIDs")),
    // fc00::/7
    ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("outside 2000::/3, not allocated as global unicast")),
    ("fc00::1", Some("unique local")),
    ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("unique local")),
    ("fe00::", Some("outside 2000::/3, not allocated as global unicast")),
    // fe80::/10, fec0::/10, ff00::/8
    ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("outside 2000::/3, not allocated as global unicast")),
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
