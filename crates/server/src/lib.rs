//! The gridcap server: HTTP and WebSocket on one port; games kept by one of
//! three backends (this process, a ring of nodes, or Redis).
//!
//! # Layout
//!
//! - [`server`]: `run(listener, config, shutdown)`: picks the backend from
//!   the configured topology, serves, and drains gracefully.
//! - [`admin`]: the admin listener: metrics, node and cluster reports, the
//!   `/admin` page; never on the public port.
//! - [`edge`]: the network side: accept loop, TLS, HTTP routes, the
//!   WebSocket handshake, per-IP limits.
//! - [`session`]: what one player's connection may do (create, join,
//!   resume, …), asked of [`games::Games`] only.
//! - [`games`]: the seam, and one folder per mode: [`games::local`] (single
//!   node), [`games::ring`] (stateful cluster), [`games::redis`] (stateless
//!   cluster).
//! - [`outgoing`]: the one place server messages are built and queued.
//! - [`config`]: flags, `GRIDCAP_*` variables and the TOML file.
//! - [`state`]: what every request and session shares.
//! - [`clock`], [`tokens`], [`metrics`], [`telemetry`]: support.
//! - [`error`]: [`error::ServerError`] and its one conversion to the wire.
//!
//! docs/architecture.md follows one capture through each mode.

pub mod admin;
pub mod clock;
pub mod config;
pub mod edge;
pub mod error;
pub mod games;
pub mod metrics;
pub mod outgoing;
pub mod server;
pub mod session;
pub mod state;
pub mod telemetry;
pub mod tokens;
