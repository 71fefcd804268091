//! The bounded outbound queue of one connection, and its slow-consumer policy.
//!
//! Game tasks push pre-encoded frames without ever waiting: one encoding of
//! an event is shared (`Bytes` is reference counted) by every player's queue.
//! **Slow-consumer policy:** when a connection's queue already holds
//! `capacity` frames, the push fails, the queue is cleared and the connection
//! is closed with 1008 "slow consumer". The seat stays; the client may
//! `resume` and gets a fresh snapshot. So a client that stops reading costs at
//! most `capacity` frames of memory and never delays the other players.
//!
//! A `Mutex<Vec>` plus a wake flag and an `AtomicWaker` (rather than an
//! mpsc channel) keeps an idle connection's queue at zero allocated slots and
//! lets the writer take every pending frame at once and flush them with one
//! write. (A `tokio::sync::Notify` did the waking before; its waiter list
//! under a mutex cost ~400 instructions per delivery, the writer's poll of
//! the flag and waker a few dozen.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::time::Instant;

use crate::moment::MaybeMoment;

/// Close code and reason for a connection whose queue overflowed.
pub const SLOW_CONSUMER: (u16, &str) = (1008, "slow consumer: outbound queue full");

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue was full; the connection is now being closed.
    #[error("outbound queue full; connection closed as a slow consumer")]
    Overflow,
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
}

#[derive(Debug, Default)]
struct State {
    /// Frames waiting for the writer, oldest first (the writer takes them
    /// all at once: a `Vec`, 8 bytes smaller than a `VecDeque`).
    frames: Vec<Bytes>,
    /// Set once: the close the writer must send after the queued frames.
    /// Boxed: every idle connection's queue carries the slot, few a close.
    close: Option<Box<(u16, String)>>,
    /// When the oldest stamped frame queued now was started (a capture's
    /// arrival, for its `captured` echo): the writer records the time to
    /// its write in `gridcap_capture_broadcast_seconds`. (8 bytes: a
    /// moment, not an `Option<Instant>` of 16.)
    stamp: MaybeMoment,
}

/// What the writer takes from the queue at once.
#[derive(Debug, Default)]
pub struct Batch {
    /// The frames, oldest first.
    pub frames: Vec<Bytes>,
    /// The close to send after them, once requested.
    pub close: Option<(u16, String)>,
    /// The oldest stamp among the frames (see [`Outbox::push_stamped`]).
    pub stamp: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    /// Identifies the connection (logs, and to tell a replaced session apart).
    id: u64,
    /// Most frames queued at once.
    capacity: u32,
    state: Mutex<State>,
    /// Set when the writer has something to do (a permit, kept until taken).
    woken: AtomicBool,
    /// The writer's task, woken when `woken` is set.
    writer: AtomicWaker,
}

/// The sending side of one connection's queue; cheap to clone into game tasks.
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// A new empty queue for connection `id`.
    pub fn new(id: u64, capacity: usize) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                id,
                capacity: u32::try_from(capacity).unwrap_or(u32::MAX).max(1),
                state: Mutex::new(State::default()),
                woken: AtomicBool::new(false),
                writer: AtomicWaker::new(),
            }),
        }
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Wakes the writer (or leaves it a permit, if it is not waiting).
    fn wake(&self) {
        self.shared.woken.store(true, Ordering::Release);
        self.shared.writer.wake();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every critical section is a single push/take), so recover it.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame without waiting. On overflow the connection is closed
    /// as a slow consumer (see the module docs).
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        self.push_with(frame, None)
    }

    /// [`push`](Self::push) of a frame that ends a measured path begun at
    /// `since` (a capture's arrival): the write of the batch that carries it
    /// records the time since then.
    pub fn push_stamped(&self, frame: Bytes, since: Instant) -> Result<(), PushError> {
        self.push_with(frame, Some(since))
    }

    fn push_with(&self, frame: Bytes, stamp: Option<Instant>) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.close.is_some() {
            return Err(PushError::Closed);
        }
        if state.frames.len() >= self.shared.capacity as usize {
            state.frames = Vec::new();
            state.stamp = MaybeMoment::NONE;
            state.close = Some(Box::new((SLOW_CONSUMER.0, SLOW_CONSUMER.1.to_owned())));
            drop(state);
            metrics::counter!("gridcap_slow_consumer_cuts_total").increment(1);
            self.wake();
            return Err(PushError::Overflow);
        }
        let was_empty = state.frames.is_empty();
        state.frames.push(frame);
        if state.stamp.is_none() {
            state.stamp = MaybeMoment::new(stamp);
        }
        drop(state);
        // Only the first frame of a batch wakes the writer: until it takes
        // them, a wake-up (or a stored permit) is already on its way, and it
        // takes every queued frame at once. One wake per batch, not per frame.
        if was_empty {
            self.wake();
        }
        Ok(())
    }

    /// Asks the writer to send what is queued, then close with `code`.
    /// The first close requested wins.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let mut state = self.lock();
        if state.close.is_none() {
            state.close = Some(Box::new((code, reason.into())));
        }
        drop(state);
        self.wake();
    }

    /// Whether a close has been requested.
    pub fn is_closing(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until something was pushed or a close requested (since the
    /// last time it returned); for the one writer of the connection.
    pub async fn ready(&self) {
        let shared = &self.shared;
        std::future::poll_fn(|cx| {
            if shared.woken.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            shared.writer.register(cx.waker());
            // A wake between the check and the registration left the flag.
            if shared.woken.swap(false, Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Ready when [`ready`](Self::ready) would be, without consuming the
    /// wake-up (it stays for `ready`): how a parked session waits.
    pub fn poll_woken(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let shared = &self.shared;
        if shared.woken.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        shared.writer.register(cx.waker());
        if shared.woken.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Takes every queued frame (into `into`) and the close request, if any.
    pub fn take(&self, into: &mut Vec<Bytes>) -> Option<(u16, String)> {
        let batch = self.take_all();
        into.extend(batch.frames);
        batch.close
    }

    /// Takes the queue itself (its allocation too: a drained queue holds no
    /// memory, so an idle connection costs none here), the close request
    /// and the stamp.
    pub fn take_all(&self) -> Batch {
        let mut state = self.lock();
        Batch {
            frames: std::mem::take(&mut state.frames),
            close: state.close.as_deref().cloned(),
            stamp: state.stamp.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_clears_and_closes() {
        let o = Outbox::new(1, 2);
        o.push(Bytes::from_static(b"a")).unwrap();
        o.push(Bytes::from_static(b"b")).unwrap();
        assert_eq!(o.push(Bytes::from_static(b"c")), Err(PushError::Overflow));
        assert_eq!(o.push(Bytes::from_static(b"d")), Err(PushError::Closed));
        let mut v = Vec::new();
        let close = o.take(&mut v);
        assert!(v.is_empty(), "an overflowing queue is dropped, not sent");
        assert_eq!(close.map(|c| c.0), Some(1008));
    }

    #[test]
    fn a_batch_carries_its_oldest_stamp_once() {
        let o = Outbox::new(1, 8);
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(5);
        o.push(Bytes::from_static(b"a")).unwrap();
        assert_eq!(o.take_all().stamp, None, "an unstamped batch");
        o.push_stamped(Bytes::from_static(b"b"), t0).unwrap();
        o.push_stamped(Bytes::from_static(b"c"), t1).unwrap();
        let batch = o.take_all();
        assert_eq!(batch.frames.len(), 2);
        assert_eq!(batch.stamp, Some(t0), "the oldest of the batch");
        assert_eq!(o.take_all().stamp, None, "taken with its batch");
        // An overflow drops the stamp with the frames it belonged to.
        let small = Outbox::new(2, 1);
        small.push_stamped(Bytes::from_static(b"x"), t0).unwrap();
        assert_eq!(
            small.push(Bytes::from_static(b"y")),
            Err(PushError::Overflow)
        );
        assert_eq!(small.take_all().stamp, None);
    }

    #[test]
    fn frames_then_close_in_order() {
        let o = Outbox::new(1, 8);
        o.push(Bytes::from_static(b"a")).unwrap();
        o.close(4001, "replaced");
        o.close(1000, "later close is ignored");
        let mut v = Vec::new();
        assert_eq!(o.take(&mut v), Some((4001, "replaced".to_owned())));
        assert_eq!(v, vec![Bytes::from_static(b"a")]);
    }

    /// Every connection holds one `Shared` for its life, idle or not: it
    /// fits a 112-byte allocation with its reference counts (glibc's chunk
    /// for up to 104 bytes asked; it was 128 with a `VecDeque` and an
    /// `Option<Instant>`).
    #[test]
    fn an_idle_queue_is_small() {
        assert_eq!(std::mem::size_of::<std::sync::Arc<Shared>>(), 8);
        assert_eq!(
            std::mem::size_of::<Shared>() + 16,
            104,
            "Shared and its counts"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_writer_is_woken_once_per_batch() {
        let o = Outbox::new(1, 8);
        let writer = o.clone();
        let woken = tokio::spawn(async move {
            writer.ready().await;
            writer.take_all().frames.len()
        });
        tokio::task::yield_now().await;
        assert!(!woken.is_finished(), "nothing to write yet");
        o.push(Bytes::from_static(b"a")).unwrap();
        o.push(Bytes::from_static(b"b")).unwrap();
        assert_eq!(woken.await.unwrap(), 2, "both frames in one batch");
        // The permit was taken: the writer waits again until a close.
        let writer = o.clone();
        let closed = tokio::spawn(async move {
            writer.ready().await;
            writer.take_all().close
        });
        tokio::task::yield_now().await;
        assert!(!closed.is_finished(), "no permit left");
        o.close(1000, "bye");
        assert_eq!(closed.await.unwrap(), Some((1000, "bye".to_owned())));
    }

    #[tokio::test]
    async fn ready_is_not_lost_when_pushed_before_waiting() {
        let o = Outbox::new(1, 8);
        o.push(Bytes::from_static(b"a")).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), o.ready())
            .await
            .unwrap();
    }
}
