//! gridcap's fuzz checks, as a library the fuzz targets call.
//!
//! Each module holds one target's properties as plain functions over bytes,
//! so that the same code runs under libFuzzer (`cargo fuzz run`, nightly
//! flags) and in the stable corpus-replay tests, which include these files
//! with `#[path]`:
//!
//! - [`codec_checks`]: `decode_client` — any bytes into the decoders of both
//!   directions; nothing panics, whatever decodes round-trips.
//!   Replayed by `crates/transport/tests/fuzz_corpus.rs`.
//! - [`game_checks`]: `game_machine` — any command sequence on
//!   `game_logic::Game`, with the rules' invariants checked after each step.
//!   Replayed by `crates/game-logic/tests/fuzz_corpus.rs`. Its commands are
//!   the shared model of `game_logic::test_util` (feature `test-util`).
//! - [`corpus`]: reading and replaying a corpus, for both replay tests.

pub mod codec_checks;
pub mod corpus;
pub mod game_checks;
