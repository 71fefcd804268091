//! How many games one client address may create (issue 18, the game-table
//! flood): `--max-creates-per-ip` per minute, a GCRA bucket per address
//! (governor) that holds its count as a burst and refills evenly over the
//! minute. A refused `create` or `quick_play` is answered `rate_limited`;
//! everything else the client does is untouched. One connection needs no
//! bucket of its own: it holds at most one seat in a waiting or active game,
//! so it creates at most one game per round it plays.
//!
//! Addresses are keyed as the per-IP connection limit keys them (the
//! client's address behind `--trusted-proxies`), IPv6 by its /64: one
//! subscriber usually holds a whole /64 and could otherwise rotate through
//! it. Keys whose buckets are full again are swept every
//! [`SWEEP_EVERY`] checks, so the map holds only recent creators.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// Checks between two sweeps of keys that are full again.
pub const SWEEP_EVERY: u32 = 1024;

/// A client address as the limit counts it: IPv4 whole, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    /// An IPv4 address (or an IPv4-mapped IPv6 one).
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(u32::from(v4)),
                None => AddressKey::V6(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)),
            },
        }
    }
}

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One bucket per recent creator's address.
pub struct CreateLimiter<C: Clock = DefaultClock> {
    per_address: Option<Keyed<AddressKey, C>>,
    checks: AtomicU32,
}

impl<C: Clock> std::fmt::Debug for CreateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateLimiter")
            .field("addresses", &self.per_address.as_ref().map(Keyed::len))
            .finish()
    }
}

impl CreateLimiter {
    /// At most `per_address` creates a minute from one address (0 = no
    /// limit).
    pub fn new(per_address: u32) -> CreateLimiter {
        CreateLimiter::with_clock(per_address, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> CreateLimiter<C> {
    /// [`CreateLimiter::new`] on `clock` (tests use a fake one).
    pub fn with_clock(per_address: u32, clock: &C) -> CreateLimiter<C> {
        let per_address = NonZeroU32::new(per_address).map(|per_minute| {
            RateLimiter::new(
                Quota::per_minute(per_minute),
                DashMapStateStore::default(),
                clock.clone(),
            )
        });
        CreateLimiter {
            per_address,
            checks: AtomicU32::new(0),
        }
    }

    /// Takes one create from `ip`'s bucket; `false` when it is empty.
    pub fn try_create(&self, ip: IpAddr) -> bool {
        let Some(limiter) = &self.per_address else {
            return true;
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        limiter.check_key(&AddressKey::from(ip)).is_ok()
    }

    /// Drops the keys whose buckets are full again, and their memory.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.per_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Addresses held now.
    pub fn tracked(&self) -> usize {
        self.per_address.as_ref().map_or(0, Keyed::len)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn an_address_gets_its_count_then_one_per_share_of_the_minute() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(6, &clock);
        let a = ip("192.0.2.1");
        for n in 0..6 {
            assert!(limiter.try_create(a), "create {n} of the burst");
        }
        assert!(!limiter.try_create(a), "past the count");
        // Another address is not affected.
        assert!(limiter.try_create(ip("192.0.2.2")));
        // One create comes back every 10 s (6 a minute).
        clock.advance(Duration::from_secs(9));
        assert!(!limiter.try_create(a));
        clock.advance(Duration::from_secs(1));
        assert!(limiter.try_create(a));
        assert!(!limiter.try_create(a));
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(1, &clock);
        assert!(limiter.try_create(ip("2001:db8:1:2::1")));
        assert!(!limiter.try_create(ip("2001:db8:1:2:ffff::9")), "same /64");
        assert!(limiter.try_create(ip("2001:db8:1:3::1")), "another /64");
        assert!(limiter.try_create(ip("198.51.100.7")));
        assert!(!limiter.try_create(ip("::ffff:198.51.100.7")), "mapped");
        assert_ne!(
            AddressKey::from(ip("::")),
            AddressKey::from(ip("0.0.0.0")),
            "v6 and v4 keys never meet"
        );
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(0, &clock);
        for _ in 0..10_000 {
            assert!(limiter.try_create(ip("192.0.2.1")));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn addresses_whose_buckets_refilled_are_swept() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(60, &clock);
        for n in 0..100u8 {
            assert!(limiter.try_create(IpAddr::from([10, 0, 0, n])));
        }
        assert_eq!(limiter.tracked(), 100);
        clock.advance(Duration::from_secs(60));
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
    }
}
