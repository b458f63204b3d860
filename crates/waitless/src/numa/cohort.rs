//! A cohort lock: C-BO-BO from Dice, Marathe & Shavit, *Lock Cohorting:
//! A General Technique for Designing NUMA Locks* (PPoPP 2012).
//!
//! A global lock is held by a *node* (a cohort), not by a thread; each node
//! has a local lock. A thread takes its node's local lock and then, unless a
//! node-mate handed it the global lock along with the local one, the global
//! lock. On release, if another thread of the same node is waiting for the
//! local lock (a per-node count of waiters says so) and fewer than `bound`
//! consecutive hand-overs happened inside the node, it releases only the
//! local lock, leaving the global one held for the node-mate that takes the
//! local lock next; otherwise it releases the global lock, then the local
//! one. So the lock's cache lines and the data it protects move between
//! nodes at most once per `bound + 1` critical sections when every node is
//! busy.
//!
//! Both levels are test-and-set locks with exponential backoff (the
//! paper's "BO" locks): any thread may release them (*thread-oblivious*, as
//! cohorting requires of the global lock) and, unlike ticket locks, they do
//! not hand the lock to a waiter that the OS has descheduled, so they keep
//! working when there are more runnable threads than CPUs. The price is
//! fairness: a node may wait for the global lock more than one turn of the
//! others (in-node passing is still bounded by `bound`). Waiting spins, then
//! yields (see [`Backoff`](crate::Backoff)). A lock built for one node skips
//! the global level, which could never be contended there.

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use super::topology::node_hint;
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::{Backoff, CachePadded};

/// Consecutive in-node hand-overs before the global lock must be released
/// (the paper's experiments use 64–100).
///
/// ```
/// use waitless::numa::{CohortLock, DEFAULT_COHORT_BOUND};
/// let l = CohortLock::new(2, 0u32);
/// assert_eq!(DEFAULT_COHORT_BOUND, 64);
/// *l.lock() += 1;
/// assert_eq!(*l.lock(), 1);
/// ```
pub const DEFAULT_COHORT_BOUND: usize = 64;

const NO_NODE: usize = usize::MAX;

/// A test-and-set lock word.
struct TasLock {
    locked: AtomicBool,
}

impl TasLock {
    fn new() -> Self {
        TasLock {
            locked: AtomicBool::new(false),
        }
    }

    #[inline]
    fn try_acquire(&self) -> bool {
        // Acquire pairs with the Release store in `release`: the previous
        // holder's critical section happens before ours.
        !self.locked.load(Ordering::Relaxed)
            && self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Waits for the lock; `waiting`, if given, counts this thread as a
    /// waiter while it waits.
    #[inline]
    fn acquire(&self, waiting: Option<&AtomicUsize>) {
        if !self.try_acquire() {
            self.acquire_slow(waiting);
        }
    }

    #[cold]
    fn acquire_slow(&self, waiting: Option<&AtomicUsize>) {
        if let Some(w) = waiting {
            // Relaxed: a hint for the holder's hand-over decision; the lock
            // itself is taken with Acquire.
            w.fetch_add(1, Ordering::Relaxed);
        }
        let backoff = Backoff::new();
        while !self.try_acquire() {
            backoff.snooze();
        }
        if let Some(w) = waiting {
            // Relaxed: as above.
            w.fetch_sub(1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn release(&self) {
        // Release pairs with the Acquire CAS in `try_acquire`.
        self.locked.store(false, Ordering::Release);
    }
}

struct Local {
    lock: TasLock,
    /// Threads of this node waiting for `lock` (the cohort-detection hint).
    waiting: AtomicUsize,
    /// The global lock was left held for the next local holder. Read and
    /// written only by the local lock's holder (Relaxed: the local lock
    /// orders it).
    global_held: AtomicBool,
    /// Consecutive in-node hand-overs so far (local-holder only, Relaxed).
    passes: AtomicUsize,
}

/// Hand-over counters of a [`CohortLock`] (see [`CohortLock::stats`]).
///
/// ```
/// use waitless::numa::CohortLock;
/// let l = CohortLock::new(2, 0u32);
/// *l.lock() += 1;
/// let st = l.stats();
/// assert_eq!(st.acquisitions, 1);
/// assert_eq!(st.local_handovers + st.global_acquisitions, 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CohortStats {
    /// Critical sections entered.
    pub acquisitions: u64,
    /// Hand-overs that passed the global lock inside a node.
    pub local_handovers: u64,
    /// Times a node took the global lock.
    pub global_acquisitions: u64,
    /// Global acquisitions by a node other than the previous holder's: the
    /// lock (and the data it protects) crossed nodes.
    pub cross_node_handovers: u64,
}

/// A NUMA-aware mutual-exclusion lock. See the [module docs](crate::numa).
///
/// ```
/// use waitless::numa::CohortLock;
/// let lock = CohortLock::new(2, 0u64);
/// std::thread::scope(|s| {
///     for node in 0..2 {
///         let lock = &lock;
///         s.spawn(move || {
///             waitless::numa::set_node_override(Some(node));
///             for _ in 0..100 {
///                 *lock.lock() += 1;
///             }
///         });
///     }
/// });
/// assert_eq!(lock.into_inner(), 200);
/// ```
pub struct CohortLock<T> {
    global: CachePadded<TasLock>,
    locals: Box<[CachePadded<Local>]>,
    bound: usize,
    /// Counters, written only by the global lock's holder (Relaxed loads
    /// and stores; the lock orders them).
    counters: CachePadded<Counters>,
    data: UnsafeCell<T>,
}

struct Counters {
    local_handovers: AtomicU64,
    global_acquisitions: AtomicU64,
    cross_node_handovers: AtomicU64,
    last_node: AtomicUsize,
}

fn bump(c: &AtomicU64) {
    // Relaxed load + store, not an RMW: only the lock holder writes.
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

// SAFETY: the lock hands out `&mut T` to one thread at a time, so sharing
// it between threads moves `T` between them: `T: Send` suffices, as for
// `std::sync::Mutex`. Everything else is atomics.
unsafe impl<T: Send> Sync for CohortLock<T> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<T: Send> Send for CohortLock<T> {}

/// Exclusive access to a [`CohortLock`]'s data; releases on drop.
///
/// ```
/// use waitless::numa::CohortLock;
/// let l = CohortLock::new(2, vec![1]);
/// let mut g = l.lock();
/// g.push(2);
/// assert_eq!(g.len(), 2);
/// ```
#[must_use]
pub struct CohortGuard<'a, T> {
    lock: &'a CohortLock<T>,
    node: usize,
    /// `!Send`, like `MutexGuard`: the release must run on the node the
    /// lock was taken on for the hand-over decision to mean anything.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a `&CohortGuard` gives only `&T`.
unsafe impl<T: Sync> Sync for CohortGuard<'_, T> {}

impl<T> CohortLock<T> {
    /// A lock over `value` for a machine of `nodes` nodes (at least one),
    /// with [`DEFAULT_COHORT_BOUND`].
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// let l = CohortLock::new(4, 5u8);
    /// assert_eq!(l.nodes(), 4);
    /// assert_eq!(*l.lock(), 5);
    /// ```
    #[must_use]
    pub fn new(nodes: usize, value: T) -> Self {
        Self::with_bound(nodes, DEFAULT_COHORT_BOUND, value)
    }

    /// A lock that passes ownership inside a node at most `bound` times in
    /// a row (`0`: never, i.e. a plain two-level lock).
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// // bound 0: never passes the lock inside a node
    /// let l = CohortLock::with_bound(2, 0, 0u32);
    /// *l.lock() += 1;
    /// assert_eq!(l.stats().local_handovers, 0);
    /// ```
    #[must_use]
    pub fn with_bound(nodes: usize, bound: usize, value: T) -> Self {
        CohortLock {
            global: CachePadded::new(TasLock::new()),
            locals: (0..nodes.max(1))
                .map(|_| {
                    CachePadded::new(Local {
                        lock: TasLock::new(),
                        waiting: AtomicUsize::new(0),
                        global_held: AtomicBool::new(false),
                        passes: AtomicUsize::new(0),
                    })
                })
                .collect(),
            bound,
            counters: CachePadded::new(Counters {
                local_handovers: AtomicU64::new(0),
                global_acquisitions: AtomicU64::new(0),
                cross_node_handovers: AtomicU64::new(0),
                last_node: AtomicUsize::new(NO_NODE),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// The number of nodes the lock was built for.
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// assert_eq!(CohortLock::new(0, ()).nodes(), 1); // at least one
    /// ```
    #[must_use]
    pub fn nodes(&self) -> usize {
        self.locals.len()
    }

    /// Takes the lock on the calling thread's node
    /// ([`current_node`](super::current_node) modulo
    /// [`nodes`](Self::nodes); the OS answer is re-read every 64 calls,
    /// an override applies at once), waiting as long as needed.
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// let l = CohortLock::new(2, 0u64);
    /// std::thread::scope(|s| {
    ///     for _ in 0..2 {
    ///         s.spawn(|| *l.lock() += 1);
    ///     }
    /// });
    /// assert_eq!(*l.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> CohortGuard<'_, T> {
        let n = self.locals.len();
        let c = &self.counters;
        if n == 1 {
            // One cohort: the global level could never be contended, so it
            // is skipped; the local lock is the whole lock.
            self.locals[0].lock.acquire(None);
            bump(&c.global_acquisitions);
            return CohortGuard {
                lock: self,
                node: 0,
                _not_send: PhantomData,
            };
        }
        let node = node_hint() % n;
        let local = &self.locals[node];
        local.lock.acquire(Some(&local.waiting));
        // Relaxed: `global_held` is written only under the local lock we now
        // hold, whose Acquire ordered it.
        if !local.global_held.load(Ordering::Relaxed) {
            self.global.acquire(None);
            bump(&c.global_acquisitions);
            let last = c.last_node.load(Ordering::Relaxed);
            if last != node && last != NO_NODE {
                bump(&c.cross_node_handovers);
            }
            c.last_node.store(node, Ordering::Relaxed);
        }
        CohortGuard {
            lock: self,
            node,
            _not_send: PhantomData,
        }
    }

    #[inline]
    fn unlock(&self, node: usize) {
        let local = &self.locals[node];
        if self.locals.len() == 1 {
            local.lock.release();
            return;
        }
        // Relaxed: local-holder-only state; `waiting` is a hint (a waiter
        // that arrives just after we look makes us release the global lock
        // a little early, which is safe).
        let passes = local.passes.load(Ordering::Relaxed);
        if passes < self.bound && local.waiting.load(Ordering::Relaxed) > 0 {
            local.passes.store(passes + 1, Ordering::Relaxed);
            local.global_held.store(true, Ordering::Relaxed);
            bump(&self.counters.local_handovers);
        } else {
            local.passes.store(0, Ordering::Relaxed);
            local.global_held.store(false, Ordering::Relaxed);
            self.global.release();
        }
        local.lock.release();
    }

    /// The hand-over counters (exact when the lock is free).
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// let l = CohortLock::new(2, ());
    /// drop(l.lock());
    /// drop(l.lock());
    /// assert_eq!(l.stats().acquisitions, 2);
    /// ```
    #[must_use]
    pub fn stats(&self) -> CohortStats {
        let c = &self.counters;
        // Relaxed: statistics.
        let local_handovers = c.local_handovers.load(Ordering::Relaxed);
        let global_acquisitions = c.global_acquisitions.load(Ordering::Relaxed);
        CohortStats {
            acquisitions: local_handovers + global_acquisitions,
            local_handovers,
            global_acquisitions,
            cross_node_handovers: c.cross_node_handovers.load(Ordering::Relaxed),
        }
    }

    /// Mutable access without locking (`&mut self` proves exclusivity).
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// let mut l = CohortLock::new(2, 1u8);
    /// *l.get_mut() = 7;
    /// assert_eq!(*l.lock(), 7);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The protected value.
    ///
    /// ```
    /// use waitless::numa::CohortLock;
    /// let l = CohortLock::new(2, String::from("x"));
    /// assert_eq!(l.into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: Default> Default for CohortLock<T> {
    /// A lock for the running machine's nodes over `T::default()`.
    fn default() -> Self {
        Self::new(super::Topology::current().num_nodes(), T::default())
    }
}

impl<T> fmt::Debug for CohortLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohortLock")
            .field("nodes", &self.nodes())
            .field("bound", &self.bound)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T> Deref for CohortGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this thread holds the lock (local and,
        // through the cohort, global), so no `&mut T` exists elsewhere.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for CohortGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for CohortGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock(self.node);
    }
}

impl<T> fmt::Debug for CohortGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohortGuard")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}
