//! Stateful cluster mode: each game lives on the node the hash ring names.
//!
//! - [`ring`]: the consistent-hash ring (stable across nodes and releases).

pub mod ring;
