//! What only the server's in-process integration tests need: a real server
//! started with `gridcap::server::run` on a free loopback port, inside the
//! test process. Everything else comes from the test kit (`tests/`, crate
//! `testkit`) and is re-exported here: the protocol client [`TestClient`]
//! (which checks `seq` on every message and keeps a replica of its game,
//! see [`replica`]), [`http`], [`raw`], [`tls`] and the Redis launchers.
//!
//! Every wait is bounded by [`WAIT`]; nothing sleeps to wait for a timer.
//!
//! **Stateless runs.** With `GRIDCAP_TEST_BACKEND=stateless`, or in a test
//! binary whose name starts with `stateless_conformance` (see
//! `stateless_conformance.rs`, which includes the conformance files),
//! [`TestServer`] is a pair of stateless nodes sharing a redis-server it
//! starts ([`stateless`]), and [`TestServer::connect`] alternates between
//! them: the same tests then check that a client cannot tell the modes
//! apart, with the players of each game spread over two nodes.
//!
//! **Stateful runs.** With `GRIDCAP_TEST_BACKEND=stateful`, or in a test
//! binary whose name starts with `stateful_conformance`, [`TestServer`] is a
//! cluster of two stateful nodes that know each other, and
//! [`TestServer::connect`] alternates between them as above: a game lives
//! on the node its creator used, so every other player of it is relayed.
//!
//! **TLS runs.** With `GRIDCAP_TEST_TLS=1`, or in a test binary whose name
//! starts with `tls_conformance`, every server serves https/wss only with a
//! self-signed certificate made by the test, and every client connects over
//! TLS trusting exactly it ([`tls`]). The two switches combine
//! (`tls_conformance_stateless` runs stateless pairs over TLS).

// Each test binary uses its own part of the helpers and re-exports.
#![allow(dead_code, unreachable_pub, unused_imports)]
// Test helpers are test code: clippy.toml's allow-*-in-tests only covers
// #[test] functions, not helpers outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod stateless;

use std::net::SocketAddr;
use std::time::Duration;

use gridcap::config::{Config, ServeOptions};
use gridcap::server::Listeners;
pub use testkit::client::{
    Client as TestClient, Frame, LEAVE, START, capture, capture_ref, connect_from as client_from,
    create, handshake, join, refused_status, resume, try_create, watch, ws_request,
};
pub use testkit::{WAIT, http, raw, replica, tls};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use transport::protocol::GameStatus;

/// Settings every test server starts from: defaults, except a short close
/// handshake and drain so that `shutdown()` never stalls a test.
pub fn options() -> ServeOptions {
    ServeOptions {
        close_timeout_ms: Some(500),
        drain_timeout_ms: Some(5_000),
        // A directory that does not exist: the placeholder page at `/`.
        web_root: Some(std::env::temp_dir().join("gridcap-tests-no-web-root")),
        ..ServeOptions::default()
    }
}

/// In TLS runs, `options` with the test certificate (unless they already
/// name one); otherwise `options` unchanged.
fn with_test_tls(options: ServeOptions) -> ServeOptions {
    if !tls::tls_run() || options.tls_cert.is_some() {
        return options;
    }
    let material = tls::material();
    ServeOptions {
        tls_cert: Some(material.cert_path.clone()),
        tls_key: Some(material.key_path.clone()),
        ..options
    }
}

/// A server running in this test process.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Its admin listener (`/metrics`, `/api/node`, `/api/cluster`, `/admin`).
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Stateless and stateful runs: the second node (`addr` is the first),
    /// and Redis in stateless runs.
    pair: Option<Pair>,
    /// Stateless runs: which node the next `connect` uses.
    turn: std::sync::atomic::AtomicUsize,
}

/// What a stateless or stateful [`TestServer`] runs besides its first node.
struct Pair {
    addr: SocketAddr,
    admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Stateless runs: the Redis both nodes share.
    _redis: Option<stateless::RedisServer>,
}

/// Whether this test binary runs because of `GRIDCAP_TEST_BACKEND=<backend>`
/// or is named `<backend>_conformance…` or `…conformance_<backend>…` (as
/// `tls_conformance_stateless`, both switches at once).
fn backend_run(backend: &str) -> bool {
    let by_env = std::env::var("GRIDCAP_TEST_BACKEND").is_ok_and(|v| v == backend);
    let by_name = std::env::current_exe().ok().is_some_and(|exe| {
        exe.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with(&format!("{backend}_conformance"))
                || n.contains(&format!("conformance_{backend}"))
        })
    });
    by_env || by_name
}

/// Whether this run tests a stateful cluster of two (see the module docs).
pub fn stateful_run() -> bool {
    static RUN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| backend_run("stateful"))
}

/// Whether this run tests stateless mode (see the module docs). Without
/// redis-server (and without GRIDCAP_REQUIRE_SYSTEM_DEPS=1) it says why and
/// falls back to single mode.
pub fn stateless_run() -> bool {
    static RUN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| backend_run("stateless") && stateless::redis_available())
}

impl TestServer {
    /// Starts a server with [`options`] on 127.0.0.1:0.
    pub async fn start() -> TestServer {
        Self::start_with(options()).await
    }

    /// Starts a server with `options` (the listen address is ignored).
    pub async fn start_with(options: ServeOptions) -> TestServer {
        let options = with_test_tls(options);
        let listener = listeners(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await;
        if stateless_run() || stateful_run() {
            let second = listeners(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await;
            return Self::start_pair(options, listener, second).await;
        }
        Self::start_on(options, listener)
    }

    /// Starts a server whose accepted sockets have a kernel send buffer of
    /// about `bytes` (they inherit SO_SNDBUF from the listener), so that a
    /// client that stops reading blocks the server's writes after a few KiB
    /// instead of the megabytes loopback autotuning allows.
    pub async fn start_with_send_buffer(options: ServeOptions, bytes: u32) -> TestServer {
        let options = with_test_tls(options);
        let listen = || {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_send_buffer_size(bytes).expect("SO_SNDBUF");
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .expect("bind");
            socket.listen(1024).expect("listen")
        };
        let listener = listeners(listen()).await;
        if stateless_run() || stateful_run() {
            // Both nodes' sockets: a player of either must fill up as fast.
            let second = listeners(listen()).await;
            return Self::start_pair(options, listener, second).await;
        }
        Self::start_on(options, listener)
    }

    /// A node with exactly `options` (no test certificate, no pairing),
    /// once `/readyz` answers 200: a stateless node that reached Redis.
    pub async fn start_node(options: ServeOptions) -> TestServer {
        let listener = listeners(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await;
        let node = Self::start_on(options, listener);
        stateless::wait_ready(node.addr).await;
        node
    }

    /// The two nodes of a stateless or stateful run, on `first` and `second`.
    async fn start_pair(options: ServeOptions, first: Listeners, second: Listeners) -> TestServer {
        if stateless_run() {
            Self::start_stateless(options, first, second).await
        } else {
            Self::start_stateful(options, first, second).await
        }
    }

    /// Two stateless nodes with `options` sharing a fresh redis-server,
    /// listening on `listener` and `second_listener`.
    async fn start_stateless(
        options: ServeOptions,
        listener: Listeners,
        second_listener: Listeners,
    ) -> TestServer {
        let redis = stateless::RedisServer::start().await;
        let options = ServeOptions {
            mode: Some(gridcap::config::Mode::Stateless),
            redis: Some(redis.url()),
            ..options
        };
        let mut first = Self::start_on(options.clone(), listener);
        let second = Self::start_on(options, second_listener);
        stateless::wait_ready(first.addr).await;
        stateless::wait_ready(second.addr).await;
        let mut second = second;
        first.pair = Some(Pair {
            addr: second.addr,
            admin: second.admin,
            stop: second.stop.take(),
            task: second.task.take(),
            _redis: Some(redis),
        });
        first
    }

    /// Two stateful nodes `a` (on `first`) and `b` (on `second`) with
    /// `options`, each knowing the other, once each sees both ready; the
    /// first holds the second as its pair.
    async fn start_stateful(
        options: ServeOptions,
        first: Listeners,
        second: Listeners,
    ) -> TestServer {
        let [mut a, mut b] = Self::stateful_nodes(options, first, second).await;
        a.pair = Some(Pair {
            addr: b.addr,
            admin: b.admin,
            stop: b.stop.take(),
            task: b.task.take(),
            _redis: None,
        });
        a
    }

    /// Stateful nodes `a` and `b` with `options` on fresh loopback ports,
    /// each knowing the other, once each sees both ready; each stops on
    /// its own (a drain test stops one and watches the other).
    pub async fn start_stateful_nodes(options: ServeOptions) -> [TestServer; 2] {
        let bind =
            || async { listeners(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await };
        let (first, second) = (bind().await, bind().await);
        Self::stateful_nodes(options, first, second).await
    }

    async fn stateful_nodes(
        options: ServeOptions,
        first: Listeners,
        second: Listeners,
    ) -> [TestServer; 2] {
        let addrs = [&first, &second].map(|l| l.public.local_addr().expect("addr"));
        let admins = [&first, &second].map(|l| l.admin.local_addr().expect("addr"));
        let peers: Vec<String> = ["a", "b"]
            .iter()
            .zip(addrs.iter().zip(admins))
            .map(|(id, (addr, admin))| format!("{id}={addr}@{admin}"))
            .collect();
        let node = |id: &str| ServeOptions {
            mode: Some(gridcap::config::Mode::Stateful),
            node_id: Some(id.to_owned()),
            peers: Some(peers.clone()),
            probe_interval_ms: Some(100),
            ..options.clone()
        };
        let a = Self::start_on(node("a"), first);
        let b = Self::start_on(node("b"), second);
        for admin in admins {
            wait_sees_both_ready(admin).await;
        }
        [a, b]
    }

    fn start_on(options: ServeOptions, listener: Listeners) -> TestServer {
        let config: Config = options.resolve().expect("valid test config");
        let addr = listener.public.local_addr().expect("addr");
        let admin = listener.admin.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gridcap::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            admin,
            stop: Some(stop),
            task: Some(task),
            pair: None,
            turn: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The admin listener of every node (one, or two in paired runs).
    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        let mut admins = vec![self.admin];
        admins.extend(self.pair.as_ref().map(|p| p.admin));
        admins
    }

    pub fn ws_url(&self) -> String {
        format!("{}://{}/ws", tls::ws_scheme(), self.addr)
    }

    /// A client that offered `gridcap.v1` (in stateless runs, on each node
    /// in turn).
    pub async fn connect(&self) -> TestClient {
        connect(self.next_addr()).await
    }

    /// The node the next client should use (always `addr` but in stateless
    /// runs, where the two nodes alternate).
    pub fn next_addr(&self) -> SocketAddr {
        match &self.pair {
            None => self.addr,
            Some(pair) => {
                let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if turn.is_multiple_of(2) {
                    self.addr
                } else {
                    pair.addr
                }
            }
        }
    }

    /// Starts the graceful shutdown and returns a task that finishes with it.
    pub fn begin_shutdown(mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("server task");
        let mut pair = self.pair.take();
        let second = pair.as_mut().and_then(|p| {
            if let Some(stop) = p.stop.take() {
                let _ = stop.send(());
            }
            p.task.take()
        });
        tokio::spawn(async move {
            task.await.expect("server task").expect("server result");
            if let Some(second) = second {
                second.await.expect("server task").expect("server result");
            }
            drop(pair); // Redis stops last.
        })
    }

    /// Triggers the graceful shutdown and waits for it.
    pub async fn shutdown(self) {
        tokio::time::timeout(Duration::from_secs(30), self.begin_shutdown())
            .await
            .expect("shutdown within 30 s")
            .expect("shutdown task");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.pair.as_mut().and_then(|p| p.stop.take()) {
            let _ = stop.send(());
        }
    }
}

/// Waits until the stateful node whose admin listener is on `addr` sees
/// nodes `a` and `b` ready (`/api/cluster`), so that a join relayed to
/// either finds it.
pub async fn wait_sees_both_ready(addr: SocketAddr) {
    testkit::poll::until(WAIT, move || async move {
        let view = http::try_get(addr, "/api/cluster")
            .await
            .ok()
            .filter(|reply| reply.status == 200)
            .map(|reply| reply.json());
        let ready = view
            .as_ref()
            .and_then(|v| v["nodes"].as_array())
            .map(|nodes| nodes.iter().filter(|n| n["state"] == "ready").count());
        (ready == Some(2)).then_some(()).ok_or(format!(
            "stateful node {addr} does not see both nodes ready: {view:?}"
        ))
    })
    .await;
}

/// `public` with an admin listener of its own on a free loopback port.
async fn listeners(public: TcpListener) -> Listeners {
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    Listeners { public, admin }
}

/// A connected client that offered `gridcap.v1`.
pub async fn connect(addr: SocketAddr) -> TestClient {
    testkit::client::connect(addr).await
}

/// Creates a game and returns the host, joined.
pub async fn host_game(server: &TestServer, max_players: i64, duration_ms: i64) -> TestClient {
    let mut c = server.connect().await;
    c.send(&create("host", Some(max_players), Some(duration_ms)))
        .await;
    let game = c.joined().await;
    assert_eq!(game.status, GameStatus::Waiting);
    c
}

/// Joins `game` as `name` on a new connection.
pub async fn join_game(server: &TestServer, game: &str, name: &str) -> TestClient {
    let mut c = server.connect().await;
    c.send(&join(game, name)).await;
    c.joined().await;
    c
}

/// Resumes a seat on a new connection.
pub async fn resume_seat(server: &TestServer, game: &str, token: &str) -> TestClient {
    let mut c = server.connect().await;
    c.send(&resume(game, token)).await;
    c.joined().await;
    c
}

/// A game of `players` seats, filled (so it auto-started), with every
/// client caught up to the `started` event, which the last joiner hears
/// too (its `joined` snapshot is taken before the start). Seat `i` is
/// `clients[i]`.
pub async fn full_game(server: &TestServer, players: i64, duration_ms: i64) -> Vec<TestClient> {
    let host = host_game(server, players, duration_ms).await;
    let id = host.game_id();
    let mut clients = vec![host];
    for i in 1..players {
        clients.push(join_game(server, &id, &format!("p{i}")).await);
    }
    let started = clients.last().expect("players").seq() + 1;
    for c in &mut clients {
        c.sync_to(started).await;
        let game = c.replica.as_ref().expect("joined");
        assert_eq!(game.status, GameStatus::Active, "a full game starts");
    }
    clients
}

/// Reads every client up to the same seq as `clients[leader]`.
pub async fn sync_all(clients: &mut [TestClient], seq: u64) {
    for c in clients.iter_mut() {
        c.sync_to(seq).await;
    }
}
