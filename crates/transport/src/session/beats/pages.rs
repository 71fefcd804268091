//! [`Pages`]: a growable array that never moves what it holds.
//!
//! A `Vec` that doubles copies its items into a buffer twice the size and
//! frees the old one; with tens of thousands of parked sessions that old
//! buffer (hundreds of KiB) stays resident until the allocator returns it,
//! and the new one's unused half is counted by heap profilers. `Pages`
//! grows by one page of [`PAGE`] items at a time instead: it costs at most
//! its length rounded up to a page, and one spare page that it keeps so
//! that a length going back and forth across a page boundary does not
//! allocate and free a page each time.

/// Items per page (a power of two: indexing is a shift and a mask).
const PAGE_BITS: u32 = 10;
pub(super) const PAGE: usize = 1 << PAGE_BITS;

/// A growable array in pages of [`PAGE`] items; see the module docs.
#[derive(Debug)]
pub(super) struct Pages<T> {
    /// Full pages, then the partly filled one (if any), then at most one
    /// empty page.
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Pages<T> {
    fn default() -> Self {
        Pages {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Pages<T> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn push(&mut self, item: T) {
        let page = self.len >> PAGE_BITS;
        if page == self.pages.len() {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        self.pages[page].push(item);
        self.len += 1;
    }

    pub(super) fn pop(&mut self) -> Option<T> {
        let last = self.len.checked_sub(1)?;
        let item = self.pages[last >> PAGE_BITS].pop();
        self.len = last;
        // Keep one empty page past the last one in use, no more.
        self.pages.truncate(last.div_ceil(PAGE) + 1);
        item
    }

    /// Empties it, freeing every page.
    pub(super) fn clear(&mut self) {
        *self = Pages::default();
    }

    /// The item at `index`, which must be below the length.
    pub(super) fn get(&self, index: usize) -> &T {
        &self.pages[index >> PAGE_BITS][index & (PAGE - 1)]
    }

    /// The item at `index`, which must be below the length.
    pub(super) fn get_mut(&mut self, index: usize) -> &mut T {
        &mut self.pages[index >> PAGE_BITS][index & (PAGE - 1)]
    }

    /// Pages allocated (for tests).
    #[cfg(test)]
    pub(super) fn pages(&self) -> usize {
        self.pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_stay_where_they_were_put_across_pages() {
        let mut pages = Pages::default();
        for i in 0..3 * PAGE + 5 {
            pages.push(i);
        }
        assert_eq!(pages.len(), 3 * PAGE + 5);
        assert_eq!(pages.pages(), 4);
        for i in [0, 1, PAGE - 1, PAGE, 2 * PAGE + 7, 3 * PAGE + 4] {
            assert_eq!(*pages.get(i), i);
        }
        *pages.get_mut(PAGE) = 42;
        assert_eq!(*pages.get(PAGE), 42);
        for i in (3 * PAGE - 1..3 * PAGE + 5).rev() {
            assert_eq!(pages.pop(), Some(i));
        }
        assert_eq!(pages.len(), 3 * PAGE - 1);
        assert_eq!(pages.pages(), 4, "one empty page kept");
        while pages.len() > PAGE {
            pages.pop();
        }
        assert_eq!(pages.pages(), 2, "a full page and one empty page");
        pages.clear();
        assert_eq!((pages.len(), pages.pages(), pages.pop()), (0, 0, None));
    }
}
