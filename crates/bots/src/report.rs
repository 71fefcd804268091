//! The end-of-run report: one value, printed as a table and written as JSON.
//!
//! [`Report::build`] is pure (counters, histograms and times in, report
//! out), so the arithmetic is unit-tested without running a bot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::{
    CLIENT_ERRORS, CounterSnapshot, ERROR_CODES, Histograms, LATENCIES, Latency, REJECT_REASONS,
};

/// Percentiles of one latency, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Mean, rounded.
    pub mean: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl Summary {
    /// The summary of `h` (all zeros when empty).
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            mean: h.mean().round() as u64,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Latency summaries by kind (JSON `latency_us`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latencies {
    /// TCP connect start → `joined`.
    pub connect: Summary,
    /// Time to seat: create/join/quick_play sent → `joined`.
    pub seat: Summary,
    /// Time to start: create/join/quick_play sent → `started`.
    pub start: Summary,
    /// Scheduled send → own `captured`/`rejected`.
    pub capture: Summary,
    /// Scheduled send → `captured` at every other bot of the game.
    pub fanout: Summary,
    /// Scheduled send → `captured` at every spectator of the game.
    pub spectator_fanout: Summary,
    /// Scheduled send → actual send (the bots' own lateness).
    pub send_lag: Summary,
}

/// The run's settings, echoed in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Servers.
    pub urls: Vec<String>,
    /// Games at once.
    pub games: u32,
    /// Bots per game.
    pub players: u8,
    /// Attempts per second per bot.
    pub rate: f64,
    /// Round length asked for, in ms (null with quick play: the server's default).
    pub game_duration_ms: Option<i64>,
    /// Slow fills: ms between two guests' joins of a game (0: at once).
    pub fill_gap_ms: u64,
    /// Seed.
    pub seed: u64,
    /// Idle mode.
    pub idle: bool,
    /// Entered with `quick_play` instead of create/join.
    pub quick_play: bool,
    /// Spectators per game.
    pub spectators: u32,
}

/// Times of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Times {
    /// From the start to the stop (`--duration`, or less after Ctrl-C).
    pub run: Duration,
    /// The steady part the rates are computed over: after the ramp-up, to the stop.
    pub window: Duration,
}

/// Everything a run reports. Field names are the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was asked for.
    pub settings: Settings,
    /// Bots started.
    pub bots: u64,
    /// Seconds from start to stop.
    pub duration_s: f64,
    /// Seconds the per-second rates are measured over (after the ramp-up).
    pub window_s: f64,
    /// WebSocket connections established (reconnects included).
    pub connections: u64,
    /// Connections still open at the stop.
    pub open_at_stop: u64,
    /// Seats taken (create, join and resume answered with `joined`).
    pub joins: u64,
    /// New seats (create, join and quick_play answered with `joined`).
    pub seats: u64,
    /// New seats per second over the window.
    pub seats_per_sec: f64,
    /// Games that reached `started`.
    pub games_started: u64,
    /// Games played to `game_over`.
    pub games_completed: u64,
    /// Capture attempts sent.
    pub attempts: u64,
    /// Attempts answered by their own `captured` or `rejected`.
    pub answered: u64,
    /// Attempts never answered (lost in a disconnect, rate-limited, or still
    /// in flight when the drain after the stop gave up).
    pub unanswered: u64,
    /// Own captures confirmed by `captured`.
    pub captures: u64,
    /// Attempts refused by `rejected`.
    pub rejected: u64,
    /// `rejected` by reason.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Server `error` messages plus client-side problems.
    pub errors: u64,
    /// Errors by code (client-side ones prefixed `client_`); zero counts omitted.
    pub errors_by_code: BTreeMap<&'static str, u64>,
    /// Connections lost while the run was going on.
    pub disconnects: u64,
    /// Scheduled attempts skipped because the bot saw no free cell.
    pub skipped_no_free_cell: u64,
    /// `captured` events received by all bots.
    pub deliveries: u64,
    /// Deliveries per second over the window.
    pub deliveries_per_sec: f64,
    /// Own captures per second over the window.
    pub captures_per_sec: f64,
    /// Frames received, total.
    pub messages_in: u64,
    /// Frames sent, total.
    pub messages_out: u64,
    /// Frames received per second over the window.
    pub messages_in_per_sec: f64,
    /// Frames sent per second over the window.
    pub messages_out_per_sec: f64,
    /// `watching` snapshots spectators received.
    pub watches: u64,
    /// `captured` events received by spectators.
    pub spectator_deliveries: u64,
    /// Spectator deliveries per second over the window.
    pub spectator_deliveries_per_sec: f64,
    /// Latencies in µs.
    pub latency_us: Latencies,
    /// CPU seconds (user + system) the bot process used, when known.
    pub bot_cpu_s: Option<f64>,
    /// The `--max-p99-ms` limit, if any.
    pub max_p99_ms: Option<f64>,
    /// Whether the fan-out or capture p99 exceeded the limit.
    pub p99_breached: bool,
}

/// Inputs of [`Report::build`].
#[derive(Debug, Clone, Copy)]
pub struct Counts<'a> {
    /// Totals at the very end (after the drain).
    pub end: &'a CounterSnapshot,
    /// Totals at the stop.
    pub stop: &'a CounterSnapshot,
    /// Totals at the start of the window.
    pub window_start: &'a CounterSnapshot,
}

fn per_sec(later: u64, earlier: u64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    let v = later.saturating_sub(earlier) as f64 / secs;
    (v * 10.0).round() / 10.0
}

impl Report {
    /// Assembles the report.
    pub fn build(
        settings: Settings,
        bots: u64,
        counts: Counts<'_>,
        histograms: &Histograms,
        times: Times,
        bot_cpu_s: Option<f64>,
        max_p99_ms: Option<f64>,
    ) -> Report {
        let Counts {
            end,
            stop,
            window_start: w,
        } = counts;
        let summary = |k: Latency| Summary::of(histograms.get(k));
        let latency_us = Latencies {
            connect: summary(Latency::Connect),
            seat: summary(Latency::Seat),
            start: summary(Latency::Start),
            capture: summary(Latency::Capture),
            fanout: summary(Latency::Fanout),
            spectator_fanout: summary(Latency::SpectatorFanout),
            send_lag: summary(Latency::SendLag),
        };
        let rejected_by_reason = REJECT_REASONS
            .iter()
            .zip(end.rejected)
            .map(|(r, n)| (r.as_str(), n))
            .collect();
        let mut errors_by_code: BTreeMap<&'static str, u64> = ERROR_CODES
            .iter()
            .zip(end.errors)
            .map(|(c, n)| (c.as_str(), n))
            .collect();
        errors_by_code.extend(
            CLIENT_ERRORS
                .iter()
                .map(|(e, name)| (*name, end.client_errors[*e as usize])),
        );
        errors_by_code.retain(|_, n| *n > 0);
        let p99_breached = max_p99_ms.is_some_and(|limit| {
            let limit_us = limit * 1000.0;
            latency_us.fanout.p99 as f64 > limit_us
                || latency_us.spectator_fanout.p99 as f64 > limit_us
                || latency_us.capture.p99 as f64 > limit_us
        });
        Report {
            settings,
            bots,
            duration_s: times.run.as_secs_f64(),
            window_s: times.window.as_secs_f64(),
            connections: end.connections,
            open_at_stop: stop.open(),
            joins: end.joins,
            seats: end.seats,
            seats_per_sec: per_sec(stop.seats, w.seats, times.window),
            games_started: end.games_started,
            games_completed: end.games_completed,
            attempts: end.attempts,
            answered: end.answered,
            unanswered: end.attempts.saturating_sub(end.answered),
            captures: end.captures,
            rejected: end.rejected_total(),
            rejected_by_reason,
            errors: end.errors_total(),
            errors_by_code,
            disconnects: end.disconnects,
            skipped_no_free_cell: end.skipped,
            deliveries: end.deliveries,
            deliveries_per_sec: per_sec(stop.deliveries, w.deliveries, times.window),
            captures_per_sec: per_sec(stop.captures, w.captures, times.window),
            messages_in: end.messages_in,
            messages_out: end.messages_out,
            messages_in_per_sec: per_sec(stop.messages_in, w.messages_in, times.window),
            messages_out_per_sec: per_sec(stop.messages_out, w.messages_out, times.window),
            watches: end.watches,
            spectator_deliveries: end.spectator_deliveries,
            spectator_deliveries_per_sec: per_sec(
                stop.spectator_deliveries,
                w.spectator_deliveries,
                times.window,
            ),
            latency_us,
            bot_cpu_s,
            max_p99_ms,
            p99_breached,
        }
    }

    /// The process exit code: 1 when the p99 limit was breached.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.p99_breached)
    }

    /// The human-readable table printed at the end.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let s = &self.settings;
        let _ = writeln!(
            t,
            "gridcap bots: {} games x {} players = {} bots, {} attempts/s each{}{}{}, {:.1} s (rates over the last {:.1} s)",
            s.games,
            s.players,
            self.bots,
            s.rate,
            if s.idle { " (idle)" } else { "" },
            if s.quick_play { " (quick play)" } else { "" },
            if s.spectators > 0 {
                format!(", {} spectators per game", s.spectators)
            } else {
                String::new()
            },
            self.duration_s,
            self.window_s
        );
        let row = |t: &mut String, name: &str, value: String| {
            let _ = writeln!(t, "  {name:<22} {value}");
        };
        row(
            &mut t,
            "connections",
            format!("{} ({} open at stop)", self.connections, self.open_at_stop),
        );
        row(
            &mut t,
            "seats",
            format!("{} ({:.1}/s)", self.seats, self.seats_per_sec),
        );
        row(
            &mut t,
            "games",
            format!(
                "{} started, {} completed",
                self.games_started, self.games_completed
            ),
        );
        row(
            &mut t,
            "attempts",
            format!(
                "{} ({} answered, {} unanswered)",
                self.attempts, self.answered, self.unanswered
            ),
        );
        row(
            &mut t,
            "captures",
            format!("{} ({:.1}/s)", self.captures, self.captures_per_sec),
        );
        let reasons: Vec<String> = self
            .rejected_by_reason
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        row(
            &mut t,
            "rejected",
            format!("{} [{}]", self.rejected, reasons.join(", ")),
        );
        let codes: Vec<String> = self
            .errors_by_code
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        row(
            &mut t,
            "errors",
            format!("{} [{}]", self.errors, codes.join(", ")),
        );
        row(&mut t, "disconnects", self.disconnects.to_string());
        row(
            &mut t,
            "deliveries",
            format!("{} ({:.1}/s)", self.deliveries, self.deliveries_per_sec),
        );
        if s.spectators > 0 {
            row(
                &mut t,
                "spectator deliveries",
                format!(
                    "{} ({:.1}/s; {} watching snapshots)",
                    self.spectator_deliveries, self.spectator_deliveries_per_sec, self.watches
                ),
            );
        }
        row(
            &mut t,
            "messages in / out",
            format!(
                "{} / {} ({:.1}/s / {:.1}/s)",
                self.messages_in,
                self.messages_out,
                self.messages_in_per_sec,
                self.messages_out_per_sec
            ),
        );
        if let Some(cpu) = self.bot_cpu_s {
            row(&mut t, "bot CPU", format!("{cpu:.2} s"));
        }
        let _ = writeln!(
            t,
            "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "count", "mean", "p50", "p90", "p99", "p99.9", "max"
        );
        let l = &self.latency_us;
        let rows = LATENCIES.map(|kind| match kind {
            Latency::Connect => ("connect+join", &l.connect),
            Latency::Seat => ("time to seat", &l.seat),
            Latency::Start => ("time to start", &l.start),
            Latency::Capture => ("capture round trip", &l.capture),
            Latency::Fanout => ("fan-out", &l.fanout),
            Latency::SpectatorFanout => ("fan-out to spectators", &l.spectator_fanout),
            Latency::SendLag => ("send lag (bots)", &l.send_lag),
        });
        for (name, v) in rows {
            let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
            let _ = writeln!(
                t,
                "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                v.count,
                ms(v.mean),
                ms(v.p50),
                ms(v.p90),
                ms(v.p99),
                ms(v.p999),
                ms(v.max)
            );
        }
        if let Some(limit) = self.max_p99_ms {
            let verdict = if self.p99_breached { "BREACHED" } else { "met" };
            let _ = writeln!(
                t,
                "  p99 limit {limit} ms (fan-out, to spectators too, and capture): {verdict}"
            );
        }
        t
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            urls: vec!["ws://127.0.0.1:1/ws".into()],
            games: 2,
            players: 4,
            rate: 10.0,
            game_duration_ms: Some(1000),
            fill_gap_ms: 0,
            seed: 1,
            idle: false,
            quick_play: false,
            spectators: 0,
        }
    }

    fn sample() -> (
        CounterSnapshot,
        CounterSnapshot,
        CounterSnapshot,
        Histograms,
    ) {
        let start = CounterSnapshot {
            deliveries: 100,
            captures: 25,
            ..Default::default()
        };
        let stop = CounterSnapshot {
            connections: 8,
            seats: 8,
            deliveries: 2_100,
            captures: 525,
            messages_in: 3_000,
            messages_out: 600,
            ..Default::default()
        };
        let mut end = stop;
        end.closed = 8;
        end.attempts = 600;
        end.answered = 598;
        end.captures = 530;
        end.rejected = [60, 8, 0];
        end.errors[12] = 2;
        end.client_errors[0] = 1;
        let mut h = Histograms::new().unwrap();
        for us in 1..=1000u64 {
            h.record(Latency::Fanout, Duration::from_micros(us));
            h.record(Latency::Capture, Duration::from_micros(us * 10));
        }
        for ms in 1..=8u64 {
            h.record(Latency::Seat, Duration::from_millis(ms));
            h.record(Latency::Start, Duration::from_millis(ms * 100));
        }
        (start, stop, end, h)
    }

    #[test]
    fn rates_use_the_window_and_totals_the_end() {
        let (start, stop, end, h) = sample();
        let times = Times {
            run: Duration::from_secs(5),
            window: Duration::from_secs(4),
        };
        let counts = Counts {
            end: &end,
            stop: &stop,
            window_start: &start,
        };
        let r = Report::build(settings(), 8, counts, &h, times, Some(1.5), Some(5.0));
        assert_eq!(r.deliveries_per_sec, 500.0);
        assert_eq!(r.captures_per_sec, 125.0);
        assert_eq!((r.seats, r.seats_per_sec), (8, 2.0));
        assert_eq!(r.latency_us.seat.count, 8);
        assert!(
            (8_000..=8_010).contains(&r.latency_us.seat.max),
            "3 significant digits"
        );
        assert!((399_000..=401_000).contains(&r.latency_us.start.p50));
        assert!(r.latency_us.start.max >= 799_000);
        assert_eq!(r.captures, 530);
        assert_eq!((r.rejected, r.unanswered, r.errors), (68, 2, 3));
        assert_eq!(r.rejected_by_reason["not_active"], 8);
        assert_eq!(r.errors_by_code.get("rate_limited"), Some(&2));
        assert_eq!(r.errors_by_code.get("client_connect"), Some(&1));
        assert!(
            !r.errors_by_code.contains_key("game_full"),
            "zero counts are left out"
        );
        assert_eq!(r.open_at_stop, 8);
        assert_eq!(r.latency_us.fanout.count, 1000);
        assert!((499..=501).contains(&r.latency_us.fanout.p50));
        assert!((989..=991).contains(&r.latency_us.fanout.p99));
        assert_eq!(r.latency_us.fanout.max, 1000);
        // capture p99 is ~9.9 ms > 5 ms: breached.
        assert!(r.p99_breached);
        assert_eq!(r.exit_code(), 1);
        let relaxed = Report::build(settings(), 8, counts, &h, times, None, Some(10.0));
        assert!(!relaxed.p99_breached);
        assert_eq!(relaxed.exit_code(), 0);
        let unlimited = Report::build(settings(), 8, counts, &h, times, None, None);
        assert!(!unlimited.p99_breached);
    }

    #[test]
    fn json_has_every_documented_key_and_the_table_every_row() {
        let (start, stop, end, h) = sample();
        let times = Times {
            run: Duration::from_secs(5),
            window: Duration::ZERO,
        };
        let counts = Counts {
            end: &end,
            stop: &stop,
            window_start: &start,
        };
        let r = Report::build(settings(), 8, counts, &h, times, None, None);
        assert_eq!(
            r.deliveries_per_sec, 0.0,
            "an empty window gives no rate, not NaN"
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
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
            "seats",
            "seats_per_sec",
            "games_started",
        ] {
            assert!(v.get(key).is_some_and(|x| x.is_number()), "{key}");
        }
        for kind in ["connect", "seat", "start", "capture", "fanout"] {
            for p in ["p50", "p90", "p99", "p999", "max"] {
                assert!(v["latency_us"][kind][p].is_u64(), "{kind}.{p}");
            }
        }
        let table = r.table();
        for needle in [
            "connections",
            "fan-out",
            "capture round trip",
            "connect+join",
            "time to seat",
            "time to start",
            "seats",
            "deliveries",
            "errors",
        ] {
            assert!(table.contains(needle), "{needle} in\n{table}");
        }
    }
}
