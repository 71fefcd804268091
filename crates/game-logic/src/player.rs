//! Seats and the players in them.

use std::fmt;

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{
    BidiControl, BinaryProperty, DefaultIgnorableCodePoint, EnumeratedProperty, GeneralCategory,
};

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

/// A display name, as every scoreboard shows it: Unicode NFC, 1 to 24
/// characters after trimming, at least one of them visible, and no control
/// characters — neither C0/C1 controls nor the bidirectional controls
/// (Unicode's `Bidi_Control`: LRM, RLM, ALM, the embeddings, overrides and
/// isolates), which could make a name display as someone else's.
///
/// ```
/// use game_logic::PlayerName;
/// assert_eq!(PlayerName::new("  Ada ").unwrap().as_str(), "Ada");
/// assert!(PlayerName::new("   ").is_err());
/// assert!(PlayerName::new("a\u{7}b").is_err());
/// assert!(PlayerName::new("\u{200B}\u{200B}").is_err()); // zero-width only
/// assert!(PlayerName::new("eve\u{202E}mada").is_err()); // right-to-left override
/// assert_eq!(PlayerName::new("Zoe\u{0301}").unwrap().as_str(), "Zo\u{e9}"); // NFC
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlayerName(Box<str>);

impl PlayerName {
    /// Longest name, in characters (Unicode scalar values, after NFC) after
    /// trimming.
    pub const MAX_CHARS: usize = 24;

    /// Normalizes, trims and validates `raw`.
    pub fn new(raw: &str) -> Result<PlayerName, GameError> {
        let normalized = ComposingNormalizerBorrowed::new_nfc().normalize(raw);
        let trimmed = normalized.trim();
        let chars = trimmed.chars().count();
        if chars == 0
            || chars > Self::MAX_CHARS
            || trimmed
                .chars()
                .any(|c| c.is_control() || BidiControl::for_char(c))
            || !trimmed.chars().any(is_visible)
        {
            return Err(GameError::InvalidName);
        }
        Ok(PlayerName(trimmed.into()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` draws something on its own: a letter, digit, punctuation or
/// symbol that renders (not a mark, separator, format or private-use
/// character, nor one Unicode says to render as nothing, like U+3164).
fn is_visible(c: char) -> bool {
    use GeneralCategory as G;
    let invisible_category = matches!(
        GeneralCategory::for_char(c),
        G::Unassigned
            | G::NonspacingMark
            | G::EnclosingMark
            | G::SpacingMark
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Control
            | G::Format
            | G::PrivateUse
            | G::Surrogate
    );
    !invisible_category && !DefaultIgnorableCodePoint::for_char(c)
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

    #[test]
    fn names_without_a_visible_character_are_refused() {
        for bad in [
            "\u{200B}",                 // zero-width space
            "\u{200B}\u{200C}\u{200D}", // zero-width space, non-joiner, joiner
            "\u{FEFF}\u{2060}",         // BOM, word joiner
            "\u{3164}\u{3164}",         // Hangul filler (a letter that draws nothing)
            "\u{0301}\u{0301}",         // combining marks on nothing
            " \u{00AD} ",               // soft hyphen
            "\u{E000}",                 // private use
            "\u{3000}",                 // ideographic space
        ] {
            assert_eq!(PlayerName::new(bad), Err(GameError::InvalidName), "{bad:?}");
        }
        // Invisible characters inside a visible name are its own business
        // (an emoji ZWJ sequence needs them).
        assert!(PlayerName::new("\u{1F469}\u{200D}\u{1F4BB}").is_ok());
        assert!(PlayerName::new("a\u{200B}").is_ok());
    }

    #[test]
    fn bidirectional_controls_are_refused_anywhere() {
        for control in [
            '\u{200E}', '\u{200F}', '\u{061C}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let name = format!("ada{control}lovelace");
            assert_eq!(
                PlayerName::new(&name),
                Err(GameError::InvalidName),
                "{name:?}"
            );
        }
        // Right-to-left scripts themselves are names like any other.
        assert!(PlayerName::new("\u{05D3}\u{05D5}\u{05D3}").is_ok());
        assert!(PlayerName::new("\u{0639}\u{0644}\u{064A}").is_ok());
    }

    #[test]
    fn names_are_stored_in_nfc_so_equal_names_look_equal() {
        let composed = PlayerName::new("Zo\u{e9}").map(|n| n.to_string());
        let decomposed = PlayerName::new("Zoe\u{0301}").map(|n| n.to_string());
        assert_eq!(composed, Ok("Zo\u{e9}".into()));
        assert_eq!(decomposed, composed);
        // The limit counts characters after normalization: 24 decomposed
        // pairs make 24 composed characters.
        assert!(PlayerName::new(&"e\u{0301}".repeat(24)).is_ok());
    }
}
