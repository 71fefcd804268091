//! Stateless cluster mode: every game lives in Redis, every node serves
//! every player, and Redis pub/sub carries the events between nodes.
//!
//! - [`layout`]: the keys, the game hash's fields and the rules' constants
//!   the Lua scripts use, in one Rust module (the scripts' prelude is
//!   generated from it).
//! - [`scripts`]: the Lua scripts (in `lua/`), the only writers of game
//!   state, and the parsing of their answers.
//! - [`store`]: the command connection and the script calls.
//! - [`replicas`]: `--redis-wait-replicas`, events held back until the
//!   replicas have them.
//! - [`pubsub`]: the subscription connection, its ordered subscribe and
//!   unsubscribe, and its recovery after a drop.
//! - [`rooms`]: the games this node has players or spectators in, and the
//!   fan-out of their events, filtered by seq per connection.
//! - [`table`]: `--max-games` across the cluster, counted in Redis (the
//!   game table, see [`layout`]).
//! - [`timers`]: the timer every node runs for its games' deadlines and
//!   lobby auto-starts.
//! - [`matchmaking`]: short codes, the public lobby and quick play.
//! - [`backend`]: ties them together.
//!
//! [`RedisGames`] is what the sessions see. What a node keeps in memory is
//! only routing (who is connected here, to which game); losing a node loses
//! no game: its players reconnect anywhere and resume. A node that cannot
//! reach Redis answers `overloaded` and reports itself not ready; it never
//! acknowledges what Redis did not.

pub mod backend;
pub mod layout;
pub mod matchmaking;
pub mod pubsub;
pub mod replicas;
pub mod rooms;
pub mod scripts;
pub mod store;
pub mod table;
pub mod timers;

use std::net::IpAddr;
use std::sync::Arc;

use game_logic::{PlayerId, PlayerName, Settings, SettingsBounds, Status};
use tokio_util::sync::CancellationToken;
use tracing::debug;
use transport::Outbox;
use uuid::Uuid;

use super::{
    Capacity, Capture, GameCode, GameCounts, GameRef, Games, LobbyView, Lookup, Placed, Requester,
};
use crate::clock::Clock;
use crate::error::ServerError;
use crate::state::NodeInfo;
use backend::Backend;

pub use crate::config::{RedisTarget, ReplicaWait};

/// Why Redis could not serve a request. Players see `overloaded`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis is unreachable, timed out or failed the command.
    #[error("Redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered something the scripts never answer (a bug or a
    /// foreign writer).
    #[error("unexpected answer from Redis: {0}")]
    Reply(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> StoreError {
        StoreError::Unavailable(e.to_string())
    }
}

/// The seat a connection holds in a game kept in Redis.
#[derive(Debug)]
pub struct Seat {
    /// The game.
    pub game: Uuid,
    /// The game's code (for a resync by code).
    pub code: Option<GameCode>,
    /// The seat.
    pub player: PlayerId,
    /// How the scripts know this connection (`<node instance>/<conn>`).
    holder: String,
}

/// What a stateless cluster's games may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `--max-games` (the cluster's, counted on the game table; see
    /// [`layout`]) and `--max-spectators` (per game, cluster-wide).
    pub capacity: Capacity,
    /// How long a game counts on the table without a node renewing it
    /// (`--redis-game-lease-ms`).
    pub game_lease: std::time::Duration,
}

/// One stateless node's games: those in Redis.
#[derive(Debug)]
pub struct RedisGames {
    /// The connections, rooms and tasks (shared with those tasks).
    backend: Arc<Backend>,
    /// This node's name in `/api/node` (`--node-id`).
    node_id: String,
}

impl RedisGames {
    /// Connects to `target` in the background (every event waiting for
    /// `wait`'s replicas, if given) and starts the backend's
    /// tasks, which stop with `stop`. Until Redis answers, requests get
    /// `overloaded` and the node is not ready.
    pub fn launch(
        target: RedisTarget,
        wait: Option<ReplicaWait>,
        node_id: String,
        clock: Clock,
        quota: Quota,
        bounds: SettingsBounds,
        stop: CancellationToken,
    ) -> RedisGames {
        RedisGames {
            backend: Backend::launch(target, wait, clock, bounds, quota, stop),
            node_id,
        }
    }
}

/// A connection watching a game kept in Redis.
#[derive(Debug)]
pub struct Watch {
    /// The game.
    pub game: Uuid,
    /// The game's code (for a resync by code).
    pub code: Option<GameCode>,
    /// How the game's set of spectators knows this connection
    /// (`<node instance>/<conn>`).
    holder: String,
}

impl Games for RedisGames {
    type Seat = Seat;
    type Watch = Watch;
    const MODE: &'static str = "stateless";
    const GAMES_OUTLIVE_NODE: bool = true;

    async fn create(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        // Draining or not: the game is in Redis, where it outlives this
        // node; its host resumes it elsewhere after the drain notice.
        _draining: bool,
    ) -> Result<Placed<Seat>, ServerError> {
        let seat = self
            .backend
            .create(who.conn, who.outbox, name, settings)
            .await?;
        Ok(Placed::Seat(seat))
    }

    async fn quick_play(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        _draining: bool,
    ) -> Result<Placed<Seat>, ServerError> {
        let quick_play = self
            .backend
            .quick_play(who.conn, who.outbox, name, settings);
        Ok(Placed::Seat(Box::pin(quick_play).await?))
    }

    async fn join(
        &self,
        who: Requester<'_>,
        game: GameRef,
        name: PlayerName,
    ) -> Result<Placed<Seat>, ServerError> {
        let seat = self.backend.join(who.conn, who.outbox, game, name).await?;
        Ok(Placed::Seat(seat))
    }

    async fn resume(
        &self,
        who: Requester<'_>,
        game: GameRef,
        token: String,
    ) -> Result<Placed<Seat>, ServerError> {
        let seat = self
            .backend
            .resume(who.conn, who.outbox, game, token)
            .await?;
        Ok(Placed::Seat(seat))
    }

    fn is_seat_in(seat: &Seat, game: &GameRef) -> bool {
        match game {
            GameRef::Id(id) => seat.game == *id,
            GameRef::Code(code) => seat.code == Some(*code),
        }
    }

    fn status(&self, seat: &Seat) -> Option<Status> {
        self.backend.status(seat)
    }

    async fn start(&self, seat: &Seat, _conn: u64, outbox: &Outbox) -> Result<(), ServerError> {
        self.backend.start(seat, outbox).await
    }

    async fn capture(
        &self,
        seat: &Seat,
        capture: Capture,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        // Boxed: a Redis round trip's future is large, and inline it would
        // grow every connection's task, idle or not.
        Box::pin(self.backend.capture(seat, capture, outbox)).await
    }

    async fn leave(&self, seat: Seat, conn: u64) -> Result<(), Seat> {
        self.backend.leave(seat, conn).await
    }

    async fn disconnect(&self, seat: Seat, conn: u64) {
        self.backend.disconnect(seat, conn);
    }

    async fn watch(&self, who: Requester<'_>, game: GameRef) -> Result<Placed<Watch>, ServerError> {
        // Boxed, as for a capture: a Redis round trip's future is large.
        let watch = Box::pin(self.backend.watch(who.conn, who.outbox, &game)).await?;
        Ok(Placed::Seat(watch))
    }

    fn is_watching(watch: &Watch, game: &GameRef) -> bool {
        match game {
            GameRef::Id(id) => watch.game == *id,
            GameRef::Code(code) => watch.code == Some(*code),
        }
    }

    fn watched(watch: &Watch) -> Uuid {
        watch.game
    }

    async fn unwatch(&self, watch: Watch, conn: u64) {
        self.backend.unwatch(watch, conn).await;
    }

    async fn lookup(&self, game: GameRef) -> Lookup {
        let id = match self.backend.resolve(&game).await {
            Ok(id) => id,
            Err(ServerError::UnknownGame) => return Lookup::Unknown("unknown game"),
            Err(_) => return Lookup::Unavailable,
        };
        match self.backend.snapshot(&id).await {
            Ok(Some(snapshot)) => Lookup::Found(snapshot),
            Ok(None) => Lookup::Unknown("unknown game"),
            Err(e) => {
                debug!("cannot read a game from Redis: {e}");
                Lookup::Unavailable
            }
        }
    }

    async fn lobby(&self) -> Result<LobbyView, ServerError> {
        let listings = self.backend.listings().await?;
        Ok(LobbyView::of(listings, self.clock().now()))
    }

    fn counts(&self) -> GameCounts {
        self.backend.counts()
    }

    fn is_ready(&self) -> bool {
        self.backend.is_ready()
    }

    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn is_peer(&self, _ip: IpAddr) -> bool {
        false
    }

    fn cluster_view(&self, _me: &NodeInfo) -> Option<serde_json::Value> {
        None
    }

    fn clock(&self) -> &Clock {
        self.backend.clock()
    }
}
