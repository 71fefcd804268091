//! `--ws-park-after-ms` on a real node: players whose connections park
//! while they wait (no WebSocket held) are woken by the server's events and
//! by their own frames, park again, and play a whole game with the same
//! events as one another (the parking itself is tested in
//! `crates/transport/src/session/park_tests.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::player::assert_same_events;
use testkit::{Cluster, NodeOptions, Player, TestDir, http};
use transport::ClientMessage;

/// One node whose sessions park after 50 ms of quiet.
async fn parking_node(dir: &TestDir) -> Cluster {
    let options = NodeOptions {
        extra: vec!["--ws-park-after-ms".into(), "50".into()],
        ..NodeOptions::default()
    };
    Cluster::single(dir, &options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_players_wake_for_events_and_play_a_whole_game() {
    let dir = TestDir::new("parked_players_wake_for_events_and_play_a_whole_game");
    let cluster = parking_node(&dir).await;
    let node = &cluster.nodes[0];
    let url = node.ws_url();

    // Three seats, so that the second player does not start the game.
    let mut host = Player::connect(&url, "host").await;
    let snapshot = host.create(3, 60_000).await;
    let mut guest = Player::connect(&url, "guest").await;
    guest.join(&snapshot.id).await;
    host.until("the guest's arrival", |m| {
        matches!(m, transport::ServerMessage::PlayerJoined { .. })
    })
    .await;
    // Both quiet: both park.
    http::metric_until(node.admin, "gridcap_ws_parked", 2.0).await;

    // The host's frame wakes its session; `started` wakes the guest's.
    host.send(&ClientMessage::Start {}).await;
    host.until_started().await;
    guest.until_started().await;
    host.capture_all(&[0, 1, 2]).await;
    guest.until_captured(3).await;
    host.until_captured(3).await;

    // Quiet again mid-round: both park again, and wake for the rest.
    http::metric_until(node.admin, "gridcap_ws_parked", 2.0).await;
    guest.fill_board().await;
    host.until_game_over().await;
    guest.until_game_over().await;
    assert_same_events(&[&host, &guest]);
}

/// A parked session is no task: the drain still finds it. Parked players
/// of a waiting game are sent away with 1001 when the node drains, and the
/// node exits 0 once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_sends_parked_players_away_with_1001() {
    let dir = TestDir::new("the_drain_sends_parked_players_away_with_1001");
    let mut cluster = parking_node(&dir).await;
    let node = &mut cluster.nodes[0];
    let url = node.ws_url();
    let mut host = Player::connect(&url, "host").await;
    let snapshot = host.create(3, 60_000).await;
    let mut guest = Player::connect(&url, "guest").await;
    guest.join(&snapshot.id).await;
    http::metric_until(node.admin, "gridcap_ws_parked", 2.0).await;

    node.terminate();
    for player in [&mut host, &mut guest] {
        assert_eq!(
            player.until_closed().await,
            Some(1001),
            "{}",
            player.transcript()
        );
    }
    let status = node.wait_exit(std::time::Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "drained node exit: {status}");
}
