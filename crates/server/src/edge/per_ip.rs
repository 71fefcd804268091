//! Per-client-IP connection limits, with X-Forwarded-For believed only from
//! trusted proxies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use axum::http::HeaderMap;

/// Counts open WebSocket connections by client IP.
#[derive(Debug)]
pub struct IpLimiter {
    /// Most connections per IP; 0 = unlimited.
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl IpLimiter {
    /// A limiter allowing `max` connections per IP (0 = unlimited).
    pub fn new(max: usize) -> IpLimiter {
        IpLimiter {
            max,
            counts: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Each critical section is one map update: a poisoned map is intact.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a connection from `ip`, unless it has `max` already (then
    /// false, and nothing is counted). Give it back with
    /// [`uncount`](Self::uncount); [`Admission`](super::admission::Admission)
    /// does.
    pub fn try_count(&self, ip: IpAddr) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut counts = self.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives back a connection counted by [`try_count`](Self::try_count).
    pub fn uncount(&self, ip: IpAddr) {
        if self.max == 0 {
            return;
        }
        let mut counts = self.lock();
        if let Some(n) = counts.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// The client's IP: the TCP peer, unless the peer is a trusted proxy, in
/// which case the right-most X-Forwarded-For entry that is not a trusted
/// proxy (entries to its left could be forged by the client).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connections_are_counted_and_given_back() {
        let l = IpLimiter::new(2);
        assert!(l.try_count(ip("10.0.0.1")));
        assert!(l.try_count(ip("10.0.0.1")));
        assert!(!l.try_count(ip("10.0.0.1")));
        assert!(l.try_count(ip("10.0.0.2")), "other IPs are not affected");
        l.uncount(ip("10.0.0.1"));
        assert!(l.try_count(ip("10.0.0.1")));
        assert_eq!(l.lock().len(), 2);
        l.uncount(ip("10.0.0.2"));
        assert!(!l.lock().contains_key(&ip("10.0.0.2")));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let proxy = ip("127.0.0.1");
        assert_eq!(
            client_ip(ip("9.9.9.9"), &h, &[proxy]),
            ip("9.9.9.9"),
            "untrusted peer"
        );
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            ip("2.2.2.2"),
            "right-most entry"
        );
        assert_eq!(
            client_ip(proxy, &HeaderMap::new(), &[proxy]),
            proxy,
            "no header"
        );
    }
}
