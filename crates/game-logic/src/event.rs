//! What the rules emit: one value per broadcast game event.

use std::time::Duration;

use crate::{Cell, Player, PlayerId, Timestamp};

/// Why a game ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GameOverReason {
    /// `duration` elapsed since `started`.
    Time,
    /// All 81 cells are owned.
    BoardFull,
}

/// A broadcast game event. Every event carries the game's next `seq`:
/// the first event of a game has seq 1, and each later one exactly one more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A player took a free seat in a waiting game. When every seat was
    /// empty (all players had left), the newcomer also becomes host.
    PlayerJoined {
        /// This event's sequence number.
        seq: u64,
        /// The new player, as a snapshot would show them.
        player: Player,
    },
    /// A player left: in a waiting game the seat is freed (and the host may
    /// pass to the lowest remaining seat); in an active game the seat keeps
    /// its cells and score but is no longer connected and cannot be resumed.
    PlayerLeft {
        /// This event's sequence number.
        seq: u64,
        /// The seat that left.
        player: PlayerId,
        /// The host after this event (changes when the host left a waiting game).
        host: PlayerId,
    },
    /// A seat's connection dropped or came back.
    Presence {
        /// This event's sequence number.
        seq: u64,
        /// The seat.
        player: PlayerId,
        /// Whether a connection now holds the seat.
        connected: bool,
    },
    /// A public waiting game's auto-start was scheduled (`starts_at`) or
    /// cancelled (`None`).
    Countdown {
        /// This event's sequence number.
        seq: u64,
        /// When the game will start by itself; `None`: not any more.
        starts_at: Option<Timestamp>,
    },
    /// The round began.
    Started {
        /// This event's sequence number.
        seq: u64,
        /// When the round ends; captures at or after it are refused.
        ends_at: Timestamp,
        /// The round's length (the remaining time at the moment of starting).
        duration: Duration,
    },
    /// A free cell was captured.
    Captured {
        /// This event's sequence number.
        seq: u64,
        /// The cell.
        cell: Cell,
        /// Its new, permanent owner.
        player: PlayerId,
        /// The owner's score after this capture.
        score: u32,
    },
    /// The round ended; nothing is emitted after this.
    GameOver {
        /// This event's sequence number.
        seq: u64,
        /// Time ran out or the board filled up.
        reason: GameOverReason,
        /// Score by seat index, one entry per seat (`max_players` entries;
        /// 0 for an empty seat).
        scores: Vec<u32>,
        /// Every seated player with the top score (all tied leaders).
        winners: Vec<PlayerId>,
    },
}

impl Event {
    /// The event's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Event::PlayerJoined { seq, .. }
            | Event::PlayerLeft { seq, .. }
            | Event::Presence { seq, .. }
            | Event::Countdown { seq, .. }
            | Event::Started { seq, .. }
            | Event::Captured { seq, .. }
            | Event::GameOver { seq, .. } => *seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{id, name};

    #[test]
    fn seq_reads_every_variant() {
        let cell = Cell::try_from(3u8).expect("in range");
        let events = [
            Event::PlayerJoined {
                seq: 1,
                player: Player {
                    id: id(1),
                    name: name("b"),
                    score: 0,
                    connected: true,
                },
            },
            Event::PlayerLeft {
                seq: 2,
                player: id(1),
                host: id(0),
            },
            Event::Presence {
                seq: 3,
                player: id(0),
                connected: false,
            },
            Event::Started {
                seq: 4,
                ends_at: Timestamp::from_unix_ms(9),
                duration: Duration::from_secs(1),
            },
            Event::Captured {
                seq: 5,
                cell,
                player: id(0),
                score: 1,
            },
            Event::GameOver {
                seq: 6,
                reason: GameOverReason::Time,
                scores: vec![1, 0],
                winners: vec![id(0)],
            },
        ];
        let seqs: Vec<u64> = events.iter().map(Event::seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    }
}
