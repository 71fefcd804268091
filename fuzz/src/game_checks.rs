//! What must hold for ANY sequence of commands and clock readings: the
//! checks of the `game_machine` fuzz target.
//!
//! This file is shared, not copied: the fuzz crate compiles it as a module
//! of its library, and `crates/game-logic/tests/fuzz_corpus.rs` includes it
//! with `#[path]` to replay the committed corpus on stable Rust. So it may
//! only use what both have: `std`, the `game_logic` crate, and the Unicode
//! data crates it depends on (`icu_normalizer`, `icu_properties`).
//!
//! The commands, the scripts and their byte format are the shared command
//! model of `game_logic::test_util` (feature `test-util`), which the
//! proptests and the Lua differential test draw from too.
//!
//! A violated property panics (that is how libFuzzer learns of it); the
//! message names the property, the step and the command.

use std::fmt;

use game_logic::test_util::script::seat;
pub use game_logic::test_util::{Command, Encoder, Script, TimeStep};
use game_logic::{
    CELL_COUNT, Cell, Event, Game, GameError, GameOverReason, PlayerId, PlayerName, Snapshot,
    Status, Timestamp,
};

/// Steps still run once the game is completed. Everything after `GameOver`
/// is refused or changes nothing, and a few steps check that; running the
/// rest of a long input would only slow the fuzzer down.
pub const STEPS_AFTER_GAME_OVER: usize = 8;

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
    let settings = match script.settings() {
        Ok(s) => s,
        Err(e) => panic!("the decoder made invalid settings {script:?}: {e}"),
    };
    let host = match PlayerName::new("host") {
        Ok(n) => n,
        Err(e) => panic!("a fixed name is invalid: {e}"),
    };
    let mut now = script.start();
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
        if let TimeStep::Back(_) = step.time {
            outcome.backwards += 1;
        }
        now = step.time.apply(now);
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

/// Runs one command through the shared model, first checking what the
/// model decides before the game sees it: which names and cell indexes the
/// value types accept.
fn apply(game: &mut Game, command: &Command, now: Timestamp, at: &At<'_>) -> Result<(), GameError> {
    match command {
        Command::Join(raw) => {
            checked_name(raw, at)?;
        }
        Command::Capture(_, raw) => {
            assert_eq!(
                Cell::try_from(*raw).is_ok(),
                (0..CELL_COUNT as i64).contains(raw),
                "{at}: Cell::try_from({raw})"
            );
        }
        _ => {}
    }
    command.apply(game, now)
}

/// A character that draws something: a letter, number, punctuation or
/// symbol that Unicode does not tell renderers to ignore.
fn draws(c: char) -> bool {
    use icu_properties::props::{
        BinaryProperty, DefaultIgnorableCodePoint, EnumeratedProperty, GeneralCategory,
        GeneralCategoryGroup as Group,
    };
    let category = GeneralCategory::for_char(c);
    [
        Group::Letter,
        Group::Number,
        Group::Punctuation,
        Group::Symbol,
    ]
    .iter()
    .any(|group| group.contains(category))
        && !DefaultIgnorableCodePoint::for_char(c)
}

/// `PlayerName::new` accepts exactly the names of protocol §3 as
/// docs/protocol.md reads them: NFC, 1 to 24 characters after trimming, no
/// control or bidirectional-control character, at least one that draws.
fn checked_name(raw: &str, at: &At<'_>) -> Result<PlayerName, GameError> {
    use icu_properties::props::{BidiControl, BinaryProperty};
    let normalized = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(raw);
    let trimmed = normalized.trim();
    let chars = trimmed.chars().count();
    let valid = (1..=PlayerName::MAX_CHARS).contains(&chars)
        && !trimmed
            .chars()
            .any(|c| c.is_control() || BidiControl::for_char(c))
        && trimmed.chars().any(draws);
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
        let due = before.poll_timeout().is_some_and(|t| at.now >= t);
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
