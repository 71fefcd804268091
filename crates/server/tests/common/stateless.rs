//! Stateless mode in this process: node settings and readiness. A node in
//! this process is a [`TestServer::start_node`](super::TestServer::start_node). Redis (`redis-server`, a Redis Cluster) and
//! gridcap nodes as real processes come from the test kit
//! (`testkit::redis`, `testkit::node`), re-exported here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use game_logic::{PlayerName, Settings, SettingsBounds};
use gridcap::clock::Clock;
use gridcap::config::{Mode, ServeOptions};
use gridcap::games::GameCode;
use gridcap::games::redis::scripts::Answer;
use gridcap::games::redis::store::Store;
use gridcap::games::redis::{RedisTarget, ReplicaWait};
pub use testkit::redis::{
    Redis, RedisCluster, RedisServer, START_WAIT, redis_available, wait_for_redis,
};
pub use testkit::{Cluster, NodeOptions, TestDir};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

/// Kills every pub/sub connection of `redis` (`CLIENT KILL TYPE pubsub`),
/// as a network cut would; how many there were.
pub async fn kill_subscriptions(redis: &RedisServer) -> i64 {
    let mut c = redis.conn().await;
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut c)
        .await
        .expect("CLIENT KILL")
}

/// The game store on `redis` with no node around it (the scripts alone),
/// once it reached Redis; its health task stops with the returned token.
pub async fn store_on(redis: &RedisServer) -> (Arc<Store>, CancellationToken) {
    store_waiting_on(redis, None).await
}

/// [`store_on`], every event held back until `wait`'s replicas have it
/// (`--redis-wait-replicas`).
pub async fn store_waiting_on(
    redis: &RedisServer,
    wait: Option<ReplicaWait>,
) -> (Arc<Store>, CancellationToken) {
    let target = RedisTarget::Single(redis.url());
    let store = Arc::new(Store::waiting(&target, Clock::new(), wait));
    let stop = CancellationToken::new();
    tokio::spawn(store.clone().run_health(target, None, stop.clone()));
    let deadline = tokio::time::Instant::now() + START_WAIT;
    while !store.is_healthy() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store reaches Redis"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (store, stop)
}

/// A new waiting game of 2 seats and 60 s rounds in `store`, hosted by
/// `a` whose connection is `holder`: its id and the create script's answer.
pub async fn create_duel(store: &Store, holder: &str) -> (Uuid, Answer) {
    let id = Uuid::new_v4();
    let settings =
        Settings::new(Some(2), Some(60_000), &SettingsBounds::default()).expect("valid settings");
    let host = PlayerName::new("a").expect("valid name");
    let (_, hash) = gridcap::tokens::issue();
    let code = GameCode::random();
    let answer = store
        .create(&id, &code, &host, &settings, &hash.hex(), holder)
        .await
        .expect("create");
    (id, answer)
}

/// Waits until `/readyz` on `addr` answers 200.
pub async fn wait_ready(addr: SocketAddr) {
    testkit::http::wait_status_within(addr, "/readyz", 200, START_WAIT).await;
}

/// Stateless gridcap nodes as real processes (`gridcap serve`, so that a
/// test can SIGKILL one), logging under `target/system-tests/<test>/`.
pub async fn node_processes(test: &str, redis: &Redis, ids: &[&str]) -> Cluster {
    Cluster::stateless(&TestDir::new(test), ids, redis, &NodeOptions::default()).await
}
