//! A node's games by status as `/api/node` and `/metrics` report them,
//! kept up to date as the games change (by the game tasks through the
//! [census](super::local::census) in single and stateful modes, by the
//! [rooms](super::redis::rooms::Rooms) in stateless mode), so that no
//! request walks the games or waits for a lock they hold.

use std::sync::atomic::{AtomicU64, Ordering};

use game_logic::Status;

use crate::games::GameCounts;

/// Counted rooms by status.
#[derive(Debug, Default)]
pub struct Tally {
    waiting: AtomicU64,
    active: AtomicU64,
    completed: AtomicU64,
}

impl Tally {
    fn of(&self, status: Status) -> &AtomicU64 {
        match status {
            Status::Waiting => &self.waiting,
            Status::Active => &self.active,
            Status::Completed => &self.completed,
        }
    }

    /// A room counted under `from` (`None`: not counted) is now counted
    /// under `to`.
    pub fn moved(&self, from: Option<Status>, to: Option<Status>) {
        if from == to {
            return;
        }
        if let Some(from) = from {
            // Every game's moves are made in order by one owner (its task,
            // or the rooms' lock): a decrement follows its increment.
            self.of(from).fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(to) = to {
            self.of(to).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now (`unattended`: 0, see [`GameCounts::unattended`]).
    pub fn counts(&self) -> GameCounts {
        GameCounts {
            waiting: self.waiting.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            // The census adds its own; stateless nodes count none.
            unattended: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_moves_between_statuses_and_out() {
        let tally = Tally::default();
        tally.moved(None, Some(Status::Waiting));
        tally.moved(None, Some(Status::Waiting));
        tally.moved(Some(Status::Waiting), Some(Status::Active));
        tally.moved(Some(Status::Active), Some(Status::Active));
        let counts = tally.counts();
        assert_eq!((counts.waiting, counts.active, counts.completed), (1, 1, 0));
        tally.moved(Some(Status::Active), Some(Status::Completed));
        tally.moved(Some(Status::Waiting), None);
        let counts = tally.counts();
        assert_eq!((counts.waiting, counts.active, counts.completed), (0, 0, 1));
    }
}
