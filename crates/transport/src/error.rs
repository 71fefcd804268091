//! The transport crate's one error type.

/// Everything that can go wrong in the transport layer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A frame was not one valid protocol message (answered `bad_message`).
    #[error("malformed message: {0}")]
    Decode(String),
    /// One of our own messages could not be encoded (a bug; logged, dropped).
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The WebSocket failed (I/O, protocol violation, size limit).
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The peer did not answer within the allowed time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The connection closed before the expected message arrived.
    #[error("connection closed")]
    Closed,
}
