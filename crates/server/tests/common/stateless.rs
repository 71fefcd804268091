//! Stateless mode in this process: node settings, and gridcap nodes started
//! with `gridcap::server::run`. Redis (`redis-server`, a Redis Cluster) and
//! gridcap nodes as real processes come from the test kit
//! (`testkit::redis`, `testkit::node`), re-exported here.

use std::net::SocketAddr;
use std::time::Duration;

use gridcap::config::{Mode, ServeOptions};
pub use testkit::redis::{
    Redis, RedisCluster, RedisServer, START_WAIT, redis_available, wait_for_redis,
};
pub use testkit::{Cluster, NodeOptions, TestDir};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

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

/// The status of `GET /readyz`, `None` if the node does not answer (over
/// TLS in TLS runs).
pub async fn readyz(addr: SocketAddr) -> Option<u16> {
    testkit::http::try_get(addr, "/readyz")
        .await
        .ok()
        .map(|reply| reply.status)
}

/// Stateless gridcap nodes as real processes (`gridcap serve`, so that a
/// test can SIGKILL one), logging under `target/system-tests/<test>/`.
pub async fn node_processes(test: &str, redis: &Redis, ids: &[&str]) -> Cluster {
    Cluster::stateless(&TestDir::new(test), ids, redis, &NodeOptions::default()).await
}
