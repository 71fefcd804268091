//! Spectators (protocol §7) in stateless mode, where the conformance suite
//! (`spectators.rs`, run on two nodes by `stateless_conformance`) cannot
//! look: the count and the cap are the cluster's, not a node's; a node that
//! dies without unwatching stops counting its spectators once their lease
//! runs out, while the survivors' leases are renewed; a room resync after a
//! lost subscription gives a spectator a fresh `watching`; and, on the
//! scripts alone, what a lapsed lease counts and what watching does to a
//! game's TTL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::replica::assert_same_game;
use common::stateless::*;
use common::*;
use game_logic::GameError;
use gridcap::config::ServeOptions;
use gridcap::games::redis::layout::{self, SPECTATOR_LEASE, watchers_key};
use gridcap::games::redis::scripts::Code;
use transport::protocol::{ClientMessage, ErrorCode, GameSnapshot, ServerMessage};
use uuid::Uuid;

fn create_public(name: &str) -> ClientMessage {
    ClientMessage::Create {
        name: name.into(),
        max_players: Some(2),
        duration_ms: Some(60_000),
        public: Some(true),
    }
}

/// An active public game: its host on `a`, the second player on `b`.
async fn active_game(a: std::net::SocketAddr, b: std::net::SocketAddr) -> Vec<TestClient> {
    let mut host = connect(a).await;
    host.send(&create_public("host")).await;
    let id = host.joined().await.id;
    let mut guest = connect(b).await;
    guest.send(&join(&id, "guest")).await;
    guest.joined().await;
    let mut players = vec![host, guest];
    let started = players[1].seq() + 1;
    sync_all(&mut players, started).await;
    players
}

/// A new connection to `node` watching `game`; its `watching` snapshot.
async fn spectator(node: std::net::SocketAddr, game: &str) -> (TestClient, GameSnapshot) {
    let mut c = connect(node).await;
    c.send(&watch(game)).await;
    let snapshot = c.watching().await;
    (c, snapshot)
}

/// Waits until `node`'s `GET /api/games/{id}` counts `n` spectators.
async fn counted(node: std::net::SocketAddr, id: &str, n: u64) {
    let path = format!("/api/games/{id}");
    http::get_json_until(node, &path, |g| g["spectators"].as_u64() == Some(n)).await;
}

/// Waits until `node`'s lobby lists game `id` as active with `n` spectators.
async fn listed(node: std::net::SocketAddr, id: &str, n: u64) {
    http::get_json_until(node, "/api/lobby", |lobby| {
        lobby["active"].as_array().is_some_and(|active| {
            active
                .iter()
                .any(|g| g["id"].as_str() == Some(id) && g["spectators"].as_u64() == Some(n))
        })
    })
    .await;
}

/// Three spectators over two nodes fill a game capped at 3, on both; both
/// nodes count the same, in snapshots and the lobby.
async fn count_and_cap_over_two_nodes(redis: &Redis) {
    let options = ServeOptions {
        max_spectators: Some(3),
        ..stateless_options(redis)
    };
    let a = TestServer::start_node(options.clone()).await;
    let b = TestServer::start_node(options).await;
    let players = active_game(a.addr, b.addr).await;
    let id = players[0].game_id();

    let mut watchers = Vec::new();
    for (n, node) in [a.addr, b.addr, a.addr].into_iter().enumerate() {
        let (w, snapshot) = spectator(node, &id).await;
        assert_eq!(
            snapshot.spectators,
            u32::try_from(n + 1).unwrap(),
            "counted with the other node's spectators"
        );
        watchers.push(w);
    }
    // Three watch, one node has two of them: the cap is the cluster's.
    for node in [b.addr, a.addr] {
        let mut late = connect(node).await;
        late.send(&watch(&id)).await;
        late.error(ErrorCode::GameFull).await;
    }
    for node in [a.addr, b.addr] {
        counted(node, &id, 3).await;
        listed(node, &id, 3).await;
    }
    // A resync on a full game is no new spectator.
    watchers[1].send(&watch(&id)).await;
    assert_eq!(watchers[1].watching().await.spectators, 3);

    // The one on b leaves: both nodes count two, and b seats another.
    let mut gone = watchers.remove(1);
    gone.send(&LEAVE).await;
    assert_eq!(gone.closed_now().await, Some(1000));
    counted(a.addr, &id, 2).await;
    listed(b.addr, &id, 2).await;
    let (_late, snapshot) = spectator(b.addr, &id).await;
    assert_eq!(snapshot.spectators, 3);
}

#[tokio::test]
async fn the_count_and_the_cap_are_the_clusters_not_a_nodes() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    count_and_cap_over_two_nodes(&Redis::Single(redis.url())).await;
}

#[tokio::test]
async fn on_a_redis_cluster_the_spectators_share_their_games_slot() {
    if !redis_available() {
        return;
    }
    // The set of spectators carries the game's hash tag: the scripts that
    // touch both run on the game's master.
    let cluster = RedisCluster::start().await;
    count_and_cap_over_two_nodes(&Redis::Cluster(cluster.urls())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_spectators_stop_counting_within_the_lease() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let mut nodes = node_processes(
        "a_killed_nodes_spectators_stop_counting_within_the_lease",
        &Redis::Single(redis.url()),
        &["a", "b"],
    )
    .await;
    let (a, b) = (nodes.node("a").addr, nodes.node("b").addr);
    let mut players = active_game(b, b).await;
    let id = players[0].game_id();
    let (mut survivor, _) = spectator(b, &id).await;
    let mut on_a = Vec::new();
    for _ in 0..2 {
        on_a.push(spectator(a, &id).await.0);
    }
    counted(b, &id, 3).await;
    let mut c = redis.conn().await;
    let key = watchers_key(&Uuid::parse_str(&id).unwrap());
    let leases: Vec<(String, u64)> = redis::cmd("ZRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(leases.len(), 3, "one member per spectator: {leases:?}");
    // Members are `<node instance>/<conn>`: the survivor's instance is the
    // one a's two spectators do not share.
    let instance = |holder: &str| holder.split_once('/').unwrap().0.to_owned();
    let (survivor_holder, first_lease) = leases
        .iter()
        .find(|(h, _)| {
            leases
                .iter()
                .filter(|(o, _)| instance(o) == instance(h))
                .count()
                == 1
        })
        .cloned()
        .unwrap();

    nodes.node_mut("a").kill();
    // Nobody unwatches: the count falls when a's leases run out.
    let path = format!("/api/games/{id}");
    let within = SPECTATOR_LEASE + Duration::from_secs(3);
    http::get_json_until_within(b, &path, within, |g| g["spectators"].as_u64() == Some(1)).await;
    listed(b, &id, 1).await;
    let renewed: Option<u64> = redis::cmd("ZSCORE")
        .arg(&key)
        .arg(&survivor_holder)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        renewed.is_some_and(|lease| lease > first_lease),
        "the survivor's lease was renewed: {first_lease} -> {renewed:?}"
    );
    // The survivor still follows the game, the players never noticed.
    players[1].send(&capture(40)).await;
    let seq = players[1].until(|m| m.seq().is_some()).await.seq().unwrap();
    survivor.sync_to(seq).await;
    assert_same_game(
        survivor.replica.as_ref().unwrap(),
        players[1].replica.as_ref().unwrap(),
    );
}

#[tokio::test]
async fn a_lost_subscription_gives_spectators_a_fresh_watching() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let options = stateless_options(&Redis::Single(redis.url()));
    let a = TestServer::start_node(options.clone()).await;
    let b = TestServer::start_node(options).await;
    let mut players = active_game(a.addr, a.addr).await;
    let id = players[0].game_id();
    let (mut watcher, _) = spectator(b.addr, &id).await;

    let killed = kill_subscriptions(&redis).await;
    assert!(killed >= 2, "both nodes' subscriptions were killed");
    // The room is resynced: a spectator's fresh snapshot is a `watching`
    // (never a `joined`: it has no seat and no token).
    let fresh = watcher
        .until(|m| {
            assert!(
                !matches!(m, ServerMessage::Joined { .. }),
                "a spectator got {m:?}"
            );
            matches!(m, ServerMessage::Watching { .. })
        })
        .await;
    let ServerMessage::Watching { game } = fresh else {
        unreachable!("until returns what it waited for");
    };
    assert_eq!((game.id.as_str(), game.spectators), (id.as_str(), 1));

    players[0].send(&capture(7)).await;
    let seq = players[0]
        .until(|m| matches!(m, ServerMessage::Captured { .. }))
        .await
        .seq()
        .unwrap();
    watcher.sync_to(seq).await;
    assert_same_game(
        watcher.replica.as_ref().unwrap(),
        players[0].replica.as_ref().unwrap(),
    );
}

/// The scripts on a real Redis, without nodes: a lease that ran out counts
/// for nothing (neither in snapshots nor against the cap), and watching
/// never extends a game's life.
#[tokio::test]
async fn only_unexpired_leases_count_and_a_watch_keeps_no_game_alive() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let (store, stop) = store_on(&redis).await;
    let (id, created) = create_duel(&store, "n/0").await;
    assert_eq!(created.game.unwrap().spectators, 0);
    // Whatever the game's TTL is, watching leaves it be: a script that
    // set it would put the one-hour safety TTL back.
    let mut c = redis.conn().await;
    let shortened: i64 = redis::cmd("PEXPIRE")
        .arg(layout::game_key(&id))
        .arg(100_000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(shortened, 1);
    let ttl = async |c: &mut redis::aio::MultiplexedConnection| -> i64 {
        redis::cmd("PTTL")
            .arg(layout::game_key(&id))
            .query_async(c)
            .await
            .unwrap()
    };

    // A spectator whose node stopped renewing long ago.
    let lapsed: i64 = redis::cmd("ZADD")
        .arg(layout::watchers_key(&id))
        .arg(created.now.as_unix_ms() - 1)
        .arg("dead/1")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(lapsed, 1);
    let answer = store.snapshot(&id).await.unwrap();
    assert_eq!(
        answer.game.unwrap().spectators,
        0,
        "a lapsed lease counts not"
    );
    let first = store.watch(&id, "n/1", 1).await.unwrap();
    assert_eq!(first.code, Code::Ok, "the lapsed one does not fill the cap");
    assert_eq!(first.game.unwrap().spectators, 1);
    let after = ttl(&mut c).await;
    assert!(
        (1..=100_000).contains(&after),
        "watching extends no game: {after}"
    );
    let again = store.watch(&id, "n/1", 1).await.unwrap();
    assert_eq!(
        (again.code, again.game.unwrap().spectators),
        (Code::Ok, 1),
        "a resync at the cap is counted once"
    );
    let full = store.watch(&id, "n/2", 1).await.unwrap();
    assert_eq!(full.code, Code::Refused(GameError::GameFull));

    // Renewal keeps what it finds and reports what it does not.
    let holders = ["n/1".to_owned(), "n/2".to_owned()];
    let missing = store.renew(&id, &holders, false).await.unwrap();
    assert_eq!(missing, vec!["n/2".to_owned()]);
    store.unwatch(&id, "n/1").await.unwrap();
    let answer = store.snapshot(&id).await.unwrap();
    assert_eq!(answer.game.unwrap().spectators, 0, "unwatched at once");
    stop.cancel();
}
