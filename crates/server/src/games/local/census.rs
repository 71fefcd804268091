//! What this node's games add up to, kept as they change: the counts by
//! status that `/api/node` and `/metrics` report, and the unattended
//! waiting games, oldest first.
//!
//! Each game's task reports its own changes (see `task.rs`,
//! `publish_status`), so a reader takes three atomic loads and no request
//! ever walks the games (issue 18: with ~78k games held, routes that did
//! pushed a running game's capture p99 from 2 ms to 121 ms).
//!
//! **Unattended games.** Protocol §5 keeps a waiting game nobody is
//! connected to for 60 s, so a client that creates a game and drops, in a
//! loop, fills the game table with games nobody plays (100,000 in 28 s from
//! one address). The census holds at most `--max-unattended-games` of them:
//! past that, the oldest is told to end at once ([`GameHandle::evict`]; its
//! task checks that nobody came back meanwhile). A game counts from the
//! moment its last connected player leaves or drops, and no longer once one
//! is back. A game moved here by a draining peer only counts once one of
//! its players has come back and gone again: its players are on their way.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use game_logic::Status;
use uuid::Uuid;

use super::task::GameHandle;
use crate::games::GameCounts;
use crate::games::tally::Tally;

/// Counts by status and the unattended games of one node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Census {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Games by status.
    by_status: Tally,
    /// Most unattended games held before the oldest is evicted (0: no cap).
    max_unattended: usize,
    unattended: Mutex<Unattended>,
    /// How many `unattended` holds, for readers that must not take its lock.
    unattended_now: AtomicU64,
}

/// The unattended games: a map for membership and a queue for age. The
/// queue may hold stale entries (a game that was attended again, or that
/// came back under a newer ticket); they are skipped when popped and
/// compacted away when they outnumber the live ones.
#[derive(Debug, Default)]
struct Unattended {
    games: HashMap<Uuid, (u64, GameHandle)>,
    oldest_first: VecDeque<(u64, Uuid)>,
    next_ticket: u64,
}

impl Census {
    /// No games yet; at most `max_unattended` unattended ones (0: no cap).
    pub fn new(max_unattended: usize) -> Census {
        Census {
            inner: Arc::new(Inner {
                by_status: Default::default(),
                max_unattended,
                unattended: Mutex::default(),
                unattended_now: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Unattended> {
        // Each critical section is one map and queue update: a poisoned
        // census is intact.
        self.inner
            .unattended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A game's status went from `was` to `now` (`None`: not held).
    pub fn moved(&self, was: Option<Status>, now: Option<Status>) {
        self.inner.by_status.moved(was, now);
    }

    /// Games by status now.
    pub fn counts(&self) -> GameCounts {
        GameCounts {
            unattended: self.unattended_count(),
            ..self.inner.by_status.counts()
        }
    }

    /// `game` has become unattended. Returns the oldest unattended game to
    /// evict when that puts the census over its cap.
    #[must_use]
    pub fn unattended(&self, game: &GameHandle) -> Option<GameHandle> {
        let mut u = self.lock();
        let ticket = u.next_ticket;
        u.next_ticket += 1;
        u.games.insert(game.id(), (ticket, game.clone()));
        u.oldest_first.push_back((ticket, game.id()));
        let max = self.inner.max_unattended;
        let victim = if max > 0 && u.games.len() > max {
            u.pop_oldest()
        } else {
            None
        };
        u.compact();
        self.publish(&u);
        victim
    }

    /// Game `id` is attended again, or gone.
    pub fn attended(&self, id: &Uuid) {
        let mut u = self.lock();
        u.games.remove(id);
        u.compact();
        self.publish(&u);
    }

    fn publish(&self, u: &Unattended) {
        let held = u64::try_from(u.games.len()).unwrap_or(u64::MAX);
        self.inner.unattended_now.store(held, Ordering::Relaxed);
    }

    /// Unattended waiting games now (no lock taken).
    pub fn unattended_count(&self) -> u64 {
        self.inner.unattended_now.load(Ordering::Relaxed)
    }
}

impl Unattended {
    /// Takes the oldest live entry out.
    fn pop_oldest(&mut self) -> Option<GameHandle> {
        while let Some((ticket, id)) = self.oldest_first.pop_front() {
            if self.games.get(&id).is_some_and(|(t, _)| *t == ticket) {
                return self.games.remove(&id).map(|(_, game)| game);
            }
        }
        None
    }

    /// Drops stale queue entries once they outnumber the live ones, so a
    /// game that flaps between attended and not cannot grow the queue.
    fn compact(&mut self) {
        if self.oldest_first.len() > 2 * self.games.len() + 64 {
            let games = &self.games;
            self.oldest_first
                .retain(|(ticket, id)| games.get(id).is_some_and(|(t, _)| t == ticket));
            self.oldest_first.shrink_to_fit();
        }
        if self.games.is_empty() && self.games.capacity() > 64 {
            self.games = HashMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn games(n: usize) -> Vec<GameHandle> {
        (0..n).map(|_| GameHandle::ended(Uuid::new_v4())).collect()
    }

    #[test]
    fn past_the_cap_the_oldest_unattended_game_is_evicted() {
        let census = Census::new(2);
        let g = games(4);
        assert!(census.unattended(&g[0]).is_none());
        assert!(census.unattended(&g[1]).is_none());
        let evicted = census.unattended(&g[2]).map(|h| h.id());
        assert_eq!(evicted, Some(g[0].id()), "the oldest goes first");
        // g[1] is attended again: g[2] is now the oldest.
        census.attended(&g[1].id());
        assert!(census.unattended(&g[3]).is_none());
        assert!(census.unattended(&g[1]).map(|h| h.id()) == Some(g[2].id()));
        assert_eq!(census.unattended_count(), 2);
        assert_eq!(census.counts().unattended, 2);
    }

    #[test]
    fn a_game_that_flaps_does_not_grow_the_queue() {
        let census = Census::new(10);
        let g = games(1);
        for _ in 0..10_000 {
            assert!(census.unattended(&g[0]).is_none());
            census.attended(&g[0].id());
        }
        assert!(census.lock().oldest_first.len() <= 64 + 2);
        assert_eq!(census.unattended_count(), 0);
    }

    #[test]
    fn no_cap_evicts_nothing() {
        let census = Census::new(0);
        for g in games(100) {
            assert!(census.unattended(&g).is_none());
        }
        assert_eq!(census.unattended_count(), 100);
    }
}
