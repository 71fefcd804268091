//! What the bots of one game slot share: the current round (the game the
//! host created last) and, for it, when each capture was scheduled.
//!
//! Bots run in one process on one clock, so the fan-out latency of a capture
//! is exact: the capturer stores the capture's scheduled instant under
//! (player, cell) before sending it, and every other bot of the game looks it
//! up when the matching `captured{cell, player}` arrives. A cell is captured
//! at most once per game and a bot asks for a cell at most once per game,
//! so each key is written once per round; a new round gets a new table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::board::CELLS;

/// Seats in a game (protocol: player ids 0..=7).
const SEATS: usize = 8;

/// One game created by a slot's host.
#[derive(Debug)]
pub struct Round {
    /// Increases with every game of the slot, so a joiner knows a game is new.
    pub generation: u64,
    /// The server's game id, for `join` and `resume`.
    pub game_id: String,
    /// Scheduled send instant per (player, cell), as nanoseconds after the
    /// run's epoch plus one; 0 = not sent.
    sent: Box<[AtomicU64]>,
    /// The run's clock origin.
    epoch: Instant,
}

impl Round {
    /// A new round with an empty table.
    pub fn new(generation: u64, game_id: String, epoch: Instant) -> Round {
        Round {
            generation,
            game_id,
            sent: (0..SEATS * CELLS).map(|_| AtomicU64::new(0)).collect(),
            epoch,
        }
    }

    fn index(player: u8, cell: u8) -> Option<usize> {
        let (p, c) = (usize::from(player), usize::from(cell));
        (p < SEATS && c < CELLS).then_some(p * CELLS + c)
    }

    /// `player` scheduled its capture of `cell` at `at`.
    pub fn mark_sent(&self, player: u8, cell: u8, at: Instant) {
        if let Some(i) = Self::index(player, cell) {
            let nanos = at.saturating_duration_since(self.epoch).as_nanos();
            let value = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
            self.sent[i].store(value, Ordering::Release);
        }
    }

    /// When `player` scheduled its capture of `cell`, if it did this round.
    pub fn sent_at(&self, player: u8, cell: u8) -> Option<Instant> {
        let i = Self::index(player, cell)?;
        match self.sent[i].load(Ordering::Acquire) {
            0 => None,
            v => Some(self.epoch + Duration::from_nanos(v - 1)),
        }
    }
}

/// The meeting point of one game slot's bots: the host publishes each new
/// round here, the guests wait for it.
#[derive(Debug)]
pub struct GameSlot {
    /// The latest round (or none yet).
    rounds: watch::Sender<Option<Arc<Round>>>,
    /// Source of round generations.
    next_generation: AtomicU64,
}

impl Default for GameSlot {
    fn default() -> Self {
        GameSlot {
            rounds: watch::Sender::new(None),
            next_generation: AtomicU64::new(1),
        }
    }
}

impl GameSlot {
    /// Publishes the game the host just created.
    pub fn publish(&self, game_id: String, epoch: Instant) -> Arc<Round> {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let round = Arc::new(Round::new(generation, game_id, epoch));
        self.rounds.send_replace(Some(round.clone()));
        round
    }

    /// A receiver that sees every newly published round.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Round>>> {
        self.rounds.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_instants_round_trip_per_player_and_cell() {
        let epoch = Instant::now();
        let r = Round::new(1, "g".into(), epoch);
        assert_eq!(r.sent_at(2, 40), None);
        let at = epoch + Duration::from_micros(1_234_567);
        r.mark_sent(2, 40, at);
        assert_eq!(r.sent_at(2, 40), Some(at));
        assert_eq!(r.sent_at(3, 40), None);
        assert_eq!(r.sent_at(2, 41), None);
        r.mark_sent(2, 40, epoch); // the epoch itself is not "unset"
        assert_eq!(r.sent_at(2, 40), Some(epoch));
        r.mark_sent(8, 0, at);
        r.mark_sent(0, 81, at);
        assert_eq!(r.sent_at(8, 0), None);
    }

    #[test]
    fn guests_see_each_new_round() {
        let slot = GameSlot::default();
        let mut rx = slot.subscribe();
        assert!(rx.borrow_and_update().is_none());
        let epoch = Instant::now();
        let a = slot.publish("a".into(), epoch);
        let b = slot.publish("b".into(), epoch);
        assert!(b.generation > a.generation);
        assert!(rx.has_changed().unwrap());
        let seen = rx.borrow_and_update().clone().unwrap();
        assert_eq!(seen.game_id, "b");
    }
}
