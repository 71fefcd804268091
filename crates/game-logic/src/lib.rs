//! The rules of gridcap: players race to capture the 81 cells of a 9×9 grid
//! in a timed round.
//!
//! This crate is pure and deterministic, in the manner of `quinn-proto`: no
//! I/O, no clock, no randomness, no async runtime. Time comes in as an
//! argument ([`Timestamp`], Unix milliseconds); the next deadline goes out as
//! a query ([`Game::poll_timeout`]); results come out as values
//! ([`Game::poll_event`]). A refused command returns a [`GameError`] and
//! leaves the state exactly as it was.
//!
//! # Layout
//!
//! - [`game`]: [`Game`], the state machine, and its calling order.
//! - [`snapshot`]: [`Snapshot`] and [`Status`]; `Snapshot::apply` replays events.
//! - [`event`]: [`Event`], one per broadcast, each with the next `seq`.
//! - [`cell`], [`player`], [`settings`], [`time`]: values that cannot be invalid.
//! - [`error`]: [`GameError`], one variant per protocol refusal.
//! - `test_util` (feature `test-util`, tests only): the random command model
//!   the property tests, the fuzz targets and the Lua differential test share.
//!
//! # A whole game
//!
//! ```
//! use game_logic::*;
//!
//! let t0 = Timestamp::from_unix_ms(1_000_000);
//! let settings = Settings::new(Some(2), Some(30_000), &SettingsBounds::default())?;
//! let mut game = Game::new(settings, PlayerName::new("ada")?, t0);
//! let host = game.host();
//!
//! // A second player fills the game. The driver sends the joiner its
//! // snapshot (still waiting), then lets the join's consequence happen:
//! // the start, which the joiner hears like everyone else.
//! let bob = game.join(PlayerName::new("bob")?, t0)?;
//! assert!(matches!(game.poll_event(), Some(Event::PlayerJoined { seq: 1, .. })));
//! assert_eq!(game.snapshot().status, Status::Waiting);
//! assert_eq!(game.poll_timeout(), Some(t0), "the start is due at once");
//! game.handle_timeout(t0);
//! assert!(matches!(game.poll_event(), Some(Event::Started { seq: 2, .. })));
//! assert_eq!(game.status(), Status::Active);
//!
//! // First writer wins.
//! let cell = Cell::try_from(40u8)?;
//! game.capture(host, cell, t0)?;
//! assert_eq!(game.capture(bob, cell, t0), Err(GameError::Taken));
//!
//! // Past the deadline nothing is accepted, even before the timer ran.
//! let deadline = game.poll_timeout().unwrap();
//! let late = Cell::try_from(0u8)?;
//! assert_eq!(game.capture(bob, late, deadline), Err(GameError::NotActive));
//!
//! game.handle_timeout(deadline);
//! let over = std::iter::from_fn(|| game.poll_event()).last().unwrap();
//! assert!(matches!(over, Event::GameOver { reason: GameOverReason::Time, .. }));
//! assert_eq!(game.snapshot().winners, Some(vec![host]));
//! # Ok::<(), GameError>(())
//! ```

pub mod cell;
pub mod error;
pub mod event;
pub mod game;
pub mod player;
pub mod settings;
pub mod snapshot;
pub mod time;

pub use cell::{CELL_COUNT, Cell, SIDE};
pub use error::GameError;
pub use event::{Event, GameOverReason};
pub use game::{Game, RETENTION};
pub use player::{Player, PlayerId, PlayerName};
pub use settings::{MAX_SEATS, MIN_SEATS, Settings, SettingsBounds};
pub use snapshot::{Snapshot, Status};
pub use time::Timestamp;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
