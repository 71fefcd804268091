//! [`Queue`]: wakers by instant in 32 bytes each, for the beats of parked
//! sessions.
//!
//! Each registration takes a slot (its number is the session's key): the
//! slot's waker (16 bytes) and, while it waits, its place in the heap (4).
//! The heap is a binary min-heap of `(instant, slot)` entries of 12 bytes
//! (the instant as a [`Moment`]). Taking a beat back removes its entry at
//! once (the slot knows where it is), so nothing stale is left behind and
//! the heap holds exactly the waiting beats. All three arrays are
//! [`Pages`]: no buffer is ever copied to grow, and at most a page or two
//! of each is unused. The heap gives its pages back as it shrinks; the
//! slots (20 bytes each) stay as many as were ever taken at once, free
//! ones reused first.
//!
//! A slot is reused only once its key has come back ([`Queue::cancel`]),
//! whether its beat is still waiting (then the entry is removed) or has
//! fired: so a key never reaches a slot that is someone else's now, with
//! no generation to check. The price: a key that is dropped and never
//! given back keeps its slot (16 bytes and 4) for good. A session gives
//! its key back whenever it resumes.

use std::fmt;
use std::task::Waker;

use super::pages::Pages;
use crate::moment::Moment;

/// A slot's number: the key of its registration.
pub(super) type Slot = u32;

/// The end of the free list (and the most slots there can be).
const NO_SLOT: Slot = Slot::MAX;

/// A waiting beat in the heap: 12 bytes (4-byte aligned), ordered by
/// instant and then by slot.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C, packed(4))]
struct Due {
    at: Moment,
    slot: Slot,
}

/// Wakers by instant; see the module docs.
pub(super) struct Queue {
    /// The waiting beats, a binary min-heap.
    heap: Pages<Due>,
    /// Each slot's waker: `Some` while its beat waits; `None` once it has
    /// fired (until the key comes back) or while the slot is free.
    wakers: Pages<Option<Waker>>,
    /// A waiting slot's index in `heap`; a free slot's next free slot.
    links: Pages<u32>,
    /// The first free slot, or [`NO_SLOT`].
    free: Slot,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            heap: Pages::default(),
            wakers: Pages::default(),
            links: Pages::default(),
            free: NO_SLOT,
        }
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("waiting", &self.heap.len())
            .field("slots", &self.wakers.len())
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Beats waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Slots taken or free (for tests).
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.wakers.len()
    }

    /// The earliest waiting beat's instant.
    pub(super) fn first(&self) -> Option<Moment> {
        (!self.heap.is_empty()).then(|| self.heap.get(0).at)
    }

    /// Registers `waker` to be woken at `at`; its slot is the key (none if
    /// every slot there can be is taken).
    pub(super) fn insert(&mut self, at: Moment, waker: Waker) -> Option<Slot> {
        let slot = if self.free == NO_SLOT {
            let slot = Slot::try_from(self.wakers.len())
                .ok()
                .filter(|&s| s != NO_SLOT)?;
            self.wakers.push(Some(waker));
            self.links.push(0);
            slot
        } else {
            let slot = self.free;
            self.free = *self.links.get(slot as usize);
            *self.wakers.get_mut(slot as usize) = Some(waker);
            slot
        };
        let index = self.heap.len();
        self.heap.push(Due { at, slot });
        self.sift(index);
        Some(slot)
    }

    /// The waker of the earliest beat, if it is due at `now`: its slot
    /// stays taken until the key comes back.
    pub(super) fn pop_due(&mut self, now: Moment) -> Option<Waker> {
        if self.first()? > now {
            return None;
        }
        let slot = self.heap.get(0).slot;
        self.remove(0);
        self.wakers.get_mut(slot as usize).take()
    }

    /// Takes back the registration `slot`: removes its beat if it still
    /// waits, and frees the slot.
    pub(super) fn cancel(&mut self, slot: Slot) {
        let index = slot as usize;
        if index >= self.wakers.len() {
            return;
        }
        if self.wakers.get_mut(index).take().is_some() {
            self.remove(*self.links.get(index) as usize);
        }
        *self.links.get_mut(index) = self.free;
        self.free = slot;
    }

    /// Every waiting beat's waker, leaving none waiting (their slots stay
    /// taken until their keys come back).
    pub(super) fn take_all(&mut self) -> Vec<Waker> {
        let mut woken = Vec::with_capacity(self.heap.len());
        while let Some(due) = self.heap.pop() {
            woken.extend(self.wakers.get_mut(due.slot as usize).take());
        }
        self.heap.clear();
        woken
    }

    /// Removes the heap's entry at `index`.
    fn remove(&mut self, index: usize) {
        let Some(last) = self.heap.pop() else {
            return;
        };
        if index == self.heap.len() {
            return; // It was the last.
        }
        self.place(index, last);
        self.sift(index);
    }

    /// Puts `due` at `index` in the heap.
    fn place(&mut self, index: usize, due: Due) {
        *self.heap.get_mut(index) = due;
        *self.links.get_mut(due.slot as usize) = index as u32;
    }

    /// Moves the entry at `index` up or down to where it belongs.
    fn sift(&mut self, mut index: usize) {
        let due = *self.heap.get(index);
        while let Some(next) = self.step(index, due) {
            self.place(index, *self.heap.get(next));
            index = next;
        }
        self.place(index, due);
    }

    /// Where `due`, belonging at `index` or above or below it, goes next:
    /// its parent's place if that is later, else its earlier child's if
    /// that is earlier.
    fn step(&self, index: usize, due: Due) -> Option<usize> {
        let parent = index.checked_sub(1).map(|i| i / 2);
        if let Some(parent) = parent.filter(|&p| *self.heap.get(p) > due) {
            return Some(parent);
        }
        let len = self.heap.len();
        let first = 2 * index + 1;
        if first >= len {
            return None;
        }
        let second = first + 1;
        let child = if second < len && *self.heap.get(second) < *self.heap.get(first) {
            second
        } else {
            first
        };
        (*self.heap.get(child) < due).then_some(child)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    /// A waker that logs its number when woken.
    struct Tag(usize, Arc<Mutex<Vec<usize>>>);

    impl Wake for Tag {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    /// A small deterministic generator (xorshift).
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn twelve_byte_entries() {
        assert_eq!(std::mem::size_of::<Due>(), 12);
        assert_eq!(std::mem::size_of::<Option<Waker>>(), 16);
    }

    /// Random registrations, take-backs (of waiting and of fired beats)
    /// and sweeps, against an ordered map: the same beats fire in the
    /// same order, and slots are reused.
    #[test]
    fn fires_as_an_ordered_map_would() {
        let start = Instant::now();
        let moment = |t: u64| Moment::new(start + Duration::from_millis(t));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut queue = Queue::default();
        // What should wait: (instant, slot) -> waker number.
        let mut model = BTreeMap::new();
        // Keys not given back yet: (slot, whether it still waits).
        let mut keys: Vec<(Slot, u64)> = Vec::new();
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
        let mut now = 0;
        let mut most_keys = 0;
        for n in 0..20_000 {
            match dice.below(10) {
                0..=4 => {
                    // Few distinct instants: many ties.
                    let at = now + dice.below(50);
                    let waker = Waker::from(Arc::new(Tag(n, log.clone())));
                    let slot = queue.insert(moment(at), waker).unwrap();
                    assert!(model.insert((at, slot), n).is_none(), "slot in use");
                    keys.push((slot, at));
                }
                5..=7 if !keys.is_empty() => {
                    let (slot, at) = keys.swap_remove(dice.below(keys.len() as u64) as usize);
                    model.remove(&(at, slot));
                    queue.cancel(slot);
                }
                _ => {
                    now += dice.below(10);
                    let mut expected = Vec::new();
                    while let Some(entry) = model.first_entry() {
                        if entry.key().0 > now {
                            break;
                        }
                        expected.push(entry.remove());
                    }
                    while let Some(waker) = queue.pop_due(moment(now)) {
                        waker.wake();
                    }
                    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), expected);
                }
            }
            most_keys = most_keys.max(keys.len());
            assert_eq!(queue.len(), model.len());
            assert_eq!(
                queue.first(),
                model.keys().next().map(|&(at, _)| moment(at))
            );
        }
        assert!(queue.wakers.len() <= most_keys, "slots are reused");
        let left = queue.take_all();
        assert_eq!(left.len(), model.len());
        assert_eq!(queue.len(), 0);
        for (slot, _) in keys {
            queue.cancel(slot);
        }
        assert_eq!(queue.heap.pages(), 0);
    }
}
