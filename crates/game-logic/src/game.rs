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

/// The bit of `player`'s seat in a seat mask.
fn seat_bit(player: PlayerId) -> u8 {
    1 << player.index()
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
/// **After a join**, what the join causes (the start of a game it filled,
/// the lobby countdown of a public game it brought to `min_players`) is due
/// at once but not done yet: the driver sends the joiner its snapshot first,
/// then calls `handle_timeout(now)` (which `poll_timeout` asks for anyway),
/// so the joiner hears `started` or `countdown` like everyone else.
///
/// **Getters** — [`snapshot`](Self::snapshot), [`status`](Self::status),
/// [`seq`](Self::seq), [`owner`](Self::owner), [`player`](Self::player),
/// [`can_resume`](Self::can_resume), [`settings`](Self::settings).
///
/// `Game` is `Clone + Eq` so that a caller (or a test) can check that a
/// refused command left it exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Game {
    /// Validated at creation; never changes.
    settings: Settings,
    status: Status,
    /// Indexed by player id; `None` is a free seat.
    seats: [Option<Player>; 8],
    /// The seats that left an active game (bit = seat): they keep cells
    /// and score but can no longer be resumed. A mask rather than a flag
    /// per seat: a flag would pad every seat by 8 bytes.
    left: u8,
    host: PlayerId,
    /// Owner by cell index, as the snapshot encodes it: 0 for a free cell,
    /// else the owner's seat + 1 (one byte a cell: `Option<PlayerId>` takes
    /// two).
    cells: [u8; CELL_COUNT],
    /// Owned cells (at most 81), to detect a full board without a scan.
    owned: u8,
    /// The seq of the last event emitted.
    seq: u64,
    /// Set when the game completes (its winners follow from the frozen
    /// scores, see [`winners`](Self::winners)).
    reason: Option<GameOverReason>,
    /// Where the expiry clock runs from: while waiting, since when no seat
    /// has been connected; once completed, when it completed (retention
    /// counts from there). `None` while active. One field for both, as a
    /// game is only ever in one of the two.
    expiry_from: Option<Timestamp>,
    /// While waiting: a join's consequences are due at this instant (see
    /// the calling order).
    review_at: Option<Timestamp>,
    /// While waiting: when the game starts by itself (the lobby countdown),
    /// if scheduled. Once started: when the round ends (or ended). Read
    /// through [`starts_at`](Self::starts_at) and [`ends_at`](Self::ends_at).
    deadline: Option<Timestamp>,
    /// Events not yet taken by `poll_event`. A running game reuses its
    /// allocation; a waiting one (events are rare there, and a node may
    /// hold many idle ones) gives it back once drained.
    events: VecDeque<Event>,
}

impl Game {
    /// A new waiting game with `host` connected in seat 0. Its seq is 0: the
    /// creation itself is not an event (nobody else is there to hear it).
    pub fn new(settings: Settings, host: PlayerName, _now: Timestamp) -> Game {
        let host_id = PlayerId::FIRST;
        let mut seats: [Option<Player>; 8] = Default::default();
        seats[0] = Some(Player {
            id: host_id,
            name: host,
            score: 0,
            connected: true,
        });
        Game {
            settings,
            status: Status::Waiting,
            seats,
            left: 0,
            host: host_id,
            cells: [0; CELL_COUNT],
            owned: 0,
            seq: 0,
            reason: None,
            expiry_from: None,
            review_at: None,
            deadline: None,
            events: VecDeque::new(),
        }
    }

    /// A waiting game gathered again from another place (a stateful node
    /// hands its waiting games to a peer when it drains): `players` in their
    /// seats, none connected yet (each takes its seat back with a resume),
    /// `host` among them, and the seq carried on so that events continue it.
    /// The expiry clock of a game nobody is connected to runs from `now`.
    ///
    /// Refused with `InvalidSettings` unless the seats are distinct, within
    /// `settings.max_players()`, not all taken (a full game would have
    /// started), and include the host.
    pub fn regathered(
        settings: Settings,
        players: Vec<(PlayerId, PlayerName)>,
        host: PlayerId,
        seq: u64,
        now: Timestamp,
    ) -> Result<Game, GameError> {
        let seats_max = usize::from(settings.max_players());
        if players.is_empty() || players.len() >= seats_max {
            return Err(GameError::InvalidSettings);
        }
        let mut seats: [Option<Player>; 8] = Default::default();
        for (id, name) in players {
            let slot = seats
                .get_mut(id.index())
                .filter(|_| id.index() < seats_max)
                .ok_or(GameError::InvalidSettings)?;
            if slot.is_some() {
                return Err(GameError::InvalidSettings);
            }
            *slot = Some(Player {
                id,
                name,
                score: 0,
                connected: false,
            });
        }
        if seats[host.index()].is_none() {
            return Err(GameError::InvalidSettings);
        }
        Ok(Game {
            settings,
            status: Status::Waiting,
            seats,
            left: 0,
            host,
            cells: [0; CELL_COUNT],
            owned: 0,
            seq,
            reason: None,
            expiry_from: Some(now),
            review_at: None,
            deadline: None,
            events: VecDeque::new(),
        })
    }

    /// Seats `name` in the lowest free seat of a waiting game, connected.
    /// Emits `PlayerJoined`. What the join causes — `Started` when it fills
    /// the game, `Countdown` when it brings a public game to `min_players`
    /// connected — follows at the next [`handle_timeout`](Self::handle_timeout),
    /// due at `now`, so that the joiner's snapshot can be taken between.
    ///
    /// If every seat is empty (all players left the waiting game), the
    /// newcomer also becomes host, so that someone can start the game.
    ///
    /// Refusals: `AlreadyStarted` for a completed game (protocol §5, full
    /// or not); `GameFull` when every seat of an active game is taken (it
    /// auto-started, but "full" is the more useful answer); otherwise
    /// `AlreadyStarted` once the game is active. A completed game is still
    /// readable through [`snapshot`](Self::snapshot) until it expires.
    pub fn join(&mut self, name: PlayerName, now: Timestamp) -> Result<PlayerId, GameError> {
        if self.status == Status::Completed {
            return Err(GameError::AlreadyStarted);
        }
        let free = PlayerId::all()
            .take(usize::from(self.settings.max_players()))
            .find(|id| self.seats[id.index()].is_none())
            .ok_or(GameError::GameFull)?;
        if self.status != Status::Waiting {
            return Err(GameError::AlreadyStarted);
        }
        if self.seats[self.host.index()].is_none() {
            self.host = free;
        }
        let player = Player {
            id: free,
            name,
            score: 0,
            connected: true,
        };
        self.seats[free.index()] = Some(player.clone());
        self.left &= !seat_bit(free);
        self.expiry_from = None;
        let seq = self.next_seq();
        self.events.push_back(Event::PlayerJoined { seq, player });
        self.review_at.get_or_insert(now);
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
                    self.host = next.id;
                }
                let seq = self.next_seq();
                self.events.push_back(Event::PlayerLeft {
                    seq,
                    player,
                    host: self.host,
                });
                self.note_unattended(now);
                self.review(now);
            }
            Status::Active => {
                if let Some(p) = self.seats[player.index()].as_mut() {
                    p.connected = false;
                }
                self.left |= seat_bit(player);
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
                self.left |= seat_bit(player);
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
        if seat.connected == connected {
            return Ok(());
        }
        seat.connected = connected;
        let seq = self.next_seq();
        self.events.push_back(Event::Presence {
            seq,
            player,
            connected,
        });
        if connected {
            self.expiry_from = None; // Waiting (or active, where it is None).
        } else {
            self.note_unattended(now);
        }
        self.review(now);
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
        if self.connected() < usize::from(self.settings.min_players()) {
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
        let left = self.has_left(player);
        let seat = match self.seats[player.index()].as_mut() {
            Some(seat) if !left => seat,
            _ => return Err(GameError::NotInGame),
        };
        // Active: the deadline is the round's end.
        if self.status != Status::Active || self.deadline.is_none_or(|end| now >= end) {
            return Err(GameError::NotActive);
        }
        let slot = &mut self.cells[cell.index()];
        if *slot != 0 {
            return Err(GameError::Taken);
        }
        *slot = u8::from(player) + 1;
        seat.score += 1;
        let score = seat.score;
        self.owned += 1;
        let seq = self.next_seq();
        self.events.push_back(Event::Captured {
            seq,
            cell,
            player,
            score,
        });
        if usize::from(self.owned) == CELL_COUNT {
            self.finish(GameOverReason::BoardFull, now);
        }
        Ok(())
    }

    /// Does what is due at `now`: a join's consequences, the lobby
    /// auto-start, the end of the round. Call it when the instant from
    /// [`poll_timeout`](Self::poll_timeout) arrives; calling it early or
    /// twice does nothing.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if let Some(at) = self.review_at.filter(|&at| now >= at) {
            self.review_at = None;
            self.review(at);
        }
        if self.status == Status::Waiting
            && let Some(at) = self.starts_at().filter(|&at| now >= at)
        {
            self.begin(at);
        }
        if let (Status::Active, Some(end)) = (self.status, self.ends_at())
            && now >= end
        {
            self.finish(GameOverReason::Time, end);
        }
    }

    /// The next instant at which the driver must act: a join's
    /// consequences or the lobby auto-start while waiting, the round's
    /// deadline while active (call `handle_timeout`), or the moment the game
    /// expires (check `is_expired`). `None` while nothing is due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.status {
            Status::Active => self.ends_at(),
            Status::Completed => self.expires_at(),
            Status::Waiting => [self.review_at, self.starts_at(), self.expires_at()]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    /// Whether the game may be dropped: completed for the retention period,
    /// or waiting with nobody connected for that long.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at().is_some_and(|t| now >= t)
    }

    /// When the game may be dropped, if that clock runs.
    fn expires_at(&self) -> Option<Timestamp> {
        match self.status {
            Status::Active => None,
            Status::Completed | Status::Waiting => self.expiry_from.map(|t| t + RETENTION),
        }
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_none() && self.status == Status::Waiting && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        event
    }

    /// The state as of the last emitted event.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: self.status,
            seq: self.seq,
            host: self.host,
            max_players: self.settings.max_players(),
            duration: self.settings.duration(),
            public: self.settings.public(),
            starts_at: self.starts_at(),
            players: self.seats.iter().flatten().cloned().collect(),
            cells: self.cells,
            ends_at: self.ends_at(),
            reason: self.reason,
            winners: self.winners(),
        }
    }

    /// Life-cycle state.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Since when a waiting game has had no connected seat (its expiry
    /// clock, protocol §5); `None` while someone is connected or once the
    /// round has started.
    pub fn unattended_since(&self) -> Option<Timestamp> {
        match self.status {
            Status::Waiting => self.expiry_from,
            Status::Active | Status::Completed => None,
        }
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
        match self.status {
            Status::Waiting => None,
            Status::Active | Status::Completed => self.deadline,
        }
    }

    /// When a waiting game starts by itself, if scheduled.
    fn starts_at(&self) -> Option<Timestamp> {
        match self.status {
            Status::Waiting => self.deadline,
            Status::Active | Status::Completed => None,
        }
    }

    /// The seats with the top score, once completed (scores are frozen
    /// then, and no seat is freed).
    fn winners(&self) -> Option<Vec<PlayerId>> {
        (self.status == Status::Completed).then(|| self.top_scorers())
    }

    /// The seats with the top score.
    fn top_scorers(&self) -> Vec<PlayerId> {
        let top = self
            .seats
            .iter()
            .flatten()
            .map(|s| s.score)
            .max()
            .unwrap_or(0);
        self.seats
            .iter()
            .flatten()
            .filter(|s| s.score == top)
            .map(|s| s.id)
            .collect()
    }

    /// The owner of `cell`, if any.
    pub fn owner(&self, cell: Cell) -> Option<PlayerId> {
        let seat = self.cells[cell.index()].checked_sub(1)?;
        PlayerId::try_from(seat).ok()
    }

    /// The player seated at `id`.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        self.seats[id.index()].as_ref()
    }

    /// Seats taken.
    fn seated(&self) -> usize {
        self.seats.iter().flatten().count()
    }

    /// The seat of `player` if it is seated and has not left.
    fn active_seat(&self, player: PlayerId) -> Result<&Player, GameError> {
        match self.seats[player.index()].as_ref() {
            Some(seat) if !self.has_left(player) => Ok(seat),
            _ => Err(GameError::NotInGame),
        }
    }

    /// Whether `player` left an active game.
    fn has_left(&self, player: PlayerId) -> bool {
        self.left & seat_bit(player) != 0
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// What the seats now call for while waiting: the start of a full
    /// game; for a public game, scheduling (`Countdown`) the auto-start once
    /// `min_players` are connected, or cancelling it when they no longer are.
    fn review(&mut self, now: Timestamp) {
        if self.status != Status::Waiting {
            return;
        }
        if self.seated() == usize::from(self.settings.max_players()) {
            self.begin(now);
            return;
        }
        if !self.settings.public() {
            return;
        }
        let connected = self.connected();
        let enough = connected >= usize::from(self.settings.min_players());
        let starts_at = match (enough, self.starts_at()) {
            (true, None) => Some(now + self.settings.lobby_start()),
            (false, Some(_)) => None,
            _ => return,
        };
        self.deadline = starts_at;
        let seq = self.next_seq();
        self.events.push_back(Event::Countdown { seq, starts_at });
    }

    /// Seats held by a connection.
    fn connected(&self) -> usize {
        self.seats.iter().flatten().filter(|s| s.connected).count()
    }

    /// Starts the clock unconditionally (callers check the preconditions).
    fn begin(&mut self, now: Timestamp) {
        let duration = self.settings.duration();
        let ends_at = now + duration;
        self.status = Status::Active;
        self.deadline = Some(ends_at);
        self.expiry_from = None;
        self.review_at = None;
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
            if let Some(slot) = scores.get_mut(seat.id.index()) {
                *slot = seat.score;
            }
        }
        let winners = self.top_scorers();
        self.status = Status::Completed;
        self.expiry_from = Some(at);
        self.reason = Some(reason);
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
            && self.expiry_from.is_none()
            && !self.seats.iter().flatten().any(|s| s.connected)
        {
            self.expiry_from = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{Builder, Clock, T0, assert_refused, drain, id, name};

    fn cell(i: u8) -> Cell {
        Cell::try_from(i).expect("test cells are 0..=80")
    }

    fn seqs(events: &[Event]) -> Vec<u64> {
        events.iter().map(Event::seq).collect()
    }

    // ---- gathered again elsewhere ----

    #[test]
    fn a_regathered_game_waits_with_its_seats_disconnected_until_resumed() {
        let settings = Builder::new().max_players(4).settings();
        let players = vec![(id(0), name("ada")), (id(2), name("bob"))];
        let mut game = Game::regathered(settings, players, id(2), 7, T0).unwrap();
        assert_eq!(
            (game.status(), game.host(), game.seq()),
            (Status::Waiting, id(2), 7)
        );
        let snap = game.snapshot();
        assert_eq!(snap.players.len(), 2);
        assert!(snap.players.iter().all(|p| !p.connected));
        assert_eq!(
            game.poll_timeout(),
            Some(T0 + RETENTION),
            "expires if nobody comes back"
        );
        game.set_connected(id(0), true, T0).unwrap();
        assert_eq!(game.seq(), 8, "events continue the seq");
        // The free seat is the lowest one: 1.
        assert_eq!(game.join(name("cy"), T0), Ok(id(1)));
    }

    #[test]
    fn a_regathered_game_refuses_impossible_seats() {
        let settings = Builder::new().max_players(2).settings();
        let two = vec![(id(0), name("ada")), (id(1), name("bob"))];
        let cases = [
            (vec![], id(0)),
            (two, id(0)),
            (vec![(id(2), name("ada"))], id(2)),
            (vec![(id(1), name("ada"))], id(0)),
        ];
        for (players, host) in cases {
            let refused = Game::regathered(settings, players.clone(), host, 1, T0);
            assert_eq!(
                refused.err(),
                Some(GameError::InvalidSettings),
                "{players:?}"
            );
        }
        let dup = Builder::new().max_players(4).settings();
        let players = vec![(id(1), name("ada")), (id(1), name("bob"))];
        assert!(Game::regathered(dup, players, id(1), 1, T0).is_err());
    }

    // ---- creation ----

    #[test]
    fn a_new_game_waits_with_its_host_in_seat_0() {
        let mut game = Game::new(Builder::new().settings(), name("ada"), T0);
        assert_eq!(game.status(), Status::Waiting);
        assert_eq!(game.seq(), 0);
        assert_eq!(game.host(), id(0));
        assert_eq!(game.ends_at(), None);
        assert_eq!(game.poll_timeout(), None);
        assert!(!game.is_expired(T0 + Duration::from_secs(3600)));
        assert_eq!(game.poll_event(), None);
        let snap = game.snapshot();
        assert_eq!(snap.players.len(), 1);
        assert_eq!(snap.players[0].name.as_str(), "ada");
        assert!(snap.players[0].connected);
        assert!(snap.cells.iter().all(|&c| c == 0));
        assert!(Cell::all().all(|c| game.owner(c).is_none()));
        assert_eq!(game.can_resume(id(0)), Ok(()));
        assert_eq!(game.can_resume(id(1)), Err(GameError::NotInGame));
    }

    // ---- join ----

    #[test]
    fn join_takes_the_lowest_free_seat_and_announces_it() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(4).waiting(3, &clock);
        assert_eq!(game.leave(id(1), clock.now()), Ok(()));
        drain(&mut game);
        assert_eq!(game.join(name("eve"), clock.now()), Ok(id(1)));
        let events = drain(&mut game);
        assert_eq!(events.len(), 1);
        match &events[0] {
            Event::PlayerJoined { seq, player } => {
                assert_eq!(*seq, game.seq());
                assert_eq!(player.id, id(1));
                assert_eq!(player.name.as_str(), "eve");
                assert_eq!(player.score, 0);
                assert!(player.connected);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(game.status(), Status::Waiting);
    }

    #[test]
    fn filling_the_last_seat_starts_the_round() {
        let mut clock = Clock::new();
        let mut game = Builder::new()
            .max_players(3)
            .duration_ms(10_000)
            .waiting(2, &clock);
        let now = clock.advance_ms(500);
        assert_eq!(game.join(name("p2"), now), Ok(id(2)));
        let joined = drain(&mut game);
        assert!(matches!(joined[..], [Event::PlayerJoined { .. }]));
        // The joiner's snapshot is taken here: after its join, before the start.
        let snapshot = game.snapshot();
        assert_eq!(
            (snapshot.status, snapshot.seq),
            (Status::Waiting, joined[0].seq())
        );
        assert_eq!(game.poll_timeout(), Some(now), "the start is due at once");
        game.handle_timeout(now);
        let events = drain(&mut game);
        assert_eq!(
            events,
            vec![Event::Started {
                seq: joined[0].seq() + 1,
                ends_at: now + Duration::from_secs(10),
                duration: Duration::from_secs(10),
            }]
        );
        assert_eq!(game.status(), Status::Active);
        assert_eq!(game.ends_at(), Some(now + Duration::from_secs(10)));
        assert_eq!(game.poll_timeout(), game.ends_at());
    }

    #[test]
    fn auto_start_does_not_need_every_seat_connected() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(3).waiting(2, &clock);
        assert_eq!(game.set_connected(id(1), false, clock.now()), Ok(()));
        assert_eq!(game.join(name("p2"), clock.now()), Ok(id(2)));
        game.handle_timeout(clock.now());
        assert_eq!(game.status(), Status::Active);
    }

    #[test]
    fn join_is_refused_once_the_game_has_started() {
        let mut clock = Clock::new();
        let mut game = Builder::new().max_players(4).active(2, &clock);
        assert_refused(&mut game, GameError::AlreadyStarted, |g| {
            g.join(name("late"), clock.now())
        });
        let end = clock.set(game.ends_at().expect("active"));
        game.handle_timeout(end);
        drain(&mut game);
        assert_refused(&mut game, GameError::AlreadyStarted, |g| {
            g.join(name("later"), end)
        });
    }

    #[test]
    fn join_is_refused_when_every_seat_is_taken() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(2).active(2, &clock);
        assert_refused(&mut game, GameError::GameFull, |g| {
            g.join(name("third"), clock.now())
        });
        // A seat that left an active game is still taken: it keeps its cells.
        assert_eq!(game.leave(id(1), clock.now()), Ok(()));
        assert_refused(&mut game, GameError::GameFull, |g| {
            g.join(name("third"), clock.now())
        });
    }

    #[test]
    fn join_of_a_full_completed_game_is_already_started() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(2).active(2, &clock);
        for cell in 0..81 {
            let who = id(cell % 2);
            game.capture(who, Cell::try_from(i64::from(cell)).unwrap(), clock.now())
                .unwrap();
        }
        assert_eq!(game.status(), Status::Completed);
        assert_refused(&mut game, GameError::AlreadyStarted, |g| {
            g.join(name("late"), clock.now())
        });
    }

    #[test]
    fn a_newcomer_to_an_emptied_game_becomes_host() {
        let mut clock = Clock::new();
        let mut game = Builder::new().max_players(4).waiting(2, &clock);
        assert_eq!(game.leave(id(0), clock.now()), Ok(()));
        assert_eq!(game.host(), id(1));
        assert_eq!(game.leave(id(1), clock.now()), Ok(()));
        drain(&mut game);
        let now = clock.advance_ms(1_000);
        assert_eq!(game.join(name("new"), now), Ok(id(0)));
        assert_eq!(game.host(), id(0), "the only player must be able to start");
        assert_eq!(game.join(name("two"), now), Ok(id(1)));
        assert_eq!(game.start(id(0), now), Ok(()));
        assert_eq!(game.status(), Status::Active);
    }

    // ---- start ----

    #[test]
    fn the_host_starts_with_enough_connected_players() {
        let mut clock = Clock::new();
        let mut game = Builder::new()
            .max_players(4)
            .duration_ms(20_000)
            .waiting(2, &clock);
        let seq = game.seq();
        let now = clock.advance_ms(1_234);
        assert_eq!(game.start(id(0), now), Ok(()));
        let ends_at = now + Duration::from_secs(20);
        assert_eq!(
            drain(&mut game),
            vec![Event::Started {
                seq: seq + 1,
                ends_at,
                duration: Duration::from_secs(20),
            }]
        );
        assert_eq!(game.status(), Status::Active);
        assert_eq!(game.poll_timeout(), Some(ends_at));
        assert_eq!(
            game.snapshot().remaining(now),
            Some(Duration::from_secs(20))
        );
    }

    #[test]
    fn start_refusals_change_nothing() {
        let clock = Clock::new();
        let now = clock.now();
        let mut alone = Builder::new().waiting(1, &clock);
        assert_refused(&mut alone, GameError::NotEnoughPlayers, |g| {
            g.start(id(0), now)
        });

        let mut game = Builder::new().max_players(4).waiting(2, &clock);
        assert_refused(&mut game, GameError::NotHost, |g| g.start(id(1), now));
        assert_refused(&mut game, GameError::NotInGame, |g| g.start(id(2), now));
        assert_refused(&mut game, GameError::NotInGame, |g| g.start(id(7), now));

        // Seated but disconnected players do not count.
        assert_eq!(game.set_connected(id(1), false, now), Ok(()));
        drain(&mut game);
        assert_refused(&mut game, GameError::NotEnoughPlayers, |g| {
            g.start(id(0), now)
        });

        let mut active = Builder::new().max_players(4).active(2, &clock);
        assert_refused(&mut active, GameError::AlreadyStarted, |g| {
            g.start(id(0), now)
        });
    }

    #[test]
    fn min_players_comes_from_the_operator_bounds() {
        let clock = Clock::new();
        let mut game = Builder::new()
            .max_players(5)
            .min_players(3)
            .waiting(2, &clock);
        assert_refused(&mut game, GameError::NotEnoughPlayers, |g| {
            g.start(id(0), clock.now())
        });
        assert_eq!(game.join(name("p2"), clock.now()), Ok(id(2)));
        assert_eq!(game.start(id(0), clock.now()), Ok(()));
    }

    #[test]
    fn start_is_refused_in_a_completed_game() {
        let mut clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        let end = clock.set(game.ends_at().expect("active"));
        game.handle_timeout(end);
        drain(&mut game);
        assert_refused(&mut game, GameError::AlreadyStarted, |g| {
            g.start(id(0), end)
        });
    }

    // ---- capture ----

    #[test]
    fn capturing_a_free_cell_gives_it_to_the_sender() {
        let clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        let seq = game.seq();
        assert_eq!(game.capture(id(1), cell(40), clock.now()), Ok(()));
        assert_eq!(game.capture(id(1), cell(0), clock.now()), Ok(()));
        assert_eq!(
            drain(&mut game),
            vec![
                Event::Captured {
                    seq: seq + 1,
                    cell: cell(40),
                    player: id(1),
                    score: 1,
                },
                Event::Captured {
                    seq: seq + 2,
                    cell: cell(0),
                    player: id(1),
                    score: 2,
                },
            ]
        );
        assert_eq!(game.owner(cell(40)), Some(id(1)));
        assert_eq!(game.player(id(1)).map(|p| p.score), Some(2));
        assert_eq!(game.player(id(0)).map(|p| p.score), Some(0));
        assert_eq!(game.snapshot().cells[40], 2);
    }

    #[test]
    fn the_first_writer_wins_and_a_cell_is_never_recaptured() {
        let clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        assert_eq!(game.capture(id(0), cell(7), clock.now()), Ok(()));
        drain(&mut game);
        assert_refused(&mut game, GameError::Taken, |g| {
            g.capture(id(1), cell(7), clock.now())
        });
        assert_refused(&mut game, GameError::Taken, |g| {
            g.capture(id(0), cell(7), clock.now())
        });
        assert_eq!(game.owner(cell(7)), Some(id(0)));
    }

    #[test]
    fn capture_refusals_change_nothing() {
        let mut clock = Clock::new();
        let mut waiting = Builder::new().waiting(2, &clock);
        assert_refused(&mut waiting, GameError::NotActive, |g| {
            g.capture(id(0), cell(1), clock.now())
        });

        let mut game = Builder::new().max_players(4).active(3, &clock);
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.capture(id(3), cell(1), clock.now())
        });
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.capture(id(7), cell(1), clock.now())
        });
        assert_eq!(game.leave(id(2), clock.now()), Ok(()));
        drain(&mut game);
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.capture(id(2), cell(1), clock.now())
        });

        let end = game.ends_at().expect("active");
        clock.set(end);
        assert_refused(&mut game, GameError::NotActive, |g| {
            g.capture(id(0), cell(1), end)
        });
        game.handle_timeout(end);
        drain(&mut game);
        assert_refused(&mut game, GameError::NotActive, |g| {
            g.capture(id(0), cell(1), end)
        });
    }

    #[test]
    fn the_deadline_refuses_captures_even_before_the_timer_runs() {
        let clock = Clock::new();
        let mut game = Builder::new().duration_ms(1_000).active(2, &clock);
        let end = game.ends_at().expect("active");
        let just_before = Timestamp::from_unix_ms(end.as_unix_ms() - 1);
        assert_eq!(game.capture(id(0), cell(3), just_before), Ok(()));
        drain(&mut game);
        assert_refused(&mut game, GameError::NotActive, |g| {
            g.capture(id(1), cell(4), end)
        });
        let much_later = end + Duration::from_secs(3600);
        assert_refused(&mut game, GameError::NotActive, |g| {
            g.capture(id(1), cell(4), much_later)
        });
        assert_eq!(game.status(), Status::Active, "only the timer ends it");
    }

    // ---- completion ----

    #[test]
    fn the_round_ends_on_time_at_its_deadline_not_before() {
        let mut clock = Clock::new();
        let mut game = Builder::new().max_players(3).active(3, &clock);
        game.capture(id(0), cell(0), clock.now())
            .expect("free cell");
        game.capture(id(2), cell(1), clock.now())
            .expect("free cell");
        game.capture(id(2), cell(2), clock.now())
            .expect("free cell");
        drain(&mut game);
        let end = game.ends_at().expect("active");

        let before = game.clone();
        game.handle_timeout(Timestamp::from_unix_ms(end.as_unix_ms() - 1));
        assert_eq!(game, before, "an early timer does nothing");

        // Even a late timer completes the game as of the deadline.
        let late = clock.set(end + Duration::from_secs(5));
        game.handle_timeout(late);
        assert_eq!(
            drain(&mut game),
            vec![Event::GameOver {
                seq: before.seq() + 1,
                reason: GameOverReason::Time,
                scores: vec![1, 0, 2],
                winners: vec![id(2)],
            }]
        );
        assert_eq!(game.status(), Status::Completed);
        assert_eq!(game.poll_timeout(), Some(end + RETENTION));

        let after = game.clone();
        game.handle_timeout(late);
        assert_eq!(game, after, "a second timer does nothing");
    }

    #[test]
    fn filling_the_board_ends_the_round() {
        let mut clock = Clock::new();
        let mut game = Builder::new().max_players(2).active(2, &clock);
        let mut events = Vec::new();
        for i in 0..CELL_COUNT as u8 {
            assert_eq!(game.status(), Status::Active);
            let now = clock.advance_ms(1);
            // Seat 0 takes the even cells: 41 against 40.
            assert_eq!(game.capture(id(i % 2), cell(i), now), Ok(()));
            events.extend(drain(&mut game));
        }
        let now = clock.now();
        assert_eq!(game.status(), Status::Completed);
        assert_eq!(
            events.last(),
            Some(&Event::GameOver {
                seq: game.seq(),
                reason: GameOverReason::BoardFull,
                scores: vec![41, 40],
                winners: vec![id(0)],
            })
        );
        assert_eq!(events.len(), CELL_COUNT + 1);
        let snap = game.snapshot();
        assert_eq!(snap.reason, Some(GameOverReason::BoardFull));
        assert_eq!(snap.winners, Some(vec![id(0)]));
        assert_eq!(game.poll_timeout(), Some(now + RETENTION));
        // The deadline later passing adds nothing.
        let end = game.ends_at().expect("started");
        game.handle_timeout(end);
        assert_eq!(game.poll_event(), None);
    }

    #[test]
    fn winners_are_all_tied_leaders() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(4).active(3, &clock);
        for (seat, c) in [(0, 0), (1, 1), (0, 2), (1, 3), (2, 4)] {
            game.capture(id(seat), cell(c), clock.now()).expect("free");
        }
        game.handle_timeout(game.ends_at().expect("active"));
        let over = drain(&mut game).pop();
        match over {
            Some(Event::GameOver {
                scores, winners, ..
            }) => {
                assert_eq!(scores, vec![2, 2, 1, 0], "one entry per seat, 0 if empty");
                assert_eq!(winners, vec![id(0), id(1)]);
            }
            other => panic!("expected GameOver, got {other:?}"),
        }
    }

    #[test]
    fn with_no_capture_every_seated_player_ties() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(4).active(2, &clock);
        game.handle_timeout(game.ends_at().expect("active"));
        assert_eq!(game.snapshot().winners, Some(vec![id(0), id(1)]));
    }

    #[test]
    fn a_player_who_left_keeps_the_score_and_can_win() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(3).active(3, &clock);
        game.capture(id(2), cell(10), clock.now()).expect("free");
        game.capture(id(2), cell(11), clock.now()).expect("free");
        game.capture(id(0), cell(12), clock.now()).expect("free");
        assert_eq!(game.leave(id(2), clock.now()), Ok(()));
        game.handle_timeout(game.ends_at().expect("active"));
        let snap = game.snapshot();
        assert_eq!(snap.winners, Some(vec![id(2)]));
        assert_eq!(snap.player(id(2)).map(|p| p.score), Some(2));
        assert_eq!(snap.cells[10], 3);
    }

    // ---- leave ----

    #[test]
    fn leaving_a_waiting_game_frees_the_seat() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(4).waiting(3, &clock);
        let seq = game.seq();
        assert_eq!(game.leave(id(1), clock.now()), Ok(()));
        assert_eq!(
            drain(&mut game),
            vec![Event::PlayerLeft {
                seq: seq + 1,
                player: id(1),
                host: id(0),
            }]
        );
        assert_eq!(game.player(id(1)), None);
        assert_eq!(game.snapshot().players.len(), 2);
        assert_eq!(game.host(), id(0));
        assert_refused(&mut game, GameError::NotInGame, |g| g.can_resume(id(1)));
    }

    #[test]
    fn when_the_host_leaves_the_lowest_remaining_seat_hosts() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(5).waiting(4, &clock);
        assert_eq!(game.leave(id(1), clock.now()), Ok(()));
        assert_eq!(game.host(), id(0));
        assert_eq!(game.leave(id(0), clock.now()), Ok(()));
        assert_eq!(game.host(), id(2));
        let events = drain(&mut game);
        assert!(matches!(
            events.last(),
            Some(Event::PlayerLeft { host, player, .. }) if *host == id(2) && *player == id(0)
        ));
        assert_eq!(game.start(id(2), clock.now()), Ok(()));
    }

    #[test]
    fn leaving_an_active_game_keeps_cells_and_score_but_not_the_seat() {
        let clock = Clock::new();
        let now = clock.now();
        let mut game = Builder::new().max_players(4).active(3, &clock);
        game.capture(id(1), cell(5), now).expect("free");
        drain(&mut game);
        let seq = game.seq();
        assert_eq!(game.leave(id(1), now), Ok(()));
        assert_eq!(
            drain(&mut game),
            vec![Event::PlayerLeft {
                seq: seq + 1,
                player: id(1),
                host: id(0),
            }]
        );
        let p = game.player(id(1)).expect("still listed");
        assert_eq!((p.score, p.connected), (1, false));
        assert_eq!(game.owner(cell(5)), Some(id(1)));
        assert_refused(&mut game, GameError::NotInGame, |g| g.can_resume(id(1)));
        assert_refused(&mut game, GameError::NotInGame, |g| g.leave(id(1), now));
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.set_connected(id(1), true, now)
        });
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.capture(id(1), cell(6), now)
        });
    }

    #[test]
    fn the_host_leaving_an_active_game_changes_nothing_else() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(4).active(2, &clock);
        assert_eq!(game.leave(id(0), clock.now()), Ok(()));
        assert_eq!(game.status(), Status::Active);
        assert_eq!(game.capture(id(1), cell(0), clock.now()), Ok(()));
    }

    #[test]
    fn leaving_a_completed_game_announces_nothing() {
        let clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        let end = game.ends_at().expect("active");
        game.handle_timeout(end);
        drain(&mut game);
        let snap = game.snapshot();
        assert_eq!(game.leave(id(1), end), Ok(()));
        assert_eq!(game.poll_event(), None);
        assert_eq!(game.snapshot(), snap, "the result is frozen");
        assert_refused(&mut game, GameError::NotInGame, |g| g.can_resume(id(1)));
        assert_eq!(game.can_resume(id(0)), Ok(()));
    }

    #[test]
    fn leave_refuses_an_empty_seat() {
        let clock = Clock::new();
        let mut game = Builder::new().max_players(4).waiting(2, &clock);
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.leave(id(2), clock.now())
        });
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.leave(id(7), clock.now())
        });
    }

    // ---- presence ----

    #[test]
    fn presence_is_announced_only_when_it_changes() {
        let clock = Clock::new();
        let now = clock.now();
        let mut game = Builder::new().max_players(4).active(2, &clock);
        let seq = game.seq();
        assert_eq!(game.set_connected(id(1), true, now), Ok(()));
        assert_eq!(game.poll_event(), None);
        assert_eq!(game.set_connected(id(1), false, now), Ok(()));
        assert_eq!(game.set_connected(id(1), false, now), Ok(()));
        assert_eq!(game.set_connected(id(1), true, now), Ok(()));
        assert_eq!(
            drain(&mut game),
            vec![
                Event::Presence {
                    seq: seq + 1,
                    player: id(1),
                    connected: false,
                },
                Event::Presence {
                    seq: seq + 2,
                    player: id(1),
                    connected: true,
                },
            ]
        );
        assert_eq!(
            game.can_resume(id(1)),
            Ok(()),
            "a disconnect is not a leave"
        );
        assert_refused(&mut game, GameError::NotInGame, |g| {
            g.set_connected(id(3), true, now)
        });
    }

    #[test]
    fn presence_in_a_completed_game_changes_nothing() {
        let clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        let end = game.ends_at().expect("active");
        game.handle_timeout(end);
        drain(&mut game);
        let before = game.clone();
        assert_eq!(game.set_connected(id(0), false, end), Ok(()));
        assert_eq!(game, before);
    }

    // ---- retention ----

    #[test]
    fn a_waiting_game_with_nobody_connected_expires_after_60_s() {
        let mut clock = Clock::new();
        let mut game = Builder::new().max_players(4).waiting(2, &clock);
        game.set_connected(id(0), false, clock.now())
            .expect("seated");
        assert_eq!(game.poll_timeout(), None, "someone is still connected");
        let alone = clock.advance_ms(10);
        game.set_connected(id(1), false, alone).expect("seated");
        assert_eq!(game.poll_timeout(), Some(alone + RETENTION));
        // Another disconnect-like change does not push the expiry back.
        clock.advance_ms(5_000);
        game.leave(id(1), clock.now()).expect("seated");
        assert_eq!(game.poll_timeout(), Some(alone + RETENTION));
        let expiry = alone + RETENTION;
        assert!(!game.is_expired(Timestamp::from_unix_ms(expiry.as_unix_ms() - 1)));
        assert!(game.is_expired(expiry));
    }

    #[test]
    fn a_reconnect_or_a_join_cancels_the_expiry() {
        let mut clock = Clock::new();
        let mut game = Builder::new().max_players(4).waiting(1, &clock);
        game.set_connected(id(0), false, clock.now())
            .expect("seated");
        assert!(game.poll_timeout().is_some());
        game.set_connected(id(0), true, clock.advance_ms(1))
            .expect("seated");
        assert_eq!(game.poll_timeout(), None);
        assert!(!game.is_expired(clock.advance_ms(3_600_000)));

        game.leave(id(0), clock.now()).expect("seated");
        assert_eq!(game.poll_timeout(), Some(clock.now() + RETENTION));
        let now = clock.advance_ms(1);
        game.join(name("back"), now).expect("free seat");
        assert_eq!(game.poll_timeout(), Some(now), "the join's review is due");
        game.handle_timeout(now);
        assert_eq!(game.poll_timeout(), None);
    }

    #[test]
    fn an_active_game_never_expires() {
        let mut clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        game.set_connected(id(0), false, clock.now())
            .expect("seated");
        game.set_connected(id(1), false, clock.now())
            .expect("seated");
        assert!(!game.is_expired(clock.advance_ms(10_000_000)));
        assert_eq!(game.poll_timeout(), game.ends_at());
    }

    #[test]
    fn a_completed_game_expires_60_s_after_it_ended() {
        let clock = Clock::new();
        let mut game = Builder::new().active(2, &clock);
        let end = game.ends_at().expect("active");
        // The timer runs late; retention still counts from the deadline.
        game.handle_timeout(end + Duration::from_secs(2));
        let expiry = end + RETENTION;
        assert_eq!(game.poll_timeout(), Some(expiry));
        assert!(!game.is_expired(Timestamp::from_unix_ms(expiry.as_unix_ms() - 1)));
        assert!(game.is_expired(expiry));
    }

    // ---- seq ----

    #[test]
    fn seq_grows_by_one_per_event_and_the_snapshot_carries_the_last() {
        let mut clock = Clock::new();
        let mut game = Game::new(Builder::new().max_players(3).settings(), name("a"), T0);
        let mut all = Vec::new();
        game.join(name("b"), clock.now()).expect("free");
        game.set_connected(id(1), false, clock.now())
            .expect("seated");
        game.set_connected(id(1), true, clock.now())
            .expect("seated");
        game.start(id(0), clock.now()).expect("host");
        all.extend(drain(&mut game));
        assert_eq!(game.snapshot().seq, 4);
        for i in 0..5 {
            game.capture(id(i % 2), cell(i), clock.advance_ms(10))
                .expect("free");
        }
        game.leave(id(1), clock.now()).expect("seated");
        all.extend(drain(&mut game));
        game.handle_timeout(clock.advance_ms(60_000));
        all.extend(drain(&mut game));
        assert_eq!(seqs(&all), (1..=11).collect::<Vec<u64>>());
        assert_eq!(game.seq(), 11);
        assert_eq!(game.snapshot().seq, 11);
        assert!(matches!(all.last(), Some(Event::GameOver { .. })));
    }
}
