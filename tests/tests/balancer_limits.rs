//! `--max-connections-per-ip` behind the real balancers of `deploy/`: with
//! the balancer's address in `--trusted-proxies`, a node counts the clients
//! behind it (from `X-Forwarded-For`), not the balancer, and a client cannot
//! escape its count by sending an `X-Forwarded-For` of its own.
//!
//! The clients are told apart by their loopback source address (127.0.0.2,
//! 127.0.0.3…); the balancer reaches the node from 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Instant;

use testkit::balancer::available;
use testkit::client::{Client, handshake_from, request};
use testkit::{Balancer, BalancerKind, Cluster, NodeOptions, POLL, TestDir, WAIT};
use tokio_tungstenite::tungstenite;

fn client_ip(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// A connection from `source` through `url`, or the refusal's HTTP status.
async fn through(url: &str, source: IpAddr, forwarded_for: Option<&str>) -> Result<Client, u16> {
    let mut request = request(url);
    if let Some(claim) = forwarded_for {
        request
            .headers_mut()
            .insert("x-forwarded-for", claim.parse().unwrap());
    }
    match handshake_from(source, request).await {
        Ok((client, _)) => Ok(client),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("connecting from {source} through {url}: {e}"),
    }
}

async fn per_ip_limit_behind(kind: BalancerKind, test: &str) {
    if !available(test, &[kind]) {
        return;
    }
    let dir = TestDir::new(test);
    let options = NodeOptions {
        extra: [
            "--max-connections-per-ip",
            "2",
            "--trusted-proxies",
            "127.0.0.1",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..NodeOptions::default()
    };
    let cluster = Cluster::single(&dir, &options).await;
    let balancer = Balancer::start(kind, &dir, &cluster.addrs()).await;
    let url = balancer.ws_url();

    let first = through(&url, client_ip(2), None).await.expect("first");
    let _second = through(&url, client_ip(2), None).await.expect("second");
    assert_eq!(
        through(&url, client_ip(2), None).await.err(),
        Some(429),
        "the third connection of one client"
    );
    // Its own X-Forwarded-For does not make it someone else: the balancer
    // appends the address it saw, and the node believes only that one.
    assert_eq!(
        through(&url, client_ip(2), Some("203.0.113.9")).await.err(),
        Some(429),
        "a client that forges X-Forwarded-For"
    );
    // Another client behind the same balancer is not affected (a node that
    // counted the balancer would refuse it).
    let _other = through(&url, client_ip(3), None)
        .await
        .expect("another client behind the same balancer");
    // A slot freed is a slot available again.
    first.close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        match through(&url, client_ip(2), None).await {
            Ok(_again) => break,
            Err(status) => assert!(
                Instant::now() < deadline,
                "no slot for 127.0.0.2 within {WAIT:?} of a close: {status}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limit_counts_clients_behind_haproxy() {
    per_ip_limit_behind(
        BalancerKind::Haproxy,
        "per_ip_limit_counts_clients_behind_haproxy",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limit_counts_clients_behind_nginx() {
    per_ip_limit_behind(
        BalancerKind::Nginx,
        "per_ip_limit_counts_clients_behind_nginx",
    )
    .await;
}
