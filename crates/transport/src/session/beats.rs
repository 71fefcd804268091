//! One timer for the heartbeats of every parked session, and the way the
//! shutdown reaches them.
//!
//! A parked session must still wake for its next ping (or its idle and
//! first-message deadlines). A tokio `Sleep` of its own costs 112 bytes and
//! a shutdown future of its own ~70 more, in every parked session. Instead
//! a session registers its next beat here: its waker under its deadline,
//! in one queue per node (`queue.rs`: 32 bytes a beat, in pages; an ordered
//! map's nodes cost ~52). One task ([`Beats::run`]) sleeps until the
//! earliest deadline and wakes whatever is due, at the same instants a
//! session's own timer would. When the node's shutdown fires, it wakes
//! every parked session and refuses new registrations, so that a session
//! finds the shutdown when it wakes and closes with 1001.
//!
//! A session gives its key back ([`Beats::cancel`]) whenever it resumes,
//! whether its beat woke it or something else did: until then its slot in
//! the queue is kept (see `queue.rs`).

mod pages;
mod queue;

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::{Pin, pin};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::time::{Instant, Sleep, sleep_until};

use crate::moment::Moment;
use queue::{Queue, Slot};

/// The heartbeats of a node's parked sessions; see the module docs.
#[derive(Debug, Default)]
pub struct Beats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Parked sessions by their next beat.
    due: Queue,
    /// The shutdown has fired: nothing parks any more.
    closed: bool,
    /// The sweeping task, to wake when a beat earlier than all others comes.
    sweeper: Option<Waker>,
}

/// A registered beat, to give back when the session resumes: 4 bytes in
/// every parked session, as an `Option`.
#[derive(Debug)]
pub(super) struct BeatKey(NonZeroU32);

impl BeatKey {
    fn new(slot: Slot) -> Option<BeatKey> {
        slot.checked_add(1).and_then(NonZeroU32::new).map(BeatKey)
    }

    fn slot(&self) -> Slot {
        self.0.get() - 1
    }
}

/// The node is shutting down: a session must not park.
#[derive(Debug)]
pub(super) struct Closed;

impl Beats {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held; a poisoned queue is as good.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes `waker` at `at`, unless the shutdown has fired (or, never in
    /// practice, four billion beats are registered at once: that too is
    /// `Closed`, and the session closes as in a shutdown).
    pub(super) fn register(&self, at: Instant, waker: &Waker) -> Result<BeatKey, Closed> {
        let at = Moment::new(at);
        let mut inner = self.lock();
        if inner.closed {
            return Err(Closed);
        }
        let earliest = inner.due.first().is_none_or(|first| at < first);
        let key = inner
            .due
            .insert(at, waker.clone())
            .and_then(BeatKey::new)
            .ok_or(Closed)?;
        let sweeper = if earliest {
            inner.sweeper.clone()
        } else {
            None
        };
        drop(inner);
        if let Some(sweeper) = sweeper {
            sweeper.wake();
        }
        Ok(key)
    }

    /// Gives back the beat `key` when the session resumes: takes it back
    /// if it has not fired (the session woke for something else).
    pub(super) fn cancel(&self, key: BeatKey) {
        self.lock().due.cancel(key.slot());
    }

    /// Parked sessions waiting for their beat now (`/metrics` counts them
    /// as `gridcap_ws_parked`).
    #[cfg(test)]
    fn parked(&self) -> usize {
        self.lock().due.len()
    }

    /// Slots taken or free in the queue (for tests).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.lock().due.slots()
    }

    /// Wakes each parked session at its beat until `shutdown`; then wakes
    /// them all and lets none park again. Spawn it once per node, before
    /// its first session.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = pin!(shutdown);
        let mut timer = pin!(sleep_until(Instant::now()));
        std::future::poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.sweep(timer.as_mut(), cx);
            Poll::Pending
        })
        .await;
        let woken = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.due.take_all()
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Wakes what is due and sets `timer` for the next beat.
    fn sweep(&self, mut timer: Pin<&mut Sleep>, cx: &mut Context<'_>) {
        loop {
            let now = Moment::new(Instant::now());
            let mut woken = Vec::new();
            let next = {
                let mut inner = self.lock();
                while let Some(waker) = inner.due.pop_due(now) {
                    woken.push(waker);
                }
                inner.sweeper = Some(cx.waker().clone());
                inner.due.first()
            };
            woken.into_iter().for_each(Waker::wake);
            let Some(next) = next.map(Moment::get) else {
                return; // Woken by the first registration.
            };
            if timer.deadline() != next {
                timer.as_mut().reset(next);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::sleep;

    use super::*;

    /// Counts its wake-ups and records when the last one came.
    #[derive(Default)]
    struct Probe {
        woken: AtomicUsize,
        at: Mutex<Option<Instant>>,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            self.woken.fetch_add(1, Ordering::SeqCst);
            *self.at.lock().unwrap() = Some(Instant::now());
        }
    }

    impl Probe {
        /// When it was woken, if it was woken exactly once.
        fn woken_once(&self) -> Option<Instant> {
            let at = *self.at.lock().unwrap();
            at.filter(|_| self.woken.load(Ordering::SeqCst) == 1)
        }
    }

    fn probe() -> (Arc<Probe>, Waker) {
        let probe = Arc::new(Probe::default());
        let waker = Waker::from(probe.clone());
        (probe, waker)
    }

    /// A node's beats with their sweeper running until the sender is used.
    fn running() -> (Arc<Beats>, oneshot::Sender<()>) {
        let beats = Arc::new(Beats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let sweeper = beats.clone();
        tokio::spawn(async move {
            sweeper
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        (beats, stop)
    }

    #[tokio::test(start_paused = true)]
    async fn each_beat_wakes_its_session_at_its_instant() {
        let (beats, _stop) = running();
        let start = Instant::now();
        let (late, late_waker) = probe();
        let (early, early_waker) = probe();
        let (taken_back, taken_back_waker) = probe();
        beats
            .register(start + Duration::from_secs(30), &late_waker)
            .unwrap();
        // Earlier than every beat so far: the sweeper re-arms for it.
        beats
            .register(start + Duration::from_secs(15), &early_waker)
            .unwrap();
        let taken_back_at = start + Duration::from_secs(20);
        let key = beats.register(taken_back_at, &taken_back_waker).unwrap();
        beats.cancel(key);
        assert_eq!(beats.parked(), 2);
        sleep(Duration::from_secs(60)).await;
        assert_eq!(early.woken_once(), Some(start + Duration::from_secs(15)));
        assert_eq!(late.woken_once(), Some(start + Duration::from_secs(30)));
        assert_eq!(taken_back.woken.load(Ordering::SeqCst), 0, "taken back");
        assert_eq!(beats.parked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_shutdown_wakes_every_parked_session_and_closes_the_beats() {
        let (beats, stop) = running();
        let (parked, waker) = probe();
        beats
            .register(Instant::now() + Duration::from_secs(600), &waker)
            .unwrap();
        tokio::task::yield_now().await;
        stop.send(()).unwrap();
        sleep(Duration::from_millis(1)).await;
        assert_eq!(
            parked.woken.load(Ordering::SeqCst),
            1,
            "woken by the shutdown"
        );
        assert!(matches!(
            beats.register(Instant::now(), &waker),
            Err(Closed)
        ));
    }

    /// A session that woke for something else takes its beat back; one
    /// that its beat woke gives the key back later, after another session
    /// has registered: that one's beat is untouched.
    #[tokio::test(start_paused = true)]
    async fn a_key_given_back_late_leaves_other_beats_alone() {
        let (beats, _stop) = running();
        let start = Instant::now();
        let (first, first_waker) = probe();
        let first_key = beats
            .register(start + Duration::from_secs(1), &first_waker)
            .unwrap();
        sleep(Duration::from_secs(2)).await;
        assert_eq!(first.woken_once(), Some(start + Duration::from_secs(1)));
        // Registered while the first key is still out.
        let (second, second_waker) = probe();
        let second_at = start + Duration::from_secs(5);
        let second_key = beats.register(second_at, &second_waker).unwrap();
        beats.cancel(first_key);
        assert_eq!(beats.parked(), 1);
        sleep(Duration::from_secs(5)).await;
        assert_eq!(second.woken_once(), Some(second_at));
        beats.cancel(second_key);
        assert_eq!(beats.slots(), 2, "both slots free for reuse");
    }

    /// Sessions that park and unpark many times per beat leave nothing
    /// behind: the queue holds the beats that wait, in as many slots as
    /// there are sessions.
    #[tokio::test(start_paused = true)]
    async fn churn_leaves_nothing_behind() {
        let (beats, _stop) = running();
        let at = Instant::now() + Duration::from_secs(15);
        let wakers: Vec<_> = (0..3).map(|_| probe()).collect();
        for _ in 0..10_000 {
            let keys: Vec<_> = wakers
                .iter()
                .map(|(_, waker)| beats.register(at, waker).unwrap())
                .collect();
            keys.into_iter().for_each(|key| beats.cancel(key));
        }
        assert_eq!(beats.parked(), 0);
        assert_eq!(beats.slots(), 3);
        sleep(Duration::from_secs(30)).await;
        for (probe, _) in &wakers {
            assert_eq!(probe.woken.load(Ordering::SeqCst), 0, "all taken back");
        }
    }
}
