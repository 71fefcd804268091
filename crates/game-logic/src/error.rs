//! Every way the rules can refuse a command.

/// A refused command. The state is unchanged whenever one is returned.
///
/// Each variant maps onto exactly one protocol answer (see docs/protocol.md):
/// the capture refusals onto `rejected{reason}`, the rest onto `error{code}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum GameError {
    /// `rejected{reason:"taken"}`: the cell already has an owner.
    #[error("the cell is already taken")]
    Taken,
    /// `rejected{reason:"not_active"}`: the game is not in its active round,
    /// or the deadline has passed (even if the timer has not been handled yet).
    #[error("the game is not active")]
    NotActive,
    /// `rejected{reason:"out_of_range"}`: the cell index is not 0..=80.
    #[error("the cell is outside the 9x9 board")]
    OutOfRange,
    /// `error{code:"invalid_name"}`: empty, longer than 24 characters after
    /// trimming, or containing control characters.
    #[error("a name must be 1 to 24 characters with no control characters")]
    InvalidName,
    /// `error{code:"invalid_settings"}`: max players or duration out of bounds.
    #[error("the game settings are out of bounds")]
    InvalidSettings,
    /// `error{code:"game_full"}`: every seat is taken.
    #[error("the game is full")]
    GameFull,
    /// `error{code:"already_started"}`: the game is active or completed.
    #[error("the game has already started")]
    AlreadyStarted,
    /// `error{code:"not_in_game"}`: the player id holds no seat.
    #[error("that player is not in this game")]
    NotInGame,
    /// `error{code:"not_host"}`: only the host may start the game.
    #[error("only the host can start the game")]
    NotHost,
    /// `error{code:"not_enough_players"}`: fewer connected seats than `min_players`.
    #[error("not enough connected players to start")]
    NotEnoughPlayers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_message() {
        let all = [
            GameError::Taken,
            GameError::NotActive,
            GameError::OutOfRange,
            GameError::InvalidName,
            GameError::InvalidSettings,
            GameError::GameFull,
            GameError::AlreadyStarted,
            GameError::NotInGame,
            GameError::NotHost,
            GameError::NotEnoughPlayers,
        ];
        let messages: std::collections::HashSet<String> =
            all.iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), all.len());
        assert!(messages.iter().all(|m| !m.is_empty()));
    }
}
