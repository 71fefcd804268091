//! The state machine of one game.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{
    CELL_COUNT, Cell, Event, GameError, GameOverReason, Player, PlayerId, PlayerName, Settings,
    Snapshot, Status, Timestamp,
};

/// How long a completed game, or a waiting game with nobody connected, stays
/// readable before [`Game::is_expired`] says it may be dropped.
pub const RETENTION: Duration = Duration::from_secs(60);

/// One seat's state beyond what clients see.
#[derive(Debug, Clone)]
struct Seat {
    player: Player,
    /// Left an active game: keeps cells and score, can no longer be resumed.
    left: bool,
}

/// One game of gridcap: a deterministic state machine with time passed in.
///
/// # Calling order
///
/// **Inputs** — each takes `now` and either changes the state and queues
/// events, or returns a [`GameError`] and changes nothing:
/// [`join`](Self::join), [`leave`](Self::leave),
/// [`set_connected`](Self::set_connected), [`start`](Self::start),
/// [`capture`](Self::capture), and [`handle_timeout`](Self::handle_timeout),
/// which the driver calls when the instant from
/// [`poll_timeout`](Self::poll_timeout) has come.
///
/// **Outputs** — after every input, drain [`poll_event`](Self::poll_event)
/// until it returns `None` and broadcast each event; then re-arm the timer
/// from `poll_timeout`. Drop the game once [`is_expired`](Self::is_expired).
///
/// **Getters** — [`snapshot`](Self::snapshot), [`status`](Self::status),
/// [`seq`](Self::seq), [`owner`](Self::owner), [`player`](Self::player),
/// [`can_resume`](Self::can_resume), [`settings`](Self::settings).
#[derive(Debug, Clone)]
pub struct Game {
    /// Validated at creation; never changes.
    settings: Settings,
    status: Status,
    /// Indexed by player id; `None` is a free seat.
    seats: [Option<Seat>; 8],
    host: PlayerId,
    /// Owner by cell index.
    cells: [Option<PlayerId>; CELL_COUNT],
    /// Owned cells, to detect a full board without a scan.
    owned: usize,
    /// The seq of the last event emitted.
    seq: u64,
    /// Set when the game starts.
    ends_at: Option<Timestamp>,
    /// Set when the game completes; retention counts from here.
    completed_at: Option<Timestamp>,
    reason: Option<GameOverReason>,
    winners: Option<Vec<PlayerId>>,
    /// While waiting: since when no seat has been connected.
    unattended_since: Option<Timestamp>,
    /// Events not yet taken by `poll_event`; reused to avoid allocations.
    events: VecDeque<Event>,
}

impl Game {
    /// A new waiting game with `host` connected in seat 0. Its seq is 0: the
    /// creation itself is not an event (nobody else is there to hear it).
    pub fn new(settings: Settings, host: PlayerName, _now: Timestamp) -> Game {
        let host_id = PlayerId::FIRST;
        let mut seats: [Option<Seat>; 8] = Default::default();
        seats[0] = Some(Seat {
            player: Player {
                id: host_id,
                name: host,
                score: 0,
                connected: true,
            },
            left: false,
        });
        Game {
            settings,
            status: Status::Waiting,
            seats,
            host: host_id,
            cells: [None; CELL_COUNT],
            owned: 0,
            seq: 0,
            ends_at: None,
            completed_at: None,
            reason: None,
            winners: None,
            unattended_since: None,
            events: VecDeque::with_capacity(4),
        }
    }

    /// Seats `name` in the lowest free seat of a waiting game, connected.
    /// Emits `PlayerJoined`, and `Started` too when that fills the game.
    ///
    /// If every seat is empty (all players left the waiting game), the
    /// newcomer also becomes host, so that someone can start the game.
    pub fn join(&mut self, name: PlayerName, now: Timestamp) -> Result<PlayerId, GameError> {
        if self.status != Status::Waiting {
            return Err(GameError::AlreadyStarted);
        }
        let free = PlayerId::all()
            .take(usize::from(self.settings.max_players()))
            .find(|id| self.seats[id.index()].is_none())
            .ok_or(GameError::GameFull)?;
        if self.seats[self.host.index()].is_none() {
            self.host = free;
        }
        let player = Player {
            id: free,
            name,
            score: 0,
            connected: true,
        };
        self.seats[free.index()] = Some(Seat {
            player: player.clone(),
            left: false,
        });
        self.unattended_since = None;
        let seq = self.next_seq();
        self.events.push_back(Event::PlayerJoined { seq, player });
        if self.seated() == usize::from(self.settings.max_players()) {
            self.begin(now);
        }
        Ok(free)
    }

    /// `player` leaves. Waiting: the seat is freed and, if it was the host's,
    /// the lowest remaining seat becomes host. Active: the seat keeps its cells
    /// and score but cannot be resumed. Completed: the seat can no longer be
    /// resumed; the result is frozen, so nothing visible changes and nothing is
    /// announced (no event follows `GameOver`).
    pub fn leave(&mut self, player: PlayerId, now: Timestamp) -> Result<(), GameError> {
        self.active_seat(player)?;
        match self.status {
            Status::Waiting => {
                self.seats[player.index()] = None;
                if self.host == player
                    && let Some(next) = self.seats.iter().flatten().next()
                {
                    self.host = next.player.id;
                }
                let seq = self.next_seq();
                self.events.push_back(Event::PlayerLeft {
                    seq,
                    player,
                    host: self.host,
                });
                self.note_unattended(now);
            }
            Status::Active => {
                if let Some(s) = self.seats[player.index()].as_mut() {
                    s.left = true;
                    s.player.connected = false;
                }
                let seq = self.next_seq();
                self.events.push_back(Event::PlayerLeft {
                    seq,
                    player,
                    host: self.host,
                });
            }
            Status::Completed => {
                // Only the hidden flag: `connected` is part of the snapshot,
                // which must stay equal to the events replayed on it.
                if let Some(s) = self.seats[player.index()].as_mut() {
                    s.left = true;
                }
            }
        }
        Ok(())
    }

    /// Marks whether a connection holds `player`'s seat. Emits `Presence`
    /// when that changes. A seat that left an active game cannot reconnect.
    ///
    /// In a completed game this accepts and changes nothing: the result is
    /// frozen (no event follows `GameOver`, and a snapshot must equal the
    /// events replayed on it).
    pub fn set_connected(
        &mut self,
        player: PlayerId,
        connected: bool,
        now: Timestamp,
    ) -> Result<(), GameError> {
        self.active_seat(player)?;
        if self.status == Status::Completed {
            return Ok(());
        }
        let Some(seat) = self.seats[player.index()].as_mut() else {
            return Err(GameError::NotInGame);
        };
        if seat.player.connected == connected {
            return Ok(());
        }
        seat.player.connected = connected;
        let seq = self.next_seq();
        self.events.push_back(Event::Presence {
            seq,
            player,
            connected,
        });
        if connected {
            self.unattended_since = None;
        } else {
            self.note_unattended(now);
        }
        Ok(())
    }

    /// Whether `player`'s seat may be taken back by a new connection.
    pub fn can_resume(&self, player: PlayerId) -> Result<(), GameError> {
        self.active_seat(player).map(|_| ())
    }

    /// The host starts the round; needs `min_players` connected seats.
    pub fn start(&mut self, player: PlayerId, now: Timestamp) -> Result<(), GameError> {
        self.active_seat(player)?;
        if self.status != Status::Waiting {
            return Err(GameError::AlreadyStarted);
        }
        if player != self.host {
            return Err(GameError::NotHost);
        }
        let connected = self
            .seats
            .iter()
            .flatten()
            .filter(|s| s.player.connected)
            .count();
        if connected < usize::from(self.settings.min_players()) {
            return Err(GameError::NotEnoughPlayers);
        }
        self.begin(now);
        Ok(())
    }

    /// `player` tries to take `cell`. First writer wins; a capture at or after
    /// the deadline is `NotActive` even before `handle_timeout` ran. Emits
    /// `Captured`, and `GameOver` when that fills the board.
    pub fn capture(
        &mut self,
        player: PlayerId,
        cell: Cell,
        now: Timestamp,
    ) -> Result<(), GameError> {
        // Every check comes before the first write, so a refusal changes nothing.
        let seat = match self.seats[player.index()].as_mut() {
            Some(seat) if !seat.left => seat,
            _ => return Err(GameError::NotInGame),
        };
        if self.status != Status::Active || self.ends_at.is_none_or(|end| now >= end) {
            return Err(GameError::NotActive);
        }
        let slot = &mut self.cells[cell.index()];
        if slot.is_some() {
            return Err(GameError::Taken);
        }
        *slot = Some(player);
        seat.player.score += 1;
        let score = seat.player.score;
        self.owned += 1;
        let seq = self.next_seq();
        self.events.push_back(Event::Captured {
            seq,
            cell,
            player,
            score,
        });
        if self.owned == CELL_COUNT {
            self.finish(GameOverReason::BoardFull, now);
        }
        Ok(())
    }

    /// Ends the round once its deadline has come. Call it when the instant
    /// from [`poll_timeout`](Self::poll_timeout) arrives; calling it early or
    /// twice does nothing.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let (Status::Active, Some(end)) = (self.status, self.ends_at)
            && now >= end
        {
            self.finish(GameOverReason::Time, end);
        }
    }

    /// The next instant at which the driver must act: the round's deadline
    /// while active (call `handle_timeout`), or the moment the game expires
    /// (check `is_expired`). `None` while nothing is due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.status {
            Status::Active => self.ends_at,
            Status::Completed => self.completed_at.map(|t| t + RETENTION),
            Status::Waiting => self.unattended_since.map(|t| t + RETENTION),
        }
    }

    /// Whether the game may be dropped: completed for the retention period,
    /// or waiting with nobody connected for that long.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        match self.status {
            Status::Active => false,
            Status::Completed | Status::Waiting => self.poll_timeout().is_some_and(|t| now >= t),
        }
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The state as of the last emitted event.
    pub fn snapshot(&self) -> Snapshot {
        let mut cells = [0u8; CELL_COUNT];
        for (out, owner) in cells.iter_mut().zip(self.cells.iter()) {
            *out = owner.map_or(0, |p| u8::from(p) + 1);
        }
        Snapshot {
            status: self.status,
            seq: self.seq,
            host: self.host,
            max_players: self.settings.max_players(),
            duration: self.settings.duration(),
            players: self
                .seats
                .iter()
                .flatten()
                .map(|s| s.player.clone())
                .collect(),
            cells,
            ends_at: self.ends_at,
            reason: self.reason,
            winners: self.winners.clone(),
        }
    }

    /// Life-cycle state.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The seq of the last emitted event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The host's seat.
    pub fn host(&self) -> PlayerId {
        self.host
    }

    /// The game's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// When the round ends (or ended); `None` while waiting.
    pub fn ends_at(&self) -> Option<Timestamp> {
        self.ends_at
    }

    /// The owner of `cell`, if any.
    pub fn owner(&self, cell: Cell) -> Option<PlayerId> {
        self.cells[cell.index()]
    }

    /// The player seated at `id`.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        self.seats[id.index()].as_ref().map(|s| &s.player)
    }

    /// Seats taken.
    fn seated(&self) -> usize {
        self.seats.iter().flatten().count()
    }

    /// The seat of `player` if it is seated and has not left.
    fn active_seat(&self, player: PlayerId) -> Result<&Seat, GameError> {
        match self.seats[player.index()].as_ref() {
            Some(seat) if !seat.left => Ok(seat),
            _ => Err(GameError::NotInGame),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Starts the clock unconditionally (callers check the preconditions).
    fn begin(&mut self, now: Timestamp) {
        let duration = self.settings.duration();
        let ends_at = now + duration;
        self.status = Status::Active;
        self.ends_at = Some(ends_at);
        self.unattended_since = None;
        let seq = self.next_seq();
        self.events.push_back(Event::Started {
            seq,
            ends_at,
            duration,
        });
    }

    fn finish(&mut self, reason: GameOverReason, at: Timestamp) {
        let mut scores = vec![0u32; usize::from(self.settings.max_players())];
        for seat in self.seats.iter().flatten() {
            if let Some(slot) = scores.get_mut(seat.player.id.index()) {
                *slot = seat.player.score;
            }
        }
        let top = self
            .seats
            .iter()
            .flatten()
            .map(|s| s.player.score)
            .max()
            .unwrap_or(0);
        let winners: Vec<PlayerId> = self
            .seats
            .iter()
            .flatten()
            .filter(|s| s.player.score == top)
            .map(|s| s.player.id)
            .collect();
        self.status = Status::Completed;
        self.completed_at = Some(at);
        self.reason = Some(reason);
        self.winners = Some(winners.clone());
        let seq = self.next_seq();
        self.events.push_back(Event::GameOver {
            seq,
            reason,
            scores,
            winners,
        });
    }

    /// While waiting, start the expiry clock when no seat is connected.
    fn note_unattended(&mut self, now: Timestamp) {
        if self.status == Status::Waiting
            && self.unattended_since.is_none()
            && !self.seats.iter().flatten().any(|s| s.player.connected)
        {
            self.unattended_since = Some(now);
        }
    }
}
