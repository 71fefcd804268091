//! Spectators (protocol §7) through the wire: `watch` by id or code, the
//! `watching` snapshot and every broadcast event after it, the `spectators`
//! count, `max_spectators`, and what a spectator may not do.
//!
//! Run against one node here, against two stateless nodes in
//! `stateless_conformance` and over TLS in `tls_conformance` (both include
//! this file; in a stateless run consecutive clients sit on different
//! nodes), and against stateful nodes in `tests/tests/cluster_spectators.rs`.
//! The slow spectator is `spectators_slow.rs`.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::replica::assert_same_game;
use common::*;
use gridcap::config::ServeOptions;
use transport::protocol::{ErrorCode, GameSnapshot, GameStatus, ServerMessage};

/// A new connection watching `game`; its `watching` snapshot.
async fn spectator(server: &TestServer, game: &str) -> (TestClient, GameSnapshot) {
    let mut c = server.connect().await;
    c.send(&watch(game)).await;
    let snapshot = c.watching().await;
    (c, snapshot)
}

/// The spectators count `GET /api/games/{id}` shows once it is `n`.
async fn http_spectators_until(server: &TestServer, id: &str, n: u64) {
    let path = format!("/api/games/{id}");
    http::get_json_until(server.addr, &path, |g| g["spectators"].as_u64() == Some(n)).await;
}

#[tokio::test]
async fn a_spectator_follows_the_players_board_at_every_seq() {
    let server = TestServer::start().await;
    let mut players = full_game(&server, 2, 60_000).await;
    let code = players[0].replica.as_ref().unwrap().code.clone();
    // By code, in lower case: codes are case-insensitive.
    let (mut watcher, snapshot) = spectator(&server, &code.to_lowercase()).await;
    assert_eq!(snapshot.status, GameStatus::Active);
    assert_eq!(snapshot.seq, players[0].seq());
    assert_eq!(
        snapshot.spectators, 1,
        "the count includes the new spectator"
    );
    assert_same_game(&snapshot, players[0].replica.as_ref().unwrap());

    for cell in 0..12 {
        let who = usize::try_from(cell % 2).unwrap();
        players[who].send(&capture(cell)).await;
        let seq = players[who]
            .until(|m| matches!(m, ServerMessage::Captured { .. }))
            .await
            .seq()
            .unwrap();
        watcher.sync_to(seq).await;
        players[1 - who].sync_to(seq).await;
        for p in &players {
            assert_same_game(
                watcher.replica.as_ref().unwrap(),
                p.replica.as_ref().unwrap(),
            );
        }
    }
    // A spectator hears nothing addressed to one player: a refused capture
    // goes to its sender only.
    players[0].send(&capture(0)).await;
    players[0]
        .until(|m| matches!(m, ServerMessage::Rejected { .. }))
        .await;
    players[1].send(&capture(12)).await;
    let seq = players[1].until(|m| m.seq().is_some()).await.seq().unwrap();
    match watcher.next().await {
        ServerMessage::Captured { cell: 12, .. } => assert_eq!(watcher.seq(), seq),
        other => panic!("the spectator got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_spectator_may_not_play_and_leave_closes_1000() {
    let server = TestServer::start().await;
    let players = full_game(&server, 2, 60_000).await;
    let (mut watcher, _) = spectator(&server, &players[0].game_id()).await;
    watcher.send(&capture(40)).await;
    watcher.error(ErrorCode::NotInGame).await;
    watcher.send(&START).await;
    watcher.error(ErrorCode::NotInGame).await;
    watcher.send(&LEAVE).await;
    assert_eq!(watcher.closed_now().await, Some(1000));
    server.shutdown().await;
}

#[tokio::test]
async fn snapshots_count_the_spectators_and_a_resync_counts_once() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 2, 60_000).await;
    let id = host.game_id();
    let (mut first, snapshot) = spectator(&server, &id).await;
    assert_eq!(
        (snapshot.status, snapshot.spectators),
        (GameStatus::Waiting, 1)
    );
    let (second, snapshot) = spectator(&server, &id).await;
    assert_eq!(snapshot.spectators, 2);
    // Watching the same game again is a resync: a fresh snapshot, one count.
    first.send(&watch(&id)).await;
    assert_eq!(first.watching().await.spectators, 2);
    http_spectators_until(&server, &id, 2).await;
    // Spectators are not players: no seat, no player_joined, no presence.
    let guest = join_game(&server, &id, "guest").await;
    assert_eq!(guest.replica.as_ref().unwrap().players.len(), 2);
    assert_eq!(guest.replica.as_ref().unwrap().spectators, 2);
    host.sync_to(guest.seq()).await;
    assert_eq!(host.replica.as_ref().unwrap().players.len(), 2);
    second.close().await;
    http_spectators_until(&server, &id, 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_101st_spectator_gets_game_full() {
    let server = TestServer::start().await;
    let host = host_game(&server, 2, 60_000).await;
    let id = host.game_id();
    let mut watchers = Vec::new();
    for n in 1..=100u32 {
        let (w, snapshot) = spectator(&server, &id).await;
        assert_eq!(snapshot.spectators, n);
        watchers.push(w);
    }
    let mut late = server.connect().await;
    late.send(&watch(&id)).await;
    late.error(ErrorCode::GameFull).await;
    // One leaves: a seat in the stands is free again.
    watchers.pop().unwrap().close().await;
    http_spectators_until(&server, &id, 99).await;
    late.send(&watch(&id)).await;
    assert_eq!(late.watching().await.spectators, 100);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_games_and_bad_ids_are_refused() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send(&watch("3b1e6d0a-3c4f-4e8e-9a51-0c1d2e3f4a5b")).await;
    c.error(ErrorCode::UnknownGame).await;
    c.send(&watch("ZZZZZZ")).await;
    c.error(ErrorCode::UnknownGame).await;
    c.send(&watch("not a game")).await;
    c.error(ErrorCode::UnknownGame).await;
    server.shutdown().await;
}

/// A server without the per-connection rate limit, for games played to a
/// full board at full speed.
async fn unlimited() -> TestServer {
    TestServer::start_with(ServeOptions {
        rate_limit: Some(0),
        ..options()
    })
    .await
}

/// Every cell captured, alternating seats: the game ends (board full).
async fn fill_the_board(players: &mut [TestClient]) -> u64 {
    for cell in 0..81u8 {
        let who = usize::from(cell % 2);
        players[who].send(&capture(i64::from(cell))).await;
        players[who]
            .until(|m| matches!(m, ServerMessage::Captured { cell: c, .. } if *c == cell))
            .await;
    }
    let (_, _, _) = players[0].game_over().await;
    players[0].seq()
}

#[tokio::test]
async fn a_completed_game_gives_its_final_snapshot_and_a_spectator_sees_game_over() {
    let server = unlimited().await;
    let mut players = full_game(&server, 2, 60_000).await;
    let id = players[0].game_id();
    let (mut early, _) = spectator(&server, &id).await;
    let last = fill_the_board(&mut players).await;
    early.game_over().await;
    assert_eq!(early.seq(), last);
    let (_, final_snapshot) = spectator(&server, &id).await;
    assert_eq!(final_snapshot.status, GameStatus::Completed);
    assert_eq!(final_snapshot.seq, last);
    assert_same_game(&final_snapshot, players[0].replica.as_ref().unwrap());
    server.shutdown().await;
}

#[tokio::test]
async fn a_seated_player_cannot_watch_until_its_game_is_over() {
    let server = unlimited().await;
    let mut players = full_game(&server, 2, 60_000).await;
    let other = host_game(&server, 2, 60_000).await;
    players[0].send(&watch(&other.game_id())).await;
    players[0].error(ErrorCode::AlreadyInGame).await;
    fill_the_board(&mut players).await;
    // Its game over, the player may watch another: it leaves its seat.
    players[0].send(&watch(&other.game_id())).await;
    let snapshot = players[0].watching().await;
    assert_eq!(snapshot.id, other.game_id());
    server.shutdown().await;
}

#[tokio::test]
async fn a_switch_follows_the_new_game_and_a_failed_switch_keeps_the_first() {
    let server = TestServer::start().await;
    let mut a = full_game(&server, 2, 60_000).await;
    let mut b = full_game(&server, 2, 60_000).await;
    let (mut watcher, _) = spectator(&server, &a[0].game_id()).await;

    // A switch to a game that does not exist: still watching `a`.
    watcher.send(&watch("ZZZZZZ")).await;
    let mut refused = false;
    while !refused {
        match watcher.next().await {
            ServerMessage::Watching { game } => assert_eq!(game.id, a[0].game_id()),
            ServerMessage::Error { code, .. } => {
                assert_eq!(code, ErrorCode::UnknownGame);
                refused = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    a[0].send(&capture(5)).await;
    let seq = a[0].until(|m| m.seq().is_some()).await.seq().unwrap();
    watcher.sync_to(seq).await;

    // A switch to `b`: its snapshot, then its events and none of `a`'s.
    watcher.send(&watch(&b[0].game_id())).await;
    let snapshot = watcher.watching().await;
    assert_eq!(snapshot.id, b[0].game_id());
    a[1].send(&capture(6)).await;
    a[1].until(|m| m.seq().is_some()).await;
    b[1].send(&capture(7)).await;
    let seq = b[1].until(|m| m.seq().is_some()).await.seq().unwrap();
    match watcher.next().await {
        ServerMessage::Captured { cell: 7, .. } => assert_eq!(watcher.seq(), seq),
        other => panic!("expected b's capture, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_spectator_who_joins_is_a_player_and_hears_each_event_once() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 3, 60_000).await;
    let id = host.game_id();
    let (mut c, _) = spectator(&server, &id).await;
    c.send(&join(&id, "fan")).await;
    let joined = c.joined().await;
    assert_eq!(joined.players.len(), 2);
    assert_eq!(joined.spectators, 0, "it watches no more");
    // Strict seq checking: a second copy of an event would fail here.
    let third = join_game(&server, &id, "third").await;
    c.sync_to(third.seq() + 1).await;
    host.sync_to(third.seq() + 1).await;
    assert_eq!(c.replica.as_ref().unwrap().status, GameStatus::Active);
    server.shutdown().await;
}
