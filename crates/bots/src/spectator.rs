//! A spectator bot (`--spectators N`): it watches the games of one slot.
//!
//! It connects like a player (the same URLs and source addresses, spread
//! round-robin), sends `watch` for the round its slot's host published last,
//! and switches to each new round as it is published. Every `captured` it
//! receives counts as a spectator delivery, and its latency from the
//! capture's scheduled instant (the round's table, as for players) goes to
//! the spectator fan-out histogram. A `seq` gap is counted and repaired the
//! way the protocol says: by sending `watch` again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;
use transport::protocol::ServerMessage;
use transport::{ClientMessage, codec};

use crate::conn::{self, Shared, Ws};
use crate::error::BotError;
use crate::game_plan::ramp_offset;
use crate::round::{GameSlot, Round};
use crate::stats::{ClientError, Counters, Latency};
use crate::wire::{self, Fast};

/// One spectator's place in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpectatorSpec {
    /// Global index, after every player's (picks the stats shard).
    pub id: u32,
    /// The slot whose games it watches.
    pub game: u32,
    /// Index into the run's targets.
    pub target: usize,
    /// Index into the run's source addresses, when any were given.
    pub source: Option<usize>,
    /// When to connect, from the start of the run.
    pub start_after: Duration,
}

/// `per_game` spectators for each of `games` slots, numbered after `first`,
/// spread round-robin over targets and sources and evenly over `ramp_up`.
pub fn assign(
    games: u32,
    per_game: u32,
    first: u32,
    targets: usize,
    sources: usize,
    ramp_up: Duration,
) -> impl Iterator<Item = SpectatorSpec> {
    let total = games.saturating_mul(per_game);
    (0..total).map(move |k| {
        let id = first.saturating_add(k);
        SpectatorSpec {
            id,
            game: k / per_game.max(1),
            target: id as usize % targets.max(1),
            source: (sources > 0).then(|| id as usize % sources),
            start_after: ramp_offset(k, total, ramp_up),
        }
    })
}

/// How a connection ended.
enum End {
    Stopped,
    Lost,
}

/// A spectator bot.
#[derive(Debug)]
pub struct Spectator {
    spec: SpectatorSpec,
    shared: Arc<Shared>,
    slot: Arc<GameSlot>,
    /// The round watched now.
    round: Option<Arc<Round>>,
    /// The last seq seen of the watched game (0: none yet).
    last_seq: u64,
}

impl Spectator {
    /// A spectator of `slot`'s games.
    pub fn new(spec: SpectatorSpec, shared: Arc<Shared>, slot: Arc<GameSlot>) -> Spectator {
        Spectator {
            spec,
            shared,
            slot,
            round: None,
            last_seq: 0,
        }
    }

    fn counters(&self) -> &Counters {
        &self.shared.stats.counters
    }

    /// Watches until the run stops, reconnecting when a connection is lost.
    pub async fn run(mut self) {
        let stop = self.shared.stop.clone();
        let start = self.shared.epoch + self.spec.start_after;
        tokio::select! {
            () = tokio::time::sleep_until(start.into()) => {}
            () = stop.cancelled() => return,
        }
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let plan = &self.shared.plan;
            let Some(target) = plan.targets.get(self.spec.target) else {
                return;
            };
            let source = self.spec.source.and_then(|i| plan.source_ips.get(i));
            match conn::connect(target, source.copied(), self.shared.ws_config).await {
                Ok(mut ws) => {
                    backoff = Duration::from_millis(100);
                    Counters::inc(&self.counters().connections);
                    let end = match self.watch_loop(&mut ws).await {
                        Ok(end) => end,
                        Err(e) => {
                            debug!(spectator = self.spec.id, "connection lost: {e}");
                            End::Lost
                        }
                    };
                    Counters::inc(&self.counters().closed);
                    if matches!(end, End::Stopped) || stop.is_cancelled() {
                        conn::close(&mut ws).await;
                        return;
                    }
                    Counters::inc(&self.counters().disconnects);
                    self.round = None;
                }
                Err(e) => {
                    debug!(spectator = self.spec.id, "connect failed: {e}");
                    self.counters().client_error(ClientError::Connect);
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One connection: watch the slot's current round, follow new ones.
    async fn watch_loop(&mut self, ws: &mut Ws) -> Result<End, BotError> {
        let stop = self.shared.stop.clone();
        let mut rounds = self.slot.subscribe();
        let current = rounds.borrow_and_update().clone();
        if let Some(round) = current {
            self.watch(round, ws).await?;
        }
        loop {
            tokio::select! {
                changed = rounds.changed() => {
                    if changed.is_err() {
                        return Ok(End::Stopped);
                    }
                    let next = rounds.borrow_and_update().clone();
                    if let Some(round) = next {
                        self.watch(round, ws).await?;
                    }
                }
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Binary(frame))) => self.on_frame(&frame, ws).await?,
                    Some(Ok(Message::Close(_))) | None => return Ok(End::Lost),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                },
                () = stop.cancelled() => return Ok(End::Stopped),
            }
        }
    }

    /// Sends `watch` for `round` (a switch, or a resync of the same game).
    async fn watch(&mut self, round: Arc<Round>, ws: &mut Ws) -> Result<(), BotError> {
        let message = ClientMessage::Watch {
            game: round.game_id.clone(),
        };
        conn::send(ws, &message, self.counters()).await?;
        self.round = Some(round);
        self.last_seq = 0;
        Ok(())
    }

    async fn on_frame(&mut self, frame: &[u8], ws: &mut Ws) -> Result<(), BotError> {
        Counters::inc(&self.counters().messages_in);
        let (seq, captured) = match wire::peek(frame) {
            Fast::Captured { seq, cell, player } => (Some(seq), Some((cell, player))),
            Fast::Rejected { .. } => (None, None),
            Fast::Other => match codec::decode_server(frame) {
                Ok(ServerMessage::Watching { game }) => {
                    Counters::inc(&self.counters().watches);
                    self.last_seq = game.seq;
                    (None, None)
                }
                Ok(ServerMessage::Error { code, .. }) => {
                    self.counters().error(code);
                    (None, None)
                }
                Ok(message) => (message.seq(), None),
                Err(e) => {
                    debug!(spectator = self.spec.id, "undecodable frame: {e}");
                    self.counters().client_error(ClientError::Decode);
                    (None, None)
                }
            },
        };
        if let Some((cell, player)) = captured {
            Counters::inc(&self.counters().spectator_deliveries);
            if let Some(at) = self.round.as_ref().and_then(|r| r.sent_at(player, cell)) {
                let latency = Instant::now().saturating_duration_since(at);
                let stats = &self.shared.stats;
                stats.record(self.spec.id, Latency::SpectatorFanout, latency);
            }
        }
        if let Some(seq) = seq {
            if self.last_seq != 0 && seq > self.last_seq + 1 {
                // A gap: the protocol's repair is a fresh `watching`.
                self.counters().client_error(ClientError::SeqGap);
                if let Some(round) = self.round.clone() {
                    self.watch(round, ws).await?;
                }
                return Ok(());
            }
            self.last_seq = self.last_seq.max(seq);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectators_are_numbered_after_the_players_and_spread_over_slots() {
        let specs: Vec<_> = assign(3, 2, 12, 2, 0, Duration::ZERO).collect();
        assert_eq!(specs.len(), 6);
        assert_eq!(
            specs.iter().map(|s| (s.id, s.game)).collect::<Vec<_>>(),
            [(12, 0), (13, 0), (14, 1), (15, 1), (16, 2), (17, 2)]
        );
        assert_eq!(
            specs.iter().map(|s| s.target).collect::<Vec<_>>(),
            [0, 1, 0, 1, 0, 1]
        );
        assert!(specs.iter().all(|s| s.source.is_none()));
    }

    #[test]
    fn no_spectators_when_none_are_asked_for() {
        assert_eq!(assign(5, 0, 20, 1, 1, Duration::from_secs(1)).count(), 0);
    }
}
