//! Test support, for this crate's tests and, behind the `test-util`
//! feature, for every other test that drives the rules with random input.
//!
//! - [`script`]: THE random command model: [`Command`], [`Step`],
//!   [`Script`], how a command runs on a [`Game`](crate::Game)
//!   ([`Command::apply`]) and the fuzz targets' byte format
//!   ([`Script::decode`], [`Encoder`]). The game-logic proptests, the
//!   `game_machine` fuzz target and the server's Lua differential test all
//!   draw their commands from it, so a new command is added once.
//! - [`strategy`] (feature `proptest`): proptest strategies for the model.
//!
//! The unit tests' own builders (a virtual clock, games in a known state)
//! are crate-private and only exist under `cfg(test)`.

pub mod script;
#[cfg(feature = "proptest")]
pub mod strategy;

#[cfg(test)]
mod harness;

#[cfg(test)]
pub(crate) use harness::*;
pub use script::{Command, Encoder, MAX_STEPS, Script, Step, TimeStep};
