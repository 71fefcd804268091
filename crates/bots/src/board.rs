//! One bot's own view of the 9x9 board, as told by `joined` snapshots and
//! `captured` events, plus the cells it has asked for and not heard back about.
//!
//! Bots choose cells from this view only (never from shared state), like a
//! real client: two bots may go for the same free cell, and the server's
//! first-writer-wins rule rejects one of them.

use crate::game_plan::Rng;

/// Number of cells.
pub const CELLS: usize = 81;

/// A cell no one owns, as far as this bot knows.
const FREE: u8 = 0;
/// A cell this bot asked for and has no answer about yet.
const PENDING: u8 = 0xFE;
/// A cell refused to this bot whose owner it did not learn.
const TAKEN: u8 = 0xFF;

/// The board as one bot sees it.
#[derive(Debug, Clone)]
pub struct Board {
    /// 0 free, k + 1 owned by player k, or [`PENDING`] / [`TAKEN`].
    cells: [u8; CELLS],
    /// Cells that are [`FREE`], kept so a pick needs one pass, not two.
    free: u32,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            cells: [FREE; CELLS],
            free: CELLS as u32,
        }
    }
}

impl Board {
    /// The board of a snapshot's `cells` (0 free, k + 1 owned by k); bytes
    /// past 81 are ignored, missing ones count as free.
    pub fn from_snapshot(cells: &[u8]) -> Board {
        let mut board = Board::default();
        for (slot, &c) in board.cells.iter_mut().zip(cells) {
            *slot = c;
        }
        board.recount();
        board
    }

    fn recount(&mut self) {
        self.free = self.cells.iter().filter(|&&c| c == FREE).count() as u32;
    }

    /// Cells this bot believes are free.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// The owner of `cell` as far as this bot knows (`None` when free or unknown).
    pub fn owner(&self, cell: u8) -> Option<u8> {
        match self.cells.get(usize::from(cell)) {
            Some(&c) if c != FREE && c < PENDING => Some(c - 1),
            _ => None,
        }
    }

    /// A `captured` event: `player` owns `cell`.
    pub fn set_owner(&mut self, cell: u8, player: u8) {
        if let Some(slot) = self.cells.get_mut(usize::from(cell)) {
            if *slot == FREE {
                self.free -= 1;
            }
            *slot = player.saturating_add(1).min(PENDING - 1);
        }
    }

    /// Our capture of `cell` was refused: do not ask for it again this round.
    pub fn refused(&mut self, cell: i64) {
        let slot = usize::try_from(cell)
            .ok()
            .and_then(|i| self.cells.get_mut(i));
        if let Some(slot) = slot {
            match *slot {
                FREE => {
                    self.free -= 1;
                    *slot = TAKEN;
                }
                PENDING => *slot = TAKEN,
                _ => {}
            }
        }
    }

    /// Picks a random free cell and marks it pending; `None` when none is free.
    pub fn pick(&mut self, rng: &mut Rng) -> Option<u8> {
        if self.free == 0 {
            return None;
        }
        let mut nth = rng.below(self.free);
        for (i, slot) in self.cells.iter_mut().enumerate() {
            if *slot == FREE {
                if nth == 0 {
                    *slot = PENDING;
                    self.free -= 1;
                    return u8::try_from(i).ok();
                }
                nth -= 1;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_free_cells_until_none_is_left() {
        let mut cells = [0u8; 81];
        cells[0] = 1;
        cells[80] = 3;
        let mut b = Board::from_snapshot(&cells);
        assert_eq!(b.free(), 79);
        assert_eq!(b.owner(80), Some(2));
        let mut rng = Rng::new(1, 1);
        let mut picked = std::collections::HashSet::new();
        while let Some(c) = b.pick(&mut rng) {
            assert!(c != 0 && c != 80);
            assert!(picked.insert(c), "cell {c} picked twice");
        }
        assert_eq!(picked.len(), 79);
        assert_eq!(b.free(), 0);
    }

    #[test]
    fn events_and_refusals_keep_the_free_count() {
        let mut b = Board::default();
        b.set_owner(5, 0);
        b.set_owner(5, 1); // a second event for one cell (never sent) changes nothing
        assert_eq!(b.free(), 80);
        assert_eq!(b.owner(5), Some(1));
        b.refused(6);
        assert_eq!(b.free(), 79);
        assert_eq!(b.owner(6), None);
        b.refused(-1);
        b.refused(81);
        b.set_owner(200, 0);
        assert_eq!(b.free(), 79);
        let mut rng = Rng::new(2, 2);
        let c = b.pick(&mut rng).unwrap();
        assert_eq!(b.free(), 78);
        b.refused(i64::from(c)); // pending -> taken: still not free
        assert_eq!(b.free(), 78);
        b.set_owner(c, 3);
        assert_eq!((b.owner(c), b.free()), (Some(3), 78));
    }
}
