//! Protocol §3/§4: every client message on its happy path, and what each
//! player sees. (Refusals are in errors.rs, the rules of play in rules.rs.)

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::replica::assert_same_game;
use common::*;
use gridcap::config::ServeOptions;
use transport::protocol::{
    ClientMessage, ErrorCode, GameStatus, Number, OverReason, PlayerInfo, RejectReason,
    ServerMessage,
};

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// A server without the rate limit, for tests that capture many cells.
async fn unlimited() -> TestServer {
    TestServer::start_with(ServeOptions {
        rate_limit: Some(0),
        ..options()
    })
    .await
}

#[tokio::test]
async fn create_with_defaults() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.send(&create("  ada  ", None, None)).await;
    let ServerMessage::Joined { game, you, token } = c.next().await else {
        panic!("expected joined")
    };
    assert_eq!(you, 0, "the creator sits in seat 0");
    assert_eq!(token.len(), 32, "128 random bits as hex");
    assert!(token.chars().all(|ch| ch.is_ascii_hexdigit()));
    let id = uuid::Uuid::parse_str(&game.id).expect("a UUID");
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(id.to_string(), game.id, "canonical lowercase form");
    assert_eq!(game.status, GameStatus::Waiting);
    assert_eq!(game.seq, 0, "creating is not an event");
    assert_eq!(game.host, 0);
    assert_eq!(game.max_players, 4, "default seats");
    assert_eq!(game.duration_ms, 30_000, "default duration");
    assert_eq!(
        game.players,
        vec![PlayerInfo {
            id: 0,
            name: "ada".into(),
            color: 0,
            score: 0,
            connected: true,
        }],
        "the name is trimmed"
    );
    assert_eq!(game.cells, vec![0u8; 81]);
    assert_eq!(
        (game.remaining_ms, game.ends_at_ms, game.winners),
        (None, None, None),
        "only active games have a clock, only completed ones winners"
    );
}

#[tokio::test]
async fn create_with_settings_at_the_bounds() {
    let server = TestServer::start().await;
    for (players, duration, name) in [
        (2, 1_000, "x".repeat(24)),
        (8, 300_000, "é".repeat(24)),
        (5, 12_345, "Zoë the 3rd".into()),
    ] {
        let mut c = server.connect().await;
        c.send(&create(&name, Some(players), Some(duration))).await;
        let game = c.joined().await;
        assert_eq!(i64::from(game.max_players), players);
        assert_eq!(game.duration_ms as i64, duration);
        assert_eq!(game.players[0].name, name);
    }
}

#[tokio::test]
async fn join_is_announced_and_the_snapshot_includes_it() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 4, 30_000).await;
    let mut guest = join_game(&server, &host.game_id(), " bob ").await;
    assert_eq!(guest.me(), 1, "the lowest free seat");
    assert_ne!(guest.token, host.token, "every seat has its own token");
    let expected = PlayerInfo {
        id: 1,
        name: "bob".into(),
        color: 1,
        score: 0,
        connected: true,
    };
    assert_eq!(
        host.next().await,
        ServerMessage::PlayerJoined {
            seq: 1,
            player: expected.clone()
        }
    );
    let snapshot = guest.replica.clone().expect("joined");
    assert_eq!(snapshot.seq, 1, "the joiner's snapshot includes its join");
    assert_eq!(snapshot.players[1], expected);
    assert_same_game(&snapshot, host.replica.as_ref().expect("host"));

    // A third player: both earlier players hear of it, the joiner does not
    // get its own player_joined again (its next event is seq 3).
    let mut third = join_game(&server, &host.game_id(), "cy").await;
    assert_eq!(third.me(), 2);
    host.sync_to(2).await;
    guest.sync_to(2).await;
    third.send(&LEAVE).await;
    assert_eq!(third.closed_now().await, Some(1000));
    for c in [&mut host, &mut guest] {
        assert!(matches!(
            c.next().await,
            ServerMessage::PlayerLeft {
                seq: 3,
                player: 2,
                host: Some(0)
            }
        ));
    }
}

#[tokio::test]
async fn start_by_the_host_starts_the_clock_for_everyone() {
    let server = TestServer::start().await;
    let mut host = host_game(&server, 4, 20_000).await;
    let mut guest = join_game(&server, &host.game_id(), "bob").await;
    host.sync_to(1).await;
    let before = unix_ms();
    host.send(&START).await;
    for c in [&mut host, &mut guest] {
        let ServerMessage::Started {
            seq,
            ends_at_ms,
            remaining_ms,
        } = c.next().await
        else {
            panic!("expected started")
        };
        assert_eq!(seq, 2);
        assert!(
            remaining_ms <= 20_000 && remaining_ms > 15_000,
            "{remaining_ms}"
        );
        // The server's clock is this machine's: the deadline is start + 20 s.
        let after = unix_ms();
        assert!(
            ends_at_ms >= before + 20_000 - 1_000 && ends_at_ms <= after + 20_000 + 1_000,
            "ends_at_ms {ends_at_ms} not ~20 s after {before}..{after}"
        );
    }
    let a = host.replica.clone().expect("host");
    assert_eq!(a.status, GameStatus::Active);
    assert_same_game(&a, guest.replica.as_ref().expect("guest"));
    // A late snapshot shows the same clock.
    let watcher = resume_seat(&server, &host.game_id(), &guest.token.clone().unwrap()).await;
    let snap = watcher.replica.clone().expect("resumed");
    assert_eq!(snap.ends_at_ms, a.ends_at_ms);
    assert!(snap.remaining_ms.expect("active") <= a.remaining_ms.expect("active"));
}

#[tokio::test]
async fn a_game_that_fills_up_starts_by_itself() {
    let server = TestServer::start().await;
    let mut players = full_game(&server, 3, 30_000).await;
    for p in &mut players {
        let game = p.replica.as_ref().expect("joined");
        assert_eq!(game.seq, 3, "two joins and the start");
        assert!(game.remaining_ms.is_some() && game.ends_at_ms.is_some());
    }
}

#[tokio::test]
async fn captures_are_broadcast_with_the_new_score() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    p[0].send(&capture_ref(40, 7)).await;
    p[0].send(&capture(0)).await;
    p[1].send(&capture(80)).await;
    for c in p.iter_mut() {
        c.sync_to(5).await;
    }
    let game = p[0].replica.clone().expect("joined");
    assert_eq!(game.cells[40], 1, "cells hold owner + 1");
    assert_eq!(game.cells[0], 1);
    assert_eq!(game.cells[80], 2);
    assert_eq!(
        game.players.iter().map(|p| p.score).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_same_game(&game, p[1].replica.as_ref().expect("joined"));
    // Accepted captures get no `rejected`; the next answer is the pong.
    p[0].ping_pong(1).await;
}

#[tokio::test]
async fn ping_echoes_ts_exactly() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for ts in [
        Number::Unsigned(0),
        Number::Unsigned(1_700_000_000_123),
        Number::Unsigned(u64::MAX),
        Number::Signed(-7),
        Number::Float(1.5),
        Number::Float(2.0),
        Number::Float(-0.25),
        Number::Float(1_700_000_000_123.456),
    ] {
        let before = unix_ms();
        c.send(&ClientMessage::Ping { ts }).await;
        let ServerMessage::Pong {
            ts: echoed,
            server_ms,
        } = c.next().await
        else {
            panic!("expected pong")
        };
        assert_eq!(echoed, ts, "echoed exactly, same type");
        let after = unix_ms();
        assert!(
            server_ms + 1_000 >= before && server_ms <= after + 1_000,
            "server_ms {server_ms} vs {before}..{after}"
        );
    }
}

#[tokio::test]
async fn ping_works_inside_a_game_too() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    p[1].ping_pong(99).await;
}

#[tokio::test]
async fn disconnect_and_resume_are_announced_and_the_snapshot_matches() {
    let server = unlimited().await;
    let mut p = full_game(&server, 3, 30_000).await;
    let id = p[0].game_id();
    p[0].send(&capture(10)).await;
    p[2].send(&capture(11)).await;
    let seq = p[0].seq() + 2;
    sync_all(&mut p, seq).await;

    // Seat 2 drops without a close frame.
    let gone = p.pop().expect("three players");
    let token = gone.token.clone().expect("token");
    drop(gone);
    for c in p.iter_mut() {
        assert_eq!(
            c.next().await,
            ServerMessage::Presence {
                seq: seq + 1,
                player: 2,
                connected: false
            }
        );
    }
    // The game goes on without it.
    p[1].send(&capture(12)).await;
    sync_all(&mut p, seq + 2).await;

    let back = resume_seat(&server, &id, &token).await;
    assert_eq!(back.me(), 2, "the same seat");
    assert_eq!(back.token.as_deref(), Some(token.as_str()));
    let snapshot = back.replica.clone().expect("resumed");
    assert_eq!(snapshot.seq, seq + 3, "includes its own presence event");
    for c in p.iter_mut() {
        assert_eq!(
            c.next().await,
            ServerMessage::Presence {
                seq: seq + 3,
                player: 2,
                connected: true
            }
        );
        assert_same_game(&snapshot, c.replica.as_ref().expect("joined"));
    }
    assert_eq!(snapshot.cells[11], 3, "its capture survived the disconnect");
    p.push(back);
    // And it plays on.
    p[2].send(&capture(13)).await;
    sync_all(&mut p, seq + 4).await;
}

#[tokio::test]
async fn a_clean_close_is_a_disconnect_too() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    let guest = p.pop().expect("two");
    guest.close().await;
    assert_eq!(
        p[0].next().await,
        ServerMessage::Presence {
            seq: 3,
            player: 1,
            connected: false
        }
    );
}

#[tokio::test]
async fn resuming_on_a_second_connection_replaces_the_first_with_4001() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 30_000).await;
    let id = p[0].game_id();
    let token = p[1].token.clone().expect("token");
    let mut second = resume_seat(&server, &id, &token).await;
    assert_eq!(second.me(), 1);
    let mut first = p.pop().expect("two");
    assert_eq!(first.closed_now().await, Some(4001));
    // The seat never looked disconnected: no event at all.
    assert_eq!(second.seq(), p[0].seq());
    // The replaced connection's end must not mark the seat disconnected.
    first.ended().await;
    second.send(&capture(5)).await;
    assert!(matches!(
        p[0].next().await,
        ServerMessage::Captured {
            cell: 5,
            player: 1,
            ..
        }
    ));
    second.sync_to(p[0].seq()).await;
    assert!(p[0].replica.as_ref().unwrap().players[1].connected);
}

#[tokio::test]
async fn leave_is_answered_with_close_1000() {
    let server = TestServer::start().await;
    // In a game.
    let mut host = host_game(&server, 2, 30_000).await;
    host.send(&LEAVE).await;
    assert_eq!(host.closed_now().await, Some(1000));
    // Outside any game.
    let mut idle = server.connect().await;
    idle.send(&LEAVE).await;
    assert_eq!(idle.closed_now().await, Some(1000));
}

#[tokio::test]
async fn a_completed_game_can_be_resumed_for_its_final_snapshot() {
    let server = TestServer::start().await;
    let mut p = full_game(&server, 2, 1_000).await;
    p[0].send(&capture(3)).await;
    for c in p.iter_mut() {
        c.until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await;
    }
    let id = p[0].game_id();
    let token = p[1].token.clone().expect("token");
    let final_state = p[0].replica.clone().expect("joined");
    assert_eq!(final_state.status, GameStatus::Completed);
    assert_eq!(final_state.winners, Some(vec![0]));

    // From another connection, while the original one is still open...
    let again = resume_seat(&server, &id, &token).await;
    assert_same_game(again.replica.as_ref().expect("resumed"), &final_state);
    // ...which is replaced, as always.
    assert_eq!(p[1].closed_now().await, Some(4001));
    // And after a disconnect (which changes nothing in a finished game).
    again.close().await;
    let again = resume_seat(&server, &id, &token).await;
    assert_same_game(again.replica.as_ref().expect("resumed"), &final_state);
}

#[tokio::test]
async fn play_again_on_the_same_connection() {
    let server = unlimited().await;
    let mut p = full_game(&server, 2, 30_000).await;
    let first_id = p[0].game_id();
    for cell in 0..81 {
        p[usize::from(cell % 2 == 1)].send(&capture(cell)).await;
    }
    for c in p.iter_mut() {
        let over = c
            .until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await;
        assert!(matches!(
            over,
            ServerMessage::GameOver {
                reason: OverReason::BoardFull,
                ..
            }
        ));
    }
    // The host creates a new game on the same connection...
    p[0].send(&create("host", Some(2), Some(30_000))).await;
    let second = p[0].joined().await;
    assert_ne!(second.id, first_id);
    assert_eq!((second.status, second.seq), (GameStatus::Waiting, 0));
    // ...and the guest joins it on its own same connection.
    p[1].send(&join(&second.id, "guest")).await;
    let joined = p[1].joined().await;
    assert_eq!(joined.id, second.id);
    assert_eq!(
        joined.status,
        GameStatus::Waiting,
        "before the start its join causes"
    );
    p[1].sync_to(2).await;
    assert_eq!(
        p[1].replica.as_ref().map(|g| g.status),
        Some(GameStatus::Active)
    );
    p[0].sync_to(2).await;
    // They play the new game; the old one sends nothing more.
    p[1].send(&capture(40)).await;
    for c in p.iter_mut() {
        assert!(matches!(
            c.next().await,
            ServerMessage::Captured {
                seq: 3,
                cell: 40,
                player: 1,
                score: 1
            }
        ));
    }
    // Now in an active game again: no third game.
    p[0].send(&create("host", None, None)).await;
    p[0].error(ErrorCode::AlreadyInGame).await;
}

#[tokio::test]
async fn play_again_by_resuming_another_game() {
    let server = TestServer::start().await;
    let mut done = full_game(&server, 2, 1_000).await;
    for c in done.iter_mut() {
        c.until(|m| matches!(m, ServerMessage::GameOver { .. }))
            .await;
    }
    // A waiting game elsewhere whose seat 1 dropped.
    let other = host_game(&server, 3, 30_000).await;
    let seat = join_game(&server, &other.game_id(), "x").await;
    let token = seat.token.clone().expect("token");
    drop(seat);
    // The finished player takes that seat over on its existing connection.
    done[0].send(&resume(&other.game_id(), &token)).await;
    let snapshot = done[0].joined().await;
    assert_eq!(snapshot.id, other.game_id());
    assert_eq!(done[0].me(), 1);
    assert_eq!(snapshot.status, GameStatus::Waiting);
    done[0].send(&capture(0)).await;
    done[0].rejected(0, None, RejectReason::NotActive).await;
}

/// Protocol §2: a token is never broadcast. Checked on the raw bytes every
/// other player receives (a typed decoder would ignore an extra key).
#[tokio::test]
async fn a_token_only_ever_reaches_its_own_seat() {
    use common::raw::{OP_BINARY, RawConn};
    let server = TestServer::start().await;
    let mut host = RawConn::connect(server.addr, None).await;
    let create = transport::codec::encode(&create("host", Some(2), Some(30_000))).unwrap();
    host.send_frame(OP_BINARY, &create).await.unwrap();
    let joined = host.read_frame(WAIT).await.unwrap().unwrap();
    let ServerMessage::Joined { game, token, .. } =
        transport::codec::decode_server(&joined.payload).unwrap()
    else {
        panic!("expected joined")
    };
    let guest = join_game(&server, &game.id, "bob").await;
    let guest_token = guest.token.clone().unwrap();
    assert_ne!(guest_token, token);
    // player_joined, then started.
    for _ in 0..2 {
        let frame = host.read_frame(WAIT).await.unwrap().unwrap();
        assert_eq!(frame.opcode, OP_BINARY);
        let event = transport::codec::decode_server(&frame.payload).unwrap();
        assert!(event.seq().is_some(), "{event:?}");
        assert!(
            !frame
                .payload
                .windows(guest_token.len())
                .any(|w| w == guest_token.as_bytes()),
            "a broadcast carries the joiner's token: {event:?}"
        );
    }
}
