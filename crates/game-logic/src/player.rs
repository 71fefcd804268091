//! Seats and the players in them.

use std::fmt;

use crate::GameError;
use crate::settings::MAX_SEATS;

/// A seat index 0..=7, unique in its game; also the player's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlayerId(u8);

impl PlayerId {
    /// Seat 0, where the creator of a game sits.
    pub const FIRST: PlayerId = PlayerId(0);

    /// The seat index 0..=7.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Every possible seat, lowest first.
    pub fn all() -> impl Iterator<Item = PlayerId> {
        (0..MAX_SEATS).map(PlayerId)
    }
}

impl TryFrom<u8> for PlayerId {
    type Error = GameError;

    fn try_from(value: u8) -> Result<Self, GameError> {
        if value < MAX_SEATS {
            Ok(PlayerId(value))
        } else {
            Err(GameError::NotInGame)
        }
    }
}

impl From<PlayerId> for u8 {
    fn from(p: PlayerId) -> u8 {
        p.0
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A display name: 1 to 24 characters after trimming, no control characters.
///
/// ```
/// use game_logic::PlayerName;
/// assert_eq!(PlayerName::new("  Ada ").unwrap().as_str(), "Ada");
/// assert!(PlayerName::new("   ").is_err());
/// assert!(PlayerName::new("a\u{7}b").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlayerName(String);

impl PlayerName {
    /// Longest name, in characters (Unicode scalar values) after trimming.
    pub const MAX_CHARS: usize = 24;

    /// Trims and validates `raw`.
    pub fn new(raw: &str) -> Result<PlayerName, GameError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(GameError::InvalidName);
        }
        Ok(PlayerName(trimmed.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A seated player as every client sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    /// The seat, also the colour index.
    pub id: PlayerId,
    /// The validated display name.
    pub name: PlayerName,
    /// Cells owned; only grows, kept after the player leaves an active game.
    pub score: u32,
    /// Whether a connection currently holds this seat.
    pub connected: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_accepts_below;

    #[test]
    fn seats_are_0_to_7() {
        assert_accepts_below(8, GameError::NotInGame, PlayerId::try_from);
        let all: Vec<usize> = PlayerId::all().map(PlayerId::index).collect();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        assert_eq!(PlayerId::FIRST.index(), 0);
        assert_eq!(PlayerId::FIRST.to_string(), "0");
    }

    #[test]
    fn names_are_trimmed() {
        assert_eq!(
            PlayerName::new(" \t ada lovelace  ").map(|n| n.to_string()),
            Ok("ada lovelace".into())
        );
    }

    #[test]
    fn names_count_characters_not_bytes() {
        let longest = "é".repeat(24);
        assert_eq!(PlayerName::new(&longest).map(|n| n.as_str().len()), Ok(48));
        assert_eq!(
            PlayerName::new(&"é".repeat(25)),
            Err(GameError::InvalidName)
        );
        assert!(PlayerName::new(&format!("  {}  ", "x".repeat(24))).is_ok());
        assert_eq!(
            PlayerName::new(&"x".repeat(25)),
            Err(GameError::InvalidName)
        );
    }

    #[test]
    fn empty_names_and_control_characters_are_refused() {
        for bad in [
            "",
            "   ",
            "\n",
            "a\u{0}b",
            "a\nb",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}x",
        ] {
            assert_eq!(PlayerName::new(bad), Err(GameError::InvalidName), "{bad:?}");
        }
    }
}
