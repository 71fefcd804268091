//! Stateless cluster mode, in process: two nodes sharing one Redis (or a
//! 3-master Redis Cluster), players of one game spread over both.
//!
//! Every client is a `common::TestClient`, which checks that each event's
//! seq is exactly one past the last and replays events onto its `joined`
//! snapshot: so "identical event streams" and "correct boards" are checked
//! on every message, and compared with Redis at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::stateless::*;
use common::*;
use transport::protocol::{ErrorCode, GameSnapshot, GameStatus, RejectReason, ServerMessage};

async fn two_nodes(redis: &Redis) -> (TestServer, TestServer) {
    let a = TestServer::start_node(stateless_options(redis)).await;
    let b = TestServer::start_node(stateless_options(redis)).await;
    (a, b)
}

/// The game as Redis holds it, read through `node`'s HTTP API.
async fn stored(node: &TestServer, id: &str) -> serde_json::Value {
    let reply = common::http::get(node.addr, &format!("/api/games/{id}")).await;
    assert_eq!(
        reply.status,
        200,
        "the game is readable: {:?}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn board(game: &GameSnapshot) -> Vec<u64> {
    game.cells.iter().map(|&c| u64::from(c)).collect()
}

fn json_board(game: &serde_json::Value) -> Vec<u64> {
    game["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c.as_u64().expect("cell"))
        .collect()
}

/// Players of one game on two nodes see the same events, and a cell raced
/// from both nodes has exactly one winner.
async fn cross_node_game(redis: Redis) {
    let (a, b) = two_nodes(&redis).await;
    let mut host = connect(a.addr).await;
    host.send(&create("host", Some(4), Some(30_000))).await;
    let game = host.joined().await;
    let mut players = vec![host];
    for (i, node) in [&b, &a, &b].iter().enumerate() {
        let mut p = connect(node.addr).await;
        p.send(&join(&game.id, &format!("p{}", i + 1))).await;
        p.joined().await;
        players.push(p);
    }
    // The fourth join filled the game: `started` follows its snapshot.
    let seq = players[3].seq() + 1;
    sync_all(&mut players, seq).await;
    let snap = players[3].replica.clone().unwrap();
    assert_eq!(
        snap.status,
        GameStatus::Active,
        "the fourth seat started it"
    );

    // Every cell is raced by all four players at once, two per node.
    for cell in 0..30 {
        for p in players.iter_mut() {
            p.feed(&capture_ref(cell, cell as u32)).await;
        }
        for p in players.iter_mut() {
            p.flush().await;
        }
    }
    let target = seq + 30;
    let mut rejected = [0usize; 4];
    for (i, p) in players.iter_mut().enumerate() {
        while p.seq() < target {
            if let ServerMessage::Rejected { reason, .. } = p.next().await {
                assert_eq!(reason, RejectReason::Taken);
                rejected[i] += 1;
            }
        }
    }
    let boards: Vec<GameSnapshot> = players.iter().map(|p| p.replica.clone().unwrap()).collect();
    assert!(
        boards.windows(2).all(|w| w[0] == w[1]),
        "identical replicas on both nodes"
    );
    let won: u32 = boards[0].players.iter().map(|p| p.score).sum();
    assert_eq!(won, 30, "exactly one winner per cell");
    // Each rejection is a lost race: 3 per cell, wherever they are read.
    for (i, p) in players.iter_mut().enumerate() {
        let wins = boards[0].players[i].score as usize;
        while rejected[i] < 30 - wins {
            if let ServerMessage::Rejected { reason, .. } = p.next().await {
                assert_eq!(reason, RejectReason::Taken);
                rejected[i] += 1;
            }
        }
    }
    let in_redis = stored(&b, &game.id).await;
    assert_eq!(json_board(&in_redis), board(&boards[0]));
    assert_eq!(in_redis["seq"].as_u64(), Some(target));
}

#[tokio::test]
async fn players_on_two_nodes_share_one_game() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    cross_node_game(Redis::Single(redis.url())).await;
}

#[tokio::test]
async fn a_three_master_redis_cluster_serves_the_same_games() {
    if !redis_available() {
        return;
    }
    let cluster = RedisCluster::start().await;
    cross_node_game(Redis::Cluster(cluster.urls())).await;
}

#[tokio::test]
async fn a_seat_resumed_on_the_other_node_closes_the_old_connection() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let (a, b) = two_nodes(&Redis::Single(redis.url())).await;
    let mut host = connect(a.addr).await;
    host.send(&create("host", Some(2), Some(30_000))).await;
    let game = host.joined().await;
    let token = host.token.clone().unwrap();
    let mut guest = connect(b.addr).await;
    guest.send(&join(&game.id, "guest")).await;
    guest.joined().await;
    host.sync_to(guest.seq()).await;

    let mut again = connect(b.addr).await;
    again.send(&resume(&game.id, &token)).await;
    let snap = again.joined().await;
    assert_eq!(snap.status, GameStatus::Active);
    assert_eq!(host.closed().await, Some(4001), "replaced across nodes");
    again.send(&capture(7)).await;
    let captured = guest
        .until(|m| matches!(m, ServerMessage::Captured { .. }))
        .await;
    assert!(matches!(
        captured,
        ServerMessage::Captured {
            cell: 7,
            player: 0,
            ..
        }
    ));
    // Resuming the seat this connection already holds is a resync.
    again.send(&resume(&game.id, &token)).await;
    let fresh = again
        .until(|m| matches!(m, ServerMessage::Joined { .. }))
        .await;
    let ServerMessage::Joined { game: fresh, .. } = fresh else {
        unreachable!()
    };
    assert_eq!(fresh.cells[7], 1);
    again.ping_pong(1).await;
}

/// Plays `players` to the end of a short round while `disturb` runs in the
/// middle; every client's board must then equal Redis's.
async fn game_survives(redis: &mut RedisServer, disturb: impl AsyncFnOnce(&mut RedisServer)) {
    let (a, b) = two_nodes(&Redis::Single(redis.url())).await;
    let mut host = connect(a.addr).await;
    host.send(&create("host", Some(2), Some(4_000))).await;
    let game = host.joined().await;
    let mut guest = connect(b.addr).await;
    guest.send(&join(&game.id, "guest")).await;
    guest.joined().await;
    let mut players = [host, guest];
    for cell in 0..10 {
        players[(cell % 2) as usize].send(&capture(cell)).await;
    }
    let seq = players[1].seq() + 10;
    sync_all(&mut players, seq).await;

    disturb(redis).await;

    // Keep capturing until the round ends; a capture refused while Redis is
    // away (`overloaded`) is simply lost, never half-applied.
    let mut cell = 10;
    let mut over = [false, false];
    let mut resynced = [0usize; 2];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(over[0] && over[1]) {
        assert!(tokio::time::Instant::now() < deadline, "the game ended");
        for (i, p) in players.iter_mut().enumerate() {
            if over[i] {
                continue;
            }
            if cell < 81 {
                p.send(&capture(cell)).await;
                cell += 1;
            }
            loop {
                match p.try_frame(Duration::from_millis(50)).await {
                    Ok(Frame::Message(m)) => match m {
                        ServerMessage::GameOver { .. } => over[i] = true,
                        ServerMessage::Joined { .. } => resynced[i] += 1,
                        _ => {}
                    },
                    Ok(Frame::Ping) => {}
                    Ok(Frame::Closed(c)) => panic!("closed: {c:?}"),
                    Err(_) => break,
                }
            }
            if p.replica.as_ref().unwrap().status == GameStatus::Completed {
                over[i] = true;
            }
        }
    }
    assert!(
        resynced.iter().all(|&n| n >= 1),
        "every node resynced its players with a fresh joined: {resynced:?}"
    );
    let in_redis = stored(&a, &game.id).await;
    for p in &players {
        let replica = p.replica.as_ref().unwrap();
        assert_eq!(replica.status, GameStatus::Completed);
        assert_eq!(
            board(replica),
            json_board(&in_redis),
            "the board equals Redis's"
        );
        assert_eq!(Some(replica.seq), in_redis["seq"].as_u64());
    }
}

#[tokio::test]
async fn killing_the_pubsub_connections_mid_game_loses_no_board() {
    if !redis_available() {
        return;
    }
    let mut redis = RedisServer::start().await;
    game_survives(&mut redis, async |redis: &mut RedisServer| {
        let killed = kill_subscriptions(redis).await;
        assert!(
            killed >= 2,
            "both nodes' subscriptions were killed: {killed}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_redis_restart_mid_game_loses_no_board() {
    if !redis_available() {
        return;
    }
    let mut redis = RedisServer::start_durable().await;
    game_survives(&mut redis, async |redis: &mut RedisServer| {
        redis.restart().await;
    })
    .await;
}

#[tokio::test]
async fn while_redis_is_down_requests_are_overloaded_and_readyz_is_503() {
    if !redis_available() {
        return;
    }
    let mut redis = RedisServer::start_durable().await;
    let (a, _b) = two_nodes(&Redis::Single(redis.url())).await;
    let mut host = connect(a.addr).await;
    host.send(&create("host", Some(2), Some(30_000))).await;
    let game = host.joined().await;
    redis.kill();
    testkit::http::wait_status_within(a.addr, "/readyz", 503, Duration::from_secs(10)).await;
    let mut other = connect(a.addr).await;
    other.send(&join(&game.id, "late")).await;
    other.error(ErrorCode::Overloaded).await;
    other.send(&create("again", None, None)).await;
    other.error(ErrorCode::Overloaded).await;
    // A leave Redis cannot record is not acknowledged with 1000: the seat
    // is still the host's, to resume.
    host.send(&LEAVE).await;
    assert_eq!(host.closed().await, Some(1013));

    redis.restart().await;
    wait_ready(a.addr).await;
    other.send(&join(&game.id, "late")).await;
    let snap = other.joined().await;
    other.sync_to(snap.seq + 1).await;
    assert_eq!(
        other.replica.as_ref().map(|g| g.status),
        Some(GameStatus::Active),
        "the game survived the outage, and the join filled it"
    );
    let ids: HashSet<u8> = snap.players.iter().map(|p| p.id).collect();
    assert_eq!(ids, HashSet::from([0, 1]), "the host kept seat 0");
}

/// A stateless node told to stop drains: `/readyz` 503 and new connections
/// 503 (the balancer sends them elsewhere), while the game its player is in
/// goes on and a connection already there may still create one (it lives
/// in Redis); once `--drain-notice-ms` has passed
/// it sends that player away with 1001, mid-round (the game is in Redis),
/// and stops; the player resumes through the other node with nothing lost
/// and plays the round to its end.
#[tokio::test]
async fn a_draining_stateless_node_sends_players_away_after_the_notice() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let target = Redis::Single(redis.url());
    let a = TestServer::start_node(gridcap::config::ServeOptions {
        drain_timeout_ms: Some(20_000),
        drain_notice_ms: Some(300),
        ..stateless_options(&target)
    })
    .await;
    let b = TestServer::start_node(stateless_options(&target)).await;
    let a_addr = a.addr;
    let mut host = connect(a_addr).await;
    host.send(&create("host", Some(2), Some(3_000))).await;
    let game = host.joined().await;
    let mut guest = connect(b.addr).await;
    guest.send(&join(&game.id, "guest")).await;
    guest.joined().await;
    host.sync_to(2).await; // player_joined, started
    let mut idle = connect(a_addr).await;

    let drained = a.begin_shutdown();
    common::http::wait_status(a_addr, "/readyz", 503).await;
    assert_eq!(refused_status(ws_request(a_addr)).await, 503);
    idle.send(&create("late", Some(2), Some(30_000))).await;
    let late = idle.joined().await;
    // The draining node serves its player's game until the notice is over.
    host.send(&capture(40)).await;
    guest
        .until(|m| matches!(m, ServerMessage::Captured { cell: 40, .. }))
        .await;
    assert_eq!(host.closed().await, Some(1001), "sent away mid-round");
    tokio::time::timeout(WAIT, drained)
        .await
        .expect("the drain does not wait for the round")
        .expect("the drain task");

    let mut back = connect(b.addr).await;
    back.send(&resume(&game.id, host.token.as_deref().unwrap()))
        .await;
    let snap = back.joined().await;
    assert_eq!(
        snap.status,
        GameStatus::Active,
        "the round outlived the node"
    );
    assert_eq!(snap.cells[40], 1, "the capture on the drained node is kept");
    let over = back.game_over().await;
    assert_eq!(guest.game_over().await, over);
    assert_eq!(idle.closed().await, Some(1001));
    let mut late_again = connect(b.addr).await;
    late_again
        .send(&resume(&late.id, idle.token.as_deref().unwrap()))
        .await;
    assert_eq!(late_again.joined().await.status, GameStatus::Waiting);
}
