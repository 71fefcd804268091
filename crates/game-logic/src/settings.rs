//! Game settings and the bounds an operator may narrow them to.

use std::time::Duration;

use crate::GameError;

/// Most seats a game can have (player ids 0..=7).
pub const MAX_SEATS: u8 = 8;
/// Fewest seats a game can have.
pub const MIN_SEATS: u8 = 2;

/// Limits the server operator sets; the protocol's outer bounds by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsBounds {
    /// Shortest round a client may ask for.
    pub min_duration: Duration,
    /// Longest round a client may ask for.
    pub max_duration: Duration,
    /// Connected seats needed before the host may start (2..=8).
    pub min_players: u8,
}

impl Default for SettingsBounds {
    fn default() -> Self {
        Self {
            min_duration: Duration::from_millis(1_000),
            max_duration: Duration::from_millis(300_000),
            min_players: 2,
        }
    }
}

impl SettingsBounds {
    /// Checks the bounds themselves: they must lie inside the protocol's
    /// (1 s..=300 s, 2..=8 players) and `min <= max`.
    pub fn validate(self) -> Result<Self, GameError> {
        let proto = SettingsBounds::default();
        let ok = self.min_duration >= proto.min_duration
            && self.max_duration <= proto.max_duration
            && self.min_duration <= self.max_duration
            && (MIN_SEATS..=MAX_SEATS).contains(&self.min_players);
        if ok {
            Ok(self)
        } else {
            Err(GameError::InvalidSettings)
        }
    }
}

/// The settings of one game, validated against [`SettingsBounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    max_players: u8,
    duration: Duration,
    min_players: u8,
}

impl Settings {
    /// Seats when the client does not say.
    pub const DEFAULT_MAX_PLAYERS: u8 = 4;
    /// Round length when the client does not say.
    pub const DEFAULT_DURATION: Duration = Duration::from_millis(30_000);

    /// Validates a client's request. `None` takes the default (4 seats, 30 s;
    /// the default duration is clamped into the operator's bounds).
    /// `max_players` below `bounds.min_players` could never start, so it is
    /// refused too.
    pub fn new(
        max_players: Option<i64>,
        duration_ms: Option<i64>,
        bounds: &SettingsBounds,
    ) -> Result<Settings, GameError> {
        let max_players = match max_players {
            None => Self::DEFAULT_MAX_PLAYERS.max(bounds.min_players),
            Some(n) => u8::try_from(n).map_err(|_| GameError::InvalidSettings)?,
        };
        if !(MIN_SEATS..=MAX_SEATS).contains(&max_players) || max_players < bounds.min_players {
            return Err(GameError::InvalidSettings);
        }
        let duration = match duration_ms {
            None => Self::DEFAULT_DURATION.clamp(bounds.min_duration, bounds.max_duration),
            Some(ms) => {
                let ms = u64::try_from(ms).map_err(|_| GameError::InvalidSettings)?;
                Duration::from_millis(ms)
            }
        };
        if duration < bounds.min_duration || duration > bounds.max_duration {
            return Err(GameError::InvalidSettings);
        }
        Ok(Settings {
            max_players,
            duration,
            min_players: bounds.min_players,
        })
    }

    /// Seats in the game (2..=8).
    pub fn max_players(&self) -> u8 {
        self.max_players
    }

    /// Length of the active round.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Connected seats needed for the host to start.
    pub fn min_players(&self) -> u8 {
        self.min_players
    }
}
