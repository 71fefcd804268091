//! Protocol §1 heartbeat, and the slow-consumer policy: a client that does
//! not answer pings is closed after the idle timeout, one that keeps reading
//! stays; a client that stops reading is closed (1008 "slow consumer") or
//! dropped with bounded memory, and never delays the other players.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::raw::{OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, RawConn, encode_masked};
use common::replica::assert_same_game;
use common::*;
use gridcap::config::ServeOptions;
use tokio::time::Instant;
use transport::codec;
use transport::protocol::ServerMessage;

/// Pings every 200 ms; idle after 1.5 s, so that a client that reads must
/// have missed answering seven pings in a row before it is cut, which a
/// stall of a busy machine does not cause.
const PING_MS: u64 = 200;
const IDLE_MS: u64 = 1_500;

async fn heartbeat_server() -> TestServer {
    TestServer::start_with(ServeOptions {
        ping_interval_ms: Some(PING_MS),
        idle_timeout_ms: Some(IDLE_MS),
        ..options()
    })
    .await
}

/// Sends a message over a raw connection.
async fn raw_send(raw: &mut RawConn, message: &transport::ClientMessage) {
    let bytes = codec::encode(message).expect("encode");
    raw.send_frame(OP_BINARY, &bytes).await.expect("send");
}

/// Reads raw frames until the first binary one, decoded.
async fn raw_message(raw: &mut RawConn) -> ServerMessage {
    loop {
        let frame = raw.read_frame(WAIT).await.expect("a frame").expect("open");
        if frame.opcode == OP_BINARY {
            return codec::decode_server(&frame.payload).expect("decode");
        }
    }
}

#[tokio::test]
async fn a_client_that_never_pongs_is_closed_after_the_idle_timeout() {
    let server = heartbeat_server().await;
    let mut host = host_game(&server, 3, 30_000).await;
    // Joins a game, then stays silent: reading raw bytes answers no ping.
    let mut raw = RawConn::connect(server.addr, None).await;
    let joined_at = Instant::now();
    raw_send(&mut raw, &join(&host.game_id(), "silent")).await;
    assert!(matches!(
        raw_message(&mut raw).await,
        ServerMessage::Joined { .. }
    ));
    // The host keeps reading meanwhile (and so answers its own pings).
    let watch_raw = async {
        let mut pings = 0;
        loop {
            let frame = raw
                .read_frame(WAIT)
                .await
                .expect("a frame")
                .expect("a close before EOF");
            match frame.opcode {
                OP_PING => pings += 1,
                OP_CLOSE => return (pings, frame, joined_at.elapsed()),
                other => panic!("unexpected opcode {other}"),
            }
        }
    };
    // The others see the seat drop.
    let seat_drops = host.until(|m| {
        matches!(
            m,
            ServerMessage::Presence {
                player: 1,
                connected: false,
                ..
            }
        )
    });
    let ((pings, close, after), _) = tokio::join!(watch_raw, seat_drops);
    assert_eq!(close.close_code(), Some(1008));
    assert_eq!(&close.payload[2..], b"idle timeout");
    assert!(
        pings >= 2,
        "pinged every {PING_MS} ms before giving up: {pings}"
    );
    // The join was the last thing it sent: not closed before the idle
    // timeout (the upper bound is `read_frame`'s WAIT: a close must come).
    assert!(
        after >= Duration::from_millis(IDLE_MS - 50),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_client_that_reads_answers_pings_and_stays_past_the_idle_timeout() {
    let server = heartbeat_server().await;
    let mut c = server.connect().await;
    let since = Instant::now();
    // It sends nothing but pongs (tungstenite answers pings as it reads).
    let mut pings = 0;
    while since.elapsed() < Duration::from_millis(2 * IDLE_MS) {
        match c.frame().await {
            Frame::Ping => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 4, "a ping every {PING_MS} ms: {pings}");
    c.ping_pong(1).await;
}

#[tokio::test]
async fn messages_count_as_activity_too() {
    let server = heartbeat_server().await;
    // A raw client that never pongs but sends a message more often than
    // the idle timeout stays open.
    let mut raw = RawConn::connect(server.addr, None).await;
    let since = Instant::now();
    let mut n = 0u64;
    while since.elapsed() < Duration::from_millis(2 * IDLE_MS) {
        // Wait for a server ping (one each PING_MS), then say something.
        let frame = raw.read_frame(WAIT).await.expect("a frame").expect("open");
        match frame.opcode {
            OP_PING => {
                n += 1;
                raw_send(
                    &mut raw,
                    &transport::ClientMessage::Ping {
                        ts: transport::protocol::Number::Unsigned(n),
                    },
                )
                .await;
            }
            OP_BINARY => {}
            other => panic!(
                "unexpected opcode {other} (close: {:?})",
                frame.close_code()
            ),
        }
    }
    assert!(n >= 4);
}

/// A server whose sockets hold little in flight: a 4 KiB kernel send
/// buffer, a 256-byte WebSocket write buffer, 16 queued frames per
/// connection. The client below also asks for a 4 KiB receive buffer, so
/// a client that stops reading blocks the server's writes after ~100 frames.
async fn small_pipes(write_timeout_ms: u64) -> TestServer {
    TestServer::start_with_send_buffer(
        ServeOptions {
            outbox_capacity: Some(16),
            ws_write_buffer: Some(256),
            write_timeout_ms: Some(write_timeout_ms),
            rate_limit: Some(0),
            ..options()
        },
        4096,
    )
    .await
}

/// A game of three: `a` (seat 0), the raw client `slow` (seat 1, joined and
/// then never reading), and `b` (seat 2). Returns the slow seat's token and
/// the seq of its `joined` snapshot. In stateless and stateful runs `slow`
/// is on the other node than `a`: its events come through Redis pub/sub, or
/// through the relay to the game's owner.
async fn table_with_a_stalled_reader(
    server: &TestServer,
) -> (TestClient, RawConn, TestClient, String, u64) {
    let mut a = host_game(server, 3, 60_000).await;
    let mut slow = RawConn::connect(server.next_addr(), Some(4096)).await;
    raw_send(&mut slow, &join(&a.game_id(), "slow")).await;
    let ServerMessage::Joined { token, game, .. } = raw_message(&mut slow).await else {
        panic!("expected joined")
    };
    let b = join_game(server, &a.game_id(), "b").await;
    a.sync_to(b.seq()).await;
    (a, slow, b, token, game.seq)
}

/// The other players make events: `b` drops and resumes `cycles` times
/// (two presence events each) while `a` captures a cell in each of the
/// first 40 cycles (cells 0..40; the game must not end). Each
/// round trip is timed; returns the slowest and `b`'s last connection.
/// The time is no latency claim: a game that waited on a blocked write
/// would stall for the whole write timeout.
async fn churn(
    server: &TestServer,
    a: &mut TestClient,
    mut b: TestClient,
    cycles: usize,
) -> (Duration, TestClient) {
    let id = a.game_id();
    let token = b.token.clone().expect("token");
    let mut slowest = Duration::ZERO;
    for i in 0..cycles {
        let started = Instant::now();
        drop(b);
        a.until(|m| {
            matches!(
                m,
                ServerMessage::Presence {
                    player: 2,
                    connected: false,
                    ..
                }
            )
        })
        .await;
        b = resume_seat(server, &id, &token).await;
        a.until(|m| {
            matches!(
                m,
                ServerMessage::Presence {
                    player: 2,
                    connected: true,
                    ..
                }
            )
        })
        .await;
        if i < 40 {
            a.send(&capture(i as i64)).await;
            a.until(|m| matches!(m, ServerMessage::Captured { player: 0, .. }))
                .await;
        }
        slowest = slowest.max(started.elapsed());
    }
    (slowest, b)
}

/// Reads until `seat` shows as disconnected in the client's replica. The
/// stalled seat may be dropped while `churn` is still running (the kernel
/// trickles data into a stalled reader as it compacts its receive queue, so
/// a blocked write can finish and the overflow close go out early), so this
/// waits for the state rather than for the event.
async fn until_disconnected(c: &mut TestClient, seat: u8) {
    let connected =
        |c: &TestClient| c.replica.as_ref().expect("joined").players[usize::from(seat)].connected;
    while connected(c) {
        c.next().await;
    }
}

#[tokio::test]
async fn a_stalled_reader_is_closed_as_a_slow_consumer_without_slowing_the_others() {
    // Writes may block up to 10 s: the overflow, not the timeout, ends it.
    let server = small_pipes(10_000).await;
    let (mut a, mut slow, b, token, joined_seq) = table_with_a_stalled_reader(&server).await;
    let first_seq = a.seq();

    // 300 cycles: ~680 events, far beyond ~100 in flight plus 16 queued.
    let (slowest, mut b) = churn(&server, &mut a, b, 300).await;
    let last_seq = a.seq();
    assert!(last_seq - first_seq > 600);
    // The game never waited for the stalled connection, whose writes block
    // for up to 10 s: half that is far from any scheduling delay.
    assert!(
        slowest < Duration::from_secs(5),
        "a round trip took {slowest:?}: the game waited for a blocked write?"
    );
    b.sync_to(last_seq).await;

    // Now the stalled client reads what reached it: a prefix of the events,
    // then the close. Had its queue grown instead of overflowing, it would
    // now receive every event up to `last_seq`.
    let last_seen = slow.events_then_slow_consumer_close(joined_seq).await;
    // How much reached it varies (the kernel lets a stalled reader's buffer
    // fill in fits and starts), but everything after the overflow was
    // dropped with the queue: far more than the 16 frames it may hold.
    assert!(last_seen > joined_seq, "some events reached it first");
    assert!(
        last_seen + 100 < last_seq,
        "the queue was dropped, not kept: received up to seq {last_seen} of {last_seq}"
    );
    let _ = slow.send_frame(OP_CLOSE, &1000u16.to_be_bytes()).await;

    // The others see it go, and play on.
    for c in [&mut a, &mut b] {
        until_disconnected(c, 1).await;
    }
    a.send(&capture(80)).await;
    for c in [&mut a, &mut b] {
        c.until(|m| matches!(m, ServerMessage::Captured { cell: 80, .. }))
            .await;
    }

    // The seat was kept: it resumes with a correct snapshot.
    let mut back = resume_seat(&server, &a.game_id(), &token).await;
    assert_eq!(back.me(), 1);
    for c in [&mut a, &mut b] {
        c.until(|m| {
            matches!(
                m,
                ServerMessage::Presence {
                    player: 1,
                    connected: true,
                    ..
                }
            )
        })
        .await;
        assert_same_game(
            back.replica.as_ref().expect("resumed"),
            c.replica.as_ref().expect("joined"),
        );
    }
    back.send(&capture(79)).await;
    back.until(|m| {
        matches!(
            m,
            ServerMessage::Captured {
                cell: 79,
                player: 1,
                ..
            }
        )
    })
    .await;
}

#[tokio::test]
async fn a_reader_that_never_comes_back_is_dropped_after_the_write_timeout() {
    let server = small_pipes(500).await;
    let (mut a, slow, b, _token, _) = table_with_a_stalled_reader(&server).await;
    // Fill its pipe, then just wait: the blocked write times out and the
    // server lets go of the connection (and its queue).
    // (Whether the game waits on a blocked write is the test above's: with
    // a 500 ms write timeout, a wait cannot be told from a busy machine.)
    let (_slowest, _b) = churn(&server, &mut a, b, 150).await;
    // Each read below is bounded by WAIT, 20 times the write timeout.
    until_disconnected(&mut a, 1).await;
    drop(slow);
}

/// A message that never ends (issue 18): a binary frame without FIN, then
/// empty continuation frames without FIN, forever. tungstenite assembles
/// them and no message ever reaches the session, so they are no activity:
/// the connection is closed at the idle timeout like a silent one.
#[tokio::test]
async fn endless_empty_continuation_frames_are_no_activity() {
    let server = heartbeat_server().await;
    let mut raw = RawConn::connect(server.addr, None).await;
    let not_final = |opcode: u8, payload: &[u8]| {
        let mut frame = encode_masked(opcode, payload);
        frame[0] &= 0x7f;
        frame
    };
    raw.send_wire(&not_final(OP_BINARY, &[0x81]))
        .await
        .expect("send");
    let empty = not_final(OP_CONTINUATION, &[]);
    let since = Instant::now();
    let close = loop {
        // Fifty more empty fragments at every server ping (never a pong).
        let frame = raw.read_frame(WAIT).await.expect("a frame");
        match frame {
            Some(f) if f.opcode == OP_PING => {
                raw.send_wire(&empty.repeat(50)).await.expect("send");
            }
            Some(f) if f.opcode == OP_CLOSE => break f,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.close_code(), Some(1008));
    assert!(
        since.elapsed() >= Duration::from_millis(IDLE_MS - 50),
        "closed after {:?}, before the idle timeout",
        since.elapsed()
    );
}
