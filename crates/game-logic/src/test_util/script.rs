//! The random command model: what may happen to a game, as data.
//!
//! A [`Script`] is the settings of a new game and the [`Step`]s played on
//! it: the clock moves ([`TimeStep`]), then a [`Command`] runs
//! ([`Command::apply`]). Seats are any of 0..=7, so commands from empty
//! seats and from seats that left are common.
//!
//! Two generators fill the model: proptest strategies
//! ([`strategy`](super::strategy), feature `proptest`) for the property and
//! differential tests, and the fuzz targets' byte format ([`Script::decode`],
//! written by [`Encoder`]), decoded by hand so that the stable corpus replay
//! reads a corpus file exactly as libFuzzer did, without a dependency on
//! `arbitrary`.
//!
//! # Byte format
//!
//! Every byte string is a valid script; missing bytes read as 0.
//!
//! - 4 header bytes: seats (2..=8), `min_players` (2..=seats), round length
//!   (1 s to 4.75 s, or 300 s) and start time (ordinary, the epoch, or just
//!   below `u64::MAX` ms, where deadlines saturate).
//! - Then steps, each an opcode byte, a time byte and the opcode's operands.
//!   Time moves forward by 0 to 135 s per step, and sometimes back by up to
//!   1 s: the rules take time as an argument and must not depend on it being
//!   monotonic.

use std::time::Duration;

use crate::{Cell, Game, GameError, PlayerId, PlayerName, Settings, SettingsBounds, Timestamp};

/// Steps one decoded input holds at most, so that one input stays fast.
pub const MAX_STEPS: usize = 1_000;

/// A game's settings and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Seats in the game (2..=8).
    pub max_players: u8,
    /// Connected seats the host needs to start (2..=max_players).
    pub min_players: u8,
    /// Length of the round.
    pub duration_ms: u64,
    /// The clock when the game is created.
    pub start_ms: u64,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// The clock moves, then a command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// How the clock moves before the command.
    pub time: TimeStep,
    /// The command.
    pub command: Command,
}

/// A move of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStep {
    /// Forward by this many ms.
    Forward(u64),
    /// Back by this many ms (a clock that jumped back).
    Back(u64),
}

/// One input to the rules. Seats are any of 0..=7, so commands from empty
/// seats and from seats that left are common.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A newcomer with this raw (unvalidated) name.
    Join(String),
    /// The seat leaves.
    Leave(u8),
    /// The seat's connection drops or comes back.
    SetConnected(u8, bool),
    /// The current host starts.
    StartByHost,
    /// The seat starts (usually not the host).
    Start(u8),
    /// The seat captures the cell index a client sent (any integer).
    Capture(u8, i64),
    /// The n-th seated player (modulo their count) captures the lowest free
    /// cell, so that boards fill up.
    CaptureFree(u8),
    /// The driver's timer fires.
    HandleTimeout,
}

/// Reads bytes; past the end every byte is 0, so every input decodes.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// Opcodes of the input format.
mod op {
    pub(super) const JOIN: u8 = 0;
    pub(super) const LEAVE: u8 = 1;
    pub(super) const SET_CONNECTED: u8 = 2;
    pub(super) const START_BY_HOST: u8 = 3;
    pub(super) const START: u8 = 4;
    pub(super) const CAPTURE: u8 = 5;
    pub(super) const CAPTURE_FREE: u8 = 6;
    pub(super) const HANDLE_TIMEOUT: u8 = 7;
    pub(super) const COUNT: u8 = 8;
}

/// A round length in the fuzzer's usual range, or the protocol's longest.
fn duration_ms(b: u8) -> u64 {
    match b {
        255 => 300_000,
        b => 1_000 + u64::from(b % 16) * 250,
    }
}

/// Start times: ordinary, the epoch, and so close to `u64::MAX` ms that the
/// retention period (60 s) saturates.
fn start_ms(b: u8) -> u64 {
    match b % 8 {
        0 => 0,
        1 => u64::MAX - 61_000,
        _ => 1_700_000_000_000,
    }
}

fn time_step(b: u8) -> TimeStep {
    match b {
        0..=127 => TimeStep::Forward(u64::from(b % 8)),
        128..=223 => TimeStep::Forward(u64::from(b - 128) * 20),
        224..=251 => TimeStep::Forward(u64::from(b - 224) * 5_000),
        252..=255 => TimeStep::Back(u64::from(b - 251) * 250),
    }
}

impl Script {
    /// Decodes a fuzz input; total (every byte string is a script).
    pub fn decode(data: &[u8]) -> Script {
        let mut r = Reader { data };
        let max_players = 2 + r.byte() % 7;
        let min_players = 2 + r.byte() % (max_players - 1);
        let duration_ms = duration_ms(r.byte());
        let start_ms = start_ms(r.byte());
        let mut steps = Vec::new();
        while !r.data.is_empty() && steps.len() < MAX_STEPS {
            let opcode = r.byte() % op::COUNT;
            let time = time_step(r.byte());
            let command = match opcode {
                op::JOIN => {
                    let n = r.byte();
                    if n < 192 {
                        Command::Join(format!("p{n}"))
                    } else {
                        let raw = r.take(usize::from(n - 192));
                        Command::Join(String::from_utf8_lossy(raw).into_owned())
                    }
                }
                op::LEAVE => Command::Leave(r.byte() % 8),
                op::SET_CONNECTED => {
                    let b = r.byte();
                    Command::SetConnected(b % 8, b & 0x80 != 0)
                }
                op::START_BY_HOST => Command::StartByHost,
                op::START => Command::Start(r.byte() % 8),
                op::CAPTURE => {
                    let seat = r.byte() % 8;
                    Command::Capture(seat, i64::from(r.byte()) - 8)
                }
                op::CAPTURE_FREE => {
                    // Several captures at once, so that short inputs fill boards.
                    let n = r.byte();
                    let count = 1 + r.byte() % 16;
                    for k in 1..count {
                        steps.push(Step {
                            time: TimeStep::Forward(0),
                            command: Command::CaptureFree(n.wrapping_add(k)),
                        });
                    }
                    Command::CaptureFree(n)
                }
                _ => Command::HandleTimeout,
            };
            steps.push(Step { time, command });
        }
        steps.truncate(MAX_STEPS);
        Script {
            max_players,
            min_players,
            duration_ms,
            start_ms,
            steps,
        }
    }
}

/// Builds inputs in the format above (seed corpora, regression tests).
#[derive(Debug, Clone)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// A script header. `seats` 2..=8, `min_players` 2..=seats,
    /// `duration_byte` and `start_byte` as in the format.
    pub fn new(seats: u8, min_players: u8, duration_byte: u8, start_byte: u8) -> Encoder {
        let seats = seats.clamp(2, 8);
        Encoder {
            bytes: vec![
                seats - 2,
                min_players.clamp(2, seats) - 2,
                duration_byte,
                start_byte,
            ],
        }
    }

    /// Appends one step; `time` is a raw time byte (0 = no time passes).
    pub fn step(mut self, time: u8, command: &Command) -> Encoder {
        let b = &mut self.bytes;
        match command {
            Command::Join(name) => {
                let raw = name.as_bytes();
                let len = raw.len().min(63);
                b.extend([op::JOIN, time, 192 + len as u8]);
                b.extend_from_slice(&raw[..len]);
            }
            Command::Leave(s) => b.extend([op::LEAVE, time, *s]),
            Command::SetConnected(s, c) => {
                b.extend([op::SET_CONNECTED, time, (s % 8) | if *c { 0x80 } else { 0 }]);
            }
            Command::StartByHost => b.extend([op::START_BY_HOST, time]),
            Command::Start(s) => b.extend([op::START, time, *s]),
            Command::Capture(s, cell) => {
                let raw = u8::try_from(cell.saturating_add(8).clamp(0, 255)).unwrap_or(0);
                b.extend([op::CAPTURE, time, *s, raw]);
            }
            Command::CaptureFree(n) => b.extend([op::CAPTURE_FREE, time, *n, 0]),
            Command::HandleTimeout => b.extend([op::HANDLE_TIMEOUT, time]),
        }
        self
    }

    /// `count` (1..=16) captures of free cells in one step, from seat picks
    /// `n`, `n + 1`, ...
    pub fn capture_free(mut self, time: u8, n: u8, count: u8) -> Encoder {
        self.bytes
            .extend([op::CAPTURE_FREE, time, n, count.clamp(1, 16) - 1]);
        self
    }

    /// The input.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

impl Command {
    /// Runs the command on `game` at `now`. A command refused before it
    /// reaches the game (an invalid name, a cell index out of range) is
    /// `Err` too; `HandleTimeout` cannot be refused.
    pub fn apply(&self, game: &mut Game, now: Timestamp) -> Result<(), GameError> {
        match self {
            Command::Join(raw) => {
                // As a driver does: what the join causes is due at once.
                let name = PlayerName::new(raw)?;
                game.join(name, now)?;
                game.handle_timeout(now);
                Ok(())
            }
            Command::Leave(s) => game.leave(seat(*s), now),
            Command::SetConnected(s, c) => game.set_connected(seat(*s), *c, now),
            Command::StartByHost => game.start(game.host(), now),
            Command::Start(s) => game.start(seat(*s), now),
            Command::Capture(s, raw) => game.capture(seat(*s), Cell::try_from(*raw)?, now),
            Command::CaptureFree(n) => {
                let seated: Vec<PlayerId> = PlayerId::all()
                    .filter(|&p| game.player(p).is_some())
                    .collect();
                let player = seated.get(usize::from(*n) % seated.len().max(1)).copied();
                match (player, free_cell(game)) {
                    (Some(player), Some(cell)) => game.capture(player, cell, now),
                    (None, _) => Err(GameError::NotInGame),
                    (_, None) => Err(GameError::Taken),
                }
            }
            Command::HandleTimeout => {
                game.handle_timeout(now);
                Ok(())
            }
        }
    }

    /// Whether the command asks for a cell (`Capture` or `CaptureFree`).
    pub fn is_capture(&self) -> bool {
        matches!(self, Command::Capture(..) | Command::CaptureFree(_))
    }
}

/// The seat a command byte names (any byte: modulo 8).
pub fn seat(s: u8) -> PlayerId {
    match PlayerId::try_from(s % 8) {
        Ok(p) => p,
        Err(e) => unreachable!("seat {s} % 8 is not a seat: {e}"),
    }
}

/// The lowest free cell of `game`, if any: what `CaptureFree` takes.
pub fn free_cell(game: &Game) -> Option<Cell> {
    Cell::all().find(|&c| game.owner(c).is_none())
}

impl TimeStep {
    /// The clock after this step, from `now` (saturating at both ends).
    pub fn apply(self, now: Timestamp) -> Timestamp {
        match self {
            TimeStep::Forward(ms) => now + Duration::from_millis(ms),
            TimeStep::Back(ms) => Timestamp::from_unix_ms(now.as_unix_ms().saturating_sub(ms)),
        }
    }
}

impl Script {
    /// The settings the script's game is created with.
    pub fn settings(&self) -> Result<Settings, GameError> {
        let bounds = SettingsBounds {
            min_players: self.min_players,
            ..SettingsBounds::default()
        };
        Settings::new(
            Some(i64::from(self.max_players)),
            i64::try_from(self.duration_ms).ok(),
            &bounds,
        )
    }

    /// When the script's game is created.
    pub fn start(&self) -> Timestamp {
        Timestamp::from_unix_ms(self.start_ms)
    }
}
