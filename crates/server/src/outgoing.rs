//! The one place where server messages are built from the rules' values and
//! queued to a connection.
//!
//! The rules' values become wire messages in `transport::convert`; this
//! module adds what every backend shares: `joined` for a seat, `rejected`
//! for a refused capture, and queuing with the error metric counted once
//! (by `transport::session::push_error`).

use bytes::Bytes;
use game_logic::{GameError, PlayerId};
use tracing::{debug, warn};
use transport::convert::refusal_message;
use transport::protocol::GameSnapshot;
use transport::session::push_error;
use transport::{Outbox, ServerMessage, codec};

use crate::games::Capture;
use crate::metrics as m;

/// Queues `message` to `outbox`. A full or closing outbox drops it: the
/// slow-consumer policy has already decided that connection's fate.
pub fn send(outbox: &Outbox, message: &ServerMessage) {
    if let ServerMessage::Error { code, message } = message {
        push_error(outbox, *code, message.clone());
        return;
    }
    if let Some(frame) = encode(message)
        && let Err(e) = outbox.push(frame)
    {
        debug!(conn = outbox.id(), "answer not queued: {e}");
    }
}

/// The frame of `message`; `None` (logged) if it cannot be encoded, which
/// only a bug can cause.
pub fn encode(message: &ServerMessage) -> Option<Bytes> {
    codec::encode_server(message)
        .map_err(|e| warn!("cannot encode a server message: {e}"))
        .ok()
}

/// `joined`: the game as of now (one wire snapshot may serve several
/// seats), the seat and its resume token.
pub fn joined(game: GameSnapshot, you: PlayerId, token: String) -> ServerMessage {
    ServerMessage::Joined {
        game,
        you: u8::from(you),
        token,
    }
}

/// Answers a capture of `cell` the rules refused (`rejected`, or `error`
/// for a refusal that is not about the cell) and counts it.
pub fn refuse_capture(outbox: &Outbox, error: GameError, cell: i64, reference: Option<u32>) {
    m::capture_rejected(error);
    send(outbox, &refusal_message(error, cell, reference));
}

/// [`refuse_capture`] for a capture whose cell was valid.
pub fn refuse(outbox: &Outbox, error: GameError, capture: &Capture) {
    refuse_capture(
        outbox,
        error,
        capture.cell.index() as i64,
        capture.reference,
    );
}
