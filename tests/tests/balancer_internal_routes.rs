//! The operators' routes (`/metrics`, `/api/node`, `/api/cluster`, `/admin`)
//! are not reachable through the real balancers of `deploy/`: the nodes
//! serve them on their admin listener only, and the balancers refuse them
//! even when a backend is, by mistake, a node's admin port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use testkit::balancer::available;
use testkit::http;
use testkit::{Balancer, BalancerKind, Cluster, NodeOptions, TestDir};

async fn statuses(addr: SocketAddr, paths: &[&str]) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for path in paths {
        out.push(((*path).to_owned(), http::get(addr, path).await.status));
    }
    out
}

async fn internal_routes_stay_inside(kind: BalancerKind, test: &str) {
    if !available(test, &[kind]) {
        return;
    }
    let dir = TestDir::new(test);
    let cluster = Cluster::stateful(&dir, &["a", "b"], &NodeOptions::default()).await;
    let node = cluster.node("a");
    // The nodes serve them, on the admin listener.
    for path in ["/metrics", "/api/node", "/api/cluster"] {
        assert_eq!(
            http::get(node.admin, path).await.status,
            200,
            "{path} on admin"
        );
    }
    // The balancer in front of the game ports: public routes pass, internal
    // ones are 404.
    let balancer = Balancer::start(kind, &dir, &cluster.addrs()).await;
    for path in ["/readyz", "/healthz", "/api/lobby"] {
        assert_eq!(http::get(balancer.addr, path).await.status, 200, "{path}");
    }
    let through = statuses(balancer.addr, &http::INTERNAL_ROUTES).await;
    assert!(
        through.iter().all(|(_, s)| *s == 404),
        "{kind:?}: {through:?}"
    );
    drop(balancer);

    // A balancer pointed at the admin ports by mistake still publishes none
    // of them (its health check, /readyz, passes there).
    let admins: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.admin).collect();
    let mistaken_dir = TestDir::new(&format!("{test}-on-admin-ports"));
    let mistaken = Balancer::start(kind, &mistaken_dir, &admins).await;
    let through = statuses(mistaken.addr, &http::INTERNAL_ROUTES).await;
    assert!(
        through.iter().all(|(_, s)| *s == 404),
        "{kind:?} on admin ports: {through:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_does_not_pass_internal_routes() {
    internal_routes_stay_inside(
        BalancerKind::Haproxy,
        "haproxy_does_not_pass_internal_routes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_does_not_pass_internal_routes() {
    internal_routes_stay_inside(BalancerKind::Nginx, "nginx_does_not_pass_internal_routes").await;
}
