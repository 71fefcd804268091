//! What a player's connection may do: the protocol's client messages routed
//! to the games. One [`PlayerSession`] per WebSocket connection; it holds
//! a seat, or watches a game as a spectator, or neither.
//!
//! The session knows nothing of the server mode: it asks [`Games`] (see
//! [`crate::games`]) and keeps what the backend gives back: a seat, or a
//! relay to the node that owns the game. A relayed connection's frames are
//! copied there undecoded; this node then only enforces the transport limits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;
use game_logic::{Cell, PlayerName, Settings, Status};
use tokio::time::Instant;
use transport::outbox::Outbox;
use transport::protocol::ServerMessage;
use transport::session::{CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_OVERLOADED, Flow, Handler};
use transport::{ClientMessage, FrameOutcome};

use crate::edge::create_limit::{AddressKey, ConnectionCreates};
use crate::error::ServerError;
use crate::games::{Capture, GameRef, Games, Placed, Relay, Requester};
use crate::outgoing;
use crate::state::AppState;

/// One connection's view: which seat it holds, if any, or where it is relayed.
#[derive(Debug)]
pub struct PlayerSession<G: Games> {
    state: Arc<AppState<G>>,
    /// A player's address, or the relays the connection passed through.
    origin: Origin,
    /// The seat held, if any.
    seat: Option<G::Seat>,
    /// The game watched, if any (never together with a seat). Boxed: few
    /// connections watch, and every one, parked or not, keeps this field.
    watching: Option<Box<G::Watch>>,
    /// Set once the connection is relayed to the node owning its game.
    relay: Option<Relay>,
    /// This connection's creates (`--max-creates-per-connection`).
    creates: ConnectionCreates,
}

/// Where a connection comes from, in 16 bytes (an `IpAddr` and the hops
/// were 24 with their padding, in every connection's session for its
/// whole life).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A player's own connection: its address (behind `--trusted-proxies`,
    /// the forwarded one) as the create limit counts it, the one use of the
    /// address here (IPv4 whole, IPv6 by its /64).
    Client(AddressKey),
    /// Relayed by a cluster peer, after this many relays (at least 1; more
    /// than 255 count as 255, past every limit on hops).
    Relayed(u8),
}

impl Origin {
    fn new(hops: u32, ip: IpAddr) -> Origin {
        if hops == 0 {
            Origin::Client(AddressKey::from(ip))
        } else {
            Origin::Relayed(u8::try_from(hops).unwrap_or(u8::MAX))
        }
    }

    /// Relays this connection already passed through (0 for a player).
    fn hops(self) -> u32 {
        match self {
            Origin::Client(_) => 0,
            Origin::Relayed(hops) => u32::from(hops),
        }
    }
}

/// An address the create limit counts as `key`: the key comes back from it.
fn address_of(key: AddressKey) -> IpAddr {
    match key {
        AddressKey::V4(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
        // The /64 with a zero host part: never an IPv4-mapped address.
        AddressKey::V6(prefix) => IpAddr::V6(Ipv6Addr::from(u128::from(prefix) << 64)),
    }
}

/// A seating request as the client sent it.
enum Seating {
    Create {
        name: String,
        max_players: Option<i64>,
        duration_ms: Option<i64>,
        public: Option<bool>,
    },
    QuickPlay {
        name: String,
        max_players: Option<i64>,
    },
    Join {
        game: String,
        name: String,
    },
    Resume {
        game: String,
        token: String,
    },
}

impl<G: Games> PlayerSession<G> {
    /// A session holding no seat yet; `hops` counts relays before this
    /// node. The connection's id is its outbox's, passed with every call.
    pub fn new(state: Arc<AppState<G>>, hops: u32, ip: IpAddr) -> PlayerSession<G> {
        PlayerSession {
            state,
            origin: Origin::new(hops, ip),
            seat: None,
            watching: None,
            relay: None,
            creates: ConnectionCreates::default(),
        }
    }

    /// Issue 18: counts a create against the connection and the client's
    /// address. Relayed connections were counted on the node the client
    /// reached.
    fn may_create(&mut self) -> Result<(), ServerError> {
        let allowed = match self.origin {
            Origin::Relayed(_) => true,
            Origin::Client(key) => {
                let ip = address_of(key);
                self.state.creates.try_create(ip, &mut self.creates)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(ServerError::TooManyCreates)
        }
    }

    fn games(&self) -> &G {
        &self.state.games
    }

    fn requester<'a>(&self, outbox: &'a Outbox, frame: Bytes) -> Requester<'a> {
        Requester {
            conn: outbox.id(),
            outbox,
            frame,
            hops: self.origin.hops(),
        }
    }

    /// Frees the connection for a new game: fine when it holds no seat or
    /// its game is completed (it then leaves that game), refused otherwise.
    async fn free_for_new_game(&mut self, conn: u64) -> Result<(), ServerError> {
        let Some(seat) = &self.seat else {
            return Ok(());
        };
        if self.games().status(seat) != Some(Status::Completed) {
            return Err(ServerError::AlreadyInGame);
        }
        if let Some(seat) = self.seat.take()
            && let Err(seat) = self.games().leave(seat, conn).await
        {
            self.seat = Some(seat);
            return Err(ServerError::StoreUnavailable);
        }
        Ok(())
    }

    /// Keeps what seating gave: a seat, or a relay.
    fn placed(&mut self, placed: Placed<G::Seat>) {
        match placed {
            Placed::Seat(seat) => self.seat = Some(seat),
            Placed::Relayed(relay) => self.relay = Some(relay),
        }
    }

    /// `create`, `quick_play`, `join` and `resume`: one path. Resuming the
    /// seat this connection holds is a resync (after a seq gap), allowed at
    /// any time; any other seating needs a connection free for a new game.
    async fn seat(
        &mut self,
        seating: Seating,
        frame: Bytes,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let resync = match &seating {
            Seating::Resume { game, .. } => self
                .seat
                .as_ref()
                .is_some_and(|s| GameRef::parse(game).is_ok_and(|game| G::is_seat_in(s, &game))),
            _ => false,
        };
        if !resync {
            self.free_for_new_game(outbox.id()).await?;
        }
        // Seating ends watching, before the seat's `joined` is queued.
        self.stop_watching(outbox.id()).await;
        let who = self.requester(outbox, frame);
        let state = self.state.clone();
        let draining = state.is_draining();
        let bounds = &state.config.bounds;
        let games = &state.games;
        let placed = match seating {
            Seating::Create {
                name,
                max_players,
                duration_ms,
                public,
            } => {
                let name = PlayerName::new(&name)?;
                let settings = Settings::new(max_players, duration_ms, bounds)?
                    .with_public(public.unwrap_or(false));
                self.may_create()?;
                games.create(who, name, settings, draining).await?
            }
            Seating::QuickPlay { name, max_players } => {
                let name = PlayerName::new(&name)?;
                let settings = Settings::new(max_players, None, bounds)?.with_public(true);
                self.may_create()?;
                games.quick_play(who, name, settings, draining).await?
            }
            Seating::Join { game, name } => {
                let game = GameRef::parse(&game)?;
                let name = PlayerName::new(&name)?;
                games.join(who, game, name).await?
            }
            Seating::Resume { game, token } => {
                let game = GameRef::parse(&game)?;
                games.resume(who, game, token).await?
            }
        };
        self.placed(placed);
        Ok(())
    }

    /// `watch`: watches a game without a seat. Watching the game watched
    /// already is a resync; a switch to another game that fails keeps the
    /// first game watched (with a fresh `watching`).
    async fn watch(
        &mut self,
        game: &str,
        frame: Bytes,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let game = GameRef::parse(game)?;
        self.free_for_new_game(outbox.id()).await?;
        let resync = self
            .watching
            .as_ref()
            .is_some_and(|w| G::is_watching(w, &game));
        let previous = if resync {
            None
        } else {
            self.stop_watching(outbox.id()).await
        };
        let who = self.requester(outbox, frame);
        match self.games().watch(who, game).await {
            Ok(placed) => {
                self.watched(placed);
                Ok(())
            }
            Err(e) => {
                if let Some(previous) = previous {
                    self.watch_again(previous, outbox).await;
                }
                Err(e)
            }
        }
    }

    /// Watches `game` again after a failed switch away from it.
    async fn watch_again(&mut self, game: uuid::Uuid, outbox: &Outbox) {
        let again = ClientMessage::Watch {
            game: game.to_string(),
        };
        let Ok(frame) = transport::codec::encode(&again) else {
            return;
        };
        let who = self.requester(outbox, frame);
        if let Ok(placed) = self.games().watch(who, GameRef::Id(game)).await {
            self.watched(placed);
        }
    }

    /// Keeps what watching gave: a watch, or a relay.
    fn watched(&mut self, placed: Placed<G::Watch>) {
        match placed {
            Placed::Seat(watch) => self.watching = Some(Box::new(watch)),
            Placed::Relayed(relay) => self.relay = Some(relay),
        }
    }

    /// Stops watching, if watching; returns the game that was watched.
    async fn stop_watching(&mut self, conn: u64) -> Option<uuid::Uuid> {
        let watch = *self.watching.take()?;
        let game = G::watched(&watch);
        self.games().unwatch(watch, conn).await;
        Some(game)
    }

    /// The seat held, or `not_in_game`.
    fn held(&self) -> Result<&G::Seat, ServerError> {
        self.seat.as_ref().ok_or(ServerError::NotInGame)
    }

    /// A capture attempt: the cell is decoded here, once; the backend
    /// answers refusals of the rules with `rejected`.
    async fn capture(
        &self,
        cell: i64,
        reference: Option<u32>,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        let received = Instant::now();
        let seat = self.held()?;
        let cell = match Cell::try_from(cell) {
            Ok(cell) => cell,
            Err(e) => {
                outgoing::refuse_capture(outbox, e, cell, reference);
                return Ok(());
            }
        };
        let capture = Capture {
            cell,
            reference,
            received,
        };
        self.games().capture(seat, capture, outbox).await
    }

    /// `leave`: gives up the seat and closes 1000; when the backend could
    /// not record it, the seat is still ours and the close is 1013, which
    /// tells the client to come back and resume.
    async fn leave(&mut self, conn: u64) -> Flow {
        if self.stop_watching(conn).await.is_some() {
            return Flow::Close(CLOSE_NORMAL, "stopped watching".to_owned());
        }
        if let Some(seat) = self.seat.take()
            && let Err(seat) = self.games().leave(seat, conn).await
        {
            self.seat = Some(seat);
            return Flow::Close(
                CLOSE_OVERLOADED,
                "the game store is unreachable; reconnect and resume".to_owned(),
            );
        }
        Flow::Close(CLOSE_NORMAL, "left the game".to_owned())
    }
}

impl<G: Games> Handler for PlayerSession<G> {
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
                public,
            } => {
                let create = Seating::Create {
                    name,
                    max_players,
                    duration_ms,
                    public,
                };
                Box::pin(self.seat(create, frame, outbox)).await
            }
            ClientMessage::QuickPlay { name, max_players } => {
                let quick_play = Seating::QuickPlay { name, max_players };
                Box::pin(self.seat(quick_play, frame, outbox)).await
            }
            ClientMessage::Join { game, name } => {
                Box::pin(self.seat(Seating::Join { game, name }, frame, outbox)).await
            }
            ClientMessage::Resume { game, token } => {
                Box::pin(self.seat(Seating::Resume { game, token }, frame, outbox)).await
            }
            ClientMessage::Start {} => match self.held() {
                Ok(seat) => Box::pin(self.games().start(seat, outbox.id(), outbox)).await,
                Err(e) => Err(e),
            },
            ClientMessage::Capture { cell, reference } => {
                self.capture(cell, reference, outbox).await
            }
            ClientMessage::Watch { game } => Box::pin(self.watch(&game, frame, outbox)).await,
            ClientMessage::Leave {} => return Box::pin(self.leave(outbox.id())).await,
            ClientMessage::Ping { ts } => {
                let server_ms = self.games().clock().now().as_unix_ms();
                outgoing::send(outbox, &ServerMessage::Pong { ts, server_ms });
                Ok(())
            }
        };
        if let Err(e) = result {
            outgoing::send(outbox, &e.to_message());
        }
        Flow::Continue
    }

    async fn on_close(self, outbox: &Outbox) {
        let conn = outbox.id();
        if let Some(seat) = self.seat {
            self.state.games.disconnect(seat, conn).await;
        }
        if let Some(watch) = self.watching {
            self.state.games.unwatch(*watch, conn).await;
        }
        // Dropping the relay closes the connection to the game's node.
    }
}

#[cfg(test)]
mod tests;
