//! A node dies (SIGKILL, a real `gridcap` process) in the middle of 50
//! running games: every player on it reconnects to the surviving node and
//! resumes; every client's final board must equal Redis's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::stateless::*;
use common::{TestClient, capture, connect, resume};
use rand::{Rng, SeedableRng};
use testkit::client::{Frame, ReadError, SeqRule};
use transport::protocol::{ClientMessage, GameSnapshot, GameStatus, ServerMessage};

const GAMES: usize = 50;

/// Captures seen by any player of this test, and a wake-up for each: the
/// kill waits for play to be under way instead of sleeping a fixed time.
static CAPTURES_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static CAPTURE_SEEN: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// Set right after the kill: captures seen from then on show play going on.
static KILLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
const ROUND_MS: i64 = 4_000;

/// One player: its connection (whose replica skips repeated events and
/// counts gaps instead of failing: a gap triggers a resume, so that the
/// board comparison still isolates what Redis holds), and how often it
/// resumed.
struct Player {
    client: TestClient,
    game: GameSnapshot,
    token: String,
    resumed: u32,
    /// Captures already counted in `CAPTURES_SEEN`.
    counted: usize,
    /// Every seq gap seen on any of its connections. The server must never
    /// send one (rooms.rs drops repeats and resyncs a room on a gap), so
    /// the test asserts zero: the client's own resume would otherwise hide
    /// dropped events from the board comparison.
    gaps: u32,
    /// Captures this player saw after the kill.
    after_kill: usize,
}

impl Player {
    async fn seat(addr: SocketAddr, message: ClientMessage) -> Player {
        let mut client = connect(addr).await;
        client.seq_rule = SeqRule::Resync;
        client.send(&message).await;
        let game = client.joined().await;
        let token = client.token.clone().expect("joined");
        Player {
            client,
            game,
            token,
            resumed: 0,
            counted: 0,
            gaps: 0,
            after_kill: 0,
        }
    }

    /// Reconnects to `addr` and resumes the seat.
    async fn resume(&mut self, addr: SocketAddr) {
        let fresh = Player::seat(addr, resume(&self.game.id, &self.token)).await;
        self.gaps += self.client.gaps;
        self.client = fresh.client;
        self.game = fresh.game;
        self.resumed += 1;
    }

    /// Takes the replica's game after a message, and asks for a fresh
    /// snapshot after a gap.
    async fn absorb(&mut self) {
        if let Some(game) = &self.client.replica {
            self.game = game.clone();
        }
        let captured = self.game.cells.iter().filter(|&&c| c != 0).count();
        if captured > self.counted {
            CAPTURES_SEEN.fetch_add(
                captured - self.counted,
                std::sync::atomic::Ordering::Relaxed,
            );
            CAPTURE_SEEN.notify_waiters();
            if KILLED.load(std::sync::atomic::Ordering::Relaxed) {
                self.after_kill += captured - self.counted;
            }
            self.counted = captured;
        }
        if self.client.gaps > 0 {
            self.gaps += self.client.gaps;
            self.client.gaps = 0;
            // A failed send shows on the next read, which reconnects.
            let _resync = self
                .client
                .try_send(&resume(&self.game.id, &self.token))
                .await;
        }
    }

    /// Plays until the game is over, moving to `fallback` if the node dies.
    async fn play(mut self, fallback: SocketAddr) -> Player {
        let mut rng = rand::rngs::StdRng::from_os_rng();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.game.status != GameStatus::Completed {
            assert!(tokio::time::Instant::now() < deadline, "the game ended");
            let free: Vec<usize> = (0..81).filter(|&c| self.game.cells[c] == 0).collect();
            if self.game.status == GameStatus::Active && !free.is_empty() {
                let cell = free[rng.random_range(0..free.len())] as i64;
                if self.client.try_send(&capture(cell)).await.is_err() {
                    self.resume(fallback).await;
                    continue;
                }
            }
            let wait = Duration::from_millis(rng.random_range(100..200));
            let until = tokio::time::Instant::now() + wait;
            loop {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                match self.client.try_recv(left).await {
                    Ok(Frame::Message(_) | Frame::Ping) => self.absorb().await,
                    Ok(Frame::Closed(_)) | Err(ReadError::Failed(_)) => {
                        self.resume(fallback).await;
                        break;
                    }
                    Err(ReadError::TimedOut(_)) => break, // Our own wait is over.
                }
            }
        }
        self
    }
}

/// A redis-server and two stateless node processes `a` and `b` on it, or
/// `None` (the test skips) without redis-server.
async fn redis_and_two_nodes(test: &str) -> Option<(RedisServer, Cluster)> {
    if !redis_available() {
        return None;
    }
    let redis = RedisServer::start().await;
    let nodes = node_processes(test, &Redis::Single(redis.url()), &["a", "b"]).await;
    Some((redis, nodes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_game_loses_no_board() {
    let Some((_redis, mut nodes)) =
        redis_and_two_nodes("a_node_killed_mid_game_loses_no_board").await
    else {
        return;
    };
    let survivor = nodes.node("b").addr;
    let addrs = [nodes.node("a").addr, survivor];

    // 50 games of two, each spanning both nodes.
    let mut players = Vec::new();
    for g in 0..GAMES {
        let host_node = addrs[g % 2];
        let guest_node = addrs[(g + 1) % 2];
        let host = Player::seat(
            host_node,
            ClientMessage::Create {
                name: format!("h{g}"),
                max_players: Some(2),
                duration_ms: Some(ROUND_MS),
                public: None,
            },
        )
        .await;
        let guest = Player::seat(
            guest_node,
            ClientMessage::Join {
                game: host.game.id.clone(),
                name: format!("g{g}"),
            },
        )
        .await;
        // The guest's join filled the game; its snapshot precedes the start.
        assert_eq!(guest.game.status, GameStatus::Waiting);
        players.push((host, survivor));
        players.push((guest, survivor));
    }
    let tasks: Vec<_> = players
        .into_iter()
        .map(|(p, fallback)| tokio::spawn(p.play(fallback)))
        .collect();

    // Kill once every game is likely under way (two captures seen per game
    // on average), well before the 4 s rounds end.
    let under_way = async {
        while CAPTURES_SEEN.load(std::sync::atomic::Ordering::Relaxed) < 2 * GAMES {
            let notified = CAPTURE_SEEN.notified();
            if CAPTURES_SEEN.load(std::sync::atomic::Ordering::Relaxed) >= 2 * GAMES {
                break;
            }
            notified.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), under_way)
        .await
        .expect("play got under way");
    nodes.node_mut("a").kill();
    KILLED.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut finished = Vec::new();
    for t in tasks {
        finished.push(t.await.expect("a player finished its game"));
    }
    let mut resumed = 0;
    let mut divergent = 0;
    for p in &finished {
        resumed += usize::from(p.resumed > 0);
        let reply = common::http::get(survivor, &format!("/api/games/{}", p.game.id)).await;
        assert_eq!(reply.status, 200);
        let stored = reply.json();
        let cells: Vec<u8> = stored["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as u8)
            .collect();
        if cells != p.game.cells || stored["seq"].as_u64() != Some(p.game.seq) {
            divergent += 1;
        }
        assert_eq!(stored["status"], "completed");
    }
    // The kill hit running games: in each, captures went on after it (the
    // players were seated in order host, guest, game by game).
    let stopped: Vec<usize> = (0..GAMES)
        .filter(|g| finished[2 * g].after_kill + finished[2 * g + 1].after_kill == 0)
        .collect();
    assert!(
        stopped.is_empty(),
        "games with no capture after the kill: {stopped:?}"
    );
    let gaps: Vec<(String, u32)> = finished
        .iter()
        .filter(|p| p.gaps > 0)
        .map(|p| (p.game.id.clone(), p.gaps))
        .collect();
    assert!(gaps.is_empty(), "seq gaps sent by the server: {gaps:?}");
    assert_eq!(divergent, 0, "zero divergent boards");
    assert!(
        resumed >= GAMES,
        "every player of the killed node resumed on the survivor: {resumed}"
    );
}

/// A player whose node died and who does not come back is shown leaving:
/// the surviving node finds the dead node's lease expired and marks the seat
/// disconnected (`presence`), as a closed socket does on one node.
#[tokio::test]
async fn the_seats_of_a_dead_node_are_marked_disconnected() {
    let Some((_redis, mut nodes)) =
        redis_and_two_nodes("the_seats_of_a_dead_node_are_marked_disconnected").await
    else {
        return;
    };
    let host = Player::seat(
        nodes.node("a").addr,
        ClientMessage::Create {
            name: "host".into(),
            max_players: Some(3),
            duration_ms: Some(30_000),
            public: None,
        },
    )
    .await;
    let mut guest = Player::seat(
        nodes.node("b").addr,
        ClientMessage::Join {
            game: host.game.id.clone(),
            name: "guest".into(),
        },
    )
    .await;
    nodes.node_mut("a").kill();
    // The lease (5 s) runs out, then a sweep (every 2 s) notices.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match guest.client.try_recv(left).await {
            Ok(Frame::Message(ServerMessage::Presence {
                player: 0,
                connected: false,
                ..
            })) => break,
            Ok(Frame::Message(_) | Frame::Ping) => guest.absorb().await,
            other => panic!("presence within 15 s, got {other:?}"),
        }
    }
    drop(host);
}
