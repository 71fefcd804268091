//! Protocol §1 and §5 limits: malformed input, the bad-message budget, the
//! size limit and the rate limit. Every abuser plays in a game with two
//! well-behaved players, who must keep playing normally afterwards.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gridcap::config::ServeOptions;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use transport::codec;
use transport::protocol::{ErrorCode, ServerMessage};

/// A started game of three: the abuser `x` (seat 2) and players `a`, `b`.
struct Table {
    a: TestClient,
    b: TestClient,
    x: TestClient,
}

/// The test settings with a token bucket of `per_second` and `burst`.
fn rate_limited(per_second: u32, burst: u32) -> ServeOptions {
    ServeOptions {
        rate_limit: Some(per_second),
        rate_burst: Some(burst),
        ..options()
    }
}

async fn table(server: &TestServer) -> Table {
    let mut p = full_game(server, 3, 60_000).await;
    let x = p.pop().expect("three");
    let b = p.pop().expect("three");
    let a = p.pop().expect("three");
    Table { a, b, x }
}

impl Table {
    /// The abuser's connection still works and it is still seated: a ping
    /// is answered and its capture of cell 40 is broadcast; then the others
    /// keep playing.
    async fn abuser_still_plays(&mut self, ts: u64) {
        self.x.ping_pong(ts).await;
        self.x.send(&capture(40)).await;
        self.x
            .until(|m| {
                matches!(
                    m,
                    ServerMessage::Captured {
                        cell: 40,
                        player: 2,
                        ..
                    }
                )
            })
            .await;
        self.others_keep_playing(false).await;
    }

    /// The two others see the abuser's seat drop (when it was closed), then
    /// each captures a free cell and both see both captures, in seq order.
    async fn others_keep_playing(&mut self, abuser_closed: bool) {
        if abuser_closed {
            for c in [&mut self.a, &mut self.b] {
                c.until(|m| {
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
            }
        }
        let free = free_cells(&self.a);
        let (cell_a, cell_b) = (free[free.len() - 1], free[free.len() - 2]);
        self.a.send(&capture(cell_a)).await;
        self.b.send(&capture(cell_b)).await;
        for c in [&mut self.a, &mut self.b] {
            for cell in [cell_a, cell_b] {
                c.until(|m| matches!(m, ServerMessage::Captured { cell: got, .. } if i64::from(*got) == cell))
                    .await;
            }
            let game = c.replica.as_ref().expect("joined");
            assert_eq!(game.cells[cell_a as usize], 1);
            assert_eq!(game.cells[cell_b as usize], 2);
        }
    }
}

fn free_cells(c: &TestClient) -> Vec<i64> {
    let game = c.replica.as_ref().expect("joined");
    (0..81).filter(|&i| game.cells[i as usize] == 0).collect()
}

fn msgpack(value: serde_json::Value) -> Vec<u8> {
    codec::encode(&value).expect("encode").to_vec()
}

/// Frames that are not one valid message: each is `bad_message`.
fn bad_messages() -> Vec<(&'static str, Vec<u8>)> {
    let ping = msgpack(json!({"t": "ping", "ts": 1}));
    vec![
        ("empty frame", vec![]),
        ("never-used byte 0xc1", vec![0xc1]),
        ("truncated map", vec![0x82, 0xa1, b't']),
        ("an array", vec![0x93, 1, 2, 3]),
        ("a string", b"\xa5hello".to_vec()),
        ("two values in one frame", [ping.clone(), ping].concat()),
        ("no t", msgpack(json!({"cell": 3}))),
        ("unknown t", msgpack(json!({"t": "fly", "cell": 3}))),
        ("t not a string", msgpack(json!({"t": 5}))),
        (
            "cell as a string",
            msgpack(json!({"t": "capture", "cell": "3"})),
        ),
        (
            "cell as a float",
            msgpack(json!({"t": "capture", "cell": 3.5})),
        ),
        ("cell missing", msgpack(json!({"t": "capture"}))),
        (
            "negative ref",
            msgpack(json!({"t": "capture", "cell": 3, "ref": -1})),
        ),
        (
            "ref as a string",
            msgpack(json!({"t": "capture", "cell": 3, "ref": "r"})),
        ),
        (
            "name as a number",
            msgpack(json!({"t": "create", "name": 5})),
        ),
        (
            "max_players as a string",
            msgpack(json!({"t": "create", "name": "a", "max_players": "4"})),
        ),
        (
            "game as a number",
            msgpack(json!({"t": "join", "game": 7, "name": "a"})),
        ),
        ("ts as a string", msgpack(json!({"t": "ping", "ts": "now"}))),
        ("ts missing", msgpack(json!({"t": "ping"}))),
    ]
}

#[tokio::test]
async fn a_text_frame_is_bad_frame_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut t = table(&server).await;
    t.x.send_raw(Message::Text("{\"t\":\"ping\",\"ts\":1}".into()))
        .await;
    t.x.error(ErrorCode::BadFrame).await;
    // Still seated: it can capture.
    t.abuser_still_plays(7).await;
}

#[tokio::test]
async fn malformed_messages_are_bad_message_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut t = table(&server).await;
    let cases = bad_messages();
    assert!(cases.len() < 20, "stay under the bad-message budget");
    for (what, bytes) in cases {
        t.x.send_bytes(bytes).await;
        match t.x.next().await {
            ServerMessage::Error { code, .. } => {
                assert_eq!(code, ErrorCode::BadMessage, "{what}");
            }
            other => panic!("{what}: expected bad_message, got {other:?}"),
        }
    }
    t.abuser_still_plays(1).await;
}

#[tokio::test]
async fn unknown_keys_are_ignored() {
    let server = TestServer::start().await;
    let mut t = table(&server).await;
    t.x.send_bytes(msgpack(
        json!({"t": "ping", "ts": 5, "future": {"x": [1, 2]}}),
    ))
    .await;
    assert!(matches!(t.x.next().await, ServerMessage::Pong { .. }));
    t.x.send_bytes(msgpack(
        json!({"t": "capture", "cell": 3, "ref": 9, "why": "because"}),
    ))
    .await;
    t.x.until(|m| matches!(m, ServerMessage::Captured { cell: 3, .. }))
        .await;
    t.x.send_bytes(msgpack(json!({"t": "start", "extra": true})))
        .await;
    t.x.error(ErrorCode::AlreadyStarted).await;
}

#[tokio::test]
async fn the_20th_bad_message_closes_with_1008() {
    let server = TestServer::start().await;
    let mut t = table(&server).await;
    // 25 sent at once; the server answers 20, then closes.
    for i in 0..25 {
        if i % 3 == 0 {
            t.x.send_raw(Message::Text("hi".into())).await;
        } else {
            t.x.send_bytes(vec![0xc1]).await;
        }
    }
    let mut errors = Vec::new();
    let close = loop {
        match t.x.recv().await {
            Frame::Message(ServerMessage::Error { code, .. }) => errors.push(code),
            Frame::Closed(frame) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(errors.len(), 20, "{errors:?}");
    let expected: Vec<ErrorCode> = (0..20)
        .map(|i| {
            if i % 3 == 0 {
                ErrorCode::BadFrame
            } else {
                ErrorCode::BadMessage
            }
        })
        .collect();
    assert_eq!(errors, expected);
    assert_eq!(close.map(|c| c.0), Some(1008));
    t.others_keep_playing(true).await;
}

#[tokio::test]
async fn bad_messages_count_per_connection_not_in_a_row() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for _ in 0..19 {
        c.send_bytes(vec![0xc1]).await;
        c.error(ErrorCode::BadMessage).await;
    }
    // Valid messages in between do not reset the count.
    c.ping_pong(1).await;
    c.send_bytes(vec![0xc1]).await;
    c.error(ErrorCode::BadMessage).await;
    assert_eq!(c.closed_now().await, Some(1008));
}

/// A `ping` whose encoding is exactly `size` bytes (padded with an unknown
/// key, which the server ignores).
fn ping_of_size(size: usize) -> Vec<u8> {
    let base = msgpack(json!({"t": "ping", "ts": 1, "pad": ""})).len();
    // str8 header for < 256 bytes, str16 for more: try the few candidates.
    for extra in [0usize, 1, 2] {
        let n = size.saturating_sub(base + extra);
        let bytes = msgpack(json!({"t": "ping", "ts": 1, "pad": "x".repeat(n)}));
        if bytes.len() == size {
            return bytes;
        }
    }
    panic!("cannot build a ping of {size} bytes");
}

#[tokio::test]
async fn a_message_over_the_default_4_kib_closes_with_1009() {
    let server = TestServer::start().await;
    let mut t = table(&server).await;
    // Exactly the limit is fine.
    t.x.send_bytes(ping_of_size(4096)).await;
    assert!(matches!(t.x.next().await, ServerMessage::Pong { .. }));
    // One byte more is not.
    t.x.send_bytes(ping_of_size(4097)).await;
    assert_eq!(t.x.closed_now().await, Some(1009));
    t.others_keep_playing(true).await;
}

#[tokio::test]
async fn a_message_over_a_configured_limit_closes_with_1009() {
    let server = TestServer::start_with(ServeOptions {
        max_message_bytes: Some(256),
        ..options()
    })
    .await;
    let mut t = table(&server).await;
    t.x.send_bytes(ping_of_size(256)).await;
    assert!(matches!(t.x.next().await, ServerMessage::Pong { .. }));
    // Far over the limit: the server does not read it all first.
    t.x.send_bytes(ping_of_size(60_000)).await;
    assert_eq!(t.x.closed_now().await, Some(1009));
    t.others_keep_playing(true).await;
}

/// The limit is on messages, not frames: fragments that are each small
/// but add up to more than the limit close with 1009; a fragmented message
/// within the limit is one message like any other.
#[tokio::test]
async fn the_size_limit_applies_to_whole_fragmented_messages() {
    use common::raw::{OP_BINARY, RawConn};
    let server = TestServer::start().await;
    let mut raw = RawConn::connect(server.addr, None).await;
    raw.send_fragmented(OP_BINARY, &ping_of_size(4096), 1000)
        .await
        .expect("send");
    let frame = raw.read_frame(WAIT).await.expect("a frame").expect("open");
    assert_eq!(frame.opcode, OP_BINARY);
    let pong = codec::decode_server(&frame.payload).expect("decode");
    assert!(matches!(pong, ServerMessage::Pong { .. }), "{pong:?}");

    raw.send_fragmented(OP_BINARY, &ping_of_size(6000), 1000)
        .await
        .expect("send");
    let frame = raw
        .read_frame(WAIT)
        .await
        .expect("a frame")
        .expect("a close");
    assert_eq!(frame.close_code(), Some(1009));
}

/// A burst beyond the bucket: the excess is answered `rate_limited` and
/// dropped, and the connection stays open.
#[tokio::test]
async fn a_short_flood_is_rate_limited_and_dropped_but_not_closed() {
    // 10 per second (a token per 100 ms), bursts of 40, 100 strikes.
    let server = TestServer::start_with(ServeOptions {
        ping_interval_ms: Some(200),
        ..rate_limited(10, 40)
    })
    .await;
    let since = std::time::Instant::now();
    let mut t = table(&server).await;
    for cell in 0..60 {
        t.x.feed(&capture_ref(cell, cell as u32)).await;
    }
    t.x.flush().await;
    let mut mine = Vec::new();
    let mut limited = 0;
    while mine.len() + limited < 60 {
        match t.x.next().await {
            ServerMessage::Captured {
                cell, player: 2, ..
            } => mine.push(i64::from(cell)),
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The bucket held 40 minus the join, plus what refilled meanwhile: at
    // most a token per 100 ms since x connected (a slow machine takes longer
    // and so lets more through, which is right).
    let refilled = since.elapsed().as_millis() / 100 + 1;
    let passed = mine.len() as u128;
    assert!(
        (38..=39 + refilled).contains(&passed),
        "{passed} passed, {refilled} refilled"
    );
    assert_eq!(limited, 60 - mine.len());
    t.others_keep_playing(false).await;
    // Dropped means dropped: the limited captures never happened.
    t.x.sync_to(t.a.seq()).await;
    let game = t.a.replica.clone().expect("joined");
    for cell in 0..60 {
        let owned_by_x = game.cells[cell as usize] == 3;
        assert_eq!(owned_by_x, mine.contains(&cell), "cell {cell}");
    }
    // Once tokens are back, the connection is served again. Four server
    // pings span at least 600 ms (six tokens); answering them costs four
    // (pongs count too), which leaves the ping below at least two.
    let mut pings = 0;
    while pings < 4 {
        if t.x.frame().await == Frame::Ping {
            pings += 1;
        }
    }
    t.x.ping_pong(3).await;
}

/// A flood that goes on: after `rate_strikes` rate-limited messages in a
/// row, the connection is closed with 1008.
#[tokio::test]
async fn a_persistent_flood_is_closed_with_1008() {
    // One token per second: nothing is refilled during the flood.
    let server = TestServer::start_with(ServeOptions {
        rate_strikes: Some(10),
        ..rate_limited(1, 5)
    })
    .await;
    let since = std::time::Instant::now();
    let mut t = table(&server).await;
    for ts in 0..40 {
        t.x.feed(&transport::ClientMessage::Ping {
            ts: transport::protocol::Number::Unsigned(ts),
        })
        .await;
    }
    t.x.flush().await;
    // Each answer: a pong (`true`) or rate_limited (`false`).
    let mut answers = Vec::new();
    let close = loop {
        match t.x.recv().await {
            Frame::Message(ServerMessage::Pong { .. }) => answers.push(true),
            Frame::Message(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => answers.push(false),
            Frame::Closed(frame) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.map(|c| c.0), Some(1008));
    // The join took one of the 5 tokens: 4 pongs first. A token refilled
    // during the flood (a slow machine) answers one more ping and restarts
    // the strikes, but at most one per second since x connected.
    let pongs = answers.iter().filter(|&&a| a).count() as u64;
    let refilled = since.elapsed().as_secs() + 1;
    assert_eq!(answers[..4], [true; 4], "{answers:?}");
    assert!(pongs <= 4 + refilled, "{pongs} pongs, {refilled} refilled");
    // Strikes in a row close: the last 9 answers are rate_limited, after a
    // pong; strike 10 closes without an answer.
    let tail = &answers[answers.len() - 10..];
    assert_eq!(
        tail,
        [[true].as_slice(), &[false; 9]].concat(),
        "{answers:?}"
    );
    t.others_keep_playing(true).await;
}

/// Unsolicited pongs are frames like any other (issue 18): a client that
/// floods them spends its tokens, and one that goes on is closed with
/// 1008, while its table plays on.
#[tokio::test]
async fn a_pong_flood_counts_toward_the_rate_limit() {
    let server = TestServer::start_with(ServeOptions {
        rate_strikes: Some(10),
        ..rate_limited(1, 5)
    })
    .await;
    let mut t = table(&server).await;
    for _ in 0..40 {
        t.x.send_raw(Message::Pong(Vec::new().into())).await;
    }
    // Pongs get no answer; the strikes close the connection.
    let close = loop {
        match t.x.recv().await {
            Frame::Closed(frame) => break frame,
            Frame::Ping | Frame::Message(_) => {}
        }
    };
    assert_eq!(
        close,
        Some((1008, "rate limit exceeded persistently".to_owned()))
    );
    t.others_keep_playing(true).await;
}
