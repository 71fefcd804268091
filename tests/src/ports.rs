//! Free loopback ports.
//!
//! Ports are drawn below the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), not with port 0: a node that
//! is restarted on the same port must find it free, and an outgoing
//! connection (a bot's, a balancer's) could otherwise take that port as its
//! source port in between. Ports handed out by this process are never handed
//! out twice, so tests running in parallel do not collide.
//!
//! A Redis Cluster node also listens on its port + 10000 (the cluster bus):
//! [`free_port_with_bus`] reserves both, below the ephemeral range too.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The lowest port drawn.
const LOW: u16 = 12_000;

/// The next candidate; initialised from the pid and the clock so that two
/// test binaries running at once start far apart.
static NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// Ports reserved by [`free_port_with_bus`] for a bus: never handed out.
static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The first port of the ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .filter(|&low: &u16| low > LOW + 1_000)
        .unwrap_or(32_768)
}

/// A loopback address with a port nothing listens on, unique in this process.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], draw(0)))
}

/// A free loopback port `p` whose `p + bus` is free too, both below the
/// ephemeral range (so that no outgoing connection takes either, and a
/// restart finds them free) and neither handed out again by this process.
pub fn free_port_with_bus(bus: u16) -> u16 {
    let port = draw(bus);
    RESERVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(port + bus);
    port
}

/// A free port `p` (and `p + bus` free, when `bus` is not 0).
fn draw(bus: u16) -> u16 {
    let free = |port: u16| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok();
    let high = ephemeral_low().saturating_sub(bus);
    assert!(high > LOW + 1_000, "no room below the ephemeral range");
    let span = high - LOW;
    let mut next = NEXT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut candidate = next.unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = std::process::id().wrapping_mul(7_919).wrapping_add(nanos);
        LOW + u16::try_from(seed % u32::from(span)).unwrap_or(0)
    });
    if candidate >= high {
        candidate = LOW; // left there by a draw with a wider range
    }
    for _ in 0..span {
        let port = candidate;
        candidate = if candidate + 1 >= high {
            LOW
        } else {
            candidate + 1
        };
        let reserved = RESERVED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&port);
        if !reserved && free(port) && (bus == 0 || free(port + bus)) {
            *next = Some(candidate);
            return port;
        }
    }
    panic!("no free loopback port between {LOW} and {high}");
}

/// `n` distinct free loopback addresses.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    (0..n).map(|_| free_addr()).collect()
}
