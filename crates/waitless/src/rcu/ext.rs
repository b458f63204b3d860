//! Conveniences for [`Rcu`]: exclusive access (`get_mut`, `into_inner`),
//! an owned read (`load`) and an update that returns the value it replaced
//! (`fetch_update`, like arc-swap's `rcu` and std's `fetch_update`).

use core::mem::ManuallyDrop;

use super::Rcu;
use crate::sync::atomic::Ordering;

impl<T> Rcu<T> {
    /// The current value, mutably: `&mut self` proves no reader or writer
    /// exists, so no copy is needed.
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let mut cell = Rcu::new(vec![1]);
    /// cell.get_mut().push(2);
    /// assert_eq!(*cell.read(), [1, 2]);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // Relaxed: `&mut self` orders every earlier access before this one.
        let ptr = self.ptr.load(Ordering::Relaxed);
        // SAFETY: `ptr` is the cell's current value, a live `Box` owned by
        // the cell and never deferred; `&mut self` excludes every guard
        // (guards borrow the cell) and every other access for the borrow.
        unsafe { &mut *ptr }
    }

    /// Consumes the cell and returns its current value; replaced values
    /// still waiting for readers are dropped now (none can exist).
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let cell = Rcu::new(String::from("a"));
    /// cell.replace(String::from("b"));
    /// assert_eq!(cell.into_inner(), "b");
    /// ```
    pub fn into_inner(self) -> T {
        let this = ManuallyDrop::new(self);
        // Relaxed: we own the cell; see `get_mut`.
        let ptr = this.ptr.load(Ordering::Relaxed);
        // SAFETY: the collector is read out exactly once and `this` is never
        // used or dropped afterwards (ManuallyDrop), so it is dropped once,
        // here, which drops every replaced value it still holds.
        drop(unsafe { core::ptr::read(&this.collector) });
        // SAFETY: `ptr` is the current value: a `Box` owned by the cell and
        // never deferred; the cell's `Drop` will not run (ManuallyDrop), so
        // this is its only release.
        *unsafe { Box::from_raw(ptr) }
    }

    /// A clone of the current value (an owned read: no guard to hold).
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let cell = Rcu::new(5);
    /// let v: i32 = cell.load();
    /// cell.replace(6);
    /// assert_eq!(v, 5);
    /// ```
    #[must_use]
    pub fn load(&self) -> T
    where
        T: Clone,
    {
        T::clone(&self.read())
    }

    /// Like [`update`](Rcu::update), and returns a clone of the value that
    /// the published one replaced. `f` may run more than once when writers
    /// race (as in `update`); the clone is taken of the value each attempt
    /// saw, and the one returned is that of the attempt that won.
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let counter = Rcu::new(1u64);
    /// assert_eq!(counter.fetch_update(|v| v + 1), 1);
    /// assert_eq!(*counter.read(), 2);
    /// ```
    pub fn fetch_update<F: FnMut(&T) -> T>(&self, mut f: F) -> T
    where
        T: Clone,
    {
        let mut previous = None;
        self.update(|cur| {
            // The attempt whose CAS wins is the last one to run `f`, and
            // its `cur` is the value it replaced.
            previous = Some(cur.clone());
            f(cur)
        });
        previous.expect("update runs its closure at least once")
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn into_inner_drops_replaced_values_once_and_returns_the_current() {
        let ledger = waitless_check::DropLedger::new(4);
        let cell = Rcu::new(ledger.track(0));
        cell.replace(ledger.track(1));
        cell.replace(ledger.track(2));
        let last = cell.into_inner();
        assert_eq!(ledger.dropped(), 2);
        drop(last);
        ledger.assert_all_dropped();
    }

    #[test]
    fn fetch_update_returns_each_previous_value_once() {
        let threads = 4;
        let per = if cfg!(miri) { 10 } else { 1000 };
        let cell = Rcu::new(0u64);
        let mut seen: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        (0..per)
                            .map(|_| cell.fetch_update(|v| v + 1))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        seen.sort_unstable();
        assert_eq!(seen, (0..threads * per).collect::<Vec<_>>());
        assert_eq!(cell.load(), threads * per);
    }
}
