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
    /// Listed in the lobby and matched by quick play.
    pub public: bool,
    /// When a public waiting game starts by itself, if that is scheduled.
    pub starts_at: Option<Timestamp>,
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
            Event::Countdown { starts_at, .. } => self.starts_at = *starts_at,
            Event::Started { ends_at, .. } => {
                self.status = Status::Active;
                self.ends_at = Some(*ends_at);
                self.starts_at = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{Builder, Clock, drain, id, name};
    use crate::{Cell, Game};

    /// Drains `game`, applies every event to `replica`, and checks that the
    /// replica then equals a fresh snapshot.
    #[track_caller]
    fn catch_up(replica: &mut Snapshot, game: &mut Game) {
        for event in drain(game) {
            assert!(replica.apply(&event), "refused {event:?}");
        }
        assert_eq!(*replica, game.snapshot());
    }

    #[test]
    fn replaying_every_event_rebuilds_the_snapshot() {
        let mut clock = Clock::new();
        let mut game = Game::new(
            Builder::new().max_players(4).settings(),
            name("a"),
            clock.now(),
        );
        let mut replica = game.snapshot();
        assert_eq!(replica.seq, 0);

        for n in ["b", "c"] {
            game.join(name(n), clock.advance_ms(5)).expect("free seat");
            catch_up(&mut replica, &mut game);
        }
        game.set_connected(id(2), false, clock.now())
            .expect("seated");
        catch_up(&mut replica, &mut game);
        game.leave(id(0), clock.now()).expect("seated"); // host hand-over
        catch_up(&mut replica, &mut game);
        assert_eq!(replica.host, id(1));
        game.leave(id(1), clock.now()).expect("seated");
        game.leave(id(2), clock.now()).expect("seated");
        catch_up(&mut replica, &mut game);
        assert!(replica.players.is_empty());
        game.join(name("d"), clock.now()).expect("free seat"); // hosts the empty game
        game.join(name("e"), clock.now()).expect("free seat");
        catch_up(&mut replica, &mut game);
        assert_eq!(replica.host, id(0));

        game.start(id(0), clock.advance_ms(100)).expect("host");
        catch_up(&mut replica, &mut game);
        assert_eq!(replica.status, Status::Active);
        for i in 0..10u8 {
            let cell = Cell::try_from(i * 7).expect("in range");
            game.capture(id(i % 2), cell, clock.advance_ms(3))
                .expect("free");
        }
        catch_up(&mut replica, &mut game);
        game.set_connected(id(1), false, clock.now())
            .expect("seated");
        game.set_connected(id(1), true, clock.now())
            .expect("seated");
        game.leave(id(1), clock.now()).expect("seated");
        catch_up(&mut replica, &mut game);
        assert_eq!(
            replica.player(id(1)).map(|p| (p.score, p.connected)),
            Some((5, false))
        );

        let end = game.ends_at().expect("active");
        game.handle_timeout(clock.set(end));
        catch_up(&mut replica, &mut game);
        assert_eq!(replica.status, Status::Completed);
        assert_eq!(replica.winners, Some(vec![id(0), id(1)]));
        assert_eq!(replica.reason, Some(GameOverReason::Time));
    }

    #[test]
    fn a_late_snapshot_catches_up_too() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(3).active(3, &clock);
        let mut replica = game.snapshot();
        for i in 0..CELL_COUNT as u8 {
            let cell = Cell::try_from(i).expect("in range");
            game.capture(id(i % 3), cell, clock.now()).expect("free");
        }
        catch_up(&mut replica, &mut game);
        assert_eq!(replica.reason, Some(GameOverReason::BoardFull));
        assert_eq!(replica.winners, Some(vec![id(0), id(1), id(2)]));
    }

    #[test]
    fn a_gap_or_a_duplicate_is_refused_without_change() {
        let clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        let mut replica = game.snapshot();
        for i in 0..3u8 {
            let cell = Cell::try_from(i).expect("in range");
            game.capture(id(0), cell, clock.now()).expect("free");
        }
        let events = drain(&mut game);
        let before = replica.clone();
        assert!(!replica.apply(&events[1]), "gap");
        assert_eq!(replica, before);
        assert!(replica.apply(&events[0]));
        let once = replica.clone();
        assert!(!replica.apply(&events[0]), "duplicate");
        assert_eq!(replica, once);
    }

    #[test]
    fn remaining_time_is_only_known_while_active() {
        let mut clock = Clock::new();
        let game = Builder::new().waiting(1, &clock);
        assert_eq!(game.snapshot().remaining(clock.now()), None);
        let mut game = Builder::new().duration_ms(10_000).active(2, &clock);
        let snap = game.snapshot();
        assert_eq!(
            snap.remaining(clock.advance_ms(2_500)),
            Some(Duration::from_millis(7_500))
        );
        assert_eq!(
            snap.remaining(clock.advance_ms(60_000)),
            Some(Duration::ZERO)
        );
        game.handle_timeout(clock.now());
        assert_eq!(game.snapshot().remaining(clock.now()), None);
    }

    #[test]
    fn player_finds_a_seat_by_id() {
        let clock = Clock::new();
        let snap = Builder::new().max_players(4).waiting(2, &clock).snapshot();
        assert_eq!(snap.player(id(1)).map(|p| p.name.as_str()), Some("p1"));
        assert_eq!(snap.player(id(2)), None);
    }
}
