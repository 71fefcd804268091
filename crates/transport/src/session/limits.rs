//! [`SessionLimits`]: every per-connection limit of protocol §1, and the
//! tungstenite settings that enforce the size limits with small buffers.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::ratelimit::Rate;

/// Per-connection limits; every one is configurable (see `gridcap serve --help`).
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Largest message accepted; a larger one closes with 1009.
    pub max_message_bytes: usize,
    /// Messages per second allowed on average (0 = unlimited).
    pub rate_per_sec: u32,
    /// Messages allowed in a burst.
    pub rate_burst: u32,
    /// Consecutive rate-limited messages before closing with 1008.
    pub max_rate_strikes: u32,
    /// Bad frames/messages before closing with 1008.
    pub max_bad_messages: u32,
    /// Interval between server pings.
    pub ping_interval: Duration,
    /// Close a connection that sent nothing (not even a pong) this long.
    pub idle_timeout: Duration,
    /// Frames queued for a connection before it counts as a slow consumer.
    pub outbox_capacity: usize,
    /// Longest a write to the socket may block before the connection is dropped.
    pub write_timeout: Duration,
    /// How long to wait for the peer's close frame after sending ours.
    pub close_timeout: Duration,
    /// Close (1008) a connection that sent no binary message this long
    /// after it opened: answering pings alone does not hold a slot forever.
    pub first_message_timeout: Duration,
    /// tungstenite's eagerly allocated read buffer per connection.
    pub read_buffer_bytes: usize,
    /// tungstenite's write buffer target before it writes to the socket.
    pub write_buffer_bytes: usize,
    /// Longest a frame that follows a write may wait for more frames to
    /// share the next write, when the node is fully busy (see
    /// [`hold`](crate::hold)); zero writes every batch at once.
    pub write_hold_max: Duration,
    /// How long a plain-TCP session must be quiet (nothing read or
    /// written) before it parks: drops its WebSocket state and buffers
    /// until the next frame either way or its heartbeat (see
    /// [`run_parked`](super::run_parked)). Shorter saves memory on
    /// connections that are idle between pings; longer saves rebuilding
    /// it on connections with a frame every few hundred milliseconds.
    /// Zero: the server does not park (its sessions use [`run`](super::run),
    /// which does not track frame boundaries); `run_parked` itself then
    /// parks as soon as a session is quiet.
    pub park_after: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_message_bytes: 4096,
            rate_per_sec: 20,
            rate_burst: 40,
            max_rate_strikes: 100,
            max_bad_messages: 20,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            outbox_capacity: 256,
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            first_message_timeout: Duration::from_secs(60),
            read_buffer_bytes: 256,
            write_buffer_bytes: 4096,
            write_hold_max: Duration::from_millis(8),
            park_after: Duration::from_millis(500),
        }
    }
}

impl SessionLimits {
    /// The message rate limit every connection's bucket enforces.
    pub fn rate(&self) -> Rate {
        Rate {
            per_sec: self.rate_per_sec,
            burst: self.rate_burst,
        }
    }

    /// tungstenite settings that enforce these limits with small buffers (the
    /// 128 KiB defaults would cost ~256 KiB per connection).
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_bytes)
            .write_buffer_size(self.write_buffer_bytes)
            .max_write_buffer_size(self.write_buffer_bytes.saturating_mul(4).max(64 * 1024))
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}
