//! The one place where server messages are built from the rules' values and
//! queued to a connection.
//!
//! The rules' values become wire messages in `transport::convert`; this
//! module adds what every backend shares: `joined` for a seat, `rejected`
//! for a refused capture, and queuing with the error metric counted once
//! (by `transport::session::push_error`).

use game_logic::{GameError, PlayerId, Snapshot, Timestamp};
use tracing::{debug, warn};
use transport::convert::{game_snapshot, refusal_message};
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
    match codec::encode_server(message) {
        Ok(frame) => {
            if let Err(e) = outbox.push(frame) {
                debug!(conn = outbox.id(), "answer not queued: {e}");
            }
        }
        Err(e) => warn!(conn = outbox.id(), "cannot encode an answer: {e}"),
    }
}

/// `joined`: the game as of now, the seat and its resume token.
pub fn joined(
    game: &str,
    snapshot: &Snapshot,
    now: Timestamp,
    you: PlayerId,
    token: String,
) -> ServerMessage {
    ServerMessage::Joined {
        game: game_snapshot(game, snapshot, now),
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
