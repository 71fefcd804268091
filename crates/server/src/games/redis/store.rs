//! The command side of Redis: one reconnecting connection (a
//! `ConnectionManager`, or a cluster connection that follows the slots), the
//! scripts invoked on it, and what this node knows of Redis's clock.
//!
//! Requests from every session share the connection (redis-rs multiplexes
//! and pipelines them). Until the first connection is made, and whenever a
//! request fails, callers get [`StoreError::Unavailable`], which players see
//! as `error{code:"overloaded"}`: nothing is acknowledged that Redis did not
//! acknowledge first.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use game_logic::{PlayerId, PlayerName, Settings, Timestamp};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ScriptInvocation, Value};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use super::layout::{game_key, node_key};
use super::scripts::{Answer, Scripts};
use super::{RedisTarget, StoreError};
use crate::clock::Clock;
use crate::games::GameCode;

/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Longest one request may wait for Redis's answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(2_000);
/// Keys of a game live at most this long without a mutation (a backstop
/// behind the 60 s retention the scripts set).
pub const SAFETY_TTL: Duration = Duration::from_secs(3_600);
/// How often the health check pings Redis (and renews this node's lease).
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// A node whose lease key is this old is taken for dead: the seats it held
/// are marked disconnected by the other nodes (see `Backend`'s sweep).
pub const LEASE: Duration = Duration::from_secs(5);

/// A command connection of either kind.
#[derive(Clone)]
pub enum Connection {
    /// One Redis server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::Single(_) => f.write_str("Connection::Single"),
            Connection::Cluster(_) => f.write_str("Connection::Cluster"),
        }
    }
}

impl Connection {
    /// Connects once (no retry beyond the library's own).
    pub async fn open(target: &RedisTarget) -> Result<Connection, StoreError> {
        match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                let manager = tokio::time::timeout(
                    CONNECT_TIMEOUT * 3,
                    ConnectionManager::new_with_config(client, config),
                )
                .await
                .map_err(|_| StoreError::Unavailable("connecting timed out".to_owned()))??;
                Ok(Connection::Single(manager))
            }
            RedisTarget::Cluster(urls) => {
                let client = redis::cluster::ClusterClient::builder(urls.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2)
                    .build()?;
                let conn = tokio::time::timeout(CONNECT_TIMEOUT * 3, client.get_async_connection())
                    .await
                    .map_err(|_| StoreError::Unavailable("connecting timed out".to_owned()))??;
                Ok(Connection::Cluster(conn))
            }
        }
    }

    /// Runs a script.
    pub async fn invoke(&mut self, invocation: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        let call = async {
            match self {
                Connection::Single(c) => invocation.invoke_async(c).await,
                Connection::Cluster(c) => invocation.invoke_async(c).await,
            }
        };
        // The library's response timeout bounds each request; this bounds a
        // reconnect in the middle of one too.
        Ok(tokio::time::timeout(RESPONSE_TIMEOUT * 2, call)
            .await
            .map_err(|_| StoreError::Unavailable("request timed out".to_owned()))??)
    }

    /// One command, bounded like a script call.
    pub async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let call = async {
            match self {
                Connection::Single(c) => cmd.query_async::<T>(c).await,
                Connection::Cluster(c) => cmd.query_async::<T>(c).await,
            }
        };
        Ok(tokio::time::timeout(RESPONSE_TIMEOUT * 2, call)
            .await
            .map_err(|_| StoreError::Unavailable("request timed out".to_owned()))??)
    }

    /// `PING`, or with `lease`, `SET <lease> 1 PX <LEASE>`: bounded.
    pub async fn ping(&mut self, lease: Option<&str>) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("PING");
        if let Some(key) = lease {
            cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(1)
                .arg("PX")
                .arg(u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX));
        }
        let call = async {
            match self {
                Connection::Single(c) => cmd.query_async::<Value>(c).await,
                Connection::Cluster(c) => cmd.query_async::<Value>(c).await,
            }
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Unavailable("ping timed out".to_owned()))??;
        Ok(())
    }
}

/// The game store: scripts on a shared reconnecting connection.
#[derive(Debug)]
pub struct Store {
    /// `None` until the first connection is made.
    conn: Mutex<Option<Connection>>,
    scripts: Scripts,
    /// `SPUBLISH` on a cluster (sharded pub/sub), `PUBLISH` otherwise.
    publish: &'static str,
    /// Redis's clock minus this node's, in ms, from the last answer: timers
    /// run on Redis's time so node clocks do not matter.
    offset_ms: AtomicI64,
    /// Whether the last health check reached Redis.
    healthy: AtomicBool,
    /// This node's clock.
    clock: Clock,
}

impl Store {
    /// A store for `target`, not yet connected (see [`run_health`](Self::run_health)).
    pub fn new(target: &RedisTarget, clock: Clock) -> Store {
        Store {
            conn: Mutex::new(None),
            scripts: Scripts::new(),
            publish: match target {
                RedisTarget::Single(_) => "PUBLISH",
                RedisTarget::Cluster(_) => "SPUBLISH",
            },
            offset_ms: AtomicI64::new(0),
            healthy: AtomicBool::new(false),
            clock,
        }
    }

    /// Connects (retrying until it works or `stop`), then pings every
    /// half second to keep [`is_healthy`](Self::is_healthy) current; with
    /// `instance`, each ping renews that node's lease.
    pub async fn run_health(
        self: Arc<Self>,
        target: RedisTarget,
        instance: Option<String>,
        stop: CancellationToken,
    ) {
        let lease = instance.as_deref().map(node_key);
        let mut conn = loop {
            match Connection::open(&target).await {
                Ok(c) => break c,
                Err(e) => {
                    warn!("cannot reach Redis yet: {e}");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(HEALTH_INTERVAL) => {}
                    }
                }
            }
        };
        *self.lock() = Some(conn.clone());
        info!("connected to Redis");
        loop {
            let ok = conn.ping(lease.as_deref()).await;
            let was = self.healthy.swap(ok.is_ok(), Ordering::Relaxed);
            match (&ok, was) {
                (Err(e), true) => warn!("Redis unreachable: {e}"),
                (Ok(()), false) => info!("Redis reachable"),
                _ => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(HEALTH_INTERVAL) => {}
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        // One assignment per critical section: a poisoned lock is intact.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether node `instance`'s lease is current.
    pub async fn alive(&self, instance: &str) -> Result<bool, StoreError> {
        let mut conn = self
            .lock()
            .clone()
            .ok_or_else(|| StoreError::Unavailable("not connected yet".to_owned()))?;
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(node_key(instance));
        let call = async {
            match &mut conn {
                Connection::Single(c) => cmd.query_async::<i64>(c).await,
                Connection::Cluster(c) => cmd.query_async::<i64>(c).await,
            }
        };
        let n = tokio::time::timeout(RESPONSE_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Unavailable("EXISTS timed out".to_owned()))??;
        Ok(n > 0)
    }

    /// Whether Redis answered the last health check.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Converts Redis's time into this node's.
    pub fn local_time(&self, redis: Timestamp) -> Timestamp {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        let ms = i64::try_from(redis.as_unix_ms()).unwrap_or(i64::MAX);
        Timestamp::from_unix_ms(u64::try_from(ms.saturating_sub(offset)).unwrap_or(0))
    }

    /// This node's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Runs one plain command (lobby, codes, quick play's sets).
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self
            .lock()
            .clone()
            .ok_or_else(|| StoreError::Unavailable("not connected yet".to_owned()))?;
        conn.query(cmd).await
    }

    /// Runs `script` on game `id` with the common arguments (publish
    /// command, safety TTL) followed by `args`.
    async fn run(
        &self,
        script: &redis::Script,
        id: &Uuid,
        args: &[&str],
    ) -> Result<Answer, StoreError> {
        let mut conn = self
            .lock()
            .clone()
            .ok_or_else(|| StoreError::Unavailable("not connected yet".to_owned()))?;
        let mut invocation = script.key(game_key(id));
        invocation
            .arg(self.publish)
            .arg(u64::try_from(SAFETY_TTL.as_millis()).unwrap_or(u64::MAX));
        for arg in args {
            invocation.arg(*arg);
        }
        let reply = match conn.invoke(&invocation).await {
            Ok(reply) => reply,
            Err(e) => {
                self.healthy.store(false, Ordering::Relaxed);
                return Err(e);
            }
        };
        let answer = Answer::parse(&reply)?;
        let local = i64::try_from(self.clock.now().as_unix_ms()).unwrap_or(i64::MAX);
        let remote = i64::try_from(answer.now.as_unix_ms()).unwrap_or(i64::MAX);
        self.offset_ms
            .store(remote.saturating_sub(local), Ordering::Relaxed);
        Ok(answer)
    }

    /// Creates game `id` (short code `code`) with its host in seat 0
    /// (`Exists` on a collision).
    pub async fn create(
        &self,
        id: &Uuid,
        code: &GameCode,
        name: &PlayerName,
        settings: &Settings,
        token_hash: &str,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string();
        let args = [
            name.as_str(),
            &settings.max_players().to_string(),
            &ms(settings.duration()),
            &settings.min_players().to_string(),
            token_hash,
            holder,
            code.as_str(),
            if settings.public() { "1" } else { "0" },
            &ms(settings.lobby_start()),
        ];
        self.run(&self.scripts.create, id, &args).await
    }

    /// Seats `name` in the lowest free seat of game `id`; with `quick`,
    /// only in a public game someone is connected to (else `NotOpen`).
    pub async fn join(
        &self,
        id: &Uuid,
        name: &PlayerName,
        token_hash: &str,
        holder: &str,
        quick: bool,
    ) -> Result<Answer, StoreError> {
        let args = [
            name.as_str(),
            token_hash,
            holder,
            if quick { "1" } else { "0" },
        ];
        self.run(&self.scripts.join, id, &args).await
    }

    /// Gives the seat whose token hashes to `token_hash` to `holder`.
    pub async fn resume(
        &self,
        id: &Uuid,
        token_hash: &str,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        self.run(&self.scripts.resume, id, &[token_hash, holder])
            .await
    }

    /// The host starts the round.
    pub async fn start(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        let seat = u8::from(seat).to_string();
        self.run(&self.scripts.start, id, &[&seat, holder]).await
    }

    /// A capture of `cell` (0..=80, checked by the caller).
    pub async fn capture(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
        cell: game_logic::Cell,
    ) -> Result<Answer, StoreError> {
        let seat = u8::from(seat).to_string();
        let cell = u8::from(cell).to_string();
        self.run(&self.scripts.capture, id, &[&seat, holder, &cell])
            .await
    }

    /// The player leaves.
    pub async fn leave(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        let seat = u8::from(seat).to_string();
        self.run(&self.scripts.leave, id, &[&seat, holder]).await
    }

    /// The holding connection ended without `leave`.
    pub async fn disconnect(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        let seat = u8::from(seat).to_string();
        self.run(&self.scripts.disconnect, id, &[&seat, holder])
            .await
    }

    /// Ends the round if its deadline has passed; answers status and deadline.
    pub async fn finish(&self, id: &Uuid) -> Result<Answer, StoreError> {
        self.run(&self.scripts.finish, id, &[]).await
    }

    /// The whole game, read-only.
    pub async fn snapshot(&self, id: &Uuid) -> Result<Answer, StoreError> {
        self.run(&self.scripts.snapshot, id, &[]).await
    }
}
