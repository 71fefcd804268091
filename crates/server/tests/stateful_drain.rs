//! A draining stateful node, in process (issue 17): its waiting games move
//! to a ready peer with their players, names, host, settings, code and
//! lobby listing, and their links keep leading there; it starts no round.
//! (Real processes behind HAProxy, restarts and bots: tests/tests/rolling_drain.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use gridcap::config::ServeOptions;
use transport::protocol::{ClientMessage, GameSnapshot, GameStatus, ServerMessage};

/// Stateful nodes `a` and `b`, each seeing the other ready; a drain may
/// take up to 20 s.
async fn two_nodes() -> [TestServer; 2] {
    TestServer::start_stateful_nodes(ServeOptions {
        drain_timeout_ms: Some(20_000),
        ..options()
    })
    .await
}

/// Waits (bounded) until a node whose shutdown began has stopped.
async fn stopped(stopping: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the drain ends in time")
        .expect("node task");
}

/// Takes back `token`'s seat in `game` on `addr`, expecting it waiting.
async fn resume_waiting(addr: SocketAddr, game: &str, token: &str) -> (TestClient, GameSnapshot) {
    let mut c = connect(addr).await;
    c.send(&resume(game, token)).await;
    let snap = c.joined().await;
    assert_eq!(snap.status, GameStatus::Waiting, "{snap:?}");
    (c, snap)
}

/// The waiting games of `b` move to `a` when `b` drains: the players are
/// sent away with 1001 and find the same game (id, code, names, seats,
/// host, settings) on `a` with their tokens; a guest who arrives after `b`
/// stopped joins it by its id, another by its code, and the game plays to
/// its end. The public one keeps its listing and code in `a`'s lobby.
#[tokio::test]
async fn a_drained_nodes_waiting_games_move_with_their_players() {
    if tls::tls_run() {
        return; // the nodes speak plain HTTP to each other here
    }
    let [a, b] = two_nodes().await;

    // On b: a private game of 4 with its host and one guest (who joined
    // through a, relayed to b), and a public game of 3 with its host.
    let mut host = connect(b.addr).await;
    host.send(&create("host", Some(4), Some(1_000))).await;
    let before = host.joined().await;
    let mut guest = connect(a.addr).await;
    guest.send(&join(&before.id, "guest")).await;
    guest.joined().await;
    host.sync_to(before.seq + 1).await;
    let before = host.replica.clone().unwrap();
    let mut lister = connect(b.addr).await;
    // Not quick play's default round, or it would live on the matchmaker.
    let public = ClientMessage::Create {
        name: "lister".into(),
        max_players: Some(3),
        duration_ms: Some(20_000),
        public: Some(true),
    };
    lister.send(&public).await;
    let listed = lister.joined().await;
    let b_games = http::get_json(b.admin, "/api/node").await;
    assert_eq!(b_games["games"]["waiting"], 2, "{b_games}");

    let b = b.begin_shutdown();
    for p in [&mut host, &mut guest, &mut lister] {
        assert_eq!(
            p.closed().await,
            Some(1001),
            "sent away to resume elsewhere"
        );
    }
    stopped(b).await;

    // The same game on a: same id, code, seats, names, host and settings.
    let (token, guest_token) = (host.token.clone().unwrap(), guest.token.clone().unwrap());
    let (host, after) = resume_waiting(a.addr, &before.id, &token).await;
    assert_eq!(
        (
            &after.id,
            &after.code,
            after.host,
            after.max_players,
            after.duration_ms
        ),
        (
            &before.id,
            &before.code,
            before.host,
            before.max_players,
            before.duration_ms
        )
    );
    let seats = |s: &GameSnapshot| -> Vec<(u8, String)> {
        s.players.iter().map(|p| (p.id, p.name.clone())).collect()
    };
    assert_eq!(seats(&after), seats(&before));
    assert!(after.seq >= before.seq, "events continue the game's seq");
    let (guest, _) = resume_waiting(a.addr, &before.id, &guest_token).await;

    // Latecomers follow the link (id, then code) through a; the game fills.
    let mut third = connect(a.addr).await;
    third.send(&join(&before.id, "third")).await;
    third.joined().await;
    let mut fourth = connect(a.addr).await;
    fourth.send(&join(&before.code, "fourth")).await;
    fourth.joined().await;
    let mut players = [host, guest, third, fourth];
    for p in &mut players {
        p.until(|m| matches!(m, ServerMessage::Started { .. }))
            .await;
    }
    players[0].send(&capture(40)).await;
    let over = players[0].game_over().await;
    for p in &mut players[1..] {
        assert_eq!(p.game_over().await, over);
    }

    // The public game, its host back (by its code), is listed on a again
    // (the lobby lists waiting games with someone connected).
    let lister_token = lister.token.clone().unwrap();
    let (_lister, again) = resume_waiting(a.addr, &listed.code, &lister_token).await;
    assert_eq!(again.id, listed.id);
    let lobby = http::get_json(a.addr, "/api/lobby").await;
    let waiting = lobby["waiting"].as_array().cloned().unwrap_or_default();
    let entry = waiting
        .iter()
        .find(|g| g["id"] == listed.id.as_str())
        .unwrap_or_else(|| panic!("the public game left the lobby: {lobby}"));
    assert_eq!(entry["code"], listed.code.as_str(), "{entry}");

    stopped(a.begin_shutdown()).await;
}

/// A node that drains with no ready peer keeps its waiting games (nowhere
/// to move them) and stops at once, as before.
#[tokio::test]
async fn with_no_ready_peer_the_waiting_games_stay() {
    if tls::tls_run() {
        return;
    }
    let [a, b] = two_nodes().await;
    stopped(a.begin_shutdown()).await;
    let mut host = connect(b.addr).await;
    host.send(&create("host", Some(2), Some(1_000))).await;
    host.joined().await;
    let b = b.begin_shutdown();
    assert_eq!(host.closed().await, Some(1001));
    stopped(b).await;
}
