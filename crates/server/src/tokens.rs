//! Resume tokens: 128 random bits, kept only as a SHA-256 hash.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The hash of a token, which is all the server keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    /// Never prints the hash: logs must not help anyone guess tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// The hash in lowercase hex, as stateless mode stores it in Redis
    /// (where any node can check a resume against it).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The hash back from [`hex`](Self::hex) (a stateful node hands a
    /// waiting game's seats to a peer with their hashes); `None` if `text`
    /// is not 64 hex digits.
    pub fn from_hex(text: &str) -> Option<TokenHash> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(TokenHash(bytes))
    }

    /// Compares without an early exit, so timing tells nothing.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// A fresh token (32 hex characters = 128 bits) and its hash.
pub fn issue() -> (String, TokenHash) {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = TokenHash::of(&token);
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_match_only_themselves() {
        let (a, ha) = issue();
        let (b, hb) = issue();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(ha.matches(&TokenHash::of(&a)));
        assert!(!ha.matches(&hb));
        assert_eq!(format!("{ha:?}"), "TokenHash(..)");
        let back = TokenHash::from_hex(&ha.hex()).unwrap();
        assert!(back.matches(&TokenHash::of(&a)));
        assert!(TokenHash::from_hex("abc").is_none());
        assert!(TokenHash::from_hex(&"zz".repeat(32)).is_none());
    }
}
