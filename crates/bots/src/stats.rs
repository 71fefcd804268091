//! What a run measures: counters (atomics, read live by the progress line)
//! and latency histograms (hdrhistogram, microseconds).
//!
//! Histograms are sharded behind plain mutexes: bot `i` records into shard
//! `i % SHARDS`, so with a runtime of a few worker threads a lock is almost
//! never contended, and memory stays a fixed few MiB however many bots run
//! (a histogram per bot would cost ~100 KiB each). The report merges them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use transport::{ErrorCode, RejectReason};

use crate::error::BotError;

/// Histogram shards.
const SHARDS: usize = 8;
/// Largest latency tracked, in µs (larger samples are clamped to it).
const MAX_MICROS: u64 = 60_000_000;

/// The latencies a run records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// TCP connect start → `joined` (the wait for the host's game excluded).
    Connect = 0,
    /// A capture's scheduled instant → the capturer's own `captured`/`rejected`.
    Capture = 1,
    /// A capture's scheduled instant → its `captured` at each other bot of the game.
    Fanout = 2,
    /// A capture's scheduled instant → the instant it was actually written:
    /// how far the bots themselves fall behind (a large value means the bot
    /// process, not the server, is the bottleneck).
    SendLag = 3,
    /// Time to seat: the send of `create`, `join` or `quick_play` → its
    /// `joined` (a `resume` is not counted: it takes back a seat it had).
    Seat = 4,
    /// Time to start: the send of the `create`, `join` or `quick_play` that
    /// seated the bot → the game's `started` (or a `joined` whose snapshot is
    /// already active). It includes the wait for the other players.
    Start = 5,
    /// A capture's scheduled instant → its `captured` at each spectator of
    /// the game (`--spectators`).
    SpectatorFanout = 6,
}

/// Latency kinds.
const KINDS: usize = 7;

/// Every latency kind, in report order.
pub const LATENCIES: [Latency; KINDS] = [
    Latency::Connect,
    Latency::Seat,
    Latency::Start,
    Latency::Capture,
    Latency::Fanout,
    Latency::SpectatorFanout,
    Latency::SendLag,
];

/// Every error code of the protocol, in a fixed order for the counters.
pub const ERROR_CODES: [ErrorCode; 15] = [
    ErrorCode::BadFrame,
    ErrorCode::BadMessage,
    ErrorCode::InvalidName,
    ErrorCode::InvalidSettings,
    ErrorCode::UnknownGame,
    ErrorCode::GameFull,
    ErrorCode::AlreadyStarted,
    ErrorCode::AlreadyInGame,
    ErrorCode::NotInGame,
    ErrorCode::NotHost,
    ErrorCode::NotEnoughPlayers,
    ErrorCode::BadToken,
    ErrorCode::RateLimited,
    ErrorCode::Overloaded,
    ErrorCode::Unknown,
];

/// Every reject reason, in a fixed order for the counters.
pub const REJECT_REASONS: [RejectReason; 3] = [
    RejectReason::Taken,
    RejectReason::NotActive,
    RejectReason::OutOfRange,
];

/// Problems on the bots' side, counted apart from the server's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// A TCP connect or WebSocket handshake failed.
    Connect = 0,
    /// A frame that neither decoder understood, or a text frame.
    Decode = 1,
    /// No `joined` within the time limit after create/join/resume.
    JoinTimeout = 2,
    /// An event whose seq skipped one (a lost broadcast).
    SeqGap = 3,
}

/// Client-side problems and their report names.
pub const CLIENT_ERRORS: [(ClientError, &str); 4] = [
    (ClientError::Connect, "client_connect"),
    (ClientError::Decode, "client_decode"),
    (ClientError::JoinTimeout, "client_join_timeout"),
    (ClientError::SeqGap, "client_seq_gap"),
];

/// Live counters; every field is a running total.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections established (WebSocket handshakes completed).
    pub connections: AtomicU64,
    /// Connections closed (by us or the server), so open = connections - closed.
    pub closed: AtomicU64,
    /// Seats taken (`joined` received after create/join/resume).
    pub joins: AtomicU64,
    /// New seats: `joined` answering create/join/quick_play (not resume).
    pub seats: AtomicU64,
    /// Games that reached `started` (counted by their hosts).
    pub games_started: AtomicU64,
    /// Games that reached `game_over` (counted by their hosts).
    pub games_completed: AtomicU64,
    /// Capture messages sent.
    pub attempts: AtomicU64,
    /// Attempts that got their own answer (`captured` or `rejected`).
    pub answered: AtomicU64,
    /// `captured` events for our own captures.
    pub captures: AtomicU64,
    /// `rejected`, by [`REJECT_REASONS`] index.
    pub rejected: [AtomicU64; 3],
    /// Server `error` messages, by [`ERROR_CODES`] index.
    pub errors: [AtomicU64; 15],
    /// Client-side problems, by [`ClientError`].
    pub client_errors: [AtomicU64; 4],
    /// Connections lost while the run was going on.
    pub disconnects: AtomicU64,
    /// Frames received (binary messages).
    pub messages_in: AtomicU64,
    /// Frames sent.
    pub messages_out: AtomicU64,
    /// `captured` events received by bots (own and others').
    pub deliveries: AtomicU64,
    /// `watching` snapshots received by spectators.
    pub watches: AtomicU64,
    /// `captured` events received by spectators.
    pub spectator_deliveries: AtomicU64,
    /// Scheduled attempts skipped because the bot saw no free cell.
    pub skipped: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// One more of `counter`.
    pub fn inc(counter: &AtomicU64) {
        add(counter, 1);
    }

    /// Counts a server `error` message.
    pub fn error(&self, code: ErrorCode) {
        let i = ERROR_CODES.iter().position(|c| *c == code).unwrap_or(14);
        add(&self.errors[i], 1);
    }

    /// Counts a `rejected`.
    pub fn rejected(&self, reason: RejectReason) {
        let i = REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        add(&self.rejected[i], 1);
    }

    /// Counts a client-side problem.
    pub fn client_error(&self, e: ClientError) {
        add(&self.client_errors[e as usize], 1);
    }

    /// The totals now.
    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            connections: get(&self.connections),
            closed: get(&self.closed),
            joins: get(&self.joins),
            seats: get(&self.seats),
            games_started: get(&self.games_started),
            games_completed: get(&self.games_completed),
            attempts: get(&self.attempts),
            answered: get(&self.answered),
            captures: get(&self.captures),
            rejected: self.rejected.each_ref().map(get),
            errors: self.errors.each_ref().map(get),
            client_errors: self.client_errors.each_ref().map(get),
            disconnects: get(&self.disconnects),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            deliveries: get(&self.deliveries),
            watches: get(&self.watches),
            spectator_deliveries: get(&self.spectator_deliveries),
            skipped: get(&self.skipped),
        }
    }
}

/// The counters at one instant, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// See [`Counters::connections`].
    pub connections: u64,
    /// See [`Counters::closed`].
    pub closed: u64,
    /// See [`Counters::joins`].
    pub joins: u64,
    /// See [`Counters::seats`].
    pub seats: u64,
    /// See [`Counters::games_started`].
    pub games_started: u64,
    /// See [`Counters::games_completed`].
    pub games_completed: u64,
    /// See [`Counters::attempts`].
    pub attempts: u64,
    /// See [`Counters::answered`].
    pub answered: u64,
    /// See [`Counters::captures`].
    pub captures: u64,
    /// See [`Counters::rejected`].
    pub rejected: [u64; 3],
    /// See [`Counters::errors`].
    pub errors: [u64; 15],
    /// See [`Counters::client_errors`].
    pub client_errors: [u64; 4],
    /// See [`Counters::disconnects`].
    pub disconnects: u64,
    /// See [`Counters::messages_in`].
    pub messages_in: u64,
    /// See [`Counters::messages_out`].
    pub messages_out: u64,
    /// See [`Counters::deliveries`].
    pub deliveries: u64,
    /// See [`Counters::watches`].
    pub watches: u64,
    /// See [`Counters::spectator_deliveries`].
    pub spectator_deliveries: u64,
    /// See [`Counters::skipped`].
    pub skipped: u64,
}

impl CounterSnapshot {
    /// Connections open at the snapshot.
    pub fn open(&self) -> u64 {
        self.connections.saturating_sub(self.closed)
    }

    /// Every `rejected`.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Every server `error` plus every client-side problem.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum::<u64>() + self.client_errors.iter().sum::<u64>()
    }
}

/// One histogram per [`Latency`].
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Indexed by `Latency as usize`.
    by_kind: [Histogram<u64>; KINDS],
}

impl Histograms {
    /// Empty histograms, 1 µs to 60 s at 3 significant digits.
    pub fn new() -> Result<Histograms, BotError> {
        let h = || Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3);
        Ok(Histograms {
            by_kind: [h()?, h()?, h()?, h()?, h()?, h()?, h()?],
        })
    }

    /// Records one sample.
    pub fn record(&mut self, kind: Latency, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        self.by_kind[kind as usize].saturating_record(micros);
    }

    /// One kind's histogram.
    pub fn get(&self, kind: Latency) -> &Histogram<u64> {
        &self.by_kind[kind as usize]
    }

    /// Adds `other`'s samples to these.
    pub fn merge(&mut self, other: &Histograms) {
        for (mine, theirs) in self.by_kind.iter_mut().zip(&other.by_kind) {
            // Same bounds on both sides, so adding cannot fail; if it did
            // (a bug), the samples are dropped rather than the run.
            let _same_bounds = mine.add(theirs);
        }
    }
}

/// Everything a run measures.
#[derive(Debug)]
pub struct Stats {
    /// Live totals.
    pub counters: Counters,
    /// Latency samples, sharded (see the module docs).
    shards: Box<[Mutex<Histograms>]>,
}

impl Stats {
    /// Empty stats.
    pub fn new() -> Result<Stats, BotError> {
        let shards = (0..SHARDS)
            .map(|_| Histograms::new().map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Stats {
            counters: Counters::default(),
            shards: shards.into_boxed_slice(),
        })
    }

    /// Records a latency sample from bot `bot`.
    pub fn record(&self, bot: u32, kind: Latency, d: Duration) {
        let shard = &self.shards[bot as usize % SHARDS];
        // Recording cannot leave a histogram half-updated, so a poisoned lock is fine to reuse.
        shard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(kind, d);
    }

    /// All samples so far, merged.
    pub fn histograms(&self) -> Result<Histograms, BotError> {
        let mut all = Histograms::new()?;
        for shard in self.shards.iter() {
            all.merge(&shard.lock().unwrap_or_else(|p| p.into_inner()));
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_into_one_view() {
        let stats = Stats::new().unwrap();
        for bot in 0..100u32 {
            stats.record(
                bot,
                Latency::Fanout,
                Duration::from_micros(u64::from(bot) + 1),
            );
        }
        stats.record(3, Latency::Capture, Duration::from_secs(3600)); // clamped, not lost
        let h = stats.histograms().unwrap();
        assert_eq!(h.get(Latency::Fanout).len(), 100);
        assert_eq!(h.get(Latency::Fanout).min(), 1);
        assert_eq!(h.get(Latency::Fanout).max(), 100);
        assert_eq!(h.get(Latency::Capture).len(), 1);
        assert!(h.get(Latency::Capture).max() >= MAX_MICROS * 999 / 1000);
        assert_eq!(h.get(Latency::Connect).len(), 0);
    }

    #[test]
    fn counters_by_code_and_reason() {
        let c = Counters::default();
        c.error(ErrorCode::RateLimited);
        c.error(ErrorCode::Unknown);
        c.rejected(RejectReason::NotActive);
        c.rejected(RejectReason::NotActive);
        c.client_error(ClientError::SeqGap);
        Counters::inc(&c.connections);
        Counters::inc(&c.connections);
        Counters::inc(&c.closed);
        let s = c.snapshot();
        assert_eq!(s.errors[12], 1);
        assert_eq!(s.errors[14], 1);
        assert_eq!(s.rejected, [0, 2, 0]);
        assert_eq!(s.client_errors, [0, 0, 0, 1]);
        assert_eq!((s.rejected_total(), s.errors_total(), s.open()), (2, 3, 1));
        for (i, code) in ERROR_CODES.iter().enumerate() {
            assert_eq!(
                ERROR_CODES.iter().position(|c| c == code),
                Some(i),
                "codes are distinct"
            );
        }
    }
}
