//! The one place where the rules' values become wire messages.

use game_logic::{Event, GameError, GameOverReason, Player, Snapshot, Status, Timestamp};

use crate::protocol::{
    ErrorCode, GameSnapshot, GameStatus, OverReason, PlayerInfo, RejectReason, ServerMessage,
};

/// How a refusal of the rules is answered on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Answered with `rejected{reason}` (capture refusals).
    Rejected(RejectReason),
    /// Answered with `error{code}`.
    Error(ErrorCode),
}

impl From<GameError> for Refusal {
    fn from(e: GameError) -> Refusal {
        match e {
            GameError::Taken => Refusal::Rejected(RejectReason::Taken),
            GameError::NotActive => Refusal::Rejected(RejectReason::NotActive),
            GameError::OutOfRange => Refusal::Rejected(RejectReason::OutOfRange),
            GameError::InvalidName => Refusal::Error(ErrorCode::InvalidName),
            GameError::InvalidSettings => Refusal::Error(ErrorCode::InvalidSettings),
            GameError::GameFull => Refusal::Error(ErrorCode::GameFull),
            GameError::AlreadyStarted => Refusal::Error(ErrorCode::AlreadyStarted),
            GameError::NotInGame => Refusal::Error(ErrorCode::NotInGame),
            GameError::NotHost => Refusal::Error(ErrorCode::NotHost),
            GameError::NotEnoughPlayers => Refusal::Error(ErrorCode::NotEnoughPlayers),
        }
    }
}

/// The `error` message for a code, with its human explanation.
pub fn error_message(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.into(),
    }
}

/// The wire answer to a refused game command. `cell` and `reference` are
/// echoed in `rejected`; they are ignored for `error` answers.
pub fn refusal_message(error: GameError, cell: i64, reference: Option<u32>) -> ServerMessage {
    match Refusal::from(error) {
        Refusal::Rejected(reason) => ServerMessage::Rejected {
            cell,
            reference,
            reason,
        },
        Refusal::Error(code) => error_message(code, error.to_string()),
    }
}

/// A player on the wire.
pub fn player_info(p: &Player) -> PlayerInfo {
    let id = u8::from(p.id);
    PlayerInfo {
        id,
        name: p.name.as_str().to_owned(),
        color: id,
        score: p.score,
        connected: p.connected,
    }
}

fn status(s: Status) -> GameStatus {
    match s {
        Status::Waiting => GameStatus::Waiting,
        Status::Active => GameStatus::Active,
        Status::Completed => GameStatus::Completed,
    }
}

fn reason(r: GameOverReason) -> OverReason {
    match r {
        GameOverReason::Time => OverReason::Time,
        GameOverReason::BoardFull => OverReason::BoardFull,
    }
}

/// Ms from `now` until `at` (0 once it has passed).
fn ms_until(at: Timestamp, now: Timestamp) -> u64 {
    u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
}

/// A snapshot on the wire of game `id` (short code `code`); `remaining_ms`
/// and `starts_in_ms` are computed at `now`.
pub fn game_snapshot(id: &str, code: &str, s: &Snapshot, now: Timestamp) -> GameSnapshot {
    let active = s.status == Status::Active;
    let starts_at = s.starts_at.filter(|_| s.status == Status::Waiting);
    GameSnapshot {
        id: id.to_owned(),
        code: code.to_owned(),
        public: s.public,
        starts_in_ms: starts_at.map(|at| ms_until(at, now)),
        starts_at_ms: starts_at.map(Timestamp::as_unix_ms),
        status: status(s.status),
        seq: s.seq,
        host: u8::from(s.host),
        max_players: s.max_players,
        duration_ms: u64::try_from(s.duration.as_millis()).unwrap_or(u64::MAX),
        players: s.players.iter().map(player_info).collect(),
        cells: s.cells.to_vec(),
        remaining_ms: s
            .remaining(now)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        ends_at_ms: s.ends_at.filter(|_| active).map(Timestamp::as_unix_ms),
        winners: s
            .winners
            .as_ref()
            .map(|w| w.iter().map(|p| u8::from(*p)).collect()),
        spectators: 0,
    }
}

/// A broadcast event on the wire; `remaining_ms` of `started` is computed at `now`.
pub fn event_message(e: &Event, now: Timestamp) -> ServerMessage {
    match e {
        Event::PlayerJoined { seq, player } => ServerMessage::PlayerJoined {
            seq: *seq,
            player: player_info(player),
        },
        Event::PlayerLeft { seq, player, host } => ServerMessage::PlayerLeft {
            seq: *seq,
            player: u8::from(*player),
            host: Some(u8::from(*host)),
        },
        Event::Presence {
            seq,
            player,
            connected,
        } => ServerMessage::Presence {
            seq: *seq,
            player: u8::from(*player),
            connected: *connected,
        },
        Event::Countdown { seq, starts_at } => ServerMessage::Countdown {
            seq: *seq,
            starts_in_ms: starts_at.map(|at| ms_until(at, now)),
            starts_at_ms: starts_at.map(Timestamp::as_unix_ms),
        },
        Event::Started { seq, ends_at, .. } => ServerMessage::Started {
            seq: *seq,
            ends_at_ms: ends_at.as_unix_ms(),
            remaining_ms: ms_until(*ends_at, now),
        },
        Event::Captured {
            seq,
            cell,
            player,
            score,
        } => ServerMessage::Captured {
            seq: *seq,
            cell: u8::from(*cell),
            player: u8::from(*player),
            score: *score,
        },
        Event::GameOver {
            seq,
            reason: r,
            scores,
            winners,
        } => ServerMessage::GameOver {
            seq: *seq,
            reason: reason(*r),
            scores: scores.clone(),
            winners: winners.iter().map(|p| u8::from(*p)).collect(),
        },
    }
}
