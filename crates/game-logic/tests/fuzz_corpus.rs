//! Replays the `game_machine` fuzz target's corpus on stable Rust.
//!
//! The input format and the invariants live in `fuzz/src/game_checks.rs`,
//! shared with the fuzz target (see `fuzz/README.md`). Every file of
//! `fuzz/corpus/game_machine/` (the committed, minimized corpus) is decoded
//! into a command script and run on a fresh `Game`, with every invariant
//! checked after every step: seqs contiguous from 1, a cell owned at most
//! once, scores adding up, nothing after `GameOver`, no capture at or after
//! the deadline, refusals changing nothing, snapshot == replayed events.
//!
//! `GRIDCAP_WRITE_SEEDS=1 cargo test -p gridcap-game-logic --test fuzz_corpus`
//! also writes the seed inputs into the corpus directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/game_checks.rs"]
mod checks;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;

use std::path::PathBuf;

use checks::{Command, Encoder, Outcome, Script, TimeStep};
use game_logic::GameOverReason;

fn corpus_dir() -> PathBuf {
    corpus::dir(env!("CARGO_MANIFEST_DIR"), "game_machine")
}

/// What a set of inputs covered, and the inputs that failed a check.
#[derive(Debug, Default)]
struct Replay {
    total: Outcome,
    by_time: usize,
    board_full: usize,
    failures: Vec<String>,
}

fn replay(inputs: &[(String, Vec<u8>)]) -> Replay {
    let (outcomes, failures) = corpus::replay(inputs, checks::check);
    let mut r = Replay {
        failures,
        ..Replay::default()
    };
    for o in outcomes {
        r.total.steps += o.steps;
        r.total.accepted += o.accepted;
        r.total.refused += o.refused;
        r.total.captured += o.captured;
        r.total.late += o.late;
        r.total.backwards += o.backwards;
        match o.over {
            Some(GameOverReason::Time) => r.by_time += 1,
            Some(GameOverReason::BoardFull) => r.board_full += 1,
            None => {}
        }
    }
    r
}

#[test]
fn every_corpus_input_passes_the_fuzz_checks() {
    let inputs = corpus::read(&corpus_dir());
    assert!(
        inputs.len() >= 50,
        "the corpus has only {} inputs; was it deleted?",
        inputs.len()
    );
    let r = replay(&inputs);
    assert!(
        r.failures.is_empty(),
        "failing inputs:\n{}",
        r.failures.join("\n")
    );
    // The corpus reaches both endings, late captures and clocks that go
    // back: a corpus that lost them would check much less.
    println!("{r:?}");
    assert!(r.by_time >= 5 && r.board_full >= 1, "{r:?}");
    assert!(r.total.captured >= 500 && r.total.late >= 5, "{r:?}");
    assert!(r.total.refused >= 500 && r.total.backwards >= 5, "{r:?}");
}

#[test]
fn the_seed_inputs_pass_and_reach_both_endings() {
    let seeds = checks::seeds();
    let r = replay(&seeds);
    assert!(
        r.failures.is_empty(),
        "failing seeds:\n{}",
        r.failures.join("\n")
    );
    assert!(r.by_time >= 2 && r.board_full >= 1, "{r:?}");
    assert!(r.total.late >= 1 && r.total.backwards >= 1, "{r:?}");
    corpus::write_seeds_if_asked(&corpus_dir(), &seeds);
}

#[test]
fn every_byte_string_decodes_and_the_encoder_is_its_inverse() {
    // Total: short, empty and odd inputs are scripts too.
    for data in [&b""[..], b"\x00", b"\xff\xff\xff\xff\xff", b"\x05\x05"] {
        let script = Script::decode(data);
        assert!((2..=8).contains(&script.max_players));
        assert!((2..=script.max_players).contains(&script.min_players));
        checks::run(&script);
    }
    let commands = [
        Command::Join("bob".into()),
        Command::Leave(3),
        Command::SetConnected(2, true),
        Command::SetConnected(7, false),
        Command::StartByHost,
        Command::Start(1),
        Command::Capture(4, -8),
        Command::Capture(0, 80),
        Command::Capture(0, 247),
        Command::CaptureFree(9),
        Command::HandleTimeout,
    ];
    let mut e = Encoder::new(3, 2, 0, 2);
    for c in &commands {
        e = e.step(0, c);
    }
    let script = Script::decode(&e.finish());
    let decoded: Vec<Command> = script.steps.iter().map(|s| s.command.clone()).collect();
    assert_eq!(decoded, commands);
    assert!(script.steps.iter().all(|s| s.time == TimeStep::Forward(0)));
    assert_eq!((script.max_players, script.min_players), (3, 2));
}

#[test]
fn the_outcome_counts_what_the_coverage_assertions_rely_on() {
    // The corpus test above asserts coverage from these counters; here one
    // known script shows that they count what they claim.
    let script = Script::decode(
        &Encoder::new(2, 2, 0, 2)
            .step(0, &Command::Join("bob".into()))
            .step(251, &Command::Capture(0, 5))
            .finish(),
    );
    let outcome = checks::run(&script);
    assert_eq!(
        (outcome.late, outcome.captured),
        (1, 0),
        "a capture 135 s into a 1 s round is refused as late"
    );
}
