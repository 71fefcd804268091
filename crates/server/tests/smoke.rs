//! A first whole game through real sockets.

mod common;

use common::*;
use transport::protocol::{GameStatus, ServerMessage};

#[tokio::test]
async fn a_whole_game_by_full_board() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 2, 30_000).await;
    assert_eq!(host.game.status, GameStatus::Waiting);
    let mut guest = join_game(&server, &host.game.id, "guest").await;
    // The game filled up: it started. The guest's snapshot includes that.
    assert_eq!(guest.game.status, GameStatus::Active);
    assert!(matches!(
        next(&mut host.client).await,
        ServerMessage::PlayerJoined { seq: 1, .. }
    ));
    assert!(matches!(
        next(&mut host.client).await,
        ServerMessage::Started { seq: 2, .. }
    ));
    for cell in 0..81 {
        let who = if cell % 3 == 0 { &mut guest } else { &mut host };
        who.client.send(&capture(cell)).await.unwrap();
        until(
            &mut who.client,
            |m| matches!(m, ServerMessage::Captured { cell: c, .. } if i64::from(*c) == cell),
        )
        .await;
    }
    let over = until(&mut host.client, |m| {
        matches!(m, ServerMessage::GameOver { .. })
    })
    .await;
    let ServerMessage::GameOver {
        winners, scores, ..
    } = over
    else {
        unreachable!()
    };
    assert_eq!(winners, vec![host.you]);
    assert_eq!(scores[usize::from(host.you)], 54);
    assert_eq!(scores[usize::from(guest.you)], 27);
    server.shutdown().await;
}
