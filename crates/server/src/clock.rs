//! The server's clock: Unix milliseconds derived from tokio's clock.
//!
//! Deriving wall time from `tokio::time::Instant` (instead of reading
//! `SystemTime` each time) means tests that pause tokio time also pause the
//! game clock, so timers are tested without sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use game_logic::Timestamp;
use tokio::time::Instant;

/// Converts between tokio instants and the rules' Unix-ms timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Wall time at `origin`, in Unix ms.
    origin_ms: u64,
    /// The tokio instant that corresponds to `origin_ms`.
    origin: Instant,
}

impl Clock {
    /// A clock anchored at the current wall time.
    pub fn new() -> Clock {
        let origin_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock {
            origin_ms,
            origin: Instant::now(),
        }
    }

    /// Now, as the rules see it.
    pub fn now(&self) -> Timestamp {
        self.at(Instant::now())
    }

    /// The timestamp of a tokio instant.
    pub fn at(&self, instant: Instant) -> Timestamp {
        let elapsed = instant.saturating_duration_since(self.origin);
        Timestamp::from_unix_ms(self.origin_ms) + elapsed
    }

    /// The tokio instant of a timestamp (never before the clock's origin).
    pub fn instant(&self, at: Timestamp) -> Instant {
        let ms = at.as_unix_ms().saturating_sub(self.origin_ms);
        self.origin + Duration::from_millis(ms)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let clock = Clock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(clock.now() - t0, Duration::from_secs(30));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(clock.at(clock.instant(later)), later);
    }
}
