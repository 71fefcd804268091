//! Issue 18's denial-of-service attacks by one unauthenticated client,
//! each against a real `gridcap serve` process with an honest two-player
//! game running beside it: the attack is refused or absorbed, the honest
//! game's capture round trips stay bounded, honest players keep creating,
//! and the node's memory stays under a stated bound.
//!
//! The bounds are generous on purpose (a shared 2-core box, a debug
//! build): they catch an attack that takes the node, not a slow machine.
//! The real figures are measured by `scripts/bench/attacks.sh`
//! (docs/benchmarks.md, "Attacks").
//!
//! The stateless mode's game-table flood is in
//! `crates/server/tests/stateless_max_games.rs`; open files below
//! `--max-connections` in `open_files.rs`; pong and empty-continuation
//! floods in the server's `limits.rs` and `liveness.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::client::{Client, capture, connect_from, create, join, try_create};
use testkit::node::{Cluster, NodeOptions};
use testkit::{TestDir, http};
use transport::protocol::ServerMessage;

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const HONEST: [u8; 4] = [127, 0, 0, 2];
/// Concurrent attacking connections.
const ATTACKERS: usize = 8;
/// What a capture round trip of the honest game may take, at worst.
const ROUND_TRIP_BOUND: Duration = Duration::from_secs(1);

/// One attacker's share: connect, `create`, drop, `rounds` times. Returns
/// how many creates were answered `joined`.
async fn create_and_drop(addr: SocketAddr, rounds: usize) -> usize {
    let mut created = 0;
    for _ in 0..rounds {
        let mut client = connect_from(addr, ATTACKER).await;
        if try_create(&mut client).await.is_ok() {
            created += 1;
        }
    }
    created
}

/// The honest game: two players from another address, its round running.
struct HonestGame {
    host: Client,
    guest: Client,
    next_cell: u8,
    slowest: Duration,
}

impl HonestGame {
    async fn start(addr: SocketAddr) -> HonestGame {
        let mut game = HonestGame {
            host: connect_from(addr, HONEST).await,
            guest: connect_from(addr, HONEST).await,
            next_cell: 0,
            slowest: Duration::ZERO,
        };
        game.new_round().await;
        game
    }

    /// A new game of the same two players: the host creates, the guest
    /// fills it, and its round starts.
    async fn new_round(&mut self) {
        // Past the last round's `game_over`, if there was one.
        let joined = |m: &ServerMessage| matches!(m, ServerMessage::Joined { .. });
        self.host
            .send(&create("honest", Some(2), Some(300_000)))
            .await;
        self.host.until(joined).await;
        self.guest.send(&join(&self.host.game_id(), "guest")).await;
        self.guest.until(joined).await;
        self.next_cell = 0;
    }

    /// One capture, heard back by both players; keeps the slowest.
    async fn capture_round_trip(&mut self) {
        if self.next_cell == 81 {
            // The board is full: that round is over.
            self.new_round().await;
        }
        let cell = self.next_cell;
        self.next_cell += 1;
        let sent = Instant::now();
        self.host.send(&capture(i64::from(cell))).await;
        let heard = |m: &ServerMessage| {
            matches!(m, ServerMessage::Captured { cell: c, .. } if *c == cell)
                || matches!(m, ServerMessage::Rejected { .. })
        };
        self.host.until(heard).await;
        self.slowest = self.slowest.max(sent.elapsed());
        self.guest.until(heard).await;
    }
}

/// The node's resident set, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Runs `rounds` create-and-drop loops from [`ATTACKER`] on `ATTACKERS`
/// connections at once while the honest game captures and a third client
/// creates; panics if an honest create is refused. Returns the attackers'
/// successful creates.
async fn flood_beside(addr: SocketAddr, game: &mut HonestGame, rounds: usize) -> usize {
    let per_attacker = rounds / ATTACKERS;
    let flood: Vec<_> = (0..ATTACKERS)
        .map(|_| tokio::spawn(create_and_drop(addr, per_attacker)))
        .collect();
    while !flood.iter().all(|f| f.is_finished()) {
        game.capture_round_trip().await;
        let mut creator = connect_from(addr, [127, 0, 0, 3]).await;
        assert!(try_create(&mut creator).await.is_ok(), "an honest create");
    }
    let mut created = 0;
    for f in flood {
        created += f.await.expect("attacker");
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_and_drop_flood_evicts_its_own_games_while_honest_players_play() {
    let dir = TestDir::new("create_and_drop_flood");
    // With these caps and no eviction, the flood would fill the game table
    // (3,000 games) and every honest create would be `overloaded`.
    const MAX_GAMES: usize = 1_500;
    const MAX_UNATTENDED: usize = 200;
    const ROUNDS: usize = 3_200;
    let options = NodeOptions {
        extra: vec![
            "--max-games".into(),
            MAX_GAMES.to_string(),
            "--max-unattended-games".into(),
            MAX_UNATTENDED.to_string(),
        ],
        ..NodeOptions::default()
    };
    let cluster = Cluster::single(&dir, &options).await;
    let node = &cluster.nodes[0];
    let mut game = HonestGame::start(node.addr).await;

    let created = flood_beside(node.addr, &mut game, ROUNDS).await;
    assert_eq!(created, ROUNDS / ATTACKERS * ATTACKERS, "never overloaded");
    game.capture_round_trip().await;
    assert!(
        game.slowest < ROUND_TRIP_BOUND,
        "honest round trip {:?}",
        game.slowest
    );

    let info = node.info().await;
    let unattended = info["games"]["unattended"].as_u64().expect("unattended");
    let waiting = info["games"]["waiting"].as_u64().expect("waiting");
    assert!(unattended <= MAX_UNATTENDED as u64, "{info}");
    assert!(waiting <= MAX_UNATTENDED as u64 + 1, "{info}");
    let metrics = http::get_admin(node.admin, "/metrics").await.text();
    let evicted = http::series(&metrics, "gridcap_games_evicted_total").unwrap_or(0.0);
    assert!(
        evicted >= (created - MAX_UNATTENDED) as f64,
        "{created} created, {evicted} evicted"
    );
    let rss = rss_bytes(node.pid().expect("running"));
    assert!(rss < 256 << 20, "RSS {rss} B after the flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_metrics_do_not_walk_the_games() {
    let dir = TestDir::new("routes_do_not_walk_games");
    // No cap on unattended games: the flood's games are all held.
    const HELD: usize = 6_000;
    let options = NodeOptions {
        extra: vec!["--max-unattended-games".into(), "0".into()],
        ..NodeOptions::default()
    };
    let cluster = Cluster::single(&dir, &options).await;
    let node = &cluster.nodes[0];
    let flood: Vec<_> = (0..ATTACKERS)
        .map(|_| tokio::spawn(create_and_drop(node.addr, HELD / ATTACKERS)))
        .collect();
    for f in flood {
        assert_eq!(f.await.expect("attacker"), HELD / ATTACKERS);
    }
    // Started now: a client of this kit reads (and so answers pings) only
    // while a test waits on it.
    let mut game = HonestGame::start(node.addr).await;

    // 16 clients read /api/node and /metrics in a loop beside the game.
    let admin = node.admin;
    let readers: Vec<_> = (0..16)
        .map(|n| {
            tokio::spawn(async move {
                let path = if n % 2 == 0 { "/api/node" } else { "/metrics" };
                for _ in 0..40 {
                    assert_eq!(http::get_admin(admin, path).await.status, 200);
                }
            })
        })
        .collect();
    while !readers.iter().all(|r| r.is_finished()) {
        game.capture_round_trip().await;
    }
    for r in readers {
        r.await.expect("reader");
    }
    assert!(
        game.slowest < ROUND_TRIP_BOUND,
        "honest round trip {:?}",
        game.slowest
    );
    // The counts the routes answer are kept as games change, and exact.
    let info = node.info().await;
    assert_eq!(
        info["games"]["waiting"].as_u64(),
        Some(HELD as u64),
        "{info}"
    );
    assert_eq!(info["games"]["unattended"].as_u64(), Some(HELD as u64));
    assert_eq!(info["games"]["active"].as_u64(), Some(1));
}
