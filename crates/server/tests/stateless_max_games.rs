//! Issue 18, stateless part: `--max-games` is the cluster's, counted in
//! Redis on the game table (`layout::GAMES_KEY`). Creates beyond it are
//! answered `overloaded` on every node; a game nobody is connected to stops
//! counting once its lease runs out while the games being played are
//! renewed; and a create-and-drop flood from one address, refused by
//! `--max-creates-per-ip`, neither locks an honest creator out nor grows
//! Redis. The lease is set short (`--redis-game-lease-ms`) and every wait
//! polls Redis's state with a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::stateless::*;
use common::*;
use gridcap::config::ServeOptions;
use gridcap::games::redis::layout::GAMES_KEY;
use redis::aio::MultiplexedConnection;
use testkit::client::quick_play;
use transport::ErrorCode;
use transport::protocol::{GameStatus, ServerMessage};

/// `--max-games` of these tests.
const MAX_GAMES: usize = 5;
/// `--redis-game-lease-ms` of these tests: renewed every 300 ms.
const LEASE_MS: u64 = 900;
/// Longest a test waits for a lease to run out or be renewed.
const WITHIN: Duration = Duration::from_secs(10);

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const HONEST: [u8; 4] = [127, 0, 0, 2];

fn capped(redis: &Redis) -> ServeOptions {
    ServeOptions {
        max_games: Some(MAX_GAMES),
        redis_game_lease_ms: Some(LEASE_MS),
        ..stateless_options(redis)
    }
}

/// A connection to the master holding the game table (on a single Redis,
/// that server; on a cluster, the one that does not redirect).
async fn table_master(servers: &[&RedisServer]) -> MultiplexedConnection {
    for server in servers {
        let mut c = server.conn().await;
        let owner: Result<i64, _> = redis::cmd("ZCARD").arg(GAMES_KEY).query_async(&mut c).await;
        if owner.is_ok() {
            return c;
        }
    }
    panic!("no server holds {GAMES_KEY}");
}

/// The games counting on the table now, with the Redis-time ms each counts
/// until.
async fn counting(c: &mut MultiplexedConnection) -> Vec<(String, u64)> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(c).await.unwrap();
    let now = secs * 1_000 + micros / 1_000;
    redis::cmd("ZRANGEBYSCORE")
        .arg(GAMES_KEY)
        .arg(format!("({now}"))
        .arg("+inf")
        .arg("WITHSCORES")
        .query_async(c)
        .await
        .unwrap()
}

/// Polls the table until `done` holds of the games counting, at most
/// [`WITHIN`].
async fn table_until(
    c: &mut MultiplexedConnection,
    what: &str,
    done: impl Fn(&[(String, u64)]) -> bool,
) -> Vec<(String, u64)> {
    let (conn, done) = (&*c, &done);
    testkit::poll::until(WITHIN, move || {
        let mut c = conn.clone();
        async move {
            let games = counting(&mut c).await;
            if done(&games) {
                return Ok(games);
            }
            Err(format!("{what}: the table still counts {games:?}"))
        }
    })
    .await
}

/// Waiting games `/api/node` of the node with admin listener `admin` counts.
async fn waiting_on(admin: SocketAddr) -> u64 {
    let node = http::get_admin(admin, "/api/node").await.json();
    node["games"]["waiting"].as_u64().expect("a count")
}

/// Two nodes capped at [`MAX_GAMES`] together: the cap holds on both,
/// played games stay counted lease after lease, and a game whose only
/// player dropped stops counting within the lease, making room for one.
async fn the_cap_is_the_clusters(redis: &Redis, servers: &[&RedisServer]) {
    let a = TestServer::start_node(capped(redis)).await;
    let b = TestServer::start_node(capped(redis)).await;
    let mut hosts = Vec::new();
    for n in 0..MAX_GAMES {
        let node = if n % 2 == 0 { a.addr } else { b.addr };
        let mut host = connect(node).await;
        assert_eq!(try_create(&mut host).await, Ok(GameStatus::Waiting), "{n}");
        hosts.push(host);
    }
    for node in [a.addr, b.addr] {
        let mut late = connect(node).await;
        assert_eq!(try_create(&mut late).await, Err(ErrorCode::Overloaded));
        // Quick play finds no open game and may not create one either.
        late.send(&quick_play("late", Some(2))).await;
        late.error(ErrorCode::Overloaded).await;
        // A refusal, not an end: the connection stays usable.
        late.ping_pong(1).await;
    }
    // Every node counts its own games, kept as rooms change.
    assert_eq!(
        (waiting_on(a.admin).await, waiting_on(b.admin).await),
        (3, 2)
    );

    let mut table = table_master(servers).await;
    let first = counting(&mut table).await;
    let ids: Vec<String> = hosts.iter().map(TestClient::game_id).collect();
    let mut counted: Vec<&String> = first.iter().map(|(id, _)| id).collect();
    counted.sort();
    let mut expected: Vec<&String> = ids.iter().collect();
    expected.sort();
    assert_eq!(counted, expected, "the table counts exactly the games made");
    // Played games are renewed past their first lease.
    let lease = LEASE_MS;
    table_until(&mut table, "renewals", |games| {
        games.len() == MAX_GAMES
            && first.iter().all(|(id, was)| {
                games
                    .iter()
                    .any(|(g, until)| g == id && *until >= was + lease)
            })
    })
    .await;
    let mut late = connect(b.addr).await;
    assert_eq!(try_create(&mut late).await, Err(ErrorCode::Overloaded));

    // The host of the first game drops: nobody renews it any more.
    let gone = ids[0].clone();
    hosts.remove(0).close().await;
    table_until(&mut table, "the dropped game's lapse", |games| {
        games.len() == MAX_GAMES - 1 && games.iter().all(|(id, _)| *id != gone)
    })
    .await;
    assert_eq!(
        waiting_on(a.admin).await,
        2,
        "the room went with its player"
    );
    // Its key is still in Redis (kept 60 s unattended), but it counts not.
    let mut honest = connect(b.addr).await;
    assert_eq!(try_create(&mut honest).await, Ok(GameStatus::Waiting));
    assert_eq!(
        try_create(&mut connect(a.addr).await).await,
        Err(ErrorCode::Overloaded)
    );
}

#[tokio::test]
async fn max_games_counts_the_games_of_every_node_and_lapses_with_the_players() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    the_cap_is_the_clusters(&Redis::Single(redis.url()), &[&redis]).await;
}

#[tokio::test]
async fn on_a_redis_cluster_the_game_table_is_one_slot() {
    if !redis_available() {
        return;
    }
    let cluster = RedisCluster::start().await;
    let servers: Vec<&RedisServer> = cluster.nodes.iter().collect();
    the_cap_is_the_clusters(&Redis::Cluster(cluster.urls()), &servers).await;
}

/// A game that ends is taken off the table at once, its players still
/// connected: long before its lease (a minute here) could run out.
#[tokio::test]
async fn a_finished_game_stops_counting_at_once() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let options = ServeOptions {
        redis_game_lease_ms: Some(60_000),
        rate_limit: Some(1_000),
        rate_burst: Some(1_000),
        ..capped(&Redis::Single(redis.url()))
    };
    let a = TestServer::start_node(options.clone()).await;
    let b = TestServer::start_node(options).await;
    let mut host = connect(a.addr).await;
    assert_eq!(try_create(&mut host).await, Ok(GameStatus::Waiting));
    let id = host.game_id();
    let mut guest = connect(b.addr).await;
    guest.send(&join(&id, "guest")).await;
    guest.joined().await;
    host.until(|m| matches!(m, ServerMessage::Started { .. }))
        .await;
    let mut table = table_master(&[&redis]).await;
    assert_eq!(counting(&mut table).await.len(), 1);
    for cell in 0..81 {
        host.send(&capture(cell)).await;
    }
    for player in [&mut host, &mut guest] {
        player
            .until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await;
    }
    table_until(&mut table, "the finished game's release", <[_]>::is_empty).await;
    // Both players are still there; the game is still in Redis.
    host.ping_pong(1).await;
    guest.ping_pong(2).await;
    let mut c = redis.conn().await;
    let key = gridcap::games::redis::layout::game_key(&id.parse().unwrap());
    let kept: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(kept, 1, "retained 60 s for its players");
}

/// The table's scripts on a real Redis, without nodes: the cap counts only
/// unexpired leases, a renewal never shortens a lease and counts a played
/// game again even above the cap, and a release frees the place.
#[tokio::test]
async fn the_table_counts_unexpired_leases_only() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    let (store, stop) = store_on(&redis).await;
    let minute = Duration::from_secs(60);
    let [a, b, c] = [(); 3].map(|()| uuid::Uuid::new_v4());
    assert_eq!(store.admit(&a, 2, minute).await.unwrap(), (true, 1));
    assert_eq!(store.admit(&b, 2, minute).await.unwrap(), (true, 2));
    assert_eq!(store.admit(&c, 2, minute).await.unwrap(), (false, 2));
    let mut table = redis.conn().await;
    assert_eq!(
        counting(&mut table).await.len(),
        2,
        "a refusal adds nothing"
    );
    // a's lease runs out (set in the past: Redis's clock is not ours).
    let _: i64 = redis::cmd("ZADD")
        .arg(GAMES_KEY)
        .arg("XX")
        .arg(1)
        .arg(a.to_string())
        .query_async(&mut table)
        .await
        .unwrap();
    assert_eq!(store.admit(&c, 2, minute).await.unwrap(), (true, 2));
    let before = counting(&mut table).await;
    // A renewal purges a, never shortens b's lease.
    let short = Duration::from_millis(1);
    assert_eq!(store.lease(&[b], short).await.unwrap(), 2);
    assert_eq!(counting(&mut table).await, before);
    // a, played again after its lease lapsed, counts again: above the cap.
    assert_eq!(store.lease(&[a], minute).await.unwrap(), 3);
    store.release(&[a, b]).await.unwrap();
    assert_eq!(store.lease(&[], minute).await.unwrap(), 1);
    assert_eq!(store.admit(&b, 2, minute).await.unwrap(), (true, 2));
    stop.cancel();
}

/// Keys Redis may hold after the flood: per game its hash and its code,
/// the table, and each node's liveness key, with room to spare.
const DBSIZE_BOUND: i64 = 3 * MAX_GAMES as i64 + 8;

#[tokio::test]
async fn a_create_and_drop_flood_from_one_address_locks_nobody_out() {
    if !redis_available() {
        return;
    }
    let redis = RedisServer::start().await;
    // Two a minute per address and node: the attacker gets 4 of the 5.
    let options = ServeOptions {
        max_creates_per_ip: Some(2),
        ..capped(&Redis::Single(redis.url()))
    };
    let a = TestServer::start_node(options.clone()).await;
    let b = TestServer::start_node(options).await;
    let (mut made, mut limited) = (0, 0);
    for n in 0..40 {
        let node = if n % 2 == 0 { a.addr } else { b.addr };
        let mut c = client_from(node, ATTACKER).await;
        match try_create(&mut c).await {
            Ok(_) => made += 1,
            Err(ErrorCode::RateLimited) => limited += 1,
            Err(other) => panic!("create {n} of the flood: {other:?}"),
        }
        drop(c); // no close handshake: the connection just goes
    }
    assert_eq!(
        (made, limited),
        (4, 36),
        "refused past the per-address limit"
    );

    // An honest host and guest from another address fill a game and play.
    let mut host = client_from(a.addr, HONEST).await;
    assert_eq!(try_create(&mut host).await, Ok(GameStatus::Waiting));
    let mut guest = client_from(b.addr, HONEST).await;
    guest.send(&join(&host.game_id(), "guest")).await;
    guest.joined().await;
    host.until(|m| matches!(m, ServerMessage::Started { .. }))
        .await;
    host.send(&capture(40)).await;
    host.until(|m| matches!(m, ServerMessage::Captured { cell: 40, .. }))
        .await;
    guest
        .until(|m| matches!(m, ServerMessage::Captured { cell: 40, .. }))
        .await;

    let mut c = redis.conn().await;
    let keys: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert!(
        keys <= DBSIZE_BOUND,
        "{keys} keys in Redis after the flood (bound {DBSIZE_BOUND})"
    );
    // The attacker's dropped games stop counting; the honest game does not.
    let mut table = table_master(&[&redis]).await;
    let id = host.game_id();
    table_until(&mut table, "the flood's lapse", |games| {
        games.len() == 1 && games[0].0 == id
    })
    .await;
    // Their room is free: another honest game is made.
    let mut next = client_from(b.addr, HONEST).await;
    assert_eq!(try_create(&mut next).await, Ok(GameStatus::Waiting));
}
