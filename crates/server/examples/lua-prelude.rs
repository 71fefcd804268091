//! Prints the Lua definitions put in front of every Redis script
//! (`gridcap::games::redis::layout::lua_prelude`), for
//! `scripts/bench/stateless-floor.sh`, which runs the scripts on a Redis of
//! its own, without a node.

fn main() {
    print!("{}", gridcap::games::redis::layout::lua_prelude());
}
