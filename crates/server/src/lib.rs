//! The gridcap server: HTTP and WebSocket on one port, games in memory.
//!
//! # Layout
//!
//! - [`server`]: `run(listener, config, shutdown)` and the graceful drain.
//! - [`http`]: the routes of protocol §6; [`ws`]: the WebSocket handshake.
//! - [`handler`]: what a connection may do (create, join, resume, …).
//! - [`registry`]: the games of this node; [`game_task`]: one task per game,
//!   driving the rules of `game_logic` and fanning events out (single and
//!   stateful modes).
//! - [`cluster`]: stateful cluster mode (games in the memory of their ring
//!   owner); [`stateless`]: stateless cluster mode (games in Redis).
//! - [`config`]: flags, `GRIDCAP_*` variables and the TOML file.
//! - [`clock`], [`tokens`], [`metrics`], [`telemetry`], [`state`]: support.
//! - [`error`]: [`error::ServerError`] and its one conversion to the wire.

pub mod accept;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod game_task;
pub mod handler;
pub mod http;
pub mod metrics;
pub mod per_ip;
pub mod registry;
pub mod server;
pub mod state;
pub mod stateless;
pub mod telemetry;
pub mod tls;
pub mod tokens;
pub mod ws;
