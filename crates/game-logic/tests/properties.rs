//! Invariants of the rules under random command sequences and random time.
//!
//! One driver ([`run`]) plays a random script against a fresh game and records
//! every step; each property then checks one invariant over the record, so a
//! failure names the rule it broke and proptest shrinks the script to a short
//! counter-example.

#![allow(clippy::expect_used, reason = "a broken expectation fails the test")]

use std::time::Duration;

use game_logic::{
    CELL_COUNT, Cell, Event, Game, GameError, PlayerId, PlayerName, Settings, SettingsBounds,
    Snapshot, Status, Timestamp,
};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

/// Cases per property: well above proptest's default 256.
const CASES: u32 = 512;

const T0: Timestamp = Timestamp::from_unix_ms(1_700_000_000_000);

/// One input to the game. Seats are drawn from all of 0..=7, so commands from
/// unseated ids (and from seats that left) are common.
#[derive(Debug, Clone)]
enum Command {
    Join,
    Leave(u8),
    SetConnected(u8, bool),
    /// Start by the current host.
    StartByHost,
    /// Start by any seat, usually not the host.
    Start(u8),
    /// Capture the raw index the client sent; 81..=90 are out of range.
    Capture(u8, u8),
    /// The n-th seated player (modulo the seated count) captures the lowest
    /// free cell, so that boards actually fill up.
    CaptureFree(u8),
    HandleTimeout,
}

#[derive(Debug, Clone)]
struct Step {
    /// Virtual time that passes before the command.
    advance_ms: u64,
    command: Command,
}

#[derive(Debug, Clone)]
struct Script {
    max_players: u8,
    min_players: u8,
    duration_ms: i64,
    steps: Vec<Step>,
}

fn seat() -> impl Strategy<Value = u8> {
    0u8..8
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => Just(Command::Join),
        1 => seat().prop_map(Command::Leave),
        2 => (seat(), any::<bool>()).prop_map(|(s, c)| Command::SetConnected(s, c)),
        2 => Just(Command::StartByHost),
        1 => seat().prop_map(Command::Start),
        8 => (seat(), 0u8..=90).prop_map(|(s, c)| Command::Capture(s, c)),
        15 => seat().prop_map(Command::CaptureFree),
        1 => Just(Command::HandleTimeout),
    ]
}

fn advance() -> impl Strategy<Value = u64> {
    // About 12 ms a step on average, so a 1 to 5 s round spans ~80 to 400
    // steps, long enough to fill the board, unless one of the rare jumps ends it.
    prop_oneof![
        400 => 0u64..=5,
        100 => Just(0u64),
        10 => 0u64..=1_000,
        // Past the deadline, and past the retention period too.
        1 => 5_000u64..=130_000,
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (2u8..=8)
        .prop_flat_map(|max| (Just(max), 2u8..=max, 1_000i64..=5_000))
        .prop_flat_map(|(max_players, min_players, duration_ms)| {
            let step = (advance(), command()).prop_map(|(advance_ms, command)| Step {
                advance_ms,
                command,
            });
            proptest::collection::vec(step, 0..300).prop_map(move |steps| Script {
                max_players,
                min_players,
                duration_ms,
                steps,
            })
        })
}

/// What one command did.
#[derive(Debug)]
struct Record {
    now: Timestamp,
    command: Command,
    /// The game just before the command.
    before: Game,
    /// `Ok` also for `HandleTimeout`, which cannot be refused.
    result: Result<(), GameError>,
    /// Everything `poll_event` returned after the command.
    events: Vec<Event>,
    /// The game after the command and after draining its events.
    after: Game,
}

struct Run {
    initial: Snapshot,
    records: Vec<Record>,
}

fn seat_id(s: u8) -> PlayerId {
    PlayerId::try_from(s).expect("strategy draws 0..=7")
}

fn run(script: &Script) -> Run {
    let bounds = SettingsBounds {
        min_players: script.min_players,
        ..SettingsBounds::default()
    };
    let settings = Settings::new(
        Some(i64::from(script.max_players)),
        Some(script.duration_ms),
        &bounds,
    )
    .expect("strategy draws valid settings");
    let host = PlayerName::new("host").expect("valid name");
    let mut game = Game::new(settings, host, T0);
    let initial = game.snapshot();
    let mut now = T0;
    let mut joins = 0u32;
    let mut records = Vec::with_capacity(script.steps.len());
    for step in &script.steps {
        now = now + Duration::from_millis(step.advance_ms);
        let before = game.clone();
        let result = match step.command {
            Command::Join => {
                joins += 1;
                let name = PlayerName::new(&format!("player {joins}")).expect("valid name");
                game.join(name, now).map(|_| ())
            }
            Command::Leave(s) => game.leave(seat_id(s), now),
            Command::SetConnected(s, c) => game.set_connected(seat_id(s), c, now),
            Command::StartByHost => game.start(game.host(), now),
            Command::Start(s) => game.start(seat_id(s), now),
            Command::Capture(s, c) => {
                Cell::try_from(c).and_then(|cell| game.capture(seat_id(s), cell, now))
            }
            Command::CaptureFree(n) => {
                let seated: Vec<PlayerId> = PlayerId::all()
                    .filter(|&p| game.player(p).is_some())
                    .collect();
                let player = seated.get(usize::from(n) % seated.len().max(1)).copied();
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
        };
        let events = std::iter::from_fn(|| game.poll_event()).collect();
        records.push(Record {
            now,
            command: step.command.clone(),
            before,
            result,
            events,
            after: game.clone(),
        });
    }
    Run { initial, records }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // ChaCha, the default, takes most of the time in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The first event has seq 1, every later one exactly one more, and the
    /// game's seq (and its snapshot's) is always that of the last event.
    #[test]
    fn seqs_are_contiguous_from_one(script in script()) {
        let run = run(&script);
        let mut last = 0u64;
        for r in &run.records {
            for e in &r.events {
                prop_assert_eq!(e.seq(), last + 1, "after {:?}", r.command);
                last = e.seq();
            }
            prop_assert_eq!(r.after.seq(), last);
            prop_assert_eq!(r.after.snapshot().seq, last);
        }
    }

    /// A cell gets at most one `Captured` event, and its owner never changes.
    #[test]
    fn a_cell_is_owned_once_and_never_changes_owner(script in script()) {
        let run = run(&script);
        let mut owners: [Option<PlayerId>; CELL_COUNT] = [None; CELL_COUNT];
        for r in &run.records {
            for e in &r.events {
                if let Event::Captured { cell, player, .. } = e {
                    prop_assert_eq!(owners[cell.index()], None, "{} captured twice", cell);
                    owners[cell.index()] = Some(*player);
                }
            }
            for cell in Cell::all() {
                prop_assert_eq!(r.after.owner(cell), owners[cell.index()]);
            }
        }
    }

    /// Scores add up to the owned cells, seat by seat and in total, and a
    /// `Captured` event carries its capturer's new score.
    #[test]
    fn scores_add_up_to_owned_cells(script in script()) {
        let run = run(&script);
        for r in &run.records {
            let snap = r.after.snapshot();
            let owned = snap.cells.iter().filter(|&&c| c != 0).count();
            let total: u32 = snap.players.iter().map(|p| p.score).sum();
            prop_assert_eq!(total as usize, owned);
            for p in &snap.players {
                let mine = snap.cells.iter().filter(|&&c| usize::from(c) == p.id.index() + 1).count();
                prop_assert_eq!(p.score as usize, mine);
            }
            for e in &r.events {
                if let Event::Captured { player, score, .. } = e {
                    prop_assert_eq!(r.after.player(*player).map(|p| p.score), Some(*score));
                }
            }
        }
    }

    /// Nothing is emitted after `GameOver`, and `GameOver` comes exactly when
    /// the board fills or a timer at or past the deadline is handled.
    #[test]
    fn nothing_follows_game_over(script in script()) {
        let run = run(&script);
        let mut over = false;
        for r in &run.records {
            for e in &r.events {
                prop_assert!(!over, "{:?} after GameOver", e);
                over = matches!(e, Event::GameOver { .. });
            }
            prop_assert_eq!(over, r.after.status() == Status::Completed);
            let deadline_handled = matches!(r.command, Command::HandleTimeout)
                && r.after.ends_at().is_some_and(|end| r.now >= end);
            let full = Cell::all().all(|c| r.after.owner(c).is_some());
            if deadline_handled || full {
                prop_assert_eq!(r.after.status(), Status::Completed);
            }
            if r.before.status() != Status::Completed && r.after.status() == Status::Completed {
                prop_assert!(deadline_handled || full, "completed by {:?}", r.command);
            }
        }
    }

    /// No capture is accepted at or after the deadline, whether or not the
    /// timer has run, nor outside the active round.
    #[test]
    fn no_capture_is_accepted_at_or_after_the_deadline(script in script()) {
        let run = run(&script);
        for r in &run.records {
            let capture = matches!(r.command, Command::Capture(..) | Command::CaptureFree(_));
            if !capture {
                continue;
            }
            let end = r.before.ends_at();
            let late = end.is_some_and(|end| r.now >= end);
            if r.result.is_ok() {
                prop_assert_eq!(r.before.status(), Status::Active);
                prop_assert!(!late, "accepted at {:?}, deadline {:?}", r.now, end);
            } else if let Command::Capture(seat, raw) = r.command {
                // A seated player asking for a real cell too late, or outside
                // the round, hears "not active" (even when the cell is taken).
                let seated = r.before.can_resume(seat_id(seat)).is_ok();
                if seated && raw < 81 && (late || r.before.status() != Status::Active) {
                    prop_assert_eq!(r.result, Err(GameError::NotActive));
                }
            }
            if let Command::Capture(_, raw) = r.command {
                prop_assert_eq!(raw >= 81, r.result == Err(GameError::OutOfRange));
            }
        }
    }

    /// A refused command changes nothing: not the game, not its snapshot,
    /// and it emits nothing.
    #[test]
    fn refusals_change_nothing(script in script()) {
        let run = run(&script);
        for r in &run.records {
            if r.result.is_err() {
                prop_assert!(r.events.is_empty(), "{:?} emitted {:?}", r.command, r.events);
                prop_assert_eq!(r.after.snapshot(), r.before.snapshot());
                prop_assert_eq!(&r.after, &r.before);
            }
        }
    }

    /// The initial snapshot with every emitted event applied equals the
    /// snapshot after the whole sequence (and after every step).
    #[test]
    fn replayed_events_rebuild_the_snapshot(script in script()) {
        let run = run(&script);
        let mut replica = run.initial.clone();
        for r in &run.records {
            for e in &r.events {
                prop_assert!(replica.apply(e), "apply refused {:?}", e);
            }
            prop_assert_eq!(&replica, &r.after.snapshot(), "after {:?}", r.command);
        }
    }

    /// Expiry only ever concerns completed games and unattended waiting ones.
    #[test]
    fn only_completed_or_unattended_games_expire(script in script()) {
        let run = run(&script);
        for r in &run.records {
            if r.after.is_expired(r.now) {
                let snap = r.after.snapshot();
                let attended = snap.players.iter().any(|p| p.connected);
                prop_assert!(
                    snap.status == Status::Completed
                        || snap.status == Status::Waiting && !attended,
                    "{:?} expired", snap
                );
                prop_assert!(r.after.poll_timeout().is_some_and(|t| t <= r.now));
            }
        }
    }
}

/// The script generator must reach every part of the state machine, or the
/// properties above would pass vacuously.
#[test]
fn scripts_reach_every_outcome() {
    use proptest::strategy::ValueTree;

    let rng = TestRng::deterministic_rng(RngAlgorithm::XorShift);
    let mut runner = TestRunner::new_with_rng(config(), rng);
    let (mut time, mut full, mut refused, mut captured, mut late) = (0, 0, 0, 0, 0);
    for _ in 0..300 {
        let script = script()
            .new_tree(&mut runner)
            .expect("strategy builds")
            .current();
        for r in run(&script).records {
            refused += usize::from(r.result.is_err());
            late += usize::from(
                r.result == Err(GameError::NotActive) && r.before.status() == Status::Active,
            );
            for e in &r.events {
                match e {
                    Event::Captured { .. } => captured += 1,
                    Event::GameOver { reason, .. } => match reason {
                        game_logic::GameOverReason::Time => time += 1,
                        game_logic::GameOverReason::BoardFull => full += 1,
                    },
                    _ => {}
                }
            }
        }
    }
    let counts = (time, full, refused, captured, late);
    println!("time, full, refused, captured, late: {counts:?}");
    assert!(
        time > 30 && full > 5 && refused > 1_000 && captured > 3_000 && late > 100,
        "{counts:?}"
    );
}
