//! The stateful cluster (issue 6) with real processes: three `gridcap serve
//! --mode stateful` nodes on loopback, HAProxy or NGINX in front with the
//! configurations of `deploy/`, players on every path (directly on the
//! owner, relayed by another node, through the balancer), node losses and a
//! rolling restart under `gridcap bots`.
//!
//! Logs of every process: `target/system-tests/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use testkit::balancer::available;
use testkit::bots::Bots;
use testkit::client::{Frame, ReadError};
use testkit::player::assert_same_events;
use testkit::{Balancer, BalancerKind, Cluster, NodeOptions, Player, TestDir, http, poll};
use transport::protocol::{ErrorCode, GameStatus, ServerMessage};
use transport::session::CLOSE_INTERNAL;

const IDS: [&str; 3] = ["a", "b", "c"];

/// How soon after a node's death its players must hear `unknown_game`.
const LOSS_NOTICE: Duration = Duration::from_secs(5);

/// One game of four players, created on `creator`, joined through the other
/// URLs, played to its end; returns the players (host first).
async fn play_game(label: &str, creator: &str, joiners: &[String]) -> Vec<Player> {
    let mut host = Player::connect(creator, &format!("{label}-host")).await;
    let game = host.create(1 + joiners.len() as i64, 2_000).await;
    let mut players = vec![host];
    for (i, url) in joiners.iter().enumerate() {
        let mut p = Player::connect(url, &format!("{label}-p{}", i + 1)).await;
        p.join(&game.id).await;
        players.push(p);
    }
    // The last join filled the game, which started by itself.
    for (i, p) in players.iter_mut().enumerate() {
        p.until_started().await;
        // Distinct cells per player, and cell 40 contested by all.
        let i = i as u8;
        let own: Vec<u8> = (0..8).map(|k| i + 4 * k).collect();
        p.capture_all(&own).await;
        p.capture_all(&[40]).await;
    }
    for p in &mut players {
        p.until_game_over().await;
    }
    players
}

/// Players of one game connected through different nodes and through the
/// balancer see the same events in the same order, the game is readable on
/// every node, and games created through the balancer spread over all nodes.
async fn same_events_and_spread(kind: BalancerKind) {
    let test = format!("same_events_and_spread_{kind}");
    if !available(&test, &[kind]) {
        return;
    }
    let dir = TestDir::new(&test);
    let cluster = Cluster::stateful(&dir, &IDS, &NodeOptions::default()).await;
    let balancer = Balancer::start(kind, &dir, &cluster.addrs()).await;
    let url = |i: usize| cluster.nodes[i % 3].ws_url();

    // One game owned by each node; each has a player on the owner, one on
    // each other node (relayed) and one through the balancer.
    let games = [0, 1, 2].map(|i| {
        let label = IDS[i];
        let creator = url(i);
        let joiners = vec![url(i + 1), url(i + 2), balancer.ws_url()];
        async move { play_game(label, &creator, &joiners).await }
    });
    let [ga, gb, gc] = games;
    let (ga, gb, gc) = tokio::join!(ga, gb, gc);

    for players in [&ga, &gb, &gc] {
        let refs: Vec<&Player> = players.iter().collect();
        assert_same_events(&refs);
        let over = players[0].events.values().last().cloned();
        assert!(
            matches!(over, Some(ServerMessage::GameOver { .. })),
            "{over:?}"
        );
        // Every capture attempt was answered by exactly one owner per cell;
        // cell 40 went to exactly one player.
        let cells = players[0].cells();
        assert!(cells[40] != 0, "nobody captured cell 40: {cells:?}");
        let id = players[0].game.clone().unwrap();
        for addr in cluster.addrs().into_iter().chain([balancer.addr]) {
            let snapshot = http::get_json(addr, &format!("/api/games/{id}")).await;
            assert_eq!(snapshot["status"], "completed", "via {addr}: {snapshot}");
            assert_eq!(
                snapshot["seq"],
                players[0].last_seq(),
                "via {addr}: {snapshot}"
            );
            let json_cells: Vec<u8> = serde_json::from_value(snapshot["cells"].clone()).unwrap();
            assert_eq!(json_cells, cells, "game {id} via {addr}");
        }
    }
    // Each game lives on the node it was created on, and only there.
    let counts = cluster.game_counts(&IDS).await;
    for (id, c) in &counts {
        assert_eq!(
            c.total(),
            1,
            "node {id} should hold exactly its own game: {counts:?}"
        );
        assert_eq!(c.completed, 1, "node {id}: {counts:?}");
    }
    drop((ga, gb, gc));

    // 30 games created through the balancer, their hosts staying connected.
    let mut hosts = Vec::new();
    for i in 0..30 {
        let mut host = Player::connect(&balancer.ws_url(), &format!("spread-{i}")).await;
        host.create(4, 30_000).await;
        hosts.push(host);
    }
    let counts = cluster.game_counts(&IDS).await;
    let waiting: BTreeMap<&String, u64> = counts.iter().map(|(id, c)| (id, c.waiting)).collect();
    assert_eq!(waiting.values().sum::<u64>(), 30, "{counts:?}");
    for (id, n) in &waiting {
        assert!(
            *n >= 5,
            "{kind} put only {n} of 30 games on node {id}: {waiting:?}"
        );
    }
    // /api/cluster reports the same spread once the probes have caught up.
    let want: BTreeMap<String, u64> = counts
        .iter()
        .map(|(id, c)| (id.clone(), c.total()))
        .collect();
    let (node, want) = (&cluster.nodes[0], &want);
    poll::until(testkit::WAIT, move || async move {
        let view = node.cluster_view().await;
        let seen: BTreeMap<String, u64> = view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["id"].as_str().unwrap().to_owned(),
                    n["games"].as_u64().unwrap(),
                )
            })
            .collect();
        (seen == *want).then_some(()).ok_or(format!(
            "/api/cluster on a says {seen:?}, the nodes say {want:?}"
        ))
    })
    .await;
    drop(hosts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_events_and_spread_behind_haproxy() {
    same_events_and_spread(BalancerKind::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_events_and_spread_behind_nginx() {
    same_events_and_spread(BalancerKind::Nginx).await;
}

/// How `player`'s connection ended after its game's node died: the close
/// frame's code, `None` for an end without a close frame (a reset, or a
/// peer that vanished). Panics on a hang (nothing within `limit`) and on a
/// message other than the game's own traffic.
async fn close_after_node_loss(player: &mut Player, limit: Duration) -> Option<u16> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match player.recv_within(left).await {
            Ok(Frame::Closed(frame)) => return frame.map(|(code, _)| code),
            Ok(Frame::Message(m @ ServerMessage::Error { .. })) => panic!(
                "{}: an error instead of a close after its node died: {m:?}\n{}",
                player.name,
                player.transcript()
            ),
            Ok(Frame::Message(_) | Frame::Ping) => {}
            Err(ReadError::TimedOut(_)) => panic!(
                "{}: its game's node died, yet nothing happened on its connection for {limit:?}\n{}",
                player.name,
                player.transcript()
            ),
            Err(ReadError::Failed(_)) => return None,
        }
    }
}

/// Resumes `player`'s seat through `url` (a fresh connection) and expects
/// `unknown_game`, retrying a refused connection, all within `deadline`.
async fn expect_unknown_game(player: &mut Player, url: &str, killed_at: Instant) {
    let deadline = killed_at + LOSS_NOTICE;
    let mut attempts = Vec::new();
    loop {
        match player.reconnect(url).await {
            Ok(()) => match player.resume().await {
                Err(ErrorCode::UnknownGame) => {
                    let after = killed_at.elapsed();
                    assert!(
                        after <= LOSS_NOTICE,
                        "{}: unknown_game came {after:?} after the kill",
                        player.name
                    );
                    return;
                }
                Err(code) => attempts.push(format!("error {code:?}")),
                Ok(snapshot) => panic!(
                    "{}: resumed a game whose node was killed: {snapshot:?}\n{}",
                    player.name,
                    player.transcript()
                ),
            },
            Err(e) => attempts.push(format!("connect: {e}")),
        }
        assert!(
            Instant::now() < deadline,
            "{}: no unknown_game within {LOSS_NOTICE:?} of the kill; attempts via {url}: {attempts:?}\n{}",
            player.name,
            player.transcript()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kill -9 one node mid-game: its players get `unknown_game` on resume
/// (through another node and through the balancer) within seconds; the other
/// nodes' games go on to `game_over` — even for a player whose relay ran
/// through the dead node; new games through the balancer avoid it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_only_that_nodes_games() {
    let test = "kill_9_loses_only_that_nodes_games";
    if !available(test, &[BalancerKind::Haproxy]) {
        return;
    }
    let dir = TestDir::new(test);
    let mut cluster = Cluster::stateful(&dir, &IDS, &NodeOptions::default()).await;
    let balancer = Balancer::start(BalancerKind::Haproxy, &dir, &cluster.addrs()).await;
    let (a, b, c) = (
        cluster.nodes[0].ws_url(),
        cluster.nodes[1].ws_url(),
        cluster.nodes[2].ws_url(),
    );
    let lb = balancer.ws_url();

    // gA on a (a player on a, one relayed by b); gB on b (one on b, one
    // relayed by a: its hop dies); gC on c (one on c, one via HAProxy).
    let layout = [("gA", &a, &b), ("gB", &b, &a), ("gC", &c, &lb)];
    let mut games = Vec::new();
    for (label, host_url, guest_url) in layout {
        let mut host = Player::connect(host_url, &format!("{label}-host")).await;
        let game = host.create(2, 6_000).await;
        let mut guest = Player::connect(guest_url, &format!("{label}-guest")).await;
        guest.join(&game.id).await;
        games.push((host, guest));
    }
    // Mid-game: everyone has seen a capture.
    for (host, guest) in &mut games {
        host.until_started().await;
        guest.until_started().await;
        host.capture_all(&[0, 1, 2]).await;
        guest.capture_all(&[78, 79, 80]).await;
        for p in [host, guest] {
            p.until("a capture", |m| matches!(m, ServerMessage::Captured { .. }))
                .await;
        }
    }
    let ga_id = games[0].0.game.clone().unwrap();

    cluster.node_mut("a").kill();
    let killed_at = Instant::now();

    // New games through the balancer go to the living nodes, at once.
    let before = cluster.game_counts(&["b", "c"]).await;
    let mut fresh = Vec::new();
    for i in 0..6 {
        let mut host = Player::connect(&lb, &format!("fresh-{i}")).await;
        host.create(2, 30_000).await;
        fresh.push(host);
    }
    let after = cluster.game_counts(&["b", "c"]).await;
    let added: u64 = IDS[1..]
        .iter()
        .map(|id| after[*id].total() - before[*id].total())
        .sum();
    assert_eq!(
        added, 6,
        "new games went elsewhere: before {before:?}, after {after:?}"
    );
    let mut joiner = Player::connect(&lb, "fresh-joiner").await;
    joiner.join(fresh[0].game.as_deref().unwrap()).await;

    // gA's players: the one on a lost its connection; the one relayed by b
    // must not hang. Both resume elsewhere and hear unknown_game.
    let (mut ga_host, mut ga_guest) = games.remove(0);
    // Its relay (b to a) broke: b closes the player's connection with 1011
    // ("the game's node went away"), which tells the client to resume.
    assert_eq!(
        close_after_node_loss(&mut ga_guest, LOSS_NOTICE).await,
        Some(CLOSE_INTERNAL),
        "gA-guest (relayed by b) after a was killed\n{}",
        ga_guest.transcript()
    );
    // b counts the cut relay (issue 16's relay metrics).
    http::metric_until(cluster.node("b").admin, "gridcap_relays_cut_total", 1.0).await;
    assert_eq!(ga_host.until_closed().await, None);
    expect_unknown_game(&mut ga_host, &b, killed_at).await;
    expect_unknown_game(&mut ga_guest, &lb, killed_at).await;
    let mut stranger = Player::connect(&c, "gA-stranger").await;
    let late_join = transport::protocol::ClientMessage::Join {
        game: ga_id.clone(),
        name: "late".into(),
    };
    stranger
        .refused_with(&late_join, ErrorCode::UnknownGame)
        .await;
    let api = http::get(cluster.node("b").addr, &format!("/api/games/{ga_id}")).await;
    assert_eq!(api.status, 404, "GET a dead node's game on b: {api:?}");

    // gB: its guest was relayed by a; it resumes through c and plays on.
    let (mut gb_host, mut gb_guest) = games.remove(0);
    // A killed process sends no close frame: the connection just ends.
    assert_eq!(
        close_after_node_loss(&mut gb_guest, LOSS_NOTICE).await,
        None,
        "gB-guest (connected to a) after a was killed\n{}",
        gb_guest.transcript()
    );
    gb_guest.reconnect(&c).await.unwrap();
    let snapshot = gb_guest.resume().await.unwrap_or_else(|code| {
        panic!(
            "gB lives on b, yet resuming it through c failed with {code:?}\n{}",
            gb_guest.transcript()
        )
    });
    assert!(matches!(
        snapshot.status,
        GameStatus::Active | GameStatus::Completed
    ));
    let (mut gc_host, mut gc_guest) = games.remove(0);
    let mut overs = Vec::new();
    for p in [&mut gb_host, &mut gb_guest, &mut gc_host, &mut gc_guest] {
        overs.push(p.until_game_over().await);
    }
    assert_eq!(overs[0], overs[1], "gB's players disagree on the end");
    assert_eq!(overs[2], overs[3], "gC's players disagree on the end");
    assert_same_events(&[&gb_host, &gb_guest]);
    assert_same_events(&[&gc_host, &gc_guest]);

    // The survivors see a as down.
    cluster.wait_seen_as(&["b", "c"], "a", "down").await;
    drop((fresh, joiner));
}

/// Rolling restart of every node (SIGTERM, wait for the exit, start again
/// with the same id and port) while `gridcap bots` plays through HAProxy:
/// zero bot errors, and a game running on each node as it is drained ends
/// with `game_over` for its players before they are sent away with 1001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_bots_aborts_no_game() {
    let test = "rolling_restart_under_bots_aborts_no_game";
    if !available(test, &[BalancerKind::Haproxy]) {
        return;
    }
    let dir = TestDir::new(test);
    let options = NodeOptions {
        drain_timeout_ms: 10_000,
        ..NodeOptions::default()
    };
    let mut cluster = Cluster::stateful(&dir, &IDS, &options).await;
    let balancer = Balancer::start(BalancerKind::Haproxy, &dir, &cluster.addrs()).await;
    let lb = balancer.ws_url();
    let run = Duration::from_secs(25);
    let bots = Bots::start(
        &dir,
        "bots",
        &[
            "--url",
            &lb,
            "--games",
            "6",
            // Not 3: HAProxy's leastconn hands the bots' connections to the
            // nodes in turn, so with 3 bots per game every host (the bot that
            // creates, hence places, the game) would land on the same node.
            "--players",
            "4",
            "--rate",
            "4",
            "--duration",
            "25s",
            "--game-duration",
            "2s",
            "--ramp-up",
            "1s",
            "--seed",
            "7",
        ],
        run,
    );

    // Wait until the bots are playing on every node (their games spread).
    cluster
        .wait_games_everywhere(&IDS, |c| c.active > 0, || bots.log_tail())
        .await;

    for id in IDS {
        let node_url = cluster.node(id).ws_url();
        let addr = cluster.node(id).addr;
        // A game of our own on this node, active when the drain starts.
        let mut o0 = Player::connect(&node_url, &format!("observer-{id}-0")).await;
        let game = o0.create(2, 2_000).await;
        let mut o1 = Player::connect(&lb, &format!("observer-{id}-1")).await;
        o1.join(&game.id).await;
        o0.until_started().await;
        o0.capture_all(&[10, 11]).await;

        cluster.node_mut(id).terminate();
        for p in [&mut o0, &mut o1] {
            p.until_game_over().await;
        }
        assert_eq!(o0.until_closed().await, Some(1001), "{}", o0.transcript());
        assert_same_events(&[&o0, &o1]);
        let status = cluster
            .node_mut(id)
            .wait_exit(Duration::from_millis(options.drain_timeout_ms + 10_000))
            .await;
        assert_eq!(status.code(), Some(0), "node {id} after SIGTERM: {status}");
        assert!(http::try_get(addr, "/readyz").await.is_err());

        cluster.node_mut(id).restart().await;
        let others: Vec<&str> = IDS.iter().copied().filter(|o| *o != id).collect();
        cluster.wait_seen_as(&others, id, "ready").await;
        balancer.wait_haproxy_state(id, "UP").await;
    }

    let report = bots.finish().await;
    report.assert_clean_through_restarts(&dir.join("bots.json"));
}
