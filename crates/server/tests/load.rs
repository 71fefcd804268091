//! 1,000 concurrent connections in 250 games of 4, each played to game
//! over, on the default settings (rate limit included); fewer when the
//! process may not open the ~2,000 descriptors that takes (see [`games`]).
//!
//! This is the only test of its binary, so `/metrics` here counts exactly
//! its connections.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::replica::assert_same_game;
use common::*;
use tokio::sync::{Barrier, Semaphore};
use tokio::time::Instant;
use transport::protocol::{GameStatus, OverReason, RejectReason, ServerMessage};

/// Games played when the descriptor limit allows.
const GAMES: usize = 250;

/// How many games to play: [`GAMES`], or as many as the soft limit on open
/// files allows (`ulimit -n` 1024 is common), each connection costing two
/// descriptors in this process (the client's and the server's side) and a
/// hundred kept for the rest. `make test` raises the soft limit first.
fn games() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        })
        .unwrap_or(usize::MAX); // "unlimited", or not Linux
    let fit = soft.saturating_sub(100) / (2 * SEATS);
    if fit < GAMES {
        eprintln!("open files limited to {soft}: {fit} games instead of {GAMES}");
    }
    assert!(fit >= 10, "ulimit -n {soft} is too low for this test");
    fit.min(GAMES)
}
const SEATS: usize = 4;
/// Captures each player tries: 4 x 30 overlapping ranges cover all 81.
const ATTEMPTS: usize = 30;

/// Connects, holding one of the permits that bound handshakes in flight.
async fn connect_bounded(addr: SocketAddr, handshakes: &Semaphore) -> TestClient {
    let _permit = handshakes.acquire().await.expect("open semaphore");
    connect(addr).await
}

/// Player `k` tries cells 20k, 20k+1, ... (mod 81): ranges that overlap,
/// so players race for the cells in between.
fn attempts(k: usize) -> Vec<u8> {
    (0..ATTEMPTS).map(|i| ((20 * k + i) % 81) as u8).collect()
}

/// Sends every attempt at once, then reads until the game is over and
/// each attempt was answered; returns the cells this player won.
async fn play(c: &mut TestClient, k: usize) -> BTreeSet<u8> {
    let tried = attempts(k);
    for &cell in &tried {
        c.feed(&capture_ref(i64::from(cell), u32::from(cell))).await;
    }
    c.flush().await;
    let me = c.me();
    let mut won = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut over = false;
    while !over || won.len() + refused.len() < tried.len() {
        match c.next().await {
            ServerMessage::Captured { cell, player, .. } if player == me => {
                assert!(tried.contains(&cell));
                won.insert(cell);
            }
            ServerMessage::Captured { .. } => {}
            ServerMessage::Rejected {
                cell,
                reference,
                reason,
            } => {
                let cell = u8::try_from(cell).expect("a cell we sent");
                assert_eq!(reference, Some(u32::from(cell)));
                assert!(
                    matches!(reason, RejectReason::Taken | RejectReason::NotActive),
                    "{reason:?}"
                );
                assert!(refused.insert(cell), "one answer per attempt");
            }
            ServerMessage::GameOver { reason, .. } => {
                assert_eq!(reason, OverReason::BoardFull);
                over = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(won.is_disjoint(&refused));
    won
}

/// One game from creation to game over; waits at `seated` with every
/// player connected, and starts playing after `go`.
async fn one_game(
    addr: SocketAddr,
    handshakes: Arc<Semaphore>,
    seated: Arc<Barrier>,
    go: Arc<Barrier>,
) {
    let mut host = connect_bounded(addr, &handshakes).await;
    host.send(&create("host", Some(SEATS as i64), Some(60_000)))
        .await;
    host.joined().await;
    let id = host.game_id();
    let mut players = vec![host];
    for i in 1..SEATS {
        let mut c = connect_bounded(addr, &handshakes).await;
        c.send(&join(&id, &format!("p{i}"))).await;
        c.joined().await;
        players.push(c);
    }
    // The last join filled the game, which started: everyone hears it, the
    // last joiner too.
    let started = players[SEATS - 1].seq() + 1;
    for c in players.iter_mut() {
        c.sync_to(started).await;
        assert_eq!(c.replica.as_ref().unwrap().status, GameStatus::Active);
    }
    seated.wait().await;
    go.wait().await;

    let results = futures_util::future::join_all(
        players
            .iter_mut()
            .enumerate()
            .map(|(k, c)| async move { play(c, k).await }),
    )
    .await;
    let mut all = BTreeSet::new();
    for won in &results {
        assert!(all.is_disjoint(won), "a cell won twice");
        all.extend(won.iter().copied());
    }
    assert_eq!(all.len(), 81, "the board is full");
    let game = players[0].replica.clone().expect("joined");
    assert_eq!(game.status, GameStatus::Completed);
    for (k, c) in players.iter().enumerate() {
        let mine = game
            .cells
            .iter()
            .filter(|&&o| usize::from(o) == k + 1)
            .count();
        assert_eq!(mine, results[k].len(), "player {k}'s cells");
        assert_same_game(c.replica.as_ref().expect("joined"), &game);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_players_in_250_games_play_to_the_end() {
    let count = games();
    let server = TestServer::start().await;
    let addr = server.addr;
    let started = Instant::now();
    let handshakes = Arc::new(Semaphore::new(100));
    let seated = Arc::new(Barrier::new(count + 1));
    let go = Arc::new(Barrier::new(count + 1));
    let games: Vec<_> = (0..count)
        .map(|_| {
            tokio::spawn(one_game(
                addr,
                handshakes.clone(),
                seated.clone(),
                go.clone(),
            ))
        })
        .collect();

    tokio::time::timeout(Duration::from_secs(60), seated.wait())
        .await
        .expect("every player seated within 60 s");
    let seated_after = started.elapsed();
    let metrics = common::http::get_admin(server.admin, "/metrics")
        .await
        .text();
    let open: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gridcap_connections "))
        .expect("gridcap_connections")
        .parse()
        .expect("a number");
    assert_eq!(open, (count * SEATS) as f64, "all connections open at once");
    let active = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gridcap_games{status=\"active\"} "))
        .expect("games by status");
    assert_eq!(active, count.to_string());

    go.wait().await;
    for game in games {
        tokio::time::timeout(Duration::from_secs(60), game)
            .await
            .expect("every game over within 60 s")
            .expect("the game's checks passed");
    }
    println!(
        "{} connections seated in {seated_after:?}; {count} games played to the end in {:?}",
        count * SEATS,
        started.elapsed()
    );
}
