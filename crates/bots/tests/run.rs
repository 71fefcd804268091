//! Short bot runs against a real server started in this process.

// Helpers outside #[test] fns are test code too: a failed set-up should panic.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bots::BotArgs;
use clap::Parser;
use gridcap::config::ServeOptions;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: BotArgs,
}

/// A server on 127.0.0.1:0 with default settings; stops when dropped.
struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start_server() -> Server {
    start_server_with(ServeOptions::default()).await
}

async fn start_server_with(options: ServeOptions) -> Server {
    let config = options.resolve().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(gridcap::server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

fn json_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridcap-bots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `gridcap bots` with `flags` plus `--json`, returns (exit code, JSON).
async fn run_bots(flags: &[&str], name: &str) -> (i32, Value) {
    let path = json_path(name);
    let path_text = path.to_string_lossy().into_owned();
    let mut argv = vec!["bots", "--quiet", "--json", &path_text];
    argv.extend_from_slice(flags);
    let args = Cli::try_parse_from(argv).unwrap().args;
    let code = bots::run(args).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (code, serde_json::from_str(&text).unwrap())
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_reports_consistent_counts() {
    let server = start_server().await;
    let url = format!("ws://{}/ws", server.addr);
    let flags = [
        "--url",
        &url,
        "--games",
        "4",
        "--players",
        "4",
        "--rate",
        "20",
        "--duration",
        "3s",
        "--game-duration",
        "1000ms",
        "--ramp-up",
        "200ms",
        "--max-p99-ms",
        "10000",
    ];
    let (code, r) = run_bots(&flags, "healthy.json").await;
    assert_eq!(code, 0, "{r:#}");

    for key in [
        "connections",
        "games_completed",
        "captures",
        "rejected",
        "errors",
        "disconnects",
        "deliveries_per_sec",
        "attempts",
        "answered",
    ] {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_bots_take_seats_and_send_nothing_more() {
    let server = start_server().await;
    let url = format!("ws://{}/ws", server.addr);
    let flags = [
        "--url",
        &url,
        "--idle",
        "--games",
        "2",
        "--players",
        "3",
        "--duration",
        "1s",
        "--ramp-up",
        "0s",
    ];
    let (code, r) = run_bots(&flags, "idle.json").await;
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
    let server = start_server_with(ServeOptions {
        ping_interval_ms: Some(200),
        idle_timeout_ms: Some(600),
        ..Default::default()
    })
    .await;
    let url = format!("ws://{}/ws", server.addr);
    let flags = [
        "--url",
        &url,
        "--idle",
        "--games",
        "1",
        "--players",
        "2",
        "--duration",
        "2s",
        "--ramp-up",
        "0s",
    ];
    let (_, r) = run_bots(&flags, "pings.json").await;
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
    let server = start_server().await;
    // Cut once the games are well under way (joins and snapshots are ~3 KB).
    let proxy = cutting_proxy(server.addr, 12_000).await;
    let url = format!("ws://{proxy}/ws");
    let flags = [
        "--url",
        &url,
        "--games",
        "2",
        "--players",
        "3",
        "--rate",
        "10",
        "--duration",
        "3s",
        "--game-duration",
        "2000ms",
        "--ramp-up",
        "0s",
    ];
    let (code, r) = run_bots(&flags, "resume.json").await;
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
