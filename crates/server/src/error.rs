//! The server's one error type, and the one place it becomes a wire message.

use game_logic::GameError;
use transport::convert::{error_message, refusal_message};
use transport::{ErrorCode, ServerMessage};

/// A refused request from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// The rules refused it.
    #[error(transparent)]
    Game(#[from] GameError),
    /// No game with that id here (never existed, malformed, or expired).
    #[error("no game with that id (it may have ended more than 60 s ago)")]
    UnknownGame,
    /// The resume token matches no seat of the game.
    #[error("that token does not match a seat in this game")]
    BadToken,
    /// The connection already holds a seat in a waiting or active game.
    #[error("this connection is already in a waiting or active game")]
    AlreadyInGame,
    /// The connection holds no seat.
    #[error("this connection is not in a game")]
    NotInGame,
    /// The server cannot take this now (draining, or a game's queue is full).
    #[error("the server cannot take this now; try again later")]
    Overloaded,
    /// The client's address created its games of the minute
    /// (`--max-creates-per-ip`).
    #[error("too many games created from here; try again in a minute")]
    TooManyCreates,
    /// Stateless mode: Redis, where the games live, did not answer; nothing
    /// was changed that the client was told about.
    #[error("the game store is unreachable; try again in a moment")]
    StoreUnavailable,
}

impl ServerError {
    /// The protocol's answer to this refusal.
    pub fn to_message(self) -> ServerMessage {
        let code = match self {
            ServerError::Game(e) => return refusal_message(e, 0, None),
            ServerError::UnknownGame => ErrorCode::UnknownGame,
            ServerError::BadToken => ErrorCode::BadToken,
            ServerError::AlreadyInGame => ErrorCode::AlreadyInGame,
            ServerError::NotInGame => ErrorCode::NotInGame,
            ServerError::TooManyCreates => ErrorCode::RateLimited,
            ServerError::Overloaded | ServerError::StoreUnavailable => ErrorCode::Overloaded,
        };
        error_message(code, self.to_string())
    }
}
