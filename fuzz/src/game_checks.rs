//! What must hold for ANY sequence of commands and clock readings: the
//! checks of the `game_machine` fuzz target.
//!
//! This file is shared, not copied: the fuzz crate compiles it as a module
//! of its library, and `crates/game-logic/tests/fuzz_corpus.rs` includes it
//! with `#[path]` to replay the committed corpus on stable Rust. So it may
//! only use what both have: `std` and the `game_logic` crate. That is also
//! why the input format is decoded here by hand rather than through
//! `arbitrary`: the replay must read a corpus file exactly as the fuzzer did,
//! without adding a dependency to the rules crate.
//!
//! # Input format
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
//!
//! A violated property panics (that is how libFuzzer learns of it); the
//! message names the property, the step and the command.

use std::fmt;
use std::time::Duration;

use game_logic::{
    CELL_COUNT, Cell, Event, Game, GameError, GameOverReason, PlayerId, PlayerName, Settings,
    SettingsBounds, Snapshot, Status, Timestamp,
};

/// Steps run per input at most, so that one input stays fast.
pub const MAX_STEPS: usize = 1_000;

/// Steps still run once the game is completed. Everything after `GameOver`
/// is refused or changes nothing, and a few steps check that; running the
/// rest of a long input would only slow the fuzzer down.
pub const STEPS_AFTER_GAME_OVER: usize = 8;

/// One decoded fuzz input.
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

/// What one input exercised, so that a replay can tell what a corpus covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Steps run.
    pub steps: usize,
    /// Commands accepted (`Ok`).
    pub accepted: usize,
    /// Commands refused.
    pub refused: usize,
    /// Cells captured.
    pub captured: usize,
    /// Captures refused as `NotActive` while the game was still active
    /// (at or after the deadline, before the timer ran).
    pub late: usize,
    /// Steps where the clock went back.
    pub backwards: usize,
    /// How the game ended, if it did.
    pub over: Option<GameOverReason>,
}

/// Decodes `data` and runs every check on it; panics on a violation.
pub fn check(data: &[u8]) -> Outcome {
    run(&Script::decode(data))
}

/// Where a check failed, formatted only when one does.
struct At<'a> {
    index: usize,
    command: &'a Command,
    now: Timestamp,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {} ({:?} at {} ms)",
            self.index,
            self.command,
            self.now.as_unix_ms()
        )
    }
}

/// Runs `script` on a fresh game and checks the invariants after every step.
pub fn run(script: &Script) -> Outcome {
    let bounds = SettingsBounds {
        min_players: script.min_players,
        ..SettingsBounds::default()
    };
    let settings = match Settings::new(
        Some(i64::from(script.max_players)),
        i64::try_from(script.duration_ms).ok(),
        &bounds,
    ) {
        Ok(s) => s,
        Err(e) => panic!("the decoder made invalid settings {script:?}: {e}"),
    };
    let host = match PlayerName::new("host") {
        Ok(n) => n,
        Err(e) => panic!("a fixed name is invalid: {e}"),
    };
    let mut now = Timestamp::from_unix_ms(script.start_ms);
    let mut game = Game::new(settings, host, now);
    let mut replica = game.snapshot();
    assert_eq!(
        (replica.seq, replica.status, replica.players.len()),
        (0, Status::Waiting, 1),
        "a new game waits with its host and no event"
    );
    assert_eq!(game.poll_event(), None, "creating a game is not an event");

    let mut state = Tracked {
        last_seq: 0,
        owners: [None; CELL_COUNT],
        over: false,
    };
    let mut outcome = Outcome::default();
    let mut after_game_over = 0;
    for (index, step) in script.steps.iter().enumerate() {
        if state.over {
            if after_game_over == STEPS_AFTER_GAME_OVER {
                break;
            }
            after_game_over += 1;
        }
        now = match step.time {
            TimeStep::Forward(ms) => now + Duration::from_millis(ms),
            TimeStep::Back(ms) => {
                outcome.backwards += 1;
                Timestamp::from_unix_ms(now.as_unix_ms().saturating_sub(ms))
            }
        };
        let at = At {
            index,
            command: &step.command,
            now,
        };
        let before = game.clone();
        let result = apply(&mut game, &step.command, now, &at);
        let events: Vec<Event> = std::iter::from_fn(|| game.poll_event()).collect();
        check_step(
            &at,
            &before,
            &game,
            &result,
            &events,
            &mut state,
            &mut replica,
        );

        outcome.steps += 1;
        match result {
            Ok(()) => outcome.accepted += 1,
            Err(e) => {
                outcome.refused += 1;
                if e == GameError::NotActive && before.status() == Status::Active {
                    outcome.late += 1;
                }
            }
        }
        for e in &events {
            match e {
                Event::Captured { .. } => outcome.captured += 1,
                Event::GameOver { reason, .. } => outcome.over = Some(*reason),
                _ => {}
            }
        }
    }
    outcome
}

/// What the checks remember across steps.
struct Tracked {
    /// The seq of the last event seen.
    last_seq: u64,
    /// Owners as announced by `Captured` events.
    owners: [Option<PlayerId>; CELL_COUNT],
    /// Whether `GameOver` was seen.
    over: bool,
}

fn seat(s: u8) -> PlayerId {
    match PlayerId::try_from(s % 8) {
        Ok(p) => p,
        Err(e) => panic!("seat {s} % 8 is not a seat: {e}"),
    }
}

/// Runs one command; a command refused before it reaches the game (an
/// invalid name, a cell index out of range) is `Err` too.
fn apply(game: &mut Game, command: &Command, now: Timestamp, at: &At<'_>) -> Result<(), GameError> {
    match command {
        Command::Join(raw) => {
            let name = checked_name(raw, at)?;
            game.join(name, now).map(|_| ())
        }
        Command::Leave(s) => game.leave(seat(*s), now),
        Command::SetConnected(s, c) => game.set_connected(seat(*s), *c, now),
        Command::StartByHost => game.start(game.host(), now),
        Command::Start(s) => game.start(seat(*s), now),
        Command::Capture(s, raw) => {
            let cell = Cell::try_from(*raw);
            assert_eq!(
                cell.is_ok(),
                (0..CELL_COUNT as i64).contains(raw),
                "{at}: Cell::try_from({raw})"
            );
            game.capture(seat(*s), cell?, now)
        }
        Command::CaptureFree(n) => {
            let seated: Vec<PlayerId> = PlayerId::all()
                .filter(|&p| game.player(p).is_some())
                .collect();
            let player = seated.get(usize::from(*n) % seated.len().max(1)).copied();
            let free = Cell::all().find(|&c| game.owner(c).is_none());
            match (player, free) {
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

/// `PlayerName::new` accepts exactly the names of protocol §3.
fn checked_name(raw: &str, at: &At<'_>) -> Result<PlayerName, GameError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    let valid =
        (1..=PlayerName::MAX_CHARS).contains(&chars) && !trimmed.chars().any(char::is_control);
    let name = PlayerName::new(raw);
    match &name {
        Ok(n) => {
            assert!(valid, "{at}: accepted the invalid name {raw:?}");
            assert_eq!(n.as_str(), trimmed, "{at}: a name is stored trimmed");
        }
        Err(e) => {
            assert!(!valid, "{at}: refused the valid name {raw:?}");
            assert_eq!(*e, GameError::InvalidName, "{at}: name refusal");
        }
    }
    name
}

#[allow(clippy::too_many_arguments)]
fn check_step(
    at: &At<'_>,
    before: &Game,
    after: &Game,
    result: &Result<(), GameError>,
    events: &[Event],
    state: &mut Tracked,
    replica: &mut Snapshot,
) {
    let snap = after.snapshot();

    // Seqs are contiguous from 1; the game and its snapshot carry the last.
    for e in events {
        assert_eq!(
            e.seq(),
            state.last_seq + 1,
            "{at}: seq gap or repeat in {e:?}"
        );
        state.last_seq = e.seq();
    }
    assert_eq!(after.seq(), state.last_seq, "{at}: game seq");
    assert_eq!(snap.seq, state.last_seq, "{at}: snapshot seq");

    // Nothing follows GameOver; Completed exactly once GameOver was emitted.
    for e in events {
        assert!(!state.over, "{at}: {e:?} after GameOver");
        state.over = matches!(e, Event::GameOver { .. });
    }
    assert_eq!(
        state.over,
        after.status() == Status::Completed,
        "{at}: status {:?} vs GameOver seen",
        after.status()
    );

    // A refused command changes nothing and announces nothing.
    if let Err(e) = result {
        assert!(
            events.is_empty(),
            "{at}: refused ({e}) but emitted {events:?}"
        );
        assert!(after == before, "{at}: refused ({e}) but changed the game");
    }

    // The snapshot equals the initial one with every event applied.
    for e in events {
        assert!(replica.apply(e), "{at}: Snapshot::apply refused {e:?}");
    }
    assert!(
        *replica == snap,
        "{at}: replayed events {replica:?} differ from the snapshot {snap:?}"
    );

    // A cell is owned at most once and never changes owner.
    for e in events {
        if let Event::Captured { cell, player, .. } = e {
            let slot = &mut state.owners[cell.index()];
            assert_eq!(*slot, None, "{at}: cell {cell} captured twice");
            *slot = Some(*player);
        }
    }
    for cell in Cell::all() {
        let owner = state.owners[cell.index()];
        assert_eq!(after.owner(cell), owner, "{at}: owner of cell {cell}");
        let wire = owner.map_or(0, |p| u8::from(p) + 1);
        assert_eq!(snap.cells[cell.index()], wire, "{at}: snapshot cell {cell}");
    }

    // Scores add up to owned cells, seat by seat and in total.
    let owned = state.owners.iter().flatten().count();
    let total: u64 = snap.players.iter().map(|p| u64::from(p.score)).sum();
    assert_eq!(total, owned as u64, "{at}: sum of scores vs owned cells");
    for p in &snap.players {
        let mine = state.owners.iter().filter(|o| **o == Some(p.id)).count();
        assert_eq!(p.score as usize, mine, "{at}: score of player {}", p.id);
    }

    // The round starts once, from waiting, and lasts the settings' duration.
    for e in events {
        if let Event::Started {
            ends_at, duration, ..
        } = e
        {
            assert_eq!(before.status(), Status::Waiting, "{at}: started twice");
            assert_eq!(*duration, after.settings().duration(), "{at}: round length");
            assert_eq!(*ends_at, at.now + *duration, "{at}: deadline");
        }
    }

    check_capture(at, before, result, events);
    check_completion(at, before, after, events, &snap);
    check_shape(at, after, &snap);

    // An early (or repeated) timer changes nothing.
    if matches!(at.command, Command::HandleTimeout) {
        let due =
            before.status() == Status::Active && before.ends_at().is_some_and(|end| at.now >= end);
        if !due {
            assert!(
                after == before,
                "{at}: a timer that was not due changed the game"
            );
        }
    }
}

/// No capture is accepted at or after the deadline (even before the timer
/// ran), nor outside the round; an accepted one is announced with the
/// capturer's new score.
fn check_capture(at: &At<'_>, before: &Game, result: &Result<(), GameError>, events: &[Event]) {
    let (player, cell) = match at.command {
        Command::Capture(s, raw) => (Some(seat(*s)), Cell::try_from(*raw).ok()),
        Command::CaptureFree(_) => (None, None),
        _ => return,
    };
    let late = before.ends_at().is_none_or(|end| at.now >= end);
    if result.is_ok() {
        assert_eq!(
            before.status(),
            Status::Active,
            "{at}: capture accepted while not active"
        );
        assert!(
            !late,
            "{at}: capture accepted at or after the deadline {:?}",
            before.ends_at()
        );
        match events.first() {
            Some(Event::Captured {
                player: p,
                score,
                cell: c,
                ..
            }) => {
                let old = before.player(*p).map_or(0, |q| q.score);
                assert_eq!(*score, old + 1, "{at}: Captured carries the new score");
                if let (Some(player), Some(cell)) = (player, cell) {
                    assert_eq!((*p, *c), (player, cell), "{at}: Captured names the capture");
                }
            }
            other => panic!("{at}: an accepted capture announced {other:?}"),
        }
    } else if let (Some(player), Some(_)) = (player, cell) {
        // A seated player asking for a real cell outside the round hears
        // "not active", even when the cell is taken.
        let seated = before.can_resume(player).is_ok();
        if seated && (late || before.status() != Status::Active) {
            assert_eq!(*result, Err(GameError::NotActive), "{at}: late capture");
        }
    }
}

/// A game completes exactly when the board fills or a due timer runs, and
/// its result names every tied leader.
fn check_completion(at: &At<'_>, before: &Game, after: &Game, events: &[Event], snap: &Snapshot) {
    let order = |s: Status| match s {
        Status::Waiting => 0,
        Status::Active => 1,
        Status::Completed => 2,
    };
    assert!(
        order(before.status()) <= order(after.status()),
        "{at}: status went back from {:?} to {:?}",
        before.status(),
        after.status()
    );
    if before.status() == Status::Completed || after.status() != Status::Completed {
        return;
    }
    let full = Cell::all().all(|c| after.owner(c).is_some());
    let timer = matches!(at.command, Command::HandleTimeout)
        && before.ends_at().is_some_and(|end| at.now >= end);
    assert!(
        full || timer,
        "{at}: completed without a full board or a due timer"
    );
    let Some(Event::GameOver {
        reason,
        scores,
        winners,
        ..
    }) = events.last()
    else {
        panic!("{at}: completed but the last event is {:?}", events.last());
    };
    let expected = if full {
        GameOverReason::BoardFull
    } else {
        GameOverReason::Time
    };
    assert_eq!(*reason, expected, "{at}: game over reason");
    assert_eq!(
        scores.len(),
        usize::from(after.settings().max_players()),
        "{at}: one score per seat"
    );
    for p in &snap.players {
        assert_eq!(
            scores.get(p.id.index()),
            Some(&p.score),
            "{at}: score of {}",
            p.id
        );
    }
    let top = snap.players.iter().map(|p| p.score).max();
    let leaders: Vec<PlayerId> = snap
        .players
        .iter()
        .filter(|p| Some(p.score) == top)
        .map(|p| p.id)
        .collect();
    assert_eq!(*winners, leaders, "{at}: winners are every tied leader");
    assert_eq!(
        snap.winners.as_ref(),
        Some(&leaders),
        "{at}: snapshot winners"
    );
}

/// The snapshot's shape, the timer and expiry agree with the status.
fn check_shape(at: &At<'_>, game: &Game, snap: &Snapshot) {
    assert!(
        snap.players.windows(2).all(|w| w[0].id < w[1].id),
        "{at}: players sorted by id, each once"
    );
    assert!(
        snap.players.len() <= usize::from(snap.max_players)
            && snap
                .players
                .iter()
                .all(|p| p.id.index() < usize::from(snap.max_players)),
        "{at}: seats beyond max_players"
    );
    if !snap.players.is_empty() {
        assert!(
            snap.player(snap.host).is_some(),
            "{at}: the host {} is not seated",
            snap.host
        );
    }
    match snap.status {
        Status::Waiting => {
            assert_eq!(snap.ends_at, None, "{at}: a waiting game has no deadline");
        }
        Status::Active => {
            assert!(
                snap.ends_at.is_some(),
                "{at}: an active game has a deadline"
            );
            assert_eq!(
                game.poll_timeout(),
                snap.ends_at,
                "{at}: the timer is the deadline"
            );
            assert!(!game.is_expired(at.now), "{at}: an active game expired");
        }
        Status::Completed => {
            assert!(
                snap.reason.is_some() && snap.winners.is_some(),
                "{at}: a result"
            );
        }
    }
    if game.is_expired(at.now) {
        let attended = snap.players.iter().any(|p| p.connected);
        assert!(
            snap.status == Status::Completed || (snap.status == Status::Waiting && !attended),
            "{at}: expired while {:?} (attended: {attended})",
            snap.status
        );
        assert!(
            game.poll_timeout().is_some_and(|t| t <= at.now),
            "{at}: expired before its timer"
        );
    }
}

/// Seed inputs: whole games that reach each ending, and games that refuse.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let join = |n: &str| Command::Join(n.to_owned());
    let mut out = Vec::new();

    // Two seats: the second join starts the round; the board fills up.
    let mut e = Encoder::new(2, 2, 0, 2).step(0, &join("bob"));
    for k in 0..6 {
        e = e.capture_free(1, k, 16);
    }
    out.push(("board-full".to_owned(), e.finish()));

    // Four seats, the host starts with three; a few captures; time runs out.
    let e = Encoder::new(4, 2, 0, 2)
        .step(0, &join("bob"))
        .step(0, &join("eve"))
        .step(0, &Command::Start(1))
        .step(0, &Command::StartByHost)
        .step(3, &Command::Capture(0, 40))
        .step(3, &Command::Capture(1, 40))
        .step(3, &Command::Capture(2, 81))
        .step(3, &Command::Capture(2, -1))
        .step(251, &Command::Capture(1, 0))
        .step(0, &Command::HandleTimeout)
        .step(0, &Command::Capture(1, 1));
    out.push(("timeout".to_owned(), e.finish()));

    // Leaving and presence in a waiting game, host hand-over, names.
    let e = Encoder::new(5, 3, 4, 2)
        .step(0, &join("  ada  "))
        .step(0, &join(""))
        .step(0, &join("a\u{7}b"))
        .step(0, &join(&"é".repeat(25)))
        .step(0, &Command::SetConnected(1, false))
        .step(0, &Command::StartByHost)
        .step(0, &Command::SetConnected(1, true))
        .step(0, &Command::Leave(0))
        .step(0, &Command::Leave(1))
        .step(240, &Command::HandleTimeout)
        .step(0, &join("back"))
        .step(0, &join("again"))
        .step(0, &Command::StartByHost)
        .step(0, &Command::Leave(1))
        .step(0, &Command::Capture(1, 3))
        .step(252, &Command::Capture(0, 4))
        .step(255, &Command::HandleTimeout);
    out.push(("leave-and-presence".to_owned(), e.finish()));

    // Deadlines that saturate near u64::MAX.
    let e = Encoder::new(2, 2, 255, 1)
        .step(0, &join("bob"))
        .capture_free(0, 0, 4)
        .step(251, &Command::HandleTimeout)
        .step(251, &Command::HandleTimeout)
        .step(251, &Command::Capture(0, 80));
    out.push(("saturating-clock".to_owned(), e.finish()));
    out
}
