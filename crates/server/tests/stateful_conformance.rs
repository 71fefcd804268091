//! The conformance suites again, through a stateful cluster of two nodes:
//! the players of a game alternate between the node that owns it and the
//! other, which relays them (see `common`'s "Stateful runs"). A client must
//! not be able to tell a relayed connection from a direct one: the same
//! errors, messages, rules and close codes.
#![allow(clippy::duplicate_mod)]

#[path = "errors.rs"]
mod errors;
#[path = "liveness.rs"]
mod liveness;
#[path = "messages.rs"]
mod messages;
#[path = "rules.rs"]
mod rules;
