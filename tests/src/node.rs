//! `gridcap serve` nodes as child processes: alone, as a stateful cluster,
//! or as stateless nodes sharing a Redis.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::paths::{TestDir, gridcap_bin};
use crate::ports::free_addrs;
use crate::process::Proc;
use crate::redis::Redis;
use crate::{POLL, WAIT, http};

/// How a node is started; every field becomes a flag of `gridcap serve`.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// `--drain-timeout-ms`: how long a SIGTERMed node lets active games run.
    pub drain_timeout_ms: u64,
    /// `--min-duration-ms`: tests play short rounds.
    pub min_duration_ms: u64,
    /// `--probe-interval-ms` (stateful only): short, so tests see peers
    /// change state quickly.
    pub probe_interval_ms: u64,
    /// `--peer-timeout-ms` (stateful only).
    pub peer_timeout_ms: u64,
    /// More flags, appended as given.
    pub extra: Vec<String>,
    /// `RUST_LOG` for the nodes; `None`: the test's own, or `info`.
    pub rust_log: Option<String>,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        NodeOptions {
            drain_timeout_ms: 15_000,
            min_duration_ms: 1_000,
            probe_interval_ms: 200,
            peer_timeout_ms: 1_000,
            extra: Vec::new(),
            rust_log: None,
        }
    }
}

/// One `gridcap serve` process, restartable with the same id, port and flags.
#[derive(Debug)]
pub struct Node {
    /// The node id (`--node-id`); `single` for a single-mode node.
    pub id: String,
    /// Its HTTP and WebSocket address.
    pub addr: SocketAddr,
    /// Its admin listener (`/metrics`, `/api/node`, `/api/cluster`, `/admin`).
    pub admin: SocketAddr,
    /// The full argument list, kept for restarts.
    args: Vec<String>,
    /// `RUST_LOG` given by the test ([`NodeOptions::rust_log`]).
    rust_log: Option<String>,
    /// Where its logs go.
    dir: TestDir,
    /// How many times it was started: numbers the log files of each run.
    starts: u32,
    /// The current process; `None` before the first start.
    proc: Option<Proc>,
}

impl Node {
    fn new(
        id: &str,
        [addr, admin]: [SocketAddr; 2],
        args: Vec<String>,
        options: &NodeOptions,
        dir: &TestDir,
    ) -> Node {
        Node {
            id: id.to_owned(),
            addr,
            admin,
            args,
            rust_log: options.rust_log.clone(),
            dir: dir.clone(),
            starts: 0,
            proc: None,
        }
    }

    /// Starts the process (without waiting for it to be ready).
    fn spawn(&mut self) {
        self.starts += 1;
        let mut command = serve_command();
        command.args(&self.args);
        if let Some(filter) = &self.rust_log {
            command.env("RUST_LOG", filter);
        } else if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let name = format!("node-{}.{}", self.id, self.starts);
        self.proc = Some(Proc::spawn(&name, command, &self.dir.path));
    }

    /// The running process's pid.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Proc::pid)
    }

    /// Polls `/readyz` until 200; panics (with the log tail) if the process
    /// exits first or is not ready within [`WAIT`].
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let proc = self.proc_mut();
            if let Some(status) = proc.exited() {
                panic!(
                    "node {} exited ({status}) before it was ready\n{}",
                    self.id,
                    self.log_tail()
                );
            }
            if matches!(http::try_get(self.addr, "/readyz").await, Ok(r) if r.status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} not ready on {} within {WAIT:?}\n{}",
                self.id,
                self.addr,
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn proc_mut(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("the node was started")
    }

    /// `ws://addr/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Whether its process is running.
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// SIGTERM: the node starts draining.
    pub fn terminate(&mut self) {
        self.proc_mut().terminate();
    }

    /// SIGKILL: the node dies at once with its games.
    pub fn kill(&mut self) {
        self.proc_mut().kill();
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.proc_mut().wait_exit(limit).await
    }

    /// Starts it again with the same id, port and flags, and waits until it
    /// is ready. The previous process must have exited.
    pub async fn restart(&mut self) {
        assert!(
            !self.is_running(),
            "node {} is still running; stop it before restarting",
            self.id
        );
        self.spawn();
        self.wait_ready().await;
    }

    /// `GET /api/node`.
    pub async fn info(&self) -> serde_json::Value {
        http::get_json(self.admin, "/api/node").await
    }

    /// `GET /api/cluster`.
    pub async fn cluster_view(&self) -> serde_json::Value {
        http::get_json(self.admin, "/api/cluster").await
    }

    /// Games in this node's memory by status, from `/api/node`.
    pub async fn game_counts(&self) -> GameCounts {
        let info = self.info().await;
        let count = |status: &str| {
            info["games"][status]
                .as_u64()
                .unwrap_or_else(|| panic!("/api/node of {} has no games.{status}: {info}", self.id))
        };
        GameCounts {
            waiting: count("waiting"),
            active: count("active"),
            completed: count("completed"),
        }
    }

    /// The whole logs (stdout and stderr) of the current run.
    pub fn logs(&self) -> String {
        self.proc.as_ref().map_or_else(String::new, |p| {
            let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
            read(p.stdout_path()) + &read(p.stderr_path())
        })
    }

    /// The tail of the current run's logs.
    pub fn log_tail(&self) -> String {
        self.proc
            .as_ref()
            .map_or_else(|| "(never started)".to_owned(), Proc::log_tail)
    }
}

/// `gridcap serve`, without the developer's own `GRIDCAP_*` settings
/// (which must not leak into tests); the caller adds the flags.
pub fn serve_command() -> Command {
    let mut command = Command::new(gridcap_bin());
    command.arg("serve");
    without_gridcap_env(&mut command);
    command
}

/// Removes the developer's own `GRIDCAP_*` settings from `command`'s
/// environment (for a command that runs `gridcap` under another program).
/// Also gives it a free admin port (`GRIDCAP_ADMIN_LISTEN=127.0.0.1:0`)
/// unless its flags name one: the default 127.0.0.1:9091 would clash
/// between nodes started at once.
pub fn without_gridcap_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GRIDCAP_") {
            command.env_remove(key);
        }
    }
    command.env("GRIDCAP_ADMIN_LISTEN", "127.0.0.1:0");
}

/// Games of one node by status (`/api/node`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GameCounts {
    /// Waiting for players.
    pub waiting: u64,
    /// Round running.
    pub active: u64,
    /// Round over, still retained.
    pub completed: u64,
}

impl GameCounts {
    /// Every game the node holds.
    pub fn total(&self) -> u64 {
        self.waiting + self.active + self.completed
    }
}

/// Common flags of every test node.
fn base_args([addr, admin]: [SocketAddr; 2], options: &NodeOptions, dir: &TestDir) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--listen".into(),
        addr.to_string(),
        "--admin-listen".into(),
        admin.to_string(),
        // A directory without index.html: the placeholder page.
        "--web-root".into(),
        dir.join("no-web-root").display().to_string(),
        "--drain-timeout-ms".into(),
        options.drain_timeout_ms.to_string(),
        "--min-duration-ms".into(),
        options.min_duration_ms.to_string(),
        // Tests send bursts of captures; the limiter is tested elsewhere.
        "--rate-limit".into(),
        "0".into(),
        "--close-timeout-ms".into(),
        "500".into(),
    ];
    args.extend(options.extra.iter().cloned());
    args
}

/// A public and an admin address for each of `n` nodes.
fn node_addrs(n: usize) -> Vec<[SocketAddr; 2]> {
    free_addrs(2 * n)
        .chunks_exact(2)
        .map(|pair| [pair[0], pair[1]])
        .collect()
}

/// Nodes started together; dropping it kills every one of them.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in the order of their ids as given.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// One single-mode node (today's default mode), ready.
    pub async fn single(dir: &TestDir, options: &NodeOptions) -> Cluster {
        let addr = node_addrs(1)[0];
        let mut node = Node::new("single", addr, base_args(addr, options, dir), options, dir);
        node.spawn();
        node.wait_ready().await;
        Cluster { nodes: vec![node] }
    }

    /// Stateful nodes with the given ids, each knowing all the others, all
    /// ready and seeing one another as ready.
    pub async fn stateful(dir: &TestDir, ids: &[&str], options: &NodeOptions) -> Cluster {
        let addrs = node_addrs(ids.len());
        let peers = ids
            .iter()
            .zip(&addrs)
            .map(|(id, [addr, admin])| format!("{id}={addr}@{admin}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (id, addr) in ids.iter().zip(&addrs) {
            let mut args = base_args(*addr, options, dir);
            args.extend([
                "--mode".to_owned(),
                "stateful".to_owned(),
                "--node-id".to_owned(),
                (*id).to_owned(),
                "--peers".to_owned(),
                peers.clone(),
                "--probe-interval-ms".to_owned(),
                options.probe_interval_ms.to_string(),
                "--peer-timeout-ms".to_owned(),
                options.peer_timeout_ms.to_string(),
            ]);
            let mut node = Node::new(id, *addr, args, options, dir);
            node.spawn();
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_ready().await;
        }
        let cluster = Cluster { nodes };
        cluster.wait_converged().await;
        cluster
    }

    /// Stateless nodes with the given ids, all pointed at `redis`, all ready.
    pub async fn stateless(
        dir: &TestDir,
        ids: &[&str],
        redis: &Redis,
        options: &NodeOptions,
    ) -> Cluster {
        let addrs = node_addrs(ids.len());
        let mut nodes = Vec::new();
        for (id, addr) in ids.iter().zip(&addrs) {
            let mut args = base_args(*addr, options, dir);
            args.extend([
                "--mode".to_owned(),
                "stateless".to_owned(),
                "--node-id".to_owned(),
                (*id).to_owned(),
            ]);
            args.extend(redis.args());
            let mut node = Node::new(id, *addr, args, options, dir);
            node.spawn();
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_ready().await;
        }
        Cluster { nodes }
    }

    /// The node with id `id`.
    pub fn node(&self, id: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The node with id `id`, mutably.
    pub fn node_mut(&mut self, id: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Every node's address, in order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// The state (`ready`, `draining`, `down`) of every node as `observer`
    /// sees it in `/api/cluster`.
    pub async fn states_seen_by(&self, observer: &str) -> BTreeMap<String, String> {
        let view = self.node(observer).cluster_view().await;
        let nodes = view["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("/api/cluster of {observer} has no nodes array: {view}"));
        nodes
            .iter()
            .map(|n| {
                let id = n["id"].as_str().unwrap_or_default().to_owned();
                let state = n["state"].as_str().unwrap_or_default().to_owned();
                (id, state)
            })
            .collect()
    }

    /// Waits until every node in `observers` sees node `id` in `state`.
    pub async fn wait_seen_as(&self, observers: &[&str], id: &str, state: &str) {
        let deadline = Instant::now() + WAIT;
        for observer in observers {
            loop {
                let states = self.states_seen_by(observer).await;
                if states.get(id).map(String::as_str) == Some(state) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {observer} does not see node {id} as {state} within {WAIT:?}: {states:?}"
                );
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Waits until every node sees every node (itself included) as ready.
    pub async fn wait_converged(&self) {
        let ids: Vec<&str> = self.nodes.iter().map(|n| n.id.as_str()).collect();
        for id in &ids {
            self.wait_seen_as(&ids, id, "ready").await;
        }
    }

    /// Game counts of each of the given nodes (`/api/node`).
    pub async fn game_counts(&self, ids: &[&str]) -> BTreeMap<String, GameCounts> {
        let mut out = BTreeMap::new();
        for id in ids {
            out.insert((*id).to_owned(), self.node(id).game_counts().await);
        }
        out
    }

    /// Waits (15 s at most) until every one of `ids` holds games that
    /// `playing` accepts (bots' games spread over the nodes); the panic
    /// shows the counts and `players_log` (the bots' log tail).
    pub async fn wait_games_everywhere(
        &self,
        ids: &[&str],
        playing: impl Fn(&GameCounts) -> bool,
        players_log: impl Fn() -> String,
    ) {
        let (playing, players_log) = (&playing, &players_log);
        crate::poll::until(Duration::from_secs(15), move || async move {
            let counts = self.game_counts(ids).await;
            if counts.values().all(playing) {
                return Ok(());
            }
            Err(format!(
                "not playing on every node: {counts:?}\n{}",
                players_log()
            ))
        })
        .await;
    }

    /// The log tails of every node, for panic messages.
    pub fn log_tails(&self) -> String {
        self.nodes.iter().map(Node::log_tail).collect()
    }
}
