//! A waiting game with nothing due is not a task.
//!
//! A tokio task costs its whole future (the largest state the game's loop
//! can be in) rounded up with its header to a multiple of 128 bytes, for as
//! long as it lives: 896 bytes for a game that mostly waits for players.
//! When a game has no timer running and no command queued, its state moves
//! into a [`Slot`] instead: an `Arc` of exactly the state's size that is
//! also the waker registered with the game's command queue, which is all a
//! game with nothing due waits on (commands, and the node's stop, which
//! the registry delivers through the same queue). The task then ends.
//!
//! The first wake-up takes the state out of the slot and spawns a task for
//! the next activation; later wake-ups find the slot empty and do nothing,
//! so one task at a time runs a game. While a game is parked, the queue's
//! registration is the only reference to its slot, and the registry stops
//! every game when the node stops, so a parked game is never forgotten.
//!
//! (The sessions park the same way in `transport`; that module is private
//! to the sessions, and this one waits on one source, not four.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// A parked game's state, as a slot holds it.
pub(super) trait Resume: Send + 'static {
    /// Ready if what the game waits on is ready now; otherwise `cx`'s waker
    /// is registered with it.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Back to work: spawns the game's next activation.
    fn resume(self);
}

/// Holds a parked game until its first wake-up.
struct Slot<G> {
    game: Mutex<Option<G>>,
    /// Set by every wake-up, so that one that comes while the game is still
    /// registering (and the slot still empty) is not lost.
    woken: AtomicBool,
}

#[cfg(test)]
thread_local! {
    /// Slots alive on this thread (a test's current-thread runtime runs
    /// every game on it): a woken slot must not outlive its wake-up.
    pub(super) static LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
impl<G> Drop for Slot<G> {
    fn drop(&mut self) {
        LIVE.with(|live| live.set(live.get() - 1));
    }
}

impl<G> Slot<G> {
    fn lock(&self) -> MutexGuard<'_, Option<G>> {
        // Nothing panics while the lock is held; a poisoned slot is as good.
        self.game.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<G: Resume> Wake for Slot<G> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // Taken out first: resuming spawns a task, not under the lock.
        let game = self.lock().take();
        if let Some(game) = game {
            game.resume();
        }
    }
}

/// Parks `game` in a slot of its own: `None` once it is there, or the game
/// back if what it waits on is ready already (go on with it).
pub(super) fn park<G: Resume>(mut game: G) -> Option<G> {
    let slot = Arc::new(Slot {
        game: Mutex::new(None),
        woken: AtomicBool::new(false),
    });
    #[cfg(test)]
    LIVE.with(|live| live.set(live.get() + 1));
    let waker = Waker::from(slot.clone());
    // Registered without the lock held: a registration that races a
    // wake-up wakes at once, and that wake-up takes the lock.
    if game.poll_wake(&mut Context::from_waker(&waker)).is_ready() {
        return Some(game);
    }
    *slot.lock() = Some(game);
    // A wake-up between the registration and the line above found the slot
    // empty: whichever of it and this takes the game goes on with it.
    if slot.woken.load(Ordering::Acquire) {
        return slot.lock().take();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    /// A game that records its resumptions; what it waits on is the wakers
    /// it registered, which the test wakes by hand.
    struct Fake {
        /// Wakes `cx` at once while registering (a racing wake-up).
        wake_while_registering: bool,
        registered: Arc<StdMutex<Vec<Waker>>>,
        resumed: Arc<StdMutex<u32>>,
    }

    impl Resume for Fake {
        fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.registered.lock().unwrap().push(cx.waker().clone());
            if self.wake_while_registering {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }

        fn resume(self) {
            *self.resumed.lock().unwrap() += 1;
        }
    }

    fn fake(wake_while_registering: bool) -> Fake {
        Fake {
            wake_while_registering,
            registered: Arc::default(),
            resumed: Arc::default(),
        }
    }

    #[test]
    fn the_first_wake_up_resumes_a_parked_game_once_and_frees_its_slot() {
        let game = fake(false);
        let (registered, resumed) = (game.registered.clone(), game.resumed.clone());
        let live = LIVE.with(std::cell::Cell::get);
        assert!(park(game).is_none(), "parked");
        assert_eq!(*resumed.lock().unwrap(), 0, "parked until woken");
        assert_eq!(LIVE.with(std::cell::Cell::get), live + 1);
        let wakers = std::mem::take(&mut *registered.lock().unwrap());
        assert_eq!(wakers.len(), 1);
        wakers[0].wake_by_ref();
        wakers[0].wake_by_ref();
        assert_eq!(
            *resumed.lock().unwrap(),
            1,
            "resumed once, however often woken"
        );
        drop(wakers);
        assert_eq!(LIVE.with(std::cell::Cell::get), live, "the slot is freed");
    }

    #[test]
    fn a_wake_up_while_registering_keeps_the_game_here() {
        let game = fake(true);
        let resumed = game.resumed.clone();
        assert!(park(game).is_some(), "a woken game must not go away");
        assert_eq!(
            *resumed.lock().unwrap(),
            0,
            "and is not resumed elsewhere too"
        );
    }
}
