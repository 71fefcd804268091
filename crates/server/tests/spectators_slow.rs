//! A spectator that stops reading is a slow consumer like any player: it is
//! closed (1008 "slow consumer") and stops counting, and the game's players
//! get every event meanwhile. Included in `stateless_conformance` (the
//! spectator then reads the game over pub/sub on the other node).

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::RawConn;
use common::*;
use gridcap::config::ServeOptions;
use transport::protocol::ServerMessage;

/// Events the players make while the spectator does not read: far beyond
/// what a 4 KiB socket buffer, a 256-byte write buffer and 16 queued frames
/// hold.
const CYCLES: u64 = 250;

#[tokio::test]
async fn a_spectator_that_stops_reading_is_cut_and_the_players_lose_nothing() {
    let server = TestServer::start_with_send_buffer(
        ServeOptions {
            outbox_capacity: Some(16),
            ws_write_buffer: Some(256),
            write_timeout_ms: Some(10_000),
            rate_limit: Some(0),
            ..options()
        },
        4096,
    )
    .await;
    let mut host = host_game(&server, 3, 60_000).await;
    let id = host.game_id();
    let mut guest = join_game(&server, &id, "guest").await;
    host.sync_to(guest.seq()).await;

    let mut slow = RawConn::connect(server.next_addr(), Some(4096)).await;
    slow.send_message(&watch(&id)).await;
    let ServerMessage::Watching { game } = slow.next_message().await else {
        panic!("expected watching")
    };
    assert_eq!(game.spectators, 1);
    let watched_from = game.seq;

    // The guest drops and comes back: two presence events a cycle, each
    // read by the host before the next (the game never waits for `slow`).
    let token = guest.token.clone().unwrap();
    for _ in 0..CYCLES {
        drop(guest);
        host.until(|m| {
            matches!(
                m,
                ServerMessage::Presence {
                    connected: false,
                    ..
                }
            )
        })
        .await;
        guest = resume_seat(&server, &id, &token).await;
        host.until(|m| {
            matches!(
                m,
                ServerMessage::Presence {
                    connected: true,
                    ..
                }
            )
        })
        .await;
    }
    assert_eq!(
        host.seq(),
        watched_from + 2 * CYCLES,
        "the host got every event"
    );

    // The spectator got a gap-free prefix of the events, then the close.
    let last = slow.events_then_slow_consumer_close(watched_from).await;
    assert!(last < host.seq(), "the spectator was cut before the end");
    let path = format!("/api/games/{id}");
    http::get_json_until(server.addr, &path, |g| g["spectators"] == 0).await;
    server.shutdown().await;
}
