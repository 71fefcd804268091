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
    /// How long after a public game has `min_players` connected players it
    /// starts by itself (the lobby auto-start).
    pub lobby_start: Duration,
}

impl Default for SettingsBounds {
    fn default() -> Self {
        Self {
            min_duration: Duration::from_millis(1_000),
            max_duration: Duration::from_millis(300_000),
            min_players: 2,
            lobby_start: Duration::from_millis(10_000),
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
///
/// Every game holds them, a waiting one too (a node may hold many), so the
/// two lengths are kept as whole milliseconds in 32 bits: 12 bytes where
/// two `Duration`s took 40.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    max_players: u8,
    min_players: u8,
    /// Listed in the lobby, matched by quick play, started by itself.
    public: bool,
    /// The round's length: at most the protocol's 300 s.
    duration_ms: u32,
    /// The lobby auto-start's delay (from the operator's bounds); a delay
    /// past `u32::MAX` ms (~49.7 days) is kept as that, as good as never.
    lobby_start_ms: u32,
}

/// `d` in whole milliseconds, at most `u32::MAX`.
fn saturating_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
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
            min_players: bounds.min_players,
            public: false,
            // Within the bounds, so at most 300 s.
            duration_ms: saturating_ms(duration),
            lobby_start_ms: saturating_ms(bounds.lobby_start),
        })
    }

    /// These settings for a public game (`public`) or a private one.
    #[must_use]
    pub fn with_public(mut self, public: bool) -> Settings {
        self.public = public;
        self
    }

    /// Whether the game is public: listed in the lobby, matched by quick
    /// play, and started `lobby_start` after `min_players` are connected.
    pub fn public(&self) -> bool {
        self.public
    }

    /// The lobby auto-start's delay.
    pub fn lobby_start(&self) -> Duration {
        Duration::from_millis(self.lobby_start_ms.into())
    }

    /// Whether this is what quick play makes and matches: public, with
    /// `max_players` seats and the default round (as bounded).
    pub fn is_quick_play(&self, max_players: u8, bounds: &SettingsBounds) -> bool {
        self.public
            && self.max_players == max_players
            && self.duration()
                == Self::DEFAULT_DURATION.clamp(bounds.min_duration, bounds.max_duration)
    }

    /// Seats in the game (2..=8).
    pub fn max_players(&self) -> u8 {
        self.max_players
    }

    /// Length of the active round.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms.into())
    }

    /// Connected seats needed for the host to start.
    pub fn min_players(&self) -> u8 {
        self.min_players
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn settings_are_12_bytes_and_a_huge_lobby_delay_saturates() {
        assert_eq!(std::mem::size_of::<Settings>(), 12);
        let b = SettingsBounds {
            lobby_start: Duration::MAX,
            ..SettingsBounds::default()
        };
        let s = Settings::new(None, None, &b).expect("defaults");
        assert_eq!(s.lobby_start(), ms(u64::from(u32::MAX)));
        assert_eq!(s.duration(), ms(30_000));
    }

    #[test]
    fn defaults_are_4_seats_and_30_s() {
        let s = Settings::new(None, None, &SettingsBounds::default()).expect("defaults");
        assert_eq!(
            (s.max_players(), s.duration(), s.min_players()),
            (4, ms(30_000), 2)
        );
    }

    #[test]
    fn max_players_must_be_2_to_8() {
        let b = SettingsBounds::default();
        for n in 2..=8 {
            assert_eq!(
                Settings::new(Some(n), None, &b).map(|s| s.max_players()),
                Ok(n as u8)
            );
        }
        for n in [i64::MIN, -1, 0, 1, 9, 256, 258, i64::MAX] {
            assert_eq!(
                Settings::new(Some(n), None, &b),
                Err(GameError::InvalidSettings),
                "{n}"
            );
        }
    }

    #[test]
    fn duration_must_be_within_the_bounds() {
        let b = SettingsBounds::default();
        for d in [1_000, 1_001, 30_000, 300_000] {
            assert_eq!(
                Settings::new(None, Some(d), &b).map(|s| s.duration()),
                Ok(ms(d as u64))
            );
        }
        for d in [i64::MIN, -1, 0, 999, 300_001, i64::MAX] {
            assert_eq!(
                Settings::new(None, Some(d), &b),
                Err(GameError::InvalidSettings),
                "{d}"
            );
        }
    }

    #[test]
    fn an_operator_may_narrow_the_bounds() {
        let b = SettingsBounds {
            min_duration: ms(40_000),
            max_duration: ms(60_000),
            min_players: 5,
            ..SettingsBounds::default()
        };
        let s = Settings::new(None, None, &b).expect("defaults fit");
        assert_eq!(
            s.duration(),
            ms(40_000),
            "the default is clamped into the bounds"
        );
        assert_eq!(
            s.max_players(),
            5,
            "the default seats are raised to min_players"
        );
        assert_eq!(s.min_players(), 5);
        assert_eq!(
            Settings::new(None, Some(30_000), &b),
            Err(GameError::InvalidSettings)
        );
        assert_eq!(
            Settings::new(None, Some(60_001), &b),
            Err(GameError::InvalidSettings)
        );
        // Fewer seats than min_players could never start.
        assert_eq!(
            Settings::new(Some(4), None, &b),
            Err(GameError::InvalidSettings)
        );
        assert!(Settings::new(Some(8), Some(60_000), &b).is_ok());

        let short = SettingsBounds {
            max_duration: ms(10_000),
            ..SettingsBounds::default()
        };
        let s = Settings::new(None, None, &short).expect("defaults fit");
        assert_eq!(s.duration(), ms(10_000));
    }

    #[test]
    fn bounds_must_lie_inside_the_protocol() {
        let ok = SettingsBounds::default();
        assert_eq!(ok.validate(), Ok(ok));
        let narrow = SettingsBounds {
            min_duration: ms(5_000),
            max_duration: ms(5_000),
            min_players: 8,
            ..SettingsBounds::default()
        };
        assert_eq!(narrow.validate(), Ok(narrow));
        let bad = [
            SettingsBounds {
                min_duration: ms(999),
                ..ok
            },
            SettingsBounds {
                max_duration: ms(300_001),
                ..ok
            },
            SettingsBounds {
                min_duration: ms(20_000),
                max_duration: ms(10_000),
                ..ok
            },
            SettingsBounds {
                min_players: 1,
                ..ok
            },
            SettingsBounds {
                min_players: 9,
                ..ok
            },
        ];
        for b in bad {
            assert_eq!(b.validate(), Err(GameError::InvalidSettings), "{b:?}");
        }
    }
}
