//! Rolling restarts that cut no round (issue 17), with real processes
//! behind HAProxy: a drained stateful node moves its waiting games to a
//! ready peer (their players resume there, their links keep leading there)
//! and lets only rounds already running finish; a drained stateless node
//! sends its players to the other nodes as soon as the balancer has noticed.
//!
//! Logs of every process: `target/system-tests/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use testkit::balancer::available;
use testkit::bots::{Bots, BotsReport};
use testkit::player::assert_same_events;
use testkit::redis::{Redis, RedisServer, redis_available};
use testkit::{Balancer, BalancerKind, Cluster, NodeOptions, Player, TestDir, http};
use transport::protocol::{GameSnapshot, GameStatus};

/// Round length and drain timeout of the restart tests: with rounds as long
/// as the drain timeout, a round that started during a drain would be cut.
const ROUND_MS: u64 = 5_000;

/// Games the bots play at once.
const BOT_GAMES: u64 = 6;

/// What a node logs when its drain timeout cuts rounds still running.
const CUT: &str = "drain timeout: closing sessions of games still running";

/// `gridcap bots` through `lb` for `run`: four players per game who arrive
/// a second apart, rounds of [`ROUND_MS`].
fn slow_filling_bots(dir: &TestDir, lb: &str, run: Duration) -> Bots {
    let duration = format!("{}s", run.as_secs());
    let games = BOT_GAMES.to_string();
    let round = format!("{ROUND_MS}ms");
    Bots::start(
        dir,
        "bots",
        &[
            "--url",
            lb,
            "--games",
            &games,
            "--players",
            "4",
            "--rate",
            "2",
            "--duration",
            &duration,
            "--game-duration",
            &round,
            "--fill-gap",
            "1s",
            "--ramp-up",
            "1s",
            "--seed",
            "17",
        ],
        run,
    )
}

/// The bots saw no error, played games, were moved (disconnected) by the
/// restarts, and every game they started ended with `game_over` but those
/// still running when the run stopped (one per game slot at most).
fn assert_bots_lost_nothing(report: &BotsReport, dir: &TestDir) {
    report.assert_clean_through_restarts(&dir.join("bots.json"));
    assert!(
        report.games_started <= report.games_completed + BOT_GAMES,
        "started games that never ended: {report:?}"
    );
}

/// Prints how long a rolling restart took, node by node: SIGTERM to exit,
/// then start to UP at the balancer (docs/benchmarks.md quotes it; nothing
/// is asserted on it, and the test's own checks between are not counted).
fn report_timing(mode: &str, nodes: &[(&str, Duration, Duration)]) {
    let total: Duration = nodes.iter().map(|(_, drain, back)| *drain + *back).sum();
    let each: Vec<String> = nodes
        .iter()
        .map(|(id, drain, back)| {
            let (drain, back) = (drain.as_secs_f64(), back.as_secs_f64());
            format!("{id} {drain:.1} s + {back:.1} s")
        })
        .collect();
    eprintln!(
        "rolling restart ({mode}): {:.1} s in all (drain + back up): {}",
        total.as_secs_f64(),
        each.join(", ")
    );
}

/// `player`, sent away by a drain, resumes its seat through `url`.
async fn resume_through(player: &mut Player, url: &str) -> GameSnapshot {
    player.reconnect(url).await.unwrap();
    player.resume().await.unwrap_or_else(|code| {
        panic!(
            "{}: resuming through {url} failed with {code:?}\n{}",
            player.name,
            player.transcript()
        )
    })
}

/// Hosts create waiting games on node b, b is drained and stops: the hosts
/// are sent away with 1001 and find their games through the balancer, the
/// same games (id, code, seat); guests who come after b has stopped join
/// them through node a by their links (id, or code); every game fills,
/// starts and ends with `game_over` for both players. Once b is back, the
/// links lead there through b too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_stateful_nodes_waiting_games_fill_on_its_peer() {
    let test = "a_drained_stateful_nodes_waiting_games_fill_on_its_peer";
    if !available(test, &[BalancerKind::Haproxy]) {
        return;
    }
    let dir = TestDir::new(test);
    let mut cluster = Cluster::stateful(&dir, &["a", "b"], &NodeOptions::default()).await;
    let balancer = Balancer::start(BalancerKind::Haproxy, &dir, &cluster.addrs()).await;
    let (a, b, lb) = (
        cluster.node("a").ws_url(),
        cluster.node("b").ws_url(),
        balancer.ws_url(),
    );

    let mut hosts = Vec::new();
    let mut games = Vec::new();
    for i in 0..3 {
        let mut host = Player::connect(&b, &format!("host-{i}")).await;
        games.push(host.create(2, 1_000).await);
        hosts.push(host);
    }
    assert_eq!(cluster.node("b").game_counts().await.waiting, 3);

    cluster.node_mut("b").terminate();
    for host in &mut hosts {
        assert_eq!(
            host.until_closed().await,
            Some(1001),
            "{}",
            host.transcript()
        );
    }
    let status = cluster.node_mut("b").wait_exit(testkit::WAIT).await;
    assert_eq!(status.code(), Some(0), "b after SIGTERM: {status}");
    let logs = cluster.node("b").logs();
    assert_eq!(logs.matches("moved a waiting game").count(), 3, "{logs}");

    for (host, game) in hosts.iter_mut().zip(&games) {
        let snap = resume_through(host, &lb).await;
        assert_eq!(
            (&snap.id, &snap.code, snap.status, snap.host),
            (&game.id, &game.code, GameStatus::Waiting, game.host)
        );
    }
    let mut guests = Vec::new();
    for (i, game) in games.iter().enumerate() {
        let mut guest = Player::connect(&a, &format!("guest-{i}")).await;
        guest.join(if i == 0 { &game.code } else { &game.id }).await;
        guests.push(guest);
    }
    for (host, guest) in hosts.iter_mut().zip(&mut guests) {
        host.until_started().await;
        guest.until_started().await;
        let over = host.until_game_over().await;
        assert_eq!(guest.until_game_over().await, over);
        assert_same_events(&[host, guest]);
    }

    cluster.node_mut("b").restart().await;
    for game in &games {
        let via_b = http::get(cluster.node("b").addr, &format!("/api/games/{}", game.code)).await;
        assert_eq!(
            via_b.status, 200,
            "game {} through the restarted b: {via_b:?}",
            game.id
        );
    }
}

/// Three stateful nodes restarted in turn (SIGTERM, exit, start again)
/// under bots whose games fill slowly, with rounds as long as the drain
/// timeout: no node cuts a round, the bots see no error, every game they
/// started ends, and a game of our own, waiting on each node as it drains,
/// moves, fills and ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_rolling_restart_with_slow_fills_cuts_no_round() {
    let test = "a_stateful_rolling_restart_with_slow_fills_cuts_no_round";
    if !available(test, &[BalancerKind::Haproxy]) {
        return;
    }
    let ids = ["a", "b", "c"];
    let dir = TestDir::new(test);
    let options = NodeOptions {
        drain_timeout_ms: ROUND_MS,
        ..NodeOptions::default()
    };
    let mut cluster = Cluster::stateful(&dir, &ids, &options).await;
    let balancer = Balancer::start(BalancerKind::Haproxy, &dir, &cluster.addrs()).await;
    let lb = balancer.ws_url();
    let bots = slow_filling_bots(&dir, &lb, Duration::from_secs(45));
    cluster
        .wait_games_everywhere(&ids, |c| c.total() > 0, || bots.log_tail())
        .await;

    let mut timings = Vec::new();
    for id in ids {
        let mut host = Player::connect(&cluster.node(id).ws_url(), &format!("host-{id}")).await;
        let game = host.create(2, 1_000).await;
        let drain_started = Instant::now();
        cluster.node_mut(id).terminate();
        assert_eq!(
            host.until_closed().await,
            Some(1001),
            "{}",
            host.transcript()
        );
        let snap = resume_through(&mut host, &lb).await;
        assert_eq!((&snap.id, snap.status), (&game.id, GameStatus::Waiting));
        let mut guest = Player::connect(&lb, &format!("guest-{id}")).await;
        guest.join(&game.id).await;

        let limit = Duration::from_millis(ROUND_MS) + testkit::WAIT;
        let status = cluster.node_mut(id).wait_exit(limit).await;
        let drain = drain_started.elapsed();
        assert_eq!(status.code(), Some(0), "node {id} after SIGTERM: {status}");
        let logs = cluster.node(id).logs();
        assert!(!logs.contains(CUT), "node {id} cut a round:\n{logs}");
        assert!(logs.contains("moved a waiting game"), "node {id}:\n{logs}");
        let over = host.until_game_over().await;
        assert_eq!(guest.until_game_over().await, over);

        let restarted = Instant::now();
        cluster.node_mut(id).restart().await;
        let others: Vec<&str> = ids.iter().copied().filter(|o| *o != id).collect();
        cluster.wait_seen_as(&others, id, "ready").await;
        balancer.wait_haproxy_state(id, "UP").await;
        timings.push((id, drain, restarted.elapsed()));
    }
    report_timing("stateful, 3 nodes", &timings);
    assert_bots_lost_nothing(&bots.finish().await, &dir);
}

/// Two stateless nodes and Redis restarted in turn under the same bots:
/// each drain takes less than 5 s (the notice, then 1001 to every session,
/// mid-round), a round running on the drained node goes on elsewhere with
/// nothing lost, and the bots see no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_rolling_restart_takes_seconds_and_loses_nothing() {
    let test = "a_stateless_rolling_restart_takes_seconds_and_loses_nothing";
    if !available(test, &[BalancerKind::Haproxy]) || !redis_available() {
        return;
    }
    let ids = ["a", "b"];
    let dir = TestDir::new(test);
    let redis = RedisServer::start().await;
    let options = NodeOptions {
        drain_timeout_ms: ROUND_MS,
        // HAProxy checks every 200 ms here, two failures mark a node down.
        extra: vec!["--drain-notice-ms".into(), "1500".into()],
        ..NodeOptions::default()
    };
    let mut cluster = Cluster::stateless(&dir, &ids, &Redis::Single(redis.url()), &options).await;
    // deploy/'s HAProxy names three nodes: the third is a port nobody
    // listens on (down), so that a handshake the draining node refuses is
    // retried on the other node, as with three nodes (repeating a node in
    // the third slot would send the retries back to the draining one).
    let mut backends = cluster.addrs();
    backends.extend(testkit::ports::free_addrs(1));
    let balancer = Balancer::start(BalancerKind::Haproxy, &dir, &backends).await;
    let lb = balancer.ws_url();
    let bots = slow_filling_bots(&dir, &lb, Duration::from_secs(30));
    cluster
        .wait_games_everywhere(&ids, |c| c.total() > 0, || bots.log_tail())
        .await;

    let mut timings = Vec::new();
    for id in ids {
        let mut o0 = Player::connect(&cluster.node(id).ws_url(), &format!("o0-{id}")).await;
        let game = o0.create(2, ROUND_MS as i64).await;
        let mut o1 = Player::connect(&lb, &format!("o1-{id}")).await;
        o1.join(&game.id).await;
        o0.until_started().await;
        o0.capture_all(&[10, 11]).await;

        let drain_started = Instant::now();
        cluster.node_mut(id).terminate();
        assert_eq!(o0.until_closed().await, Some(1001), "{}", o0.transcript());
        let status = cluster.node_mut(id).wait_exit(testkit::WAIT).await;
        let drain = drain_started.elapsed();
        assert_eq!(status.code(), Some(0), "node {id} after SIGTERM: {status}");
        assert!(
            drain < Duration::from_secs(5),
            "node {id} drained in {drain:?}"
        );

        let snap = resume_through(&mut o0, &lb).await;
        assert_eq!(snap.id, game.id);
        let over = o0.until_game_over().await;
        assert_eq!(o1.until_game_over().await, over);
        assert_same_events(&[&o0, &o1]);

        let restarted = Instant::now();
        cluster.node_mut(id).restart().await;
        balancer.wait_haproxy_state(id, "UP").await;
        timings.push((id, drain, restarted.elapsed()));
    }
    report_timing("stateless, 2 nodes", &timings);
    assert_bots_lost_nothing(&bots.finish().await, &dir);
}
