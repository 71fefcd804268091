//! How many games one client address may create (issue 18, the game-table
//! flood): `--max-creates-per-ip` per minute, a GCRA bucket per address
//! (governor) that holds its count as a burst and refills evenly over the
//! minute. A refused `create` or `quick_play` is answered `rate_limited`;
//! everything else the client does is untouched.
//!
//! One connection holds at most one seat in a waiting or active game, so it
//! creates at most one game per round it plays; `--max-creates-per-connection`
//! bounds that too, per minute, with a bucket the connection gets at its
//! first create (a connection that never creates holds none), checked before
//! the address's so that a connection past its own limit spends nothing of
//! its address's.
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
use governor::state::{InMemoryState, NotKeyed};
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
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One bucket per recent creator's address, and what a connection's own
/// bucket is made of.
pub struct CreateLimiter<C: Clock = DefaultClock> {
    per_address: Option<Keyed<AddressKey, C>>,
    per_connection: Option<Quota>,
    clock: C,
    checks: AtomicU32,
}

/// One connection's creates: no bucket until its first create.
pub struct ConnectionCreates<C: Clock = DefaultClock>(Option<Box<Direct<C>>>);

impl<C: Clock> Default for ConnectionCreates<C> {
    fn default() -> Self {
        ConnectionCreates(None)
    }
}

impl<C: Clock> std::fmt::Debug for ConnectionCreates<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConnectionCreates")
            .field(&self.0.is_some())
            .finish()
    }
}

impl<C: Clock> std::fmt::Debug for CreateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateLimiter")
            .field("addresses", &self.per_address.as_ref().map(Keyed::len))
            .finish()
    }
}

impl CreateLimiter {
    /// At most `per_address` creates a minute from one address and
    /// `per_connection` on one connection (0 = no limit).
    pub fn new(per_address: u32, per_connection: u32) -> CreateLimiter {
        CreateLimiter::with_clock(per_address, per_connection, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> CreateLimiter<C> {
    /// [`CreateLimiter::new`] on `clock` (tests use a fake one).
    pub fn with_clock(per_address: u32, per_connection: u32, clock: &C) -> CreateLimiter<C> {
        let per_address = NonZeroU32::new(per_address).map(|per_minute| {
            RateLimiter::new(
                Quota::per_minute(per_minute),
                DashMapStateStore::default(),
                clock.clone(),
            )
        });
        CreateLimiter {
            per_address,
            per_connection: NonZeroU32::new(per_connection).map(Quota::per_minute),
            clock: clock.clone(),
            checks: AtomicU32::new(0),
        }
    }

    /// Takes one create from the bucket of connection `conn`, then from
    /// `ip`'s; `false` when either is empty.
    pub fn try_create(&self, ip: IpAddr, conn: &mut ConnectionCreates<C>) -> bool {
        if let Some(quota) = self.per_connection {
            let bucket = conn.0.get_or_insert_with(|| {
                Box::new(RateLimiter::direct_with_clock(quota, self.clock.clone()))
            });
            if bucket.check().is_err() {
                return false;
            }
        }
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

    /// A new connection's bucket, as each client in these tests is one.
    fn fresh() -> ConnectionCreates<FakeRelativeClock> {
        ConnectionCreates::default()
    }

    #[test]
    fn a_connection_gets_its_own_count_before_its_address_is_charged() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(5, 2, &clock);
        let a = ip("192.0.2.1");
        let mut conn = ConnectionCreates::default();
        assert!(limiter.try_create(a, &mut conn));
        assert!(limiter.try_create(a, &mut conn));
        for _ in 0..10 {
            assert!(!limiter.try_create(a, &mut conn), "past the connection's 2");
        }
        // The refused ones cost the address nothing: 3 of its 5 are left.
        let mut other = ConnectionCreates::default();
        assert!(limiter.try_create(a, &mut other));
        assert!(limiter.try_create(a, &mut other));
        assert!(limiter.try_create(a, &mut fresh()));
        assert!(
            !limiter.try_create(a, &mut fresh()),
            "the address's 5 are spent"
        );
        // One comes back to the connection every 30 s (2 a minute).
        clock.advance(Duration::from_secs(30));
        assert!(limiter.try_create(ip("192.0.2.9"), &mut conn));
        assert!(!limiter.try_create(ip("192.0.2.9"), &mut conn));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn an_address_gets_its_count_then_one_per_share_of_the_minute() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(6, 0, &clock);
        let a = ip("192.0.2.1");
        for n in 0..6 {
            assert!(
                limiter.try_create(a, &mut fresh()),
                "create {n} of the burst"
            );
        }
        assert!(!limiter.try_create(a, &mut fresh()), "past the count");
        // Another address is not affected.
        assert!(limiter.try_create(ip("192.0.2.2"), &mut fresh()));
        // One create comes back every 10 s (6 a minute).
        clock.advance(Duration::from_secs(9));
        assert!(!limiter.try_create(a, &mut fresh()));
        clock.advance(Duration::from_secs(1));
        assert!(limiter.try_create(a, &mut fresh()));
        assert!(!limiter.try_create(a, &mut fresh()));
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(1, 0, &clock);
        assert!(limiter.try_create(ip("2001:db8:1:2::1"), &mut fresh()));
        assert!(
            !limiter.try_create(ip("2001:db8:1:2:ffff::9"), &mut fresh()),
            "same /64"
        );
        assert!(
            limiter.try_create(ip("2001:db8:1:3::1"), &mut fresh()),
            "another /64"
        );
        assert!(limiter.try_create(ip("198.51.100.7"), &mut fresh()));
        assert!(
            !limiter.try_create(ip("::ffff:198.51.100.7"), &mut fresh()),
            "mapped"
        );
        assert_ne!(
            AddressKey::from(ip("::")),
            AddressKey::from(ip("0.0.0.0")),
            "v6 and v4 keys never meet"
        );
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(0, 0, &clock);
        for _ in 0..10_000 {
            assert!(limiter.try_create(ip("192.0.2.1"), &mut fresh()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn addresses_whose_buckets_refilled_are_swept() {
        let clock = FakeRelativeClock::default();
        let limiter = CreateLimiter::with_clock(60, 0, &clock);
        for n in 0..100u8 {
            assert!(limiter.try_create(IpAddr::from([10, 0, 0, n]), &mut fresh()));
        }
        assert_eq!(limiter.tracked(), 100);
        clock.advance(Duration::from_secs(60));
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
    }
}
