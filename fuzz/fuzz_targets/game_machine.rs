//! Arbitrary command sequences on `game_logic::Game`, with the rules'
//! invariants checked after every step. The input format and the properties
//! are in `src/game_checks.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gridcap_fuzz::game_checks::check(data);
});
