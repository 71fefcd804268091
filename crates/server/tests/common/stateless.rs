//! Test support for stateless mode: real `redis-server` processes on free
//! loopback ports (killed on drop), a 3-master Redis Cluster, and gridcap
//! nodes in this process or as real processes.
//!
//! Without `redis-server` on the PATH the tests skip with a message, unless
//! `GRIDCAP_REQUIRE_SYSTEM_DEPS=1` (as `make test` sets), where they fail.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gridcap::config::{Mode, ServeOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Longest a Redis server or a node may take to come up.
pub const START_WAIT: Duration = Duration::from_secs(15);

/// Whether `redis-server` can be run here. Prints why a test skips; panics
/// when the environment requires system dependencies.
pub fn redis_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("GRIDCAP_REQUIRE_SYSTEM_DEPS").is_ok_and(|v| v == "1") {
            panic!("redis-server is required (GRIDCAP_REQUIRE_SYSTEM_DEPS=1) but not installed");
        }
        eprintln!(
            "SKIPPED: redis-server is not installed (apt-get install redis-server); \
             set GRIDCAP_REQUIRE_SYSTEM_DEPS=1 to make this a failure"
        );
    }
    found
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

/// One `redis-server` process.
pub struct RedisServer {
    pub port: u16,
    args: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// A throwaway server: no persistence.
    pub async fn start() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "no"]).await
    }

    /// A server that survives a restart: every write is fsynced to its AOF
    /// before Redis answers it.
    pub async fn start_durable() -> RedisServer {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .await
    }

    /// A server with extra `args`.
    pub async fn start_with(args: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("gridcap-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut server = RedisServer {
            port,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            dir,
            child: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_for_redis(self.port).await;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server abruptly (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// A plain connection for the test's own commands.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until a Redis on `port` answers PING.
pub async fn wait_for_redis(port: u16) {
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + START_WAIT;
    loop {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(1),
                client.get_multiplexed_async_connection(),
            )
            .await
            && redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis on {port} did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis Cluster of three masters (no replicas), created with
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(
                RedisServer::start_with(&[
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ])
                .await,
            );
        }
        for n in &nodes {
            // Each node writes its cluster config into its own directory.
            let _ = &n.dir;
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("redis-cli --cluster create");
        assert!(status.success(), "cluster create failed");
        // Wait until every node agrees the cluster is up.
        let deadline = tokio::time::Instant::now() + START_WAIT;
        for n in &nodes {
            loop {
                let mut c = n.conn().await;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await
                    .expect("cluster info");
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "cluster not ok: {info}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        RedisCluster { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// Settings of a stateless node for tests.
pub fn stateless_options(redis: &Redis) -> ServeOptions {
    let (one, many) = match redis {
        Redis::Single(url) => (Some(url.clone()), None),
        Redis::Cluster(urls) => (None, Some(urls.clone())),
    };
    ServeOptions {
        mode: Some(Mode::Stateless),
        redis: one,
        redis_cluster: many,
        close_timeout_ms: Some(500),
        drain_timeout_ms: Some(2_000),
        web_root: Some(std::env::temp_dir().join("gridcap-tests-no-web-root")),
        ..ServeOptions::default()
    }
}

/// Where the nodes find Redis.
#[derive(Debug, Clone)]
pub enum Redis {
    Single(String),
    Cluster(Vec<String>),
}

/// A gridcap node running in this process.
pub struct Node {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Node {
    pub async fn start(options: ServeOptions) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = options.resolve().expect("valid stateless config");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gridcap::server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let node = Node {
            addr,
            stop: Some(stop),
            task: Some(task),
        };
        node.wait_ready().await;
        node
    }

    /// Waits until `/readyz` answers 200 (Redis reached).
    pub async fn wait_ready(&self) {
        wait_ready(self.addr).await;
    }

    /// Stops gracefully.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Waits until `/readyz` on `addr` answers 200.
pub async fn wait_ready(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + START_WAIT;
    loop {
        let status = readyz(addr).await;
        if status == Some(200) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {addr} not ready: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The status of `GET /readyz`, `None` if the node does not answer.
pub async fn readyz(addr: SocketAddr) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let s = tokio::net::TcpStream::connect(addr).await.ok()?;
        // Over TLS in TLS runs (`super::tls`).
        let mut s = super::tls::try_wrap(s, addr).await.ok()?;
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        // A TLS peer may end without close_notify: the status line is enough.
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// A gridcap node as a real process (`target/.../gridcap serve`), so a
/// test can SIGKILL it.
pub struct NodeProcess {
    pub addr: SocketAddr,
    child: Option<tokio::process::Child>,
}

impl NodeProcess {
    pub async fn start(redis: &Redis, node_id: &str) -> NodeProcess {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gridcap"));
        cmd.arg("serve")
            .args(["--mode", "stateless", "--listen", "127.0.0.1:0"])
            .args(["--node-id", node_id])
            .args(["--web-root", "/nonexistent-gridcap-web-root"])
            .args(["--rate-limit", "0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        match redis {
            Redis::Single(url) => cmd.args(["--redis", url]),
            Redis::Cluster(urls) => cmd.args(["--redis-cluster", &urls.join(",")]),
        };
        let mut child = cmd.spawn().expect("spawn gridcap");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(START_WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("gridcap: listening on http://") {
                    return rest.trim().parse::<SocketAddr>().ok();
                }
            }
            None
        })
        .await
        .expect("gridcap printed its address in time")
        .expect("gridcap printed its address");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        wait_ready(addr).await;
        NodeProcess {
            addr,
            child: Some(child),
        }
    }

    /// kill -9.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}
