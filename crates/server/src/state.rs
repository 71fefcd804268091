//! What every request and session of one server shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::registry::Registry;
use crate::stateless::Backend;

/// Shared state of one server instance.
#[derive(Debug)]
pub struct AppState {
    /// The resolved configuration.
    pub config: Config,
    /// The games of this node.
    pub registry: Registry,
    /// The cluster this node belongs to; `None` in single mode.
    pub cluster: Option<Arc<Cluster>>,
    /// The Redis backend in stateless mode; `None` in the other modes.
    pub stateless: Option<Arc<Backend>>,
    /// Open WebSocket connections by client IP (`max_connections_per_ip`).
    pub per_ip: Arc<crate::per_ip::IpLimiter>,
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
            cluster: config.topology.cluster().map(|c| Arc::new(Cluster::new(c))),
            stateless: config
                .topology
                .stateless()
                .map(|s| Backend::launch(s.redis.clone(), clock, stop_games.clone())),
            per_ip: crate::per_ip::IpLimiter::new(config.max_connections_per_ip),
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

    /// Whether `ip` is one of this cluster's nodes (their relays are trusted).
    pub fn is_cluster_peer(&self, ip: std::net::IpAddr) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.peer_ips.contains(&ip))
    }

    /// WebSocket connections open now.
    pub fn open_connections(&self) -> usize {
        self.config
            .max_connections
            .saturating_sub(self.connections.available_permits())
    }

    /// Games by status (waiting, active, completed): in this node's memory,
    /// or in stateless mode those this node has players in.
    pub fn game_counts(&self) -> (usize, usize, usize) {
        match &self.stateless {
            Some(backend) => backend.counts(),
            None => self.registry.counts(),
        }
    }

    /// Whether the node takes games: not draining, and in stateless mode
    /// Redis reachable.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.stateless.as_ref().is_none_or(|b| b.is_ready())
    }

    /// This node's own report, as `/api/node` serves it.
    pub fn node_info(&self) -> crate::cluster::membership::NodeInfo {
        use crate::cluster::membership::{GameCounts, NodeInfo};
        let (waiting, active, completed) = self.game_counts();
        let topology = &self.config.topology;
        NodeInfo {
            id: topology.node_id().to_owned(),
            mode: topology.mode().as_str().to_owned(),
            draining: self.is_draining(),
            games: GameCounts {
                waiting: waiting as u64,
                active: active as u64,
                completed: completed as u64,
            },
            connections: self.open_connections() as u64,
        }
    }

    /// Starts draining.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
