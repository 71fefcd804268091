//! `gridcap healthcheck`: asks a running node, through its admin listener,
//! whether it is ready (or, with `--live`, merely up). Made for Docker's
//! HEALTHCHECK and systemd's `ExecStartPost`: it reads the same
//! configuration as `serve` (flags, `GRIDCAP_*`, `--config`), so it follows
//! the node when its addresses change, and TLS on the public port does not
//! concern it (the admin listener is plain HTTP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use crate::games::ring::membership;

/// What to ask and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// The node's `--admin-listen` (an unspecified address means loopback).
    pub admin: SocketAddr,
    /// `/healthz` (up) instead of `/readyz` (taking games).
    pub live: bool,
    /// Keep asking until this long has passed (zero: ask once).
    pub wait: Duration,
    /// Longest one request may take.
    pub timeout: Duration,
}

impl Check {
    /// The path asked.
    pub fn path(&self) -> &'static str {
        if self.live { "/healthz" } else { "/readyz" }
    }

    /// Where to connect: the admin address, with 0.0.0.0 or [::] made
    /// loopback (a listener there answers on loopback too).
    pub fn target(&self) -> SocketAddr {
        let ip = match self.admin.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.admin.port())
    }

    /// `Ok` once the node answers 200; otherwise the last answer or error.
    pub async fn run(&self) -> Result<(), String> {
        let client = membership::http_client(self.timeout);
        let target = self.target().to_string();
        let deadline = Instant::now() + self.wait;
        loop {
            let outcome = match membership::get(&client, &target, self.path(), self.timeout).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => format!(
                    "http://{target}{} answered {status}: {}",
                    self.path(),
                    String::from_utf8_lossy(&body).trim()
                ),
                Err(e) => format!("http://{target}{}: {e}", self.path()),
            };
            if Instant::now() >= deadline {
                return Err(outcome);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(admin: &str) -> Check {
        Check {
            admin: admin.parse().unwrap(),
            live: false,
            wait: Duration::ZERO,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        assert_eq!(check("0.0.0.0:9091").target().to_string(), "127.0.0.1:9091");
        assert_eq!(check("[::]:9091").target().to_string(), "[::1]:9091");
        assert_eq!(check("10.0.0.7:9091").target().to_string(), "10.0.0.7:9091");
        assert_eq!(check("10.0.0.7:9091").path(), "/readyz");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_failure_that_names_the_address() {
        let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let err = check(&addr.to_string()).run().await.unwrap_err();
        assert!(err.contains(&format!("http://{addr}/readyz")), "{err}");
    }
}
