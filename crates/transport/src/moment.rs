//! [`Moment`]: a `tokio::time::Instant` in 8 bytes instead of 16, for the
//! state every connection keeps for its whole life (its deadlines, its rate
//! bucket, its queue's stamp), where the bytes count per idle player.
//!
//! A moment is the signed number of nanoseconds from one instant per
//! process (the first one a moment was made at), so it is exact: an
//! instant goes in and the same instant comes out, to the nanosecond, for
//! any instant within 292 years of that epoch on either side (the clock of
//! a test runtime with paused time included: it only counts from a real
//! instant). Beyond that it saturates. `i64::MIN` is kept for "none" by
//! [`MaybeMoment`], the 8-byte `Option<Instant>`.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// The process's epoch: the first instant a moment was made at.
fn epoch() -> Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    Instant::from_std(*EPOCH.get_or_init(std::time::Instant::now))
}

/// Nanoseconds in `d`, at most `i64::MAX` (without `as_nanos`' 128-bit
/// arithmetic: this is on every message's path).
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|secs| secs.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(i64::from(d.subsec_nanos())))
        .unwrap_or(i64::MAX)
}

/// An instant, exactly, in 8 bytes (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Moment(i64);

impl Moment {
    /// `at` as a moment.
    pub(crate) fn new(at: Instant) -> Moment {
        let epoch = epoch();
        Moment(match at.checked_duration_since(epoch) {
            Some(after) => nanos(after),
            // Never `i64::MIN`, which stands for none.
            None => -nanos(epoch.duration_since(at)),
        })
    }

    /// The instant this moment is.
    pub(crate) fn get(self) -> Instant {
        let epoch = epoch();
        let offset = Duration::from_nanos(self.0.unsigned_abs());
        let at = if self.0 >= 0 {
            epoch.checked_add(offset)
        } else {
            epoch.checked_sub(offset)
        };
        at.unwrap_or(epoch)
    }

    /// How long after `earlier` this is (zero if it is not after it):
    /// exactly `self.get().saturating_duration_since(earlier.get())`,
    /// without making either instant.
    pub(crate) fn since(self, earlier: Moment) -> Duration {
        u64::try_from(i128::from(self.0) - i128::from(earlier.0))
            .map_or(Duration::ZERO, Duration::from_nanos)
    }
}

/// An `Option<Instant>` in 8 bytes: a [`Moment`] or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaybeMoment(i64);

impl MaybeMoment {
    /// No instant.
    pub(crate) const NONE: MaybeMoment = MaybeMoment(i64::MIN);

    /// `at`, if any.
    pub(crate) fn new(at: Option<Instant>) -> MaybeMoment {
        at.map_or(MaybeMoment::NONE, |at| MaybeMoment(Moment::new(at).0))
    }

    /// The instant, if any.
    pub(crate) fn get(self) -> Option<Instant> {
        (self != MaybeMoment::NONE).then(|| Moment(self.0).get())
    }

    /// Whether there is no instant.
    pub(crate) fn is_none(self) -> bool {
        self == MaybeMoment::NONE
    }

    /// Takes the instant out, leaving none.
    pub(crate) fn take(&mut self) -> Option<Instant> {
        std::mem::replace(self, MaybeMoment::NONE).get()
    }
}

impl Default for MaybeMoment {
    fn default() -> Self {
        MaybeMoment::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_comes_back_exactly() {
        let now = Instant::now();
        for at in [
            now,
            now + Duration::from_nanos(1),
            now + Duration::from_secs(86_400 * 365 * 50) + Duration::from_nanos(7),
            now - Duration::from_nanos(3),
            now - Duration::from_secs(60),
        ] {
            assert_eq!(Moment::new(at).get(), at);
            assert_eq!(MaybeMoment::new(Some(at)).get(), Some(at));
        }
        assert_eq!(MaybeMoment::new(None).get(), None);
        assert!(MaybeMoment::default().is_none());
    }

    #[test]
    fn moments_order_and_subtract_as_their_instants() {
        let now = Instant::now();
        let later = now + Duration::from_micros(1);
        assert!(Moment::new(now) < Moment::new(later));
        assert!(Moment::new(now - Duration::from_secs(1)) < Moment::new(now));
        for (a, b) in [
            (now, later),
            (later, now),
            (now, now),
            (
                now - Duration::from_secs(5),
                now + Duration::from_nanos(123_456_789),
            ),
        ] {
            assert_eq!(
                Moment::new(b).since(Moment::new(a)),
                b.saturating_duration_since(a)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn paused_time_is_exact_too() {
        let start = Instant::now();
        tokio::time::advance(Duration::from_millis(1500)).await;
        let now = Instant::now();
        assert_eq!(Moment::new(now).get() - start, Duration::from_millis(1500));
        let mut maybe = MaybeMoment::new(Some(now));
        assert_eq!(maybe.take(), Some(now));
        assert!(maybe.is_none(), "taken");
    }

    #[test]
    fn eight_bytes() {
        assert_eq!(std::mem::size_of::<Moment>(), 8);
        assert_eq!(std::mem::size_of::<MaybeMoment>(), 8);
    }
}
