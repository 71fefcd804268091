//! What a player's connection may do: the protocol's client messages routed
//! to games. One `PlayerSession` per WebSocket connection.
//!
//! In stateful cluster mode a connection whose game lives on another node is
//! relayed there (see [`crate::cluster::relay`]): from then on its frames
//! are copied undecoded and this node only enforces the transport limits.
//!
//! Where a game is kept is behind one seam, [`Seat`]: a game task of this
//! node (single and stateful modes) or Redis (stateless mode, see
//! [`crate::stateless`]). The protocol logic above it is the same for both.

use std::sync::Arc;

use bytes::Bytes;
use game_logic::{PlayerId, PlayerName, Settings, Status};
use tokio::time::Instant;
use tracing::debug;
use transport::outbox::Outbox;
use transport::protocol::ServerMessage;
use transport::session::{
    CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_OVERLOADED, Flow, Handler, push_error,
};
use transport::{ClientMessage, FrameOutcome, codec};
use uuid::Uuid;

use crate::cluster::Placement;
use crate::cluster::membership::PeerState;
use crate::cluster::relay::{MAX_HOPS, Relay};
use crate::config::Peer;
use crate::error::ServerError;
use crate::game_task::{Command, GameHandle};
use crate::state::AppState;
use crate::stateless::{self, Backend};

/// The seat a connection holds, in whichever backend keeps its game.
#[derive(Debug)]
enum Seat {
    /// In a game task of this node.
    Task { game: GameHandle, player: PlayerId },
    /// In Redis (stateless mode).
    Redis(stateless::Seat),
}

impl Seat {
    /// Whether this seat's game is in `id`.
    fn in_game(&self, id: &Uuid) -> bool {
        match self {
            Seat::Task { game, .. } => game.id == *id,
            Seat::Redis(seat) => seat.game == *id,
        }
    }
}

/// One connection's view: which seat it holds, if any, or where it is relayed.
#[derive(Debug)]
pub struct PlayerSession {
    state: Arc<AppState>,
    /// This connection's id (the outbox id).
    conn: u64,
    /// Relays this connection already passed through (0 for a player).
    hops: u32,
    seat: Option<Seat>,
    /// Set once the connection is relayed to the node owning its game.
    relay: Option<Relay>,
}

impl PlayerSession {
    /// A session holding no seat yet; `hops` counts relays before this node.
    pub fn new(state: Arc<AppState>, conn: u64, hops: u32) -> PlayerSession {
        PlayerSession {
            state,
            conn,
            hops,
            seat: None,
            relay: None,
        }
    }

    /// Frees the connection for a new game: fine when it holds no seat or
    /// its game is completed (it then leaves that game), refused otherwise.
    async fn free_for_new_game(&mut self) -> Result<(), ServerError> {
        let completed = match &self.seat {
            None => return Ok(()),
            Some(Seat::Task { game, .. }) => game.status() == Status::Completed,
            Some(Seat::Redis(seat)) => self
                .backend()
                .is_ok_and(|b| b.status(seat) == Some(Status::Completed)),
        };
        if !completed {
            return Err(ServerError::AlreadyInGame);
        }
        if let Some(seat) = self.seat.take()
            && let Err(seat) = self.leave_seat(seat).await
        {
            self.seat = Some(seat);
            return Err(ServerError::StoreUnavailable);
        }
        Ok(())
    }

    /// Gives up `seat` (`leave`); hands it back if that could not be
    /// recorded (stateless mode with Redis unreachable).
    async fn leave_seat(&self, seat: Seat) -> Result<(), Seat> {
        match seat {
            Seat::Task { game, player } => {
                let leave = Command::Leave {
                    player,
                    conn: self.conn,
                };
                if let Err(e) = game.send(leave).await {
                    debug!(conn = self.conn, "leave after the game ended: {e}");
                }
                Ok(())
            }
            Seat::Redis(seat) => match self.backend() {
                Ok(backend) => backend.leave(seat, self.conn).await.map_err(Seat::Redis),
                Err(_) => Ok(()),
            },
        }
    }

    /// The stateless backend (only reached in stateless mode).
    fn backend(&self) -> Result<&Arc<Backend>, ServerError> {
        self.state
            .stateless
            .as_ref()
            .ok_or(ServerError::UnknownGame)
    }

    /// Where a game id points: a local handle, or the peer to relay to.
    fn locate(&self, game: &str) -> Result<Located, ServerError> {
        let id = Uuid::parse_str(game).map_err(|_| ServerError::UnknownGame)?;
        if let Some(cluster) = &self.state.cluster
            && let Placement::Remote(peer) = cluster.place(&id)
        {
            return Ok(Located::Remote(peer));
        }
        self.state
            .registry
            .get(&id)
            .map(Located::Local)
            .ok_or(ServerError::UnknownGame)
    }

    /// Relays this connection to `peer`, starting with `frame`.
    async fn relay_to(
        &mut self,
        peer: &Peer,
        frame: Bytes,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let cluster = self
            .state
            .cluster
            .as_ref()
            .ok_or(ServerError::UnknownGame)?;
        if self.hops >= MAX_HOPS || cluster.state_of(&peer.id).state == PeerState::Down {
            return Err(ServerError::UnknownGame);
        }
        let limits = &self.state.config.limits;
        match Relay::open(
            &peer.addr,
            self.hops,
            frame,
            outbox.clone(),
            limits,
            cluster.peer_timeout,
        )
        .await
        {
            Ok(relay) => {
                debug!(conn = self.conn, peer = %peer.id, "relaying");
                self.relay = Some(relay);
                Ok(())
            }
            Err(e) => {
                debug!(conn = self.conn, peer = %peer.id, "cannot relay: {e}");
                Err(ServerError::UnknownGame)
            }
        }
    }

    async fn create(
        &mut self,
        name: &str,
        max_players: Option<i64>,
        duration_ms: Option<i64>,
        frame: Bytes,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        self.free_for_new_game().await?;
        let name = PlayerName::new(name)?;
        let settings = Settings::new(max_players, duration_ms, &self.state.config.bounds)?;
        if self.state.is_draining() {
            // A draining node places no games; a cluster hands them to a peer.
            let peer = self.state.cluster.as_ref().and_then(|c| c.ready_peer());
            return match peer {
                Some(peer) => self
                    .relay_to(&peer, frame, outbox)
                    .await
                    .map_err(|_| ServerError::Overloaded),
                None => Err(ServerError::Overloaded),
            };
        }
        if let Some(backend) = &self.state.stateless {
            let seat = backend.create(self.conn, outbox, name, settings).await?;
            self.seat = Some(Seat::Redis(seat));
            return Ok(());
        }
        if self.state.registry.len() >= self.state.config.max_games {
            return Err(ServerError::Overloaded);
        }
        let id = self
            .state
            .cluster
            .as_ref()
            .map_or_else(Uuid::new_v4, |c| c.new_local_id());
        let game = self.state.registry.create(id, settings, name, outbox);
        let player = game_logic::PlayerId::FIRST;
        self.seat = Some(Seat::Task { game, player });
        Ok(())
    }

    async fn join(
        &mut self,
        game: &str,
        name: &str,
        frame: Bytes,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        self.free_for_new_game().await?;
        if let Some(backend) = &self.state.stateless {
            let name = PlayerName::new(name)?;
            let seat = backend.join(self.conn, outbox, game, name).await?;
            self.seat = Some(Seat::Redis(seat));
            return Ok(());
        }
        let handle = match self.locate(game)? {
            Located::Local(handle) => handle,
            Located::Remote(peer) => return self.relay_to(&peer, frame, outbox).await,
        };
        let name = PlayerName::new(name)?;
        let outbox = outbox.clone();
        let player = handle
            .request(|reply| Command::Join {
                name,
                outbox,
                reply,
            })
            .await?;
        self.seat = Some(Seat::Task {
            game: handle,
            player,
        });
        Ok(())
    }

    async fn resume(
        &mut self,
        game: &str,
        token: String,
        frame: Bytes,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let same_game = self
            .seat
            .as_ref()
            .is_some_and(|s| Uuid::parse_str(game).is_ok_and(|id| s.in_game(&id)));
        if !same_game {
            // Resuming the seat this connection holds is a resync (after a
            // seq gap), allowed at any time; another game needs a free connection.
            self.free_for_new_game().await?;
        }
        if let Some(backend) = &self.state.stateless {
            let seat = backend.resume(self.conn, outbox, game, token).await?;
            self.seat = Some(Seat::Redis(seat));
            return Ok(());
        }
        let handle = match self.locate(game)? {
            Located::Local(handle) => handle,
            Located::Remote(peer) => return self.relay_to(&peer, frame, outbox).await,
        };
        let outbox = outbox.clone();
        let player = handle
            .request(|reply| Command::Resume {
                token,
                outbox,
                reply,
            })
            .await?;
        self.seat = Some(Seat::Task {
            game: handle,
            player,
        });
        Ok(())
    }

    /// The host starts the round.
    async fn start(&self, outbox: &Outbox) -> Result<(), ServerError> {
        match self.seat.as_ref().ok_or(ServerError::NotInGame)? {
            Seat::Task { game, player } => {
                let start = Command::Start {
                    player: *player,
                    conn: self.conn,
                };
                game.send(start).await
            }
            Seat::Redis(seat) => self.backend()?.start(seat, outbox).await,
        }
    }

    /// A capture attempt; refusals are answered `rejected` by the backend.
    async fn capture(
        &self,
        cell: i64,
        reference: Option<u32>,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let received = Instant::now();
        match self.seat.as_ref().ok_or(ServerError::NotInGame)? {
            Seat::Task { game, player } => {
                let capture = Command::Capture {
                    player: *player,
                    conn: self.conn,
                    cell,
                    reference,
                    received,
                };
                game.send(capture).await
            }
            // Boxed: a Redis round trip's future is large, and inline it
            // would grow every connection's task in every mode.
            Seat::Redis(seat) => {
                let backend = self.backend()?;
                Box::pin(backend.capture(seat, cell, reference, received, outbox)).await
            }
        }
    }
}

/// A located game.
enum Located {
    Local(GameHandle),
    Remote(Peer),
}

fn answer(outbox: &Outbox, result: Result<(), ServerError>) {
    if let Err(e) = result {
        match e.to_message() {
            ServerMessage::Error { code, message } => push_error(outbox, code, message),
            other => {
                if let Ok(frame) = codec::encode_server(&other)
                    && let Err(e) = outbox.push(frame)
                {
                    debug!(conn = outbox.id(), "answer dropped: {e}");
                }
            }
        }
    }
}

impl Handler for PlayerSession {
    async fn on_frame(&mut self, frame: Bytes, _outbox: &Outbox) -> FrameOutcome {
        match &self.relay {
            None => FrameOutcome::Decode(frame),
            Some(relay) if relay.forward(frame).await => FrameOutcome::Consumed(Flow::Continue),
            Some(_) => {
                self.relay = None;
                FrameOutcome::Consumed(Flow::Close(
                    CLOSE_INTERNAL,
                    "the game's node went away".to_owned(),
                ))
            }
        }
    }

    async fn on_message(&mut self, message: ClientMessage, frame: Bytes, outbox: &Outbox) -> Flow {
        // The rare, heavy requests (they may open a relay or talk to Redis)
        // run boxed: their futures would otherwise be stored inline in every
        // connection's session task, idle or not, and cost kilobytes each.
        let result = match message {
            ClientMessage::Create {
                name,
                max_players,
                duration_ms,
            } => Box::pin(self.create(&name, max_players, duration_ms, frame, outbox)).await,
            ClientMessage::Join { game, name } => {
                Box::pin(self.join(&game, &name, frame, outbox)).await
            }
            ClientMessage::Resume { game, token } => {
                Box::pin(self.resume(&game, token, frame, outbox)).await
            }
            ClientMessage::Start {} => Box::pin(self.start(outbox)).await,
            ClientMessage::Capture { cell, reference } => {
                self.capture(cell, reference, outbox).await
            }
            ClientMessage::Leave {} => {
                if let Some(seat) = self.seat.take()
                    && let Err(seat) = Box::pin(self.leave_seat(seat)).await
                {
                    // Not recorded: the seat is still ours; closing with
                    // 1013 (not 1000) tells the client to come back and
                    // resume, and `on_close` marks the seat disconnected.
                    self.seat = Some(seat);
                    return Flow::Close(
                        CLOSE_OVERLOADED,
                        "the game store is unreachable; reconnect and resume".to_owned(),
                    );
                }
                return Flow::Close(CLOSE_NORMAL, "left the game".to_owned());
            }
            ClientMessage::Ping { ts } => {
                let server_ms = self.state.registry.clock().now().as_unix_ms();
                let pong = ServerMessage::Pong { ts, server_ms };
                if let Ok(frame) = codec::encode_server(&pong)
                    && let Err(e) = outbox.push(frame)
                {
                    debug!(conn = self.conn, "pong dropped: {e}");
                }
                Ok(())
            }
        };
        answer(outbox, result);
        Flow::Continue
    }

    async fn on_close(self) {
        match self.seat {
            Some(Seat::Task { game, player }) => {
                let gone = Command::Disconnected {
                    player,
                    conn: self.conn,
                };
                if let Err(e) = game.send(gone).await {
                    debug!(conn = self.conn, "disconnect after the game ended: {e}");
                }
            }
            Some(Seat::Redis(seat)) => {
                if let Some(backend) = &self.state.stateless {
                    backend.disconnect(seat, self.conn);
                }
            }
            None => {}
        }
        // Dropping the relay closes the connection to the game's node.
    }
}
