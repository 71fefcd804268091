//! The finish timer of a game: every node with players in an active game
//! runs one, so the round ends on time even if some node dies.
//!
//! The deadline is Redis's time; the timer sleeps until the matching local
//! instant (through the offset learned from the scripts' answers), then
//! runs the `finish` script. The script is idempotent: the first call past
//! the deadline publishes the one `game_over`, the others find the game
//! completed. If this node's clock ran ahead, the script answers the game
//! still active and the timer sleeps the rest.

use std::sync::Arc;
use std::time::Duration;

use game_logic::{Status, Timestamp};
use tracing::debug;
use uuid::Uuid;

use super::backend::Backend;
use super::scripts::Code;

/// Pause before retrying while Redis is unreachable.
const RETRY: Duration = Duration::from_millis(250);
/// Shortest sleep between two tries, against a hot loop on clock skew.
const MIN_SLEEP: Duration = Duration::from_millis(2);

/// Arms game `id`'s timer for the Redis-time deadline `ends`.
pub fn arm(backend: &Arc<Backend>, id: Uuid, ends: Timestamp) {
    let task = tokio::spawn(run(backend.clone(), id, ends));
    backend.rooms.set_timer(&id, task.abort_handle());
}

async fn run(backend: Arc<Backend>, id: Uuid, ends: Timestamp) {
    let store = &backend.store;
    let mut due = ends;
    loop {
        let local = store.local_time(due);
        let at = store.clock().instant(local);
        tokio::time::sleep_until(at.max(tokio::time::Instant::now() + MIN_SLEEP)).await;
        match store.finish(&id).await {
            Ok(answer) => match (answer.code, answer.status) {
                (Code::Ok, Some((Status::Active | Status::Waiting, Some(next)))) => {
                    debug!(game = %id, "the timer came early by this node's clock, or a round began");
                    due = next.max(answer.now);
                }
                _ => break,
            },
            Err(e) => {
                debug!(game = %id, "finish failed, retrying: {e}");
                tokio::time::sleep(RETRY).await;
                if !backend.rooms.contains(&id) {
                    break;
                }
            }
        }
    }
    backend.rooms.timer_done(&id);
}
