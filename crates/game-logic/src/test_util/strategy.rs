//! proptest strategies for the command model of [`script`](super::script).
//!
//! [`command`] draws commands in the mix the rules' property tests use;
//! [`command_with`] takes another mix (the server's Lua differential test
//! wants more joins and reconnects), so every test draws from one model.

use proptest::prelude::*;

use super::script::{Command, Script, Step, TimeStep};

/// A fixed, arbitrary start time, so that every run sees the same numbers.
pub const START_MS: u64 = 1_700_000_000_000;

/// How often each command is drawn, relative to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// [`Command::Join`].
    pub join: u32,
    /// [`Command::Leave`].
    pub leave: u32,
    /// [`Command::SetConnected`].
    pub set_connected: u32,
    /// [`Command::StartByHost`].
    pub start_by_host: u32,
    /// [`Command::Start`].
    pub start: u32,
    /// [`Command::Capture`], of any cell index in 0..=90 (81.. are out of range).
    pub capture: u32,
    /// [`Command::CaptureFree`].
    pub capture_free: u32,
    /// [`Command::HandleTimeout`].
    pub handle_timeout: u32,
}

impl Weights {
    /// The rules' property tests: mostly captures, so that boards fill up.
    pub const RULES: Weights = Weights {
        join: 3,
        leave: 1,
        set_connected: 2,
        start_by_host: 2,
        start: 1,
        capture: 8,
        capture_free: 15,
        handle_timeout: 1,
    };
}

/// Any seat id a client could name: 0..=7, seated or not.
pub fn seat() -> impl Strategy<Value = u8> {
    0u8..8
}

/// A valid player name, some of them beyond ASCII and of the longest length.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..192).prop_map(|n| format!("p{n}")),
        prop::sample::select(&["ada", "bob", "ç", "éé", "x y", "long name of 24 chars xx"][..])
            .prop_map(str::to_owned),
    ]
}

/// A command in the [`Weights::RULES`] mix.
pub fn command() -> impl Strategy<Value = Command> {
    command_with(Weights::RULES)
}

/// A command in the mix `w`.
pub fn command_with(w: Weights) -> impl Strategy<Value = Command> {
    prop_oneof![
        w.join => name().prop_map(Command::Join),
        w.leave => seat().prop_map(Command::Leave),
        w.set_connected => (seat(), any::<bool>()).prop_map(|(s, c)| Command::SetConnected(s, c)),
        w.start_by_host => Just(Command::StartByHost),
        w.start => seat().prop_map(Command::Start),
        w.capture => (seat(), 0i64..=90).prop_map(|(s, c)| Command::Capture(s, c)),
        w.capture_free => seat().prop_map(Command::CaptureFree),
        w.handle_timeout => Just(Command::HandleTimeout),
    ]
}

/// How far the clock moves before a command.
pub fn advance() -> impl Strategy<Value = TimeStep> {
    // About 12 ms a step on average, so a 1 to 5 s round spans ~80 to 400
    // steps, long enough to fill the board, unless one of the rare jumps ends it.
    prop_oneof![
        400 => 0u64..=5,
        100 => Just(0u64),
        10 => 0u64..=1_000,
        // Past the deadline, and past the retention period too.
        1 => 5_000u64..=130_000,
    ]
    .prop_map(TimeStep::Forward)
}

/// A whole script: 2..=8 seats, a 1 to 5 s round from [`START_MS`], and up
/// to 300 steps of [`command`].
pub fn script() -> impl Strategy<Value = Script> {
    (2u8..=8)
        .prop_flat_map(|max| (Just(max), 2u8..=max, 1_000u64..=5_000))
        .prop_flat_map(|(max_players, min_players, duration_ms)| {
            let step = (advance(), command()).prop_map(|(time, command)| Step { time, command });
            proptest::collection::vec(step, 0..300).prop_map(move |steps| Script {
                max_players,
                min_players,
                duration_ms,
                start_ms: START_MS,
                steps,
            })
        })
}
