//! What a player's connection may do: the protocol's client messages routed
//! to games. One `PlayerSession` per WebSocket connection.

use std::sync::Arc;

use game_logic::{PlayerId, PlayerName, Settings, Status};
use tokio::time::Instant;
use tracing::debug;
use transport::outbox::Outbox;
use transport::protocol::ServerMessage;
use transport::session::{CLOSE_NORMAL, Flow, Handler, push_error};
use transport::{ClientMessage, codec};
use uuid::Uuid;

use crate::error::ServerError;
use crate::game_task::{Command, GameHandle};
use crate::state::AppState;

/// The seat a connection holds.
#[derive(Debug)]
struct Seat {
    game: GameHandle,
    player: PlayerId,
}

/// One connection's view: which seat it holds, if any.
#[derive(Debug)]
pub struct PlayerSession {
    state: Arc<AppState>,
    /// This connection's id (the outbox id).
    conn: u64,
    seat: Option<Seat>,
}

impl PlayerSession {
    /// A session holding no seat yet.
    pub fn new(state: Arc<AppState>, conn: u64) -> PlayerSession {
        PlayerSession {
            state,
            conn,
            seat: None,
        }
    }

    /// Frees the connection for a new game: fine when it holds no seat or
    /// its game is completed (it then leaves that game), refused otherwise.
    async fn free_for_new_game(&mut self) -> Result<(), ServerError> {
        let Some(seat) = &self.seat else {
            return Ok(());
        };
        if seat.game.status() != Status::Completed {
            return Err(ServerError::AlreadyInGame);
        }
        let leave = Command::Leave {
            player: seat.player,
            conn: self.conn,
        };
        if let Err(e) = seat.game.send(leave).await {
            debug!(conn = self.conn, "leaving a finished game: {e}");
        }
        self.seat = None;
        Ok(())
    }

    fn lookup(&self, game: &str) -> Result<GameHandle, ServerError> {
        let id = Uuid::parse_str(game).map_err(|_| ServerError::UnknownGame)?;
        self.state.registry.get(&id).ok_or(ServerError::UnknownGame)
    }

    async fn create(
        &mut self,
        name: &str,
        max_players: Option<i64>,
        duration_ms: Option<i64>,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        self.free_for_new_game().await?;
        let name = PlayerName::new(name)?;
        let settings = Settings::new(max_players, duration_ms, &self.state.config.bounds)?;
        if self.state.is_draining() {
            return Err(ServerError::Overloaded);
        }
        let game = self.state.registry.create(settings, name, outbox);
        let player = PlayerId::try_from(0u8)?;
        self.seat = Some(Seat { game, player });
        Ok(())
    }

    async fn join(&mut self, game: &str, name: &str, outbox: &Outbox) -> Result<(), ServerError> {
        self.free_for_new_game().await?;
        let handle = self.lookup(game)?;
        let name = PlayerName::new(name)?;
        let outbox = outbox.clone();
        let player = handle
            .request(|reply| Command::Join {
                name,
                outbox,
                reply,
            })
            .await?;
        self.seat = Some(Seat {
            game: handle,
            player,
        });
        Ok(())
    }

    async fn resume(
        &mut self,
        game: &str,
        token: String,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        self.free_for_new_game().await?;
        let handle = self.lookup(game)?;
        let outbox = outbox.clone();
        let player = handle
            .request(|reply| Command::Resume {
                token,
                outbox,
                reply,
            })
            .await?;
        self.seat = Some(Seat {
            game: handle,
            player,
        });
        Ok(())
    }

    /// Sends a command for this connection's seat.
    async fn to_game(
        &self,
        make: impl FnOnce(PlayerId, u64) -> Command,
    ) -> Result<(), ServerError> {
        let seat = self.seat.as_ref().ok_or(ServerError::NotInGame)?;
        seat.game.send(make(seat.player, self.conn)).await
    }
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
    async fn on_message(&mut self, message: ClientMessage, outbox: &Outbox) -> Flow {
        let result = match message {
            ClientMessage::Create {
                name,
                max_players,
                duration_ms,
            } => self.create(&name, max_players, duration_ms, outbox).await,
            ClientMessage::Join { game, name } => self.join(&game, &name, outbox).await,
            ClientMessage::Resume { game, token } => self.resume(&game, token, outbox).await,
            ClientMessage::Start {} => {
                self.to_game(|player, conn| Command::Start { player, conn })
                    .await
            }
            ClientMessage::Capture { cell, reference } => {
                let received = Instant::now();
                self.to_game(|player, conn| Command::Capture {
                    player,
                    conn,
                    cell,
                    reference,
                    received,
                })
                .await
            }
            ClientMessage::Leave {} => {
                if let Some(seat) = self.seat.take() {
                    let leave = Command::Leave {
                        player: seat.player,
                        conn: self.conn,
                    };
                    if let Err(e) = seat.game.send(leave).await {
                        debug!(conn = self.conn, "leave after the game ended: {e}");
                    }
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
        if let Some(seat) = self.seat {
            let gone = Command::Disconnected {
                player: seat.player,
                conn: self.conn,
            };
            if let Err(e) = seat.game.send(gone).await {
                debug!(conn = self.conn, "disconnect after the game ended: {e}");
            }
        }
    }
}
