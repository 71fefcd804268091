//! The games this node holds, by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use game_logic::{Game, PlayerName, Settings};
use tokio_util::sync::CancellationToken;
use transport::Outbox;
use uuid::Uuid;

use super::task::{self as game_task, GameHandle};
use crate::clock::Clock;
use crate::games::GameCounts;

/// Commands a game's queue holds before senders wait.
const GAME_QUEUE: usize = 1024;

/// Every game on this node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    games: Arc<Mutex<HashMap<Uuid, GameHandle>>>,
    /// Shared by every game task for timestamps.
    clock: Clock,
    /// Stops every game task when the server stops.
    shutdown: CancellationToken,
}

impl Registry {
    /// An empty registry.
    pub fn new(clock: Clock, shutdown: CancellationToken) -> Registry {
        Registry {
            games: Arc::default(),
            clock,
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, GameHandle>> {
        // Each critical section is one map operation: a poisoned map is intact.
        self.games.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates game `id` hosted by the connection behind `host`, which
    /// receives its `joined` from the new game's task.
    pub fn create(
        &self,
        id: Uuid,
        settings: Settings,
        name: PlayerName,
        host: &Outbox,
    ) -> GameHandle {
        let game = Game::new(settings, name, self.clock.now());
        let registry = self.clone();
        let handle = game_task::spawn(
            id,
            game,
            host.clone(),
            self.clock,
            GAME_QUEUE,
            self.shutdown.child_token(),
            move || registry.remove(&id),
        );
        self.lock().insert(id, handle.clone());
        handle
    }

    /// The game with this id, if this node has it.
    pub fn get(&self, id: &Uuid) -> Option<GameHandle> {
        self.lock().get(id).cloned()
    }

    fn remove(&self, id: &Uuid) {
        self.lock().remove(id);
    }

    /// Games held now, whatever their status.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no game is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Games by status.
    pub fn counts(&self) -> GameCounts {
        let mut counts = GameCounts::default();
        for g in self.lock().values() {
            counts.add(g.status());
        }
        counts
    }

    /// The clock games use.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}
