//! Invariants of the rules under random command sequences and random time.
//!
//! One driver ([`run`]) plays a random script (the shared command model of
//! `game_logic::test_util`) against a fresh game and records every step; each property then checks one invariant over the record, so a
//! failure names the rule it broke and proptest shrinks the script to a short
//! counter-example.

#![allow(clippy::expect_used, reason = "a broken expectation fails the test")]

use game_logic::test_util::script::seat;
use game_logic::test_util::strategy::script;
use game_logic::test_util::{Command, Script};
use game_logic::{CELL_COUNT, Cell, Event, Game, GameError, PlayerId, Snapshot, Status, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

/// Cases per property: well above proptest's default 256.
const CASES: u32 = 512;

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

fn run(script: &Script) -> Run {
    let settings = script.settings().expect("strategy draws valid settings");
    let host = game_logic::PlayerName::new("host").expect("valid name");
    let mut now = script.start();
    let mut game = Game::new(settings, host, now);
    let initial = game.snapshot();
    let mut records = Vec::with_capacity(script.steps.len());
    for step in &script.steps {
        now = step.time.apply(now);
        let before = game.clone();
        let result = step.command.apply(&mut game, now);
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
            if !r.command.is_capture() {
                continue;
            }
            let end = r.before.ends_at();
            let late = end.is_some_and(|end| r.now >= end);
            if r.result.is_ok() {
                prop_assert_eq!(r.before.status(), Status::Active);
                prop_assert!(!late, "accepted at {:?}, deadline {:?}", r.now, end);
            } else if let Command::Capture(seat_no, raw) = r.command {
                // A seated player asking for a real cell too late, or outside
                // the round, hears "not active" (even when the cell is taken).
                let seated = r.before.can_resume(seat(seat_no)).is_ok();
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
