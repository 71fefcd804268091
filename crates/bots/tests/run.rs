//! Short bot runs against a real server started in this process.

// Helpers outside #[test] fns are test code too: a failed set-up should panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Server, n};
use gridcap::config::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_reports_consistent_counts() {
    let server = Server::start("healthy", ServeOptions::default()).await;
    let url = server.ws_url();
    let flags = format!(
        "--url {url} --games 4 --players 4 --rate 20 --duration 3s --game-duration 1000ms --ramp-up 200ms --max-p99-ms 10000"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0, "{r:#}");

    let numbers = "connections games_completed captures rejected errors disconnects \
                   deliveries_per_sec attempts answered";
    for key in numbers.split_whitespace() {
        assert!(r[key].is_number(), "{key} in {r:#}");
    }
    for kind in ["connect", "capture", "fanout"] {
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(r["latency_us"][kind][p].is_u64(), "latency_us.{kind}.{p}");
        }
    }

    // A healthy server: no errors, no disconnects, every attempt answered.
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert_eq!(n(&r, "disconnects"), 0, "{r:#}");
    assert_eq!(n(&r, "connections"), 16);
    let (captures, rejected) = (n(&r, "captures"), n(&r, "rejected"));
    assert_eq!(captures + rejected, n(&r, "answered"), "{r:#}");
    assert_eq!(n(&r, "attempts"), n(&r, "answered"), "{r:#}");
    assert!(captures > 0, "{r:#}");
    assert!(n(&r, "games_completed") > 0, "{r:#}");

    // Every answer has a capture latency; every bot's first seat a connect latency.
    let lat = &r["latency_us"];
    assert_eq!(lat["capture"]["count"].as_u64(), Some(n(&r, "answered")));
    assert_eq!(lat["connect"]["count"].as_u64(), Some(16));
    // Each capture reaches the 3 other bots of its game, except the few
    // that were still in flight when bots closed at the stop.
    let fanout = lat["fanout"]["count"].as_u64().unwrap();
    assert!(fanout > 0);
    assert!(fanout <= 3 * captures, "{fanout} > 3 x {captures}");
    assert!(
        fanout * 10 >= 3 * captures * 9,
        "{fanout} << 3 x {captures}"
    );
    let deliveries = n(&r, "deliveries");
    assert!(deliveries <= 4 * captures && deliveries * 10 >= 4 * captures * 9);
    assert!(r["deliveries_per_sec"].as_f64().unwrap() > 0.0);
    assert!(lat["fanout"]["p50"].as_u64().unwrap() <= lat["fanout"]["max"].as_u64().unwrap());

    // Create/join bots time their way in too: every bot's first seat, and
    // the start of every game they saw begin.
    assert!(n(&r, "seats") >= 16, "{r:#}");
    assert_eq!(lat["seat"]["count"].as_u64(), Some(n(&r, "seats")));
    assert!(n(&r, "games_started") >= n(&r, "games_completed"), "{r:#}");
    assert!(lat["start"]["count"].as_u64().unwrap() >= 16, "{r:#}");
    assert_sane_percentiles(&r, "seat");
    assert_sane_percentiles(&r, "start");
}

/// `latency_us.<kind>` has samples, ordered percentiles, and a max below
/// 10 s (every run here is a few seconds on an idle loopback server).
fn assert_sane_percentiles(r: &serde_json::Value, kind: &str) {
    let l = &r["latency_us"][kind];
    let p: Vec<u64> = ["p50", "p90", "p99", "max"]
        .iter()
        .map(|q| {
            l[q].as_u64()
                .unwrap_or_else(|| panic!("{kind}.{q} in {r:#}"))
        })
        .collect();
    assert!(l["count"].as_u64().unwrap() > 0, "{kind}: {r:#}");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{kind}: {p:?}");
    assert!(p[0] > 0, "{kind}: a round trip takes some time: {p:?}");
    assert!(p[3] < 10_000_000, "{kind}: {p:?}");
}

/// `--fill-gap`: guests trickle into each game (seat s joins s gaps after
/// the host created it), and every game still fills and starts by itself:
/// no game starts before its last guest was due, none is started early by
/// its host, and nobody sees an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_fills_trickle_in_and_still_fill_every_game() {
    let server = Server::start("slow-fill", ServeOptions::default()).await;
    let url = server.ws_url();
    let flags = format!(
        "--url {url} --games 2 --players 3 --rate 5 --duration 2500ms --game-duration 1000ms --fill-gap 300ms --ramp-up 100ms"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["settings"]["fill_gap_ms"], 300, "{r:#}");
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert!(n(&r, "games_completed") > 0, "{r:#}");
    // Each bot times the start from its own create or join: the host's
    // covers two gaps (seat 2 was due then), seat 1's one gap; so the
    // slowest start is two gaps or more, and the median one or more.
    let start = &r["latency_us"]["start"];
    let (p50, max) = (
        start["p50"].as_u64().unwrap(),
        start["max"].as_u64().unwrap(),
    );
    assert!(
        max >= 600_000,
        "a game started before its last guest was due: {start}"
    );
    assert!(p50 >= 300_000, "guests did not trickle in: {start}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_play_bots_fill_and_start_every_game() {
    // No game can start by the lobby timer within the run: every start
    // below comes from a game filling up.
    let options = ServeOptions {
        lobby_start_ms: Some(600_000),
        ..Default::default()
    };
    let server = Server::start("quick-play", options).await;
    let url = server.ws_url();
    let flags = format!(
        "--url {url} --quick-play --games 4 --players 4 --rate 10 --duration 1500ms --ramp-up 200ms"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["settings"]["quick_play"], true, "{r:#}");
    assert!(r["settings"]["game_duration_ms"].is_null(), "{r:#}");
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert_eq!(n(&r, "disconnects"), 0, "{r:#}");
    assert_eq!(n(&r, "connections"), 16, "{r:#}");
    // Every bot seated once; four games started, each counted by its one
    // host: 16 seats in games of at most 4 means all four were full.
    assert_eq!(n(&r, "seats"), 16, "{r:#}");
    assert_eq!(n(&r, "games_started"), 4, "{r:#}");
    assert_eq!(n(&r, "games_completed"), 0, "30 s rounds outlast the run");
    let lat = &r["latency_us"];
    assert_eq!(lat["seat"]["count"].as_u64(), Some(16), "{r:#}");
    assert_eq!(
        lat["start"]["count"].as_u64(),
        Some(16),
        "every bot saw its game start"
    );
    assert_sane_percentiles(&r, "seat");
    assert_sane_percentiles(&r, "start");
    // Each bot's start comes after its seat, so every percentile does too.
    for q in ["p50", "p90", "p99", "max"] {
        assert!(
            lat["start"][q].as_u64() >= lat["seat"][q].as_u64(),
            "{q}: {r:#}"
        );
    }
    // The bots of one game found one another (one round per game id): their
    // captures fan out to the three others.
    let captures = n(&r, "captures");
    assert!(captures > 0, "{r:#}");
    assert_eq!(n(&r, "attempts"), n(&r, "answered"), "{r:#}");
    let fanout = lat["fanout"]["count"].as_u64().unwrap();
    assert!(
        fanout <= 3 * captures && fanout * 10 >= 3 * captures * 9,
        "{r:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_play_bots_queue_again_after_each_game() {
    // Rounds of 1 s (quick play takes the server's default, clamped to its
    // maximum), so a 2.6 s run holds at least two rounds per bot.
    let options = ServeOptions {
        lobby_start_ms: Some(600_000),
        max_duration_ms: Some(1_000),
        ..Default::default()
    };
    let server = Server::start("quick-play-again", options).await;
    let url = server.ws_url();
    let flags = format!(
        "--url {url} --quick-play --games 2 --players 3 --rate 5 --duration 2600ms --ramp-up 0s"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert_eq!(n(&r, "connections"), 6, "one connection per bot: {r:#}");
    assert!(n(&r, "games_completed") >= 2, "{r:#}");
    assert!(n(&r, "seats") >= 12, "{r:#}");
    assert!(n(&r, "games_started") >= 4, "{r:#}");
    // Games of 3 fill with 3 bots, so starts never outrun seats / 3.
    assert!(3 * n(&r, "games_started") <= n(&r, "seats"), "{r:#}");
    assert_eq!(
        r["latency_us"]["seat"]["count"].as_u64(),
        Some(n(&r, "seats"))
    );
}

#[tokio::test]
async fn contradictory_quick_play_options_are_refused_before_connecting() {
    // Port 9 is never reached: the options are refused first.
    for extra in ["--idle", "--game-duration 5s"] {
        let argv = format!("bots --url ws://127.0.0.1:9/ws --quick-play {extra}");
        let args = common::parse_bots_args(&argv);
        let err = bots::run(args).await.unwrap_err().to_string();
        assert!(err.contains("--quick-play"), "{extra}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_bots_take_seats_and_send_nothing_more() {
    let server = Server::start("idle", ServeOptions::default()).await;
    let url = server.ws_url();
    let flags = format!("--url {url} --idle --games 2 --players 3 --duration 1s --ramp-up 0s");
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0);
    assert_eq!(n(&r, "connections"), 6, "{r:#}");
    assert_eq!(n(&r, "joins"), 6, "{r:#}");
    assert_eq!(n(&r, "open_at_stop"), 6, "{r:#}");
    assert_eq!(n(&r, "attempts"), 0);
    assert_eq!(n(&r, "games_completed"), 0);
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    // One create or join per bot, nothing else.
    assert_eq!(n(&r, "messages_out"), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_bots_answer_pings_and_outlive_the_idle_timeout() {
    // Pings every 200 ms, and a connection that sends nothing for 600 ms is
    // closed: only the pongs keep these idle bots connected for 2 s.
    let server = Server::start(
        "pings",
        ServeOptions {
            ping_interval_ms: Some(200),
            idle_timeout_ms: Some(600),
            ..Default::default()
        },
    )
    .await;
    let url = server.ws_url();
    let flags = format!("--url {url} --idle --games 1 --players 2 --duration 2s --ramp-up 0s");
    let (_, r) = server.run_bots(&flags).await;
    assert_eq!(n(&r, "disconnects"), 0, "{r:#}");
    assert_eq!(n(&r, "connections"), 2, "{r:#}");
    assert_eq!(n(&r, "open_at_stop"), 2, "{r:#}");
}

/// A TCP proxy in front of the server that cuts every connection once,
/// after `cut_after` bytes came back from the server in total.
async fn cutting_proxy(upstream: SocketAddr, cut_after: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let bytes = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                continue;
            };
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            let (links2, bytes, cut) = (links.clone(), bytes.clone(), cut.clone());
            let link = tokio::spawn(async move {
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    let mut buf = [0u8; 4096];
                    loop {
                        let got = sr.read(&mut buf).await.unwrap_or(0);
                        if got == 0 || cw.write_all(&buf[..got]).await.is_err() {
                            break;
                        }
                        let total = bytes.fetch_add(got as u64, Ordering::Relaxed) + got as u64;
                        if total >= cut_after && !cut.swap(true, Ordering::Relaxed) {
                            for l in links2.lock().await.drain(..) {
                                l.abort();
                            }
                            break;
                        }
                    }
                };
                tokio::select! { _ = up => {}, () = down => {} }
            });
            links.lock().await.push(link);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_resume_their_seats_after_a_disconnect() {
    let server = Server::start("resume", ServeOptions::default()).await;
    // Cut once the games are well under way (joins and snapshots are ~3 KB).
    let proxy = cutting_proxy(server.addr, 12_000).await;
    let url = format!("ws://{proxy}/ws");
    let flags = format!(
        "--url {url} --games 2 --players 3 --rate 10 --duration 3s --game-duration 2000ms --ramp-up 0s"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0);
    assert_eq!(
        n(&r, "disconnects"),
        6,
        "every connection was cut once: {r:#}"
    );
    assert_eq!(n(&r, "connections"), 12, "and made again: {r:#}");
    // Each reconnect took its seat back (resume) or, if the game had ended,
    // went on to the next game; a refused resume would show as bad_token.
    assert!(n(&r, "joins") >= 12, "{r:#}");
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert_eq!(
        n(&r, "captures") + n(&r, "rejected"),
        n(&r, "answered"),
        "{r:#}"
    );
    assert!(n(&r, "captures") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectator_bots_watch_every_game_and_are_counted_apart() {
    let server = Server::start("spectators", ServeOptions::default()).await;
    let url = server.ws_url();
    let flags = format!(
        "--url {url} --games 3 --players 2 --spectators 4 --rate 20 --duration 3s --game-duration 1000ms --ramp-up 200ms"
    );
    let (code, r) = server.run_bots(&flags).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(n(&r, "errors"), 0, "{r:#}");
    assert_eq!(n(&r, "bots"), 6, "players only: {r:#}");
    assert_eq!(n(&r, "connections"), 6 + 12, "{r:#}");
    // Every spectator watched each game its slot played (one `watching`
    // per round, none for gaps on a healthy server).
    assert!(
        n(&r, "watches") >= 12 * n(&r, "games_completed") / 3,
        "{r:#}"
    );
    // Each capture reaches the 4 spectators of its game, except the few in
    // flight at the stop.
    let (captures, watched) = (n(&r, "captures"), n(&r, "spectator_deliveries"));
    assert!(captures > 0, "{r:#}");
    assert!(watched <= 4 * captures, "{watched} > 4 x {captures}");
    assert!(
        watched * 10 >= 4 * captures * 9,
        "{watched} << 4 x {captures}"
    );
    let latency = &r["latency_us"]["spectator_fanout"];
    assert_eq!(latency["count"].as_u64(), Some(watched), "{r:#}");
    assert_sane_percentiles(&r, "spectator_fanout");
}

#[tokio::test]
async fn spectators_with_quick_play_or_idle_are_refused_before_connecting() {
    for extra in ["--quick-play", "--idle"] {
        let argv = format!("bots --url ws://127.0.0.1:9/ws --spectators 2 {extra}");
        let args = common::parse_bots_args(&argv);
        let err = bots::run(args).await.unwrap_err().to_string();
        assert!(err.contains("--spectators"), "{extra}: {err}");
    }
}
