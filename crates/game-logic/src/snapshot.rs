//! A game's state as clients see it, and how events move it forward.

use std::time::Duration;

use crate::{CELL_COUNT, Event, GameOverReason, Player, PlayerId, Timestamp};

/// Where a game is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Seats are open; the host may start.
    Waiting,
    /// The round is running; captures are accepted until `ends_at`.
    Active,
    /// The round is over; the result stays readable for the retention period.
    Completed,
}

/// Everything a client needs to draw a game, as of event `seq`.
///
/// Built by [`Game::snapshot`](crate::Game::snapshot), and kept current on a
/// client by [`Snapshot::apply`]: a snapshot followed by the events after it
/// equals a fresh snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Life-cycle state.
    pub status: Status,
    /// The seq of the last event this snapshot includes (0: none yet).
    pub seq: u64,
    /// The seat that may start the game.
    pub host: PlayerId,
    /// Seats in the game.
    pub max_players: u8,
    /// Length of the round.
    pub duration: Duration,
    /// Seated players, by ascending id. Players who left an active game stay
    /// listed (disconnected) because they keep their cells and score.
    pub players: Vec<Player>,
    /// Owner by cell index: 0 = free, k + 1 = owned by player k.
    pub cells: [u8; CELL_COUNT],
    /// When the round ends (or ended); `None` while waiting.
    pub ends_at: Option<Timestamp>,
    /// Why the round ended; `Some` once completed.
    pub reason: Option<GameOverReason>,
    /// All tied leaders; `Some` once completed.
    pub winners: Option<Vec<PlayerId>>,
}

impl Snapshot {
    /// Time left in the round at `now`: `Some` only while active.
    pub fn remaining(&self, now: Timestamp) -> Option<Duration> {
        match (self.status, self.ends_at) {
            (Status::Active, Some(end)) => Some(end.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// The seated player with id `id`.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        self.players.iter().find(|p| p.id == id)
    }

    fn player_mut(&mut self, id: PlayerId) -> Option<&mut Player> {
        self.players.iter_mut().find(|p| p.id == id)
    }

    /// Applies `event` when its seq is exactly `self.seq + 1` and returns
    /// `true`; otherwise changes nothing and returns `false` (a gap or a
    /// duplicate: the client should ask for a fresh snapshot).
    pub fn apply(&mut self, event: &Event) -> bool {
        if event.seq() != self.seq + 1 {
            return false;
        }
        self.seq = event.seq();
        match event {
            Event::PlayerJoined { player, .. } => {
                // The same rule as `Game::join`: a newcomer to an empty game hosts it.
                if self.player(self.host).is_none() {
                    self.host = player.id;
                }
                let at = self.players.partition_point(|p| p.id < player.id);
                self.players.insert(at, player.clone());
            }
            Event::PlayerLeft { player, host, .. } => {
                if self.status == Status::Waiting {
                    self.players.retain(|p| p.id != *player);
                } else if let Some(p) = self.player_mut(*player) {
                    p.connected = false;
                }
                self.host = *host;
            }
            Event::Presence {
                player, connected, ..
            } => {
                if let Some(p) = self.player_mut(*player) {
                    p.connected = *connected;
                }
            }
            Event::Started { ends_at, .. } => {
                self.status = Status::Active;
                self.ends_at = Some(*ends_at);
            }
            Event::Captured {
                cell,
                player,
                score,
                ..
            } => {
                self.cells[cell.index()] = u8::from(*player) + 1;
                if let Some(p) = self.player_mut(*player) {
                    p.score = *score;
                }
            }
            Event::GameOver {
                reason, winners, ..
            } => {
                self.status = Status::Completed;
                self.reason = Some(*reason);
                self.winners = Some(winners.clone());
            }
        }
        true
    }
}
