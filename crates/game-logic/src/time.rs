//! Time as the rules see it: a number of milliseconds, always passed in.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time in milliseconds since the Unix epoch.
///
/// The rules never read a clock: the caller passes `now` into every method.
/// Unix milliseconds (rather than `std::time::Instant`) let the same value go
/// on the wire (`ends_at_ms`) and into Redis, and keep tests deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The timestamp `ms` milliseconds after the Unix epoch.
    pub const fn from_unix_ms(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_ms(self) -> u64 {
        self.0
    }

    /// Time left from `now` until `self`, zero when `self` has passed.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates at `u64::MAX` milliseconds instead of overflowing.
    fn add(self, rhs: Duration) -> Timestamp {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;

    /// Saturates at zero when `rhs` is later than `self`.
    fn sub(self, rhs: Timestamp) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let t = Timestamp::from_unix_ms(1_000);
        assert_eq!((t + Duration::from_millis(500)).as_unix_ms(), 1_500);
        assert_eq!(
            (Timestamp::from_unix_ms(u64::MAX - 1) + Duration::from_secs(1)).as_unix_ms(),
            u64::MAX
        );
        assert_eq!((t + Duration::MAX).as_unix_ms(), u64::MAX);
        assert_eq!(
            Timestamp::from_unix_ms(1_500) - t,
            Duration::from_millis(500)
        );
        assert_eq!(t - Timestamp::from_unix_ms(1_500), Duration::ZERO);
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_unix_ms(400)),
            Duration::from_millis(600)
        );
    }

    #[test]
    fn timestamps_order_by_time() {
        assert!(Timestamp::from_unix_ms(1) < Timestamp::from_unix_ms(2));
        assert_eq!(Timestamp::default().as_unix_ms(), 0);
    }
}
