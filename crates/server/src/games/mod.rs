//! Where games are kept: the one seam between a player's session and the
//! three server modes.
//!
//! A session (`crate::session`) and the HTTP routes (`crate::edge::http`)
//! ask [`Games`] and nothing else; each mode is one implementation in a
//! folder of its own:
//!
//! - [`local`]: single node. One task per game in this process
//!   ([`local::task`]), found through a registry ([`local::registry`]).
//! - [`ring`]: stateful cluster. The games this node owns are local games;
//!   a game another node owns is reached by relaying the connection there
//!   ([`ring::relay`]). The consistent-hash ring ([`ring::hash`]) names the
//!   owner; probes ([`ring::membership`]) tell which peers are up.
//! - [`redis`]: stateless cluster. Every game lives in Redis, changed only by
//!   Lua scripts; events come back through pub/sub.
//!
//! Shared by the modes: [`code`] (short codes), [`lobby`] (public games'
//! listings) and [`tally`] (games by status, kept as they change).
//!
//! Adding a mode is adding a folder with a type that implements [`Games`],
//! and one arm in `crate::server::run`, where the configured topology picks
//! the backend.

pub mod code;
pub mod lobby;
pub mod local;
pub mod redis;
pub mod ring;
pub mod tally;

use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;

use bytes::Bytes;
use game_logic::{Cell, PlayerName, Settings, Status};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use transport::Outbox;
use transport::protocol::GameSnapshot;
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::ServerError;
pub use code::{GameCode, GameRef};
pub use lobby::LobbyView;
pub use local::moving::{MovedGame, WaitingGame};
pub use ring::relay::{HOPS_HEADER, Relay};

/// The connection that asks for a seat, as every seating request carries it.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    /// The connection's id (its outbox id).
    pub conn: u64,
    /// Where its answers and the game's events go.
    pub outbox: &'a Outbox,
    /// The request, undecoded: a relay replays it to the game's owner.
    pub frame: Bytes,
    /// Relays this connection already passed through (0 for a player).
    pub hops: u32,
}

/// Where a seating request left the connection.
#[derive(Debug)]
pub enum Placed<S> {
    /// Seated in a game this backend serves; `joined` is queued.
    Seat(S),
    /// Relayed to the node that owns the game: from now on the connection's
    /// frames are copied there undecoded, and its answers come from there.
    Relayed(Relay),
}

/// The game a snapshot request found, as the HTTP API answers it.
#[derive(Debug)]
pub enum Lookup {
    /// Served here.
    Found(GameSnapshot),
    /// Answered by the node that owns the game: its status and JSON body.
    Forwarded {
        /// The owner's HTTP status.
        status: u16,
        /// The owner's body.
        body: Bytes,
    },
    /// No such game; the text says why, for humans.
    Unknown(&'static str),
    /// Where the game lives cannot be reached now.
    Unavailable,
}

/// How much a node's games may hold (`--max-games`, `--max-spectators`,
/// `--max-unattended-games`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Games held at once; more `create`s get `overloaded`.
    pub games: usize,
    /// Connections watching one game; more `watch`es get `game_full`.
    pub spectators: usize,
    /// Waiting games nobody is connected to held at once before the oldest
    /// is dropped early (0: no cap; single and stateful modes).
    pub unattended: usize,
}

/// Games by status, as `/api/node` and `/metrics` report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameCounts {
    /// Waiting for players.
    pub waiting: u64,
    /// Round running.
    pub active: u64,
    /// Finished, still retained.
    pub completed: u64,
    /// Of the waiting ones, those nobody is connected to (single and
    /// stateful modes; stateless nodes report 0).
    #[serde(default)]
    pub unattended: u64,
}

impl GameCounts {
    /// Every game, whatever its status.
    pub fn total(&self) -> u64 {
        self.waiting + self.active + self.completed
    }

    /// Counts one game of `status`.
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Waiting => self.waiting += 1,
            Status::Active => self.active += 1,
            Status::Completed => self.completed += 1,
        }
    }
}

/// What a player's session and the HTTP routes ask of the games. One
/// implementation per server mode; see the module docs.
///
/// Seating (`create`, `join`, `resume`) queues `joined` to the requester's
/// outbox and the game's events after it; refusals come back as
/// [`ServerError`], which the session turns into the wire answer. A seat is
/// used by one connection at a time; commands from a connection that lost
/// its seat (replaced by a resume elsewhere) are dropped silently.
pub trait Games: Send + Sync + Debug + 'static {
    /// The seat a connection holds in this backend.
    type Seat: Send + Sync + Debug;

    /// A connection watching a game of this backend (protocol §7).
    type Watch: Send + Sync + Debug;

    /// The mode's name in `/api/node` (`single`, `stateful`, `stateless`).
    const MODE: &'static str;

    /// Whether the games outlive this process (stateless: they are in
    /// Redis), so that a drain need not wait for rounds to end: the players
    /// resume on another node.
    const GAMES_OUTLIVE_NODE: bool = false;

    /// Creates a game hosted by the requester. `draining`: this node takes
    /// no new games (a cluster may hand the request to a ready peer).
    fn create(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        draining: bool,
    ) -> impl Future<Output = Result<Placed<Self::Seat>, ServerError>> + Send;

    /// Seats the requester in the waiting game `game`.
    fn join(
        &self,
        who: Requester<'_>,
        game: GameRef,
        name: PlayerName,
    ) -> impl Future<Output = Result<Placed<Self::Seat>, ServerError>> + Send;

    /// Quick play: seats the requester in the public waiting game of its
    /// size (`settings.max_players()`) that has waited longest, or creates
    /// one with `settings` (public, the default round). Never two seats in
    /// one, never two half-empty games of one size side by side.
    fn quick_play(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        draining: bool,
    ) -> impl Future<Output = Result<Placed<Self::Seat>, ServerError>> + Send;

    /// Gives the requester the seat of `token` in `game`.
    fn resume(
        &self,
        who: Requester<'_>,
        game: GameRef,
        token: String,
    ) -> impl Future<Output = Result<Placed<Self::Seat>, ServerError>> + Send;

    /// Whether `seat` is in the game a client named.
    fn is_seat_in(seat: &Self::Seat, game: &GameRef) -> bool;

    /// The status of the seat's game as this node last saw it.
    fn status(&self, seat: &Self::Seat) -> Option<Status>;

    /// The seat's player (the host) starts the round.
    fn start(
        &self,
        seat: &Self::Seat,
        conn: u64,
        outbox: &Outbox,
    ) -> impl Future<Output = Result<(), ServerError>> + Send;

    /// A capture of `cell`; a refusal of the rules is answered `rejected`
    /// (with the client's `cell` and `reference`) by the backend.
    fn capture(
        &self,
        seat: &Self::Seat,
        capture: Capture,
        outbox: &Outbox,
    ) -> impl Future<Output = Result<(), ServerError>> + Send;

    /// The connection gives up its seat (`leave`, or moving to another game
    /// after this one completed). Hands the seat back when the leave could
    /// not be recorded: it did not happen.
    fn leave(
        &self,
        seat: Self::Seat,
        conn: u64,
    ) -> impl Future<Output = Result<(), Self::Seat>> + Send;

    /// The connection holding `seat` ended without `leave`.
    fn disconnect(&self, seat: Self::Seat, conn: u64) -> impl Future<Output = ()> + Send;

    /// The requester watches `game`: `watching` is queued to its outbox
    /// (its `spectators` count including it), then every broadcast event of
    /// the game. Watching the game it already watches is a resync: a fresh
    /// `watching`, counted once. `game_full` beyond `--max-spectators`.
    fn watch(
        &self,
        who: Requester<'_>,
        game: GameRef,
    ) -> impl Future<Output = Result<Placed<Self::Watch>, ServerError>> + Send;

    /// Whether `watch` is of the game a client named.
    fn is_watching(watch: &Self::Watch, game: &GameRef) -> bool;

    /// The id of the watched game.
    fn watched(watch: &Self::Watch) -> Uuid;

    /// The connection stops watching. When this returns, no further event
    /// of the game reaches the connection's outbox.
    fn unwatch(&self, watch: Self::Watch, conn: u64) -> impl Future<Output = ()> + Send;

    /// The game as `GET /api/games/{id}` shows it.
    fn lookup(&self, game: GameRef) -> impl Future<Output = Lookup> + Send;

    /// The public lobby (`GET /api/lobby`), cluster-wide.
    fn lobby(&self) -> impl Future<Output = Result<LobbyView, ServerError>> + Send;

    /// This node's own lobby listings, which stateful peers merge into
    /// theirs; none where the lobby is not kept per node.
    fn own_listings(&self) -> Vec<lobby::Listing> {
        Vec::new()
    }

    /// Draining: moves this node's waiting games to ready peers, where
    /// their players resume (stateful mode; elsewhere nothing moves).
    /// Returns how long this node should stay up, still relaying, so that
    /// every peer learns where the moved games went; zero when none moved.
    fn hand_off_waiting(&self) -> impl Future<Output = std::time::Duration> + Send {
        std::future::ready(std::time::Duration::ZERO)
    }

    /// Takes over a waiting game a draining peer hands over (stateful
    /// mode); its players are seated, disconnected, until they resume.
    fn adopt(&self, game: WaitingGame) -> Result<(), ServerError> {
        let _ = game;
        Err(ServerError::UnknownGame)
    }

    /// The games this node holds that the ring places elsewhere (moved
    /// here by a drain), which its stateful peers route to it.
    fn adopted(&self) -> Vec<MovedGame> {
        Vec::new()
    }

    /// Games by status: in this node's memory, or in stateless mode those
    /// this node has players in.
    fn counts(&self) -> GameCounts;

    /// Whether the backend can take games (Redis reachable, …); draining is
    /// the server's business, not the backend's.
    fn is_ready(&self) -> bool;

    /// This node's id in its cluster (`single` in single mode).
    fn node_id(&self) -> &str;

    /// Whether a connection from `ip` is a cluster peer's relay (only those
    /// are believed when they say how many relays they passed).
    fn is_peer(&self, ip: IpAddr) -> bool;

    /// The cluster as this node sees it (`/api/cluster`), given this node's
    /// own report; `None` where there is no ring to show.
    fn cluster_view(&self, me: &crate::state::NodeInfo) -> Option<serde_json::Value>;

    /// The clock every game of this backend is timed by.
    fn clock(&self) -> &Clock;
}

/// A capture attempt, its cell already decoded at the boundary.
#[derive(Debug, Clone, Copy)]
pub struct Capture {
    /// The cell.
    pub cell: Cell,
    /// The client's `ref`, echoed on rejection.
    pub reference: Option<u32>,
    /// When the session received it, for the latency histogram.
    pub received: Instant,
}
