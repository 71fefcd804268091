//! The admin listener: operators' and peers' routes live there, and the
//! public port answers 404 for every one of them.

mod common;

use common::{TestServer, http};

/// Routes for operators and peers only.
const INTERNAL: [&str; 6] = [
    "/metrics",
    "/api/node",
    "/api/cluster",
    "/admin",
    "/admin.html",
    "/admin/api/overview",
];

#[tokio::test]
async fn internal_routes_are_on_the_admin_listener_only() {
    let server = TestServer::start().await;
    for path in INTERNAL {
        let reply = http::get(server.addr, path).await;
        assert_eq!(reply.status, 404, "{path} on the public port");
    }
    for path in ["/healthz", "/readyz", "/api/lobby"] {
        assert_eq!(
            http::get(server.addr, path).await.status,
            200,
            "{path} public"
        );
    }
    for path in ["/metrics", "/api/node", "/healthz", "/readyz"] {
        assert_eq!(
            http::get(server.admin, path).await.status,
            200,
            "{path} on admin"
        );
    }
    // Not a stateful cluster: there is no ring to show.
    assert_eq!(http::get(server.admin, "/api/cluster").await.status, 404);
    // The game itself is not on the admin port.
    assert_eq!(http::get(server.admin, "/ws").await.status, 404);
    server.shutdown().await;
}
