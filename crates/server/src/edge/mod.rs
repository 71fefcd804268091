//! The edge of the server: what faces the network before any game is
//! involved.
//!
//! - [`accept`]: the accept loop (TLS, handshake and request-head limits,
//!   hyper HTTP/1 underneath).
//! - [`tls`]: native TLS from PEM files.
//! - [`http`]: the routes of protocol §6.
//! - [`ws`]: the WebSocket handshake, checked against protocol §1, and the
//!   hand-over of the socket to a session.
//! - [`per_ip`]: connections per client IP, and which IP a request is from.
//! - [`create_limit`]: how many games one address or connection may create.
//! - [`nofile`]: the open-files limit checked against `--max-connections`.

pub mod accept;
pub mod admission;
pub mod create_limit;
pub mod http;
pub mod nofile;
pub mod per_ip;
pub mod tls;
pub mod ws;
