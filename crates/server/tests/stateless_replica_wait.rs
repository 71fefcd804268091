//! `--redis-wait-replicas`: with the option no player sees an event before
//! a Redis replica has it, so a failover to that replica undoes nothing a
//! player saw confirmed. Real processes on loopback: a `redis-server`
//! master, its replica (`--replicaof`), and gridcap nodes in this process.
//!
//! Loopback replication is too fast to catch a replica behind, so the test
//! freezes the replica (SIGSTOP): it then cannot have what the master
//! writes. A capture made meanwhile is in the master, but a node that waits
//! for the replica does not publish it: its player sees the `captured` only
//! once the replica is thawed and has it. A node without the option, on the
//! same Redis, confirms a capture while the replica is frozen: the case the
//! option exists for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::stateless::*;
use common::{TestClient, TestServer, capture, connect, create, join};
use testkit::client::{Frame, ReadError};
use transport::protocol::ServerMessage;

/// The node's wait: long enough that the test thaws the replica well
/// before it runs out (past it the capture would go out anyway).
const WAIT_MS: u64 = 1_000;

/// How long a waiting node's player must hear nothing while the replica is
/// frozen (a check of absence, far below [`WAIT_MS`]).
const QUIET: Duration = Duration::from_millis(150);

/// Board of game `id` on `server` (`None`: not there).
async fn cells(server: &RedisServer, id: &str) -> Option<Vec<u8>> {
    let mut c = server.conn().await;
    redis::cmd("HGET")
        .arg(format!("gridcap:{{{id}}}"))
        .arg("cells")
        .query_async(&mut c)
        .await
        .unwrap()
}

/// A started duel on `node`: (host, guest, game id).
async fn duel(node: &TestServer) -> (TestClient, TestClient, String) {
    let mut host = connect(node.addr).await;
    host.send(&create("host", Some(2), Some(60_000))).await;
    let game = host.joined().await;
    let mut guest = connect(node.addr).await;
    guest.send(&join(&game.id, "guest")).await;
    let joined = guest.joined().await;
    host.sync_to(joined.seq + 1).await; // player_joined, started
    (host, guest, game.id)
}

/// Waits until the master holds `cell` captured in game `id`.
async fn until_written(master: &RedisServer, id: &str, cell: usize) {
    testkit::poll::until(START_WAIT, move || async move {
        let written = cells(master, id).await.is_some_and(|b| b[cell] != 0);
        written.then_some(()).ok_or("capture written".to_owned())
    })
    .await;
}

/// Reads `client` for `limit`: no `captured` may arrive.
async fn hears_no_capture(client: &mut TestClient, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.try_frame(left).await {
            Err(ReadError::TimedOut(_)) => return,
            Ok(Frame::Message(m @ ServerMessage::Captured { .. })) => {
                panic!("a capture the replica lacks was confirmed: {m:?}")
            }
            Ok(Frame::Closed(c)) => panic!("closed: {c:?}"),
            Ok(_) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
}

async fn captured(client: &mut TestClient, cell: u8) {
    client
        .until(|m| matches!(m, ServerMessage::Captured { cell: c, .. } if *c == cell))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_option_a_capture_is_on_the_replica_before_any_player_sees_it() {
    if !redis_available() {
        return;
    }
    let master = RedisServer::start().await;
    let replica = RedisServer::replica_of(&master).await;
    let target = Redis::Single(master.url());
    let waiting = TestServer::start_node(gridcap::config::ServeOptions {
        redis_wait_replicas: Some(1),
        redis_wait_timeout_ms: Some(WAIT_MS),
        ..stateless_options(&target)
    })
    .await;
    let plain = TestServer::start_node(stateless_options(&target)).await;

    // Waiting: every capture the players see is on the replica by then.
    let (mut host, mut guest, id) = duel(&waiting).await;
    for cell in 0..6u8 {
        let player = if cell % 2 == 0 { &mut host } else { &mut guest };
        player.send(&capture(i64::from(cell))).await;
        captured(&mut host, cell).await;
        let on_replica = cells(&replica, &id).await.expect("the game is replicated");
        assert_ne!(
            on_replica[usize::from(cell)],
            0,
            "cell {cell} on the replica"
        );
    }
    captured(&mut guest, 5).await;

    // The replica freezes: a capture reaches the master, not the players.
    replica.freeze(true);
    host.send(&capture(40)).await;
    until_written(&master, &id, 40).await;
    hears_no_capture(&mut host, QUIET).await;
    hears_no_capture(&mut guest, QUIET).await;
    replica.freeze(false);
    captured(&mut host, 40).await;
    assert_ne!(
        cells(&replica, &id).await.unwrap()[40],
        0,
        "confirmed, and on the replica"
    );
    captured(&mut guest, 40).await;

    // Without the option, a capture is confirmed while the replica, frozen,
    // cannot have it.
    let (mut host, _guest, id) = duel(&plain).await;
    replica.freeze(true);
    host.send(&capture(40)).await;
    captured(&mut host, 40).await;
    replica.freeze(false);
    // Once thawed the replica catches up (asynchronously).
    until_written(&replica, &id, 40).await;
    waiting.shutdown().await;
    plain.shutdown().await;
}

/// On a Redis Cluster each script call and its `WAIT` go to the game's
/// master, and the queued events go out on its sharded channel: games on
/// every shard play as without the option.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_option_games_on_every_shard_of_a_cluster_play_on() {
    if !redis_available() {
        return;
    }
    const GAMES: usize = 8;
    let cluster = RedisCluster::start_with(1, 2_000).await;
    let node = TestServer::start_node(gridcap::config::ServeOptions {
        redis_wait_replicas: Some(1),
        redis_wait_timeout_ms: Some(WAIT_MS),
        ..stateless_options(&Redis::Cluster(cluster.urls()))
    })
    .await;
    let mut games = Vec::new();
    for _ in 0..GAMES {
        games.push(duel(&node).await);
    }
    let mut thirds = std::collections::HashSet::new();
    for (host, guest, id) in &mut games {
        for cell in 0..4u8 {
            let player = if cell % 2 == 0 {
                &mut *host
            } else {
                &mut *guest
            };
            player.send(&capture(i64::from(cell))).await;
            captured(host, cell).await;
            captured(guest, cell).await;
        }
        let mut c = cluster.nodes[0].conn().await;
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("gridcap:{{{id}}}"))
            .query_async(&mut c)
            .await
            .unwrap();
        // `redis-cli --cluster create` gives each master a third of the slots.
        thirds.insert(slot * 3 / 16_384);
    }
    assert!(thirds.len() >= 2, "games on several shards: {thirds:?}");
    node.shutdown().await;
}
