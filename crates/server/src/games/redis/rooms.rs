//! The games this node has players or spectators in ("rooms"), and the
//! fan-out of their events to those connections.
//!
//! A node subscribes to a game's channel while it has players or spectators
//! in it. Events arrive already encoded; one `Bytes` is shared by every
//! local outbox. A spectator is a member without a seat: it follows the
//! same seq rule, its fresh snapshot is a `watching`, and an event its
//! outbox refuses (the slow-consumer policy cut it) ends its membership, so
//! the players are never held back by it.
//!
//! **Ordering.** A joiner's `joined` snapshot is taken by the script at some
//! seq N, while the events after N travel on the channel and may arrive
//! before or after the script's answer. So each member keeps the seq it has
//! seen: it gets exactly the events `> N`, in order. The room keeps its last
//! few events so that events that overtook the answer are replayed when the
//! member attaches. A gap (an event lost while the subscription was down)
//! marks the member stale: it gets nothing until a fresh `joined` (a
//! resync) brings it up to date, so no client ever applies events on top of
//! a wrong board.
//!
//! **Failover.** Redis replicates asynchronously: a master that dies may
//! take its last writes with it, and the promoted replica then numbers new
//! events from an older seq. One channel carries a game's events in order,
//! so an event whose seq is not above the last one relayed means Redis went
//! back in time (a snapshot may lag the channel, so only the channel
//! tells): every member of the room is
//! resynced from a fresh snapshot (Redis's truth), and what was lost is
//! counted (`gridcap_redis_lost_events_total`, `..._lost_captures_total`)
//! and logged.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use game_logic::{PlayerId, Status, Timestamp};
use tokio::sync::OnceCell;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, warn};
use transport::protocol::GameSnapshot;
use transport::{Outbox, ServerMessage};
use uuid::Uuid;

use super::scripts::{ChannelMessage, StoredGame};
use crate::games::GameCounts;
use crate::games::tally::Tally;
use crate::metrics as m;
use crate::outgoing;

/// Events a room remembers for members that attach after them.
const RECENT: usize = 64;

/// One local connection in a room's game: a seat, or a spectator.
#[derive(Debug)]
pub struct Member {
    /// Where its frames go.
    pub outbox: Outbox,
    /// A seat, or watching.
    role: Role,
    /// The holder id the scripts know it by (`<node instance>/<conn>`).
    pub holder: String,
    /// The seq of the last event it has (from its snapshot or the channel).
    last: u64,
    /// Missed an event: waits for a fresh snapshot.
    stale: bool,
    /// When its oldest capture still in flight arrived: its `captured` echo
    /// is stamped with it, so the write records the broadcast latency.
    capture_stamp: Option<Instant>,
}

/// What a member is to its game.
#[derive(Debug)]
enum Role {
    /// It holds a seat.
    Seat {
        /// The seat.
        seat: PlayerId,
        /// Its resume token, to put in a resync's `joined`. Never logged.
        token: String,
    },
    /// It watches (protocol §7): every broadcast event, a resync is a
    /// fresh `watching`, and an event its outbox refuses ends its watching
    /// (the slow-consumer policy is cutting it).
    Spectator,
}

impl Member {
    /// A seat about to attach.
    pub fn new(outbox: Outbox, seat: PlayerId, holder: String, token: String) -> Member {
        Member {
            outbox,
            role: Role::Seat { seat, token },
            holder,
            last: 0,
            stale: false,
            capture_stamp: None,
        }
    }

    /// A spectator about to attach.
    pub fn spectator(outbox: Outbox, holder: String) -> Member {
        Member {
            outbox,
            role: Role::Spectator,
            holder,
            last: 0,
            stale: false,
            capture_stamp: None,
        }
    }

    /// The seat it holds; `None` for a spectator.
    pub fn seat(&self) -> Option<PlayerId> {
        match self.role {
            Role::Seat { seat, .. } => Some(seat),
            Role::Spectator => None,
        }
    }

    /// Queues `frame` if it is the next event for this member (stamped, if
    /// it is the echo of this member's own capture).
    fn offer(&mut self, seq: u64, frame: &Bytes, capturer: Option<u8>) -> Offer {
        if self.stale || seq <= self.last {
            return Offer::Skipped;
        }
        if seq != self.last + 1 {
            self.stale = true;
            return Offer::Gap;
        }
        self.last = seq;
        let own_capture = capturer.is_some() && capturer == self.seat().map(u8::from);
        let pushed = match self.capture_stamp.take_if(|_| own_capture) {
            Some(since) => self.outbox.push_stamped(frame.clone(), since),
            None => self.outbox.push(frame.clone()),
        };
        match pushed {
            Ok(()) => Offer::Queued,
            Err(e) => {
                debug!(conn = self.outbox.id(), "event not queued: {e}");
                match self.role {
                    Role::Seat { .. } => Offer::Skipped,
                    Role::Spectator => Offer::Cut,
                }
            }
        }
    }

    /// The message that brings it up to date with `snapshot`.
    fn fresh(&self, snapshot: GameSnapshot) -> ServerMessage {
        match &self.role {
            Role::Seat { seat, token } => outgoing::joined(snapshot, *seat, token.clone()),
            Role::Spectator => ServerMessage::Watching { game: snapshot },
        }
    }
}

enum Offer {
    Queued,
    Skipped,
    Gap,
    /// A spectator's outbox refused the event: it stops watching.
    Cut,
}

#[derive(Debug, Default)]
struct Room {
    /// Local connections in the game, by connection id.
    members: HashMap<u64, Member>,
    /// Sessions between `enter` and `attach`/`abandon`: keep the room (and
    /// its subscription) while their script runs.
    entering: usize,
    /// Initialised once the channel subscription is confirmed.
    subscribed: Arc<OnceCell<()>>,
    /// Status, deadline and seq as of the newest event or snapshot seen.
    status: Option<Status>,
    ends_at: Option<Timestamp>,
    seq: u64,
    /// The last events, oldest first, for late attachers.
    recent: VecDeque<(u64, Bytes)>,
    /// The newest seq relayed from the channel (0: none yet). The channel
    /// is ordered, so an event at or below it is a duplicate (the same
    /// bytes as `log` has for that seq) or a rewind of Redis.
    relayed: u64,
    /// The last events relayed, oldest first, whether each was a capture:
    /// to tell a duplicate from a rewind and count what a rewind lost.
    /// Unlike `recent`, kept when the subscription drops.
    log: VecDeque<(u64, Option<u8>, Bytes)>,
    /// The finish timer, once armed.
    timer: Option<AbortHandle>,
    /// The instant the armed timer is for.
    timer_for: Option<Timestamp>,
    /// A resync of stale members is under way.
    resyncing: bool,
    /// The status it is counted under in [`Rooms::counts`], `None` while
    /// it is not counted (spectators only).
    counted: Option<Status>,
    /// Its completion was reported ([`Followup::finished`]).
    finished: bool,
}

impl Room {
    fn note(&mut self, seq: u64, status: Status, ends_at: Option<Timestamp>) {
        if seq >= self.seq || self.status.is_none() {
            self.seq = seq;
            self.status = Some(status);
            self.ends_at = ends_at;
        }
    }

    /// The instant to arm a timer for (the deadline while active, the
    /// lobby auto-start while waiting), once per instant.
    fn wants_timer(&mut self) -> Option<Timestamp> {
        if !matches!(self.status, Some(Status::Active | Status::Waiting)) {
            return None;
        }
        let due = self.ends_at?;
        if self.timer_for == Some(due) {
            return None;
        }
        self.timer_for = Some(due);
        Some(due)
    }

    fn idle(&self) -> bool {
        self.members.is_empty() && self.entering == 0
    }

    /// Redis's history for this game now ends at `seq`, behind what this
    /// node relayed: counts and logs what was lost, forgets the events
    /// after `seq` and marks every member stale (to resync).
    fn rewind(&mut self, id: &Uuid, seq: u64) {
        let events = self.relayed.saturating_sub(seq);
        let captures = self
            .log
            .iter()
            .filter(|(s, capturer, _)| *s > seq && capturer.is_some())
            .count() as u64;
        warn!(
            game = %id,
            relayed = self.relayed,
            redis_seq = seq,
            lost_events = events,
            lost_captures = captures,
            "Redis lost events this node relayed (a failover?): resyncing the game's players"
        );
        metrics::counter!("gridcap_redis_lost_events_total").increment(events);
        metrics::counter!("gridcap_redis_lost_captures_total").increment(captures);
        self.recent.retain(|(s, _)| *s <= seq);
        self.log.retain(|(s, _, _)| *s <= seq);
        self.relayed = seq;
        self.seq = seq;
        for member in self.members.values_mut() {
            member.stale = true;
        }
    }

    /// Replays the remembered events after `member.last`; `false` when a
    /// spectator's outbox refused one (it stops watching).
    fn replay(&self, member: &mut Member) -> bool {
        for (seq, frame) in &self.recent {
            match member.offer(*seq, frame, None) {
                Offer::Gap => break,
                Offer::Cut => return false,
                Offer::Queued | Offer::Skipped => {}
            }
        }
        true
    }

    /// Whether a member holds a seat (a room of spectators only is no game
    /// of this node's players).
    fn has_seats(&self) -> bool {
        self.members.values().any(|m| m.seat().is_some())
    }
}

/// What a caller must do after a room operation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Followup {
    /// Arm the finish timer for this deadline.
    pub timer: Option<Timestamp>,
    /// A member missed events: fetch a snapshot and resync.
    pub resync: bool,
    /// The room is gone: unsubscribe from its channel.
    pub unsubscribe: bool,
    /// The game just completed (as far as this node saw, once): take it off
    /// the cluster's game table.
    pub finished: bool,
}

/// Every room of this node.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: Mutex<HashMap<Uuid, Room>>,
    /// The rooms counted by status, kept as they change: `/api/node` and
    /// `/metrics` read it without walking the rooms.
    tally: Tally,
}

impl Rooms {
    /// No rooms.
    pub fn new() -> Rooms {
        Rooms::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Room>> {
        // Critical sections leave the map consistent at every step.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session is about to seat a connection in game `id`: keeps the room
    /// and returns its subscription cell (to initialise by subscribing).
    pub fn enter(&self, id: Uuid) -> Arc<OnceCell<()>> {
        let mut rooms = self.lock();
        let room = rooms.entry(id).or_default();
        room.entering += 1;
        let subscribed = room.subscribed.clone();
        self.tidy(&mut rooms, &id);
        subscribed
    }

    /// The seat was refused: undoes [`enter`](Self::enter).
    pub fn abandon(&self, id: &Uuid) -> Followup {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get_mut(id) {
            room.entering = room.entering.saturating_sub(1);
        }
        self.tidy(&mut rooms, id)
    }

    /// After any change to room `id`'s status or members: counts it anew,
    /// notes its completion, and drops it if nobody is in it any more.
    fn tidy(&self, rooms: &mut HashMap<Uuid, Room>, id: &Uuid) -> Followup {
        let Some(room) = rooms.get_mut(id) else {
            return Followup::default();
        };
        let counted = (room.has_seats() || room.members.is_empty())
            .then(|| room.status.unwrap_or(Status::Waiting));
        self.tally.moved(room.counted, counted);
        room.counted = counted;
        let finished = room.status == Some(Status::Completed) && !room.finished;
        room.finished |= finished;
        let follow = Followup {
            finished,
            ..Followup::default()
        };
        if !room.idle() {
            return follow;
        }
        let Some(room) = rooms.remove(id) else {
            return follow;
        };
        self.tally.moved(room.counted, None);
        if let Some(timer) = room.timer {
            timer.abort();
        }
        Followup {
            unsubscribe: room.subscribed.initialized(),
            ..follow
        }
    }

    /// Seats (or lets watch) `conn` after [`enter`](Self::enter): queues
    /// its `joined` or `watching` (snapshot `game`), then the events after
    /// it that already arrived. A connection already in the room (a resync)
    /// is replaced.
    pub fn attach(
        &self,
        id: Uuid,
        conn: u64,
        mut member: Member,
        game: &StoredGame,
        snapshot: Bytes,
    ) -> Followup {
        let mut rooms = self.lock();
        let room = rooms.entry(id).or_default();
        room.entering = room.entering.saturating_sub(1);
        room.note(game.seq, game.status, game.due());
        member.last = game.seq;
        if let Err(e) = member.outbox.push(snapshot) {
            debug!(conn, "snapshot not queued: {e}");
        }
        let kept = room.replay(&mut member);
        let resync = member.stale;
        if kept {
            let watcher = member.seat().is_none();
            let before = room.members.insert(conn, member);
            if watcher && before.is_none_or(|b| b.seat().is_some()) {
                m::spectators_changed(1);
            }
        } else {
            room.members.remove(&conn);
            m::spectators_changed(-1);
            return self.tidy(&mut rooms, &id);
        }
        let timer = room.wants_timer();
        // Never dropped (the member is in it), maybe finished.
        let follow = self.tidy(&mut rooms, &id);
        Followup {
            timer,
            resync,
            ..follow
        }
    }

    /// `conn`'s capture that arrived at `since` is on its way to Redis: its
    /// echo will be stamped with the oldest such arrival. `None` forgets the
    /// stamp (the capture was refused or failed: no echo comes for it).
    pub fn stamp_capture(&self, id: &Uuid, conn: u64, since: Option<Instant>) {
        let mut rooms = self.lock();
        if let Some(member) = rooms.get_mut(id).and_then(|r| r.members.get_mut(&conn)) {
            match since {
                Some(at) => {
                    member.capture_stamp.get_or_insert(at);
                }
                None => member.capture_stamp = None,
            }
        }
    }

    /// `conn` no longer holds a seat in game `id`.
    pub fn detach(&self, id: &Uuid, conn: u64) -> Followup {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get_mut(id)
            && room
                .members
                .remove(&conn)
                .is_some_and(|m| m.seat().is_none())
        {
            m::spectators_changed(-1);
        }
        self.tidy(&mut rooms, id)
    }

    /// One message from game `id`'s channel.
    pub fn dispatch(&self, id: &Uuid, message: ChannelMessage) -> Followup {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(id) else {
            return Followup::default();
        };
        match message {
            ChannelMessage::Event {
                seq,
                status,
                ends_at,
                frame,
                capturer,
            } => {
                let mut resync = false;
                if seq <= room.relayed {
                    let relayed = room.log.iter().find(|(s, _, _)| *s == seq);
                    if relayed.is_some_and(|(_, _, f)| *f == frame) {
                        return Followup::default(); // a duplicate
                    }
                    // Redis is back at `seq - 1`: this event is the first
                    // of its new history.
                    room.rewind(id, seq.saturating_sub(1));
                    resync = true;
                }
                room.relayed = seq;
                if room.log.len() == RECENT {
                    room.log.pop_front();
                }
                room.log.push_back((seq, capturer, frame.clone()));
                room.note(seq, status, ends_at);
                if room.recent.len() == RECENT {
                    room.recent.pop_front();
                }
                room.recent.push_back((seq, frame.clone()));
                let (mut delivered, mut watched) = (0u64, 0u64);
                let mut cut = Vec::new();
                for (conn, member) in &mut room.members {
                    match member.offer(seq, &frame, capturer) {
                        Offer::Queued if member.seat().is_none() => watched += 1,
                        Offer::Queued => delivered += 1,
                        Offer::Skipped => {}
                        Offer::Gap => resync = true,
                        Offer::Cut => cut.push(*conn),
                    }
                }
                m::deliveries(delivered);
                m::spectator_deliveries(watched);
                if !cut.is_empty() {
                    // Its session ends and unwatches, which stops the count.
                    for conn in &cut {
                        room.members.remove(conn);
                    }
                    m::spectators_changed(-i64::try_from(cut.len()).unwrap_or(0));
                }
                let timer = room.wants_timer();
                let follow = self.tidy(&mut rooms, id);
                Followup {
                    timer,
                    resync,
                    ..follow
                }
            }
            ChannelMessage::Kick { seat, holder } => {
                let replaced: Vec<u64> = room
                    .members
                    .iter()
                    .filter(|(_, m)| m.seat().map(u8::from) == Some(seat) && m.holder != holder)
                    .map(|(conn, _)| *conn)
                    .collect();
                for conn in replaced {
                    if let Some(member) = room.members.remove(&conn) {
                        member
                            .outbox
                            .close(transport::session::CLOSE_REPLACED, "session replaced");
                    }
                }
                self.tidy(&mut rooms, id)
            }
        }
    }

    /// Registers the finish timer of game `id` (aborted with the room).
    pub fn set_timer(&self, id: &Uuid, timer: AbortHandle) {
        match self.lock().get_mut(id) {
            Some(room) => {
                if let Some(old) = room.timer.replace(timer) {
                    old.abort();
                }
            }
            None => timer.abort(),
        }
    }

    /// The timer of game `id` ended; a later event may arm another.
    pub fn timer_done(&self, id: &Uuid) {
        if let Some(room) = self.lock().get_mut(id) {
            room.timer = None;
            room.timer_for = None;
        }
    }

    /// Marks every member of every room stale (the subscription was lost);
    /// returns the rooms to resync.
    pub fn mark_all_stale(&self) -> Vec<Uuid> {
        let mut rooms = self.lock();
        for room in rooms.values_mut() {
            room.recent.clear();
            for member in room.members.values_mut() {
                member.stale = true;
            }
        }
        rooms.keys().copied().collect()
    }

    /// Claims the resync of game `id`; `false` if one is under way or
    /// nobody is stale.
    pub fn begin_resync(&self, id: &Uuid) -> bool {
        let mut rooms = self.lock();
        match rooms.get_mut(id) {
            Some(room) if !room.resyncing && room.members.values().any(|m| m.stale) => {
                room.resyncing = true;
                true
            }
            _ => false,
        }
    }

    /// Gives every stale member of game `id` a fresh `joined` from `game`
    /// (read at Redis time `now`) and the events after it. Returns whether
    /// someone is still stale (an event was missed again meanwhile).
    pub fn resync(&self, id: &Uuid, game: &StoredGame, now: Timestamp) -> Followup {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(id) else {
            return Followup::default();
        };
        room.resyncing = false;
        room.note(game.seq, game.status, game.due());
        let snapshot = game.wire(id, now);
        let mut members = std::mem::take(&mut room.members);
        let mut again = false;
        let mut cut = Vec::new();
        for (conn, member) in members.iter_mut().filter(|(_, m)| m.stale) {
            outgoing::send(&member.outbox, &member.fresh(snapshot.clone()));
            member.stale = false;
            member.last = game.seq;
            if !room.replay(member) {
                cut.push(*conn);
            }
            again |= member.stale;
        }
        for conn in &cut {
            members.remove(conn);
        }
        if !cut.is_empty() {
            m::spectators_changed(-i64::try_from(cut.len()).unwrap_or(0));
        }
        room.members = members;
        let timer = room.wants_timer();
        let follow = self.tidy(&mut rooms, id);
        Followup {
            timer,
            resync: again,
            ..follow
        }
    }

    /// The resync of game `id` gave up (the game is gone): forget its
    /// stale members, who will hear `unknown_game` on their next command.
    pub fn drop_stale(&self, id: &Uuid) -> Followup {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get_mut(id) {
            room.resyncing = false;
            let watchers = room.members.values().filter(|m| m.seat().is_none()).count();
            room.members.retain(|_, m| !m.stale);
            let left = room.members.values().filter(|m| m.seat().is_none()).count();
            m::spectators_changed(-i64::try_from(watchers - left).unwrap_or(0));
        }
        self.tidy(&mut rooms, id)
    }

    /// Whether game `id`'s room still exists.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.lock().contains_key(id)
    }

    /// The status of game `id` as last seen here.
    pub fn status(&self, id: &Uuid) -> Option<Status> {
        self.lock().get(id).and_then(|r| r.status)
    }

    /// Every room's id (to resubscribe after a reconnection).
    pub fn ids(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    /// Rooms with players by status: (waiting, active, completed).
    /// Spectators alone do not make a game this node's; a room being
    /// entered (no member yet) counts as waiting until its status is known.
    /// Kept as rooms change: no walk, no lock.
    pub fn counts(&self) -> GameCounts {
        self.tally.counts()
    }

    /// The games in which a connection here holds a seat while they wait
    /// or run (to renew their leases on the cluster's game table).
    pub fn played(&self) -> Vec<Uuid> {
        self.lock()
            .iter()
            .filter(|(_, room)| {
                room.has_seats() && matches!(room.counted, Some(Status::Waiting | Status::Active))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The holders of every local spectator, by game (to renew leases).
    pub fn spectators(&self) -> Vec<(Uuid, Vec<String>)> {
        self.lock()
            .iter()
            .filter_map(|(id, room)| {
                let holders: Vec<String> = room
                    .members
                    .values()
                    .filter(|m| m.seat().is_none())
                    .map(|m| m.holder.clone())
                    .collect();
                (!holders.is_empty()).then_some((*id, holders))
            })
            .collect()
    }

    /// Those of `holders` that still watch game `id` from here.
    pub fn still_watching(&self, id: &Uuid, mut holders: Vec<String>) -> Vec<String> {
        let rooms = self.lock();
        let Some(room) = rooms.get(id) else {
            return Vec::new();
        };
        holders.retain(|h| {
            room.members
                .values()
                .any(|m| m.seat().is_none() && m.holder == *h)
        });
        holders
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use game_logic::{CELL_COUNT, Player, PlayerName};
    use std::time::Duration;
    use transport::{ServerMessage, codec};

    fn game(seq: u64, status: Status) -> StoredGame {
        StoredGame {
            status,
            seq,
            host: PlayerId::FIRST,
            max_players: 2,
            duration: Duration::from_secs(30),
            ends_at: (status == Status::Active).then(|| Timestamp::from_unix_ms(99)),
            reason: None,
            winners: None,
            players: vec![Player {
                id: PlayerId::FIRST,
                name: PlayerName::new("a").unwrap(),
                score: 0,
                connected: true,
            }],
            cells: [0; CELL_COUNT],
            holders: Vec::new(),
            code: "K7QX2M".into(),
            public: false,
            starts_at: None,
            created: Timestamp::from_unix_ms(1),
            spectators: 0,
        }
    }

    fn event(seq: u64) -> ChannelMessage {
        ChannelMessage::Event {
            seq,
            status: Status::Active,
            ends_at: Some(Timestamp::from_unix_ms(99)),
            frame: Bytes::from(format!("e{seq}")),
            capturer: Some(0),
        }
    }

    fn drain(outbox: &Outbox) -> Vec<Bytes> {
        let mut v = Vec::new();
        outbox.take(&mut v);
        v
    }

    fn member(outbox: &Outbox) -> Member {
        Member::new(outbox.clone(), PlayerId::FIRST, "n/1".into(), "tok".into())
    }

    #[test]
    fn a_joiner_gets_its_snapshot_then_exactly_the_later_events() {
        let rooms = Rooms::new();
        let id = Uuid::new_v4();
        let outbox = Outbox::new(1, 64);
        rooms.enter(id);
        // Events 5 and 6 overtake the script's answer (snapshot at 5).
        let first = rooms.dispatch(&id, event(5));
        assert_eq!(first.timer, Some(Timestamp::from_unix_ms(99)), "armed once");
        assert_eq!(rooms.dispatch(&id, event(6)).timer, None);
        let follow = rooms.attach(
            id,
            1,
            member(&outbox),
            &game(5, Status::Active),
            Bytes::from_static(b"joined"),
        );
        assert_eq!(follow, Followup::default());
        rooms.dispatch(&id, event(6)); // a duplicate is dropped
        rooms.dispatch(&id, event(7));
        assert_eq!(drain(&outbox), vec!["joined", "e6", "e7"]);
    }

    /// A room of an active game with one member attached at `seq`.
    fn one_member_at(seq: u64) -> (Rooms, Uuid, Outbox) {
        let rooms = Rooms::new();
        let id = Uuid::new_v4();
        let outbox = Outbox::new(1, 64);
        rooms.enter(id);
        rooms.attach(
            id,
            1,
            member(&outbox),
            &game(seq, Status::Active),
            Bytes::from_static(b"joined"),
        );
        (rooms, id, outbox)
    }

    #[test]
    fn a_gap_makes_the_member_stale_until_a_resync() {
        let (rooms, id, outbox) = one_member_at(2);
        assert!(rooms.dispatch(&id, event(4)).resync, "3 was lost");
        assert!(!rooms.dispatch(&id, event(5)).resync);
        assert!(rooms.begin_resync(&id));
        assert!(!rooms.begin_resync(&id), "one resync at a time");
        let follow = rooms.resync(&id, &game(4, Status::Active), Timestamp::from_unix_ms(0));
        assert!(!follow.resync);
        let frames = drain(&outbox);
        assert_eq!(frames.len(), 3, "joined, resync joined, e5: {frames:?}");
        assert_eq!(frames[2], "e5");
        assert!(matches!(
            codec::decode_server(&frames[1]),
            Ok(ServerMessage::Joined { ref token, .. }) if token == "tok"
        ));
    }

    #[test]
    fn a_rewind_of_redis_resyncs_every_member_and_counts_the_loss() {
        let (rooms, id, outbox) = one_member_at(2);
        for seq in 3..=5 {
            assert!(!rooms.dispatch(&id, event(seq)).resync);
        }
        assert!(!rooms.dispatch(&id, event(5)).resync, "a duplicate");
        // A failover: the promoted replica had 3 only; its next event is a
        // different 4.
        let other = ChannelMessage::Event {
            seq: 4,
            status: Status::Active,
            ends_at: Some(Timestamp::from_unix_ms(99)),
            frame: Bytes::from_static(b"other 4"),
            capturer: Some(0),
        };
        assert!(rooms.dispatch(&id, other).resync, "history went back");
        assert_eq!(drain(&outbox), vec!["joined", "e3", "e4", "e5"]);
        assert!(!rooms.dispatch(&id, event(5)).resync, "new history goes on");
        assert!(drain(&outbox).is_empty(), "stale until the resync");
        assert!(rooms.begin_resync(&id));
        let follow = rooms.resync(&id, &game(4, Status::Active), Timestamp::from_unix_ms(0));
        assert!(!follow.resync);
        let frames = drain(&outbox);
        assert_eq!(frames.len(), 2, "fresh joined, then the new 5: {frames:?}");
        assert!(matches!(
            codec::decode_server(&frames[0]),
            Ok(ServerMessage::Joined { ref game, .. }) if game.seq == 4
        ));
        assert_eq!(frames[1], "e5");
    }

    /// [`one_member_at`] plus a spectator (conn 2, holder `n/2`, an outbox
    /// of `capacity` frames) attached at the same seq.
    fn a_player_and_a_spectator_at(seq: u64, capacity: usize) -> (Rooms, Uuid, Outbox, Outbox) {
        let (rooms, id, player) = one_member_at(seq);
        let watcher = Outbox::new(2, capacity);
        rooms.enter(id);
        let spectator = Member::spectator(watcher.clone(), "n/2".into());
        let state = game(seq, Status::Active);
        rooms.attach(id, 2, spectator, &state, Bytes::from_static(b"watching"));
        (rooms, id, player, watcher)
    }

    #[test]
    fn a_stale_spectator_resyncs_with_watching_and_is_never_kicked() {
        let (rooms, id, player, watcher) = a_player_and_a_spectator_at(2, 64);
        assert_eq!(rooms.spectators(), vec![(id, vec!["n/2".to_owned()])]);
        // A kick of seat 0 concerns seats only.
        let kick = ChannelMessage::Kick {
            seat: 0,
            holder: "m/9".into(),
        };
        rooms.dispatch(&id, kick);
        assert!(player.is_closing());
        assert!(!watcher.is_closing(), "a spectator holds no seat");
        assert!(rooms.dispatch(&id, event(4)).resync, "3 was lost");
        assert!(rooms.begin_resync(&id));
        let mut watched = game(4, Status::Active);
        watched.spectators = 1;
        rooms.resync(&id, &watched, Timestamp::from_unix_ms(0));
        let frames = drain(&watcher);
        assert_eq!(frames.len(), 2, "watching, fresh watching: {frames:?}");
        assert!(matches!(
            codec::decode_server(&frames[1]),
            Ok(ServerMessage::Watching { ref game }) if game.seq == 4 && game.spectators == 1
        ));
        rooms.dispatch(&id, event(5));
        assert_eq!(drain(&watcher), vec!["e5"]);
    }

    #[test]
    fn a_spectator_whose_outbox_overflows_stops_watching_and_the_player_hears_on() {
        let (rooms, id, player, slow) = a_player_and_a_spectator_at(2, 2);
        for seq in 3..=6 {
            assert!(!rooms.dispatch(&id, event(seq)).resync);
        }
        assert!(slow.is_closing(), "the slow-consumer policy cut it");
        assert!(rooms.spectators().is_empty(), "it no longer watches");
        assert_eq!(
            drain(&player),
            vec!["joined", "e3", "e4", "e5", "e6"],
            "the player missed nothing"
        );
        assert!(
            rooms.still_watching(&id, vec!["n/2".into()]).is_empty(),
            "its lease is not renewed"
        );
        assert_eq!(rooms.detach(&id, 2), Followup::default());
    }

    /// The counts as they were computed before they were kept: a walk of
    /// every room.
    fn walked(rooms: &Rooms) -> GameCounts {
        let mut counts = GameCounts::default();
        for room in rooms.lock().values() {
            if room.has_seats() || room.members.is_empty() {
                counts.add(room.status.unwrap_or(Status::Waiting));
            }
        }
        counts
    }

    fn event_of(seq: u64, status: Status) -> ChannelMessage {
        ChannelMessage::Event {
            seq,
            status,
            ends_at: None,
            frame: Bytes::from(format!("e{seq}")),
            capturer: None,
        }
    }

    #[test]
    fn the_kept_counts_are_the_walks_through_every_change_and_completions_are_told_once() {
        let rooms = Rooms::new();
        let (played, watched) = (Uuid::new_v4(), Uuid::new_v4());
        let check = |step: &str| assert_eq!(rooms.counts(), walked(&rooms), "after {step}");
        rooms.enter(played);
        check("entering");
        assert_eq!(rooms.counts().waiting, 1, "a room being entered counts");
        let host = Outbox::new(1, 64);
        rooms.attach(
            played,
            1,
            member(&host),
            &game(0, Status::Waiting),
            "j".into(),
        );
        check("a seat");
        assert_eq!(rooms.played(), vec![played]);
        // Spectators alone make no game of this node's.
        rooms.enter(watched);
        let eye = Outbox::new(2, 64);
        let spectator = Member::spectator(eye.clone(), "n/2".into());
        rooms.attach(watched, 2, spectator, &game(3, Status::Active), "w".into());
        check("a spectator");
        assert_eq!((rooms.counts().waiting, rooms.counts().active), (1, 0));
        assert!(
            !rooms
                .dispatch(&played, event_of(1, Status::Active))
                .finished
        );
        check("the start");
        assert_eq!((rooms.counts().waiting, rooms.counts().active), (0, 1));
        let over = rooms.dispatch(&played, event_of(2, Status::Completed));
        assert!(over.finished);
        // Any node that sees a game end tells, if only its spectators do.
        assert!(
            rooms
                .dispatch(&watched, event_of(4, Status::Completed))
                .finished
        );
        check("game over");
        assert_eq!(rooms.counts().completed, 1);
        assert!(rooms.played().is_empty(), "a completed game is not renewed");
        let again = rooms.dispatch(&played, event_of(3, Status::Completed));
        assert!(!again.finished, "once");
        rooms.detach(&played, 1);
        rooms.detach(&watched, 2);
        check("everyone gone");
        assert_eq!(rooms.counts(), GameCounts::default());
        // A refused seat leaves nothing counted.
        rooms.enter(played);
        rooms.abandon(&played);
        assert_eq!(rooms.counts(), GameCounts::default());
    }

    #[test]
    fn a_kick_closes_other_holders_of_the_seat_and_empty_rooms_unsubscribe() {
        let rooms = Rooms::new();
        let id = Uuid::new_v4();
        let outbox = Outbox::new(1, 64);
        let cell = rooms.enter(id);
        assert!(cell.set(()).is_ok());
        rooms.attach(
            id,
            1,
            member(&outbox),
            &game(0, Status::Waiting),
            Bytes::from_static(b"joined"),
        );
        let kick = ChannelMessage::Kick {
            seat: 0,
            holder: "n/1".into(),
        };
        assert_eq!(rooms.dispatch(&id, kick), Followup::default(), "its own");
        let kick = ChannelMessage::Kick {
            seat: 0,
            holder: "m/9".into(),
        };
        assert!(rooms.dispatch(&id, kick).unsubscribe);
        assert!(outbox.is_closing());
        assert!(!rooms.contains(&id));
    }
}
