//! Protocol §7 in Redis: short codes, the public lobby and quick play,
//! cluster-wide.
//!
//! - A code is a key of its own (`gridcap:code:<CODE>` → the game id), set
//!   with `NX` before the game is created: unique among live games whatever
//!   node draws it. (In a Redis Cluster it lives in another slot than its
//!   game, so it cannot be set by the game's script.)
//! - Public games are a sorted set by creation time (`gridcap:lobby`); the
//!   lobby reads the games behind it at most every [`LOBBY_REFRESH`] and
//!   forgets the ones that completed or expired.
//! - Quick play's games of one size are another sorted set
//!   (`gridcap:open:<size>`). A quick play joins the oldest of them with
//!   the `join` script (atomic: one seat per player), dropping the ones that
//!   filled up or closed; when none is left it creates one, holding a short
//!   per-size lease so that two nodes never both create one side by side.

use std::sync::Arc;
use std::time::Duration;

use game_logic::{GameError, PlayerName, Settings};
use redis::Value;
use tracing::{debug, warn};
use transport::Outbox;
use uuid::Uuid;

use super::backend::Backend;
use super::layout::{self, CODE_TTL, LOBBY_KEY};
use super::scripts::{Answer, Code};
use super::{Seat, StoreError};
use crate::error::ServerError;
use crate::games::lobby::Listing;
use crate::games::{GameCode, GameRef};

/// How stale the lobby may be (protocol §7: nodes agree within a second).
pub const LOBBY_REFRESH: Duration = Duration::from_millis(500);
/// Public games the lobby reads at most (oldest first).
const LOBBY_SCAN: isize = 400;
/// How long one node may hold a size's creation lease.
const LEASE_MS: u64 = 2_000;
/// How long a quick play keeps trying "join the oldest, else create"
/// before answering `overloaded`. A time, not a number of rounds: in a
/// burst, every creation sends the waiting quick plays round again at once
/// (most find the new game full), so rounds run out long before the burst
/// is served. Longer than [`LEASE_MS`], so that a lease left by a node that
/// died is outlived.
const QUICK_PLAY_PATIENCE: Duration = Duration::from_secs(5);
const _: () = assert!(QUICK_PLAY_PATIENCE.as_millis() > LEASE_MS as u128);
/// Pause before another round while another node holds the lease.
const LEASE_WAIT: Duration = Duration::from_millis(10);
/// Games tried per round.
const CANDIDATES: isize = 8;

fn unavailable(e: StoreError) -> ServerError {
    debug!("Redis: {e}");
    ServerError::StoreUnavailable
}

impl Backend {
    /// The id of the game a client named.
    pub(super) async fn resolve(&self, game: &GameRef) -> Result<Uuid, ServerError> {
        match game {
            GameRef::Id(id) => Ok(*id),
            GameRef::Code(code) => {
                let cmd = redis::Cmd::get(layout::code_key(code.as_str()));
                let id: Option<String> = self.store.query(&cmd).await.map_err(unavailable)?;
                id.and_then(|id| Uuid::parse_str(&id).ok())
                    .ok_or(ServerError::UnknownGame)
            }
        }
    }

    /// A code no live game has, reserved for game `id`.
    pub(super) async fn reserve_code(&self, id: Uuid) -> Result<GameCode, ServerError> {
        loop {
            let code = GameCode::random();
            let mut cmd = redis::cmd("SET");
            cmd.arg(layout::code_key(code.as_str()))
                .arg(id.to_string())
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(CODE_TTL.as_millis()).unwrap_or(u64::MAX));
            let set: Option<String> = self.store.query(&cmd).await.map_err(unavailable)?;
            if set.is_some() {
                return Ok(code);
            }
        }
    }

    /// Lists public game `id` in the lobby, and for quick play when it has
    /// quick play's settings. A failure only leaves it unlisted.
    pub(super) async fn list(&self, id: Uuid, created: game_logic::Timestamp, settings: &Settings) {
        let score = created.as_unix_ms();
        let mut keys = vec![LOBBY_KEY.to_owned()];
        if settings.is_quick_play(settings.max_players(), &self.bounds) {
            keys.push(layout::open_key(settings.max_players()));
        }
        for key in keys {
            let cmd = redis::Cmd::zadd(&key, id.to_string(), score);
            if let Err(e) = self.store.query::<Value>(&cmd).await {
                warn!(game = %id, "a public game could not be listed: {e}");
            }
        }
        self.invalidate_lobby();
    }

    /// Drops `id` from a sorted set (it filled, closed or ended).
    async fn unlist(&self, key: &str, id: &str) {
        let cmd = redis::Cmd::zrem(key, id);
        if let Err(e) = self.store.query::<Value>(&cmd).await {
            debug!(game = id, "cannot unlist: {e}");
        }
    }

    fn invalidate_lobby(&self) {
        *self.lobby_cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The lobby's listings, read from Redis at most every [`LOBBY_REFRESH`].
    pub(super) async fn listings(&self) -> Result<Vec<Listing>, ServerError> {
        if let Some((at, listings)) = &*self.lobby_cache.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < LOBBY_REFRESH
        {
            return Ok(listings.clone());
        }
        let cmd = redis::Cmd::zrange(LOBBY_KEY, 0, LOBBY_SCAN - 1);
        let ids: Vec<String> = self.store.query(&cmd).await.map_err(unavailable)?;
        // The snapshot script, not HGETALL: it counts the spectators.
        let reads = ids.iter().map(|id| async move {
            let answer = self.store.snapshot(&Uuid::parse_str(id).ok()?).await.ok()?;
            Some(answer)
        });
        let games = futures_util::future::join_all(reads).await;
        let mut listings = Vec::new();
        for (id, answer) in ids.iter().zip(games) {
            let Some(answer) = answer else {
                continue; // Redis trouble: shown again next time.
            };
            match listing(id, answer) {
                Some(l) => listings.push(l),
                // Completed, expired or unreadable: off the lobby.
                None => self.unlist(LOBBY_KEY, id).await,
            }
        }
        *self.lobby_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((tokio::time::Instant::now(), listings.clone()));
        Ok(listings)
    }

    /// Quick play: the oldest open game of the size, else a new one.
    pub(super) async fn quick_play(
        self: &Arc<Self>,
        conn: u64,
        outbox: &Outbox,
        name: PlayerName,
        settings: Settings,
    ) -> Result<Seat, ServerError> {
        let size = settings.max_players();
        let open = layout::open_key(size);
        let deadline = tokio::time::Instant::now() + QUICK_PLAY_PATIENCE;
        // Without it, every quick play of a burst tries each new game in
        // turn (a subscription and a script each), and all but a few find
        // it full: work that grows with the square of the burst.
        let lock = self
            .matchmaking
            .get(usize::from(size))
            .ok_or(ServerError::Game(GameError::InvalidSettings))?;
        let Ok(_one_at_a_time) = tokio::time::timeout_at(deadline, lock.lock()).await else {
            warn!(
                size,
                "quick play waited {QUICK_PLAY_PATIENCE:?} for its turn"
            );
            return Err(ServerError::Overloaded);
        };
        while tokio::time::Instant::now() < deadline {
            let cmd = redis::Cmd::zrange(&open, 0, CANDIDATES - 1);
            let ids: Vec<String> = self.store.query(&cmd).await.map_err(unavailable)?;
            for raw in &ids {
                let Ok(id) = Uuid::parse_str(raw) else {
                    self.unlist(&open, raw).await;
                    continue;
                };
                match self.join_game(conn, outbox, id, &name, true).await {
                    Ok(Some((seat, still_open))) => {
                        if !still_open {
                            self.unlist(&open, raw).await;
                        }
                        self.invalidate_lobby();
                        return Ok(seat);
                    }
                    // Not open any more (private, unattended, full, started
                    // or gone): off the list, try the next.
                    Ok(None) | Err(ServerError::UnknownGame | ServerError::Game(_)) => {
                        self.unlist(&open, raw).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !ids.is_empty() {
                continue;
            }
            if self.take_lease(size).await? {
                let cmd = redis::Cmd::zcard(&open);
                let waiting: usize = self.store.query(&cmd).await.map_err(unavailable)?;
                let created = match waiting {
                    0 => Some(self.create(conn, outbox, name.clone(), settings).await),
                    _ => None, // Another node created one meanwhile: join it.
                };
                self.release_lease(size).await;
                if let Some(created) = created {
                    return created;
                }
            } else {
                tokio::time::sleep(LEASE_WAIT).await;
            }
        }
        warn!(
            size,
            "quick play found no seat within {QUICK_PLAY_PATIENCE:?}"
        );
        Err(ServerError::Overloaded)
    }

    /// Takes the lease on creating quick-play games of `size`.
    async fn take_lease(&self, size: u8) -> Result<bool, ServerError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(layout::quick_play_lock(size))
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(LEASE_MS);
        let set: Option<String> = self.store.query(&cmd).await.map_err(unavailable)?;
        Ok(set.is_some())
    }

    /// Gives the lease back, if it is still this node's.
    async fn release_lease(&self, size: u8) {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0",
        )
        .arg(1)
        .arg(layout::quick_play_lock(size))
        .arg(&self.instance);
        if let Err(e) = self.store.query::<Value>(&cmd).await {
            debug!("cannot release the quick-play lease (it expires): {e}");
        }
    }
}

/// The listing of a game read by the snapshot script, its spectators
/// counted; `None` when it is gone, completed or unreadable.
fn listing(id: &str, answer: Answer) -> Option<Listing> {
    let game = answer.game.filter(|_| answer.code == Code::Ok)?;
    let id = Uuid::parse_str(id).ok()?;
    Listing::of(id, &game.code, game.created, &game.snapshot())
        .map(|l| l.watched_by(usize::try_from(game.spectators).unwrap_or(usize::MAX)))
}
