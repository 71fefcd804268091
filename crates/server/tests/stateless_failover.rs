//! A node dies (SIGKILL, a real `gridcap` process) in the middle of 50
//! running games: every player on it reconnects to the surviving node and
//! resumes; every client's final board must equal Redis's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::replica;
use common::stateless::*;
use rand::{Rng, SeedableRng};
use transport::client::{Client, Received};
use transport::protocol::{ClientMessage, GameSnapshot, GameStatus, ServerMessage};

const GAMES: usize = 50;

/// Captures seen by any player of this test, and a wake-up for each: the
/// kill waits for play to be under way instead of sleeping a fixed time.
static CAPTURES_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static CAPTURE_SEEN: tokio::sync::Notify = tokio::sync::Notify::const_new();
const ROUND_MS: i64 = 4_000;

/// One player: its connection, its replica, and how often it resumed.
struct Player {
    client: Client,
    game: GameSnapshot,
    token: String,
    resumed: u32,
    /// Events whose seq did not follow (each triggers a resume).
    gaps: u32,
}

impl Player {
    async fn seat(addr: SocketAddr, message: ClientMessage) -> Player {
        let mut client = Client::connect(&format!("ws://{addr}/ws")).await.unwrap();
        client.send(&message).await.unwrap();
        match client.next_message(Duration::from_secs(10)).await.unwrap() {
            ServerMessage::Joined { game, token, .. } => Player {
                client,
                game,
                token,
                resumed: 0,
                gaps: 0,
            },
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Reconnects to `addr` and resumes the seat.
    async fn resume(&mut self, addr: SocketAddr) {
        let message = ClientMessage::Resume {
            game: self.game.id.clone(),
            token: self.token.clone(),
        };
        let fresh = Player::seat(addr, message).await;
        self.client = fresh.client;
        self.game = fresh.game;
        self.resumed += 1;
    }

    fn apply(&mut self, message: ServerMessage) -> Option<bool> {
        match message {
            ServerMessage::Joined { game, .. } => self.game = game,
            event => {
                if let Some(seq) = event.seq() {
                    if seq <= self.game.seq {
                        return Some(false);
                    }
                    if seq != self.game.seq + 1 {
                        self.gaps += 1;
                        return None; // resync
                    }
                    replica::apply(&mut self.game, &event);
                    if let ServerMessage::Captured { .. } = event {
                        CAPTURES_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        CAPTURE_SEEN.notify_waiters();
                    }
                }
            }
        }
        Some(false)
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
                let sent = self
                    .client
                    .send(&ClientMessage::Capture {
                        cell,
                        reference: None,
                    })
                    .await;
                if sent.is_err() {
                    self.resume(fallback).await;
                    continue;
                }
            }
            let wait = Duration::from_millis(rng.random_range(100..200));
            let until = tokio::time::Instant::now() + wait;
            loop {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                match self.client.recv_timeout(left).await {
                    Ok(Received::Message(m)) => {
                        if self.apply(m).is_none() {
                            self.client
                                .send(&ClientMessage::Resume {
                                    game: self.game.id.clone(),
                                    token: self.token.clone(),
                                })
                                .await
                                .ok();
                        }
                    }
                    Ok(Received::Closed(_)) | Err(transport::TransportError::WebSocket(_)) => {
                        self.resume(fallback).await;
                        break;
                    }
                    Err(_) => break, // Our own wait is over.
                }
            }
        }
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_game_loses_no_board() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let target = Redis::Single(redis.url());
    let mut doomed = NodeProcess::start(&target, "a").await;
    let survivor = NodeProcess::start(&target, "b").await;
    let nodes = [doomed.addr, survivor.addr];

    // 50 games of two, each spanning both nodes.
    let mut players = Vec::new();
    for g in 0..GAMES {
        let host_node = nodes[g % 2];
        let guest_node = nodes[(g + 1) % 2];
        let host = Player::seat(
            host_node,
            ClientMessage::Create {
                name: format!("h{g}"),
                max_players: Some(2),
                duration_ms: Some(ROUND_MS),
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
        assert_eq!(guest.game.status, GameStatus::Active);
        players.push((host, survivor.addr));
        players.push((guest, survivor.addr));
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
    doomed.kill().await;

    let mut finished = Vec::new();
    for t in tasks {
        finished.push(t.await.expect("a player finished its game"));
    }
    let mut resumed = 0;
    let mut divergent = 0;
    let mut by_time = 0;
    for p in &finished {
        resumed += usize::from(p.resumed > 0);
        let reply = common::http::get(survivor.addr, &format!("/api/games/{}", p.game.id)).await;
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
        by_time += usize::from(p.game.cells.contains(&0));
    }
    assert!(
        by_time > GAMES,
        "most games were still running when the node died, and ended on time: {by_time}"
    );
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
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let target = Redis::Single(redis.url());
    let mut doomed = NodeProcess::start(&target, "a").await;
    let survivor = NodeProcess::start(&target, "b").await;
    let host = Player::seat(
        doomed.addr,
        ClientMessage::Create {
            name: "host".into(),
            max_players: Some(3),
            duration_ms: Some(30_000),
        },
    )
    .await;
    let mut guest = Player::seat(
        survivor.addr,
        ClientMessage::Join {
            game: host.game.id.clone(),
            name: "guest".into(),
        },
    )
    .await;
    doomed.kill().await;
    // The lease (5 s) runs out, then a sweep (every 2 s) notices.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match guest
            .client
            .next_message(left)
            .await
            .expect("presence within 15 s")
        {
            ServerMessage::Presence {
                player: 0,
                connected: false,
                ..
            } => break,
            other => {
                guest.apply(other);
            }
        }
    }
    drop(host);
}
