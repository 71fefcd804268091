//! The bots crate's one error type.
//!
//! Everything a bot meets on the network is counted in the report rather
//! than returned; these errors are the ones that stop a run before it starts
//! (bad flags, refused targets) or end one connection (I/O, handshake).

use std::net::IpAddr;

/// Everything that can go wrong in the bots crate.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// A flag value is out of range or inconsistent with another.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A `--url` that is not `ws://` or `wss://host[:port]/path`.
    #[error("invalid URL {url}: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A target or source address outside 127.0.0.0/8 and ::1 without
    /// `--allow-remote`: load tests stay on loopback unless asked otherwise.
    #[error(
        "{what} {addr} is not a loopback address; pass --allow-remote to load-test another host"
    )]
    NotLoopback {
        /// "target" or "source".
        what: &'static str,
        /// The refused address.
        addr: IpAddr,
    },
    /// Socket set-up, bind, connect or name resolution failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket handshake or a frame failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A step did not finish within its time limit.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The latency histograms could not be created (a bug: the bounds are constants).
    #[error("histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// The JSON report could not be written.
    #[error("cannot write the JSON report {path}: {source}")]
    Report {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
