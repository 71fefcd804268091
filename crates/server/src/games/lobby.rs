//! The public lobby (protocol §7): what each public game lists, and the
//! `GET /api/lobby` answer built from those listings.
//!
//! A backend keeps one [`Listing`] per public game up to date as the game
//! changes (pushed by the game's owner, never gathered by walking every game
//! on a request); [`LobbyView::of`] turns a set of listings into the answer,
//! and [`Listing::is_open_for`] is what quick play matches on.

use std::collections::HashMap;
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
            } else if view.waiting.len() < LOBBY_LIMIT
                && l.players.len() < usize::from(l.max_players)
                && l.connected > 0
            {
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
#[derive(Debug, Clone, Default)]
pub struct LocalLobby {
    listings: Arc<Mutex<HashMap<Uuid, Listing>>>,
}

impl LocalLobby {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, Listing>> {
        // Each critical section is one map operation: a poisoned map is intact.
        self.listings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists `id` as `listing`, or unlists it (`None`).
    pub fn set(&self, id: Uuid, listing: Option<Listing>) {
        let mut listings = self.lock();
        match listing {
            Some(l) => {
                listings.insert(id, l);
            }
            None => {
                listings.remove(&id);
            }
        }
    }

    /// Every listing now.
    pub fn listings(&self) -> Vec<Listing> {
        self.lock().values().cloned().collect()
    }

    /// Games a quick play for `max_players` seats may be seated in, oldest
    /// first.
    pub fn open_for(&self, max_players: u8, bounds: &SettingsBounds) -> Vec<Uuid> {
        let mut open: Vec<(u64, Uuid)> = self
            .lock()
            .values()
            .filter(|l| l.is_open_for(max_players, bounds))
            .map(|l| (l.created_ms, l.id))
            .collect();
        open.sort_unstable();
        open.into_iter().map(|(_, id)| id).collect()
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
