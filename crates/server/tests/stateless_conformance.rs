//! The conformance suite the single node passes, run against a pair of
//! stateless nodes sharing one Redis.
//!
//! The files below are the single node's own tests, included unchanged. In
//! this binary (its name starts with `stateless_conformance`) the harness's
//! `TestServer` starts two stateless nodes and a redis-server, and
//! alternates its clients between the nodes (see `common/mod.rs`), so the
//! players of every game are spread over both nodes. Any of these files can
//! also be run that way alone: `GRIDCAP_TEST_BACKEND=stateless cargo test
//! -p gridcap-server --test rules`.
//!
//! Left out: lifecycle.rs (retention on tokio's paused clock, which Redis's
//! TTLs do not follow), handshake.rs and limits.rs (per-node connection
//! limits and socket buffers). liveness.rs is in: its slow consumer is fed
//! through Redis pub/sub here, and must be cut with 1008 all the same.

// Each included file declares its own `mod common;`, as in its own binary;
// the copies are independent and identical.
#![allow(clippy::duplicate_mod)]

#[path = "admin.rs"]
mod admin;
#[path = "errors.rs"]
mod errors;
#[path = "http.rs"]
mod http_routes;
#[path = "liveness.rs"]
mod liveness;
#[path = "lobby.rs"]
mod lobby;
#[path = "messages.rs"]
mod messages;
#[path = "rules.rs"]
mod rules;
#[path = "spectators.rs"]
mod spectators;
#[path = "spectators_slow.rs"]
mod spectators_slow;
