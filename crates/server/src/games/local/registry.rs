//! The games this node holds, by id and by short code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use game_logic::{Game, PlayerName, Settings, Status};
use tokio_util::sync::CancellationToken;
use tracing::debug;
use transport::Outbox;
use uuid::Uuid;

use super::census::Census;
use super::moving::Regathered;
use super::task::{self as game_task, GameHandle, Identity, NodeEnv};
use crate::clock::Clock;
use crate::error::ServerError;
use crate::games::code::{GameCode, GameRef};
use crate::games::lobby::LocalLobby;
use crate::games::{Capacity, GameCounts};

/// Commands a game's queue holds before senders wait.
const GAME_QUEUE: usize = 1024;

/// The games, by id and by code, under one lock.
#[derive(Debug, Default)]
struct Games {
    by_id: HashMap<Uuid, GameHandle>,
    by_code: HashMap<GameCode, Uuid>,
}

/// Every game on this node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    games: Arc<Mutex<Games>>,
    /// What every game task shares: the clock, the listings of this node's
    /// public games, the census (counts by status and the unattended games,
    /// kept by the game tasks), the most connections watching one game.
    node: Arc<NodeEnv>,
    /// Stops every game when the server stops: one task waits for it (made
    /// with the first game) and tells every game held then, each through
    /// its command queue; a game made later is told as it is made.
    shutdown: CancellationToken,
    /// Whether that task has been spawned.
    watching: Arc<AtomicBool>,
}

/// Tells every game in `games` (if the registry is still there) to end.
fn stop_all(games: &Weak<Mutex<Games>>) {
    let Some(games) = games.upgrade() else {
        return;
    };
    let games = games.lock().unwrap_or_else(|p| p.into_inner());
    // A parked game wakes into a task of its own: nothing runs here, and
    // its goodbye (which takes this lock) waits until the loop is done.
    for game in games.by_id.values() {
        game.stop();
    }
}

/// Drops game `id` (and its `code`) from `games`.
fn remove(games: &Mutex<Games>, id: &Uuid, code: &GameCode) {
    // Each critical section is one map operation: a poisoned map is intact.
    let mut games = games.lock().unwrap_or_else(|p| p.into_inner());
    games.by_id.remove(id);
    games.by_code.remove(code);
}

impl Registry {
    /// An empty registry whose games hold `capacity`'s spectators and
    /// unattended games (the count of games is the caller's).
    pub fn new(clock: Clock, capacity: Capacity, shutdown: CancellationToken) -> Registry {
        Registry {
            games: Arc::default(),
            node: Arc::new(NodeEnv {
                clock,
                queue: GAME_QUEUE,
                max_spectators: capacity.spectators,
                lobby: LocalLobby::default(),
                census: Census::new(capacity.unattended),
            }),
            shutdown,
            watching: Arc::new(AtomicBool::new(false)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Games> {
        // Each critical section is one map operation: a poisoned map is intact.
        self.games.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates game `id` hosted by the connection behind `host`, which
    /// receives its `joined` from the new game's task. Its code is drawn
    /// until one is free here and `code_ok` accepts it (a cluster node takes
    /// only codes the ring gives it).
    pub fn create(
        &self,
        id: Uuid,
        settings: Settings,
        name: PlayerName,
        host: &Outbox,
        code_ok: impl Fn(&GameCode) -> bool,
    ) -> GameHandle {
        let mut games = self.lock();
        let code = loop {
            let code = GameCode::random();
            if !games.by_code.contains_key(&code) && code_ok(&code) {
                break code;
            }
        };
        self.watch_shutdown();
        let created = self.node.clock.now();
        let identity = Identity { id, code, created };
        let game = Game::new(settings, name, created);
        let node = Arc::clone(&self.node);
        let handle = game_task::spawn(identity, game, host.clone(), node, self.on_exit());
        self.hold(&mut games, &handle);
        handle
    }

    /// Takes over a waiting game moved here from a draining peer, under its
    /// own id and code; `Overloaded` if either is already taken here.
    pub fn adopt(&self, moved: Regathered) -> Result<GameHandle, ServerError> {
        let Regathered {
            identity,
            game,
            tokens,
        } = moved;
        let (id, code) = (identity.id, identity.code);
        self.watch_shutdown();
        let mut games = self.lock();
        if games.by_id.contains_key(&id) || games.by_code.contains_key(&code) {
            return Err(ServerError::Overloaded);
        }
        let node = Arc::clone(&self.node);
        let handle = game_task::spawn_regathered(identity, game, tokens, node, self.on_exit());
        self.hold(&mut games, &handle);
        Ok(handle)
    }

    /// The waiting games, as their tasks last published.
    pub fn waiting(&self) -> Vec<GameHandle> {
        self.lock()
            .by_id
            .values()
            .filter(|g| g.status() == Status::Waiting)
            .cloned()
            .collect()
    }

    /// Every game's id and code.
    pub fn names(&self) -> Vec<(Uuid, GameCode)> {
        self.lock()
            .by_id
            .values()
            .map(|g| (g.id(), g.code()))
            .collect()
    }

    /// What a game's task runs when it ends: it drops the game from here.
    /// It holds only the map (every game's task holds one).
    fn on_exit(&self) -> impl FnOnce(&Identity) + Send + 'static {
        let games = Arc::clone(&self.games);
        move |identity| remove(&games, &identity.id, &identity.code)
    }

    /// Puts a new game in `games` (this registry's, locked). If the node
    /// stops already, the game is told at once: under the lock, the stop
    /// either came before (and this sees it) or finds the game in the maps.
    fn hold(&self, games: &mut Games, handle: &GameHandle) {
        games.by_id.insert(handle.id(), handle.clone());
        games.by_code.insert(handle.code(), handle.id());
        if self.shutdown.is_cancelled() {
            handle.stop();
        }
    }

    /// Spawns, once, the task that stops every game when the node stops.
    /// Lazily: a registry is made before (and in tests without) a runtime,
    /// and games are spawned in one.
    fn watch_shutdown(&self) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let games = Arc::downgrade(&self.games);
        let shutdown = self.shutdown.clone();
        let stop = async move {
            shutdown.cancelled().await;
            stop_all(&games);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(stop)),
            Err(_) => {
                // No runtime, no game runs either; the next game made in
                // one spawns the task.
                self.watching.store(false, Ordering::Release);
                debug!("games made outside a runtime");
            }
        }
    }

    /// The game with this id, if this node has it.
    pub fn get(&self, id: &Uuid) -> Option<GameHandle> {
        self.lock().by_id.get(id).cloned()
    }

    /// The game a client named, if this node has it.
    pub fn find(&self, game: &GameRef) -> Option<GameHandle> {
        let games = self.lock();
        let id = match game {
            GameRef::Id(id) => id,
            GameRef::Code(code) => games.by_code.get(code)?,
        };
        games.by_id.get(id).cloned()
    }

    /// Drops `game` at once, before its task ends (it moved to a peer).
    pub fn forget(&self, game: &GameHandle) {
        self.remove(&game.id(), &game.code());
    }

    fn remove(&self, id: &Uuid, code: &GameCode) {
        remove(&self.games, id, code);
    }

    /// Games held now, whatever their status.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no game is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Games by status, as their tasks last reported (no walk, no lock
    /// over the games).
    pub fn counts(&self) -> GameCounts {
        self.node.census.counts()
    }

    /// Waiting games nobody is connected to, held now.
    pub fn unattended(&self) -> u64 {
        self.node.census.unattended_count()
    }

    /// The listings of this node's public games.
    pub fn lobby(&self) -> &LocalLobby {
        &self.node.lobby
    }

    /// The clock games use.
    pub fn clock(&self) -> &Clock {
        &self.node.clock
    }
}

#[cfg(test)]
impl Registry {
    /// What [`game_task::spawn`] gets on exit (task size test).
    pub(crate) fn on_exit_for_test(&self) -> impl FnOnce(&Identity) + Send + 'static {
        self.on_exit()
    }

    /// What every game task of the node shares (task size test).
    pub(crate) fn node_env(&self) -> Arc<NodeEnv> {
        Arc::clone(&self.node)
    }
}
