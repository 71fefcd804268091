//! System tests of gridcap: real `gridcap` processes on loopback ports, real
//! HAProxy and NGINX in front of them, signals and node losses.
//!
//! The server's own integration tests (`crates/server/tests`) run the server
//! inside the test process. These tests instead start the built binary the
//! way an operator does, so they can SIGTERM it, SIGKILL it and restart it,
//! and they put the balancer configurations of `deploy/` in front of it.
//!
//! # Layout
//!
//! - [`paths`]: the workspace, the `gridcap` binary (`GRIDCAP_BIN`), and the
//!   per-test directory under `target/system-tests/<test>/` that keeps every
//!   process's stdout and stderr for a post-mortem.
//! - [`ports`]: free loopback ports, outside the kernel's ephemeral range.
//! - [`process`]: a child process that is killed when dropped (also when a
//!   test panics), with signal helpers and bounded waits.
//! - [`http`]: a minimal HTTP/1.1 GET for `/readyz` and the JSON APIs.
//! - [`node`]: `gridcap serve` nodes and clusters of them.
//! - [`balancer`]: HAProxy and NGINX with the configurations of `deploy/`,
//!   and the rule for skipping when they are not installed.
//! - [`player`]: a protocol client that checks `seq` and records events.
//! - [`bots`]: `gridcap bots` as a child process and its JSON report.
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
pub mod http;
pub mod node;
pub mod paths;
pub mod player;
pub mod ports;
pub mod process;

pub use balancer::{Balancer, BalancerKind};
pub use node::{Cluster, Node, NodeOptions};
pub use paths::TestDir;
pub use player::Player;

/// How long any single expected message, answer or state change may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// The pause between two polls of an HTTP endpoint.
pub const POLL: Duration = Duration::from_millis(50);
