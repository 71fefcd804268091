//! Prometheus metrics: names, helpers, and the recorder behind `/metrics`.
//!
//! Recorded through the `metrics` facade; rendered by
//! `metrics-exporter-prometheus`. The recorder is process-global, so several
//! servers in one test process share it.
//!
//! Most series are counted where things happen; the gauges of [`scrape`]
//! (build, node state, peers, process, Tokio runtime) are read when
//! Prometheus scrapes `/metrics` on the admin listener.

use std::sync::OnceLock;
use std::time::Duration;

use game_logic::GameError;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use transport::convert::Refusal;

use crate::games::GameCounts;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// CPU, memory and descriptors of this process, under Prometheus's standard
/// `process_*` names.
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Buckets of `gridcap_redis_seconds`: a loopback round trip is ~0.1 ms, a
/// request that waits for a reconnect up to seconds.
const REDIS_BUCKETS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

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
                .set_buckets_for_metric(
                    Matcher::Full("gridcap_redis_seconds".to_owned()),
                    &REDIS_BUCKETS,
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
    metrics::describe_gauge!(
        "gridcap_games_unattended",
        "Waiting games nobody is connected to (single and stateful modes)"
    );
    metrics::describe_gauge!(
        "gridcap_cluster_games",
        "Stateless: games counting against --max-games across the cluster (the same on every node: do not sum)"
    );
    metrics::describe_counter!(
        "gridcap_games_evicted_total",
        "Unattended waiting games dropped early: more than --max-unattended-games"
    );
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
    metrics::describe_counter!(
        "gridcap_session_ends_total",
        "WebSocket sessions ended, by the close code the server sent (or peer_closed, write_failed, read_failed)"
    );
    metrics::describe_gauge!(
        "gridcap_relays",
        "Relays open now to the nodes owning games (stateful)"
    );
    metrics::describe_counter!("gridcap_relays_opened_total", "Relays opened (stateful)");
    metrics::describe_counter!(
        "gridcap_relays_cut_total",
        "Relays ended because the owning node went away (its players got 1011)"
    );
    metrics::describe_counter!(
        "gridcap_relay_failures_total",
        "Relays that could not be opened, by reason (timeout, connect)"
    );
    metrics::describe_counter!("gridcap_errors_total", "error messages sent, by code");
    metrics::describe_histogram!(
        "gridcap_capture_broadcast_seconds",
        "From receiving a capture to writing its captured echo to the capturing player's socket (one sample per write carrying such echoes, from the oldest capture in it)"
    );
    metrics::describe_gauge!(
        "gridcap_build_info",
        "Always 1; the labels say which build and mode this node runs"
    );
    metrics::describe_gauge!("gridcap_ready", "1 while this node takes games");
    metrics::describe_gauge!("gridcap_draining", "1 while this node drains");
    metrics::describe_gauge!(
        "gridcap_peer_state",
        "Stateful peers as this node's probes see them: 1 for the state each is in"
    );
    metrics::describe_gauge!("gridcap_tokio_workers", "Tokio worker threads");
    metrics::describe_gauge!("gridcap_tokio_alive_tasks", "Tokio tasks alive now");
    metrics::describe_gauge!(
        "gridcap_tokio_global_queue_depth",
        "Tasks waiting in Tokio's global queue"
    );
    metrics::describe_histogram!(
        "gridcap_redis_seconds",
        "Round trip of a Redis script call (stateless mode)"
    );
    metrics::describe_counter!(
        "gridcap_redis_errors_total",
        "Redis script calls that failed (stateless mode)"
    );
    metrics::describe_counter!(
        "gridcap_redis_pubsub_reconnects_total",
        "Times the pub/sub connection was lost and recovery began"
    );
    metrics::describe_counter!(
        "gridcap_redis_resyncs_total",
        "Times every local player was resynced after pub/sub came back"
    );
    metrics::describe_counter!(
        "gridcap_handshakes_refused_total",
        "WebSocket handshakes refused, by HTTP status and reason"
    );
    metrics::describe_counter!(
        "gridcap_slow_consumer_cuts_total",
        "Connections closed (1008) because their outbound queue overflowed"
    );
    // Counters that may stay at zero for a long time exist from the start,
    // so that dashboards and alerts see 0 rather than no data.
    for name in [
        "gridcap_redis_errors_total",
        "gridcap_redis_pubsub_reconnects_total",
        "gridcap_redis_resyncs_total",
        "gridcap_slow_consumer_cuts_total",
        "gridcap_relays_opened_total",
        "gridcap_relays_cut_total",
    ] {
        counter!(name).increment(0);
    }
    let process = PROCESS.get_or_init(metrics_process::Collector::default);
    process.describe();
}

/// What [`scrape`] reads of one node.
#[derive(Debug, Clone, Copy)]
pub struct NodeState<'a> {
    /// Its mode's name.
    pub mode: &'a str,
    /// Taking games.
    pub ready: bool,
    /// Shutting down.
    pub draining: bool,
    /// Games by status.
    pub games: GameCounts,
}

/// Sets the gauges read at scrape time: build, node state, games, process
/// and runtime. `peers` are (id, state) pairs of a stateful cluster.
pub fn scrape(node: NodeState<'_>, peers: &[(String, String)]) {
    gauge!(
        "gridcap_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "mode" => node.mode.to_owned()
    )
    .set(1.0);
    gauge!("gridcap_ready").set(f64::from(u8::from(node.ready)));
    gauge!("gridcap_draining").set(f64::from(u8::from(node.draining)));
    games(node.games);
    for (peer, state) in peers {
        for known in ["ready", "draining", "down", "unknown"] {
            let value = f64::from(u8::from(known == state));
            gauge!("gridcap_peer_state", "peer" => peer.clone(), "state" => known).set(value);
        }
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let runtime = handle.metrics();
        gauge!("gridcap_tokio_workers").set(runtime.num_workers() as f64);
        gauge!("gridcap_tokio_alive_tasks").set(runtime.num_alive_tasks() as f64);
        gauge!("gridcap_tokio_global_queue_depth").set(runtime.global_queue_depth() as f64);
    }
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
}

/// A Redis script call took `d` and succeeded or not.
pub fn redis_call(d: Duration, ok: bool) {
    histogram!("gridcap_redis_seconds").record(d.as_secs_f64());
    if !ok {
        counter!("gridcap_redis_errors_total").increment(1);
    }
}

/// The pub/sub connection was lost; recovery begins.
pub fn pubsub_reconnect() {
    counter!("gridcap_redis_pubsub_reconnects_total").increment(1);
}

/// Pub/sub is back and every local player was resynced.
pub fn pubsub_resynced() {
    counter!("gridcap_redis_resyncs_total").increment(1);
}

/// A WebSocket handshake was refused with `status` because of `reason`.
pub fn handshake_refused(status: u16, reason: &'static str) {
    counter!(
        "gridcap_handshakes_refused_total",
        "status" => status.to_string(),
        "reason" => reason
    )
    .increment(1);
}

/// A connection opened (+1) or closed (-1).
pub fn connections(delta: f64) {
    gauge!("gridcap_connections").increment(delta);
}

/// How a WebSocket session ended: the close code the server sent, or
/// `peer_closed`, `write_failed`, `read_failed`.
pub fn session_ended(end: &transport::session::SessionEnd) {
    use transport::session::SessionEnd;
    let label = match end {
        SessionEnd::Closed(code) => code.to_string(),
        SessionEnd::PeerClosed => "peer_closed".to_owned(),
        SessionEnd::WriteFailed => "write_failed".to_owned(),
        SessionEnd::ReadFailed => "read_failed".to_owned(),
    };
    counter!("gridcap_session_ends_total", "end" => label).increment(1);
}

/// A relay to the node owning a game opened (stateful mode).
pub fn relay_opened() {
    counter!("gridcap_relays_opened_total").increment(1);
    gauge!("gridcap_relays").increment(1.0);
}

/// An open relay ended; `cut` when the owner went away under it.
pub fn relay_ended(cut: bool) {
    gauge!("gridcap_relays").decrement(1.0);
    if cut {
        counter!("gridcap_relays_cut_total").increment(1);
    }
}

/// A relay could not be opened (`timeout` or `connect`).
pub fn relay_failed(reason: &'static str) {
    counter!("gridcap_relay_failures_total", "reason" => reason).increment(1);
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

/// An unattended waiting game was dropped early (`--max-unattended-games`).
pub fn game_evicted() {
    counter!("gridcap_games_evicted_total").increment(1);
}

/// A game reached game_over.
pub fn game_over() {
    counter!("gridcap_games_completed_total").increment(1);
}

/// Publishes the games-by-status gauge.
pub fn games(counts: GameCounts) {
    gauge!("gridcap_games", "status" => "waiting").set(counts.waiting as f64);
    gauge!("gridcap_games", "status" => "active").set(counts.active as f64);
    gauge!("gridcap_games", "status" => "completed").set(counts.completed as f64);
    gauge!("gridcap_games_unattended").set(counts.unattended as f64);
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
