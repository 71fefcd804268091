//! A token bucket per connection, with time and the limits passed in.

use std::time::Duration;

use crate::moment::Moment;

/// The limit a [`TokenBucket`] enforces: `rate` messages per second on
/// average and bursts of `burst`. Every connection of a node has the same
/// one, so the bucket does not keep a copy: it is passed in at each use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second; 0 disables the limit.
    pub per_sec: u32,
    /// Most tokens the bucket holds (at least 1).
    pub burst: u32,
}

impl Rate {
    fn burst(self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

/// One connection's tokens: 16 bytes, kept by every connection for its
/// whole life (the limit itself is the node's, see [`Rate`]).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens left as of `updated`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Moment,
}

impl TokenBucket {
    /// A full bucket for `rate`.
    pub(crate) fn new(rate: Rate, now: Moment) -> Self {
        TokenBucket {
            tokens: rate.burst(),
            updated: now,
        }
    }

    /// Takes one token if there is one: `true` means the message may pass.
    /// `rate` must be the one the bucket was made for.
    pub(crate) fn try_take(&mut self, rate: Rate, now: Moment) -> bool {
        if rate.per_sec == 0 {
            return true;
        }
        let elapsed: Duration = now.since(self.updated);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() * f64::from(rate.per_sec)).min(rate.burst());
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Moment::new(Instant::now());
        let rate = Rate {
            per_sec: 20,
            burst: 40,
        };
        let mut b = TokenBucket::new(rate, t0);
        assert_eq!((0..100).filter(|_| b.try_take(rate, t0)).count(), 40);
        // One second refills 20 tokens, no more.
        let t1 = Moment::new(t0.get() + Duration::from_secs(1));
        assert_eq!((0..100).filter(|_| b.try_take(rate, t1)).count(), 20);
        // Ten idle seconds refill only up to the burst.
        let t2 = Moment::new(t1.get() + Duration::from_secs(10));
        assert_eq!((0..100).filter(|_| b.try_take(rate, t2)).count(), 40);
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let t0 = Moment::new(Instant::now());
        let rate = Rate {
            per_sec: 0,
            burst: 1,
        };
        let mut b = TokenBucket::new(rate, t0);
        assert!((0..1000).all(|_| b.try_take(rate, t0)));
    }

    /// Every connection keeps one for its whole life.
    #[test]
    fn a_bucket_is_16_bytes() {
        assert_eq!(std::mem::size_of::<TokenBucket>(), 16);
    }
}
