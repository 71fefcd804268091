//! The conformance suite the single node passes, run over TLS (wss and
//! https) with a self-signed certificate the test makes (rcgen).
//!
//! The files below are the single node's own tests, included unchanged. In
//! this binary (its name starts with `tls_conformance`) the harness's
//! `TestServer` starts its servers with `tls_cert`/`tls_key`, and every
//! client — WebSocket, HTTP and raw frames — connects over TLS trusting
//! exactly that certificate (see `common/tls.rs`). Any test file can also
//! be run that way alone: `GRIDCAP_TEST_TLS=1 cargo test -p gridcap-server
//! --test rules`.
//!
//! Left out: raw_frames.rs (its own hand-written TCP client), and the
//! cluster, stateless and load files (their own servers and backends).

// Each included file declares its own `mod common;`, as in its own binary;
// the copies are independent and identical.
#![allow(clippy::duplicate_mod)]

#[path = "errors.rs"]
mod errors;
#[path = "handshake.rs"]
mod handshake;
#[path = "http.rs"]
mod http_routes;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "limits.rs"]
mod limits;
#[path = "liveness.rs"]
mod liveness;
#[path = "lobby.rs"]
mod lobby;
#[path = "messages.rs"]
mod messages;
#[path = "rules.rs"]
mod rules;
#[path = "smoke.rs"]
mod smoke;
#[path = "spectators.rs"]
mod spectators;
#[path = "spectators_slow.rs"]
mod spectators_slow;
