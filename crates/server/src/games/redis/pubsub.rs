//! The subscribing side of Redis: one connection that subscribes to the
//! channel of every game this node has players in, and survives losing it.
//!
//! Subscribes and unsubscribes go through one task, in order, so an
//! unsubscribe of an emptied room can never undo the subscribe of the same
//! game entered again just after. Messages arrive as RESP3 pushes (which
//! redis-rs uses for both `SUBSCRIBE` on one server and `SSUBSCRIBE` on a
//! cluster), and so does the library's notice that the connection dropped.
//!
//! **Recovery.** After a drop (a `CLIENT KILL TYPE pubsub`, a Redis restart,
//! a network cut), events published meanwhile are lost for this node. The
//! task waits until the connection answers again, subscribes to every
//! room's channel again (the library does too; twice is harmless), and only
//! then marks every local player stale and resyncs them with fresh
//! snapshots: a snapshot read after the subscription is back, plus the
//! events after it, is complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::layout::{channel_game, game_channel};
use super::store::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use super::{RedisTarget, StoreError};

/// Queued subscription operations.
const OPS_QUEUE: usize = 4096;
/// Pause between attempts while Redis is unreachable.
const RETRY: Duration = Duration::from_millis(200);

/// What the subscription task is asked to do.
#[derive(Debug)]
pub enum Op {
    /// Subscribe to a game's channel; answers once Redis confirmed.
    Subscribe(Uuid, oneshot::Sender<Result<(), StoreError>>),
    /// Unsubscribe, unless the game's room exists again by then.
    Unsubscribe(Uuid),
    /// The connection dropped: recover (see the module docs).
    Recover,
}

/// A subscription connection of either kind.
enum SubConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl SubConnection {
    async fn open(
        target: &RedisTarget,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> Result<SubConnection, StoreError> {
        let connect = async {
            match target {
                RedisTarget::Single(url) => {
                    let client = redis::Client::open(url.as_str())?;
                    let info = client.get_connection_info().clone().set_redis_settings(
                        client
                            .get_connection_info()
                            .redis_settings()
                            .clone()
                            .set_protocol(ProtocolVersion::RESP3),
                    );
                    let client = redis::Client::open(info)?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT))
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_millis(500))
                        .set_push_sender(pushes)
                        .set_automatic_resubscription();
                    Ok::<_, StoreError>(SubConnection::Single(
                        ConnectionManager::new_with_config(client, config).await?,
                    ))
                }
                RedisTarget::Cluster(urls) => {
                    let client = redis::cluster::ClusterClient::builder(urls.clone())
                        .use_protocol(ProtocolVersion::RESP3)
                        .push_sender(pushes)
                        .connection_timeout(CONNECT_TIMEOUT)
                        .response_timeout(RESPONSE_TIMEOUT)
                        .retries(2)
                        .build()?;
                    Ok(SubConnection::Cluster(client.get_async_connection().await?))
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT * 3, connect)
            .await
            .map_err(|_| StoreError::Unavailable("connecting timed out".to_owned()))?
    }

    async fn subscribe(&mut self, id: &Uuid) -> Result<(), StoreError> {
        let channel = game_channel(id);
        let call = async {
            match self {
                SubConnection::Single(c) => c.subscribe(&channel).await,
                SubConnection::Cluster(c) => c.ssubscribe(&channel).await,
            }
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Unavailable("subscribe timed out".to_owned()))??;
        Ok(())
    }

    async fn unsubscribe(&mut self, id: &Uuid) -> Result<(), StoreError> {
        let channel = game_channel(id);
        let call = async {
            match self {
                SubConnection::Single(c) => c.unsubscribe(&channel).await,
                SubConnection::Cluster(c) => c.sunsubscribe(&channel).await,
            }
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Unavailable("unsubscribe timed out".to_owned()))??;
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        let cmd = redis::cmd("PING");
        let call = async {
            match self {
                SubConnection::Single(c) => cmd.query_async::<Value>(c).await,
                SubConnection::Cluster(c) => cmd.query_async::<Value>(c).await,
            }
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Unavailable("ping timed out".to_owned()))??;
        Ok(())
    }
}

/// A message that arrived on a game channel.
#[derive(Debug)]
pub struct Delivery {
    /// The game.
    pub game: Uuid,
    /// The raw payload (see `scripts::ChannelMessage`).
    pub payload: bytes::Bytes,
}

/// What the pushes of the subscription connection mean to the node.
#[derive(Debug)]
pub enum Push {
    /// A message on a game channel.
    Message(Delivery),
    /// The connection dropped; messages may have been lost.
    Disconnected,
}

/// Reads the pushes of a subscription connection.
pub fn classify(push: PushInfo) -> Option<Push> {
    match push.kind {
        PushKind::Message | PushKind::SMessage => {
            let mut data = push.data.into_iter();
            let channel = match data.next()? {
                Value::BulkString(b) => String::from_utf8(b).ok()?,
                Value::SimpleString(s) => s,
                _ => return None,
            };
            let payload = match data.next()? {
                Value::BulkString(b) => bytes::Bytes::from(b),
                _ => return None,
            };
            Some(Push::Message(Delivery {
                game: channel_game(&channel)?,
                payload,
            }))
        }
        PushKind::Disconnection => Some(Push::Disconnected),
        _ => None,
    }
}

/// The handle to the subscription task.
#[derive(Debug, Clone)]
pub struct Subscriber {
    ops: mpsc::Sender<Op>,
    /// Whether the subscription connection is up (for `/readyz`).
    healthy: Arc<AtomicBool>,
}

/// What the subscription task needs from the rest of the backend.
pub trait Recovery: Send + Sync + 'static {
    /// Ids of every room, to subscribe again.
    fn rooms(&self) -> Vec<Uuid>;
    /// Whether game `id` still has a room here.
    fn has_room(&self, id: &Uuid) -> bool;
    /// The subscriptions are back: resync every local player.
    fn resync_all(&self);
}

impl Subscriber {
    /// Starts the subscription task; pushes go to `pushes`.
    pub fn start(
        target: RedisTarget,
        pushes: mpsc::UnboundedSender<PushInfo>,
        recovery: Arc<dyn Recovery>,
        stop: CancellationToken,
    ) -> Subscriber {
        let (ops, rx) = mpsc::channel(OPS_QUEUE);
        let healthy = Arc::new(AtomicBool::new(false));
        let task = Task {
            target,
            pushes,
            conn: None,
            recovery,
            healthy: healthy.clone(),
        };
        tokio::spawn(task.run(rx, stop));
        Subscriber { ops, healthy }
    }

    /// Subscribes to game `id`'s channel; returns once Redis confirmed.
    pub async fn subscribe(&self, id: Uuid) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Subscribe(id, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the node is stopping".to_owned()))?;
        tokio::time::timeout(RESPONSE_TIMEOUT * 3, answer)
            .await
            .map_err(|_| StoreError::Unavailable("subscribe timed out".to_owned()))?
            .map_err(|_| StoreError::Unavailable("the node is stopping".to_owned()))?
    }

    /// Queues an unsubscribe from game `id`'s channel.
    pub fn unsubscribe(&self, id: Uuid) {
        if let Err(e) = self.ops.try_send(Op::Unsubscribe(id)) {
            // A full queue only leaves an idle subscription behind.
            debug!(game = %id, "unsubscribe not queued: {e}");
        }
    }

    /// The connection dropped: recover.
    pub fn recover(&self) {
        self.healthy.store(false, Ordering::Relaxed);
        if let Err(e) = self.ops.try_send(Op::Recover) {
            warn!("recovery not queued: {e}");
        }
    }

    /// Whether the subscription connection is up.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

struct Task {
    target: RedisTarget,
    pushes: mpsc::UnboundedSender<PushInfo>,
    conn: Option<SubConnection>,
    recovery: Arc<dyn Recovery>,
    healthy: Arc<AtomicBool>,
}

impl Task {
    async fn run(mut self, mut ops: mpsc::Receiver<Op>, stop: CancellationToken) {
        // Connect eagerly so `/readyz` turns ready without a first player.
        self.connect().await;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let op = tokio::select! {
                () = stop.cancelled() => return,
                op = ops.recv() => match op {
                    Some(op) => op,
                    None => return,
                },
                _ = tick.tick() => {
                    if self.conn.is_none() && self.connect().await {
                        self.recover(&stop).await;
                    }
                    continue;
                }
            };
            match op {
                Op::Subscribe(id, reply) => {
                    let result = match self.ready().await {
                        Some(conn) => conn.subscribe(&id).await,
                        None => Err(StoreError::Unavailable("Redis is unreachable".to_owned())),
                    };
                    if reply.send(result).is_err() {
                        debug!(game = %id, "subscriber went away");
                    }
                }
                Op::Unsubscribe(id) => {
                    if !self.recovery.has_room(&id)
                        && let Some(conn) = self.conn.as_mut()
                        && let Err(e) = conn.unsubscribe(&id).await
                    {
                        debug!(game = %id, "unsubscribe failed: {e}");
                    }
                }
                Op::Recover => self.recover(&stop).await,
            }
        }
    }

    /// The connection, connecting first if there is none.
    async fn ready(&mut self) -> Option<&mut SubConnection> {
        if self.conn.is_none() && !self.connect().await {
            return None;
        }
        self.conn.as_mut()
    }

    async fn connect(&mut self) -> bool {
        match SubConnection::open(&self.target, self.pushes.clone()).await {
            Ok(conn) => {
                info!("subscription connection to Redis open");
                self.conn = Some(conn);
                self.healthy.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                debug!("cannot open the subscription connection: {e}");
                false
            }
        }
    }

    /// Waits until the connection answers, subscribes every room again and
    /// resyncs every local player.
    async fn recover(&mut self, stop: &CancellationToken) {
        self.healthy.store(false, Ordering::Relaxed);
        crate::metrics::pubsub_reconnect();
        warn!("subscription connection lost; recovering");
        loop {
            let ok = match self.ready().await {
                Some(conn) => conn.ping().await.is_ok(),
                None => false,
            };
            if ok {
                break;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
        let mut failed = false;
        for id in self.recovery.rooms() {
            if let Some(conn) = self.conn.as_mut()
                && let Err(e) = conn.subscribe(&id).await
            {
                warn!(game = %id, "cannot subscribe again: {e}");
                failed = true;
                break;
            }
        }
        if failed {
            // Try the whole recovery again shortly, on a new connection: a
            // cluster connection may still route a failed-over master's
            // slots to the old address (`MOVED`, timeouts).
            self.conn = None;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
            Box::pin(self.recover(stop)).await;
            return;
        }
        self.healthy.store(true, Ordering::Relaxed);
        info!("subscriptions restored; resyncing local players");
        self.recovery.resync_all();
        crate::metrics::pubsub_resynced();
    }
}
