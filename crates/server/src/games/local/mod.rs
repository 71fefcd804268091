//! Single-node mode: every game is a task of this process.
//!
//! - [`task`]: one task owns one game; it drives the rules, the round timer
//!   and the fan-out of every event to the seats' outboxes.
//! - [`registry`]: the games of this node by id.
//!
//! [`LocalGames`] is also the part of a stateful cluster node that serves
//! the games the ring gives it (see [`super::ring`]).

pub mod registry;
pub mod task;

use std::net::IpAddr;

use game_logic::{PlayerId, PlayerName, Settings, Status};
use tokio_util::sync::CancellationToken;
use tracing::debug;
use transport::Outbox;
use uuid::Uuid;

use super::{Capture, GameCounts, GameRef, Games, Lookup, Placed, Requester};
use crate::clock::Clock;
use crate::error::ServerError;
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

/// The games of this process.
#[derive(Debug)]
pub struct LocalGames {
    /// Every game task, by id.
    registry: Registry,
    /// Most games held at once (`--max-games`).
    max_games: usize,
}

impl LocalGames {
    /// No games yet; every game task stops with `stop`.
    pub fn new(clock: Clock, max_games: usize, stop: CancellationToken) -> LocalGames {
        LocalGames {
            registry: Registry::new(clock, stop),
            max_games,
        }
    }

    /// The game with this id, if this node has it.
    pub fn get(&self, id: &Uuid) -> Option<GameHandle> {
        self.registry.get(id)
    }

    /// Creates game `id` (chosen by the caller: a cluster node picks one it
    /// owns) hosted by the requester.
    pub fn create_with_id(
        &self,
        id: Uuid,
        outbox: &Outbox,
        name: PlayerName,
        settings: Settings,
    ) -> Result<LocalSeat, ServerError> {
        if self.registry.len() >= self.max_games {
            return Err(ServerError::Overloaded);
        }
        let game = self.registry.create(id, settings, name, outbox);
        Ok(LocalSeat {
            game,
            player: PlayerId::FIRST,
        })
    }

    /// Seats `outbox` through the game's task: `ask` builds the command
    /// (join or resume) around the reply channel.
    pub async fn seat(
        &self,
        game: &GameRef,
        ask: impl FnOnce(tokio::sync::oneshot::Sender<Result<PlayerId, ServerError>>) -> Command,
    ) -> Result<LocalSeat, ServerError> {
        let handle = self.get(&game.id()).ok_or(ServerError::UnknownGame)?;
        let player = handle.request(ask).await?;
        Ok(LocalSeat {
            game: handle,
            player,
        })
    }

    /// Sends a command to a seat's game; a game that ended is told nothing.
    async fn tell(&self, seat: &LocalSeat, command: Command) {
        if let Err(e) = seat.game.send(command).await {
            debug!(game = %seat.game.id, "command after the game ended: {e}");
        }
    }
}

impl Games for LocalGames {
    type Seat = LocalSeat;
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
        self.create_with_id(Uuid::new_v4(), who.outbox, name, settings)
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

    fn game_of(seat: &LocalSeat) -> Uuid {
        seat.game.id
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

    async fn lookup(&self, game: GameRef) -> Lookup {
        let snapshot = match self.get(&game.id()) {
            Some(handle) => handle.snapshot().await,
            None => None,
        };
        snapshot.map_or(Lookup::Unknown("unknown game"), Lookup::Found)
    }

    fn counts(&self) -> GameCounts {
        self.registry.counts()
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn node_id(&self) -> &str {
        "single"
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
