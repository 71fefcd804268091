//! Single-node mode: every game is a task of this process.
//!
//! - [`task`]: one task owns one game; it drives the rules, the round timer
//!   and the fan-out of every event to the seats' outboxes.
//! - [`registry`]: the games of this node by id.
//! - [`census`]: their counts by status, kept as they change, and the cap
//!   on unattended waiting games.
//! - [`moving`]: a waiting game as a draining stateful node hands it over.
//!
//! [`LocalGames`] is also the part of a stateful cluster node that serves
//! the games the ring gives it (see [`super::ring`]).

pub mod census;
pub mod moving;
pub mod registry;
pub mod task;

use std::net::IpAddr;

use game_logic::{GameError, MAX_SEATS, PlayerId, PlayerName, Settings, SettingsBounds, Status};
use tokio_util::sync::CancellationToken;
use tracing::debug;
use transport::Outbox;
use uuid::Uuid;

use super::lobby::{Listing, LobbyView};
use super::{Capacity, Capture, GameCode, GameCounts, GameRef, Games, Lookup, Placed, Requester};
use crate::clock::Clock;
use crate::error::ServerError;
use moving::WaitingGame;
use registry::Registry;
use task::{Command, GameHandle};

/// A seat in a game task of this node.
#[derive(Debug)]
pub struct LocalSeat {
    /// The game's task.
    pub game: GameHandle,
    /// The seat.
    pub player: PlayerId,
}

/// A connection watching a game task of this node.
#[derive(Debug)]
pub struct LocalWatch {
    /// The game's task.
    pub game: GameHandle,
}

/// The games of this process.
#[derive(Debug)]
pub struct LocalGames {
    /// Every game task, by id and code.
    registry: Registry,
    /// Most games held at once (`--max-games`).
    max_games: usize,
    /// What quick play matches on (its default round).
    bounds: SettingsBounds,
    /// One quick play at a time per game size, so that two never both
    /// create a game while one with a free seat is there.
    matchmaking: [tokio::sync::Mutex<()>; MAX_SEATS as usize + 1],
    /// This node's id in `/api/node` (the configured topology's).
    node_id: String,
}

impl LocalGames {
    /// No games yet on node `node_id`; every game task stops with `stop`.
    pub fn new(
        node_id: String,
        clock: Clock,
        capacity: Capacity,
        bounds: SettingsBounds,
        stop: CancellationToken,
    ) -> LocalGames {
        LocalGames {
            registry: Registry::new(clock, capacity, stop),
            max_games: capacity.games,
            bounds,
            matchmaking: Default::default(),
            node_id,
        }
    }

    /// The game a client named, if this node has it.
    pub fn find(&self, game: &GameRef) -> Option<GameHandle> {
        self.registry.find(game)
    }

    /// The bounds games are created within.
    pub fn bounds(&self) -> &SettingsBounds {
        &self.bounds
    }

    /// The listings of this node's public games.
    pub fn listings(&self) -> Vec<Listing> {
        self.registry.lobby().listings()
    }

    /// Creates game `id` (chosen by the caller: a cluster node picks one it
    /// owns, and a code the ring gives it) hosted by the requester.
    pub fn create_with(
        &self,
        id: Uuid,
        outbox: &Outbox,
        name: PlayerName,
        settings: Settings,
        code_ok: impl Fn(&GameCode) -> bool,
    ) -> Result<LocalSeat, ServerError> {
        if self.registry.len() >= self.max_games {
            return Err(ServerError::Overloaded);
        }
        let game = self.registry.create(id, settings, name, outbox, code_ok);
        Ok(LocalSeat {
            game,
            player: PlayerId::FIRST,
        })
    }

    /// Quick play among this node's games: joins the oldest open public
    /// game of the size, else creates one with `new_id` and `code_ok`.
    pub async fn match_or_create(
        &self,
        outbox: &Outbox,
        name: PlayerName,
        settings: Settings,
        new_id: impl Fn() -> Uuid,
        code_ok: impl Fn(&GameCode) -> bool,
    ) -> Result<LocalSeat, ServerError> {
        let size = settings.max_players();
        let lock = self
            .matchmaking
            .get(usize::from(size))
            .ok_or(ServerError::Game(GameError::InvalidSettings))?;
        let _one_at_a_time = lock.lock().await;
        for id in self.registry.lobby().open_for(size, &self.bounds) {
            let (name, outbox) = (name.clone(), outbox.clone());
            let join = |reply| Command::Join {
                name,
                outbox,
                reply,
            };
            match self.seat(&GameRef::Id(id), join).await {
                Ok(seat) => return Ok(seat),
                // Filled, started or ended since it was listed: the next.
                Err(ServerError::UnknownGame | ServerError::Game(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.create_with(new_id(), outbox, name, settings, code_ok)
    }

    /// Takes over a waiting game a draining peer hands over, checked like
    /// a client's request; `Overloaded` at `--max-games`.
    pub fn adopt(&self, game: WaitingGame) -> Result<GameHandle, ServerError> {
        if self.registry.len() >= self.max_games {
            return Err(ServerError::Overloaded);
        }
        let parts = game.into_parts(&self.bounds, self.clock().now())?;
        self.registry.adopt(parts)
    }

    /// Drops a game from the registry at once (it moved to a peer; its
    /// task ends by itself).
    pub fn forget(&self, game: &GameHandle) {
        self.registry.forget(game);
    }

    /// This node's waiting games.
    pub fn waiting(&self) -> Vec<GameHandle> {
        self.registry.waiting()
    }

    /// Every game's id and code.
    pub fn names(&self) -> Vec<(Uuid, GameCode)> {
        self.registry.names()
    }

    /// Seats `outbox` through the game's task: `ask` builds the command
    /// (join or resume) around the reply channel.
    pub async fn seat(
        &self,
        game: &GameRef,
        ask: impl FnOnce(tokio::sync::oneshot::Sender<Result<PlayerId, ServerError>>) -> Command,
    ) -> Result<LocalSeat, ServerError> {
        let handle = self.find(game).ok_or(ServerError::UnknownGame)?;
        let player = handle.request(ask).await?;
        Ok(LocalSeat {
            game: handle,
            player,
        })
    }

    /// Watches a game of this node.
    pub async fn watch_here(
        &self,
        outbox: &Outbox,
        game: &GameRef,
    ) -> Result<LocalWatch, ServerError> {
        let handle = self.find(game).ok_or(ServerError::UnknownGame)?;
        let outbox = outbox.clone();
        handle
            .request(|reply| Command::Watch { outbox, reply })
            .await?;
        Ok(LocalWatch { game: handle })
    }

    /// Stops watching; returns once the game sends the connection nothing
    /// more (at once if the game has ended).
    pub async fn unwatch_here(&self, watch: LocalWatch, conn: u64) {
        let (done, stopped) = tokio::sync::oneshot::channel();
        let unwatch = Command::Unwatch {
            conn,
            done: Some(done),
        };
        if watch.game.send(unwatch).await.is_ok() {
            // An error here: the task ended, and sends nothing more either.
            let _ = stopped.await;
        }
    }

    /// Sends a command to a seat's game; a game that ended is told nothing.
    async fn tell(&self, seat: &LocalSeat, command: Command) {
        if let Err(e) = seat.game.send(command).await {
            debug!(game = %seat.game.id(), "command after the game ended: {e}");
        }
    }
}

impl Games for LocalGames {
    type Seat = LocalSeat;
    type Watch = LocalWatch;
    const MODE: &'static str = "single";

    async fn create(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        draining: bool,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        if draining {
            return Err(ServerError::Overloaded);
        }
        self.create_with(Uuid::new_v4(), who.outbox, name, settings, |_| true)
            .map(Placed::Seat)
    }

    async fn quick_play(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        draining: bool,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        if draining {
            return Err(ServerError::Overloaded);
        }
        self.match_or_create(who.outbox, name, settings, Uuid::new_v4, |_| true)
            .await
            .map(Placed::Seat)
    }

    async fn join(
        &self,
        who: Requester<'_>,
        game: GameRef,
        name: PlayerName,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        let outbox = who.outbox.clone();
        self.seat(&game, |reply| Command::Join {
            name,
            outbox,
            reply,
        })
        .await
        .map(Placed::Seat)
    }

    async fn resume(
        &self,
        who: Requester<'_>,
        game: GameRef,
        token: String,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        let outbox = who.outbox.clone();
        self.seat(&game, |reply| Command::Resume {
            token,
            outbox,
            reply,
        })
        .await
        .map(Placed::Seat)
    }

    fn is_seat_in(seat: &LocalSeat, game: &GameRef) -> bool {
        seat.game.is(game)
    }

    fn status(&self, seat: &LocalSeat) -> Option<Status> {
        Some(seat.game.status())
    }

    async fn start(
        &self,
        seat: &LocalSeat,
        conn: u64,
        _outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let start = Command::Start {
            player: seat.player,
            conn,
        };
        seat.game.send(start).await
    }

    async fn capture(
        &self,
        seat: &LocalSeat,
        capture: Capture,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let capture = Command::Capture {
            player: seat.player,
            conn: outbox.id(),
            capture,
        };
        seat.game.send(capture).await
    }

    async fn leave(&self, seat: LocalSeat, conn: u64) -> Result<(), LocalSeat> {
        let leave = Command::Leave {
            player: seat.player,
            conn,
        };
        self.tell(&seat, leave).await;
        Ok(())
    }

    async fn disconnect(&self, seat: LocalSeat, conn: u64) {
        let gone = Command::Disconnected {
            player: seat.player,
            conn,
        };
        self.tell(&seat, gone).await;
    }

    async fn watch(
        &self,
        who: Requester<'_>,
        game: GameRef,
    ) -> Result<Placed<LocalWatch>, ServerError> {
        self.watch_here(who.outbox, &game).await.map(Placed::Seat)
    }

    fn is_watching(watch: &LocalWatch, game: &GameRef) -> bool {
        watch.game.is(game)
    }

    fn watched(watch: &LocalWatch) -> Uuid {
        watch.game.id()
    }

    async fn unwatch(&self, watch: LocalWatch, conn: u64) {
        self.unwatch_here(watch, conn).await;
    }

    async fn lookup(&self, game: GameRef) -> Lookup {
        let snapshot = match self.find(&game) {
            Some(handle) => handle.snapshot().await,
            None => None,
        };
        snapshot.map_or(Lookup::Unknown("unknown game"), Lookup::Found)
    }

    async fn lobby(&self) -> Result<LobbyView, ServerError> {
        Ok(LobbyView::of(self.listings(), self.clock().now()))
    }

    fn own_listings(&self) -> Vec<Listing> {
        self.listings()
    }

    fn counts(&self) -> GameCounts {
        self.registry.counts()
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn is_peer(&self, _ip: IpAddr) -> bool {
        false
    }

    fn cluster_view(&self, _me: &crate::state::NodeInfo) -> Option<serde_json::Value> {
        None
    }

    fn clock(&self) -> &Clock {
        self.registry.clock()
    }
}
