//! The pure planning parts of a run: who plays where, when each bot
//! connects, when each capture is due, and the seeded random numbers.
//!
//! Nothing here does I/O or reads a clock; instants come in as arguments,
//! so every rule is unit-tested on plain values.

use std::time::{Duration, Instant};

/// One bot's place in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotSpec {
    /// Global index, 0..bots; also picks the URL, the source address and the seed.
    pub id: u32,
    /// The game slot it plays in, 0..games.
    pub game: u32,
    /// Seat order in the slot: 0 creates the games, the others join.
    pub seat: u8,
    /// Index into the run's targets.
    pub target: usize,
    /// Index into the run's source addresses, when any were given.
    pub source: Option<usize>,
    /// When to make the first connection, from the start of the run.
    pub start_after: Duration,
}

impl BotSpec {
    /// Whether this bot creates its slot's games.
    pub fn is_host(&self) -> bool {
        self.seat == 0
    }
}

/// Every bot of a run, hosts before their guests: bot `g * players + s` is
/// seat `s` of game `g`. Bots are spread round-robin over `targets` URLs and
/// `sources` source addresses, and their first connections evenly over `ramp_up`.
pub fn assign(
    games: u32,
    players: u8,
    targets: usize,
    sources: usize,
    ramp_up: Duration,
) -> impl Iterator<Item = BotSpec> {
    let total = games.saturating_mul(u32::from(players));
    (0..total).map(move |id| BotSpec {
        id,
        game: id / u32::from(players),
        seat: u8::try_from(id % u32::from(players)).unwrap_or(0),
        target: id as usize % targets.max(1),
        source: (sources > 0).then(|| id as usize % sources),
        start_after: ramp_offset(id, total, ramp_up),
    })
}

/// Start offset of bot `index` of `total` when starts are spread evenly over `ramp`.
pub fn ramp_offset(index: u32, total: u32, ramp: Duration) -> Duration {
    if total == 0 {
        return Duration::ZERO;
    }
    let nanos = ramp.as_nanos() * u128::from(index) / u128::from(total);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// An open-loop send schedule: attempt `n` is due at `start + phase + n / rate`
/// whatever happened to the earlier ones. A caller that wakes late takes every
/// overdue attempt at once, each keeping its own scheduled instant, so the
/// latency it records includes the lateness (no coordinated omission).
///
/// ```
/// use std::time::{Duration, Instant};
/// use bots::game_plan::Schedule;
///
/// let start = Instant::now();
/// let mut s = Schedule::new(start, 100.0, 0.0).unwrap(); // every 10 ms
/// // Woken 25 ms late: three attempts are due, each at its own instant.
/// let now = start + Duration::from_millis(25);
/// let due: Vec<Duration> = std::iter::from_fn(|| s.take_due(now)).map(|t| t - start).collect();
/// assert_eq!(due, [0, 10, 20].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Instant of attempt 0.
    first: Instant,
    /// Time between attempts.
    period: Duration,
    /// Attempts taken so far.
    taken: u32,
}

impl Schedule {
    /// A schedule of `rate` attempts per second from `start`, shifted by
    /// `phase` (0..1) of a period so that bots of one game do not send in
    /// lock-step. `None` when the rate is 0.
    pub fn new(start: Instant, rate: f64, phase: f64) -> Option<Schedule> {
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let period = Duration::try_from_secs_f64(1.0 / rate).ok()?;
        let first = start + period.mul_f64(phase.clamp(0.0, 1.0));
        Some(Schedule {
            first,
            period,
            taken: 0,
        })
    }

    /// When the next attempt is due.
    pub fn next_due(&self) -> Instant {
        self.first + self.period * self.taken
    }

    /// The scheduled instant of the next attempt if it is due at `now`, and
    /// moves past it.
    pub fn take_due(&mut self, now: Instant) -> Option<Instant> {
        let due = self.next_due();
        if due <= now {
            self.taken = self.taken.saturating_add(1);
            Some(due)
        } else {
            None
        }
    }
}

/// SplitMix64: a tiny, fast, seedable generator. Every random choice of a
/// bot comes from its own generator seeded with `(--seed, bot id)`, so a run
/// with the same seed makes the same choices in the same situations.
#[derive(Debug, Clone)]
pub struct Rng {
    /// The generator's whole state.
    state: u64,
}

impl Rng {
    /// The generator of bot `id` in a run seeded with `seed`.
    pub fn new(seed: u64, id: u64) -> Rng {
        let mut rng = Rng {
            state: seed ^ id.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0), without modulo bias worth noting
    /// for the small `n` used here.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_first_and_bots_spread_round_robin() {
        let bots: Vec<BotSpec> = assign(3, 4, 2, 3, Duration::from_secs(12)).collect();
        assert_eq!(bots.len(), 12);
        let hosts: Vec<u32> = bots.iter().filter(|b| b.is_host()).map(|b| b.id).collect();
        assert_eq!(hosts, vec![0, 4, 8]);
        for b in &bots {
            assert_eq!(b.game, b.id / 4);
            assert_eq!(b.target, b.id as usize % 2);
            assert_eq!(b.source, Some(b.id as usize % 3));
            assert_eq!(b.start_after, Duration::from_secs(u64::from(b.id)));
        }
        assert!(
            bots.windows(2)
                .all(|w| w[0].start_after <= w[1].start_after)
        );
        let none: Vec<BotSpec> = assign(1, 2, 1, 0, Duration::ZERO).collect();
        assert!(
            none.iter()
                .all(|b| b.source.is_none() && b.start_after.is_zero())
        );
    }

    #[test]
    fn ramp_offsets_stay_inside_the_ramp() {
        let ramp = Duration::from_millis(999);
        assert_eq!(ramp_offset(0, 7, ramp), Duration::ZERO);
        assert!(ramp_offset(6, 7, ramp) < ramp);
        assert_eq!(ramp_offset(3, 0, ramp), Duration::ZERO);
    }

    #[test]
    fn schedule_is_open_loop() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10.0, 0.5).unwrap();
        assert_eq!(s.next_due(), t0 + Duration::from_millis(50));
        assert_eq!(s.take_due(t0), None, "nothing due before the phase");
        // Waking 1 s late yields every overdue attempt, each at its own instant.
        let late = t0 + Duration::from_millis(1_000);
        let mut due = Vec::new();
        while let Some(at) = s.take_due(late) {
            due.push(at.duration_since(t0).as_millis());
        }
        assert_eq!(due, vec![50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
        assert_eq!(s.next_due(), t0 + Duration::from_millis(1_050));
        assert!(Schedule::new(t0, 0.0, 0.0).is_none());
        assert!(Schedule::new(t0, f64::NAN, 0.0).is_none());
    }

    #[test]
    fn rng_is_seeded_and_in_range() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        let mut c = Rng::new(7, 4);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut seen = [false; 81];
        for _ in 0..10_000 {
            let v = a.below(81);
            seen[v as usize] = true;
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(seen.iter().all(|s| *s), "every cell is reachable");
        assert_eq!(a.below(0), 0);
    }
}
