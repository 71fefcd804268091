//! Stateless mode over TLS: the rules and messages suites against a pair of
//! stateless nodes sharing one Redis, every client on `wss://`, every
//! readiness check on `https://` (this binary's name sets both switches of
//! `common/mod.rs`). tls_conformance.rs covers one node over TLS, and
//! stateless_conformance.rs the pair in plain text.

// Each included file declares its own `mod common;`, as in its own binary.
#![allow(clippy::duplicate_mod)]

#[path = "messages.rs"]
mod messages;
#[path = "rules.rs"]
mod rules;
