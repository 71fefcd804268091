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
use redis::{Script, ScriptInvocation, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::layout::{GAMES_KEY, QUEUE_MODE, game_key, node_key, watchers_key};
use super::replicas::Waiter;
use super::scripts::{self, Answer, Scripts};
use super::{RedisTarget, ReplicaWait, StoreError};
use crate::clock::Clock;
use crate::games::GameCode;

/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Longest one request may wait for Redis's answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(2_000);
/// Keys of a game live at most this long after its last change of status
/// or seats (a backstop behind the 60 s retention the scripts set; it
/// outlives any round, so captures do not refresh it).
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

    /// Runs a script, then `WAIT replicas timeout` right behind it on the
    /// same connection (one pipeline; on a cluster, to the script's slot's
    /// master): the script's reply and how many replicas acknowledged.
    pub async fn invoke_then_wait(
        &mut self,
        invocation: &ScriptInvocation<'_>,
        replicas: u32,
        timeout: Duration,
    ) -> Result<(Value, i64), StoreError> {
        let mut pipe = redis::pipe();
        pipe.invoke_script(invocation)
            .cmd("WAIT")
            .arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let call = async {
            let run = async |c: &mut Connection| match c {
                Connection::Single(c) => pipe.query_async::<(Value, i64)>(c).await,
                Connection::Cluster(c) => pipe.query_async::<(Value, i64)>(c).await,
            };
            match run(self).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    // A restarted Redis forgot the script: load it, once.
                    match self {
                        Connection::Single(c) => invocation.load_async(c).await?,
                        Connection::Cluster(c) => invocation.load_async(c).await?,
                    };
                    run(self).await
                }
                other => other,
            }
        };
        Ok(tokio::time::timeout(RESPONSE_TIMEOUT * 2 + timeout, call)
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

/// Script calls failed in a row after which the connection is reopened.
const REOPEN_AFTER_FAILURES: u32 = 3;
/// Captures queued for the batcher (senders wait when it is full).
const CAPTURE_QUEUE: usize = 16_384;
/// Most captures in one script call.
const MAX_BATCH: usize = 128;
/// Capture calls in flight per node on one Redis server. While they are
/// out, later captures queue and leave together in the next call.
const CAPTURES_IN_FLIGHT: usize = 2;
/// How long a batch stays open after its first capture: one tick of
/// latency buys Redis fewer, larger calls (the per-call cost, the event
/// loop's wake-up, the reply and the subscribers' writes are shared by
/// the batch; a profile of Redis at 15k captures/s showed those, not the
/// script, dominating).
const BATCH_TICK: Duration = Duration::from_millis(1);

/// What the store's callers and its capture batcher share: the connection,
/// its health and Redis's clock.
#[derive(Debug)]
struct Link {
    /// `None` until the first connection is made.
    conn: Mutex<Option<Connection>>,
    /// Redis's clock minus this node's, in ms, from the last answer: timers
    /// run on Redis's time so node clocks do not matter.
    offset_ms: AtomicI64,
    /// Whether the last health check (or request) reached Redis.
    healthy: AtomicBool,
    /// Script calls failed in a row: the health check reopens the
    /// connection when they pile up while Redis answers its pings (a
    /// cluster connection can keep routing a failed-over master's slots to
    /// the dead master; a new one reads the slots afresh).
    failures: std::sync::atomic::AtomicU32,
    /// This node's clock.
    clock: Clock,
    /// With `--redis-wait-replicas`: every script call waits for the
    /// replicas, then publishes what it queued.
    waiter: Option<Waiter>,
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        // One assignment per critical section: a poisoned lock is intact.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connection(&self) -> Result<Connection, StoreError> {
        self.lock()
            .clone()
            .ok_or_else(|| StoreError::Unavailable("not connected yet".to_owned()))
    }

    /// Runs `invocation`; a failure marks Redis unhealthy until the next
    /// health check reaches it.
    async fn invoke(&self, invocation: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        self.invoke_waiting(invocation, true).await
    }

    /// [`invoke`](Self::invoke); without `wait`, never through the
    /// replicas' `WAIT` (a script that publishes nothing).
    async fn invoke_waiting(
        &self,
        invocation: &ScriptInvocation<'_>,
        wait: bool,
    ) -> Result<Value, StoreError> {
        let mut conn = self.connection()?;
        let sent = std::time::Instant::now();
        let reply = match self.waiter.as_ref().filter(|_| wait) {
            Some(waiter) => waiter.invoke(&mut conn, invocation).await,
            None => conn.invoke(invocation).await,
        };
        crate::metrics::redis_call(sent.elapsed(), reply.is_ok());
        match reply {
            Ok(reply) => {
                self.failures.store(0, Ordering::Relaxed);
                Ok(reply)
            }
            Err(e) => {
                self.healthy.store(false, Ordering::Relaxed);
                self.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Records Redis's clock as of an answer.
    fn note_now(&self, now: Timestamp) {
        let local = i64::try_from(self.clock.now().as_unix_ms()).unwrap_or(i64::MAX);
        let remote = i64::try_from(now.as_unix_ms()).unwrap_or(i64::MAX);
        self.offset_ms
            .store(remote.saturating_sub(local), Ordering::Relaxed);
    }
}

/// One capture waiting for its batch.
struct Pending {
    /// The game's key.
    key: String,
    seat: String,
    holder: String,
    cell: String,
    /// Where its answer goes.
    reply: oneshot::Sender<Result<Answer, StoreError>>,
}

/// The game store: scripts on a shared reconnecting connection.
#[derive(Debug)]
pub struct Store {
    /// The connection and what is learnt from it.
    link: Arc<Link>,
    scripts: Scripts,
    /// What the scripts do with their events: `SPUBLISH` on a cluster
    /// (sharded pub/sub), `PUBLISH` otherwise, or queue them
    /// ([`QUEUE_MODE`]) with `--redis-wait-replicas`.
    publish: &'static str,
    /// On a cluster a script may only touch keys of one slot: a batch
    /// holds the captures of one game.
    batch_by_game: bool,
    /// The capture batcher's queue, started by the first capture (inside
    /// the runtime); the batcher ends when the store is dropped.
    captures: std::sync::OnceLock<mpsc::Sender<Pending>>,
}

impl Store {
    /// A store for `target`, not yet connected (see [`run_health`](Self::run_health)).
    pub fn new(target: &RedisTarget, clock: Clock) -> Store {
        Store::waiting(target, clock, None)
    }

    /// [`new`](Self::new), with every event held back until `wait`'s
    /// replicas have it (see [`replicas`](super::replicas)).
    pub fn waiting(target: &RedisTarget, clock: Clock, wait: Option<ReplicaWait>) -> Store {
        let scripts = Scripts::new();
        let publish = match target {
            RedisTarget::Single(_) => "PUBLISH",
            RedisTarget::Cluster(_) => "SPUBLISH",
        };
        let waiter = wait.map(|wait| Waiter::new(wait, scripts.flush.clone(), publish));
        Store {
            publish: if waiter.is_some() {
                QUEUE_MODE
            } else {
                publish
            },
            link: Arc::new(Link {
                conn: Mutex::new(None),
                offset_ms: AtomicI64::new(0),
                healthy: AtomicBool::new(false),
                failures: std::sync::atomic::AtomicU32::new(0),
                clock,
                waiter,
            }),
            scripts,
            batch_by_game: matches!(target, RedisTarget::Cluster(_)),
            captures: std::sync::OnceLock::new(),
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
        *self.link.lock() = Some(conn.clone());
        info!("connected to Redis");
        loop {
            if self.link.failures.load(Ordering::Relaxed) >= REOPEN_AFTER_FAILURES {
                match Connection::open(&target).await {
                    Ok(fresh) => {
                        warn!("script calls keep failing; reopened the Redis connection");
                        conn = fresh;
                        *self.link.lock() = Some(conn.clone());
                        self.link.failures.store(0, Ordering::Relaxed);
                    }
                    Err(e) => debug!("cannot reopen the Redis connection yet: {e}"),
                }
            }
            let ok = conn.ping(lease.as_deref()).await;
            let was = self.link.healthy.swap(ok.is_ok(), Ordering::Relaxed);
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

    /// Whether node `instance`'s lease is current.
    pub async fn alive(&self, instance: &str) -> Result<bool, StoreError> {
        let mut conn = self.link.connection()?;
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
        self.link.healthy.load(Ordering::Relaxed)
    }

    /// Converts Redis's time into this node's.
    pub fn local_time(&self, redis: Timestamp) -> Timestamp {
        let offset = self.link.offset_ms.load(Ordering::Relaxed);
        let ms = i64::try_from(redis.as_unix_ms()).unwrap_or(i64::MAX);
        Timestamp::from_unix_ms(u64::try_from(ms.saturating_sub(offset)).unwrap_or(0))
    }

    /// This node's clock.
    pub fn clock(&self) -> &Clock {
        &self.link.clock
    }

    /// Runs one plain command (lobby, codes, quick play's sets).
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.link.connection()?;
        conn.query(cmd).await
    }

    /// Runs `script` on game `id` with the common arguments (publish
    /// command, safety TTL) followed by `args`.
    /// [`run`](Self::run) for a script whose arguments are a seat and the
    /// connection that holds it.
    async fn run_for_seat(
        &self,
        script: &redis::Script,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        let seat = u8::from(seat).to_string();
        self.run(script, id, &[&seat, holder]).await
    }

    async fn run(
        &self,
        script: &redis::Script,
        id: &Uuid,
        args: &[&str],
    ) -> Result<Answer, StoreError> {
        let mut invocation = script.key(game_key(id));
        invocation.arg(self.publish).arg(safety_ttl_ms());
        for arg in args {
            invocation.arg(*arg);
        }
        let reply = self.link.invoke(&invocation).await?;
        let answer = Answer::parse(&reply)?;
        self.link.note_now(answer.now);
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
        self.run_for_seat(&self.scripts.start, id, seat, holder)
            .await
    }

    /// A capture of `cell` (0..=80, checked by the caller), run in a batch
    /// with the captures that queued meanwhile (see [`CAPTURES_IN_FLIGHT`]),
    /// in arrival order: first writer still wins.
    pub async fn capture(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
        cell: game_logic::Cell,
    ) -> Result<Answer, StoreError> {
        let queue = self.captures.get_or_init(|| {
            let (tx, rx) = mpsc::channel(CAPTURE_QUEUE);
            tokio::spawn(batch_captures(
                Batcher {
                    link: self.link.clone(),
                    script: self.scripts.capture.clone(),
                    publish: self.publish,
                    by_game: self.batch_by_game,
                },
                rx,
            ));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key: game_key(id),
            seat: u8::from(seat).to_string(),
            holder: holder.to_owned(),
            cell: u8::from(cell).to_string(),
            reply,
        };
        queue
            .send(pending)
            .await
            .map_err(|_| StoreError::Unavailable("the capture batcher stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the capture batch was dropped".to_owned()))?
    }

    /// The player leaves.
    pub async fn leave(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        self.run_for_seat(&self.scripts.leave, id, seat, holder)
            .await
    }

    /// The holding connection ended without `leave`.
    pub async fn disconnect(
        &self,
        id: &Uuid,
        seat: PlayerId,
        holder: &str,
    ) -> Result<Answer, StoreError> {
        self.run_for_seat(&self.scripts.disconnect, id, seat, holder)
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

    /// `holder` watches game `id` (again: a resync), unless `max` others do
    /// (`game_full`); answers the whole game.
    pub async fn watch(&self, id: &Uuid, holder: &str, max: usize) -> Result<Answer, StoreError> {
        self.run(&self.scripts.watch, id, &[holder, &max.to_string()])
            .await
    }

    /// Renews the leases of `holders` on game `id`, adding those missing
    /// with `add_missing`; answers the holders that were missing.
    pub async fn renew(
        &self,
        id: &Uuid,
        holders: &[String],
        add_missing: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut invocation = self.scripts.renew.key(game_key(id));
        invocation
            .arg(self.publish)
            .arg(safety_ttl_ms())
            .arg(if add_missing { "1" } else { "0" });
        for holder in holders {
            invocation.arg(holder.as_str());
        }
        let reply = self.link.invoke(&invocation).await?;
        let (now, missing) = scripts::parse_renewed(&reply)?;
        self.link.note_now(now);
        Ok(missing)
    }

    /// `holder` stops watching game `id` (it stops counting at once).
    pub async fn unwatch(&self, id: &Uuid, holder: &str) -> Result<(), StoreError> {
        let cmd = redis::Cmd::zrem(watchers_key(id), holder);
        self.query::<Value>(&cmd).await.map(|_| ())
    }

    /// Admits game `id` to the cluster's game table for `lease`, unless
    /// `max` games count (see [`layout`](super::layout)'s docs): whether
    /// it was admitted, and how many games count now.
    pub async fn admit(
        &self,
        id: &Uuid,
        max: usize,
        lease: Duration,
    ) -> Result<(bool, u64), StoreError> {
        let mut invocation = self.scripts.admit.key(GAMES_KEY);
        invocation
            .arg(id.to_string())
            .arg(max)
            .arg(duration_ms(lease));
        let reply = self.link.invoke_waiting(&invocation, false).await?;
        scripts::parse_admitted(&reply)
    }

    /// Leases `games` on the table for `lease` more and drops the games
    /// whose lease ran out; how many games count now.
    pub async fn lease(&self, games: &[Uuid], lease: Duration) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.lease.key(GAMES_KEY);
        invocation.arg(duration_ms(lease));
        for id in games {
            invocation.arg(id.to_string());
        }
        let reply = self.link.invoke_waiting(&invocation, false).await?;
        scripts::parse_counted(&reply)
    }

    /// Takes `games` off the table (completed, or never created).
    pub async fn release(&self, games: &[Uuid]) -> Result<(), StoreError> {
        if games.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = games.iter().map(Uuid::to_string).collect();
        let cmd = redis::Cmd::zrem(GAMES_KEY, ids);
        self.query::<Value>(&cmd).await.map(|_| ())
    }
}

fn safety_ttl_ms() -> u64 {
    duration_ms(SAFETY_TTL)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The capture batcher: takes what arrives within a tick of a batch's
/// first capture (or queued while the calls in flight were out) and sends
/// it as one script call (one per game on a cluster).
async fn batch_captures(batcher: Batcher, mut queue: mpsc::Receiver<Pending>) {
    let batcher = Arc::new(batcher);
    let permits = Arc::new(Semaphore::new(CAPTURES_IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return; // the store is gone
        };
        let mut batch = vec![first];
        let tick = tokio::time::sleep(BATCH_TICK);
        tokio::pin!(tick);
        while batch.len() < MAX_BATCH {
            tokio::select! {
                biased;
                p = queue.recv() => match p {
                    Some(p) => batch.push(p),
                    None => break,
                },
                () = &mut tick => break,
            }
        }
        if batcher.by_game {
            // Games live on different masters: one slow or failing master
            // must not hold back the captures of the others, so the calls
            // of a cluster are not counted in flight (the tick still
            // batches each game's captures).
            drop(permit);
            for group in by_game(batch) {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.run(group).await });
            }
        } else {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                batcher.run(batch).await;
                drop(permit);
            });
        }
    }
}

/// The batch as one group per game, each in arrival order.
fn by_game(batch: Vec<Pending>) -> Vec<Vec<Pending>> {
    let mut groups: Vec<Vec<Pending>> = Vec::new();
    for p in batch {
        match groups.iter_mut().find(|g| g[0].key == p.key) {
            Some(g) => g.push(p),
            None => groups.push(vec![p]),
        }
    }
    groups
}

/// What the capture batcher's calls need.
struct Batcher {
    link: Arc<Link>,
    script: Script,
    publish: &'static str,
    /// One call per game (a cluster), or one for the whole batch.
    by_game: bool,
}

impl Batcher {
    /// One capture script call for `batch`; answers every capture in it.
    async fn run(&self, batch: Vec<Pending>) {
        let mut invocation = self.script.prepare_invoke();
        for p in &batch {
            invocation.key(p.key.as_str());
        }
        invocation.arg(self.publish).arg(safety_ttl_ms());
        for p in &batch {
            invocation
                .arg(p.seat.as_str())
                .arg(p.holder.as_str())
                .arg(p.cell.as_str());
        }
        let answers = match self.link.invoke(&invocation).await {
            Ok(reply) => scripts::parse_captures(&reply, batch.len()),
            Err(e) => Err(e),
        };
        match answers {
            Ok(answers) => {
                if let Some(first) = answers.first() {
                    self.link.note_now(first.now);
                }
                for (p, answer) in batch.into_iter().zip(answers) {
                    // A dropped receiver is a session that ended meanwhile:
                    // nobody is left to tell.
                    let _ = p.reply.send(Ok(answer));
                }
            }
            Err(e) => {
                debug!("a capture batch of {} failed: {e}", batch.len());
                for p in batch {
                    let error = match &e {
                        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
                        StoreError::Reply(m) => StoreError::Reply(m.clone()),
                    };
                    // As above: the session may have ended.
                    let _ = p.reply.send(Err(error));
                }
            }
        }
    }
}
