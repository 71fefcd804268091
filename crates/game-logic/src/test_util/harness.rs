//! The unit tests' harness: a virtual clock, game builders, and a check
//! that a refused command changed nothing.

use std::time::Duration;

use crate::{Event, Game, GameError, PlayerId, PlayerName, Settings, SettingsBounds, Timestamp};

/// A fixed, arbitrary start time, so that every test sees the same numbers.
pub(crate) const T0: Timestamp = Timestamp::from_unix_ms(1_700_000_000_000);

/// Virtual time: tests move it forward explicitly, nothing ever sleeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    now: Timestamp,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock { now: T0 }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    /// Moves time forward by `ms` and returns the new now.
    pub(crate) fn advance_ms(&mut self, ms: u64) -> Timestamp {
        self.now = self.now + Duration::from_millis(ms);
        self.now
    }

    /// Jumps to `at` (which may be earlier: tests can replay an instant).
    pub(crate) fn set(&mut self, at: Timestamp) -> Timestamp {
        self.now = at;
        self.now
    }
}

pub(crate) fn name(raw: &str) -> PlayerName {
    PlayerName::new(raw).expect("test names are valid")
}

pub(crate) fn id(seat: u8) -> PlayerId {
    PlayerId::try_from(seat).expect("test seats are 0..=7")
}

/// Every queued event, oldest first.
pub(crate) fn drain(game: &mut Game) -> Vec<Event> {
    std::iter::from_fn(|| game.poll_event()).collect()
}

/// Runs `command`, asserts that it is refused with `expected`, and that the
/// game (state, queued events, snapshot) is exactly as before.
#[track_caller]
pub(crate) fn assert_refused<T: std::fmt::Debug>(
    game: &mut Game,
    expected: GameError,
    command: impl FnOnce(&mut Game) -> Result<T, GameError>,
) {
    let before = game.clone();
    let snapshot = game.snapshot();
    let result = command(game);
    assert_eq!(result.err(), Some(expected), "wrong outcome");
    assert_eq!(*game, before, "a refused command changed the game");
    assert_eq!(game.snapshot(), snapshot);
}

/// Asserts that `convert` takes exactly the bytes below `limit`, giving each
/// back unchanged, and refuses every other byte with `error`.
#[track_caller]
pub(crate) fn assert_accepts_below<T>(
    limit: u8,
    error: GameError,
    convert: impl Fn(u8) -> Result<T, GameError>,
) where
    T: std::fmt::Debug,
    u8: From<T>,
{
    for v in 0..=u8::MAX {
        let converted = convert(v).map(u8::from);
        if v < limit {
            assert_eq!(converted, Ok(v));
        } else {
            assert_eq!(converted, Err(error), "{v}");
        }
    }
}

/// Builds games in a known state; every builder drains the events it caused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Builder {
    max_players: u8,
    duration_ms: i64,
    min_players: u8,
}

impl Builder {
    /// 4 seats, a 30 s round, 2 players needed to start.
    pub(crate) fn new() -> Builder {
        Builder {
            max_players: 4,
            duration_ms: 30_000,
            min_players: 2,
        }
    }

    pub(crate) fn max_players(mut self, n: u8) -> Builder {
        self.max_players = n;
        self
    }

    pub(crate) fn duration_ms(mut self, ms: i64) -> Builder {
        self.duration_ms = ms;
        self
    }

    pub(crate) fn min_players(mut self, n: u8) -> Builder {
        self.min_players = n;
        self
    }

    pub(crate) fn settings(self) -> Settings {
        let bounds = SettingsBounds {
            min_players: self.min_players,
            ..SettingsBounds::default()
        };
        Settings::new(
            Some(i64::from(self.max_players)),
            Some(self.duration_ms),
            &bounds,
        )
        .expect("builder settings are valid")
    }

    /// A waiting game with `players` seated and connected (seats 0..players).
    pub(crate) fn waiting(self, players: u8, clock: &Clock) -> Game {
        assert!(players < self.max_players, "a full game is not waiting");
        let mut game = Game::new(self.settings(), name("p0"), clock.now());
        for seat in 1..players {
            let joined = game.join(name(&format!("p{seat}")), clock.now());
            assert_eq!(joined, Ok(id(seat)));
        }
        game.handle_timeout(clock.now());
        drain(&mut game);
        game
    }

    /// An active game with `players` seated, started by the host at `clock.now()`.
    pub(crate) fn active(self, players: u8, clock: &Clock) -> Game {
        let mut game = Game::new(self.settings(), name("p0"), clock.now());
        for seat in 1..players {
            let joined = game.join(name(&format!("p{seat}")), clock.now());
            assert_eq!(joined, Ok(id(seat)));
        }
        game.handle_timeout(clock.now());
        if players < self.max_players {
            assert_eq!(game.start(id(0), clock.now()), Ok(()));
        }
        drain(&mut game);
        assert_eq!(game.status(), crate::Status::Active);
        game
    }
}
