//! What must hold for ANY bytes a peer sends: the checks of the
//! `decode_client` fuzz target.
//!
//! This file is shared, not copied: the fuzz crate compiles it as a module
//! of its library, and `crates/transport/tests/fuzz_corpus.rs` includes it
//! with `#[path]` to replay the committed corpus on stable Rust. So it may
//! only use what both have: `std` and the `transport` crate.
//!
//! A violated property panics (that is how libFuzzer learns of it); the
//! message names the property.

use transport::TransportError;
use transport::codec::{decode_client, decode_server, encode};
use transport::protocol::{ClientMessage, Number, ServerMessage};

/// What one input decoded to, so that a replay can tell what a corpus covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    /// The client message type (`t`), when the bytes are a client message.
    pub client: Option<&'static str>,
    /// The server message type, when the bytes are a server message.
    pub server: Option<&'static str>,
}

/// Runs every check on one input; panics on a violation.
///
/// - Neither decoder panics, whatever the bytes.
/// - A client message is a MessagePack map (protocol §1): nothing else decodes.
/// - Whatever decodes re-encodes, and that encoding decodes to the same value
///   and re-encodes to the same bytes (the codec is a fixed point after one
///   round), for both directions.
pub fn check(data: &[u8]) -> Decoded {
    let client = decode_client(data).ok().map(|message| {
        assert!(
            is_map_header(data.first().copied()),
            "decode_client accepted a value that is not a map: {message:?}"
        );
        round_trip(&message, encode, decode_client);
        client_type(&message)
    });
    let server = decode_server(data).ok().map(|message| {
        round_trip(&message, encode, decode_server);
        server_type(&message)
    });
    Decoded { client, server }
}

/// Encodes `message`, decodes it again with `decode`, and checks that the
/// value and its encoding are stable.
fn round_trip<T, B>(
    message: &T,
    encode: impl Fn(&T) -> Result<B, TransportError>,
    decode: impl Fn(&[u8]) -> Result<T, TransportError>,
) where
    T: std::fmt::Debug + SameValue,
    B: AsRef<[u8]> + PartialEq + std::fmt::Debug,
{
    let bytes = match encode(message) {
        Ok(bytes) => bytes,
        Err(e) => panic!("a decoded message does not encode: {message:?}: {e}"),
    };
    let again = match decode(bytes.as_ref()) {
        Ok(again) => again,
        Err(e) => panic!(
            "the encoding of {message:?} does not decode: {e}; bytes {:02x?}",
            bytes.as_ref()
        ),
    };
    assert!(
        message.same_value(&again),
        "round trip changed the value: {message:?} became {again:?}"
    );
    match encode(&again) {
        Ok(twice) => assert_eq!(bytes, twice, "re-encoding is not stable for {message:?}"),
        Err(e) => panic!("a re-decoded message does not encode: {again:?}: {e}"),
    }
}

/// MessagePack's map headers: fixmap (0x80..=0x8f), map 16, map 32.
fn is_map_header(first: Option<u8>) -> bool {
    matches!(first, Some(0x80..=0x8f | 0xde | 0xdf))
}

/// Equality where a NaN timestamp in `ping`/`pong` equals itself bit for
/// bit: the protocol echoes `ts` exactly, and NaN != NaN under `PartialEq`.
trait SameValue {
    fn same_value(&self, other: &Self) -> bool;
}

fn same_number(a: &Number, b: &Number) -> bool {
    match (a, b) {
        (Number::Float(x), Number::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

impl SameValue for ClientMessage {
    fn same_value(&self, other: &Self) -> bool {
        match (self, other) {
            (ClientMessage::Ping { ts: a }, ClientMessage::Ping { ts: b }) => same_number(a, b),
            _ => self == other,
        }
    }
}

impl SameValue for ServerMessage {
    fn same_value(&self, other: &Self) -> bool {
        match (self, other) {
            (
                ServerMessage::Pong {
                    ts: a,
                    server_ms: x,
                },
                ServerMessage::Pong {
                    ts: b,
                    server_ms: y,
                },
            ) => same_number(a, b) && x == y,
            _ => self == other,
        }
    }
}

/// The wire name of a client message.
pub fn client_type(m: &ClientMessage) -> &'static str {
    match m {
        ClientMessage::Create { .. } => "create",
        ClientMessage::QuickPlay { .. } => "quick_play",
        ClientMessage::Join { .. } => "join",
        ClientMessage::Resume { .. } => "resume",
        ClientMessage::Start {} => "start",
        ClientMessage::Capture { .. } => "capture",
        ClientMessage::Leave {} => "leave",
        ClientMessage::Watch { .. } => "watch",
        ClientMessage::Ping { .. } => "ping",
    }
}

/// The wire name of a server message.
pub fn server_type(m: &ServerMessage) -> &'static str {
    match m {
        ServerMessage::Joined { .. } => "joined",
        ServerMessage::Watching { .. } => "watching",
        ServerMessage::PlayerJoined { .. } => "player_joined",
        ServerMessage::PlayerLeft { .. } => "player_left",
        ServerMessage::Presence { .. } => "presence",
        ServerMessage::Countdown { .. } => "countdown",
        ServerMessage::Started { .. } => "started",
        ServerMessage::Captured { .. } => "captured",
        ServerMessage::GameOver { .. } => "game_over",
        ServerMessage::Rejected { .. } => "rejected",
        ServerMessage::Pong { .. } => "pong",
        ServerMessage::Error { .. } => "error",
    }
}

/// Every client message type, for coverage checks.
pub const CLIENT_TYPES: [&str; 9] = [
    "create",
    "quick_play",
    "join",
    "resume",
    "start",
    "capture",
    "leave",
    "watch",
    "ping",
];

/// Every server message type, for coverage checks.
pub const SERVER_TYPES: [&str; 12] = [
    "joined",
    "watching",
    "player_joined",
    "player_left",
    "presence",
    "countdown",
    "started",
    "captured",
    "game_over",
    "rejected",
    "pong",
    "error",
];

/// Seed inputs: one encoding of every message type of both directions, plus
/// edge values (NaN and extreme numbers, unknown keys, an unknown error code).
/// The fuzzer starts from these; the replay test checks them too.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    use transport::protocol::{
        ErrorCode, GameSnapshot, GameStatus, OverReason, PlayerInfo, RejectReason,
    };

    let player = PlayerInfo {
        id: 1,
        name: "bob".into(),
        color: 1,
        score: 3,
        connected: true,
    };
    let client = vec![
        ClientMessage::Create {
            name: "ada".into(),
            max_players: Some(4),
            duration_ms: Some(30_000),
            public: None,
        },
        ClientMessage::Create {
            name: "x".into(),
            max_players: None,
            duration_ms: Some(i64::MIN),
            public: None,
        },
        ClientMessage::QuickPlay {
            name: "ada".into(),
            max_players: Some(4),
        },
        ClientMessage::QuickPlay {
            name: "bob".into(),
            max_players: None,
        },
        ClientMessage::Join {
            game: "3b1e6d0a-3c4f-4e8e-9a51-0c1d2e3f4a5b".into(),
            name: "bob".into(),
        },
        ClientMessage::Resume {
            game: "3b1e6d0a-3c4f-4e8e-9a51-0c1d2e3f4a5b".into(),
            token: "9f86d081884c7d659a2feaa0c55ad015".into(),
        },
        ClientMessage::Start {},
        ClientMessage::Capture {
            cell: 40,
            reference: Some(7),
        },
        ClientMessage::Capture {
            cell: -1,
            reference: None,
        },
        ClientMessage::Capture {
            cell: i64::MAX,
            reference: Some(u32::MAX),
        },
        ClientMessage::Leave {},
        ClientMessage::Watch {
            game: "k7qx2m".into(),
        },
        ClientMessage::Ping {
            ts: Number::Unsigned(u64::MAX),
        },
        ClientMessage::Ping {
            ts: Number::Signed(i64::MIN),
        },
        ClientMessage::Ping {
            ts: Number::Float(f64::NAN),
        },
        ClientMessage::Ping {
            ts: Number::Float(-0.0),
        },
    ];
    let mut server = vec![
        ServerMessage::Joined {
            game: GameSnapshot {
                id: "3b1e6d0a-3c4f-4e8e-9a51-0c1d2e3f4a5b".into(),
                status: GameStatus::Active,
                seq: 2,
                host: 0,
                max_players: 2,
                duration_ms: 30_000,
                players: vec![player.clone()],
                cells: (0..81u8).map(|c| c % 3).collect(),
                remaining_ms: Some(29_000),
                ends_at_ms: Some(1_795_300_000_000),
                winners: None,
                code: "K7QX2M".into(),
                public: true,
                starts_in_ms: None,
                starts_at_ms: None,
                spectators: 3,
            },
            you: 1,
            token: "9f86d081884c7d659a2feaa0c55ad015".into(),
        },
        ServerMessage::PlayerJoined { seq: 1, player },
        ServerMessage::PlayerLeft {
            seq: 3,
            player: 1,
            host: Some(0),
        },
        ServerMessage::Countdown {
            seq: 2,
            starts_in_ms: Some(10_000),
            starts_at_ms: Some(1_795_300_000_000),
        },
        ServerMessage::Countdown {
            seq: 3,
            starts_in_ms: None,
            starts_at_ms: None,
        },
        ServerMessage::Presence {
            seq: 4,
            player: 1,
            connected: false,
        },
        ServerMessage::Started {
            seq: 2,
            ends_at_ms: 1_795_300_000_000,
            remaining_ms: 30_000,
        },
        ServerMessage::Captured {
            seq: 5,
            cell: 80,
            player: 0,
            score: 1,
        },
        ServerMessage::GameOver {
            seq: 57,
            reason: OverReason::BoardFull,
            scores: vec![41, 40],
            winners: vec![0],
        },
        ServerMessage::Rejected {
            cell: 99,
            reference: Some(1),
            reason: RejectReason::OutOfRange,
        },
        ServerMessage::Pong {
            ts: Number::Float(1.5),
            server_ms: 1_795_300_000_000,
        },
        ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "too many messages".into(),
        },
    ];
    if let Some(ServerMessage::Joined { game, .. }) = server.first() {
        let game = game.clone();
        server.push(ServerMessage::Watching { game });
    }
    let mut out = Vec::new();
    for (i, m) in client.iter().enumerate() {
        if let Ok(bytes) = encode(m) {
            out.push((format!("client-{i:02}-{}", client_type(m)), bytes.to_vec()));
        }
    }
    for (i, m) in server.iter().enumerate() {
        if let Ok(bytes) = encode(m) {
            out.push((format!("server-{i:02}-{}", server_type(m)), bytes.to_vec()));
        }
    }
    // Hand-written edge cases (MessagePack bytes).
    let raw: [(&str, &[u8]); 6] = [
        // {t: "start", x: [[[]]]}: an unknown key with a nested value.
        ("raw-unknown-nested", b"\x82\xa1t\xa5start\xa1x\x91\x91\x90"),
        // {t: "ping", ts: f32 1.5}: a 32-bit float.
        (
            "raw-ping-f32",
            b"\x82\xa1t\xa4ping\xa2ts\xca\x3f\xc0\x00\x00",
        ),
        // {t: "capture", cell: int8 -1}.
        ("raw-capture-int8", b"\x82\xa1t\xa7capture\xa4cell\xd0\xff"),
        // {t: "error", code: "from_the_future", message: ""}.
        (
            "raw-error-unknown-code",
            b"\x83\xa1t\xa5error\xa4code\xaffrom_the_future\xa7message\xa0",
        ),
        // {t: 5}: an integer tag (refused by decode_client).
        ("raw-int-tag", b"\x81\xa1t\x05"),
        // A map 16 header with one entry: {t: "leave"}.
        ("raw-map16-leave", b"\xde\x00\x01\xa1t\xa5leave"),
    ];
    for (name, bytes) in raw {
        out.push((name.to_owned(), bytes.to_vec()));
    }
    out
}
