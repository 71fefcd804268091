//! A first whole game through real sockets.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use transport::protocol::{GameStatus, OverReason, ServerMessage};

#[tokio::test]
async fn a_whole_game_by_full_board() {
    // 54 captures by one player, one per round trip: more than the default
    // rate limit allows (bursts of 40, then 20/s), which limits.rs covers.
    let server = TestServer::start_with(gridcap::config::ServeOptions {
        rate_limit: Some(0),
        ..options()
    })
    .await;
    let mut host = host_game(&server, 2, 30_000).await;
    let mut guest = join_game(&server, &host.game_id(), "guest").await;
    // The guest's join filled the game: its snapshot is taken before the
    // start, which it then hears like everyone else.
    let snapshot = guest.replica.clone().expect("joined");
    assert_eq!((snapshot.status, snapshot.seq), (GameStatus::Waiting, 1));
    guest.sync_to(2).await;
    let snapshot = guest.replica.clone().expect("joined");
    assert_eq!((snapshot.status, snapshot.seq), (GameStatus::Active, 2));
    assert!(matches!(
        host.next().await,
        ServerMessage::PlayerJoined { seq: 1, .. }
    ));
    assert!(matches!(
        host.next().await,
        ServerMessage::Started { seq: 2, .. }
    ));
    for cell in 0..81 {
        let who = if cell % 3 == 0 { &mut guest } else { &mut host };
        who.send(&capture(cell)).await;
        who.until(
            |m| matches!(m, ServerMessage::Captured { cell: c, .. } if i64::from(*c) == cell),
        )
        .await;
    }
    for c in [&mut host, &mut guest] {
        let (reason, scores, winners) = c.game_over().await;
        assert_eq!(reason, OverReason::BoardFull);
        assert_eq!(winners, vec![0]);
        assert_eq!(scores, vec![54, 27]);
    }
    server.shutdown().await;
}
