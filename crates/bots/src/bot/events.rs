//! How a bot reacts to what the server sends: frames, events, answers to
//! its captures, and refusals while it tries to take a seat.

use std::time::Instant;

use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;
use transport::protocol::{GameStatus, ServerMessage};
use transport::{ClientMessage, ErrorCode, RejectReason, codec};

use super::{ALREADY_IN_GAME_RETRY, Bot, CREATE_RETRY, End, Enter, Phase, Seat};
use crate::board::Board;
use crate::conn::Ws;
use crate::error::BotError;
use crate::game_plan::Schedule;
use crate::stats::{ClientError, Counters, Latency};
use crate::wire::{self, Fast};

impl Bot {
    pub(super) async fn on_frame(
        &mut self,
        incoming: Option<Result<Message, WsError>>,
        ws: &mut Ws,
    ) -> Result<Option<End>, BotError> {
        let lost = if self.stopping {
            End::Stopped
        } else {
            End::Lost
        };
        match incoming {
            None | Some(Ok(Message::Close(_))) => return Ok(Some(lost)),
            Some(Err(e)) => {
                debug!(bot = self.spec.id, "read failed: {e}");
                return Ok(Some(lost));
            }
            Some(Ok(Message::Binary(frame))) => {
                Counters::inc(&self.counters().messages_in);
                match wire::peek(&frame) {
                    Fast::Captured { seq, cell, player } => self.on_captured(seq, cell, player),
                    Fast::Rejected {
                        cell,
                        reference,
                        reason,
                    } => self.on_rejected(cell, reference, reason),
                    Fast::Other => match codec::decode_server(&frame) {
                        Ok(message) => self.on_message(message, ws).await?,
                        Err(e) => {
                            debug!(bot = self.spec.id, "undecodable frame: {e}");
                            self.counters().client_error(ClientError::Decode);
                        }
                    },
                }
            }
            Some(Ok(Message::Text(_))) => self.counters().client_error(ClientError::Decode),
            Some(Ok(_)) => {} // pings are answered by tungstenite
        }
        Ok(None)
    }

    fn check_seq(&mut self, seq: u64) {
        if self.last_seq != 0 && seq > self.last_seq + 1 {
            self.counters().client_error(ClientError::SeqGap);
        }
        self.last_seq = self.last_seq.max(seq);
    }

    fn on_captured(&mut self, seq: u64, cell: u8, player: u8) {
        Counters::inc(&self.counters().deliveries);
        self.check_seq(seq);
        self.board.set_owner(cell, player);
        let Some(seat) = &self.seat else {
            return;
        };
        let now = Instant::now();
        if player == seat.me {
            Counters::inc(&self.counters().captures);
            let generation = seat.round.generation;
            if let Some(i) = self
                .pending
                .iter()
                .position(|p| p.generation == generation && p.cell == cell)
                && let Some(p) = self.pending.remove(i)
            {
                Counters::inc(&self.counters().answered);
                self.record(Latency::Capture, now.saturating_duration_since(p.due));
            }
        } else if let Some(at) = seat.round.sent_at(player, cell) {
            self.record(Latency::Fanout, now.saturating_duration_since(at));
        }
    }

    fn on_rejected(&mut self, cell: i64, reference: Option<u32>, reason: RejectReason) {
        self.counters().rejected(reason);
        let Some(i) = reference.and_then(|r| self.pending.iter().position(|p| p.reference == r))
        else {
            return;
        };
        let Some(p) = self.pending.remove(i) else {
            return;
        };
        Counters::inc(&self.counters().answered);
        self.record(
            Latency::Capture,
            Instant::now().saturating_duration_since(p.due),
        );
        if self
            .seat
            .as_ref()
            .is_some_and(|s| s.round.generation == p.generation)
        {
            self.board.refused(cell);
        }
    }

    async fn on_message(&mut self, message: ServerMessage, ws: &mut Ws) -> Result<(), BotError> {
        if let Some(seq) = message.seq()
            && !matches!(message, ServerMessage::Captured { .. })
        {
            self.check_seq(seq);
        }
        match message {
            ServerMessage::Joined { game, you, token } => {
                let phase = std::mem::replace(&mut self.phase, Phase::Seated);
                let Phase::Entering { kind, since } = phase else {
                    self.phase = phase; // not ours to act on (e.g. while draining)
                    return Ok(());
                };
                Counters::inc(&self.counters().joins);
                if let Some(connected) = self.connect_time.take() {
                    self.record(Latency::Connect, connected + since.elapsed());
                }
                let resumed = matches!(kind, Enter::Resume);
                if !resumed {
                    Counters::inc(&self.counters().seats);
                    self.record(Latency::Seat, since.elapsed());
                    self.entered_at = Some(since);
                }
                let epoch = self.shared.epoch;
                let round = match kind {
                    Enter::Create => self.slot.publish(game.id.clone(), epoch),
                    Enter::Join(round) => round,
                    Enter::QuickPlay => self.shared.quick_rounds.seated_in(&game.id, epoch),
                    Enter::Resume => match &self.seat {
                        Some(seat) => seat.round.clone(),
                        None if self.shared.plan.quick_play => {
                            self.shared.quick_rounds.seated_in(&game.id, epoch)
                        }
                        None => self.slot.publish(game.id.clone(), epoch),
                    },
                };
                self.last_generation = self.last_generation.max(round.generation);
                self.seat = Some(Seat {
                    round,
                    me: you,
                    token,
                });
                self.board = Board::from_snapshot(&game.cells);
                self.hosting = game.host == you;
                self.players = game.players.len();
                self.last_seq = game.seq;
                self.seated_at = Instant::now();
                self.start_sent = false;
                self.schedule = None;
                self.status = game.status;
                match game.status {
                    GameStatus::Active => {
                        // Started at our join (a server that sends no
                        // `started` to the filler), or while we were away.
                        self.game_started(!resumed);
                        self.begin_capturing();
                    }
                    GameStatus::Completed => {
                        // Its game_over came while we were away (a bot
                        // does not resume a game it saw end): it ended.
                        if resumed && self.hosting {
                            Counters::inc(&self.counters().games_completed);
                        }
                        self.game_over(ws).await?;
                    }
                    GameStatus::Waiting => {}
                }
            }
            ServerMessage::PlayerJoined { .. } => self.players += 1,
            ServerMessage::PlayerLeft { .. } => self.players = self.players.saturating_sub(1),
            ServerMessage::Started { .. } => {
                self.game_started(true);
                self.status = GameStatus::Active;
                self.begin_capturing();
            }
            ServerMessage::Captured {
                seq, cell, player, ..
            } => self.on_captured(seq, cell, player),
            ServerMessage::Rejected {
                cell,
                reference,
                reason,
            } => self.on_rejected(cell, reference, reason),
            ServerMessage::GameOver { .. } => {
                self.status = GameStatus::Completed;
                if self.hosting {
                    Counters::inc(&self.counters().games_completed);
                }
                self.game_over(ws).await?;
            }
            ServerMessage::Error { code, message } => {
                self.counters().error(code);
                debug!(
                    bot = self.spec.id,
                    code = code.as_str(),
                    "server error: {message}"
                );
                self.entering_refused(ws, code).await?;
            }
            ServerMessage::Presence { .. }
            | ServerMessage::Countdown { .. }
            | ServerMessage::Pong { .. }
            // Players never watch; spectator bots read their own loop.
            | ServerMessage::Watching { .. } => {}
        }
        Ok(())
    }

    /// Sends create/join/resume again.
    pub(super) async fn redo(&mut self, ws: &mut Ws, kind: Enter) -> Result<(), BotError> {
        match kind {
            Enter::Create => self.create(ws).await,
            Enter::Join(round) => {
                let join = ClientMessage::Join {
                    game: round.game_id.clone(),
                    name: self.name.clone(),
                };
                self.enter(ws, &join, Enter::Join(round)).await
            }
            Enter::QuickPlay => self.quick_play(ws).await,
            Enter::Resume => self.first_move(ws).await,
        }
    }

    /// An `error` while entering a game: try again or try the next thing.
    async fn entering_refused(&mut self, ws: &mut Ws, code: ErrorCode) -> Result<(), BotError> {
        let phase = std::mem::replace(&mut self.phase, Phase::AwaitingRound);
        match phase {
            // The server may not have marked our finished game completed yet
            // when our next create/join overtakes it: ask again shortly.
            Phase::Entering { kind, .. } if code == ErrorCode::AlreadyInGame => {
                self.phase = Phase::Retry {
                    at: Instant::now() + ALREADY_IN_GAME_RETRY,
                    kind,
                };
            }
            // e.g. overloaded: the server may have room again shortly.
            Phase::Entering {
                kind: kind @ (Enter::Create | Enter::QuickPlay),
                ..
            } => {
                self.phase = Phase::Retry {
                    at: Instant::now() + CREATE_RETRY,
                    kind,
                };
            }
            Phase::Entering {
                kind: Enter::Join(_),
                ..
            } => self.try_join(ws).await?,
            Phase::Entering {
                kind: Enter::Resume,
                ..
            } => {
                // The seat is gone (game expired, or the token refused).
                self.seat = None;
                self.entered_at = None;
                if self.shared.plan.quick_play {
                    self.quick_play(ws).await?;
                } else if self.spec.is_host() {
                    self.create(ws).await?;
                } else {
                    self.try_join(ws).await?;
                }
            }
            other => self.phase = other, // e.g. rate_limited while playing: counted only
        }
        Ok(())
    }

    /// The held game started (`started`, or an active snapshot): the host
    /// counts it, and a bot that saw it happen (`timed`) records its time
    /// to start, once per seat.
    fn game_started(&mut self, timed: bool) {
        let Some(since) = self.entered_at.take() else {
            return; // already counted (a second `started` cannot happen)
        };
        if timed {
            self.record(Latency::Start, since.elapsed());
        }
        if self.hosting {
            Counters::inc(&self.counters().games_started);
        }
    }

    fn begin_capturing(&mut self) {
        if !self.stopping {
            let phase = self.rng.unit();
            self.schedule = Schedule::new(Instant::now(), self.shared.plan.rate, phase);
        }
    }

    /// The held game is over: the host creates the next, guests wait for it.
    async fn game_over(&mut self, ws: &mut Ws) -> Result<(), BotError> {
        self.schedule = None;
        if self.stopping || self.shared.plan.idle || !matches!(self.phase, Phase::Seated) {
            return Ok(());
        }
        if self.shared.plan.quick_play {
            self.quick_play(ws).await
        } else if self.spec.is_host() {
            self.create(ws).await
        } else {
            self.phase = Phase::AwaitingRound;
            self.try_join(ws).await
        }
    }
}
