//! Prometheus metrics: names, helpers, and the recorder behind `/metrics`.
//!
//! Recorded through the `metrics` facade; rendered by
//! `metrics-exporter-prometheus`. The recorder is process-global, so several
//! servers in one test process share it.

use std::sync::OnceLock;
use std::time::Duration;

use game_logic::GameError;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use transport::convert::Refusal;

use crate::games::GameCounts;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global recorder once; later calls reuse it. `None` if another
/// recorder was installed first (metrics then go there).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("gridcap_capture_broadcast_seconds".to_owned()),
                    &[
                        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
                        0.05, 0.1,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_gauge!("gridcap_connections", "WebSocket connections open now");
    metrics::describe_gauge!("gridcap_games", "Games in memory, by status");
    metrics::describe_counter!("gridcap_games_created_total", "Games created");
    metrics::describe_counter!(
        "gridcap_games_completed_total",
        "Games that reached game_over"
    );
    metrics::describe_counter!("gridcap_messages_in_total", "Binary messages received");
    metrics::describe_counter!("gridcap_messages_out_total", "Frames sent to clients");
    metrics::describe_counter!("gridcap_deliveries_total", "Event frames queued to players");
    metrics::describe_counter!(
        "gridcap_ws_frames_written_total",
        "WebSocket frames written (messages, pings, closes)"
    );
    metrics::describe_counter!(
        "gridcap_ws_flushes_total",
        "Socket flushes, one write syscall each: frames written / flushes = frames per write"
    );
    metrics::describe_gauge!("gridcap_spectators", "Connections watching a game now");
    metrics::describe_counter!(
        "gridcap_spectator_deliveries_total",
        "Event frames queued to spectators"
    );
    metrics::describe_counter!("gridcap_captures_total", "Accepted captures");
    metrics::describe_counter!(
        "gridcap_overload_closes_total",
        "Connections past --max-connections upgraded only to be closed with 1013"
    );
    metrics::describe_counter!("gridcap_rejects_total", "Refused captures, by reason");
    metrics::describe_counter!("gridcap_errors_total", "error messages sent, by code");
    metrics::describe_histogram!(
        "gridcap_capture_broadcast_seconds",
        "From receiving a capture to queuing its broadcast"
    );
}

/// A connection opened (+1) or closed (-1).
pub fn connections(delta: f64) {
    gauge!("gridcap_connections").increment(delta);
}

/// A connection past `--max-connections` is being closed with 1013.
pub fn overload_closed() {
    counter!("gridcap_overload_closes_total").increment(1);
}

/// A game task started.
pub fn game_created() {
    counter!("gridcap_games_created_total").increment(1);
}

/// A game task ended.
pub fn game_dropped() {}

/// A game reached game_over.
pub fn game_over() {
    counter!("gridcap_games_completed_total").increment(1);
}

/// Publishes the games-by-status gauge.
pub fn games(counts: GameCounts) {
    gauge!("gridcap_games", "status" => "waiting").set(counts.waiting as f64);
    gauge!("gridcap_games", "status" => "active").set(counts.active as f64);
    gauge!("gridcap_games", "status" => "completed").set(counts.completed as f64);
}

/// A capture was accepted.
pub fn capture_accepted() {
    counter!("gridcap_captures_total").increment(1);
}

/// A capture was refused (a refusal answered with `error` is counted in
/// `gridcap_errors_total` when it is sent, by `transport`).
pub fn capture_rejected(e: GameError) {
    if let Refusal::Rejected(reason) = Refusal::from(e) {
        counter!("gridcap_rejects_total", "reason" => reason.as_str()).increment(1);
    }
}

/// Capture received → broadcast queued.
pub fn capture_latency(d: Duration) {
    histogram!("gridcap_capture_broadcast_seconds").record(d.as_secs_f64());
}

/// Event frames queued to players.
pub fn deliveries(n: u64) {
    counter!("gridcap_deliveries_total").increment(n);
}

/// Spectators started (+) or stopped (-) watching.
pub fn spectators_changed(delta: i64) {
    if delta != 0 {
        gauge!("gridcap_spectators").increment(delta as f64);
    }
}

/// Event frames queued to spectators.
pub fn spectator_deliveries(n: u64) {
    if n != 0 {
        counter!("gridcap_spectator_deliveries_total").increment(n);
    }
}
