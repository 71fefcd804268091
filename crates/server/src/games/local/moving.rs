//! A waiting game as it moves from a draining stateful node to a ready
//! peer: everything that makes it the same game to its players (its id and
//! code, its settings, who sits where and who hosts, the hashes of their
//! resume tokens, its age in the lobby), and nothing of its connections.
//!
//! The draining node's game task writes one ([`WaitingGame::of`]); the peer
//! checks it ([`WaitingGame::into_parts`]) before a task of its own takes
//! the game over. The players then resume with the tokens they hold.

use game_logic::{Game, GameError, PlayerId, PlayerName, Settings, SettingsBounds, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::task::Identity;
use crate::games::code::GameCode;
use crate::tokens::TokenHash;

/// A waiting game in transit between two nodes (JSON on the wire between
/// peers, `POST /api/cluster/adopt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingGame {
    /// The game's id: its link keeps leading to it.
    pub id: Uuid,
    /// Its short code.
    pub code: String,
    /// When it was created (unix ms): its place in the lobby.
    pub created_ms: u64,
    /// Seats.
    pub max_players: u8,
    /// Round length, ms.
    pub duration_ms: u64,
    /// Listed in the lobby, matched by quick play.
    pub public: bool,
    /// The host's seat.
    pub host: u8,
    /// The seq of its last event, which the new task's events continue.
    pub seq: u64,
    /// The seated players.
    pub seats: Vec<MovingSeat>,
}

/// One seated player of a [`WaitingGame`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovingSeat {
    /// The seat.
    pub id: u8,
    /// The player's name.
    pub name: String,
    /// The SHA-256 of its resume token, hex (the token itself never leaves
    /// the player).
    pub token: String,
}

/// A game this node holds that the ring places on another node, as peers
/// route to it (`GET /api/cluster/adopted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedGame {
    /// The game's id.
    pub id: Uuid,
    /// Its short code.
    pub code: String,
}

/// What a [`WaitingGame`] becomes on the node that takes it over.
#[derive(Debug)]
pub struct Regathered {
    /// Its id, code and age.
    pub identity: Identity,
    /// The waiting game, its seats disconnected.
    pub game: Game,
    /// The resume token hash of each seat.
    pub tokens: Vec<(PlayerId, TokenHash)>,
}

impl WaitingGame {
    /// The waiting `game` named by `identity`, with its seats' token hashes.
    pub fn of(identity: &Identity, game: &Game, tokens: &[(PlayerId, TokenHash)]) -> WaitingGame {
        let snapshot = game.snapshot();
        let settings = game.settings();
        let seats = snapshot
            .players
            .iter()
            .filter_map(|p| {
                let (_, hash) = tokens.iter().find(|(id, _)| *id == p.id)?;
                Some(MovingSeat {
                    id: u8::from(p.id),
                    name: p.name.as_str().to_owned(),
                    token: hash.hex(),
                })
            })
            .collect();
        WaitingGame {
            id: identity.id,
            code: identity.code.as_str().to_owned(),
            created_ms: identity.created.as_unix_ms(),
            max_players: settings.max_players(),
            duration_ms: u64::try_from(settings.duration().as_millis()).unwrap_or(u64::MAX),
            public: settings.public(),
            host: u8::from(game.host()),
            seq: game.seq(),
            seats,
        }
    }

    /// The game checked as if a client had asked for it: settings within
    /// this node's `bounds`, valid names, seats and token hashes.
    pub fn into_parts(
        self,
        bounds: &SettingsBounds,
        now: Timestamp,
    ) -> Result<Regathered, GameError> {
        let code = GameCode::parse(&self.code).ok_or(GameError::InvalidSettings)?;
        let duration = i64::try_from(self.duration_ms).map_err(|_| GameError::InvalidSettings)?;
        let settings = Settings::new(Some(i64::from(self.max_players)), Some(duration), bounds)?
            .with_public(self.public);
        let mut players = Vec::with_capacity(self.seats.len());
        let mut tokens = Vec::with_capacity(self.seats.len());
        for seat in self.seats {
            let id = PlayerId::try_from(seat.id).map_err(|_| GameError::InvalidSettings)?;
            let hash = TokenHash::from_hex(&seat.token).ok_or(GameError::InvalidSettings)?;
            players.push((id, PlayerName::new(&seat.name)?));
            tokens.push((id, hash));
        }
        let host = PlayerId::try_from(self.host).map_err(|_| GameError::InvalidSettings)?;
        let game = Game::regathered(settings, players, host, self.seq, now)?;
        let identity = Identity {
            id: self.id,
            code,
            created: Timestamp::from_unix_ms(self.created_ms),
        };
        Ok(Regathered {
            identity,
            game,
            tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> SettingsBounds {
        SettingsBounds::default()
    }

    fn waiting() -> (Identity, Game, Vec<(PlayerId, TokenHash)>) {
        let now = Timestamp::from_unix_ms(1_000);
        let settings = Settings::new(Some(3), Some(20_000), &bounds())
            .unwrap()
            .with_public(true);
        let mut game = Game::new(settings, PlayerName::new("ada").unwrap(), now);
        game.join(PlayerName::new("bob").unwrap(), now).unwrap();
        let identity = Identity {
            id: Uuid::new_v4(),
            code: GameCode::random(),
            created: now,
        };
        let tokens = vec![
            (PlayerId::FIRST, TokenHash::of("t0")),
            (PlayerId::try_from(1).unwrap(), TokenHash::of("t1")),
        ];
        (identity, game, tokens)
    }

    #[test]
    fn a_moved_game_keeps_its_names_seats_host_settings_and_tokens() {
        let (identity, game, tokens) = waiting();
        let moving = WaitingGame::of(&identity, &game, &tokens);
        let json = serde_json::to_string(&moving).unwrap();
        let back: WaitingGame = serde_json::from_str(&json).unwrap();
        let now = Timestamp::from_unix_ms(5_000);
        let parts = back.into_parts(&bounds(), now).unwrap();
        assert_eq!(parts.identity, identity);
        assert_eq!(parts.game.settings(), game.settings());
        assert_eq!(parts.game.host(), game.host());
        assert_eq!(parts.game.seq(), game.seq());
        let names: Vec<_> = parts
            .game
            .snapshot()
            .players
            .into_iter()
            .map(|p| p.name)
            .collect();
        let before: Vec<_> = game
            .snapshot()
            .players
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, before);
        assert!(parts.tokens[1].1.matches(&TokenHash::of("t1")));
    }

    #[test]
    fn a_moved_game_is_checked_like_a_clients_request() {
        let (identity, game, tokens) = waiting();
        let good = WaitingGame::of(&identity, &game, &tokens);
        let now = Timestamp::from_unix_ms(5_000);
        let broken: [fn(&mut WaitingGame); 5] = [
            |g| g.code = "nope".into(),
            |g| g.duration_ms = 10_000_000,
            |g| g.seats[0].name = "\u{7}".into(),
            |g| g.seats[1].token = "00".into(),
            |g| g.host = 2,
        ];
        for (i, break_it) in broken.iter().enumerate() {
            let mut bad = good.clone();
            break_it(&mut bad);
            assert!(bad.into_parts(&bounds(), now).is_err(), "case {i}");
        }
    }
}
