//! Parked state that is not a task: a parked session (`session`), a
//! waiting game (the server's `games::local`).
//!
//! A tokio task costs its future's whole size (the largest state it can be
//! in), rounded up with its header to a multiple of 128 bytes, for as long
//! as it lives. Something parked needs none of that. When it parks, its
//! state moves into a `Slot`: an `Arc` of exactly the state's size that is
//! also the waker registered with everything the state waits on (for a
//! session: its socket's read readiness, its outbox, its heartbeat, the
//! shutdown; for a game: its command queue). The task then ends.
//!
//! The first wake-up takes the state out of the slot and [resumes](Resume::resume)
//! it, which spawns a task for the next activation; later wake-ups find the
//! slot empty and do nothing, so one task at a time runs the state. While
//! it is parked, only those registrations refer to its slot, so whoever
//! parks must make sure one of them fires in the end (a session's
//! heartbeat always does; the registry stops every game when the node
//! stops). Once the new task has registered its own wakers, the old slot
//! (empty) is freed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// Parked state, as a slot holds it.
pub trait Resume: Send + 'static {
    /// Ready if anything the state waits on is ready now; otherwise `cx`'s
    /// waker is registered with every one of them.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Goes back to work: spawns the next activation.
    fn resume(self);
}

/// What became of state that parked.
#[derive(Debug)]
pub enum Parking<P> {
    /// It is in a slot, no task's; a wake-up resumes it.
    Away,
    /// Something it waits on is ready already: go on with it.
    Here(P),
}

/// Holds parked state until its first wake-up.
struct Slot<P> {
    held: Mutex<Held<P>>,
}

/// What a slot holds. The two empty states fit in the state's own unused
/// bit patterns (a `bool` of it will do), so a slot is its state plus the
/// lock's 8 bytes: a separate "woken" flag cost 8 more, which took a
/// parked session's slot (with its `Arc` counts) past jemalloc's 256-byte
/// size class and a waiting game's past 512.
enum Held<P> {
    /// Not yet holding the state: it is still registering its wakers.
    Registering,
    /// Woken: while registering, or since it was taken out and resumed.
    Woken,
    /// Parked, until the first wake-up.
    Parked(P),
}
#[cfg(any(test, feature = "test-util"))]
thread_local! {
    /// Slots made minus slots freed on this thread.
    static LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Slots alive on this thread, for tests on a current-thread runtime (each
/// test has one, and so a thread, of its own): a woken slot must not
/// outlive the wake-up. Meaningless where slots move between threads.
#[cfg(any(test, feature = "test-util"))]
pub fn live_on_this_thread() -> usize {
    LIVE.with(std::cell::Cell::get)
}

#[cfg(any(test, feature = "test-util"))]
impl<P> Drop for Slot<P> {
    fn drop(&mut self) {
        LIVE.with(|live| live.set(live.get().wrapping_sub(1)));
    }
}

impl<P> Slot<P> {
    fn lock(&self) -> MutexGuard<'_, Held<P>> {
        // Nothing panics while the lock is held; a poisoned slot is as good.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Resume> Wake for Slot<P> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // A wake-up while the state is still registering is kept, so that
        // it is not lost; one after the first finds nothing to do.
        let held = std::mem::replace(&mut *self.lock(), Held::Woken);
        // Outside the lock: resuming spawns a task.
        if let Held::Parked(state) = held {
            state.resume();
        }
    }
}

/// Parks `state` in a slot of its own, unless something it waits on is
/// ready already.
pub fn park<P: Resume>(mut state: P) -> Parking<P> {
    let slot = Arc::new(Slot {
        held: Mutex::new(Held::Registering),
    });
    #[cfg(any(test, feature = "test-util"))]
    LIVE.with(|live| live.set(live.get().wrapping_add(1)));
    let waker = Waker::from(slot.clone());
    // Registered without the lock held: a registration may wake at once
    // (tokio's cooperative budget does), and that wake-up takes the lock.
    if state.poll_wake(&mut Context::from_waker(&waker)).is_ready() {
        return Parking::Here(state);
    }
    let mut held = slot.lock();
    match *held {
        // Woken during the registrations: go on here.
        Held::Woken => Parking::Here(state),
        _ => {
            *held = Held::Parked(state);
            Parking::Away
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    /// The wakers a fake session registered.
    type Registered = Arc<StdMutex<Vec<Waker>>>;
    /// How often a fake session was resumed.
    type Resumed = Arc<StdMutex<u32>>;

    /// A session that records its resumptions; its sources are the wakers
    /// it registered, which the test wakes by hand.
    struct Fake {
        /// Wakes `cx` at once while registering (as tokio's budget may).
        wake_while_registering: bool,
        registered: Registered,
        resumed: Resumed,
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

    fn fake(wake_while_registering: bool) -> (Fake, Registered, Resumed) {
        let registered = Arc::new(StdMutex::new(Vec::new()));
        let resumed = Arc::new(StdMutex::new(0));
        let session = Fake {
            wake_while_registering,
            registered: registered.clone(),
            resumed: resumed.clone(),
        };
        (session, registered, resumed)
    }

    #[test]
    fn the_first_wake_up_resumes_a_parked_session_once() {
        let (session, registered, resumed) = fake(false);
        let live = live_on_this_thread();
        assert!(matches!(park(session), Parking::Away));
        assert_eq!(live_on_this_thread(), live + 1, "in its slot");
        assert_eq!(*resumed.lock().unwrap(), 0, "parked until woken");
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
        assert_eq!(live_on_this_thread(), live, "the slot is freed");
    }

    /// A slot costs its state and the lock: the two empty states take
    /// none of the state's bytes (they use a `bool`'s spare patterns).
    #[test]
    fn a_slot_is_its_state_and_a_lock() {
        type State = ([u64; 27], bool);
        assert_eq!(std::mem::size_of::<Slot<State>>(), 224 + 8);
    }

    #[test]
    fn a_wake_up_during_the_registrations_keeps_the_session_here() {
        let (session, _registered, resumed) = fake(true);
        let Parking::Here(session) = park(session) else {
            panic!("a session woken while parking must not go away");
        };
        assert_eq!(*resumed.lock().unwrap(), 0, "not resumed elsewhere too");
        drop(session);
    }
}
