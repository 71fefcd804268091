//! How a client names a game: its UUID, or its short code (protocol §7).

use std::fmt;

use rand::Rng;
use uuid::Uuid;

use crate::error::ServerError;

/// The code alphabet: no 0/O, no 1/I/L, so a code read aloud or copied by
/// hand comes out right.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a code.
pub const CODE_LEN: usize = 6;

/// A game's short code: six characters of [`ALPHABET`], kept uppercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GameCode([u8; CODE_LEN]);

impl GameCode {
    /// A random code (the caller makes sure it is unique).
    pub fn random() -> GameCode {
        let mut rng = rand::rng();
        GameCode(std::array::from_fn(|_| {
            ALPHABET[rng.random_range(0..ALPHABET.len())]
        }))
    }

    /// Parses a code, case-insensitively; `None` if it is not one.
    pub fn parse(text: &str) -> Option<GameCode> {
        let bytes: [u8; CODE_LEN] = text.as_bytes().try_into().ok()?;
        let upper = bytes.map(|b| b.to_ascii_uppercase());
        upper
            .iter()
            .all(|b| ALPHABET.contains(b))
            .then_some(GameCode(upper))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Every byte is from ALPHABET, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for GameCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A game as a client or a route named it, parsed once at the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameRef {
    /// By its canonical UUID.
    Id(Uuid),
    /// By its short code.
    Code(GameCode),
}

impl GameRef {
    /// Parses a game id or a code; anything else is an unknown game.
    pub fn parse(text: &str) -> Result<GameRef, ServerError> {
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(GameRef::Id(id));
        }
        GameCode::parse(text)
            .map(GameRef::Code)
            .ok_or(ServerError::UnknownGame)
    }
}

impl fmt::Display for GameRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GameRef::Id(id) => id.fmt(f),
            GameRef::Code(code) => code.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_alphabet_and_parse_back_case_insensitively() {
        for _ in 0..1_000 {
            let code = GameCode::random();
            assert_eq!(code.as_str().len(), CODE_LEN);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(GameCode::parse(code.as_str()), Some(code));
            assert_eq!(GameCode::parse(&code.as_str().to_lowercase()), Some(code));
        }
        for bad in [
            "",
            "K7QX2",
            "K7QX2M9",
            "K7QX0M",
            "K7QXOM",
            "K7QX1M",
            "K7QXIM",
            "K7QXLM",
            "ÄÖÜ123",
        ] {
            assert_eq!(GameCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_reference_is_a_uuid_or_a_code() {
        let id = Uuid::new_v4();
        assert_eq!(GameRef::parse(&id.to_string()), Ok(GameRef::Id(id)));
        assert_eq!(
            GameRef::parse("k7qx2m"),
            Ok(GameRef::Code(GameCode(*b"K7QX2M")))
        );
        assert_eq!(GameRef::parse("nope"), Err(ServerError::UnknownGame));
    }
}
