//! Every message of protocol v1 as serde types.
//!
//! Messages are MessagePack maps with string keys; the key `t` names the
//! type (serde's internally tagged enums), unknown keys are ignored on input.
//! Both directions derive `Serialize` and `Deserialize` so the server, the
//! bots and the tests share one definition.

use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol a client may offer.
pub const SUBPROTOCOL: &str = "gridcap.v1";

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Create a game and join it as host.
    Create {
        /// The host's display name (validated by the rules).
        name: String,
        /// Seats, 2..=8; the server's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_players: Option<i64>,
        /// Round length in ms; the server's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<i64>,
        /// Listed in the lobby and matched by quick play (default false).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        public: Option<bool>,
    },
    /// Seat me in a public waiting game of that size, or create one.
    QuickPlay {
        /// The display name.
        name: String,
        /// Seats, 2..=8; 4 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_players: Option<i64>,
    },
    /// Join a waiting game.
    Join {
        /// The game id (canonical UUID string).
        game: String,
        /// The display name.
        name: String,
    },
    /// Take back a seat.
    Resume {
        /// The game id.
        game: String,
        /// The token issued with `joined`.
        token: String,
    },
    /// Host only: start the round.
    Start {},
    /// Try to capture a cell.
    Capture {
        /// `row * 9 + col`; any integer is accepted here so that an
        /// out-of-range cell is answered `rejected{out_of_range}`.
        cell: i64,
        /// Echoed in `rejected` so the client can match its attempt.
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<u32>,
    },
    /// Leave the game; the server answers with close 1000.
    Leave {},
    /// Watch a game without a seat (id or code); answered `watching`.
    Watch {
        /// Game id or short code.
        game: String,
    },
    /// Ask for a `pong`.
    Ping {
        /// Echoed unchanged.
        ts: Number,
    },
}

/// A number chosen by the client and echoed back exactly as sent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// A non-negative integer.
    Unsigned(u64),
    /// A negative integer.
    Signed(i64),
    /// A float.
    Float(f64),
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `watch`: the game as it is now; its broadcast
    /// events follow.
    Watching {
        /// The game, `spectators` including the new one.
        game: GameSnapshot,
    },
    /// You hold a seat: the game as of now, your id and your resume token.
    Joined {
        /// The whole game.
        game: GameSnapshot,
        /// Your player id.
        you: u8,
        /// Resumes this seat; never shown to other players.
        token: String,
    },
    /// A player took a seat.
    PlayerJoined {
        /// Event sequence number.
        seq: u64,
        /// The new player.
        player: PlayerInfo,
    },
    /// A player left.
    PlayerLeft {
        /// Event sequence number.
        seq: u64,
        /// The seat that left.
        player: u8,
        /// Extension (unknown keys are ignored): the host after this event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<u8>,
    },
    /// A seat's connection dropped or came back.
    Presence {
        /// Event sequence number.
        seq: u64,
        /// The seat.
        player: u8,
        /// Whether a connection now holds the seat.
        connected: bool,
    },
    /// A public game's auto-start was scheduled (numbers) or cancelled (nil).
    Countdown {
        /// This event's sequence number.
        seq: u64,
        /// Time until the auto-start; nil: cancelled.
        starts_in_ms: Option<u64>,
        /// When the game starts, unix ms; nil: cancelled.
        starts_at_ms: Option<u64>,
    },
    /// The round began.
    Started {
        /// Event sequence number.
        seq: u64,
        /// Unix ms when the round ends.
        ends_at_ms: u64,
        /// Ms left when this message was sent.
        remaining_ms: u64,
    },
    /// A cell was captured.
    Captured {
        /// Event sequence number.
        seq: u64,
        /// The cell, 0..=80.
        cell: u8,
        /// Its owner.
        player: u8,
        /// The owner's score after the capture.
        score: u32,
    },
    /// The round ended.
    GameOver {
        /// Event sequence number.
        seq: u64,
        /// Why it ended.
        reason: OverReason,
        /// Score by player id.
        scores: Vec<u32>,
        /// All tied leaders.
        winners: Vec<u8>,
    },
    /// Your capture was refused.
    Rejected {
        /// The cell as you sent it.
        cell: i64,
        /// Your `ref`, echoed.
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<u32>,
        /// Why.
        reason: RejectReason,
    },
    /// The answer to `ping`.
    Pong {
        /// Your `ts`, echoed.
        ts: Number,
        /// The server's clock, Unix ms.
        server_ms: u64,
    },
    /// Your message was refused.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
}

impl ServerMessage {
    /// The seq of a broadcast game event; `None` for direct answers.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMessage::PlayerJoined { seq, .. }
            | ServerMessage::PlayerLeft { seq, .. }
            | ServerMessage::Presence { seq, .. }
            | ServerMessage::Countdown { seq, .. }
            | ServerMessage::Started { seq, .. }
            | ServerMessage::Captured { seq, .. }
            | ServerMessage::GameOver { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// A whole game as sent in `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameSnapshot {
    /// The game id.
    pub id: String,
    /// Life-cycle state.
    pub status: GameStatus,
    /// Seq of the last event included.
    pub seq: u64,
    /// The host's player id.
    pub host: u8,
    /// Seats.
    pub max_players: u8,
    /// Round length in ms.
    pub duration_ms: u64,
    /// Seated players by id.
    pub players: Vec<PlayerInfo>,
    /// 81 bytes (MessagePack bin): 0 free, k + 1 owned by player k.
    #[serde(with = "serde_bytes")]
    pub cells: Vec<u8>,
    /// Ms left; active only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    /// Unix ms of the deadline; active only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<u64>,
    /// All tied leaders; completed only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winners: Option<Vec<u8>>,
    /// The short code, accepted wherever the id is.
    #[serde(default)]
    pub code: String,
    /// Listed in the lobby and matched by quick play.
    #[serde(default)]
    pub public: bool,
    /// Ms until the auto-start; waiting with a scheduled start only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_in_ms: Option<u64>,
    /// Unix ms of the auto-start; waiting with a scheduled start only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at_ms: Option<u64>,
    /// Connections watching the game (section 7).
    #[serde(default)]
    pub spectators: u32,
}

/// A player as every client sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerInfo {
    /// Seat index 0..=7.
    pub id: u8,
    /// Display name.
    pub name: String,
    /// Colour index, equal to `id`.
    pub color: u8,
    /// Cells owned.
    pub score: u32,
    /// Whether a connection holds the seat.
    pub connected: bool,
}

/// A game's life-cycle state on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameStatus {
    /// Seats open.
    Waiting,
    /// Round running.
    Active,
    /// Round over.
    Completed,
}

/// Why a round ended, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverReason {
    /// The duration elapsed.
    Time,
    /// All 81 cells owned.
    BoardFull,
}

/// Why a capture was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The cell has an owner.
    Taken,
    /// The round is not running (or its deadline has passed).
    NotActive,
    /// Not a cell index 0..=80.
    OutOfRange,
}

/// Every `error.code` of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A text frame.
    BadFrame,
    /// Not MessagePack, unknown `t`, or wrong field types.
    BadMessage,
    /// Name empty, too long or with control characters.
    InvalidName,
    /// `max_players` or `duration_ms` out of bounds.
    InvalidSettings,
    /// No such game (or it expired).
    UnknownGame,
    /// Every seat taken.
    GameFull,
    /// The game is no longer waiting.
    AlreadyStarted,
    /// This connection is in a waiting or active game already.
    AlreadyInGame,
    /// This connection holds no seat.
    NotInGame,
    /// Only the host may start.
    NotHost,
    /// Too few connected players to start.
    NotEnoughPlayers,
    /// The resume token does not match the seat.
    BadToken,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// The server cannot take this now; try again later.
    Overloaded,
    /// A code this client version does not know (forward compatibility).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidSettings => "invalid_settings",
            ErrorCode::UnknownGame => "unknown_game",
            ErrorCode::GameFull => "game_full",
            ErrorCode::AlreadyStarted => "already_started",
            ErrorCode::AlreadyInGame => "already_in_game",
            ErrorCode::NotInGame => "not_in_game",
            ErrorCode::NotHost => "not_host",
            ErrorCode::NotEnoughPlayers => "not_enough_players",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl RejectReason {
    /// The reason as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Taken => "taken",
            RejectReason::NotActive => "not_active",
            RejectReason::OutOfRange => "out_of_range",
        }
    }
}
