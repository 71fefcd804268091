//! The Lua scripts that are the only writers of game state in Redis, and the
//! parsing of what they answer.
//!
//! Each mutation is one script: atomic on the game's hash, timed by Redis's
//! own `TIME`, assigning `seq` and publishing the event already encoded as
//! the wire frame (`cmsgpack`). The sources live in `lua/`; `common.lua`, the
//! shared prelude that mirrors `game_logic::Game`, is put in front of each.
//! `tests/stateless_lua.rs` runs random command sequences through both the
//! scripts and `game_logic::Game` and compares events and snapshots.
//!
//! Every script answers an array `[code, now_ms, ...]`. `code` is `ok` or a
//! refusal (`game_full`, `taken`, …, or `stale` for a connection that no
//! longer holds its seat). Scripts that seat a connection (create, join,
//! resume) and `snapshot` add the seat and the whole hash (`HGETALL`), with
//! the spectators counted among its fields; so does `watch` (no seat).
//! `renew` answers Redis's now and the spectators it did not find.
//!
//! The game table's scripts ([`TABLE_SOURCES`]: `admit`, `lease`) touch
//! one key of their own and no game, so they run without the prelude, and
//! never wait for replicas: a table that a failover set back a little only
//! counts a few games more or less for one lease.

use std::collections::HashMap;
use std::time::Duration;

use game_logic::{
    CELL_COUNT, GameError, GameOverReason, Player, PlayerId, PlayerName, Snapshot, Status,
    Timestamp,
};
use redis::{Script, Value};

use transport::ServerMessage;
use transport::convert::game_snapshot;
use transport::protocol::GameSnapshot;

use super::StoreError;
use super::layout::{self, field, seat};

/// Every Lua source, by file name: the shared prelude first.
pub const SOURCES: [(&str, &str); 13] = [
    ("common.lua", include_str!("lua/common.lua")),
    ("create.lua", include_str!("lua/create.lua")),
    ("join.lua", include_str!("lua/join.lua")),
    ("resume.lua", include_str!("lua/resume.lua")),
    ("start.lua", include_str!("lua/start.lua")),
    ("capture.lua", include_str!("lua/capture.lua")),
    ("leave.lua", include_str!("lua/leave.lua")),
    ("disconnect.lua", include_str!("lua/disconnect.lua")),
    ("finish.lua", include_str!("lua/finish.lua")),
    ("snapshot.lua", include_str!("lua/snapshot.lua")),
    ("watch.lua", include_str!("lua/watch.lua")),
    ("renew.lua", include_str!("lua/renew.lua")),
    ("flush.lua", include_str!("lua/flush.lua")),
];

/// The scripts of the cluster's game table (`--max-games`, see
/// [`layout`]'s docs): one key of its own, no game, so no prelude.
pub const TABLE_SOURCES: [(&str, &str); 2] = [
    ("admit.lua", include_str!("lua/admit.lua")),
    ("lease.lua", include_str!("lua/lease.lua")),
];

/// A script: the definitions generated from [`layout`], the shared prelude,
/// then the script's own source, whose reply goes through the prelude's
/// `answer` (which adds what a queuing call queued).
fn script(prelude: &str, source: &str) -> Script {
    Script::new(&format!(
        "{prelude}\nlocal function main()\n{source}\nend\nreturn answer(main())\n"
    ))
}

/// Every script, loaded once per process (EVALSHA, falling back to EVAL
/// after a Redis restart flushed the script cache).
#[derive(Debug)]
pub struct Scripts {
    /// A new waiting game with its host in seat 0.
    pub create: Script,
    /// Takes the lowest free seat.
    pub join: Script,
    /// Takes a seat back by token.
    pub resume: Script,
    /// The host starts the round.
    pub start: Script,
    /// A capture attempt.
    pub capture: Script,
    /// A player leaves.
    pub leave: Script,
    /// The holding connection ended without leaving.
    pub disconnect: Script,
    /// Ends the round once its deadline has passed (idempotent).
    pub finish: Script,
    /// Reads the whole game.
    pub snapshot: Script,
    /// A connection watches the game (protocol §7), counted and capped.
    pub watch: Script,
    /// Renews the leases of a node's spectators of a game.
    pub renew: Script,
    /// Publishes queued events once the replicas have them
    /// (`--redis-wait-replicas`).
    pub flush: Script,
    /// Admits a game about to be created into the cluster's game table.
    pub admit: Script,
    /// Renews a node's games' leases on the table, drops the lapsed ones.
    pub lease: Script,
}

impl Scripts {
    /// Compiles the sources into `Script`s (which only hashes them).
    pub fn new() -> Scripts {
        let prelude = format!("{}\n{}", layout::lua_prelude(), SOURCES[0].1);
        let [
            _,
            create,
            join,
            resume,
            start,
            capture,
            leave,
            disconnect,
            finish,
            snapshot,
            watch,
            renew,
            flush,
        ] = SOURCES.map(|(_, source)| script(&prelude, source));
        let [admit, lease] = TABLE_SOURCES.map(|(_, source)| Script::new(source));
        Scripts {
            create,
            join,
            resume,
            start,
            capture,
            leave,
            disconnect,
            finish,
            snapshot,
            watch,
            renew,
            flush,
            admit,
            lease,
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts::new()
    }
}

/// What a script decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Done.
    Ok,
    /// The rules refused it (the state is unchanged).
    Refused(GameError),
    /// No such game (never existed or expired).
    UnknownGame,
    /// The token matches no seat.
    BadToken,
    /// The connection holds another seat of this game.
    AlreadyInGame,
    /// The connection no longer holds the seat: drop the command silently.
    Stale,
    /// `create` found the id taken (a UUID collision): draw another.
    Exists,
    /// Quick play's `join` found the game private or unattended.
    NotOpen,
}

impl Code {
    fn parse(code: &str) -> Result<Code, StoreError> {
        Ok(match code {
            "ok" => Code::Ok,
            "unknown_game" => Code::UnknownGame,
            "bad_token" => Code::BadToken,
            "already_in_game" => Code::AlreadyInGame,
            "stale" => Code::Stale,
            "exists" => Code::Exists,
            "not_open" => Code::NotOpen,
            "game_full" => Code::Refused(GameError::GameFull),
            "already_started" => Code::Refused(GameError::AlreadyStarted),
            "not_in_game" => Code::Refused(GameError::NotInGame),
            "not_host" => Code::Refused(GameError::NotHost),
            "not_enough_players" => Code::Refused(GameError::NotEnoughPlayers),
            "taken" => Code::Refused(GameError::Taken),
            "not_active" => Code::Refused(GameError::NotActive),
            other => return Err(StoreError::Reply(format!("unknown script code {other:?}"))),
        })
    }
}

/// A script's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// What it decided.
    pub code: Code,
    /// Redis's clock when it ran.
    pub now: Timestamp,
    /// The seat it gave (create, join, resume).
    pub seat: Option<PlayerId>,
    /// The whole game after it ran (create, join, resume, snapshot).
    pub game: Option<StoredGame>,
    /// `finish` only: the status and deadline after it ran.
    pub status: Option<(Status, Option<Timestamp>)>,
}

fn text(v: &Value) -> Result<String, StoreError> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone())
            .map_err(|_| StoreError::Reply("a script answered non-UTF-8 text".to_owned())),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Okay => Ok("OK".to_owned()),
        other => Err(StoreError::Reply(format!("expected text, got {other:?}"))),
    }
}

fn bytes(v: &Value) -> Result<Vec<u8>, StoreError> {
    match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(s) => Ok(s.as_bytes().to_vec()),
        other => Err(StoreError::Reply(format!("expected bytes, got {other:?}"))),
    }
}

fn number(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => text(other)?
            .parse()
            .map_err(|_| StoreError::Reply(format!("expected a number, got {other:?}"))),
    }
}

fn status_of(s: &str) -> Result<Status, StoreError> {
    layout::parse_status(s).ok_or_else(|| StoreError::Reply(format!("unknown status {s:?}")))
}

impl Answer {
    /// Parses a script's reply.
    pub fn parse(reply: &Value) -> Result<Answer, StoreError> {
        let Value::Array(items) = reply else {
            return Err(StoreError::Reply(format!(
                "a script answered {reply:?}, not an array"
            )));
        };
        let (Some(code), Some(now)) = (items.first(), items.get(1)) else {
            return Err(StoreError::Reply("a script answered too little".to_owned()));
        };
        let code = Code::parse(&text(code)?)?;
        let now_ms = u64::try_from(number(now)?)
            .map_err(|_| StoreError::Reply("negative time".to_owned()))?;
        let mut answer = Answer {
            code,
            now: Timestamp::from_unix_ms(now_ms),
            seat: None,
            game: None,
            status: None,
        };
        match items.len() {
            2 => {}
            4 => {
                // finish: status and deadline.
                let status = status_of(&text(&items[2])?)?;
                let ends = number(&items[3]).ok().filter(|&e| e > 0);
                answer.status = Some((
                    status,
                    ends.and_then(|e| u64::try_from(e).ok())
                        .map(Timestamp::from_unix_ms),
                ));
            }
            _ => {
                let seat = number(&items[2])?;
                answer.seat = u8::try_from(seat)
                    .ok()
                    .and_then(|s| PlayerId::try_from(s).ok());
                answer.game = Some(StoredGame::parse(&items[3..])?);
            }
        }
        Ok(answer)
    }
}

/// The answer of the capture script for a batch of `n`: Redis's now, then
/// one code per capture.
pub fn parse_captures(reply: &Value, n: usize) -> Result<Vec<Answer>, StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::Reply(format!(
            "the capture script answered {reply:?}, not an array"
        )));
    };
    if items.len() != n + 1 {
        return Err(StoreError::Reply(format!(
            "the capture script answered {} codes for {n} captures",
            items.len().saturating_sub(1)
        )));
    }
    let now_ms = u64::try_from(number(&items[0])?)
        .map_err(|_| StoreError::Reply("negative time".to_owned()))?;
    let now = Timestamp::from_unix_ms(now_ms);
    items[1..]
        .iter()
        .map(|code| {
            Ok(Answer {
                code: Code::parse(&text(code)?)?,
                now,
                seat: None,
                game: None,
                status: None,
            })
        })
        .collect()
}

/// The answer of the renew script: Redis's now, then the holders it did
/// not find among the game's spectators.
pub fn parse_renewed(reply: &Value) -> Result<(Timestamp, Vec<String>), StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::Reply(format!(
            "the renew script answered {reply:?}, not an array"
        )));
    };
    let Some(now) = items.first() else {
        return Err(StoreError::Reply(
            "the renew script answered nothing".to_owned(),
        ));
    };
    let now_ms =
        u64::try_from(number(now)?).map_err(|_| StoreError::Reply("negative time".to_owned()))?;
    let missing = items[1..].iter().map(text).collect::<Result<_, _>>()?;
    Ok((Timestamp::from_unix_ms(now_ms), missing))
}

/// The answer of the admit script: whether the game was admitted, and how
/// many games count on the table now.
pub fn parse_admitted(reply: &Value) -> Result<(bool, u64), StoreError> {
    let bad = || StoreError::Reply(format!("the admit script answered {reply:?}"));
    let Value::Array(items) = reply else {
        return Err(bad());
    };
    match items.as_slice() {
        [admitted, counted] => Ok((
            number(admitted)? == 1,
            u64::try_from(number(counted)?).map_err(|_| bad())?,
        )),
        _ => Err(bad()),
    }
}

/// The answer of the lease script: how many games count on the table.
pub fn parse_counted(reply: &Value) -> Result<u64, StoreError> {
    u64::try_from(number(reply)?)
        .map_err(|_| StoreError::Reply(format!("the lease script answered {reply:?}")))
}

/// One game as its Redis hash holds it, minus the secrets (token hashes,
/// holders), with its spectators counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGame {
    /// Life-cycle state.
    pub status: Status,
    /// The last event's seq.
    pub seq: u64,
    /// The host's seat.
    pub host: PlayerId,
    /// Seats.
    pub max_players: u8,
    /// Round length.
    pub duration: Duration,
    /// The deadline, once started.
    pub ends_at: Option<Timestamp>,
    /// Why it ended, once completed.
    pub reason: Option<GameOverReason>,
    /// All tied leaders, once completed.
    pub winners: Option<Vec<PlayerId>>,
    /// Seated players by id.
    pub players: Vec<Player>,
    /// Owner by cell: 0 free, k + 1 seat k.
    pub cells: [u8; CELL_COUNT],
    /// Which connection holds each held seat (`<node instance>/<conn>`).
    pub holders: Vec<(PlayerId, String)>,
    /// The short code.
    pub code: String,
    /// Listed in the lobby and matched by quick play.
    pub public: bool,
    /// The scheduled lobby auto-start (waiting only).
    pub starts_at: Option<Timestamp>,
    /// When it was created.
    pub created: Timestamp,
    /// Connections watching it, on every node (leases not run out).
    pub spectators: u32,
}

impl StoredGame {
    /// Parses a flat `HGETALL` list (field, value, field, value, …).
    pub fn parse(flat: &[Value]) -> Result<StoredGame, StoreError> {
        let mut fields: HashMap<String, &Value> = HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            fields.insert(text(&pair[0])?, &pair[1]);
        }
        let get = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| StoreError::Reply(format!("game field {name} missing")))
        };
        let int = |name: &str| -> Result<u64, StoreError> {
            u64::try_from(number(get(name)?)?)
                .map_err(|_| StoreError::Reply(format!("game field {name} negative")))
        };
        let seat = |n: u64| -> Result<PlayerId, StoreError> {
            u8::try_from(n)
                .ok()
                .and_then(|s| PlayerId::try_from(s).ok())
                .ok_or_else(|| StoreError::Reply(format!("seat {n} out of range")))
        };
        let status = status_of(&text(get(field::STATUS)?)?)?;
        let cells_raw = bytes(get(field::CELLS)?)?;
        let cells: [u8; CELL_COUNT] = cells_raw
            .try_into()
            .map_err(|_| StoreError::Reply("cells are not 81 bytes".to_owned()))?;
        let mut players = Vec::new();
        let mut holders = Vec::new();
        for id in PlayerId::all() {
            let i = id.index();
            if let Some(holder) = fields.get(&seat::of(seat::HOLDER, i)) {
                holders.push((id, text(holder)?));
            }
            let Some(name) = fields.get(&seat::of(seat::NAME, i)) else {
                continue;
            };
            let name = PlayerName::new(&text(name)?)
                .map_err(|_| StoreError::Reply(format!("seat {i} has an invalid name")))?;
            players.push(Player {
                id,
                name,
                score: u32::try_from(int(&seat::of(seat::SCORE, i))?)
                    .map_err(|_| StoreError::Reply("score overflow".to_owned()))?,
                connected: int(&seat::of(seat::CONNECTED, i))? == 1,
            });
        }
        let ends = int(field::ENDS)?;
        let completed = status == Status::Completed;
        let reason = if completed {
            Some(match text(get(field::REASON)?)?.as_str() {
                "board_full" => GameOverReason::BoardFull,
                _ => GameOverReason::Time,
            })
        } else {
            None
        };
        let winners = if completed {
            let csv = text(get(field::WINNERS)?)?;
            let mut winners = Vec::new();
            for w in csv.split(',').filter(|w| !w.is_empty()) {
                let n: u64 = w
                    .parse()
                    .map_err(|_| StoreError::Reply(format!("bad winner {w:?}")))?;
                winners.push(seat(n)?);
            }
            Some(winners)
        } else {
            None
        };
        let optional = |name: &str| fields.get(name).map(|v| number(v)).transpose();
        let starts_at = optional(field::STARTS_AT)?
            .and_then(|ms| u64::try_from(ms).ok())
            .filter(|_| status == Status::Waiting)
            .map(Timestamp::from_unix_ms);
        Ok(StoredGame {
            code: text(get(field::CODE)?)?,
            public: optional(field::PUBLIC)? == Some(1),
            starts_at,
            created: Timestamp::from_unix_ms(int(field::CREATED)?),
            spectators: optional(field::SPECTATORS)?
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            status,
            seq: int(field::SEQ)?,
            host: seat(int(field::HOST)?)?,
            max_players: u8::try_from(int(field::MAX_PLAYERS)?)
                .map_err(|_| StoreError::Reply("max players overflow".to_owned()))?,
            duration: Duration::from_millis(int(field::DURATION)?),
            ends_at: (ends > 0).then(|| Timestamp::from_unix_ms(ends)),
            reason,
            winners,
            players,
            cells,
            holders,
        })
    }

    /// When a node's timer is due: the lobby auto-start while waiting, the
    /// deadline while active.
    pub fn due(&self) -> Option<Timestamp> {
        match self.status {
            Status::Waiting => self.starts_at,
            Status::Active => self.ends_at,
            Status::Completed => None,
        }
    }

    /// The game on the wire as of Redis time `now` (`joined`, `watching`,
    /// the HTTP API), its spectators counted.
    pub fn wire(&self, id: &uuid::Uuid, now: Timestamp) -> GameSnapshot {
        let mut snapshot = game_snapshot(&id.to_string(), &self.code, &self.snapshot(), now);
        snapshot.spectators = self.spectators;
        snapshot
    }

    /// The rules' snapshot of this game (what `game_logic::Game::snapshot`
    /// would give for the same state).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: self.status,
            seq: self.seq,
            host: self.host,
            max_players: self.max_players,
            duration: self.duration,
            public: self.public,
            starts_at: self.starts_at,
            players: self.players.clone(),
            cells: self.cells,
            ends_at: self.ends_at,
            reason: self.reason,
            winners: self.winners.clone(),
        }
    }
}

/// One message on a game's channel, parsed without decoding the frame; a
/// compact capture (`C…`) is framed here, once per node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    /// A broadcast event: `E<seq>,<status>,<due_ms>,<frame>` (`due`: the
    /// deadline while active, the lobby auto-start while waiting); a lobby
    /// countdown `C…` arrives as one too, framed by this node.
    Event {
        /// Its seq.
        seq: u64,
        /// The game's status after it.
        status: Status,
        /// When a timer is due: the round's deadline while active, the
        /// lobby auto-start while waiting (`None`: nothing due).
        ends_at: Option<Timestamp>,
        /// The wire frame, as clients receive it.
        frame: bytes::Bytes,
        /// For a `captured`, the seat that captured (to count what a failover
        /// lost, and to stamp the capturer's echo).
        capturer: Option<u8>,
    },
    /// `K<seat>,<holder>`: seat resumed by `holder`; any other connection
    /// holding it must close with 4001.
    Kick {
        /// The seat.
        seat: u8,
        /// The connection that holds it now.
        holder: String,
    },
}

impl ChannelMessage {
    /// Parses a payload; `None` for anything malformed.
    pub fn parse(payload: &bytes::Bytes) -> Option<ChannelMessage> {
        let (&kind, rest) = payload.split_first()?;
        match kind {
            layout::EVENT_PREFIX => {
                let mut parts = rest.splitn(4, |&b| b == b',');
                let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
                let status = status_of(std::str::from_utf8(parts.next()?).ok()?).ok()?;
                let ends: u64 = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
                let frame = parts.next()?;
                let offset = payload.len() - frame.len();
                Some(ChannelMessage::Event {
                    seq,
                    status,
                    ends_at: (ends > 0).then(|| Timestamp::from_unix_ms(ends)),
                    frame: payload.slice(offset..),
                    capturer: None,
                })
            }
            layout::CAPTURED_PREFIX => {
                let text = std::str::from_utf8(rest).ok()?;
                let mut parts = text.split(',');
                let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok());
                let (seq, ends, cell, seat, score) = (next()?, next()?, next()?, next()?, next()?);
                if parts.next().is_some() || ends == 0 {
                    return None;
                }
                let message = transport::ServerMessage::Captured {
                    seq,
                    cell: u8::try_from(cell)
                        .ok()
                        .filter(|&c| usize::from(c) < CELL_COUNT)?,
                    player: u8::try_from(seat).ok()?,
                    score: u32::try_from(score).ok()?,
                };
                Some(ChannelMessage::Event {
                    seq,
                    status: Status::Active,
                    ends_at: Some(Timestamp::from_unix_ms(ends)),
                    frame: transport::codec::encode_server(&message).ok()?,
                    capturer: u8::try_from(seat).ok(),
                })
            }
            layout::COUNTDOWN_PREFIX => {
                // Framed here: its nil fields are beyond the scripts' cmsgpack.
                let text = std::str::from_utf8(rest).ok()?;
                let mut parts = text.splitn(3, ',');
                let seq: u64 = parts.next()?.parse().ok()?;
                let at: u64 = parts.next()?.parse().ok()?;
                let now: u64 = parts.next()?.parse().ok()?;
                let starts_at = (at > 0).then_some(at);
                let countdown = ServerMessage::Countdown {
                    seq,
                    starts_in_ms: starts_at.map(|at| at.saturating_sub(now)),
                    starts_at_ms: starts_at,
                };
                Some(ChannelMessage::Event {
                    seq,
                    status: Status::Waiting,
                    ends_at: starts_at.map(Timestamp::from_unix_ms),
                    frame: transport::codec::encode_server(&countdown).ok()?,
                    capturer: None,
                })
            }
            layout::KICK_PREFIX => {
                let text = std::str::from_utf8(rest).ok()?;
                let (seat, holder) = text.split_once(',')?;
                Some(ChannelMessage::Kick {
                    seat: seat.parse().ok()?,
                    holder: holder.to_owned(),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages_parse_and_keep_the_frame_bytes() {
        let payload = bytes::Bytes::from_static(b"E12,a,1700000000000,\x81\xa1t\xa1x");
        assert_eq!(
            ChannelMessage::parse(&payload),
            Some(ChannelMessage::Event {
                seq: 12,
                status: Status::Active,
                ends_at: Some(Timestamp::from_unix_ms(1_700_000_000_000)),
                frame: bytes::Bytes::from_static(b"\x81\xa1t\xa1x"),
                capturer: None,
            })
        );
        let waiting = bytes::Bytes::from_static(b"E1,w,0,,,");
        assert!(matches!(
            ChannelMessage::parse(&waiting),
            Some(ChannelMessage::Event { ends_at: None, ref frame, .. }) if frame.as_ref() == b",,"
        ));
        let kick = bytes::Bytes::from_static(b"K3,node/7");
        assert_eq!(
            ChannelMessage::parse(&kick),
            Some(ChannelMessage::Kick {
                seat: 3,
                holder: "node/7".to_owned()
            })
        );
        for bad in [&b""[..], b"E", b"Ex,a,0,", b"E1,z,0,", b"K", b"Kx,y", b"Q1"] {
            assert_eq!(
                ChannelMessage::parse(&bytes::Bytes::copy_from_slice(bad)),
                None
            );
        }
    }

    #[test]
    fn a_compact_capture_is_framed_as_the_game_task_frames_it() {
        let payload = bytes::Bytes::from_static(b"C7,1700000000000,80,1,4");
        let Some(ChannelMessage::Event {
            seq,
            status,
            ends_at,
            frame,
            capturer: Some(1),
        }) = ChannelMessage::parse(&payload)
        else {
            panic!("a compact capture parses");
        };
        assert_eq!((seq, status), (7, Status::Active));
        assert_eq!(ends_at, Some(Timestamp::from_unix_ms(1_700_000_000_000)));
        let expected = transport::ServerMessage::Captured {
            seq: 7,
            cell: 80,
            player: 1,
            score: 4,
        };
        // Byte for byte what a single node's game task sends.
        assert_eq!(
            frame,
            transport::codec::encode_server(&expected).expect("encodes")
        );
        for bad in [
            &b"C7,1700000000000,81,1,4"[..],
            b"C7,0,1,1,4",
            b"C7,1,1,1",
            b"C7,1,1,1,4,5",
            b"C7,1,1,x,4",
            b"C7,1,1,256,4",
        ] {
            assert_eq!(
                ChannelMessage::parse(&bytes::Bytes::copy_from_slice(bad)),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refusal_codes_map_onto_the_rules_errors() {
        assert_eq!(
            Code::parse("taken").ok(),
            Some(Code::Refused(GameError::Taken))
        );
        assert_eq!(Code::parse("stale").ok(), Some(Code::Stale));
        assert!(Code::parse("nonsense").is_err());
    }
}
