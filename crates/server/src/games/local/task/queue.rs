//! A game task's command queue: bounded like tokio's `mpsc::channel`, but
//! holding no memory while it is empty.
//!
//! tokio's channel allocates a block of 32 slots when it is made (32 ×
//! `Command` = 1.5 KB per game, ~390 B per idle player of a game of four)
//! and keeps it for the channel's life. Here the commands wait in a
//! `VecDeque` under a mutex that gives its allocation back whenever the task
//! has taken the last one; free slots are a semaphore's permits, so a full
//! queue makes senders wait exactly as the bounded channel did. Dropping the
//! receiver closes the queue: waiting and later sends fail, and the queued
//! commands are dropped (their reply senders with them, which tells the
//! requesters the game is gone).
//!
//! The queue's shared allocation also carries the game's status byte, which
//! the task publishes and the senders read without a lock, and the game's
//! name (its id and code), which neither end changes: one allocation per
//! game instead of two, and a handle of one pointer.
//!
//! It carries the game's stop flag too: the registry sets it on every game
//! when the node stops (instead of a cancellation token per game), and the
//! receiver then ends as if every sender had gone. A parked game (see
//! `park`) is woken by it like by a command, through the same waker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::sync::Semaphore;

/// What both ends share.
#[derive(Debug)]
struct Shared<T, N> {
    state: Mutex<State<T>>,
    /// Free slots: a sender takes one before queueing, the receiver gives
    /// it back when it takes the command. Closed when the receiver goes.
    slots: Semaphore,
    /// The receiving task, woken by a send or by the last sender's drop.
    receiver: AtomicWaker,
    /// A byte the receiver publishes for the senders (the game's status).
    status: AtomicU8,
    /// Set once by [`Sender::stop`]: the receiver ends at its next take.
    stopped: AtomicBool,
    /// What the queue was made with, for both ends to read.
    name: N,
}

#[derive(Debug)]
struct State<T> {
    /// Commands not yet taken, oldest first.
    items: VecDeque<T>,
    /// Live senders; none left (and nothing queued) ends the receiver.
    senders: usize,
    /// Set when the receiver is dropped.
    closed: bool,
}

impl<T, N> Shared<T, N> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Each critical section is one queue operation: a poisoned queue is intact.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new queue that holds at most `capacity` commands (at least one),
/// named `name`.
pub(super) fn channel<T, N>(capacity: usize, name: N) -> (Sender<T, N>, Receiver<T, N>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            closed: false,
        }),
        slots: Semaphore::new(capacity.max(1)),
        receiver: AtomicWaker::new(),
        status: AtomicU8::new(0),
        stopped: AtomicBool::new(false),
        name,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending end; clones share the queue.
#[derive(Debug)]
pub(super) struct Sender<T, N> {
    shared: Arc<Shared<T, N>>,
}

impl<T, N> Clone for Sender<T, N> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T, N> Drop for Sender<T, N> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.shared.receiver.wake();
        }
    }
}

impl<T, N> Sender<T, N> {
    /// What the queue was made with.
    pub(super) fn name(&self) -> &N {
        &self.shared.name
    }

    /// Queues `item`, waiting while the queue is full; gives it back if the
    /// receiver is gone.
    pub(super) async fn send(&self, item: T) -> Result<(), T> {
        match self.shared.slots.acquire().await {
            Ok(slot) => slot.forget(),
            Err(_closed) => return Err(item),
        }
        self.enqueue(item)
    }

    /// Queues `item` if a slot is free now; gives it back if the queue is
    /// full or the receiver is gone. Never waits.
    pub(super) fn try_send(&self, item: T) -> Result<(), T> {
        match self.shared.slots.try_acquire() {
            Ok(slot) => slot.forget(),
            Err(_full_or_closed) => return Err(item),
        }
        self.enqueue(item)
    }

    /// The byte the receiver last published (0 until it does).
    pub(super) fn status(&self) -> u8 {
        self.shared.status.load(Ordering::Relaxed)
    }

    /// Tells the receiver to end: its next take (even with commands still
    /// queued) is the queue's end. Wakes it, parked or not.
    pub(super) fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.receiver.wake();
    }

    /// Puts `item` (its slot taken) in the queue and wakes the receiver.
    fn enqueue(&self, item: T) -> Result<(), T> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        self.shared.receiver.wake();
        Ok(())
    }
}

/// The receiving end, owned by the game's task.
#[derive(Debug)]
pub(super) struct Receiver<T, N> {
    shared: Arc<Shared<T, N>>,
}

impl<T, N> Receiver<T, N> {
    /// What the queue was made with.
    pub(super) fn name(&self) -> &N {
        &self.shared.name
    }

    /// Publishes a byte every sender reads with [`Sender::status`].
    pub(super) fn publish(&self, status: u8) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    /// The next command; `None` once every sender is gone and the queue is
    /// empty, or once the game was told to stop.
    #[cfg(test)]
    pub(super) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll: `Ready(None)` once the queue has ended.
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(next) = self.take() {
            return Poll::Ready(next);
        }
        self.shared.receiver.register(cx.waker());
        // A send (or the last drop) between the check and the registration.
        match self.take() {
            Some(next) => Poll::Ready(next),
            None => Poll::Pending,
        }
    }

    /// The next command if one is there now, without waiting: `Some(None)`
    /// when the queue has ended (or stopped), `None` when there is nothing yet.
    pub(super) fn try_recv(&mut self) -> Option<Option<T>> {
        self.take()
    }

    /// Ready once there is something to take (a command, the queue's end,
    /// the stop), taking nothing; until then `cx`'s waker is registered.
    pub(super) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_until(cx, |shared| {
            let state = shared.lock();
            !state.items.is_empty() || state.senders == 0
        })
    }

    /// Ready once the game was told to stop; until then `cx`'s waker is
    /// registered (a command wakes it too, and is left queued).
    pub(super) fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_until(cx, |_| false)
    }

    /// Ready once stopped or `more` says so; registers `cx` in between, and
    /// checks again after, so that nothing between the two is lost.
    fn poll_until(&self, cx: &mut Context<'_>, more: impl Fn(&Shared<T, N>) -> bool) -> Poll<()> {
        let ready = || self.shared.stopped.load(Ordering::Acquire) || more(&self.shared);
        if ready() {
            return Poll::Ready(());
        }
        self.shared.receiver.register(cx.waker());
        if ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// `Some(Some(command))`, `Some(None)` when the queue has ended or the
    /// game was told to stop, `None` when there is nothing yet.
    fn take(&mut self) -> Option<Option<T>> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Some(None);
        }
        let mut state = self.shared.lock();
        match state.items.pop_front() {
            Some(item) => {
                if state.items.is_empty() {
                    // Give the allocation back: an idle game keeps none.
                    state.items = VecDeque::new();
                }
                drop(state);
                self.shared.slots.add_permits(1);
                Some(Some(item))
            }
            None if state.senders == 0 => Some(None),
            None => None,
        }
    }
}

impl<T, N> Drop for Receiver<T, N> {
    fn drop(&mut self) {
        self.shared.slots.close();
        let items = {
            let mut state = self.shared.lock();
            state.closed = true;
            std::mem::take(&mut state.items)
        };
        // Dropped outside the lock: a command's drop may run a reply's.
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn commands_arrive_in_order_and_the_drained_queue_keeps_no_memory() {
        let (tx, mut rx) = channel(8, ());
        for n in 0..5 {
            tx.send(n).await.unwrap();
        }
        for n in 0..5 {
            assert_eq!(rx.recv().await, Some(n));
        }
        assert_eq!(rx.shared.lock().items.capacity(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_senders_wait_until_a_command_is_taken() {
        let (tx, mut rx) = channel(2, ());
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        let waiting = tx.clone();
        let third = tokio::spawn(async move { waiting.send(3).await });
        // Paused time: this runs the sender until it blocks, then times out.
        assert!(timeout(WAIT, &mut Box::pin(tx.send(4))).await.is_err());
        assert!(!third.is_finished());
        assert_eq!(rx.recv().await, Some(1));
        timeout(WAIT, third).await.unwrap().unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
    }

    #[tokio::test]
    async fn try_send_queues_while_a_slot_is_free_and_never_waits() {
        let (tx, mut rx) = channel(2, ());
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(3), "a full queue gives the item back");
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(tx.try_send(4), Ok(()), "a taken command frees its slot");
        drop(rx);
        assert_eq!(tx.try_send(5), Err(5), "a closed queue gives it back");
    }

    #[test]
    fn every_sender_reads_the_status_the_receiver_published() {
        let (tx, rx) = channel::<(), u8>(1, 7);
        let other = tx.clone();
        assert_eq!((*tx.name(), *rx.name()), (7, 7), "the name both ends read");
        assert_eq!(tx.status(), 0);
        rx.publish(2);
        assert_eq!((tx.status(), other.status()), (2, 2));
    }

    #[tokio::test]
    async fn the_receiver_ends_when_the_last_sender_goes() {
        let (tx, mut rx) = channel(4, ());
        let second = tx.clone();
        tx.send(1).await.unwrap();
        drop(tx);
        let ended = tokio::spawn(async move { (rx.recv().await, rx.recv().await) });
        drop(second);
        assert_eq!(
            timeout(WAIT, ended).await.unwrap().unwrap(),
            (Some(1), None)
        );
    }

    #[tokio::test]
    async fn sends_fail_once_the_receiver_is_gone_and_queued_commands_are_dropped() {
        let (tx, rx) = channel(4, ());
        let (reply, answer) = tokio::sync::oneshot::channel::<()>();
        tx.send(reply).await.unwrap();
        drop(rx);
        assert!(
            answer.await.is_err(),
            "the queued reply sender was not dropped"
        );
        let (reply, _answer) = tokio::sync::oneshot::channel::<()>();
        assert!(tx.send(reply).await.is_err());
    }

    #[test]
    fn readiness_takes_nothing_and_a_stop_ends_the_queue_before_its_commands() {
        let (tx, mut rx) = channel(4, ());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(rx.poll_ready(&mut cx).is_pending());
        assert!(rx.poll_stopped(&mut cx).is_pending());
        tx.try_send(1).unwrap();
        assert!(rx.poll_ready(&mut cx).is_ready());
        assert!(
            rx.poll_stopped(&mut cx).is_pending(),
            "a command is no stop"
        );
        assert_eq!(rx.try_recv(), Some(Some(1)), "readiness took nothing");
        assert_eq!(rx.try_recv(), None);
        tx.try_send(2).unwrap();
        tx.stop();
        assert!(rx.poll_stopped(&mut cx).is_ready());
        assert_eq!(rx.try_recv(), Some(None), "stopped: the queue has ended");
    }

    #[tokio::test]
    async fn a_stop_wakes_a_waiting_receiver() {
        let (tx, mut rx) = channel::<u32, ()>(4, ());
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        tx.stop();
        assert_eq!(timeout(WAIT, waiting).await.unwrap().unwrap(), None);
    }
}
