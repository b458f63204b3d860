//! Collection conveniences for [`LockFreeStack`]: approximate `len` /
//! `is_empty`, `FromIterator`, `Extend` and a draining iterator, all built on
//! the stack's public operations (`push`, `pop`, `enter`, `stats`).

use core::fmt;

use super::{EpochGuard, LockFreeStack};

impl<T> LockFreeStack<T> {
    /// The number of values in the stack: exact when no operation runs
    /// concurrently, otherwise a value the stack held at some recent moment
    /// (it is computed from per-thread counters, or by walking the list when
    /// statistics are off — see [`StackStats`](super::StackStats)).
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s: LockFreeStack<u32> = (0..3).collect();
    /// assert_eq!(s.len(), 3);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.stats().active_nodes
    }

    /// Whether the stack is empty; approximate under concurrency like
    /// [`len`](Self::len).
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s = LockFreeStack::new();
    /// assert!(s.is_empty());
    /// s.push(1).unwrap();
    /// assert!(!s.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pops values until the stack is found empty, most recent first. The
    /// iterator pins the stack's epoch while it lives (so nodes popped
    /// meanwhile are not freed until it is dropped): consume it, don't park it.
    /// Values pushed concurrently may be yielded too.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s: LockFreeStack<u32> = (1..=3).collect();
    /// assert_eq!(s.drain().collect::<Vec<_>>(), [3, 2, 1]);
    /// assert!(s.is_empty());
    /// ```
    pub fn drain(&self) -> Drain<'_, T> {
        Drain {
            stack: self,
            guard: self.enter(),
        }
    }
}

/// Iterator returned by [`LockFreeStack::drain`]: pops until empty.
///
/// ```
/// use waitless::stack::LockFreeStack;
///
/// let s: LockFreeStack<u8> = [1, 2].into_iter().collect();
/// let mut d = s.drain();
/// assert_eq!(d.next(), Some(2));
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Drain<'a, T> {
    stack: &'a LockFreeStack<T>,
    guard: EpochGuard<'a, T>,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.stack.pop(&self.guard)
    }
}

impl<T> fmt::Debug for Drain<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").finish_non_exhaustive()
    }
}

impl<T> FromIterator<T> for LockFreeStack<T> {
    /// Pushes every value in order, so the last one is on top.
    ///
    /// # Panics
    /// If a node cannot be allocated (like `Vec`'s `FromIterator`, which
    /// aborts); use [`LockFreeStack::push`] to handle that case.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s: LockFreeStack<&str> = ["a", "b"].into_iter().collect();
    /// assert_eq!(s.pop(&s.enter()), Some("b"));
    /// ```
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut stack = Self::new();
        stack.extend(iter);
        stack
    }
}

impl<T> Extend<T> for &LockFreeStack<T> {
    /// Pushes every value in order through a shared reference (other threads
    /// may use the stack meanwhile).
    ///
    /// # Panics
    /// If a node cannot be allocated; use [`LockFreeStack::push`] to handle
    /// that case.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s = LockFreeStack::new();
    /// (&s).extend([1, 2]);
    /// assert_eq!(s.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            if self.push(v).is_err() {
                panic!("LockFreeStack::extend: out of memory allocating a node");
            }
        }
    }
}

impl<T> Extend<T> for LockFreeStack<T> {
    /// Pushes every value in order.
    ///
    /// # Panics
    /// If a node cannot be allocated.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let mut s = LockFreeStack::new();
    /// s.extend(0..10);
    /// assert_eq!(s.len(), 10);
    /// ```
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn collect_len_drain_round_trip() {
        let n = if cfg!(miri) { 20 } else { 1000 };
        let s: LockFreeStack<usize> = (0..n).collect();
        assert_eq!(s.len(), n);
        let drained: Vec<usize> = s.drain().collect();
        assert_eq!(drained, (0..n).rev().collect::<Vec<_>>());
        assert!(s.is_empty());
        (&s).extend([7, 8]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn concurrent_drains_take_each_value_once() {
        let n = if cfg!(miri) { 40 } else { 4000 };
        let s: LockFreeStack<usize> = (0..n).collect();
        let (a, b) = std::thread::scope(|sc| {
            let a = sc.spawn(|| s.drain().collect::<Vec<_>>());
            let b = sc.spawn(|| s.drain().collect::<Vec<_>>());
            (a.join().unwrap(), b.join().unwrap())
        });
        let mut all: Vec<usize> = a.into_iter().chain(b).collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
}
