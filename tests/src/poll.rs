//! THE bounded poll of state that another process changes on its own time
//! (a Redis replica syncing, a peer's view converging, a Prometheus scrape):
//! ask, and ask again after a pause, until the answer comes or the limit
//! has passed, owning the pause between asks. Tests poll through here; the
//! kit's own waits for a process (ready, exited, HAProxy's view) keep their
//! loops, which need `&mut` access or a process's log in the panic. Nothing
//! polls a timer of ours: tests wait for messages, or use paused time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::POLL;

/// Asks `ask` every [`POLL`] until it answers `Ok`, for at most `limit`;
/// then fails the test with the last `Err` (what was seen instead). Asks at
/// least once.
pub async fn until<T, F, Fut>(limit: Duration, ask: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    until_every(limit, POLL, ask).await
}

/// [`until`], asking every `every`: shorter for a local process, longer for
/// one that does work per question (a Prometheus query).
pub async fn until_every<T, F, Fut>(limit: Duration, every: Duration, mut ask: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let seen = match ask().await {
            Ok(answer) => return answer,
            Err(seen) => seen,
        };
        assert!(Instant::now() < deadline, "not within {limit:?}: {seen}");
        tokio::time::sleep(every).await;
    }
}
