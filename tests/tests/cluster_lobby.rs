//! Protocol §7 (short codes, the public lobby, quick play, the lobby
//! countdown) and the `started` rule of §4 across the nodes of a cluster,
//! with real processes: two `gridcap serve --mode stateful` nodes, and two
//! `--mode stateless` nodes sharing a `redis-server`. The players of one
//! game sit on different nodes; every game is named through the node that
//! does not hold it (stateful) or through both (stateless).
//!
//! Spectators too: players and spectators on both nodes, one count.
//!
//! Then the race of issue 14: 200 concurrent `quick_play`s of size 4 spread
//! over both nodes must make exactly 50 full games, every seat taken once,
//! all started.
//!
//! The single-node conformance tests are `crates/server/tests/lobby.rs`.
//! Logs of every process: `target/system-tests/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::client::{self, Client, create, create_public, join, quick_play, resume};
use testkit::redis::{Redis, RedisServer, redis_available};
use testkit::{Cluster, NodeOptions, TestDir, WAIT, http};
use transport::protocol::{ErrorCode, GameSnapshot, GameStatus, ServerMessage};

/// The code alphabet of protocol §7.
const ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// How far behind another node's lobby may be: one second by the contract
/// (a stateful node hears its peers' listings with the probe, a stateless
/// node caches Redis for half a second), plus slack for a loaded machine.
const LOBBY_LAG: Duration = Duration::from_secs(2);

/// `--lobby-start-ms` of the conformance clusters: short, so a public
/// game's countdown ends within the test.
const LOBBY_START_MS: u64 = 400;

/// The race: this many quick plays of [`RACE_SIZE`] seats.
const RACE_PLAYERS: usize = 200;
/// Seats per game in the race.
const RACE_SIZE: usize = 4;
/// The whole race (connect, seat, start) must be over within this.
const RACE_LIMIT: Duration = Duration::from_secs(60);

/// Which cluster mode a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stateful,
    Stateless,
}

/// Two nodes of `mode` (`a` and `b`), with the `redis-server` they share
/// in stateless mode; `None` when Redis is needed and not installed.
async fn pair(
    mode: Mode,
    dir: &TestDir,
    options: &NodeOptions,
) -> Option<(Cluster, Option<RedisServer>)> {
    match mode {
        Mode::Stateful => Some((Cluster::stateful(dir, &["a", "b"], options).await, None)),
        Mode::Stateless => {
            if !redis_available() {
                return None;
            }
            let server = RedisServer::start().await;
            let redis = Redis::Single(server.url());
            let cluster = Cluster::stateless(dir, &["a", "b"], &redis, options).await;
            Some((cluster, Some(server)))
        }
    }
}

fn options_with(extra: &[String]) -> NodeOptions {
    NodeOptions {
        extra: extra.to_vec(),
        ..NodeOptions::default()
    }
}

/// A host on `addr` with a new private game of `max_players`.
async fn host_private(addr: SocketAddr, max_players: i64) -> (Client, GameSnapshot) {
    let mut host = client::connect(addr).await;
    host.send(&create("host", Some(max_players), Some(30_000)))
        .await;
    let game = host.joined().await;
    (host, game)
}

/// The entry of game `id` in a lobby list, if listed.
fn listed(list: &serde_json::Value, id: &str) -> Option<serde_json::Value> {
    list.as_array()?
        .iter()
        .find(|e| e["id"].as_str() == Some(id))
        .cloned()
}

/// `GET /api/lobby` on `addr` until `ok` holds, within [`LOBBY_LAG`] of
/// `since` (when the change happened).
async fn lobby_until(
    addr: SocketAddr,
    since: Instant,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let left = LOBBY_LAG.saturating_sub(since.elapsed());
    http::get_json_until_within(addr, "/api/lobby", left, ok).await
}

/// Codes: a game created on one node is joined, resumed and read by its
/// code (in any case) through the other; unknown codes are unknown there.
async fn codes_across(cluster: &Cluster, home: usize, other: usize) {
    let (home, other) = (cluster.nodes[home].addr, cluster.nodes[other].addr);
    let (_host, game) = host_private(home, 3).await;
    assert_eq!(game.code.len(), 6, "{game:?}");
    assert!(
        game.code.chars().all(|c| ALPHABET.contains(c)),
        "{}",
        game.code
    );

    let mut guest = client::connect(other).await;
    guest.send(&join(&game.code.to_lowercase(), "guest")).await;
    let joined = guest.joined().await;
    assert_eq!(
        (joined.id.as_str(), joined.code.as_str()),
        (game.id.as_str(), game.code.as_str()),
        "a lowercase code through the other node names the game"
    );
    assert_eq!(guest.me(), 1);

    for addr in [home, other] {
        for code in [game.code.clone(), game.code.to_lowercase()] {
            let by_code = http::get_json(addr, &format!("/api/games/{code}")).await;
            assert_eq!(
                by_code["id"].as_str(),
                Some(game.id.as_str()),
                "via {addr}: {by_code}"
            );
            assert_eq!(
                by_code["code"].as_str(),
                Some(game.code.as_str()),
                "via {addr}"
            );
            assert_eq!(
                by_code["players"].as_array().map(Vec::len),
                Some(2),
                "via {addr}"
            );
        }
    }

    // Resume by code on a new connection through the other node: the same
    // seat, and the old connection is replaced (4001).
    let token = guest.token.clone().expect("a token");
    let mut back = client::connect(other).await;
    back.send(&resume(&game.code, &token)).await;
    let resumed = back.joined().await;
    assert_eq!(resumed.id, game.id);
    assert_eq!(back.me(), 1, "the same seat");
    assert_eq!(
        guest.closed().await,
        Some(4001),
        "the old connection is replaced"
    );
    // And through the game's own node, lowercase.
    let token = back.token.clone().expect("a token");
    let mut home_again = client::connect(home).await;
    home_again
        .send(&resume(&game.code.to_lowercase(), &token))
        .await;
    assert_eq!(home_again.joined().await.id, game.id);
    assert_eq!(home_again.me(), 1);

    let mut stranger = client::connect(other).await;
    stranger.send(&join("ZZZZZZ", "x")).await;
    stranger.error(ErrorCode::UnknownGame).await;
    stranger.send(&resume("ZZZZZZ", &token)).await;
    stranger.error(ErrorCode::UnknownGame).await;
    assert_eq!(http::get(other, "/api/games/ZZZZZZ").await.status, 404);
}

/// The player whose join through the other node fills a game hears
/// `joined` (waiting, after its own join), then `started`, like the host.
async fn filler_hears_started(cluster: &Cluster, home: usize, other: usize) {
    let (home, other) = (cluster.nodes[home].addr, cluster.nodes[other].addr);
    let (mut host, game) = host_private(home, 2).await;
    let mut filler = client::connect(other).await;
    filler.send(&join(&game.code, "filler")).await;
    client::assert_filler_hears_started(&mut host, &mut filler).await;
}

/// A public game created through one node is listed by the other's lobby
/// while it waits, and as running once it filled.
async fn lobby_across(cluster: &Cluster, home: usize, other: usize) {
    let (home, other) = (cluster.nodes[home].addr, cluster.nodes[other].addr);
    let mut host = client::connect(home).await;
    // Two seats: the join that brings it to the two-player minimum fills
    // it, so it starts at once, with no countdown.
    host.send(&create_public("ada", 2)).await;
    let created = Instant::now();
    let game = host.joined().await;
    assert!(game.public);
    let lobby = lobby_until(other, created, |l| {
        listed(&l["waiting"], &game.id).is_some()
    })
    .await;
    let entry = listed(&lobby["waiting"], &game.id).unwrap();
    assert_eq!(entry["code"].as_str(), Some(game.code.as_str()), "{entry}");
    assert_eq!(entry["players"], serde_json::json!(["ada"]), "{entry}");
    assert_eq!(entry["max_players"], 2, "{entry}");

    let mut guest = client::connect(other).await;
    guest.send(&join(&game.code, "bob")).await;
    guest.joined().await;
    let filled = Instant::now();
    assert!(matches!(guest.next().await, ServerMessage::Started { .. }));
    for addr in [other, home] {
        let lobby = lobby_until(addr, filled, |l| {
            listed(&l["active"], &game.id).is_some() && listed(&l["waiting"], &game.id).is_none()
        })
        .await;
        let entry = listed(&lobby["active"], &game.id).unwrap();
        assert_eq!(
            entry["players"],
            serde_json::json!(["ada", "bob"]),
            "{entry}"
        );
        assert_eq!(entry["scores"], serde_json::json!([0, 0]), "{entry}");
    }
}

/// A public game whose players sit on both nodes counts down when its
/// second player joins, and starts by itself: both hear both events.
async fn countdown_across(cluster: &Cluster, home: usize, other: usize) {
    let (home, other) = (cluster.nodes[home].addr, cluster.nodes[other].addr);
    let mut host = client::connect(home).await;
    host.send(&create_public("ada", 4)).await;
    let game = host.joined().await;
    let mut guest = client::connect(other).await;
    guest.send(&join(&game.code.to_lowercase(), "bob")).await;
    let (countdown, left) = client::joined_then_countdown(&mut guest).await;
    assert!(left <= LOBBY_START_MS, "{left}");
    assert!(matches!(
        host.next().await,
        ServerMessage::PlayerJoined { seq: 1, .. }
    ));
    assert_eq!(host.next().await, countdown, "both nodes' players hear it");
    let started = guest.next().await;
    assert!(
        matches!(started, ServerMessage::Started { seq: 3, .. }),
        "{started:?}"
    );
    assert_eq!(host.next().await, started, "both nodes' players hear it");
    let snapshot = http::get_json(other, &format!("/api/games/{}", game.code)).await;
    assert_eq!(snapshot["status"], "active", "{snapshot}");
    assert_eq!(
        snapshot["players"].as_array().map(Vec::len),
        Some(2),
        "{snapshot}"
    );
}

/// `--max-spectators` of the conformance clusters: small, so that the cap
/// across both nodes is reached within the test.
const MAX_SPECTATORS: u32 = 3;

/// A new connection on `addr` watching `game`; its `watching` snapshot.
async fn spectator(addr: SocketAddr, game: &str) -> (Client, GameSnapshot) {
    let mut c = client::connect(addr).await;
    c.send(&client::watch(game)).await;
    let snapshot = c.watching().await;
    (c, snapshot)
}

/// Spectators on both nodes of a game whose players sit on both: each
/// follows the players' board at every seq, the count is one cluster-wide
/// number (snapshots, the lobby of either node, the cap), and a
/// spectator's `capture` and `leave` are answered as on one node.
async fn watch_across(cluster: &Cluster, home: usize, other: usize) {
    let (home, other) = (cluster.nodes[home].addr, cluster.nodes[other].addr);
    let mut host = client::connect(home).await;
    host.send(&create_public("ada", 2)).await;
    let game = host.joined().await;
    let mut guest = client::connect(other).await;
    guest.send(&join(&game.code, "bob")).await;
    guest.joined().await;
    let started = guest.seq() + 1;
    guest.sync_to(started).await;
    host.sync_to(started).await;

    let (mut far, snapshot) = spectator(other, &game.code.to_lowercase()).await;
    assert_eq!((snapshot.seq, snapshot.spectators), (started, 1));
    let (mut near, snapshot) = spectator(home, &game.id).await;
    assert_eq!((snapshot.seq, snapshot.spectators), (started, 2));
    let mut players = [host, guest];
    for cell in 0..6u8 {
        let who = usize::from(cell % 2);
        players[who].send(&client::capture(i64::from(cell))).await;
        let seq = players[who]
            .until(|m| matches!(m, ServerMessage::Captured { .. }))
            .await
            .seq()
            .unwrap();
        players[1 - who].sync_to(seq).await;
        for watcher in [&mut far, &mut near] {
            watcher.sync_to(seq).await;
            let (seen, played) = (watcher.replica.as_ref(), players[0].replica.as_ref());
            testkit::replica::assert_same_game(seen.unwrap(), played.unwrap());
        }
    }
    far.send(&client::capture(40)).await;
    far.error(ErrorCode::NotInGame).await;

    // The cap counts the spectators of both nodes.
    let (third, snapshot) = spectator(other, &game.id).await;
    assert_eq!(snapshot.spectators, MAX_SPECTATORS);
    let mut fourth = client::connect(home).await;
    fourth.send(&client::watch(&game.code)).await;
    fourth.error(ErrorCode::GameFull).await;
    let since = Instant::now();
    for addr in [home, other] {
        lobby_until(addr, since, |l| {
            listed(&l["active"], &game.id).is_some_and(|e| e["spectators"] == 3)
        })
        .await;
    }
    drop(third);
    far.send(&client::LEAVE).await;
    assert_eq!(far.closed().await, Some(1000));
    let since = Instant::now();
    for addr in [home, other] {
        lobby_until(addr, since, |l| {
            listed(&l["active"], &game.id).is_some_and(|e| e["spectators"] == 1)
        })
        .await;
    }
    let snapshot = http::get_json(other, &format!("/api/games/{}", game.id)).await;
    assert_eq!(snapshot["spectators"], 1, "{snapshot}");
}

/// Every §7 conformance check on a pair of nodes, each direction.
async fn conformance(mode: Mode, test: &str) {
    let dir = TestDir::new(test);
    let options = options_with(&[
        "--lobby-start-ms".into(),
        LOBBY_START_MS.to_string(),
        "--max-spectators".into(),
        MAX_SPECTATORS.to_string(),
    ]);
    let Some((cluster, _redis)) = pair(mode, &dir, &options).await else {
        return;
    };
    let checks = async {
        for (home, other) in [(0, 1), (1, 0)] {
            codes_across(&cluster, home, other).await;
            filler_hears_started(&cluster, home, other).await;
            lobby_across(&cluster, home, other).await;
            countdown_across(&cluster, home, other).await;
            watch_across(&cluster, home, other).await;
        }
    };
    if tokio::time::timeout(RACE_LIMIT, checks).await.is_err() {
        panic!(
            "{test} did not finish within {RACE_LIMIT:?}\n{}",
            cluster.log_tails()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_pair_conforms_to_section_7() {
    conformance(Mode::Stateful, "stateful_pair_conforms_to_section_7").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_pair_conforms_to_section_7() {
    conformance(Mode::Stateless, "stateless_pair_conforms_to_section_7").await;
}

/// What one racer got: its seat, and the `started` it heard.
#[derive(Debug)]
struct Seated {
    node: usize,
    game: String,
    seat: u8,
    /// From its `quick_play` to its `joined`.
    to_seat: Duration,
    started: ServerMessage,
    /// Its game as its events built it, after the start.
    replica: GameSnapshot,
}

/// The next message of racer `i`, or what went wrong.
async fn read(client: &mut Client, i: usize, node: usize) -> Result<ServerMessage, String> {
    match client.try_recv(WAIT).await {
        Ok(client::Frame::Message(m)) => Ok(m),
        Ok(other) => Err(format!("racer {i} on node {node}: {other:?}")),
        Err(e) => Err(format!("racer {i} on node {node}: {e}")),
    }
}

/// One racer: waits for the gate, quick plays, reads until `started`.
async fn race_one(
    mut client: Client,
    node: usize,
    i: usize,
    gate: Arc<tokio::sync::Barrier>,
) -> Result<Seated, String> {
    gate.wait().await;
    let asked = Instant::now();
    client
        .try_send(&quick_play(&format!("q{i}"), Some(RACE_SIZE as i64)))
        .await?;
    let game = match read(&mut client, i, node).await? {
        ServerMessage::Joined { game, .. } => game,
        other => {
            return Err(format!(
                "racer {i} on node {node}: expected joined, got {other:?}"
            ));
        }
    };
    let to_seat = asked.elapsed();
    loop {
        match read(&mut client, i, node).await? {
            started @ ServerMessage::Started { .. } => {
                return Ok(Seated {
                    node,
                    game: game.id,
                    seat: client.me(),
                    to_seat,
                    started,
                    replica: client.replica.clone().expect("joined"),
                });
            }
            ServerMessage::PlayerJoined { .. } | ServerMessage::Countdown { .. } => {}
            other => {
                return Err(format!(
                    "racer {i} on node {node} in game {}: unexpected {other:?}",
                    game.id
                ));
            }
        }
    }
}

/// 200 quick plays at once over both nodes: exactly 50 full games, every
/// seat taken once, every player hears its game start.
async fn quick_play_race(mode: Mode, test: &str) {
    let dir = TestDir::new(test);
    // No auto-start during the race: a game starts only because it filled,
    // so a game left half-empty shows as a racer that never hears started.
    let options = options_with(&["--lobby-start-ms".into(), "120000".into()]);
    let Some((cluster, _redis)) = pair(mode, &dir, &options).await else {
        return;
    };
    let began = Instant::now();
    let mut clients = Vec::new();
    for i in 0..RACE_PLAYERS {
        let node = i % 2;
        clients.push((node, client::connect(cluster.nodes[node].addr).await));
    }
    let gate = Arc::new(tokio::sync::Barrier::new(RACE_PLAYERS));
    let racers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (node, c))| tokio::spawn(race_one(c, node, i, gate.clone())))
        .collect();
    let all = async {
        let mut out = Vec::new();
        for r in racers {
            out.push(r.await.expect("a racer panicked"));
        }
        out
    };
    let Ok(outcomes) = tokio::time::timeout(RACE_LIMIT, all).await else {
        panic!(
            "the race did not end within {RACE_LIMIT:?}\n{}",
            cluster.log_tails()
        );
    };
    let raced = began.elapsed();
    let (seated, failed): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    let seated: Vec<Seated> = seated.into_iter().map(Result::unwrap).collect();
    let mut games: BTreeMap<&str, Vec<&Seated>> = BTreeMap::new();
    for s in &seated {
        games.entry(s.game.as_str()).or_default().push(s);
    }
    let sizes: BTreeMap<&str, Vec<u8>> = games
        .iter()
        .map(|(g, ss)| (*g, ss.iter().map(|s| s.seat).collect()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {RACE_PLAYERS} racers failed: {:#?}\nseated by game: {sizes:?}\n{}",
        failed.len(),
        failed
            .iter()
            .map(|f| f.as_ref().unwrap_err())
            .collect::<Vec<_>>(),
        cluster.log_tails()
    );

    let pairs: BTreeSet<(&str, u8)> = seated.iter().map(|s| (s.game.as_str(), s.seat)).collect();
    assert_eq!(
        pairs.len(),
        RACE_PLAYERS,
        "a seat was taken twice: {sizes:?}"
    );
    assert_eq!(
        games.len(),
        RACE_PLAYERS / RACE_SIZE,
        "exactly {} full games: {sizes:?}",
        RACE_PLAYERS / RACE_SIZE
    );
    let all_seats: BTreeSet<u8> = (0..RACE_SIZE as u8).collect();
    for (id, players) in &games {
        let seats: BTreeSet<u8> = players.iter().map(|s| s.seat).collect();
        assert_eq!(seats, all_seats, "game {id}: {sizes:?}");
        let starts: BTreeSet<String> = players.iter().map(|s| format!("{:?}", s.started)).collect();
        assert_eq!(
            starts.len(),
            1,
            "game {id}: its players heard different starts: {starts:?}"
        );
        for s in players {
            let r = &s.replica;
            assert_eq!(r.status, GameStatus::Active, "game {id}: {r:?}");
            assert!(r.public, "quick play makes public games: {r:?}");
            assert_eq!(usize::from(r.max_players), RACE_SIZE, "game {id}");
            assert_eq!(r.players.len(), RACE_SIZE, "game {id} started full: {r:?}");
        }
    }
    let nodes: BTreeSet<usize> = games
        .values()
        .flat_map(|ps| ps.iter().map(|s| s.node))
        .collect();
    assert_eq!(nodes.len(), 2, "players came through both nodes");

    // Every node's lobby agrees: all 50 run, none waits.
    let ids: BTreeSet<&str> = games.keys().copied().collect();
    let settled = Instant::now();
    for node in &cluster.nodes {
        lobby_until(node.addr, settled, |l| {
            let active: BTreeSet<&str> = l["active"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
                .unwrap_or_default();
            let waiting = l["waiting"].as_array().map_or(usize::MAX, Vec::len);
            active == ids && waiting == 0
        })
        .await;
    }
    if mode == Mode::Stateful {
        let counts = cluster.game_counts(&["a", "b"]).await;
        let active: u64 = counts.values().map(|c| c.active).sum();
        let waiting: u64 = counts.values().map(|c| c.waiting).sum();
        assert_eq!((active, waiting), (50, 0), "{counts:?}");
    }
    let mut to_seat: Vec<Duration> = seated.iter().map(|s| s.to_seat).collect();
    to_seat.sort_unstable();
    eprintln!(
        "{test}: {RACE_PLAYERS} racers connected, seated and started in {raced:?}; \
         time to seat p50 {:?}, max {:?}",
        to_seat[to_seat.len() / 2],
        to_seat[to_seat.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stateful_quick_play_race_makes_exactly_50_full_games() {
    quick_play_race(Mode::Stateful, "stateful_quick_play_race").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stateless_quick_play_race_makes_exactly_50_full_games() {
    quick_play_race(Mode::Stateless, "stateless_quick_play_race").await;
}
