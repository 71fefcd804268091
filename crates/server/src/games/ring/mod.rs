//! Stateful cluster mode: each game lives in the memory of the node the
//! hash ring names; every node accepts every player and relays them there.
//!
//! - [`hash`]: the consistent-hash ring (stable across nodes and releases).
//! - [`cluster`]: the members, the ring over them, their last known state.
//! - [`membership`]: health probes of the peers, and what they report.
//! - [`relay`]: a player's connection relayed, undecoded, to the game's node.
//! - [`handoff`]: a draining node's waiting games moved to ready peers.
//!
//! [`RingGames`] is local games (`super::local`) for the games this node
//! owns, and a relay for the others. The ring is fixed by `--peers`: a node
//! that is down or draining keeps its running games (they are in its
//! memory; a dead node's games are lost, the known trade-off of this mode),
//! but gets no new ones, because a node only ever creates games it owns
//! itself, and a draining node hands its players' `create`s to a ready peer.
//! A draining node's *waiting* games move to ready peers ([`handoff`]):
//! from then on a game is found on the node holding it, then on the peer
//! that took it over, then where the ring places it.

pub mod cluster;
pub mod handoff;
pub mod hash;
pub mod membership;
pub mod relay;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use game_logic::{PlayerName, Settings, Status};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use transport::{Outbox, SessionLimits};
use uuid::Uuid;

use super::lobby::{Listing, LobbyView};
use super::local::task::GameHandle;
use super::local::{LocalGames, LocalSeat, LocalWatch};
use super::{
    Capture, GameCounts, GameRef, Games, Lookup, MovedGame, Placed, Requester, WaitingGame,
};
use crate::clock::Clock;
use crate::config::{ClusterConfig, Peer};
use crate::error::ServerError;
use crate::state::NodeInfo;
use cluster::{Cluster, Placement};
use membership::PeerState;
use relay::{MAX_HOPS, Relay};

/// A waiting game whose task waits for the verdict of its move.
type Frozen = (WaitingGame, tokio::sync::oneshot::Sender<bool>);

/// One stateful cluster node's games: its own, and the way to the others'.
#[derive(Debug)]
pub struct RingGames {
    /// The games this node owns.
    local: LocalGames,
    /// The members and the ring.
    cluster: Arc<Cluster>,
    /// A relay's internal WebSocket gets the same limits as a player's.
    limits: SessionLimits,
    /// Hands waiting games to peers when draining.
    handoff: handoff::PostClient,
    /// Whether a drain found no ready peer to move games to (said once).
    stranded: AtomicBool,
}

impl RingGames {
    /// The node described by `config`; starts probing the peers until `stop`.
    pub fn launch(
        config: &ClusterConfig,
        local: LocalGames,
        limits: SessionLimits,
        stop: CancellationToken,
    ) -> RingGames {
        let cluster = Arc::new(Cluster::new(config));
        tokio::spawn(membership::probe_loop(cluster.clone(), stop));
        RingGames {
            local,
            handoff: handoff::post_client(cluster.peer_timeout),
            cluster,
            limits,
            stranded: AtomicBool::new(false),
        }
    }

    /// Relays the requester to `peer`, starting with its request frame.
    async fn relay_to(&self, peer: &Peer, who: &Requester<'_>) -> Result<Relay, ServerError> {
        if who.hops >= MAX_HOPS || self.cluster.state_of(&peer.id).state == PeerState::Down {
            return Err(ServerError::UnknownGame);
        }
        let opened = Relay::open(
            &peer.addr,
            who.hops,
            who.frame.clone(),
            who.outbox.clone(),
            &self.limits,
            self.cluster.peer_timeout,
        )
        .await;
        match opened {
            Ok(relay) => {
                debug!(conn = who.conn, peer = %peer.id, "relaying");
                Ok(relay)
            }
            Err(e) => {
                debug!(conn = who.conn, peer = %peer.id, "cannot relay: {e}");
                Err(ServerError::UnknownGame)
            }
        }
    }

    /// The peer holding `game`, or `None` when it is this node: this node
    /// if it has the game, else the peer that took it over from a draining
    /// node, else the ring's owner.
    fn owner(&self, game: &GameRef) -> Option<Peer> {
        if self.local.find(game).is_some() {
            return None;
        }
        if let Some(peer) = self.cluster.adopter_of(game) {
            return Some(peer);
        }
        match self.cluster.place_ref(game) {
            Placement::Remote(peer) => Some(peer),
            Placement::Local => None,
        }
    }

    /// Seats or watches through `here` (this node's games); a game that
    /// moved to a peer meanwhile (this node is draining), or that a peer
    /// took over while this node was down (it may not have probed its
    /// peers yet: it waits for that, briefly), is followed there.
    async fn here_or_moved<T>(
        &self,
        who: Requester<'_>,
        game: &GameRef,
        here: impl Future<Output = Result<Placed<T>, ServerError>>,
    ) -> Result<Placed<T>, ServerError> {
        match here.await {
            Err(ServerError::UnknownGame) => {
                let first_probes = self.cluster.probe_interval + self.cluster.peer_timeout;
                self.cluster.wait_probed(first_probes).await;
                self.follow(who, game).await
            }
            placed => placed,
        }
    }

    /// Relays the requester to the peer now holding `game`, if any.
    async fn follow<T>(
        &self,
        who: Requester<'_>,
        game: &GameRef,
    ) -> Result<Placed<T>, ServerError> {
        match self.owner(game) {
            Some(peer) => self.relay_to(&peer, &who).await.map(Placed::Relayed),
            None => Err(ServerError::UnknownGame),
        }
    }

    /// Sends one frozen waiting game to `peer` and tells its task whether
    /// it moved; whether it did.
    async fn move_to(&self, game: &GameHandle, frozen: Frozen, peer: &Peer) -> bool {
        let (waiting, verdict) = frozen;
        let timeout = self.cluster.peer_timeout;
        let sent = handoff::send(&self.handoff, peer, &waiting, timeout).await;
        if let Err(why) = &sent {
            handoff::not_moved(&waiting, peer, why);
        } else {
            // Where it went first, then its old task is gone: a request
            // that raced the move finds the game on the peer.
            let moved = MovedGame {
                id: waiting.id,
                code: waiting.code.clone(),
            };
            self.cluster.note_handed(&peer.id, moved);
            self.local.forget(game);
            handoff::moved(&waiting, peer);
        }
        let moved = sent.is_ok();
        if verdict.send(moved).is_err() {
            debug!(game = %waiting.id, "the game ended during its move");
        }
        moved
    }

    /// The matchmaker of games of `size` seats when it is another node that
    /// can take them; `None`: this node matches (it is the matchmaker, or
    /// the matchmaker is down or draining and this node stands in).
    fn matchmaker(&self, size: u8) -> Option<Peer> {
        match self.cluster.matchmaker(size) {
            Placement::Remote(peer) => {
                let state = self.cluster.state_of(&peer.id).state;
                matches!(state, PeerState::Ready | PeerState::Unknown).then_some(peer)
            }
            Placement::Local => None,
        }
    }

    /// A draining node places no games: a ready peer takes the request.
    async fn hand_to_ready_peer(
        &self,
        who: &Requester<'_>,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        let peer = self.cluster.ready_peer().ok_or(ServerError::Overloaded)?;
        match self.relay_to(&peer, who).await {
            Ok(relay) => Ok(Placed::Relayed(relay)),
            Err(_) => Err(ServerError::Overloaded),
        }
    }

    /// A new game of this node's: an id and a code the ring maps here.
    fn create_here(
        &self,
        who: &Requester<'_>,
        name: PlayerName,
        settings: Settings,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        let id = self.cluster.new_local_id();
        let cluster = &self.cluster;
        self.local
            .create_with(id, who.outbox, name, settings, |c| cluster.owns_code(c))
            .map(Placed::Seat)
    }
}

impl Games for RingGames {
    type Seat = LocalSeat;
    type Watch = LocalWatch;
    const MODE: &'static str = "stateful";

    async fn create(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        draining: bool,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        if draining {
            return self.hand_to_ready_peer(&who).await;
        }
        // A public game quick play could match lives with its size's
        // matchmaker, so that matching sees every such game.
        if settings.is_quick_play(settings.max_players(), self.local.bounds())
            && let Some(peer) = self.matchmaker(settings.max_players())
            && let Ok(relay) = self.relay_to(&peer, &who).await
        {
            return Ok(Placed::Relayed(relay));
        }
        self.create_here(&who, name, settings)
    }

    async fn quick_play(
        &self,
        who: Requester<'_>,
        name: PlayerName,
        settings: Settings,
        draining: bool,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        let size = settings.max_players();
        if let Some(peer) = self.matchmaker(size) {
            return self.relay_to(&peer, &who).await.map(Placed::Relayed);
        }
        if draining {
            return self.hand_to_ready_peer(&who).await;
        }
        let cluster = &self.cluster;
        self.local
            .match_or_create(
                who.outbox,
                name,
                settings,
                || cluster.new_local_id(),
                |c| cluster.owns_code(c),
            )
            .await
            .map(Placed::Seat)
    }

    async fn join(
        &self,
        who: Requester<'_>,
        game: GameRef,
        name: PlayerName,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        match self.owner(&game) {
            Some(peer) => self.relay_to(&peer, &who).await.map(Placed::Relayed),
            None => {
                let here = self.local.join(who.clone(), game, name);
                self.here_or_moved(who, &game, here).await
            }
        }
    }

    async fn resume(
        &self,
        who: Requester<'_>,
        game: GameRef,
        token: String,
    ) -> Result<Placed<LocalSeat>, ServerError> {
        match self.owner(&game) {
            Some(peer) => self.relay_to(&peer, &who).await.map(Placed::Relayed),
            None => {
                let here = self.local.resume(who.clone(), game, token);
                self.here_or_moved(who, &game, here).await
            }
        }
    }

    fn is_seat_in(seat: &LocalSeat, game: &GameRef) -> bool {
        LocalGames::is_seat_in(seat, game)
    }

    fn status(&self, seat: &LocalSeat) -> Option<Status> {
        self.local.status(seat)
    }

    async fn start(&self, seat: &LocalSeat, conn: u64, outbox: &Outbox) -> Result<(), ServerError> {
        self.local.start(seat, conn, outbox).await
    }

    async fn capture(
        &self,
        seat: &LocalSeat,
        capture: Capture,
        outbox: &Outbox,
    ) -> Result<(), ServerError> {
        self.local.capture(seat, capture, outbox).await
    }

    async fn leave(&self, seat: LocalSeat, conn: u64) -> Result<(), LocalSeat> {
        self.local.leave(seat, conn).await
    }

    async fn disconnect(&self, seat: LocalSeat, conn: u64) {
        self.local.disconnect(seat, conn).await;
    }

    async fn watch(
        &self,
        who: Requester<'_>,
        game: GameRef,
    ) -> Result<Placed<LocalWatch>, ServerError> {
        match self.owner(&game) {
            Some(peer) => self.relay_to(&peer, &who).await.map(Placed::Relayed),
            None => {
                let here = self.local.watch(who.clone(), game);
                self.here_or_moved(who, &game, here).await
            }
        }
    }

    fn is_watching(watch: &LocalWatch, game: &GameRef) -> bool {
        LocalGames::is_watching(watch, game)
    }

    fn watched(watch: &LocalWatch) -> Uuid {
        LocalGames::watched(watch)
    }

    async fn unwatch(&self, watch: LocalWatch, conn: u64) {
        self.local.unwatch(watch, conn).await;
    }

    async fn lookup(&self, game: GameRef) -> Lookup {
        let Some(peer) = self.owner(&game) else {
            return self.local.lookup(game).await;
        };
        if self.cluster.state_of(&peer.id).state == PeerState::Down {
            return Lookup::Unknown("unknown game (its node is down)");
        }
        let timeout = self.cluster.peer_timeout;
        let client = membership::http_client(timeout);
        let path = format!("/api/games/{game}");
        match membership::get(&client, &peer.addr, &path, timeout).await {
            Ok((status, body)) => Lookup::Forwarded { status, body },
            Err(e) => {
                debug!(peer = %peer.id, "cannot fetch a game: {e}");
                Lookup::Unknown("unknown game (its node is unreachable)")
            }
        }
    }

    async fn lobby(&self) -> Result<LobbyView, ServerError> {
        let mut listings = self.local.listings();
        let mine: std::collections::HashSet<Uuid> = listings.iter().map(|l| l.id).collect();
        // A game moves to no other node, but a probe may lag behind one.
        listings.extend(
            self.cluster
                .peer_listings()
                .into_iter()
                .filter(|l| !mine.contains(&l.id)),
        );
        Ok(LobbyView::of(listings, self.clock().now()))
    }

    fn own_listings(&self) -> Vec<Listing> {
        self.local.listings()
    }

    async fn hand_off_waiting(&self) -> Duration {
        // Every waiting game stops taking commands at once (a join that
        // filled one would start a round): then they move one by one, their
        // players' commands held meanwhile.
        let games = self.local.waiting();
        let frozen = join_all(games.iter().map(GameHandle::hand_off)).await;
        let mut moved = 0u32;
        for (game, frozen) in games.iter().zip(frozen) {
            let Some(frozen) = frozen else {
                continue; // started or ended meanwhile
            };
            let Some(peer) = self.cluster.ready_peer() else {
                if !self.stranded.swap(true, Ordering::Relaxed) {
                    warn!("draining with no ready peer: waiting games stay here");
                }
                let (_, verdict) = frozen;
                let _stays = verdict.send(false);
                continue;
            };
            if self.move_to(game, frozen, &peer).await {
                moved += 1;
            }
        }
        if moved == 0 {
            return Duration::ZERO;
        }
        // Every peer probes the adopters within an interval (and a timeout).
        2 * self.cluster.probe_interval + self.cluster.peer_timeout
    }

    fn adopt(&self, game: WaitingGame) -> Result<(), ServerError> {
        let id = game.id;
        self.local.adopt(game)?;
        self.cluster.forget_adopted(&id);
        Ok(())
    }

    fn adopted(&self) -> Vec<MovedGame> {
        self.local
            .names()
            .into_iter()
            .filter(|(id, _)| self.cluster.place(id) != Placement::Local)
            .map(|(id, code)| MovedGame {
                id,
                code: code.as_str().to_owned(),
            })
            .collect()
    }

    fn counts(&self) -> GameCounts {
        self.local.counts()
    }

    /// Ready once every peer has been probed: until then this node does not
    /// know which of the games the ring gives it have moved to a peer.
    fn is_ready(&self) -> bool {
        self.cluster.is_probed()
    }

    fn node_id(&self) -> &str {
        &self.cluster.node_id
    }

    fn is_peer(&self, ip: IpAddr) -> bool {
        self.cluster.peer_ips.contains(&ip)
    }

    fn cluster_view(&self, me: &NodeInfo) -> Option<serde_json::Value> {
        Some(self.cluster.view(me))
    }

    fn clock(&self) -> &Clock {
        self.local.clock()
    }
}
