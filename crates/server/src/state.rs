//! What every request and session of one server shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::registry::Registry;

/// Shared state of one server instance.
#[derive(Debug)]
pub struct AppState {
    /// The resolved configuration.
    pub config: Config,
    /// The games of this node.
    pub registry: Registry,
    /// One permit per open WebSocket connection (`max_connections`).
    pub connections: Arc<Semaphore>,
    /// Source of connection ids.
    next_conn: AtomicU64,
    /// Set by a shutdown: `/readyz` answers 503, new games are refused.
    draining: AtomicBool,
    /// Cancelled when sessions must close with 1001.
    pub close_sessions: CancellationToken,
    /// Every session task, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Renders `/metrics`; `None` if another recorder owns the process.
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// State for a server with `config`; `stop_games` ends every game task.
    pub fn new(config: Config, stop_games: CancellationToken) -> Arc<AppState> {
        let clock = Clock::new();
        Arc::new(AppState {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            registry: Registry::new(clock, stop_games),
            config,
            next_conn: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            close_sessions: CancellationToken::new(),
            sessions: TaskTracker::new(),
            metrics: crate::metrics::install(),
        })
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts draining.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
