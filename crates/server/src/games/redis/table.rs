//! `--max-games` across a stateless cluster: the game table in Redis (its
//! layout and why it bounds Redis are in [`layout`](super::layout)'s docs).
//!
//! A `create` is admitted first (a call of its own: the table and the game
//! are in different slots of a Redis Cluster); a create that fails after
//! its admission takes the game off again. Every
//! [`game_renew`](super::layout::game_renew) of the
//! lease, each node renews the leases of the games it holds a connected
//! player's seat in (one call for all of them); a node that sees a game
//! complete takes it off at once; what no node renews stops counting when
//! its lease runs out.
//! The count the table answers is published as `gridcap_cluster_games`.

use std::sync::Arc;

use tracing::debug;
use uuid::Uuid;

use super::backend::Backend;
use crate::error::ServerError;

/// Most games renewed in one call (a bounded argument list and a bounded
/// time Redis spends in one script).
const RENEW_BATCH: usize = 512;

/// Publishes the games counting on the table.
fn counted(games: u64) {
    metrics::gauge!("gridcap_cluster_games").set(games as f64);
}

impl Backend {
    /// Admits game `id`, about to be created, to the table; `overloaded`
    /// when `--max-games` games count already (or Redis cannot tell).
    pub(super) async fn admit(&self, id: Uuid) -> Result<(), ServerError> {
        match self.store.admit(&id, self.max_games, self.game_lease).await {
            Ok((true, games)) => {
                counted(games);
                Ok(())
            }
            Ok((false, games)) => {
                counted(games);
                debug!(
                    games,
                    max = self.max_games,
                    "create refused: --max-games games count"
                );
                Err(ServerError::Overloaded)
            }
            Err(e) => {
                debug!(game = %id, "cannot admit a game: {e}");
                Err(ServerError::StoreUnavailable)
            }
        }
    }

    /// Game `id` was admitted but not created: it stops counting (or, if
    /// Redis cannot be told, when its lease runs out).
    pub(super) async fn withdraw(&self, id: Uuid) {
        if let Err(e) = self.store.release(&[id]).await {
            debug!(game = %id, "an admission could not be withdrawn (its lease runs out): {e}");
        }
    }

    /// Game `id` completed: it stops counting now (or, if Redis cannot be
    /// told, when its lease runs out).
    pub(super) fn finished(self: &Arc<Self>, id: Uuid) {
        let backend = self.clone();
        tokio::spawn(async move {
            if let Err(e) = backend.store.release(&[id]).await {
                debug!(game = %id, "cannot take a completed game off the table: {e}");
            }
        });
    }

    /// Renews the leases of the games played here and publishes the count.
    pub(super) async fn renew_games(self: Arc<Self>) {
        let played = self.rooms.played();
        let mut batches: Vec<&[Uuid]> = played.chunks(RENEW_BATCH).collect();
        if batches.is_empty() {
            // Still purges the lapsed leases and reads the count.
            batches.push(&[]);
        }
        for batch in batches {
            match self.store.lease(batch, self.game_lease).await {
                Ok(games) => counted(games),
                Err(e) => {
                    debug!(games = played.len(), "cannot renew the games' leases: {e}");
                    return; // Redis is in trouble: next time.
                }
            }
        }
    }
}
