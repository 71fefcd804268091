//! What every request and session of one server shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;
use transport::session::{Beats, IdleSockets};

use crate::config::Config;
use crate::edge::create_limit::CreateLimiter;
use crate::edge::per_ip::IpLimiter;
use crate::games::{GameCounts, Games};

/// Shared state of one server instance, whatever keeps its games.
#[derive(Debug)]
pub struct AppState<G> {
    /// The resolved configuration.
    pub config: Config,
    /// Where the games are: the one seam between sessions and the mode.
    pub games: G,
    /// Open WebSocket connections by client IP (`max_connections_per_ip`).
    pub per_ip: IpLimiter,
    /// One permit per open WebSocket connection (`max_connections`), each
    /// held by a connection's [`Admission`](crate::edge::admission::Admission).
    pub connections: Semaphore,
    /// One permit per connection past `max_connections` being closed with
    /// 1013 (`max_overload_closes`).
    pub overload_closes: Arc<Semaphore>,
    /// Games created per client address (`max_creates_per_ip`).
    pub creates: CreateLimiter,
    /// Source of connection ids.
    next_conn: AtomicU64,
    /// Set by a shutdown: `/readyz` answers 503, new games are refused.
    draining: AtomicBool,
    /// Cancelled when sessions must close with 1001.
    pub close_sessions: CancellationToken,
    /// Every session task, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// The heartbeats of parked sessions (swept by one task: see
    /// [`AppState::sweep_beats`]).
    pub beats: Beats,
    /// Where parked sessions' sockets wait, off the reactor (watched by one
    /// task: see [`AppState::watch_idle_sockets`]).
    pub sockets: IdleSockets,
    /// Renders `/metrics`; `None` if another recorder owns the process.
    pub metrics: Option<PrometheusHandle>,
}

/// What `GET /api/node` answers: one node's own view of itself (and what
/// stateful peers probe).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id (`single` in single mode).
    pub id: String,
    /// `single`, `stateful` or `stateless`.
    pub mode: String,
    /// Whether it is shutting down.
    pub draining: bool,
    /// Its games.
    pub games: GameCounts,
    /// Its open WebSocket connections.
    pub connections: u64,
}

impl<G: Games> AppState<G> {
    /// State for a server with `config` whose games are kept by `games`;
    /// fails only if the epoll instance for idle sockets cannot be made.
    pub fn new(config: Config, games: G) -> std::io::Result<Arc<AppState<G>>> {
        Ok(Arc::new(AppState {
            per_ip: IpLimiter::new(config.max_connections_per_ip),
            connections: Semaphore::new(config.max_connections),
            overload_closes: Arc::new(Semaphore::new(config.max_overload_closes)),
            creates: CreateLimiter::new(
                config.max_creates_per_ip,
                config.max_creates_per_connection,
            ),
            games,
            config,
            next_conn: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            close_sessions: CancellationToken::new(),
            sessions: TaskTracker::new(),
            beats: Beats::default(),
            sockets: IdleSockets::new()?,
            metrics: crate::metrics::install(),
        }))
    }

    /// Wakes parked sessions at their heartbeats until the sessions must
    /// close, then wakes them all (to close with 1001). Spawned once per
    /// node, before its first session.
    pub async fn sweep_beats(self: Arc<Self>) {
        let closing = self.close_sessions.clone().cancelled_owned();
        self.beats.run(closing).await;
    }

    /// Wakes parked sessions whose sockets have bytes to read, for as long
    /// as the runtime runs. Spawned once per node, before its first session.
    /// Should the epoll instance fail, parked sessions still wake at their
    /// heartbeats (and then read what came), so the node degrades instead
    /// of losing anyone; the error is logged.
    pub async fn watch_idle_sockets(self: Arc<Self>) {
        if let Err(e) = self.sockets.run().await {
            error!("parked sockets are no longer watched (they wake at their heartbeats): {e}");
        }
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

    /// WebSocket connections open now.
    pub fn open_connections(&self) -> usize {
        self.config
            .max_connections
            .saturating_sub(self.connections.available_permits())
    }

    /// Whether the node takes games: not draining, and its backend ready.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.games.is_ready()
    }

    /// This node's own report, as `/api/node` serves it.
    pub fn node_info(&self) -> NodeInfo {
        NodeInfo {
            id: self.games.node_id().to_owned(),
            mode: G::MODE.to_owned(),
            draining: self.is_draining(),
            games: self.games.counts(),
            connections: self.open_connections() as u64,
        }
    }
}
