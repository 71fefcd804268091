//! The harness itself, against single-mode nodes (no cluster needed): the
//! `deploy/` balancer configurations carry a whole game, SIGTERM drains a
//! node, SIGKILL kills it, a node restarts on its port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use testkit::balancer::available;
use testkit::player::assert_same_events;
use testkit::{Balancer, BalancerKind, Cluster, NodeOptions, Player, TestDir, http};
use transport::protocol::{OverReason, ServerMessage};

/// One game played by a player through HAProxy and one through NGINX, both
/// in front of one single-mode node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_through_haproxy_and_nginx() {
    let test = "a_game_through_haproxy_and_nginx";
    if !available(test, &[BalancerKind::Haproxy, BalancerKind::Nginx]) {
        return;
    }
    let dir = TestDir::new(test);
    let cluster = Cluster::single(&dir, &NodeOptions::default()).await;
    let haproxy = Balancer::start(BalancerKind::Haproxy, &dir, &cluster.addrs()).await;
    let nginx = Balancer::start(BalancerKind::Nginx, &dir, &cluster.addrs()).await;

    let mut host = Player::connect(&haproxy.ws_url(), "via-haproxy").await;
    // A long round, ended by a full board: no race with the timer.
    let game = host.create(2, 60_000).await;
    let mut guest = Player::connect(&nginx.ws_url(), "via-nginx").await;
    guest.join(&game.id).await;
    host.until_started().await;
    guest.until_started().await;
    host.capture_all(&[0, 1, 2, 40]).await;
    guest.capture_all(&[40, 41, 42]).await;
    // Cell 40 went to exactly one of them; every capture is in the board.
    for p in [&mut host, &mut guest] {
        p.until_captured(6).await;
    }
    let cells = host.cells();
    assert_eq!(cells, guest.cells());
    assert_eq!(cells.iter().filter(|&&c| c != 0).count(), 6, "{cells:?}");
    host.fill_board().await;
    let over = host.until_game_over().await;
    assert_eq!(guest.until_game_over().await, over);
    assert_same_events(&[&host, &guest]);
    assert!(
        matches!(
            over,
            ServerMessage::GameOver {
                reason: OverReason::BoardFull,
                ..
            }
        ),
        "{over:?}"
    );
    let cells = host.cells();
    assert_eq!(cells, guest.cells());
    assert!(cells.iter().all(|&c| c != 0), "{cells:?}");

    // The HTTP API answers the same through both balancers and directly.
    for addr in [cluster.nodes[0].addr, haproxy.addr, nginx.addr] {
        let snapshot = http::get_json(addr, &format!("/api/games/{}", game.id)).await;
        assert_eq!(snapshot["status"], "completed", "via {addr}: {snapshot}");
        assert_eq!(snapshot["seq"], host.last_seq(), "via {addr}: {snapshot}");
        let json_cells: Vec<u8> = serde_json::from_value(snapshot["cells"].clone()).unwrap();
        assert_eq!(json_cells, cells, "via {addr}");
    }
}

/// SIGTERM: `/readyz` turns 503, the active game finishes, its sessions
/// close with 1001, exit 0. The node then restarts on the same port; SIGKILL
/// ends it at once and its players' connections drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_sigkill_kills() {
    let dir = TestDir::new("sigterm_drains_and_sigkill_kills");
    let mut cluster = Cluster::single(&dir, &NodeOptions::default()).await;
    let url = cluster.nodes[0].ws_url();
    let addr = cluster.nodes[0].addr;

    let mut host = Player::connect(&url, "host").await;
    let game = host.create(2, 2_000).await;
    let mut guest = Player::connect(&url, "guest").await;
    guest.join(&game.id).await;
    host.until_started().await;

    let node = &mut cluster.nodes[0];
    node.terminate();
    http::wait_status(addr, "/readyz", 503).await;
    // The active game runs to its end, then the node says goodbye.
    for player in [&mut host, &mut guest] {
        assert!(matches!(
            player.until_game_over().await,
            ServerMessage::GameOver { .. }
        ));
        assert_eq!(
            player.until_closed().await,
            Some(1001),
            "{}",
            player.transcript()
        );
    }
    let status = node.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "drained node exit: {status}");

    node.restart().await;
    let mut player = Player::connect(&url, "after-restart").await;
    player.create(2, 1_000).await;
    node.kill();
    assert_eq!(
        node.wait_exit(Duration::from_secs(1)).await.signal(),
        Some(9)
    );
    assert_eq!(player.until_closed().await, None, "{}", player.transcript());
    assert!(
        http::try_get(addr, "/healthz").await.is_err(),
        "a killed node still answers"
    );
}
