//! `redis-server` launchers: one throwaway (or durable) server on a free
//! loopback port, killed on drop, and a 3-master Redis Cluster.
//!
//! Without `redis-server` on the PATH the tests skip with a message, unless
//! `GRIDCAP_REQUIRE_SYSTEM_DEPS=1` (as `make test` sets), where they fail.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where stateless nodes find Redis.
#[derive(Debug, Clone)]
pub enum Redis {
    /// One server (`--redis`).
    Single(String),
    /// A Redis Cluster (`--redis-cluster`).
    Cluster(Vec<String>),
}

impl Redis {
    /// The `gridcap serve` flags that point a node at it.
    pub fn args(&self) -> Vec<String> {
        match self {
            Redis::Single(url) => vec!["--redis".to_owned(), url.clone()],
            Redis::Cluster(urls) => vec!["--redis-cluster".to_owned(), urls.join(",")],
        }
    }
}

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

/// A free port for a Redis server, and its port + 10000 (a Redis Cluster
/// node's bus) free too: from [`ports`](crate::ports), below the ephemeral
/// range, so that a restart finds it free and no other test gets it.
fn free_port() -> u16 {
    crate::ports::free_port_with_bus(CLUSTER_BUS_OFFSET)
}

/// Where Redis puts a cluster node's bus: its port + 10000.
const CLUSTER_BUS_OFFSET: u16 = 10_000;

/// One `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    /// Its loopback port.
    pub port: u16,
    /// Extra flags, kept for restarts.
    args: Vec<String>,
    /// Its data directory (AOF, cluster config), removed on drop.
    dir: PathBuf,
    /// The process; `None` while killed.
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
        let pid = child.id();
        self.child = Some(child);
        wait_for_redis_process(self.port, Some(pid)).await;
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server abruptly (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already dead is fine: the goal is that it is not running.
            let _killed = child.kill();
            let _reaped = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// A throwaway replica of `master` (`--replicaof`), once its link to
    /// the master is up and the first sync is done.
    pub async fn replica_of(master: &RedisServer) -> RedisServer {
        let port = master.port.to_string();
        let replica = Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--replicaof",
            "127.0.0.1",
            &port,
        ])
        .await;
        let replica_ref = &replica;
        crate::poll::until(START_WAIT, move || async move {
            let mut c = replica_ref.conn().await;
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut c)
                .await
                .expect("info replication");
            let synced = info.contains("master_link_status:up")
                && info.contains("master_sync_in_progress:0");
            synced
                .then_some(())
                .ok_or(format!("the replica did not sync: {info}"))
        })
        .await;
        replica
    }

    /// Freezes (`true`, SIGSTOP) or thaws (`false`, SIGCONT) the process:
    /// frozen, it neither answers nor reads what its master sends.
    pub fn freeze(&self, frozen: bool) {
        let Some(child) = &self.child else {
            panic!("redis on {} is not running", self.port);
        };
        let status = Command::new("kill")
            .arg(if frozen { "-STOP" } else { "-CONT" })
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -STOP/-CONT failed");
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
        let _removed = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until a Redis on `port` answers PING.
pub async fn wait_for_redis(port: u16) {
    wait_for_redis_process(port, None).await;
}

/// Waits until the Redis on `port` answers, and, given its `pid`, that it
/// is that process (`INFO server`'s `process_id`): not another test's Redis
/// that took the port, nor a previous run of this one that is still exiting.
async fn wait_for_redis_process(port: u16, pid: Option<u32>) {
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + START_WAIT;
    loop {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(1),
                client.get_multiplexed_async_connection(),
            )
            .await
            && let Ok(info) = redis::cmd("INFO")
                .arg("server")
                .query_async::<String>(&mut c)
                .await
        {
            let running = info
                .lines()
                .find_map(|l| l.strip_prefix("process_id:"))
                .and_then(|p| p.trim().parse::<u32>().ok());
            assert!(
                pid.is_none() || running == pid,
                "port {port} answers for redis-server {running:?}, not ours ({pid:?})"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis on {port} did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis Cluster of three masters (by default without replicas),
/// created with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    /// Its servers: the masters first as `redis-cli` assigns them, then
    /// their replicas (roles change on a failover: ask `ROLE`).
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and joins them.
    pub async fn start() -> RedisCluster {
        Self::start_with(0, 2000).await
    }

    /// Three masters with `replicas` replicas each and a cluster node
    /// timeout of `node_timeout_ms` (how long before a silent master is
    /// failed over); ready once every node says the cluster is ok and
    /// every replica is in sync with its master.
    pub async fn start_with(replicas: usize, node_timeout_ms: u32) -> RedisCluster {
        let node_timeout = node_timeout_ms.to_string();
        let mut nodes = Vec::new();
        for _ in 0..3 * (1 + replicas) {
            nodes.push(
                RedisServer::start_with(&[
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    &node_timeout,
                ])
                .await,
            );
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("redis-cli --cluster create");
        assert!(status.success(), "cluster create failed");
        // Wait until every node agrees the cluster is up and every replica
        // is in sync.
        let deadline = tokio::time::Instant::now() + START_WAIT;
        for n in &nodes {
            loop {
                let mut c = n.conn().await;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut c)
                    .await
                    .expect("cluster info");
                let repl: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut c)
                    .await
                    .expect("info replication");
                let synced = repl.contains("role:master") || repl.contains("master_link_status:up");
                if info.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "cluster not ready: {info} {repl}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        RedisCluster { nodes }
    }

    /// Every server's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}
