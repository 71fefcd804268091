//! This node's view of its stateful cluster: the members, the ring over
//! them, and the last probe result of each.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;
use tokio::sync::Notify;

use uuid::Uuid;

use std::collections::HashMap;

use super::hash::HashRing;
use super::membership::{PeerState, PeerStatus};
use crate::config::{ClusterConfig, Peer};
use crate::games::lobby::Listing;
use crate::games::{GameCode, GameRef, MovedGame};
use crate::state::NodeInfo;

/// Where a game lives, as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// In this node's memory.
    Local,
    /// On another node.
    Remote(Peer),
}

/// One member in `/api/cluster`.
#[derive(Debug, serde::Serialize)]
struct MemberView {
    id: String,
    addr: String,
    state: PeerState,
    games: u64,
}

/// This node's view of its cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The other members' lobby listings, as their last probe found them.
    lobbies: Mutex<HashMap<String, Vec<Listing>>>,
    /// The games each other member took over from a draining node (the
    /// ring places them elsewhere), as their last probe found them.
    adopted: Mutex<HashMap<String, Vec<MovedGame>>>,
    /// The games this node handed over while draining, and to whom: kept
    /// apart so that a probe that started before the handover cannot hide it.
    handed: Mutex<Vec<(String, MovedGame)>>,
    /// Whether every peer has been probed once: until then this node does
    /// not know where moved games are, and says it is not ready.
    probed: AtomicBool,
    /// Wakes requests that wait for the first probes (see `wait_probed`).
    probed_now: Notify,
    /// This node's id.
    pub node_id: String,
    /// Every member, this node included.
    pub peers: Vec<Peer>,
    /// The members' addresses, resolved once at start: relays are trusted
    /// only from these.
    pub peer_ips: Vec<std::net::IpAddr>,
    ring: HashRing,
    /// Last probe result of every other member.
    status: Mutex<Vec<(String, PeerStatus)>>,
    /// Interval between probes.
    pub probe_interval: Duration,
    /// Timeout of a probe or a relay connection.
    pub peer_timeout: Duration,
}

impl Cluster {
    /// The cluster described by `config`.
    pub fn new(config: &ClusterConfig) -> Cluster {
        let ring = HashRing::new(config.peers.iter().map(|p| p.id.as_str()));
        let status = config
            .peers
            .iter()
            .filter(|p| p.id != config.node_id)
            .map(|p| (p.id.clone(), PeerStatus::default()))
            .collect();
        let peer_ips = config
            .peers
            .iter()
            .filter_map(|p| std::net::ToSocketAddrs::to_socket_addrs(&p.addr).ok())
            .flatten()
            .map(|a| a.ip())
            .collect();
        Cluster {
            lobbies: Mutex::default(),
            adopted: Mutex::default(),
            handed: Mutex::default(),
            probed: AtomicBool::new(false),
            probed_now: Notify::new(),
            node_id: config.node_id.clone(),
            peers: config.peers.clone(),
            peer_ips,
            ring,
            status: Mutex::new(status),
            probe_interval: config.probe_interval,
            peer_timeout: config.peer_timeout,
        }
    }

    /// Where the game with canonical id `game` lives.
    pub fn place(&self, game: &Uuid) -> Placement {
        self.place_key(&game.to_string())
    }

    /// Where a game a client named lives: by its id, or by its code (a
    /// node only gives its games codes that the ring maps to it).
    pub fn place_ref(&self, game: &GameRef) -> Placement {
        match game {
            GameRef::Id(id) => self.place(id),
            GameRef::Code(code) => self.place_key(code.as_str()),
        }
    }

    /// Whether the ring maps `code` to this node.
    pub fn owns_code(&self, code: &GameCode) -> bool {
        self.place_key(code.as_str()) == Placement::Local
    }

    /// The node that matches quick plays and keeps the public games of
    /// `size` seats (one per size, so matching sees every such game).
    pub fn matchmaker(&self, size: u8) -> Placement {
        self.place_key(&format!("quick-play/{size}"))
    }

    /// Where the ring puts `key`.
    fn place_key(&self, key: &str) -> Placement {
        match self.ring.owner(key) {
            Some(owner) if owner != self.node_id => self
                .peers
                .iter()
                .find(|p| p.id == owner)
                .cloned()
                .map_or(Placement::Local, Placement::Remote),
            _ => Placement::Local,
        }
    }

    /// A fresh game id this node owns (ids are drawn until the ring maps one
    /// here; with n nodes that takes n draws on average).
    pub fn new_local_id(&self) -> Uuid {
        loop {
            let id = Uuid::new_v4();
            if self.place(&id) == Placement::Local {
                return id;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, PeerStatus)>> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last known state of peer `id` (`Ready` for this node itself).
    pub fn state_of(&self, id: &str) -> PeerStatus {
        self.lock()
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, s)| s.clone())
            .unwrap_or(PeerStatus {
                state: PeerState::Ready,
                games: 0,
            })
    }

    /// Records a probe result.
    pub fn set_state(&self, id: &str, status: PeerStatus) {
        if let Some(slot) = self.lock().iter_mut().find(|(p, _)| p == id) {
            slot.1 = status;
        }
    }

    /// The ready peer with the fewest games, for a draining node's creates.
    pub fn ready_peer(&self) -> Option<Peer> {
        let status = self.lock();
        status
            .iter()
            .filter(|(_, s)| s.state == PeerState::Ready)
            .min_by_key(|(_, s)| s.games)
            .and_then(|(id, _)| self.peers.iter().find(|p| &p.id == id).cloned())
    }

    /// `/api/cluster`: every member as this node sees it, itself as `me`
    /// reports.
    pub fn view(&self, me: &NodeInfo) -> serde_json::Value {
        let nodes: Vec<MemberView> = self
            .peers
            .iter()
            .map(|p| {
                let status = if p.id == self.node_id {
                    let state = if me.draining {
                        PeerState::Draining
                    } else {
                        PeerState::Ready
                    };
                    PeerStatus {
                        state,
                        games: me.games.total(),
                    }
                } else {
                    self.state_of(&p.id)
                };
                MemberView {
                    id: p.id.clone(),
                    addr: p.addr.clone(),
                    state: status.state,
                    games: status.games,
                }
            })
            .collect();
        serde_json::json!({
            "self": self.node_id,
            "vnodes": super::hash::VNODES,
            "nodes": nodes,
        })
    }

    /// Records peer `id`'s lobby listings (empty when it is down).
    pub fn set_listings(&self, id: &str, listings: Vec<Listing>) {
        let mut lobbies = self.lobbies.lock().unwrap_or_else(|p| p.into_inner());
        lobbies.insert(id.to_owned(), listings);
    }

    /// Every other member's listings, as last probed.
    pub fn peer_listings(&self) -> Vec<Listing> {
        let lobbies = self.lobbies.lock().unwrap_or_else(|p| p.into_inner());
        lobbies.values().flatten().cloned().collect()
    }

    /// Records peer `id`'s adopted games (none when it is down).
    pub fn set_adopted(&self, id: &str, games: Vec<MovedGame>) {
        self.lock_adopted().insert(id.to_owned(), games);
    }

    /// Notes that peer `id` took over `game` from this node.
    pub fn note_handed(&self, id: &str, game: MovedGame) {
        let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        handed.retain(|(_, g)| g.id != game.id);
        handed.push((id.to_owned(), game));
        drop(handed);
        let mut status = self.lock();
        if let Some((_, s)) = status.iter_mut().find(|(p, _)| p == id) {
            // Spread the next ones before the next probe counts them.
            s.games += 1;
        }
    }

    /// Forgets where `game` was: this node holds it now.
    pub fn forget_adopted(&self, game: &uuid::Uuid) {
        for games in self.lock_adopted().values_mut() {
            games.retain(|g| g.id != *game);
        }
        let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        handed.retain(|(_, g)| g.id != *game);
    }

    /// The peer that took over the game a client named (from this node
    /// first, else as the probes found it), unless it is down.
    pub fn adopter_of(&self, game: &GameRef) -> Option<Peer> {
        let named = |g: &MovedGame| match game {
            GameRef::Id(id) => g.id == *id,
            GameRef::Code(code) => g.code == code.as_str(),
        };
        let up = |peer: &str| self.state_of(peer).state != PeerState::Down;
        let handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
        let holder = match handed.iter().rev().find(|(_, g)| named(g)) {
            Some((peer, _)) => Some(peer.clone()).filter(|p| up(p)),
            None => {
                drop(handed);
                let adopted = self.lock_adopted();
                adopted
                    .iter()
                    .find(|(peer, games)| up(peer) && games.iter().any(named))
                    .map(|(peer, _)| peer.clone())
            }
        }?;
        self.peers.iter().find(|p| p.id == holder).cloned()
    }

    fn lock_adopted(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<MovedGame>>> {
        self.adopted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that every peer has been probed once.
    pub fn set_probed(&self) {
        if !self.probed.swap(true, Ordering::Relaxed) {
            self.probed_now.notify_waiters();
        }
    }

    /// Waits (at most `limit`) until every peer has been probed once: a
    /// peer may relay a player here before this node has learned which of
    /// the games the ring gives it moved elsewhere.
    pub async fn wait_probed(&self, limit: Duration) {
        let probed = self.probed_now.notified();
        if !self.is_probed() {
            let _ = tokio::time::timeout(limit, probed).await;
        }
    }

    /// Whether every peer has been probed once.
    pub fn is_probed(&self) -> bool {
        self.probed.load(Ordering::Relaxed)
    }

    /// The members other than this node.
    pub fn others(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().filter(|p| p.id != self.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(me: &str) -> Cluster {
        let peers = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, id)| Peer {
                id: (*id).to_owned(),
                addr: format!("127.0.0.1:{}", 9001 + i),
                admin: format!("127.0.0.1:{}", 9101 + i),
            })
            .collect();
        Cluster::new(&ClusterConfig {
            node_id: me.to_owned(),
            peers,
            probe_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn local_ids_are_owned_here_and_every_node_agrees() {
        let (a, b, c) = (cluster("a"), cluster("b"), cluster("c"));
        for _ in 0..200 {
            let id = b.new_local_id();
            assert_eq!(b.place(&id), Placement::Local);
            assert!(matches!(a.place(&id), Placement::Remote(ref p) if p.id == "b"));
            assert!(matches!(c.place(&id), Placement::Remote(ref p) if p.id == "b"));
        }
    }

    #[test]
    fn a_moved_game_is_found_on_its_adopter_by_id_and_code_unless_it_is_down() {
        let a = cluster("a");
        let code = GameCode::random();
        let id = uuid::Uuid::new_v4();
        let moved = MovedGame {
            id,
            code: code.as_str().to_owned(),
        };
        assert_eq!(a.adopter_of(&GameRef::Id(id)), None);
        a.set_adopted("b", vec![moved.clone()]);
        assert_eq!(
            a.adopter_of(&GameRef::Code(code)).map(|p| p.id),
            Some("b".into())
        );
        // Moved on again, by a's own hand: that counts over the probes.
        a.note_handed("c", moved);
        assert_eq!(
            a.adopter_of(&GameRef::Id(id)).map(|p| p.id),
            Some("c".into())
        );
        a.set_state(
            "c",
            PeerStatus {
                state: PeerState::Down,
                games: 0,
            },
        );
        assert_eq!(a.adopter_of(&GameRef::Id(id)), None);
        a.set_state("c", PeerStatus::default());
        a.forget_adopted(&id);
        assert_eq!(a.adopter_of(&GameRef::Id(id)), None);
    }

    #[test]
    fn draining_and_down_peers_get_no_creates() {
        let a = cluster("a");
        a.set_state(
            "b",
            PeerStatus {
                state: PeerState::Draining,
                games: 0,
            },
        );
        a.set_state(
            "c",
            PeerStatus {
                state: PeerState::Down,
                games: 0,
            },
        );
        assert_eq!(a.ready_peer(), None);
        a.set_state(
            "c",
            PeerStatus {
                state: PeerState::Ready,
                games: 5,
            },
        );
        assert_eq!(a.ready_peer().map(|p| p.id), Some("c".to_owned()));
    }
}
