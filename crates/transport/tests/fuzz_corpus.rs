//! Replays the `decode_client` fuzz target's corpus on stable Rust.
//!
//! The properties live in `fuzz/src/codec_checks.rs`, shared with the fuzz
//! target (see `fuzz/README.md`): any bytes into `decode_client` and
//! `decode_server` must not panic, and whatever decodes must round-trip.
//! Every file of `fuzz/corpus/decode_client/` (the committed, minimized
//! corpus) runs through them here, so `cargo test` guards what the long
//! fuzzing runs found, without nightly.
//!
//! `GRIDCAP_WRITE_SEEDS=1 cargo test -p gridcap-transport --test fuzz_corpus`
//! also writes the seed inputs into the corpus directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/codec_checks.rs"]
mod checks;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;

use std::collections::BTreeSet;
use std::path::PathBuf;

use transport::codec::{decode_client, decode_server};

fn corpus_dir() -> PathBuf {
    corpus::dir(env!("CARGO_MANIFEST_DIR"), "decode_client")
}

/// What a set of inputs covered, and the inputs that failed a check.
#[derive(Debug, Default)]
struct Replay {
    client: BTreeSet<&'static str>,
    server: BTreeSet<&'static str>,
    refused: usize,
    failures: Vec<String>,
}

/// Replays on a thread with a large stack: the fuzzer (release build, 8 MiB
/// main thread) keeps inputs that nest up to the decoder's depth limit, which
/// a debug build cannot decode on a test thread's 2 MiB. The stack itself is
/// tested below, by `deeply_nested_frames_do_not_exhaust_a_worker_stack`.
fn replay(inputs: &[(String, Vec<u8>)]) -> Replay {
    let inputs = inputs.to_vec();
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || replay_here(&inputs))
        .expect("spawn")
        .join()
        .expect("replay")
}

fn replay_here(inputs: &[(String, Vec<u8>)]) -> Replay {
    let (decoded, failures) = corpus::replay(inputs, checks::check);
    let mut r = Replay {
        failures,
        ..Replay::default()
    };
    for d in decoded {
        r.client.extend(d.client);
        r.server.extend(d.server);
        if d.client.is_none() && d.server.is_none() {
            r.refused += 1;
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
    assert!(
        inputs.iter().all(|(_, data)| data.len() <= 4096),
        "the corpus holds inputs above the protocol's 4 KiB message limit"
    );
    let r = replay(&inputs);
    assert!(
        r.failures.is_empty(),
        "failing inputs:\n{}",
        r.failures.join("\n")
    );
    // The corpus reaches every message type of both directions, and inputs
    // that are refused: a corpus that lost them would test much less.
    let client: BTreeSet<&str> = checks::CLIENT_TYPES.into_iter().collect();
    let server: BTreeSet<&str> = checks::SERVER_TYPES.into_iter().collect();
    assert_eq!(r.client, client, "client message types the corpus decodes");
    assert_eq!(r.server, server, "server message types the corpus decodes");
    assert!(r.refused >= 10, "only {} refused inputs", r.refused);
}

#[test]
fn the_seed_inputs_pass_and_cover_every_message_type() {
    let seeds = checks::seeds();
    let r = replay(&seeds);
    assert!(
        r.failures.is_empty(),
        "failing seeds:\n{}",
        r.failures.join("\n")
    );
    assert_eq!(r.client.len(), checks::CLIENT_TYPES.len(), "{:?}", r.client);
    assert_eq!(r.server.len(), checks::SERVER_TYPES.len(), "{:?}", r.server);
    corpus::write_seeds_if_asked(&corpus_dir(), &seeds);
}

/// A 2 MiB stack: tokio's default for worker threads, where sessions decode
/// (and Rust's default for spawned threads, where tests run).
const WORKER_STACK: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with a worker's stack. A stack overflow aborts the
/// whole process (the server, or this test binary), so it fails loudly.
fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic");
}

/// `depth` nested one-element arrays around a nil.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut v = vec![0x91u8; depth];
    v.push(0xc0);
    v
}

/// Frames of at most 4 KiB (the default max-message-bytes, so what any
/// client may send) that nest as deep as they can.
fn deep_frames() -> Vec<(&'static str, Vec<u8>)> {
    let deepest = 4096 - 16;
    let mut maps = Vec::new();
    for _ in 0..deepest / 3 {
        maps.extend_from_slice(b"\x81\xa1k");
    }
    maps.push(0xc0);
    // {t: "ping", ts: [[...]]}: the nesting where a number is expected.
    let mut in_ping = b"\x82\xa1t\xa4ping\xa2ts".to_vec();
    in_ping.extend(nested_arrays(deepest));
    // {x: [[...]], t: "start"}: under an unknown key, which is skipped. Just
    // under rmp-serde's depth limit (1024) the whole value is walked, and
    // buffered for the tagged enum; above it, decoding stops at the limit.
    let unknown = |depth: usize| {
        let mut v = b"\x82\xa1x".to_vec();
        v.extend(nested_arrays(depth));
        v.extend_from_slice(b"\xa1t\xa5start");
        v
    };
    vec![
        ("arrays", nested_arrays(deepest)),
        ("maps", maps),
        ("ping-ts", in_ping),
        ("unknown-key-1000", unknown(1_000)),
        ("unknown-key-4000", unknown(4_000)),
    ]
}

/// Regression test for a stack overflow found while fuzzing (see
/// SECURITY.md, "Fuzzing"): in a debug build, decoding one of these frames
/// needs about 3.4 MiB of stack, so a single 1 KiB frame aborts a debug
/// server whose sessions run on 2 MiB tokio workers. A release build needs
/// about 380 KiB. `transport::codec::decode` now caps the depth with
/// `rmp_serde::Deserializer::set_max_depth` (`MAX_DEPTH`).
#[test]
fn deeply_nested_frames_do_not_exhaust_a_worker_stack() {
    let frames = deep_frames();
    on_worker_stack(move || {
        for (name, frame) in &frames {
            assert!(frame.len() <= 4096, "{name}");
            // Unknown keys are ignored, however deep their value, or a depth
            // limit refuses the frame: both are fine, another message is not.
            if let Ok(m) = decode_client(frame) {
                assert_eq!(m, transport::ClientMessage::Start {}, "{name}");
            }
            assert!(decode_server(frame).is_err(), "{name}");
            checks::check(frame);
        }
    });
}
