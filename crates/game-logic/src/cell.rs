//! The 9×9 board's cells.

use std::fmt;

use crate::GameError;

/// Cells per row and per column.
pub const SIDE: u8 = 9;
/// Cells on the board.
pub const CELL_COUNT: usize = (SIDE as usize) * (SIDE as usize);

/// One cell of the 9×9 board, `row * 9 + col`; cannot hold a value above 80.
///
/// ```
/// use game_logic::Cell;
/// let c = Cell::try_from(80u8).unwrap();
/// assert_eq!((c.row(), c.col()), (8, 8));
/// assert!(Cell::try_from(81u8).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell(u8);

impl Cell {
    /// Every cell, in index order.
    pub fn all() -> impl Iterator<Item = Cell> {
        (0..CELL_COUNT as u8).map(Cell)
    }

    /// The cell at `row`, `col`, or `None` when either is 9 or more.
    pub fn from_row_col(row: u8, col: u8) -> Option<Cell> {
        (row < SIDE && col < SIDE).then(|| Cell(row * SIDE + col))
    }

    /// The index 0..=80.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Row 0..=8.
    pub const fn row(self) -> u8 {
        self.0 / SIDE
    }

    /// Column 0..=8.
    pub const fn col(self) -> u8 {
        self.0 % SIDE
    }
}

impl TryFrom<u8> for Cell {
    type Error = GameError;

    fn try_from(value: u8) -> Result<Self, GameError> {
        if usize::from(value) < CELL_COUNT {
            Ok(Cell(value))
        } else {
            Err(GameError::OutOfRange)
        }
    }
}

impl TryFrom<i64> for Cell {
    type Error = GameError;

    /// Any integer a client may send; negatives and 81+ are `OutOfRange`.
    fn try_from(value: i64) -> Result<Self, GameError> {
        u8::try_from(value)
            .map_err(|_| GameError::OutOfRange)
            .and_then(Cell::try_from)
    }
}

impl From<Cell> for u8 {
    fn from(c: Cell) -> u8 {
        c.0
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_accepts_below;

    #[test]
    fn every_index_below_81_is_a_cell_and_nothing_else_is() {
        assert_accepts_below(81, GameError::OutOfRange, Cell::try_from);
    }

    #[test]
    fn any_client_integer_outside_0_to_80_is_out_of_range() {
        for v in [-1, i64::MIN, 81, 256, 337, i64::MAX] {
            assert_eq!(Cell::try_from(v), Err(GameError::OutOfRange), "{v}");
        }
        assert_eq!(Cell::try_from(0i64).map(Cell::index), Ok(0));
        assert_eq!(Cell::try_from(80i64).map(Cell::index), Ok(80));
    }

    #[test]
    fn rows_and_columns_round_trip() {
        for cell in Cell::all() {
            assert_eq!(Cell::from_row_col(cell.row(), cell.col()), Some(cell));
            assert_eq!(
                cell.index(),
                usize::from(cell.row()) * 9 + usize::from(cell.col())
            );
        }
        assert_eq!(Cell::from_row_col(9, 0), None);
        assert_eq!(Cell::from_row_col(0, 9), None);
        assert_eq!(Cell::from_row_col(2, 3).map(Cell::index), Some(21));
    }

    #[test]
    fn all_lists_the_81_cells_in_order() {
        let all: Vec<usize> = Cell::all().map(Cell::index).collect();
        assert_eq!(all, (0..CELL_COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn display_is_the_index() {
        assert_eq!(
            Cell::from_row_col(8, 8).map(|c| c.to_string()),
            Some("80".into())
        );
    }
}
