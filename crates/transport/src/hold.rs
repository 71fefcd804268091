//! The write hold: how long a busy node lets a connection's frames gather
//! before it writes them, so that several go out in one write syscall.
//!
//! A write to a socket costs the same few microseconds of kernel time (on
//! loopback, also the receiver's input path and wake-up) whether it carries
//! one small frame or ten, and at the protocol's rates a connection's frames
//! are milliseconds apart, so only waiting gathers them. Waiting is paid in
//! latency, so it is paid only under load: a sampler task reads the
//! runtime's busy time every [`SAMPLE`] and sets the hold from the busy
//! fraction (smoothed): zero below [`BUSY_FROM`], rising linearly to the
//! configured maximum at [`BUSY_FULL`]. A connection's first frame after a
//! quiet period still goes out at once; only frames that follow a write by
//! less than the hold wait, and never longer than the hold after it (see
//! `session::run`). So at light load nothing ever waits on a timer.
//!
//! One hold per process (the runtime's load is the process's load); the
//! first session with a non-zero maximum starts the sampler.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::{Instant, MissedTickBehavior, interval};

/// How often the sampler reads the runtime's busy time.
pub const SAMPLE: Duration = Duration::from_millis(10);
/// Busy fraction (smoothed) below which frames are never held.
pub const BUSY_FROM: f64 = 0.8;
/// Busy fraction at and above which the hold is the configured maximum.
pub const BUSY_FULL: f64 = 0.95;
/// Weight of the newest sample in the smoothed busy fraction (~40 ms memory).
const SMOOTHING: f64 = 0.25;

/// The current hold in microseconds; 0 = write at once.
static HOLD_US: AtomicU64 = AtomicU64::new(0);
/// Set once the sampler runs.
static SAMPLER: OnceLock<()> = OnceLock::new();

/// How long a frame that follows a write may wait now.
pub fn current() -> Duration {
    Duration::from_micros(HOLD_US.load(Ordering::Relaxed))
}

/// Sets the hold by hand (tests: the sampler is not running).
#[cfg(test)]
pub(crate) fn force(hold: Duration) {
    HOLD_US.store(
        u64::try_from(hold.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The hold for a smoothed busy fraction `busy` and a maximum `max`.
pub fn for_busy(busy: f64, max: Duration) -> Duration {
    let share = ((busy - BUSY_FROM) / (BUSY_FULL - BUSY_FROM)).clamp(0.0, 1.0);
    max.mul_f64(share)
}

/// Starts the sampler on the current runtime, once per process; a zero
/// `max` starts nothing (frames are never held).
pub fn start(max: Duration) {
    if max.is_zero() {
        return;
    }
    let Ok(runtime) = Handle::try_current() else {
        return;
    };
    SAMPLER.get_or_init(|| {
        runtime.spawn(sample(runtime.clone(), max));
    });
}

/// The runtime's busy time so far, over all its workers.
fn busy_total(runtime: &Handle) -> Duration {
    let metrics = runtime.metrics();
    (0..metrics.num_workers())
        .map(|w| metrics.worker_total_busy_duration(w))
        .sum()
}

async fn sample(runtime: Handle, max: Duration) {
    let gauge = metrics::gauge!("gridcap_ws_write_hold_us");
    let workers = runtime.metrics().num_workers().max(1) as f64;
    let mut tick = interval(SAMPLE);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = (Instant::now(), busy_total(&runtime));
    let mut busy = 0.0;
    loop {
        tick.tick().await;
        let now = (Instant::now(), busy_total(&runtime));
        let wall = now.0.duration_since(last.0).as_secs_f64() * workers;
        if wall > 0.0 {
            let sample = (now.1.saturating_sub(last.1).as_secs_f64() / wall).min(1.0);
            busy += SMOOTHING * (sample - busy);
        }
        last = now;
        let hold = for_busy(busy, max);
        let micros = u64::try_from(hold.as_micros()).unwrap_or(u64::MAX);
        if HOLD_US.swap(micros, Ordering::Relaxed) != micros {
            gauge.set(micros as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hold_below_the_threshold_and_the_maximum_at_full_load() {
        let max = Duration::from_millis(8);
        assert_eq!(for_busy(0.0, max), Duration::ZERO);
        assert_eq!(for_busy(BUSY_FROM, max), Duration::ZERO);
        assert_eq!(for_busy(1.0, max), max);
        let half = for_busy((BUSY_FROM + BUSY_FULL) / 2.0, max);
        assert!(half > Duration::from_millis(3) && half < Duration::from_millis(5));
    }
}
