//! gridcap's wire protocol and WebSocket sessions.
//!
//! # Layout
//!
//! - [`protocol`]: every message of protocol v1 as serde types, both directions.
//! - [`codec`]: bytes in, message out (MessagePack, struct-as-map); pure.
//! - [`convert`]: the one place where rule values ([`game_logic`]) and
//!   [`game_logic::GameError`]s become wire messages.
//! - [`session`]: the server side of a connection: limits, heartbeat, the
//!   read/write loop, driven through a [`session::Handler`].
//! - [`outbox`]: a connection's bounded outbound queue and its slow-consumer policy.
//! - [`slot`]: parked state that is no task (a parked session, a waiting game),
//!   in an `Arc` that is its own waker.
//! - [`hold`]: the load-dependent write hold that lets frames share a write.
//! - [`ratelimit`]: the per-connection token bucket.
//! - `moment`: an instant in 8 bytes, for what every connection keeps.
//! - [`error`]: [`TransportError`], this crate's one error type.

pub mod codec;
pub mod convert;
pub mod error;
pub mod hold;
mod moment;
pub mod outbox;
pub mod protocol;
pub mod ratelimit;
pub mod session;
pub mod slot;

pub use error::TransportError;
pub use outbox::Outbox;
pub use protocol::{ClientMessage, ErrorCode, RejectReason, SUBPROTOCOL, ServerMessage};
pub use session::{Flow, FrameOutcome, Handler, SessionLimits};
