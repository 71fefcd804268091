//! Load-test bots for gridcap: `gridcap bots`.
//!
//! Thousands of bot players in one process play the real protocol over real
//! WebSockets against one or more servers, at an open-loop capture rate, and
//! the run ends with a latency and throughput report (a table on stdout,
//! optionally JSON). See `gridcap bots --help` for every flag and
//! docs/benchmarks.md for the figures measured with it.
//!
//! # Layout
//!
//! - [`args`]: the flags ([`BotArgs`]) and their checked form ([`args::Plan`]),
//!   including the loopback-only rule.
//! - [`game_plan`]: pure planning: which bot plays which seat of which game on
//!   which URL and source address, ramp-up offsets, the open-loop
//!   [`game_plan::Schedule`], seeded random numbers.
//! - [`board`]: one bot's view of the board, from which it picks free cells.
//! - [`round`]: what the bots of one game share: the current game id and the
//!   scheduled instant of every capture, for exact fan-out latency (found
//!   by slot, or by game id with `--quick-play`).
//! - [`wire`]: allocation-free encoding of `capture` and decoding of
//!   `captured`/`rejected`, the hot messages.
//! - [`bot`]: one bot's task: create/join (or quick_play)/resume, capture,
//!   repeat; its `events` submodule reacts to what the server sends.
//! - [`conn`]: connecting (source address, handshake), closing, and the
//!   run-wide state every bot shares.
//! - [`spectator`]: a spectator bot (`--spectators`): watches its slot's
//!   games and measures the fan-out to spectators.
//! - [`stats`]: counters and hdrhistograms; [`report`]: the final table and
//!   JSON; [`progress`]: the live line on stderr.
//! - [`error`]: [`BotError`], the crate's one error type.
//!
//! # Measuring
//!
//! Every latency counts from the instant an action was *scheduled*, not from
//! when it was sent, so a bot process that falls behind, or a server that
//! answers late, shows up in the figures instead of slowing the send rate
//! (no coordinated omission). The bots' own lateness is reported separately
//! as `send_lag`: when its p99 is far above a millisecond, the bot process
//! itself is saturated and the run measures the bots, not the server.
//!
//! # Capacity of one bot process
//!
//! Measured on the 2-core benchmark VM with the bots pinned to one core
//! (docs/benchmarks.md, section "Server", has the commands and tables):
//!
//! - idle: one process holds 19,000 connected idle players (`--idle`), the
//!   most the VM's 20,000 open-files limit allows, with zero errors;
//! - playing: 800 bots (200 games of 4) at 40 captures/s each receive about
//!   120,000 captured deliveries per second using ~80 % of the core, and at
//!   50/s about 136,000 with the core near saturation (send lag p99 25 ms).
//!
//! Per delivery the bots cost about as much CPU as the server (7-15 CPU-s
//! per million deliveries on each side): on loopback two thirds of either
//! side's time is the kernel's TCP path, which a receiver pays as much as a
//! sender. So one bot core drives one server core to saturation, but not far
//! past it; watch `send_lag` to tell which side ran out first.

pub mod args;
pub mod board;
pub mod bot;
pub mod conn;
pub mod error;
pub mod game_plan;
pub mod progress;
pub mod report;
pub mod round;
pub mod spectator;
pub mod stats;
pub mod wire;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use args::BotArgs;
use args::Plan;
use bot::{Bot, DRAIN_LIMIT};
use conn::{CLOSE_LIMIT, Shared};
pub use error::BotError;
use report::{Counts, Report, Settings, Times};
use round::{GameSlot, QuickPlayRounds};
use spectator::Spectator;
use stats::Stats;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs the bots; returns the process exit code (1 when `--max-p99-ms` was
/// breached). Prints the table on stdout and writes `--json`.
pub async fn run(args: BotArgs) -> anyhow::Result<i32> {
    let plan = Plan::resolve(args).await?;
    let json = plan.json.clone();
    let report = execute(plan).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(report.table().as_bytes())?;
    out.flush()?;
    if let Some(path) = json {
        std::fs::write(&path, report.to_json() + "\n")
            .map_err(|source| BotError::Report { path, source })?;
    }
    Ok(report.exit_code())
}

/// Runs a checked plan to the end and returns its report (printing nothing
/// but the progress line).
pub async fn execute(plan: Plan) -> Result<Report, BotError> {
    let epoch = Instant::now();
    let stats = Arc::new(Stats::new()?);
    let shared = Arc::new(Shared {
        stats: stats.clone(),
        epoch,
        stop: CancellationToken::new(),
        ws_config: Shared::websocket_config(),
        quick_rounds: QuickPlayRounds::default(),
        plan,
    });
    let plan = &shared.plan;
    let slots: Vec<Arc<GameSlot>> = (0..plan.games).map(|_| Arc::default()).collect();
    let mut bots = JoinSet::new();
    let specs = game_plan::assign(
        plan.games,
        plan.players,
        plan.targets.len(),
        plan.source_ips.len(),
        plan.ramp_up,
    );
    for spec in specs {
        if let Some(slot) = slots.get(spec.game as usize) {
            bots.spawn(Bot::new(spec, shared.clone(), slot.clone()).run());
        }
    }
    // Players only: spectators are reported by their own counters.
    let bots_started = bots.len() as u64;
    let spectators = spectator::assign(
        plan.games,
        plan.spectators,
        u32::try_from(plan.bots()).unwrap_or(u32::MAX),
        plan.targets.len(),
        plan.source_ips.len(),
        plan.ramp_up,
    );
    for spec in spectators {
        if let Some(slot) = slots.get(spec.game as usize) {
            bots.spawn(Spectator::new(spec, shared.clone(), slot.clone()).run());
        }
    }
    let progress_done = CancellationToken::new();
    let progress = tokio::spawn(progress::run(
        stats.clone(),
        epoch,
        plan.progress,
        progress_done.clone(),
    ));

    // Rates are measured over the steady part: from the end of the ramp-up
    // (or from the start when the ramp-up is as long as the run) to the stop.
    let end = epoch + plan.duration;
    let window_from = if plan.ramp_up < plan.duration {
        epoch + plan.ramp_up
    } else {
        epoch
    };
    let interrupted = !sleep_until_or_interrupt(window_from).await;
    let window_start = (Instant::now(), stats.counters.snapshot());
    if !interrupted {
        sleep_until_or_interrupt(end).await;
    }
    let stopped_at = Instant::now();
    let at_stop = stats.counters.snapshot();
    shared.stop.cancel();

    // Bots drain their answers and close; a bot stuck past the limit is aborted.
    let limit = DRAIN_LIMIT + CLOSE_LIMIT + Duration::from_secs(2);
    let drained =
        tokio::time::timeout(limit, async { while bots.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        bots.abort_all();
        while bots.join_next().await.is_some() {}
    }
    progress_done.cancel();
    if let Err(e) = progress.await {
        tracing::debug!("progress line task: {e}");
    }

    let at_end = stats.counters.snapshot();
    let histograms = stats.histograms()?;
    let settings = Settings {
        urls: plan.targets.iter().map(|t| t.url.clone()).collect(),
        games: plan.games,
        players: plan.players,
        rate: plan.rate,
        game_duration_ms: plan.game_duration_ms,
        fill_gap_ms: u64::try_from(plan.fill_gap.as_millis()).unwrap_or(u64::MAX),
        seed: plan.seed,
        idle: plan.idle,
        quick_play: plan.quick_play,
        spectators: plan.spectators,
    };
    let times = Times {
        run: stopped_at.duration_since(epoch),
        window: stopped_at.saturating_duration_since(window_start.0),
    };
    let counts = Counts {
        end: &at_end,
        stop: &at_stop,
        window_start: &window_start.1,
    };
    Ok(Report::build(
        settings,
        bots_started,
        counts,
        &histograms,
        times,
        process_cpu_seconds(),
        plan.max_p99_ms,
    ))
}

/// Sleeps until `at`; `false` if Ctrl-C came first.
async fn sleep_until_or_interrupt(at: Instant) -> bool {
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => true,
        result = tokio::signal::ctrl_c() => {
            if let Err(e) = result {
                // No signal handling: just wait for the time.
                tracing::debug!("cannot listen for Ctrl-C: {e}");
                tokio::time::sleep_until(at.into()).await;
                return true;
            }
            false
        }
    }
}

/// User + system CPU seconds of this process so far, from /proc (Linux;
/// `None` elsewhere). Assumes the usual 100 clock ticks per second.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_seconds_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            let cpu = super::process_cpu_seconds().unwrap();
            assert!(cpu >= 0.0);
        }
    }
}
