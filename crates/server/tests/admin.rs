//! The admin listener: operators' and peers' routes live there, and the
//! public port answers 404 for every one of them.

mod common;

use common::{TestServer, http, refused_status, ws_request};
use gridcap::config::ServeOptions;

#[tokio::test]
async fn internal_routes_are_on_the_admin_listener_only() {
    let server = TestServer::start().await;
    for path in http::INTERNAL_ROUTES {
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
    for path in [
        "/metrics",
        "/api/node",
        "/healthz",
        "/readyz",
        "/admin/api/games",
    ] {
        assert_eq!(
            http::get_admin(server.admin, path).await.status,
            200,
            "{path} on admin"
        );
    }
    // Not a stateful cluster: there is no ring to show.
    assert_eq!(
        http::get_admin(server.admin, "/api/cluster").await.status,
        404
    );
    // The game itself is not on the admin port.
    assert_eq!(http::get_admin(server.admin, "/ws").await.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_report_build_process_runtime_state_and_refusals() {
    let server = TestServer::start_with(ServeOptions {
        allowed_origins: Some(vec!["https://play.example".to_owned()]),
        ..common::options()
    })
    .await;
    let mut request = ws_request(server.next_addr());
    request
        .headers_mut()
        .insert("origin", "https://elsewhere.example".parse().unwrap());
    assert_eq!(refused_status(request).await, 403);

    let text = http::get_admin(server.admin, "/metrics").await.text();
    let build = text
        .lines()
        .find(|l| l.starts_with("gridcap_build_info{"))
        .unwrap_or_else(|| panic!("no gridcap_build_info in\n{text}"));
    assert!(build.contains(env!("CARGO_PKG_VERSION")), "{build}");
    assert_eq!(http::series(&text, "gridcap_ready"), Some(1.0), "{text}");
    assert_eq!(http::series(&text, "gridcap_draining"), Some(0.0), "{text}");
    for name in [
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
    ] {
        assert!(
            http::series(&text, name).is_some_and(|v| v > 0.0),
            "{name} in\n{text}"
        );
    }
    assert!(
        http::series(&text, "process_cpu_seconds_total").is_some(),
        "{text}"
    );
    assert!(
        http::series(&text, "gridcap_tokio_workers").is_some_and(|v| v >= 1.0),
        "{text}"
    );
    let refused = r#"gridcap_handshakes_refused_total{status="403",reason="origin not allowed"}"#;
    assert!(
        http::series(&text, refused).is_some_and(|v| v >= 1.0),
        "{text}"
    );
    server.shutdown().await;
}

/// `gridcap_capture_broadcast_seconds` is observed when the capture's echo
/// is written to the capturer (issue 16), and every session end is counted
/// by the close code the server sent.
#[tokio::test]
async fn captures_are_timed_to_their_write_and_session_ends_counted_by_code() {
    let server = TestServer::start().await;
    let mut players = common::full_game(&server, 2, 30_000).await;
    players[0].send(&common::capture(3)).await;
    for p in &mut players {
        p.until(|m| matches!(m, transport::ServerMessage::Captured { cell: 3, .. }))
            .await;
    }
    http::metric_until(server.admin, "gridcap_capture_broadcast_seconds_count", 1.0).await;
    let before = http::series(
        &http::get_admin(server.admin, "/metrics").await.text(),
        r#"gridcap_session_ends_total{end="1000"}"#,
    )
    .unwrap_or(0.0);
    let mut leaver = players.pop().expect("two");
    leaver.send(&common::LEAVE).await;
    assert_eq!(leaver.closed_now().await, Some(1000));
    http::metric_until(
        server.admin,
        r#"gridcap_session_ends_total{end="1000"}"#,
        before + 1.0,
    )
    .await;
}
