//! gridcap's test kit, and the system tests built on it.
//!
//! Every Rust test that talks to a server uses this crate: the server's
//! integration tests (`crates/server/tests`, which run the server inside the
//! test process and dev-depend on this crate), and this crate's own system
//! tests (`tests/tests`), which start the built binary the way an operator
//! does, so they can SIGTERM it, SIGKILL it and restart it, and put the
//! balancer configurations of `deploy/` in front of it. The kit does not
//! depend on the server crate, so that the server can use it without a cycle.
//!
//! # Layout
//!
//! Talking to a server:
//!
//! - [`client`]: THE protocol test client: a WebSocket client that checks
//!   `seq` and keeps a [`replica`] of its game; message builders.
//! - [`replica`]: a game replayed from `joined` and the events since, moved
//!   forward by `game_logic::Snapshot::apply`.
//! - [`player`]: a [`client`] that survives reconnects to other nodes and
//!   records its events, to compare what players on different nodes saw.
//! - [`raw`]: a hand-driven WebSocket connection, for what a well-behaved
//!   client cannot do.
//! - [`http`]: THE minimal HTTP/1.1 GET, for `/readyz` and the JSON APIs.
//! - [`tls`]: TLS runs: the test certificate and the client side of TLS.
//!
//! Starting things:
//!
//! - [`node`]: `gridcap serve` processes, alone, as stateful clusters, or
//!   stateless nodes sharing a Redis.
//! - [`redis`]: `redis-server` processes and a Redis Cluster.
//! - [`balancer`]: HAProxy and NGINX with the configurations of `deploy/`,
//!   and the rule for skipping when they are not installed.
//! - [`bots`]: `gridcap bots` as a child process and its JSON report.
//! - [`process`]: a child process that is killed when dropped (also when a
//!   test panics), with signal helpers and bounded waits.
//! - [`poll`]: THE bounded poll of another process's state, owning the
//!   pause between asks.
//! - [`paths`], [`ports`]: the workspace, the `gridcap` binary
//!   (`GRIDCAP_BIN`), per-test log directories, free loopback ports.
//!
//! The random command model of the rules lives with the rules, in
//! `game_logic::test_util` (feature `test-util`).
//!
//! # Rules every helper keeps
//!
//! Every wait is bounded ([`WAIT`] unless said otherwise) and ends in a panic
//! that says what was awaited. Readiness is polled with short bounded retries;
//! nothing sleeps to wait for a game timer — tests wait for messages.
//!
//! A harness fails a test by panicking, so `expect` is its error handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

pub mod balancer;
pub mod bots;
pub mod client;
pub mod http;
pub mod node;
pub mod paths;
pub mod player;
pub mod poll;
pub mod ports;
pub mod process;
pub mod raw;
pub mod redis;
pub mod replica;
pub mod tls;

pub use balancer::{Balancer, BalancerKind};
pub use client::Client;
pub use node::{Cluster, Node, NodeOptions};
pub use paths::TestDir;
pub use player::Player;

/// How long any single expected message, answer or state change may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// The pause between two polls of an HTTP endpoint.
pub const POLL: Duration = Duration::from_millis(50);
