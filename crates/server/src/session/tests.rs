//! What a connection's session keeps, and that its compact origin keeps
//! what the limits need.

use std::mem::size_of;
use std::net::IpAddr;

use super::*;
use crate::games::local::LocalGames;

/// Every connection keeps its session for its whole life, parked or not
/// (inline in its `Conn`): 104 bytes before the origin took the place of
/// the address and the hops (96), before a game's handle was one pointer
/// (72), and before the connection's id was taken from its outbox (64).
#[test]
fn a_players_session_is_64_bytes() {
    assert_eq!(size_of::<Origin>(), 16);
    assert_eq!(size_of::<PlayerSession<LocalGames>>(), 64);
}

/// The create limit sees the address it would have seen.
#[test]
fn the_origin_keeps_the_key_the_create_limit_counts() {
    for ip in [
        "203.0.113.7",
        "0.0.0.0",
        "255.255.255.255",
        "::ffff:203.0.113.7",
        "2001:db8:1:2:3:4:5:6",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "::1",
        "::",
        "::ffff:0:0",
        "fe80::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        let Origin::Client(key) = Origin::new(0, ip) else {
            panic!("a player's connection is a client's");
        };
        assert_eq!(key, AddressKey::from(ip), "{ip}");
        assert_eq!(AddressKey::from(address_of(key)), key, "{ip}");
    }
}

/// Relays are counted as before; past 255 they are past every limit.
#[test]
fn the_origin_keeps_the_hops() {
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    for hops in [0, 1, 2, 3, 255] {
        assert_eq!(Origin::new(hops, ip).hops(), hops);
    }
    assert_eq!(Origin::new(256, ip).hops(), 255);
    assert_eq!(Origin::new(u32::MAX, ip).hops(), 255);
    assert!(Origin::new(u32::MAX, ip).hops() >= crate::games::ring::relay::MAX_HOPS);
}
