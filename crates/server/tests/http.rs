//! Protocol §6: the HTTP routes on the game port. (`/readyz` while draining
//! is in lifecycle.rs.)
//!
//! The metrics recorder is process-global, shared by every server of this
//! test binary, so only one test here reads `/metrics`, and it checks
//! series and counter increments rather than exact totals.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::http::{Reply, get, get_admin};
use common::*;
use gridcap::config::ServeOptions;
use serde_json::{Value, json};
use transport::protocol::{ErrorCode, GameSnapshot, ServerMessage};

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let server = TestServer::start().await;
    let health = get(server.addr, "/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.text().trim(), "ok");
    let ready = get(server.addr, "/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.text().trim(), "ready");
}

/// The JSON form of a snapshot as the harness built it from events.
fn as_json(game: &GameSnapshot) -> Value {
    serde_json::to_value(game).expect("serialisable")
}

/// Compares an API answer with a replica, ignoring `remaining_ms` (which
/// depends on when it was taken) beyond its presence.
#[track_caller]
fn assert_api_matches(api: &Value, replica: &GameSnapshot) {
    let mut api = api.clone();
    let mut expected = as_json(replica);
    for v in [&mut api, &mut expected] {
        if let Some(r) = v.get_mut("remaining_ms") {
            *r = json!("present");
        }
    }
    assert_eq!(api, expected);
}

async fn api_game(server: &TestServer, id: &str) -> Value {
    let reply = get(server.addr, &format!("/api/games/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        reply.headers
    );
    reply.json()
}

#[tokio::test]
async fn api_games_returns_the_snapshot_as_json() {
    // No rate limit: the players fill the board below (the game must not
    // end by time, which a busy machine could make a 1 s round do).
    let server = TestServer::start_with(ServeOptions {
        rate_limit: Some(0),
        ..options()
    })
    .await;
    let mut host = host_game(&server, 2, 60_000).await;
    let id = host.game_id();

    // Waiting.
    let waiting = api_game(&server, &id).await;
    assert_eq!(waiting["status"], "waiting");
    assert_eq!(waiting["cells"], json!(vec![0; 81]), "cells: 81 numbers");
    assert!(waiting.get("remaining_ms").is_none());
    assert!(waiting.get("winners").is_none());
    assert_api_matches(&waiting, host.replica.as_ref().unwrap());
    assert!(
        waiting.get("token").is_none()
            && !waiting.to_string().contains(host.token.as_deref().unwrap()),
        "tokens are never published"
    );

    // Active, with captures.
    let mut guest = join_game(&server, &id, "bob").await;
    host.sync_to(2).await;
    host.send(&capture(0)).await;
    guest.send(&capture(80)).await;
    host.sync_to(4).await;
    let active = api_game(&server, &id).await;
    assert_eq!(active["status"], "active");
    let cells = active["cells"].as_array().expect("an array");
    assert_eq!(cells.len(), 81);
    assert_eq!((cells[0].as_u64(), cells[80].as_u64()), (Some(1), Some(2)));
    assert!(active["remaining_ms"].as_u64().expect("a number") <= 60_000);
    assert!(active["ends_at_ms"].is_u64());
    assert_api_matches(&active, host.replica.as_ref().unwrap());

    // Completed: the board filled, 41 cells to the host, 40 to the guest.
    for cell in 1..=40 {
        host.send(&capture(cell)).await;
        guest.send(&capture(cell + 40)).await;
    }
    host.until(|m| matches!(m, ServerMessage::GameOver { .. }))
        .await;
    let completed = api_game(&server, &id).await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["winners"], json!([0]));
    assert!(completed.get("remaining_ms").is_none());
    assert_api_matches(&completed, host.replica.as_ref().unwrap());
}

#[tokio::test]
async fn api_games_404_for_unknown_and_400_for_malformed_ids() {
    let server = TestServer::start().await;
    let unknown = get(server.addr, &format!("/api/games/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(unknown.status, 404);
    for malformed in ["nope", "123", "00000000-0000-0000-0000-00000000000g"] {
        let reply = get(server.addr, &format!("/api/games/{malformed}")).await;
        assert_eq!(reply.status, 400, "{malformed}");
    }
    // The same ids over the WebSocket are unknown_game.
    let mut c = server.connect().await;
    c.send(&join("nope", "ada")).await;
    c.error(ErrorCode::UnknownGame).await;
}

#[tokio::test]
async fn the_placeholder_page_is_served_without_a_web_root() {
    let server = TestServer::start().await;
    for path in ["/", "/index.html"] {
        let page = get(server.addr, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}: {:?}",
            page.headers
        );
        assert!(page.text().contains("gridcap is running"), "{path}");
    }
    assert_eq!(get(server.addr, "/app.js").await.status, 404);
}

#[tokio::test]
async fn a_built_client_is_served_from_the_web_root() {
    let root = std::env::temp_dir().join(format!("gridcap-web-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("assets")).expect("temp dir");
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><p>the real client</p>",
    )
    .expect("write");
    std::fs::write(root.join("assets/app.js"), "console.log('gridcap')").expect("write");
    let server = TestServer::start_with(ServeOptions {
        web_root: Some(root.clone()),
        ..options()
    })
    .await;
    let index = get(server.addr, "/").await;
    assert_eq!(index.status, 200);
    assert!(index.text().contains("the real client"));
    let js = get(server.addr, "/assets/app.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(js.text(), "console.log('gridcap')");
    assert_eq!(get(server.addr, "/missing.css").await.status, 404);
    // The API routes still win over the files.
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    let _ = std::fs::remove_dir_all(root);
}

/// The value of one series (`name` including its labels), if present.
fn series(metrics: &Reply, name: &str) -> Option<f64> {
    testkit::http::series(&metrics.text(), name)
}

#[tokio::test]
async fn metrics_expose_the_gridcap_series() {
    let server = TestServer::start_with(ServeOptions {
        rate_limit: Some(0),
        ..options()
    })
    .await;
    let before = get_admin(server.admin, "/metrics").await;
    assert_eq!(before.status, 200);
    assert!(
        before
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        before.headers
    );
    let count = |r: &Reply, name: &str| series(r, name).unwrap_or(0.0);

    // Activity: a waiting game, an active one with captures, a refused
    // capture, an error.
    let _waiting = host_game(&server, 4, 30_000).await;
    let mut p = full_game(&server, 2, 30_000).await;
    for cell in 0..5 {
        p[0].send(&capture(cell)).await;
    }
    p[1].sync_to(7).await;
    p[1].send(&capture(0)).await;
    p[1].until(|m| matches!(m, ServerMessage::Rejected { .. }))
        .await;
    p[1].send(&START).await;
    p[1].error(ErrorCode::AlreadyStarted).await;
    p[0].sync_to(7).await;
    // The broadcast latency is observed once per write that carries the
    // capturer's own echoes (several captures written together count once),
    // just after the write: the client may read it a moment before.
    let broadcasts = "gridcap_capture_broadcast_seconds_count";
    testkit::http::metric_until(server.admin, broadcasts, count(&before, broadcasts) + 1.0).await;

    let after = get_admin(server.admin, "/metrics").await;
    assert_eq!(after.status, 200);
    let text = after.text();
    for name in [
        "gridcap_connections",
        "gridcap_games{status=\"waiting\"}",
        "gridcap_games{status=\"active\"}",
        "gridcap_games{status=\"completed\"}",
        "gridcap_messages_in_total",
        "gridcap_messages_out_total",
        "gridcap_captures_total",
        "gridcap_rejects_total{reason=\"taken\"}",
        "gridcap_errors_total{code=\"already_started\"}",
        "gridcap_capture_broadcast_seconds_count",
        "gridcap_capture_broadcast_seconds_sum",
    ] {
        assert!(
            series(&after, name).is_some(),
            "{name} missing from:\n{text}"
        );
    }
    assert!(
        text.contains("gridcap_capture_broadcast_seconds_bucket{le=\"0.001\"}"),
        "a latency histogram with buckets:\n{text}"
    );
    assert!(text.contains("# TYPE gridcap_captures_total counter"));
    // This server's games, published at scrape time.
    assert!(count(&after, "gridcap_games{status=\"waiting\"}") >= 1.0);
    assert!(count(&after, "gridcap_games{status=\"active\"}") >= 1.0);
    assert!(count(&after, "gridcap_connections") >= 3.0);
    // Counters moved by at least what this test did.
    let delta = |name: &str| count(&after, name) - count(&before, name);
    assert!(delta("gridcap_captures_total") >= 5.0);
    assert!(delta("gridcap_rejects_total{reason=\"taken\"}") >= 1.0);
    assert!(delta("gridcap_errors_total{code=\"already_started\"}") >= 1.0);
    assert!(delta(broadcasts) >= 1.0);
    assert!(delta("gridcap_messages_in_total") >= 10.0);
    assert!(delta("gridcap_messages_out_total") >= 10.0);
}
