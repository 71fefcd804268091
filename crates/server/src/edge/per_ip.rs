//! Per-client-IP connection limits, with X-Forwarded-For believed only from
//! trusted proxies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderMap;

/// Counts open WebSocket connections by client IP.
#[derive(Debug)]
pub struct IpLimiter {
    /// Most connections per IP; 0 = unlimited.
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's slot; released when dropped.
#[derive(Debug)]
pub struct IpPermit {
    limiter: Arc<IpLimiter>,
    ip: IpAddr,
}

impl IpLimiter {
    /// A limiter allowing `max` connections per IP (0 = unlimited).
    pub fn new(max: usize) -> Arc<IpLimiter> {
        Arc::new(IpLimiter {
            max,
            counts: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Each critical section is one map update: a poisoned map is intact.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for `ip`, or `None` when it has `max` connections already.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        if self.max == 0 {
            return Some(IpPermit {
                limiter: self.clone(),
                ip,
            });
        }
        let mut counts = self.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpPermit {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        if self.limiter.max == 0 {
            return;
        }
        let mut counts = self.limiter.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
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
    fn slots_are_counted_and_released() {
        let l = IpLimiter::new(2);
        let a = l.acquire(ip("10.0.0.1")).unwrap();
        let _b = l.acquire(ip("10.0.0.1")).unwrap();
        assert!(l.acquire(ip("10.0.0.1")).is_none());
        assert!(
            l.acquire(ip("10.0.0.2")).is_some(),
            "other IPs are not affected"
        );
        drop(a);
        assert!(l.acquire(ip("10.0.0.1")).is_some());
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
