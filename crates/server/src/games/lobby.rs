//! The public lobby (protocol §7): what each public game lists, and the
//! `GET /api/lobby` answer built from those listings.
//!
//! A backend keeps one [`Listing`] per public game up to date as the game
//! changes (pushed by the game's owner, never gathered by walking every game
//! on a request); [`LobbyView::of`] turns a set of listings into the answer,
//! and [`Listing::is_open_for`] is what quick play matches on.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use game_logic::{Settings, SettingsBounds, Snapshot, Status, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a node serves its own listings, which its stateful peers merge.
pub const LISTINGS_PATH: &str = "/api/lobby/node";

/// Entries of each kind `GET /api/lobby` answers at most.
pub const LOBBY_LIMIT: usize = 100;

/// One public game as the lobby knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The game id.
    pub id: Uuid,
    /// Its short code.
    pub code: String,
    /// When it was created (unix ms): the lobby's "oldest first".
    pub created_ms: u64,
    /// Waiting or active (completed games are not listed).
    pub active: bool,
    /// Seated players' names, in seat order.
    pub players: Vec<String>,
    /// Their scores, in the same order.
    pub scores: Vec<u32>,
    /// Seats held by a connection.
    pub connected: u8,
    /// Seats.
    pub max_players: u8,
    /// Round length, ms.
    pub duration_ms: u64,
    /// The scheduled auto-start (waiting) or the deadline (active), unix ms.
    pub at_ms: Option<u64>,
    /// Connections watching.
    pub spectators: u32,
}

impl Listing {
    /// The listing of public game `id` as `snapshot` shows it, or `None`
    /// when it is not listed (private or completed).
    pub fn of(id: Uuid, code: &str, created: Timestamp, snapshot: &Snapshot) -> Option<Listing> {
        if !snapshot.public || snapshot.status == Status::Completed {
            return None;
        }
        let active = snapshot.status == Status::Active;
        Some(Listing {
            id,
            code: code.to_owned(),
            created_ms: created.as_unix_ms(),
            active,
            players: snapshot
                .players
                .iter()
                .map(|p| p.name.as_str().to_owned())
                .collect(),
            scores: snapshot.players.iter().map(|p| p.score).collect(),
            connected: u8::try_from(snapshot.players.iter().filter(|p| p.connected).count())
                .unwrap_or(u8::MAX),
            max_players: snapshot.max_players,
            duration_ms: u64::try_from(snapshot.duration.as_millis()).unwrap_or(u64::MAX),
            at_ms: if active {
                snapshot.ends_at
            } else {
                snapshot.starts_at
            }
            .map(Timestamp::as_unix_ms),
            spectators: 0,
        })
    }

    /// The listing with `spectators` connections watching.
    pub fn watched_by(self, spectators: usize) -> Listing {
        Listing {
            spectators: u32::try_from(spectators).unwrap_or(u32::MAX),
            ..self
        }
    }

    /// Whether a quick play for `max_players` seats may be seated here:
    /// waiting, a free seat, someone connected, quick play's settings.
    pub fn is_open_for(&self, max_players: u8, bounds: &SettingsBounds) -> bool {
        let default_ms = Settings::DEFAULT_DURATION
            .clamp(bounds.min_duration, bounds.max_duration)
            .as_millis();
        !self.active
            && self.max_players == max_players
            && u128::from(self.duration_ms) == default_ms
            && self.players.len() < usize::from(self.max_players)
            && self.connected > 0
    }
}

/// A waiting public game in `GET /api/lobby`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingEntry {
    /// The game id.
    pub id: Uuid,
    /// Its short code.
    pub code: String,
    /// Names, in seat order.
    pub players: Vec<String>,
    /// Seats.
    pub max_players: u8,
    /// Round length, ms.
    pub duration_ms: u64,
    /// Ms until the auto-start, when one is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_in_ms: Option<u64>,
}

/// A running public game in `GET /api/lobby`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveEntry {
    /// The game id.
    pub id: Uuid,
    /// Its short code.
    pub code: String,
    /// Names, in seat order.
    pub players: Vec<String>,
    /// Scores, in the same order.
    pub scores: Vec<u32>,
    /// Ms left in the round.
    pub remaining_ms: u64,
    /// Connections watching.
    pub spectators: u32,
}

/// The answer of `GET /api/lobby`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyView {
    /// Open public games, oldest first.
    pub waiting: Vec<WaitingEntry>,
    /// Running public games, oldest first.
    pub active: Vec<ActiveEntry>,
}

impl LobbyView {
    /// The lobby of `listings` at `now`: a waiting game that is full or has
    /// nobody connected is not listed; at most [`LOBBY_LIMIT`] of each kind.
    pub fn of(mut listings: Vec<Listing>, now: Timestamp) -> LobbyView {
        listings.sort_by_key(|l| (l.created_ms, l.id));
        let now_ms = now.as_unix_ms();
        let until = |at: Option<u64>| at.map(|at| at.saturating_sub(now_ms));
        let mut view = LobbyView::default();
        for l in listings {
            if l.active {
                if view.active.len() < LOBBY_LIMIT {
                    view.active.push(ActiveEntry {
                        remaining_ms: until(l.at_ms).unwrap_or(0),
                        id: l.id,
                        code: l.code,
                        players: l.players,
                        scores: l.scores,
                        spectators: l.spectators,
                    });
                }
            } else if view.waiting.len() < LOBBY_LIMIT && l.is_shown_waiting() {
                view.waiting.push(WaitingEntry {
                    starts_in_ms: until(l.at_ms),
                    id: l.id,
                    code: l.code,
                    players: l.players,
                    max_players: l.max_players,
                    duration_ms: l.duration_ms,
                });
            }
        }
        view
    }
}

/// The listings of one node's public games, updated by their game tasks.
/// Cheap to clone.
///
/// Kept in the orders its readers need, so that neither `GET /api/lobby`
/// nor quick play walks every listing: a flood of public games costs each
/// request nothing more (issue 18).
#[derive(Debug, Clone, Default)]
pub struct LocalLobby {
    listings: Arc<Mutex<Listings>>,
}

/// Quick play looks at this many open games of its size at most, oldest
/// first, before it creates one.
pub const QUICK_PLAY_CANDIDATES: usize = 16;

/// The listings and their orders: `(created_ms, id)` keys, oldest first.
#[derive(Debug, Default)]
struct Listings {
    by_id: HashMap<Uuid, Listing>,
    /// Waiting games the lobby shows: a free seat, someone connected.
    shown_waiting: BTreeSet<(u64, Uuid)>,
    /// Running games.
    running: BTreeSet<(u64, Uuid)>,
    /// The shown waiting games again, by seats first (quick play).
    by_size: BTreeSet<(u8, u64, Uuid)>,
}

impl Listing {
    /// Shown in the lobby's waiting list: a free seat, someone connected.
    fn is_shown_waiting(&self) -> bool {
        !self.active && self.players.len() < usize::from(self.max_players) && self.connected > 0
    }
}

impl Listings {
    fn index(&mut self, l: &Listing, add: bool) {
        let key = (l.created_ms, l.id);
        let sized = (l.max_players, l.created_ms, l.id);
        if add {
            if l.active {
                self.running.insert(key);
            } else if l.is_shown_waiting() {
                self.shown_waiting.insert(key);
                self.by_size.insert(sized);
            }
        } else {
            self.running.remove(&key);
            self.shown_waiting.remove(&key);
            self.by_size.remove(&sized);
        }
    }

    /// The first `LOBBY_LIMIT` listings of `order`.
    fn oldest<'a>(&'a self, order: &'a BTreeSet<(u64, Uuid)>) -> impl Iterator<Item = &'a Listing> {
        order
            .iter()
            .filter_map(|(_, id)| self.by_id.get(id))
            .take(LOBBY_LIMIT)
    }
}

impl LocalLobby {
    fn lock(&self) -> MutexGuard<'_, Listings> {
        // Each critical section is one map operation: a poisoned map is intact.
        self.listings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists `id` as `listing`, or unlists it (`None`).
    pub fn set(&self, id: Uuid, listing: Option<Listing>) {
        let mut listings = self.lock();
        let old = listings.by_id.remove(&id);
        // A capture moves the seq and scores, not the orders: reindex only
        // when the game's place in them changes.
        let place = |l: &Listing| (l.active, l.is_shown_waiting(), l.max_players, l.created_ms);
        let moved = old.as_ref().map(place) != listing.as_ref().map(place);
        if let Some(old) = old.filter(|_| moved) {
            listings.index(&old, false);
        }
        if let Some(l) = listing {
            if moved {
                listings.index(&l, true);
            }
            listings.by_id.insert(id, l);
        }
    }

    /// What the lobby shows of this node: the oldest [`LOBBY_LIMIT`] shown
    /// waiting games and the oldest [`LOBBY_LIMIT`] running ones (the
    /// oldest of a cluster are among each node's oldest).
    pub fn listings(&self) -> Vec<Listing> {
        let listings = self.lock();
        let waiting = listings.oldest(&listings.shown_waiting);
        let running = listings.oldest(&listings.running);
        waiting.chain(running).cloned().collect()
    }

    /// Games a quick play for `max_players` seats may be seated in, oldest
    /// first, at most [`QUICK_PLAY_CANDIDATES`].
    pub fn open_for(&self, max_players: u8, bounds: &SettingsBounds) -> Vec<Uuid> {
        let listings = self.lock();
        let of_size =
            (max_players, 0, Uuid::nil())..(max_players.saturating_add(1), 0, Uuid::nil());
        listings
            .by_size
            .range(of_size)
            .filter_map(|(_, _, id)| listings.by_id.get(id))
            .filter(|l| l.is_open_for(max_players, bounds))
            .take(QUICK_PLAY_CANDIDATES)
            .map(|l| l.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(created_ms: u64, active: bool, players: usize, connected: u8) -> Listing {
        Listing {
            id: Uuid::new_v4(),
            code: "K7QX2M".into(),
            created_ms,
            active,
            players: (0..players).map(|i| format!("p{i}")).collect(),
            scores: vec![0; players],
            connected,
            max_players: 4,
            duration_ms: 30_000,
            at_ms: Some(10_000),
            spectators: 0,
        }
    }

    #[test]
    fn the_view_lists_open_and_running_games_oldest_first() {
        let now = Timestamp::from_unix_ms(4_000);
        let view = LobbyView::of(
            vec![
                listing(3, false, 2, 1),
                listing(1, false, 1, 1),
                listing(2, false, 4, 4), // full: not listed
                listing(5, false, 1, 0), // nobody connected: not listed
                listing(4, true, 4, 3),
            ],
            now,
        );
        assert_eq!(view.waiting.len(), 2);
        assert_eq!(view.waiting[0].players, vec!["p0"]);
        assert_eq!(view.waiting[0].starts_in_ms, Some(6_000));
        assert_eq!(view.active.len(), 1);
        assert_eq!(view.active[0].remaining_ms, 6_000);
        let many = (0..150).map(|i| listing(i, false, 1, 1)).collect();
        assert_eq!(LobbyView::of(many, now).waiting.len(), LOBBY_LIMIT);
    }

    #[test]
    fn a_node_lists_its_oldest_shown_games_of_each_kind_without_walking_all() {
        let lobby = LocalLobby::default();
        let mut running = Vec::new();
        for created in (0..300).rev() {
            let waiting = listing(created, false, 1, 1);
            lobby.set(waiting.id, Some(waiting));
            let active = listing(created, true, 2, 2);
            running.push(active.id);
            lobby.set(active.id, Some(active));
        }
        let hidden = listing(0, false, 1, 0); // nobody connected
        lobby.set(hidden.id, Some(hidden.clone()));
        let listed = lobby.listings();
        assert_eq!(listed.len(), 2 * LOBBY_LIMIT);
        assert!(
            listed
                .iter()
                .all(|l| l.created_ms < 100 && l.id != hidden.id)
        );
        // A game that starts moves from one order to the other; an
        // unlisted one leaves both.
        let first = running.pop().unwrap_or_default();
        lobby.set(first, None);
        let listed = lobby.listings();
        assert!(listed.iter().all(|l| l.id != first));
        assert_eq!(listed.iter().filter(|l| l.active).count(), LOBBY_LIMIT);
        assert_eq!(lobby.lock().running.len(), 299);
    }

    #[test]
    fn quick_play_candidates_are_the_oldest_open_games_of_the_size() {
        let bounds = SettingsBounds::default();
        let lobby = LocalLobby::default();
        let mut fours = Vec::new();
        for created in 0..40 {
            let four = listing(created, false, 1, 1);
            fours.push(four.id);
            lobby.set(four.id, Some(four));
            let three = Listing {
                max_players: 3,
                ..listing(created, false, 1, 1)
            };
            lobby.set(three.id, Some(three));
        }
        let open = lobby.open_for(4, &bounds);
        assert_eq!(open, fours[..QUICK_PLAY_CANDIDATES]);
        // Filled since: no longer a candidate.
        let filled = Listing {
            players: vec!["a".into(); 4],
            ..listing(0, false, 1, 1)
        };
        lobby.set(
            fours[0],
            Some(Listing {
                id: fours[0],
                ..filled
            }),
        );
        assert_eq!(lobby.open_for(4, &bounds)[0], fours[1]);
        assert!(lobby.open_for(2, &bounds).is_empty());
    }

    #[test]
    fn quick_play_matches_size_default_round_and_a_free_seat() {
        let bounds = SettingsBounds::default();
        let open = listing(1, false, 2, 1);
        assert!(open.is_open_for(4, &bounds));
        assert!(!open.is_open_for(3, &bounds));
        assert!(!listing(1, false, 4, 4).is_open_for(4, &bounds));
        assert!(!listing(1, false, 2, 0).is_open_for(4, &bounds));
        assert!(!listing(1, true, 2, 2).is_open_for(4, &bounds));
        let long = Listing {
            duration_ms: 60_000,
            ..open
        };
        assert!(!long.is_open_for(4, &bounds));
    }
}
