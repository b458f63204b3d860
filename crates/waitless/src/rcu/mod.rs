//! Read-copy-update: a cell that many threads read without locks while
//! writers publish new versions of the value.
//!
//! An [`Rcu<T>`] holds a pointer to a heap-allocated `T`. Readers pin the
//! cell's epoch collector and load the pointer ([`Rcu::read`]); the returned
//! [`RcuGuard`] dereferences to the value for as long as it lives. Writers
//! never modify a published value in place: they build a new one (a copy,
//! modified, in [`Rcu::update`]; or a fresh value in [`Rcu::replace`]),
//! publish it with one atomic pointer swap, and hand the old one to the
//! collector, which drops it once every reader that could still hold it has
//! unpinned. [`Rcu::synchronize`] waits for such a grace period explicitly.
//!
//! The scheme is the userspace RCU of McKenney and Walpole (*What is RCU,
//! fundamentally?*, LWN 2007; Desnoyers et al., *User-level implementations
//! of read-copy update*, IEEE TPDS 2012), with the grace periods of
//! epoch-based reclamation ([`crate::epoch`]) standing in for quiescent
//! states. `docs/rcu.md` has the design, the grace-period argument and a
//! comparison with arc-swap and left-right.
//!
//! ```
//! use waitless::rcu::Rcu;
//!
//! #[derive(Clone)]
//! struct Config { name: String, limit: u32 }
//!
//! let cfg = Rcu::new(Config { name: "a".into(), limit: 10 });
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let c = cfg.read();           // pinned: `c` cannot be freed under us
//!         assert!(c.limit == 10 || c.limit == 11);
//!     });
//!     cfg.update(|old| Config { limit: old.limit + 1, ..old.clone() });
//! });
//! cfg.synchronize();                    // no reader still sees limit == 10
//! assert_eq!(cfg.read().limit, 11);
//! cfg.replace(Config { name: "b".into(), limit: 0 });
//! assert_eq!(cfg.read().name, "b");
//! ```
//!
//! # Progress and cost
//!
//! - [`read`](Rcu::read) is one pin of the collector (a thread-local lookup
//!   and a store to this thread's own record; on Linux no fence at all — the
//!   collector's advancer pays a `membarrier` instead, see [`crate::epoch`];
//!   elsewhere one `SeqCst` fence) plus one `Acquire` load. It never waits for anything and writes no memory that
//!   another thread writes. Every 128th pin the collector may also try to
//!   advance its epoch and run expired destructors (only when garbage is
//!   pending): that amortized work is the collector's, see [`crate::epoch`].
//! - [`update`](Rcu::update) is lock-free: its CAS fails only when another
//!   writer published in between, and then the closure runs again on the
//!   newer value. **The closure may therefore run more than once**, and
//!   every value it returned but that lost the race is dropped at once.
//! - [`replace`](Rcu::replace) is one atomic swap: wait-free apart from the
//!   collector's amortized work.
//! - [`synchronize`](Rcu::synchronize) blocks (spinning, then yielding)
//!   until the readers pinned when it was called are done.
//!
//! # Consistency
//!
//! Every read sees one whole value that was current at some moment during
//! the `read` call: never a mix of two values, never a freed one. Writes are
//! linearizable (each takes effect at its swap or successful CAS); a thread
//! that reads after its own write sees that write or a later one, and two
//! reads by one thread never go back in time.
//!
//! # Memory
//!
//! Old values wait in the collector until a grace period has passed; a
//! reader that holds a guard for a long time delays every drop in this cell
//! ([`pending`](Rcu::pending) tells how many are waiting). Each `Rcu` owns
//! its own collector, so dropping the `Rcu` drops every value it ever held
//! that was not dropped yet; each thread that uses a cell keeps a small
//! record in it until the cell is dropped.

mod ext;

#[cfg(all(test, not(loom)))]
mod tests;

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use crate::contention::Site;
use crate::epoch::{Collector, Guard};
use crate::sync::atomic::{AtomicPtr, Ordering};

/// CAS attempts of [`Rcu::update`].
static UPDATE_SITE: Site = Site::new("rcu.update");

/// A read-copy-update cell.
///
/// See the [module documentation](self) for the algorithm, the progress
/// guarantees and the consistency model.
///
/// ```
/// use waitless::rcu::Rcu;
///
/// let routes = Rcu::new(vec!["/a"]);
/// routes.update(|r| [r.as_slice(), &["/b"]].concat());
/// assert_eq!(*routes.read(), ["/a", "/b"]);
/// ```
pub struct Rcu<T> {
    /// The current value: always a valid pointer from `Box::into_raw`,
    /// owned by the cell. Replaced values go to `collector`.
    ptr: AtomicPtr<T>,
    /// This cell's reclamation domain; only values of this cell are
    /// deferred into it.
    collector: Collector,
    /// The cell owns `T`s (drop check) and must not be `Sync` just because
    /// `T` is: see the `Send`/`Sync` impls below.
    _owns: PhantomData<*mut T>,
}

// SAFETY: moving an `Rcu<T>` to another thread moves the values it owns (the
// current one and the retired ones in its collector), which may then be
// dropped there: sound because `T: Send`. The collector itself is `Send`, and
// records that other threads keep for it stay valid until it is dropped.
unsafe impl<T: Send> Send for Rcu<T> {}
// SAFETY: through `&Rcu<T>` several threads get `&T` at once (`read`), so
// `T: Sync` is needed; and a value published by one thread can be dropped by
// any thread that replaces it or that runs the collector's expired garbage
// (readers and writers do), so `T: Send` is needed too. All shared state of
// the cell is the atomic pointer and the (`Sync`) collector.
unsafe impl<T: Send + Sync> Sync for Rcu<T> {}

impl<T> Rcu<T> {
    /// A cell holding `value`.
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let cell = Rcu::new(1);
    /// assert_eq!(*cell.read(), 1);
    /// ```
    #[must_use]
    pub fn new(value: T) -> Self {
        Self {
            ptr: AtomicPtr::new(Box::into_raw(Box::new(value))),
            collector: Collector::new(),
            _owns: PhantomData,
        }
    }

    /// Pins this thread and returns the current value.
    ///
    /// The guard keeps the value alive (and every value published after
    /// it) until it is dropped; hold it briefly, because while it lives no
    /// replaced value of this cell can be dropped. Wait-free: one pin and
    /// one load. Guards are re-entrant: a thread may hold several.
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let cell = Rcu::new(String::from("v1"));
    /// let guard = cell.read();
    /// cell.replace(String::from("v2"));
    /// assert_eq!(*guard, "v1"); // the guard keeps the value it read alive
    /// drop(guard);
    /// assert_eq!(*cell.read(), "v2");
    /// ```
    #[inline]
    pub fn read(&self) -> RcuGuard<'_, T> {
        let guard = self.collector.pin();
        // Acquire pairs with the Release half of the swap in `replace` and
        // of the CAS in `update` (and with `new`, whose value is visible
        // through whatever shared `&self` with this thread): the value's
        // contents, written before it was published, are visible here.
        let ptr = self.ptr.load(Ordering::Acquire);
        RcuGuard {
            // SAFETY: `ptr` is never null (it always holds a `Box`).
            value: unsafe { NonNull::new_unchecked(ptr) },
            _guard: guard,
            _borrow: PhantomData,
        }
    }

    /// Publishes `f(current)` in place of the current value, retrying when
    /// another writer published in between.
    ///
    /// `f` receives the value current at the start of each attempt and must
    /// build the replacement from it (copy, modify). **`f` may run more than
    /// once** when writers race; the replacement values of failed attempts
    /// are dropped immediately, and `f`'s side effects happen once per
    /// attempt. If `f` panics, nothing is published. Lock-free; each retry
    /// is counted at the `rcu.update` [contention](crate::contention) site.
    ///
    /// Calling [`synchronize`](Rcu::synchronize) on the same cell from
    /// inside `f` panics (it would wait for this very call).
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let hits = Rcu::new(0u64);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| hits.update(|n| n + 1));
    ///     }
    /// });
    /// assert_eq!(*hits.read(), 4); // no update is lost
    /// ```
    pub fn update<F: FnMut(&T) -> T>(&self, mut f: F) {
        let guard = self.collector.pin();
        // Acquire: as in `read`, we dereference what we load.
        let mut cur = self.ptr.load(Ordering::Acquire);
        loop {
            // SAFETY: `cur` was loaded while `guard` pins us; a value is
            // dropped only after it is unlinked and every thread pinned at
            // that time unpinned, so it is alive for the guard's lifetime.
            let new = Box::into_raw(Box::new(f(unsafe { &*cur })));
            // Success: AcqRel. Release publishes `new`'s contents to the
            // readers' Acquire loads; Acquire pairs with the Release of the
            // swap/CAS that published `cur`, so its construction happens
            // before the drop we defer below (which may run on any thread).
            // Failure: Acquire, for the same reason as the load above.
            // No ABA: `cur` cannot be freed and its address reused while we
            // are pinned (see the SAFETY comment above).
            match self
                .ptr
                .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(old) => {
                    UPDATE_SITE.record(true);
                    // SAFETY: (1) `old` came from `Box::into_raw` and this
                    // CAS unlinked it, so no one else destroys it; (2) no
                    // thread can load it from `ptr` any more; (3) dropping a
                    // `T` on another thread is sound: the only way to share
                    // an `Rcu<T>` between threads is `Sync`, which needs
                    // `T: Send` (without it, only this thread uses the
                    // collector and runs its garbage), and `T` outlives the
                    // collector, which this cell owns.
                    unsafe { guard.defer_destroy(old) };
                    return;
                }
                Err(now) => {
                    UPDATE_SITE.record(false);
                    // SAFETY: `new` came from `Box::into_raw` above and was
                    // never published.
                    drop(unsafe { Box::from_raw(new) });
                    cur = now;
                }
            }
        }
    }

    /// Publishes `value`; the old value is dropped once no reader can still
    /// see it (at the latest when the cell is dropped).
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    /// let cell = Rcu::new(1);
    /// cell.replace(2);
    /// assert_eq!(*cell.read(), 2);
    /// ```
    pub fn replace(&self, value: T) {
        // Pin before boxing: the pin may run other values' destructors (the
        // collector's periodic work), and if one panics, `value` must still
        // be an owned `T` that unwinding drops — boxed into a raw pointer
        // first, it leaked (found by the soak test).
        let guard = self.collector.pin();
        let new = Box::into_raw(Box::new(value));
        // AcqRel: Release publishes `new` to the readers' Acquire loads;
        // Acquire pairs with the Release that published `old`, so its
        // construction happens before its deferred drop.
        let old = self.ptr.swap(new, Ordering::AcqRel);
        // SAFETY: as in `update`: `old` is a unique `Box` unlinked by this
        // swap, and dropping it elsewhere is sound for the same reasons.
        unsafe { guard.defer_destroy(old) };
    }

    /// Waits until no reader can still see a value older than the one that
    /// is current when this is called: every [`RcuGuard`] of this cell that
    /// could hold an older value has been dropped when it returns.
    ///
    /// It also hands the values this thread replaced to the collector, so
    /// that they can be dropped; they are dropped by this call or by a later
    /// collection (at the latest when the cell is dropped).
    ///
    /// It also runs every replaced value that has become safe to drop and
    /// that no other thread is dropping at that moment (see
    /// [`Collector::synchronize`]).
    ///
    /// Blocking: it spins, then yields, until the epoch has advanced twice.
    /// A guard that is never dropped (e.g. `mem::forget`) makes it wait
    /// forever.
    ///
    /// # Panics
    /// If the calling thread holds an `RcuGuard` of this cell (or calls it
    /// from inside an [`update`](Rcu::update) closure of this cell): it would
    /// wait for itself forever.
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    ///
    /// let cell = Rcu::new(vec![0u8; 1024]);
    /// cell.replace(Vec::new());
    /// cell.synchronize(); // no reader still sees the 1 KiB vector
    /// assert!(cell.read().is_empty());
    /// ```
    pub fn synchronize(&self) {
        // Relaxed: this thread's own pin word, written only by this thread.
        let pinned_here = self
            .collector
            .with_local(|p| p.epoch.load(Ordering::Relaxed) & 1 == 1)
            .unwrap_or(false);
        assert!(
            !pinned_here,
            "Rcu::synchronize called while this thread holds an RcuGuard of the \
             same Rcu (or from inside its update closure): it would wait for itself forever"
        );
        // The collector's grace period: an RMW read of the epoch, then two
        // advances; docs/rcu.md §4 has the argument (the write that replaced
        // an old value happens before this call, so a reader that can still
        // see the old value pinned with an epoch no newer than the one read
        // here, and blocks the second advance until it unpins). It also
        // seals this thread's retired values and runs every expired one.
        self.collector.synchronize();
    }

    /// Replaced values not dropped yet (an upper bound while other threads
    /// replace concurrently). Grows while a reader holds a guard for long.
    ///
    /// ```
    /// use waitless::rcu::Rcu;
    /// let cell = Rcu::new(String::from("a"));
    /// let reader = cell.read();
    /// cell.replace(String::from("b"));
    /// assert_eq!(cell.pending(), 1); // "a" waits for `reader`
    /// drop(reader);
    /// cell.synchronize();
    /// assert_eq!(cell.pending(), 0);
    /// ```
    #[must_use]
    pub fn pending(&self) -> usize {
        self.collector.pending()
    }
}

impl<T> Drop for Rcu<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means every other access to the cell already
        // happens before this one.
        let ptr = self.ptr.load(Ordering::Relaxed);
        // SAFETY: the current value is a `Box` owned by the cell and never
        // deferred; no guard can exist (they borrow the cell).
        drop(unsafe { Box::from_raw(ptr) });
        // `collector` is dropped next (also if the drop above panics): it
        // drops every replaced value it still holds, exactly once.
    }
}

impl<T: Default> Default for Rcu<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Rcu<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Rcu<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rcu")
            .field("value", &*self.read())
            .field("pending", &self.pending())
            .finish()
    }
}

/// A pinned view of one value of an [`Rcu`]; dereferences to it.
///
/// The value stays alive while the guard lives. The guard pins the calling
/// thread in the cell's collector, so it is `!Send`; and while it lives no
/// value replaced in this cell is dropped, so keep it short.
///
/// ```compile_fail
/// use waitless::rcu::Rcu;
/// fn send<T: Send>(_: T) {}
/// let cell = Rcu::new(1);
/// send(cell.read()); // error: a guard pins *this* thread
/// ```
#[must_use = "the guard is what keeps the value alive; use it or drop it"]
pub struct RcuGuard<'a, T> {
    /// Loaded while `_guard` pinned us; alive until `_guard` unpins.
    value: NonNull<T>,
    /// Dropped after `value` (field order): unpins.
    _guard: Guard<'a>,
    _borrow: PhantomData<&'a T>,
}

impl<T> Deref for RcuGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `value` was loaded from the cell while `_guard` pinned this
        // thread. It is dropped either through the collector, which waits
        // until every thread pinned when it was replaced has unpinned (we
        // are still pinned), or with the cell, which `'a` borrows.
        unsafe { self.value.as_ref() }
    }
}

impl<T: fmt::Debug> fmt::Debug for RcuGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for RcuGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
