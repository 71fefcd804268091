//! Graceful shutdown and drain (protocol §1 close 1001, §6 `/readyz`), and
//! game retention (§5: 60 s after completion, 60 s unattended while
//! waiting). Retention is tested on the registry and game tasks with
//! tokio's paused clock: no sockets are involved there.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::raw::{OP_CLOSE, RawConn};
use common::*;
use game_logic::{PlayerId, PlayerName, Settings, SettingsBounds};
use gridcap::clock::Clock;
use gridcap::config::ServeOptions;
use gridcap::games::local::registry::Registry;
use gridcap::games::local::task::{Command, GameHandle};
use gridcap::games::{Capacity, GameCounts};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use transport::protocol::{ErrorCode, GameStatus, OverReason, ServerMessage};
use transport::{Outbox, codec};

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let server = TestServer::start().await;
    let mut idle = server.connect().await;
    let mut waiting = host_game(&server, 4, 30_000).await;
    let mut done = full_game(&server, 2, 1_000).await;
    for c in done.iter_mut() {
        c.until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await;
    }
    // One that never reads: it will not answer the close either.
    let mut deaf = RawConn::connect(server.addr, None).await;
    let started = Instant::now();
    let shutdown = server.begin_shutdown();
    let (first, second) = done.split_at_mut(1);
    for c in [&mut idle, &mut waiting, &mut first[0], &mut second[0]] {
        assert_eq!(c.closed_now().await, Some(1001));
    }
    shutdown_finishes(shutdown).await;
    // Nothing active: no drain wait; at most the deaf client's close timeout.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let frame = deaf.read_frame(WAIT).await.expect("readable");
    assert_eq!(frame.and_then(|f| f.close_code()), Some(1001));
}

#[tokio::test]
async fn a_draining_server_lets_active_games_finish_first() {
    let server = TestServer::start_with(ServeOptions {
        drain_timeout_ms: Some(10_000),
        ..options()
    })
    .await;
    let addr = server.addr;
    let mut idle = server.connect().await;
    let mut p = full_game(&server, 2, 1_500).await;
    p[0].send(&capture(0)).await;
    p[0].until(|m| matches!(m, ServerMessage::Captured { .. }))
        .await;

    let shutdown = server.begin_shutdown();
    // Draining: not ready (but alive), no new connections, no new games.
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = common::http::get(addr, "/readyz").await;
        if ready.status == 503 {
            assert_eq!(ready.text().trim(), "draining");
            break;
        }
        assert_eq!(ready.status, 200);
        assert!(Instant::now() < deadline, "never started draining");
        tokio::task::yield_now().await;
    }
    assert_eq!(common::http::get(addr, "/healthz").await.status, 200);
    assert_eq!(refused_status(ws_request(addr)).await, 503);
    idle.send(&create("late", None, None)).await;
    idle.error(ErrorCode::Overloaded).await;

    // The game goes on to its end, and only then are its players closed.
    p[1].send(&capture(1)).await;
    for c in p.iter_mut() {
        c.until(|m| matches!(m, ServerMessage::Captured { cell: 1, .. }))
            .await;
        let over = c
            .until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await;
        assert!(matches!(
            over,
            ServerMessage::GameOver {
                reason: OverReason::Time,
                ..
            }
        ));
        assert_eq!(c.closed_now().await, Some(1001));
    }
    assert_eq!(idle.closed_now().await, Some(1001));
    shutdown_finishes(shutdown).await;
}

#[tokio::test]
async fn the_drain_timeout_closes_games_that_run_too_long() {
    let server = TestServer::start_with(ServeOptions {
        drain_timeout_ms: Some(300),
        ..options()
    })
    .await;
    let mut p = full_game(&server, 2, 60_000).await;
    let started = Instant::now();
    let shutdown = server.begin_shutdown();
    for c in p.iter_mut() {
        // No game_over: the game is cut short.
        assert_eq!(c.closed_now().await, Some(1001));
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "waited for the drain: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    shutdown_finishes(shutdown).await;
}

#[tokio::test]
async fn a_closed_client_answers_the_close_and_shutdown_does_not_wait_for_it() {
    let server = TestServer::start_with(ServeOptions {
        close_timeout_ms: Some(5_000),
        ..options()
    })
    .await;
    let mut polite = RawConn::connect(server.addr, None).await;
    let started = Instant::now();
    let shutdown = server.begin_shutdown();
    let frame = polite
        .read_frame(WAIT)
        .await
        .expect("readable")
        .expect("a close frame");
    assert_eq!(frame.close_code(), Some(1001));
    polite
        .send_frame(OP_CLOSE, &1001u16.to_be_bytes())
        .await
        .expect("send close");
    shutdown_finishes(shutdown).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the answered close ended the session before the 5 s close timeout: {:?}",
        started.elapsed()
    );
}

// ---- retention, on paused time ----------------------------------------

fn settings(max_players: i64, duration_ms: i64) -> Settings {
    Settings::new(
        Some(max_players),
        Some(duration_ms),
        &SettingsBounds::default(),
    )
    .expect("valid settings")
}

fn name(n: &str) -> PlayerName {
    PlayerName::new(n).expect("valid name")
}

/// Every message queued in `outbox`, decoded.
fn drain(outbox: &Outbox) -> Vec<ServerMessage> {
    let mut frames = Vec::new();
    outbox.take(&mut frames);
    frames
        .iter()
        .map(|f| codec::decode_server(f).expect("decode"))
        .collect()
}

/// A registry holding at most `unattended` unattended games.
fn registry(unattended: usize) -> Registry {
    let capacity = Capacity {
        games: 100,
        spectators: 100,
        unattended,
    };
    Registry::new(Clock::new(), capacity, CancellationToken::new())
}

/// A registry with one game of `settings`, hosted by "ada" on outbox 1.
fn hosted(settings: Settings) -> (Registry, Outbox, GameHandle) {
    let registry = registry(100);
    let host = Outbox::new(1, 64);
    let game = registry.create(uuid::Uuid::new_v4(), settings, name("ada"), &host, |_| true);
    (registry, host, game)
}

/// Lets the game tasks run (without letting paused time auto-advance: this
/// task stays runnable) until `done` holds, a bounded number of times.
async fn settle(mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the game tasks did not settle");
}

#[tokio::test(start_paused = true)]
async fn a_waiting_game_nobody_is_connected_to_is_dropped_after_60_s() {
    let (registry, host, game) = hosted(settings(4, 30_000));
    let id = game.id();
    assert!(matches!(drain(&host)[..], [ServerMessage::Joined { .. }]));
    game.send(Command::Disconnected {
        player: PlayerId::FIRST,
        conn: host.id(),
    })
    .await
    .expect("running");
    let snapshot = game.snapshot().await.expect("running");
    assert!(!snapshot.players[0].connected);

    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(game.snapshot().await.is_some(), "kept for 60 s");
    assert!(registry.get(&id).is_some());
    tokio::time::advance(Duration::from_secs(1)).await;
    settle(|| registry.get(&id).is_none()).await;
    assert!(game.snapshot().await.is_none(), "its task ended");
}

#[tokio::test(start_paused = true)]
async fn a_completed_game_stays_readable_for_60_s() {
    let (registry, host, game) = hosted(settings(2, 1_000));
    let guest = Outbox::new(2, 64);
    let id = game.id();
    let seat = game
        .request(|reply| Command::Join {
            name: name("bob"),
            outbox: guest.clone(),
            reply,
        })
        .await
        .expect("a free seat");
    assert_eq!(u8::from(seat), 1);
    // Both players drop: an active game runs on regardless.
    for (player, outbox) in [(PlayerId::FIRST, &host), (seat, &guest)] {
        game.send(Command::Disconnected {
            player,
            conn: outbox.id(),
        })
        .await
        .expect("running");
    }
    assert_eq!(
        game.snapshot().await.expect("running").status,
        transport::protocol::GameStatus::Active
    );

    // The round's timer fires on paused time.
    tokio::time::advance(Duration::from_millis(1_000)).await;
    let over = GameCounts {
        waiting: 0,
        active: 0,
        completed: 1,
        unattended: 0,
    };
    settle(|| registry.counts() == over).await;
    let snapshot = game.snapshot().await.expect("readable");
    assert_eq!(snapshot.status, GameStatus::Completed);
    assert_eq!(snapshot.winners, Some(vec![0, 1]));

    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(game.snapshot().await.is_some(), "readable for 60 s");
    tokio::time::advance(Duration::from_secs(1)).await;
    settle(|| registry.get(&id).is_none()).await;
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_keeps_a_waiting_game() {
    let (registry, host, game) = hosted(settings(4, 30_000));
    let ServerMessage::Joined { token, .. } = drain(&host).remove(0) else {
        panic!("expected joined")
    };
    game.send(Command::Disconnected {
        player: PlayerId::FIRST,
        conn: host.id(),
    })
    .await
    .expect("running");
    tokio::time::advance(Duration::from_secs(30)).await;
    let back = Outbox::new(3, 64);
    game.request(|reply| Command::Resume {
        token,
        outbox: back.clone(),
        reply,
    })
    .await
    .expect("resumed");
    tokio::time::advance(Duration::from_secs(3_600)).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        registry.get(&game.id()).is_some(),
        "attended games are kept"
    );
}

/// Creates a game hosted on connection `conn`, which then drops; returns
/// the game and the host's resume token.
async fn create_and_drop(registry: &Registry, conn: u64) -> (GameHandle, String) {
    let host = Outbox::new(conn, 64);
    let id = uuid::Uuid::new_v4();
    let game = registry.create(id, settings(4, 30_000), name("ada"), &host, |_| true);
    let ServerMessage::Joined { token, .. } = drain(&host).remove(0) else {
        panic!("expected joined")
    };
    let player = PlayerId::FIRST;
    let dropped = Command::Disconnected { player, conn };
    game.send(dropped).await.expect("running");
    (game, token)
}

#[tokio::test(start_paused = true)]
async fn past_the_cap_the_oldest_unattended_game_is_dropped_early() {
    let registry = registry(3);
    let mut games = Vec::new();
    for conn in 1..=5 {
        games.push(create_and_drop(&registry, conn).await);
    }
    settle(|| registry.len() == 3).await;
    let held: Vec<bool> = games
        .iter()
        .map(|(g, _)| registry.get(&g.id()).is_some())
        .collect();
    assert_eq!(
        held,
        [false, false, true, true, true],
        "the two oldest went"
    );
    assert_eq!(registry.counts().waiting, 3);
    assert_eq!(registry.counts().unattended, 3);

    // A player who comes back takes the game out of the count, and a game
    // with someone connected is never evicted.
    let (oldest, token) = &games[2];
    let back = Outbox::new(9, 64);
    oldest
        .request(|reply| Command::Resume {
            token: token.clone(),
            outbox: back.clone(),
            reply,
        })
        .await
        .expect("resumed");
    assert_eq!(registry.unattended(), 2);
    for conn in 10..=12 {
        create_and_drop(&registry, conn).await;
    }
    settle(|| registry.len() == 4).await;
    assert!(registry.get(&oldest.id()).is_some(), "attended: kept");
    assert!(
        registry.get(&games[3].0.id()).is_none(),
        "now the oldest unattended"
    );
    assert_eq!(registry.counts().unattended, 3);
}

/// Waits (bounded by [`WAIT`]) for a shutdown begun with `begin_shutdown`.
async fn shutdown_finishes(shutdown: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(WAIT, shutdown)
        .await
        .expect("shutdown finishes")
        .expect("shutdown task");
}
