//! Protocol §4: every error code and every `rejected` reason a game can
//! cause, each on a connection that stays usable afterwards. (bad_frame,
//! bad_message and rate_limited are in limits.rs; overloaded in lifecycle.rs.)

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use transport::protocol::{ErrorCode, GameStatus, RejectReason, ServerMessage};

#[tokio::test]
async fn invalid_settings() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for (players, duration) in [
        (Some(1), None),
        (Some(9), None),
        (Some(0), None),
        (Some(-1), None),
        (Some(i64::MAX), None),
        (None, Some(999)),
        (None, Some(300_001)),
        (None, Some(0)),
        (None, Some(-1_000)),
        (Some(9), Some(999)),
    ] {
        c.send(&create("ada", players, duration)).await;
        c.error(ErrorCode::InvalidSettings).await;
    }
    // Nothing was created: the connection is free to create a valid game.
    c.send(&create("ada", Some(2), Some(1_000))).await;
    c.joined().await;
}

const BAD_NAMES: [&str; 12] = [
    "",
    "   ",
    "\t\n",
    "abcdefghijklmnopqrstuvwxy", // 25 characters
    "a\u{7}b",
    "line\nbreak",
    "nul\u{0}",
    "del\u{7f}",
    "\u{200B}\u{200D}\u{FEFF}", // nothing visible (issue 18)
    "\u{3164}",                 // Hangul filler: a letter that draws nothing
    "eve\u{202E}mada",          // a right-to-left override: shows as "evadam…"
    "\u{2067}ada\u{2069}",      // an isolate
];

#[tokio::test]
async fn invalid_name_on_create_and_join() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for name in BAD_NAMES {
        c.send(&create(name, None, None)).await;
        c.error(ErrorCode::InvalidName).await;
    }
    let host = host_game(&server, 4, 30_000).await;
    for name in BAD_NAMES {
        c.send(&join(&host.game_id(), name)).await;
        c.error(ErrorCode::InvalidName).await;
    }
    // 24 characters after trimming is fine.
    c.send(&join(&host.game_id(), "  abcdefghijklmnopqrstuvwx  "))
        .await;
    assert_eq!(c.joined().await.players[1].name, "abcdefghijklmnopqrstuvwx");
}

#[tokio::test]
async fn unknown_game_for_join_and_resume() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let random = uuid::Uuid::new_v4().to_string();
    for id in [
        random.as_str(),
        "not-a-uuid",
        "",
        "00000000-0000-0000-0000-00000000000g",
    ] {
        c.send(&join(id, "ada")).await;
        c.error(ErrorCode::UnknownGame).await;
        c.send(&resume(id, "00112233445566778899aabbccddeeff"))
            .await;
        c.error(ErrorCode::UnknownGame).await;
    }
    c.ping_pong(1).await;
}

#[tokio::test]
async fn game_full() {
    let server = TestServer::start().await;
    let p = full_game(&server, 2, 30_000).await;
    let mut late = server.connect().await;
    late.send(&join(&p[0].game_id(), "late")).await;
    late.error(ErrorCode::GameFull).await;
}

#[tokio::test]
async fn already_started_for_join_and_start() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 4, 1_000).await;
    let _guest = join_game(&server, &host.game_id(), "bob").await;
    host.send(&START).await;
    host.until(|m| matches!(m, ServerMessage::Started { .. }))
        .await;
    // Seats are free, but the game is active.
    let mut late = server.connect().await;
    late.send(&join(&host.game_id(), "late")).await;
    late.error(ErrorCode::AlreadyStarted).await;
    host.send(&START).await;
    host.error(ErrorCode::AlreadyStarted).await;
    // Completed.
    host.until(|m| matches!(m, ServerMessage::GameOver { .. }))
        .await;
    late.send(&join(&host.game_id(), "late")).await;
    late.error(ErrorCode::AlreadyStarted).await;
    host.send(&START).await;
    host.error(ErrorCode::AlreadyStarted).await;
}

#[tokio::test]
async fn already_in_game_while_waiting_or_active() {
    let server = TestServer::start().await;
    let other = host_game(&server, 4, 30_000).await;
    let mut host = host_game(&server, 2, 30_000).await;
    let token = host.token.clone().expect("token");
    let id = host.game_id();
    // (Resuming its own seat is a resync, allowed: see below.)
    let _ = token;
    let attempts = [
        create("again", None, None),
        join(&other.game_id(), "again"),
        join(&id, "again"),
        resume(&other.game_id(), other.token.as_deref().expect("token")),
    ];
    // Waiting.
    for m in &attempts {
        host.send(m).await;
        host.error(ErrorCode::AlreadyInGame).await;
    }
    // Active.
    let _guest = join_game(&server, &id, "bob").await;
    host.sync_to(2).await;
    for m in &attempts {
        host.send(m).await;
        host.error(ErrorCode::AlreadyInGame).await;
    }
    // Still seated and playing.
    host.send(&capture(1)).await;
    assert!(matches!(host.next().await, ServerMessage::Captured { .. }));
}

#[tokio::test]
async fn not_in_game() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send(&START).await;
    c.error(ErrorCode::NotInGame).await;
    c.send(&capture(0)).await;
    c.error(ErrorCode::NotInGame).await;
    c.send(&capture_ref(99, 3)).await;
    c.error(ErrorCode::NotInGame).await;
}

#[tokio::test]
async fn not_host() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 4, 30_000).await;
    let mut guest = join_game(&server, &host.game_id(), "bob").await;
    guest.send(&START).await;
    guest.error(ErrorCode::NotHost).await;
    assert_eq!(guest.replica.as_ref().unwrap().status, GameStatus::Waiting);
    host.send(&START).await;
    host.until(|m| matches!(m, ServerMessage::Started { .. }))
        .await;
}

#[tokio::test]
async fn not_enough_players_counts_connected_seats() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 4, 30_000).await;
    host.send(&START).await;
    host.error(ErrorCode::NotEnoughPlayers).await;
    // A second seat that is not connected does not count.
    let guest = join_game(&server, &host.game_id(), "bob").await;
    let token = guest.token.clone().expect("token");
    drop(guest);
    host.until(|m| {
        matches!(
            m,
            ServerMessage::Presence {
                connected: false,
                ..
            }
        )
    })
    .await;
    host.send(&START).await;
    host.error(ErrorCode::NotEnoughPlayers).await;
    // Back: now it can start.
    let _guest = resume_seat(&server, &host.game_id(), &token).await;
    host.until(|m| {
        matches!(
            m,
            ServerMessage::Presence {
                connected: true,
                ..
            }
        )
    })
    .await;
    host.send(&START).await;
    host.until(|m| matches!(m, ServerMessage::Started { .. }))
        .await;
}

#[tokio::test]
async fn bad_token() {
    let server = TestServer::start().await;
    let a = host_game(&server, 4, 30_000).await;
    let b = host_game(&server, 4, 30_000).await;
    let mut c = server.connect().await;
    for token in [
        "",
        "not a token",
        "00112233445566778899aabbccddeeff",
        b.token.as_deref().expect("token"), // another game's
    ] {
        c.send(&resume(&a.game_id(), token)).await;
        c.error(ErrorCode::BadToken).await;
    }
    // The right one works.
    c.send(&resume(&a.game_id(), a.token.as_deref().expect("token")))
        .await;
    c.joined().await;
}

#[tokio::test]
async fn rejected_not_active_before_the_start() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 2, 30_000).await;
    host.send(&capture_ref(40, 1)).await;
    host.rejected(40, Some(1), RejectReason::NotActive).await;
    host.send(&capture(0)).await;
    host.rejected(0, None, RejectReason::NotActive).await;
}

#[tokio::test]
async fn rejected_out_of_range_echoes_cell_and_ref() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    for (cell, reference) in [
        (81, Some(1)),
        (-1, Some(u32::MAX)),
        (1_000_000, None),
        (i64::MIN, Some(0)),
    ] {
        p[0].send(&transport::ClientMessage::Capture { cell, reference })
            .await;
        p[0].rejected(cell, reference, RejectReason::OutOfRange)
            .await;
    }
    // Out of range is checked before the status: the same before a start.
    let mut waiting = host_game(&server, 2, 30_000).await;
    waiting.send(&capture_ref(81, 5)).await;
    waiting
        .rejected(81, Some(5), RejectReason::OutOfRange)
        .await;
}

#[tokio::test]
async fn rejected_taken_echoes_ref_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    p[0].send(&capture_ref(7, 1)).await;
    for c in p.iter_mut() {
        c.sync_to(3).await;
    }
    p[1].send(&capture_ref(7, 2)).await;
    p[1].rejected(7, Some(2), RejectReason::Taken).await;
    // The owner cannot re-capture its own cell either.
    p[0].send(&capture_ref(7, 3)).await;
    p[0].rejected(7, Some(3), RejectReason::Taken).await;
    let game = p[0].replica.as_ref().expect("joined");
    assert_eq!(game.cells[7], 1);
    assert_eq!(game.seq, 3, "no event for a refusal");
    // Both see the next real capture as seq 4 (the harness checks seq).
    p[1].send(&capture(8)).await;
    for c in p.iter_mut() {
        c.sync_to(4).await;
    }
}

#[tokio::test]
async fn rejected_not_active_after_the_deadline() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 1_000).await;
    p[1].until(|m| matches!(m, ServerMessage::GameOver { .. }))
        .await;
    p[1].send(&capture_ref(3, 9)).await;
    p[1].rejected(3, Some(9), RejectReason::NotActive).await;
}

#[tokio::test]
async fn resume_after_leaving_an_active_game_is_not_in_game() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    let token = p[1].token.clone().expect("token");
    p[1].send(&LEAVE).await;
    assert_eq!(p[1].closed_now().await, Some(1000));
    p[0].until(|m| matches!(m, ServerMessage::PlayerLeft { player: 1, .. }))
        .await;
    let mut c = server.connect().await;
    c.send(&resume(&p[0].game_id(), &token)).await;
    c.error(ErrorCode::NotInGame).await;
}

/// Protocol §2: a client that sees a seq gap sends `resume` for a fresh
/// snapshot, on the connection that holds the seat.
#[tokio::test]
async fn resuming_the_seat_this_connection_holds_is_a_resync() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 2, 30_000).await;
    let id = host.game_id();
    let token = host.token.clone().expect("token");
    // Waiting.
    host.send(&resume(&id, &token)).await;
    let snapshot = host.joined().await;
    assert_eq!(snapshot.seq, 0);
    assert_eq!(host.me(), 0);
    // Active.
    let mut guest = join_game(&server, &id, "bob").await;
    host.sync_to(2).await;
    guest.send(&capture(4)).await;
    host.sync_to(3).await;
    guest.sync_to(3).await;
    host.send(&resume(&id, &token)).await;
    let snapshot = host.joined().await;
    assert_eq!((snapshot.seq, snapshot.cells[4]), (3, 2));
    // Nothing was announced, nothing closed: both play on, seq contiguous.
    host.send(&capture(5)).await;
    for c in [&mut host, &mut guest] {
        assert!(matches!(
            c.next().await,
            ServerMessage::Captured {
                seq: 4,
                cell: 5,
                player: 0,
                ..
            }
        ));
    }
}

/// A connection holds one seat: another seat's token in the same game is
/// not a resync. (It used to be accepted, leaving the connection linked to
/// both seats: every event delivered twice, and the first seat shown
/// connected forever.)
#[tokio::test]
async fn resuming_another_seat_of_the_same_game_is_already_in_game() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 3, 30_000).await;
    let id = p[0].game_id();
    let other = p[1].token.clone().expect("token");
    p[0].send(&resume(&id, &other)).await;
    p[0].error(ErrorCode::AlreadyInGame).await;
    // The seat's holder keeps it, and events arrive once each.
    p[2].send(&capture(9)).await;
    for c in p.iter_mut() {
        assert!(matches!(
            c.next().await,
            ServerMessage::Captured {
                seq: 4,
                cell: 9,
                player: 2,
                ..
            }
        ));
    }
    p[1].ping_pong(1).await;
    p[0].ping_pong(2).await;
}

/// Protocol §3: the operator may narrow the durations, and §5's
/// min_players decides when a host may start.
#[tokio::test]
async fn settings_narrowed_by_configuration() {
    let server = TestServer::start_with(gridcap::config::ServeOptions {
        min_duration_ms: Some(5_000),
        max_duration_ms: Some(10_000),
        min_players: Some(3),
        ..options()
    })
    .await;
    let mut c = server.connect().await;
    for (players, duration) in [
        (None, Some(4_999)),
        (None, Some(10_001)),
        // Fewer seats than min_players could never start.
        (Some(2), None),
    ] {
        c.send(&create("ada", players, duration)).await;
        c.error(ErrorCode::InvalidSettings).await;
    }
    // The default duration is brought into the configured range.
    c.send(&create("ada", None, None)).await;
    let game = c.joined().await;
    assert_eq!((game.max_players, game.duration_ms), (4, 10_000));
    // Two connected players are not enough any more; three are.
    let _b = join_game(&server, &game.id, "b").await;
    c.sync_to(1).await;
    c.send(&START).await;
    c.error(ErrorCode::NotEnoughPlayers).await;
    let _d = join_game(&server, &game.id, "d").await;
    c.sync_to(2).await;
    c.send(&START).await;
    assert!(matches!(
        c.next().await,
        ServerMessage::Started { seq: 3, .. }
    ));
}
