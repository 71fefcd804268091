//! A token bucket per connection, with time passed in.

use std::time::Duration;

use tokio::time::Instant;

/// Allows `rate` messages per second on average and bursts of `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate: f64,
    /// Most tokens the bucket holds.
    burst: f64,
    /// Tokens left as of `updated`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket. A `rate` of 0 disables the limit.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token if there is one: `true` means the message may pass.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed: Duration = now.saturating_duration_since(self.updated);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
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
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 40, t0);
        assert_eq!((0..100).filter(|_| b.try_take(t0)).count(), 40);
        // One second refills 20 tokens, no more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| b.try_take(t1)).count(), 20);
        // Ten idle seconds refill only up to the burst.
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!((0..100).filter(|_| b.try_take(t2)).count(), 40);
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 1, t0);
        assert!((0..1000).all(|_| b.try_take(t0)));
    }
}
