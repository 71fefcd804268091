//! What the bots of one game share: the current round (the game the
//! slot's host created last, or, with quick play, the game the server seated
//! them in) and, for it, when each capture was scheduled.
//!
//! Bots run in one process on one clock, so the fan-out latency of a capture
//! is exact: the capturer stores the capture's scheduled instant under
//! (player, cell) before sending it, and every other bot of the game looks it
//! up when the matching `captured{cell, player}` arrives. A cell is captured
//! at most once per game and a bot asks for a cell at most once per game,
//! so each key is written once per round; a new round gets a new table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
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

/// The rounds of quick-play bots: the server, not a slot, decides who plays
/// together, so the bots seated in one game find its round by game id. The
/// table holds weak references: a round lives as long as a bot is seated in
/// it, and dead entries are swept as the table grows.
#[derive(Debug)]
pub struct QuickPlayRounds {
    /// Game id → its round, while some bot holds it.
    by_game: Mutex<HashMap<String, Weak<Round>>>,
    /// Source of round generations.
    next_generation: AtomicU64,
    /// Sweep dead entries when the table reaches this size (then twice the
    /// live entries), so sweeping costs O(1) per insertion on average.
    sweep_at: AtomicU64,
}

impl Default for QuickPlayRounds {
    fn default() -> Self {
        QuickPlayRounds {
            by_game: Mutex::default(),
            next_generation: AtomicU64::new(1),
            sweep_at: AtomicU64::new(64),
        }
    }
}

impl QuickPlayRounds {
    /// The round of game `game_id`: the one another bot already holds, or a new one.
    pub fn seated_in(&self, game_id: &str, epoch: Instant) -> Arc<Round> {
        // Entries are replaced whole, so a poisoned lock is fine to reuse.
        let mut table = self.by_game.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(round) = table.get(game_id).and_then(Weak::upgrade) {
            return round;
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let round = Arc::new(Round::new(generation, game_id.to_owned(), epoch));
        table.insert(game_id.to_owned(), Arc::downgrade(&round));
        if table.len() as u64 >= self.sweep_at.load(Ordering::Relaxed) {
            table.retain(|_, r| r.strong_count() > 0);
            let next = (table.len() as u64 * 2).max(64);
            self.sweep_at.store(next, Ordering::Relaxed);
        }
        round
    }

    /// Games in the table (live or not yet swept).
    pub fn len(&self) -> usize {
        self.by_game.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    #[test]
    fn quick_play_bots_of_one_game_share_its_round() {
        let rounds = QuickPlayRounds::default();
        let epoch = Instant::now();
        let a = rounds.seated_in("g1", epoch);
        let b = rounds.seated_in("g1", epoch);
        assert!(Arc::ptr_eq(&a, &b), "one table per game");
        let c = rounds.seated_in("g2", epoch);
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(c.generation > a.generation);
        drop((a, b));
        let again = rounds.seated_in("g1", epoch);
        assert!(
            again.sent_at(0, 0).is_none(),
            "a game nobody holds starts afresh"
        );
        // Dead entries do not pile up.
        for i in 0..1000 {
            drop(rounds.seated_in(&format!("x{i}"), epoch));
        }
        assert!(rounds.len() <= 64, "{}", rounds.len());
    }
}
