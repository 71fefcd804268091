//! A client-side replica of a game: a `joined` snapshot with every later
//! broadcast event applied, as a client would. Comparing it with a fresh
//! snapshot (from `resume` or HTTP) checks that events and snapshots agree.
//!
//! The replica does not re-implement the rules: it converts the wire
//! snapshot and events into `game_logic`'s values and lets
//! [`game_logic::Snapshot::apply`] move the game forward, which also refuses
//! a `seq` that is not exactly one past the last. Around that it asserts
//! what every client may rely on (a joiner takes a free seat, a cell is never
//! re-captured, scores grow by one, the winners are all tied leaders, ...).

use std::time::Duration;

use game_logic::{
    Cell, Event, GameOverReason, Player, PlayerId, PlayerName, Snapshot, Status, Timestamp,
};
use transport::convert::game_snapshot;
use transport::protocol::{GameSnapshot, GameStatus, OverReason, PlayerInfo, ServerMessage};

/// What [`Replica::offer`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Applied: its seq was exactly one past the replica's.
    Applied,
    /// Already included (seq at or below the replica's): ignored.
    Old,
    /// A gap: events are missing in between; the replica is unchanged and
    /// the client should ask for a fresh snapshot.
    Gap,
}

/// One game as a client sees it.
#[derive(Debug, Clone)]
pub struct Replica {
    /// The game id (not part of the rules' snapshot).
    id: String,
    /// Its short code (likewise).
    code: String,
    /// The game, moved forward by `Snapshot::apply`.
    game: Snapshot,
    /// The server's clock when it last told the time left (`remaining_ms`
    /// at `joined` or `started`), so that the wire view repeats it.
    server_now_ms: u64,
    /// The wire view of `game`, rebuilt after every event.
    wire: GameSnapshot,
}

impl Replica {
    /// A replica starting from a `joined` (or HTTP) snapshot.
    pub fn new(snapshot: &GameSnapshot) -> Replica {
        let game = from_wire(snapshot);
        let server_now_ms = match (snapshot.ends_at_ms, snapshot.remaining_ms) {
            (Some(end), Some(left)) => end.saturating_sub(left),
            _ => match (snapshot.starts_at_ms, snapshot.starts_in_ms) {
                (Some(at), Some(left)) => at.saturating_sub(left),
                _ => 0,
            },
        };
        let mut replica = Replica {
            id: snapshot.id.clone(),
            code: snapshot.code.clone(),
            game,
            server_now_ms,
            wire: snapshot.clone(),
        };
        replica.render();
        assert_eq!(
            replica.wire, *snapshot,
            "a snapshot survives the trip through game_logic unchanged"
        );
        replica
    }

    /// The seq of the last event included.
    pub fn seq(&self) -> u64 {
        self.game.seq
    }

    /// The game as the rules see it.
    pub fn game(&self) -> &Snapshot {
        &self.game
    }

    /// The game as the wire shows it (what a fresh snapshot should equal).
    pub fn snapshot(&self) -> &GameSnapshot {
        &self.wire
    }

    /// Applies `event` when its seq is the next one, checking what clients
    /// rely on; ignores an old one; reports a gap. Panics on a message that
    /// is not a broadcast event.
    pub fn offer(&mut self, event: &ServerMessage) -> Offer {
        let seq = event
            .seq()
            .unwrap_or_else(|| panic!("not a broadcast event: {event:?}"));
        if seq <= self.game.seq {
            return Offer::Old;
        }
        if seq != self.game.seq + 1 {
            return Offer::Gap;
        }
        self.check(event);
        let converted = self.to_event(event);
        assert!(
            self.game.apply(&converted),
            "Snapshot::apply refused {event:?}"
        );
        match event {
            ServerMessage::Started {
                ends_at_ms,
                remaining_ms,
                ..
            }
            | ServerMessage::Countdown {
                starts_at_ms: Some(ends_at_ms),
                starts_in_ms: Some(remaining_ms),
                ..
            } => self.server_now_ms = ends_at_ms.saturating_sub(*remaining_ms),
            _ => {}
        }
        self.render();
        Offer::Applied
    }

    /// Applies `event`, which must be exactly the next one.
    #[track_caller]
    pub fn apply(&mut self, event: &ServerMessage) {
        let before = self.game.seq;
        let offer = self.offer(event);
        assert_eq!(
            offer,
            Offer::Applied,
            "seq must grow by exactly 1: {event:?} after seq {before}"
        );
    }

    fn render(&mut self) {
        // No event carries the spectators count: the snapshot's stays.
        let spectators = self.wire.spectators;
        self.wire = game_snapshot(
            &self.id,
            &self.code,
            &self.game,
            Timestamp::from_unix_ms(self.server_now_ms),
        );
        self.wire.spectators = spectators;
    }

    /// What the rules guarantee about each event, on top of its seq.
    fn check(&self, event: &ServerMessage) {
        let game = &self.game;
        match event {
            ServerMessage::PlayerJoined { player, .. } => {
                assert_eq!(game.status, Status::Waiting, "joins only while waiting");
                assert_eq!(player.color, player.id, "colour equals id");
                assert!(player.connected, "a joiner is connected");
                assert_eq!(player.score, 0, "a joiner has no cells");
                assert!(
                    game.player(seat(player.id)).is_none(),
                    "a joiner takes a free seat: {event:?} in {game:?}"
                );
            }
            ServerMessage::Presence {
                player, connected, ..
            } => {
                let p = game
                    .player(seat(*player))
                    .unwrap_or_else(|| panic!("presence of a seated player: {event:?}"));
                assert_ne!(p.connected, *connected, "presence announces a change");
            }
            ServerMessage::Started { remaining_ms, .. } => {
                assert_eq!(game.status, Status::Waiting);
                assert!(*remaining_ms <= duration_ms(game));
            }
            ServerMessage::Captured {
                cell,
                player,
                score,
                ..
            } => {
                assert_eq!(game.status, Status::Active, "captures only while active");
                let slot = game.cells.get(usize::from(*cell)).copied();
                assert_eq!(slot, Some(0), "a cell is never re-captured: {event:?}");
                let p = game
                    .player(seat(*player))
                    .unwrap_or_else(|| panic!("the capturer is seated: {event:?}"));
                assert_eq!(*score, p.score + 1, "score grows by one per capture");
            }
            ServerMessage::GameOver {
                scores, winners, ..
            } => {
                assert_eq!(game.status, Status::Active);
                assert_eq!(scores.len(), usize::from(game.max_players));
                for p in &game.players {
                    assert_eq!(scores[p.id.index()], p.score, "score of {}", p.id);
                }
                let top = game.players.iter().map(|p| p.score).max().unwrap_or(0);
                let leaders: Vec<u8> = game
                    .players
                    .iter()
                    .filter(|p| p.score == top)
                    .map(|p| u8::from(p.id))
                    .collect();
                assert_eq!(*winners, leaders, "winners are all tied leaders");
            }
            _ => {}
        }
    }

    /// The rules' event for a wire event (the replica fills in what the
    /// wire leaves out: an unchanged host, the round length).
    fn to_event(&self, event: &ServerMessage) -> Event {
        match event {
            ServerMessage::PlayerJoined { seq, player } => Event::PlayerJoined {
                seq: *seq,
                player: player_from_wire(player),
            },
            ServerMessage::PlayerLeft { seq, player, host } => Event::PlayerLeft {
                seq: *seq,
                player: seat(*player),
                host: host.map_or(self.game.host, seat),
            },
            ServerMessage::Presence {
                seq,
                player,
                connected,
            } => Event::Presence {
                seq: *seq,
                player: seat(*player),
                connected: *connected,
            },
            ServerMessage::Countdown {
                seq, starts_at_ms, ..
            } => Event::Countdown {
                seq: *seq,
                starts_at: starts_at_ms.map(Timestamp::from_unix_ms),
            },
            ServerMessage::Started {
                seq, ends_at_ms, ..
            } => Event::Started {
                seq: *seq,
                ends_at: Timestamp::from_unix_ms(*ends_at_ms),
                duration: self.game.duration,
            },
            ServerMessage::Captured {
                seq,
                cell,
                player,
                score,
            } => Event::Captured {
                seq: *seq,
                cell: Cell::try_from(*cell).unwrap_or_else(|e| panic!("captured cell {cell}: {e}")),
                player: seat(*player),
                score: *score,
            },
            ServerMessage::GameOver {
                seq,
                reason,
                scores,
                winners,
            } => Event::GameOver {
                seq: *seq,
                reason: match reason {
                    OverReason::Time => GameOverReason::Time,
                    OverReason::BoardFull => GameOverReason::BoardFull,
                },
                scores: scores.clone(),
                winners: winners.iter().map(|w| seat(*w)).collect(),
            },
            other => panic!("not a broadcast event: {other:?}"),
        }
    }
}

fn seat(id: u8) -> PlayerId {
    PlayerId::try_from(id).unwrap_or_else(|e| panic!("seat {id}: {e}"))
}

fn duration_ms(game: &Snapshot) -> u64 {
    u64::try_from(game.duration.as_millis()).unwrap_or(u64::MAX)
}

fn player_from_wire(p: &PlayerInfo) -> Player {
    assert_eq!(p.color, p.id, "colour equals id");
    Player {
        id: seat(p.id),
        name: PlayerName::new(&p.name)
            .unwrap_or_else(|e| panic!("the server sent an invalid name {:?}: {e}", p.name)),
        score: p.score,
        connected: p.connected,
    }
}

/// The rules' snapshot for a wire snapshot.
fn from_wire(g: &GameSnapshot) -> Snapshot {
    let cells: [u8; game_logic::CELL_COUNT] = g
        .cells
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("a snapshot has 81 cells, not {}", g.cells.len()));
    Snapshot {
        status: match g.status {
            GameStatus::Waiting => Status::Waiting,
            GameStatus::Active => Status::Active,
            GameStatus::Completed => Status::Completed,
        },
        seq: g.seq,
        host: seat(g.host),
        max_players: g.max_players,
        duration: Duration::from_millis(g.duration_ms),
        public: g.public,
        starts_at: g.starts_at_ms.map(Timestamp::from_unix_ms),
        players: g.players.iter().map(player_from_wire).collect(),
        cells,
        ends_at: g.ends_at_ms.map(Timestamp::from_unix_ms),
        // The wire does not say why a game ended; nothing shown depends on it.
        reason: None,
        winners: g
            .winners
            .as_ref()
            .map(|w| w.iter().map(|p| seat(*p)).collect()),
    }
}

/// Asserts two snapshots describe the same game (`remaining_ms` depends on
/// when each was taken, so only its presence is compared; no event carries
/// the `spectators` count, so it is not compared).
#[track_caller]
pub fn assert_same_game(a: &GameSnapshot, b: &GameSnapshot) {
    let strip = |g: &GameSnapshot| GameSnapshot {
        remaining_ms: g.remaining_ms.map(|_| 0),
        spectators: 0,
        ..g.clone()
    };
    assert_eq!(strip(a), strip(b));
}

#[cfg(test)]
mod tests {
    use game_logic::{Game, PlayerName, Settings, SettingsBounds};
    use transport::convert::event_message;

    use super::*;

    const T0: Timestamp = Timestamp::from_unix_ms(1_700_000_000_000);

    /// A two-seat game whose second join started it, as the server would
    /// send it: the `joined` snapshot of the host and the events after it.
    fn started() -> (GameSnapshot, Vec<ServerMessage>, Game) {
        let settings = Settings::new(Some(2), Some(30_000), &SettingsBounds::default()).unwrap();
        let mut game = Game::new(settings, PlayerName::new("ada").unwrap(), T0);
        let joined = game_snapshot("g", "K7QX2M", &game.snapshot(), T0);
        game.join(PlayerName::new("bob").unwrap(), T0).unwrap();
        game.handle_timeout(T0); // The join's consequence: the start.
        let cell = Cell::try_from(40u8).unwrap();
        game.capture(game.host(), cell, T0).unwrap();
        let events = std::iter::from_fn(|| game.poll_event())
            .map(|e| event_message(&e, T0))
            .collect();
        (joined, events, game)
    }

    #[test]
    fn events_rebuild_the_servers_snapshot() {
        let (joined, events, game) = started();
        let mut replica = Replica::new(&joined);
        for e in &events {
            replica.apply(e);
        }
        assert_eq!(replica.seq(), 3);
        assert_same_game(
            replica.snapshot(),
            &game_snapshot("g", "K7QX2M", &game.snapshot(), T0),
        );
    }

    #[test]
    fn old_events_are_ignored_and_gaps_reported() {
        let (joined, events, _) = started();
        let mut replica = Replica::new(&joined);
        assert_eq!(replica.offer(&events[1]), Offer::Gap);
        assert_eq!(replica.seq(), 0, "a gap changes nothing");
        assert_eq!(replica.offer(&events[0]), Offer::Applied);
        assert_eq!(replica.offer(&events[0]), Offer::Old);
        assert_eq!(replica.seq(), 1);
    }

    #[test]
    #[should_panic(expected = "seq must grow by exactly 1")]
    fn a_gap_fails_a_strict_apply() {
        let (joined, events, _) = started();
        Replica::new(&joined).apply(&events[2]);
    }

    #[test]
    #[should_panic(expected = "a cell is never re-captured")]
    fn a_second_capture_of_a_cell_fails() {
        let (joined, events, _) = started();
        let mut replica = Replica::new(&joined);
        for e in &events {
            replica.apply(e);
        }
        replica.apply(&ServerMessage::Captured {
            seq: 4,
            cell: 40,
            player: 1,
            score: 1,
        });
    }
}
