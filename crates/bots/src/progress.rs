//! The live progress line on stderr while a run goes on: an indicatif
//! spinner redrawn a few times a second, only when stderr is a terminal and
//! `--quiet` was not given (logs and pipes get just the final report).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::stats::{CounterSnapshot, Stats};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// One progress line from two snapshots `dt` apart.
pub fn line(
    elapsed: Duration,
    now: &CounterSnapshot,
    before: &CounterSnapshot,
    dt: Duration,
) -> String {
    let rate = |a: u64, b: u64| {
        let secs = dt.as_secs_f64();
        if secs > 0.0 {
            a.saturating_sub(b) as f64 / secs
        } else {
            0.0
        }
    };
    format!(
        "{:>6.1}s  open {}  games {}  captures/s {:.0}  deliveries/s {:.0}  in/s {:.0}  out/s {:.0}  rejected {}  errors {}  disconnects {}",
        elapsed.as_secs_f64(),
        now.open(),
        now.games_completed,
        rate(now.captures, before.captures),
        rate(now.deliveries, before.deliveries),
        rate(now.messages_in, before.messages_in),
        rate(now.messages_out, before.messages_out),
        now.rejected_total(),
        now.errors_total(),
        now.disconnects,
    )
}

/// Shows progress until `done` is cancelled.
pub async fn run(stats: Arc<Stats>, start: Instant, enabled: bool, done: CancellationToken) {
    if !enabled || !std::io::stderr().is_terminal() {
        return;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut before = stats.counters.snapshot();
    let mut at = Instant::now();
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = stats.counters.snapshot();
        let t = Instant::now();
        bar.set_message(line(
            t.duration_since(start),
            &now,
            &before,
            t.duration_since(at),
        ));
        bar.tick();
        (before, at) = (now, t);
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_difference() {
        let before = CounterSnapshot {
            deliveries: 100,
            ..Default::default()
        };
        let now = CounterSnapshot {
            connections: 10,
            closed: 2,
            deliveries: 1_100,
            ..Default::default()
        };
        let text = line(
            Duration::from_secs(3),
            &now,
            &before,
            Duration::from_millis(500),
        );
        assert!(text.contains("deliveries/s 2000"), "{text}");
        assert!(text.contains("open 8"), "{text}");
        let zero = line(Duration::ZERO, &now, &before, Duration::ZERO);
        assert!(zero.contains("deliveries/s 0"), "{zero}");
    }
}
