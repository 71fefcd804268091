//! `gridcap-attack`: the load tool of `scripts/bench/attacks.sh`, which
//! measures issue 18's attacks on a real node (docs/benchmarks.md,
//! "Attacks"). The system tests of `tests/tests/attacks.rs` assert generous
//! bounds on the same attacks; this tool reports the real figures.
//!
//! Three subcommands, each printing one pretty JSON report on stdout:
//!
//! - `flood`: the game-table flood, connect → `create` → drop, N rounds on
//!   C concurrent connections from one source address (or a few);
//! - `honest`: what an honest player sees meanwhile: a two-player game
//!   capturing at a steady rate (capture round trips), and an honest
//!   `create` per second from a third address;
//! - `hammer`: K clients GET admin routes (`/api/node`, `/metrics`) in a
//!   loop.
//!
//! Every wait is bounded (testkit's `WAIT`); a failed connection is counted,
//! not fatal. Percentiles come from hdrhistogram (µs, 3 significant digits).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use testkit::client::{Client, Frame, capture, create, handshake_from, join, ws_request};
use testkit::{WAIT, http};
use tokio::signal::unix::{SignalKind, signal};
use transport::protocol::ServerMessage;

/// Load for issue 18's attacks on a gridcap node (one JSON report on stdout).
#[derive(Debug, Parser)]
#[command(name = "gridcap-attack", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The game-table flood: connect, `create` a two-seat game, drop the
    /// connection; ROUNDS times on CONCURRENCY connections at once.
    Flood(FloodArgs),
    /// An honest two-player game capturing at RATE/s (round trips), plus
    /// one honest `create` per second from another address; runs SECONDS
    /// or until SIGTERM/SIGINT, then reports.
    Honest(HonestArgs),
    /// CLIENTS clients GET PATHS (client i asks path i mod the list) in a
    /// loop for SECONDS, one request per connection.
    Hammer(HammerArgs),
}

#[derive(Debug, Args)]
struct FloodArgs {
    /// The node's game listener.
    #[arg(long, default_value = "127.0.0.1:28731")]
    addr: SocketAddr,
    /// The attacker's (first) loopback source address.
    #[arg(long, default_value = "127.0.0.1")]
    source: Ipv4Addr,
    /// Spread the connections over this many consecutive source addresses
    /// (each has its own ~28k ephemeral ports for TIME_WAIT).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Create-and-drop rounds in all.
    #[arg(long, default_value_t = 100_000)]
    rounds: usize,
    /// Connections at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

#[derive(Debug, Args)]
struct HonestArgs {
    /// The node's game listener.
    #[arg(long, default_value = "127.0.0.1:28731")]
    addr: SocketAddr,
    /// The two players' source address.
    #[arg(long, default_value = "127.0.0.2")]
    source: Ipv4Addr,
    /// The honest creator's source address (one `create` a second).
    #[arg(long, default_value = "127.0.0.3")]
    creator_source: Ipv4Addr,
    /// Captures per second by the host (keep it under the node's
    /// --rate-limit, 20 by default).
    #[arg(long, default_value_t = 15.0)]
    rate: f64,
    /// Longest run, in seconds (SIGTERM or SIGINT ends it sooner).
    #[arg(long, default_value_t = 600.0)]
    seconds: f64,
}

#[derive(Debug, Args)]
struct HammerArgs {
    /// The node's admin listener.
    #[arg(long, default_value = "127.0.0.1:29731")]
    addr: SocketAddr,
    /// Paths to request, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "/api/node,/metrics")]
    paths: Vec<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

/// What `create`s were answered: `joined`, an error code, or no answer.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    refused: BTreeMap<String, u64>,
    failed: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn count(&mut self, outcome: Result<Result<(), String>>) {
        match outcome {
            Ok(Ok(())) => self.ok += 1,
            Ok(Err(code)) => *self.refused.entry(code).or_default() += 1,
            Err(e) => {
                self.failed += 1;
                self.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        for (code, n) in other.refused {
            *self.refused.entry(code).or_default() += n;
        }
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn json(&self) -> Value {
        json!({
            "ok": self.ok,
            "refused": self.refused,
            "refused_total": self.refused.values().sum::<u64>(),
            "failed": self.failed,
            "first_failure": self.first_failure,
        })
    }
}

/// A latency histogram, 1 µs to 60 s.
fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn record(h: &mut Histogram<u64>, elapsed: Duration) {
    h.saturating_record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
}

/// p50, p99 and max of a µs histogram, in ms.
fn percentiles_ms(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
    })
}

/// Reads until a message matches `pred`, within `limit`.
async fn until(
    client: &mut Client,
    limit: Duration,
    mut pred: impl FnMut(&ServerMessage) -> bool,
) -> Result<ServerMessage> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.try_recv(left).await {
            Ok(Frame::Message(m)) if pred(&m) => return Ok(m),
            Ok(Frame::Message(_) | Frame::Ping) => {}
            Ok(Frame::Closed(close)) => bail!("closed by the server: {close:?}"),
            Err(e) => bail!("{e}"),
        }
    }
}

async fn connect(addr: SocketAddr, source: Ipv4Addr) -> Result<Client> {
    let (client, _) = handshake_from(IpAddr::V4(source), ws_request(addr))
        .await
        .with_context(|| format!("connect from {source}"))?;
    Ok(client)
}

/// `create` on `client`: `Ok(Ok(()))` for `joined`, `Ok(Err(code))` for an
/// `error`, `Err` when the connection failed or nothing came.
async fn try_create(client: &mut Client, name: &str) -> Result<Result<(), String>> {
    client
        .try_send(&create(name, Some(2), Some(300_000)))
        .await
        .map_err(anyhow::Error::msg)?;
    let answer = until(client, WAIT, |m| {
        matches!(
            m,
            ServerMessage::Joined { .. } | ServerMessage::Error { .. }
        )
    })
    .await?;
    Ok(match answer {
        ServerMessage::Error { code, .. } => Err(serde_json::to_value(code)?
            .as_str()
            .unwrap_or("unknown")
            .to_owned()),
        _ => Ok(()),
    })
}

/// One create-and-drop round from `source`.
async fn create_and_drop(
    addr: SocketAddr,
    source: Ipv4Addr,
    name: &str,
) -> Result<Result<(), String>> {
    let mut client = connect(addr, source).await?;
    try_create(&mut client, name).await
}

async fn flood(args: FloodArgs) -> Result<Value> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let next = Arc::clone(&next);
            let (addr, rounds, sources, first) =
                (args.addr, args.rounds, args.sources, args.source);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let round = next.fetch_add(1, Ordering::Relaxed);
                    if round >= rounds {
                        return tally;
                    }
                    let offset = u32::try_from(round % usize::from(sources.max(1))).unwrap_or(0);
                    let source = Ipv4Addr::from(u32::from(first).wrapping_add(offset));
                    tally.count(create_and_drop(addr, source, "flood").await);
                }
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "sources": args.sources,
        "created": tally.ok,
        "creates": tally.json(),
        "seconds": seconds,
        "rounds_per_s": args.rounds as f64 / seconds,
    }))
}

/// The honest two-player game.
struct HonestGame {
    host: Client,
    guest: Client,
    next_cell: u8,
    round_trips: Histogram<u64>,
    rejected: u64,
    /// The host's `create`s of a new round: joined or refused.
    rounds: Tally,
}

impl HonestGame {
    /// A new round: the host creates, the guest fills the game (which
    /// starts it). A refused create is counted, and tried again next time.
    async fn new_round(&mut self) -> Result<bool> {
        let created = try_create(&mut self.host, "honest").await?;
        let ok = created.is_ok();
        self.rounds.count(Ok(created));
        if !ok {
            return Ok(false);
        }
        let game = self.host.game_id();
        self.guest
            .try_send(&join(&game, "guest"))
            .await
            .map_err(anyhow::Error::msg)?;
        until(&mut self.guest, WAIT, |m| {
            matches!(m, ServerMessage::Joined { .. })
        })
        .await?;
        self.next_cell = 0;
        Ok(true)
    }

    /// One capture, heard back by both players.
    async fn capture_round_trip(&mut self) -> Result<()> {
        if self.next_cell >= 81 && !self.new_round().await? {
            return Ok(());
        }
        let cell = self.next_cell;
        self.next_cell += 1;
        let sent = Instant::now();
        self.host
            .try_send(&capture(i64::from(cell)))
            .await
            .map_err(anyhow::Error::msg)?;
        let heard = |m: &ServerMessage| {
            matches!(m, ServerMessage::Captured { cell: c, .. } if *c == cell)
                || matches!(m, ServerMessage::Rejected { .. })
        };
        if let ServerMessage::Rejected { .. } = until(&mut self.host, WAIT, heard).await? {
            self.rejected += 1;
        } else {
            record(&mut self.round_trips, sent.elapsed());
            until(&mut self.guest, WAIT, heard).await?;
        }
        Ok(())
    }

    async fn play(&mut self, period: Duration) -> Result<()> {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.capture_round_trip().await?;
        }
    }
}

async fn honest(args: HonestArgs) -> Result<Value> {
    // Before connecting, so that a SIGTERM at any time ends with a report.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stop = async move {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs_f64(args.seconds)) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let mut game = HonestGame {
        host: connect(args.addr, args.source).await?,
        guest: connect(args.addr, args.source).await?,
        next_cell: 81,
        round_trips: histogram()?,
        rejected: 0,
        rounds: Tally::default(),
    };
    let done = Arc::new(AtomicBool::new(false));
    let creator = {
        let (done, addr, source) = (Arc::clone(&done), args.addr, args.creator_source);
        tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                tally.count(create_and_drop(addr, source, "creator").await);
            }
            tally
        })
    };
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.01));
    let error = tokio::select! {
        r = game.play(period) => r.err(),
        () = stop => None,
    };
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let creates = creator.await?;
    Ok(json!({
        "seconds": seconds,
        "captures": game.round_trips.len(),
        "rejected": game.rejected,
        "capture_round_trip_ms": percentiles_ms(&game.round_trips),
        "rounds": game.rounds.json(),
        "honest_creates": creates.json(),
        "error": error.map(|e| format!("{e:#}")),
    }))
}

async fn hammer(args: HammerArgs) -> Result<Value> {
    if args.paths.is_empty() {
        bail!("--paths is empty");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let (addr, path) = (args.addr, args.paths[i % args.paths.len()].clone());
            tokio::spawn(async move {
                let (mut h, mut non_200, mut errors) = (histogram()?, 0u64, 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match http::try_get(addr, &path).await {
                        Ok(reply) if reply.status == 200 => record(&mut h, sent.elapsed()),
                        Ok(_) => non_200 += 1,
                        Err(_) => errors += 1,
                    }
                }
                anyhow::Ok((h, non_200, errors))
            })
        })
        .collect();
    let started = Instant::now();
    let (mut all, mut non_200, mut errors) = (histogram()?, 0, 0);
    for client in clients {
        let (h, n, e) = client.await??;
        all.add(&h)?;
        non_200 += n;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "paths": args.paths,
        "clients": args.clients,
        "seconds": seconds,
        "ok": all.len(),
        "non_200": non_200,
        "errors": errors,
        "requests_per_s": all.len() as f64 / seconds,
        "latency_ms": percentiles_ms(&all),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let report = match Cli::parse().command {
        Command::Flood(args) => flood(args).await?,
        Command::Honest(args) => honest(args).await?,
        Command::Hammer(args) => hammer(args).await?,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
