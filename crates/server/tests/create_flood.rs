//! Issue 18, the game-table flood: one client address creating games in a
//! loop (connect, `create`, drop) is answered `rate_limited` past
//! `--max-creates-per-ip`, while a player from another address creates and
//! plays as usual; and one connection creating game after game is answered
//! `rate_limited` past `--max-creates-per-connection`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gridcap::config::ServeOptions;
use transport::ErrorCode;
use transport::protocol::{GameStatus, ServerMessage};

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const HONEST: [u8; 4] = [127, 0, 0, 2];

#[tokio::test]
async fn one_address_creating_in_a_loop_is_rate_limited_and_others_play_on() {
    let server = TestServer::start_with(ServeOptions {
        max_creates_per_ip: Some(5),
        ..options()
    })
    .await;
    for n in 0..5 {
        let mut c = client_from(server.addr, ATTACKER).await;
        assert_eq!(
            try_create(&mut c).await,
            Ok(GameStatus::Waiting),
            "create {n}"
        );
    }
    for _ in 0..20 {
        let mut c = client_from(server.addr, ATTACKER).await;
        assert_eq!(try_create(&mut c).await, Err(ErrorCode::RateLimited));
    }
    // The refused connection stays usable for everything but creating.
    let mut refused = client_from(server.addr, ATTACKER).await;
    assert_eq!(try_create(&mut refused).await, Err(ErrorCode::RateLimited));
    refused.ping_pong(1).await;

    // Another address creates, fills and plays its game.
    let mut host = client_from(server.addr, HONEST).await;
    assert_eq!(try_create(&mut host).await, Ok(GameStatus::Waiting));
    let id = host.game_id();
    refused.send(&join(&id, "guest")).await;
    refused.joined().await;
    host.send(&capture(40)).await;
    host.until(|m| matches!(m, ServerMessage::Captured { cell: 40, .. }))
        .await;
    refused
        .until(|m| matches!(m, ServerMessage::Captured { cell: 40, .. }))
        .await;
}

/// Plays the host's game to `game_over` by filling the board.
async fn fill_board(host: &mut TestClient) {
    for cell in 0..81 {
        host.send(&capture(cell)).await;
    }
    host.until(|m| matches!(m, ServerMessage::GameOver { .. }))
        .await;
}

#[tokio::test]
async fn one_connection_creates_at_most_its_count_a_minute() {
    let server = TestServer::start_with(ServeOptions {
        max_creates_per_connection: Some(2),
        rate_limit: Some(0),
        ..options()
    })
    .await;
    let mut host = client_from(server.addr, ATTACKER).await;
    for round in 0..2 {
        assert_eq!(
            try_create(&mut host).await,
            Ok(GameStatus::Waiting),
            "round {round}"
        );
        let mut guest = client_from(server.addr, ATTACKER).await;
        guest.send(&join(&host.game_id(), "guest")).await;
        guest.joined().await;
        fill_board(&mut host).await;
    }
    assert_eq!(try_create(&mut host).await, Err(ErrorCode::RateLimited));
    // The limit is the connection's: another one creates.
    let mut other = client_from(server.addr, ATTACKER).await;
    assert_eq!(try_create(&mut other).await, Ok(GameStatus::Waiting));
}
