//! A cohort lock: C-TKT-TKT from Dice, Marathe & Shavit, *Lock Cohorting:
//! A General Technique for Designing NUMA Locks* (PPoPP 2012).
//!
//! A global ticket lock is held by a *node* (a cohort), not by a thread;
//! each node has a local ticket lock. A thread takes its node's local lock
//! and then, unless a node-mate handed it the global lock along with the
//! local one, the global lock. On release, if another thread of the same
//! node is waiting (the local ticket counter says so) and fewer than
//! `bound` consecutive hand-overs happened inside the node, it passes the
//! local lock *with* the global one still held; otherwise it releases the
//! global lock, then the local one. So the lock's cache lines and the data
//! it protects move between nodes at most once per `bound` + 1 critical
//! sections when every node is busy.
//!
//! Both ticket locks are FIFO, so the lock is starvation-free: a node waits
//! for at most one cohort turn of every other node, each at most
//! `bound + 1` critical sections. Ticket locks are *thread-oblivious* (any thread
//! may release them), which is what cohorting requires of the global lock.
//!
//! Waiting spins, then yields (see [`Backoff`](crate::Backoff)); like every
//! FIFO spin lock it suffers when there are more runnable threads than CPUs
//! (the next ticket holder may be descheduled), which a parking mutex does
//! not. It is a baseline, not a general-purpose mutex.

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use super::topology::current_node;
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::{Backoff, CachePadded};

/// Consecutive in-node hand-overs before the global lock must be released
/// (the paper's experiments use 64–100).
pub const DEFAULT_COHORT_BOUND: usize = 64;

const NO_NODE: usize = usize::MAX;

struct Ticket {
    next: AtomicUsize,
    serving: AtomicUsize,
}

impl Ticket {
    fn new() -> Self {
        Ticket {
            next: AtomicUsize::new(0),
            serving: AtomicUsize::new(0),
        }
    }

    /// Takes a ticket and waits for it.
    fn acquire(&self) -> usize {
        // Relaxed: taking a ticket publishes nothing; what the previous
        // holder wrote is acquired through `serving` below.
        let me = self.next.fetch_add(1, Ordering::Relaxed);
        let backoff = Backoff::new();
        // Acquire pairs with the Release store of `serving` in `release`:
        // the previous holder's critical section happens before ours.
        while self.serving.load(Ordering::Acquire) != me {
            backoff.snooze();
        }
        me
    }

    /// Serves the next ticket. Only the holder of ticket `me` calls it.
    fn release(&self, me: usize) {
        // Release pairs with the Acquire load in `acquire`.
        self.serving.store(me.wrapping_add(1), Ordering::Release);
    }

    /// Whether a thread took a ticket after `me` (a waiter exists).
    fn has_waiters(&self, me: usize) -> bool {
        // Relaxed: a hint; missing a just-arrived waiter only means the
        // global lock is released a little early.
        self.next.load(Ordering::Relaxed) != me.wrapping_add(1)
    }
}

struct Local {
    lock: Ticket,
    /// The global lock was passed along with the local one. Read and written
    /// only by the local lock's holder (Relaxed: the local lock orders it).
    global_held: AtomicBool,
    /// Consecutive in-node hand-overs so far (local-holder only, Relaxed).
    passes: AtomicUsize,
}

/// Hand-over counters of a [`CohortLock`] (see [`CohortLock::stats`]).
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

/// A NUMA-aware mutual-exclusion lock. See the [module docs](self).
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
    global: CachePadded<Ticket>,
    locals: Box<[CachePadded<Local>]>,
    bound: usize,
    /// Counters, written only by the global lock's holder (Relaxed loads
    /// and stores; the lock orders them).
    counters: CachePadded<Counters>,
    data: UnsafeCell<T>,
}

struct Counters {
    acquisitions: AtomicU64,
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
pub struct CohortGuard<'a, T> {
    lock: &'a CohortLock<T>,
    node: usize,
    ticket: usize,
    /// `!Send`, like `MutexGuard`: the release must run on the node the
    /// lock was taken on for the hand-over decision to mean anything.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a `&CohortGuard` gives only `&T`.
unsafe impl<T: Sync> Sync for CohortGuard<'_, T> {}

impl<T> CohortLock<T> {
    /// A lock over `value` for a machine of `nodes` nodes (at least one),
    /// with [`DEFAULT_COHORT_BOUND`].
    pub fn new(nodes: usize, value: T) -> Self {
        Self::with_bound(nodes, DEFAULT_COHORT_BOUND, value)
    }

    /// A lock that passes ownership inside a node at most `bound` times in
    /// a row (`0`: never, i.e. a two-level ticket lock).
    pub fn with_bound(nodes: usize, bound: usize, value: T) -> Self {
        CohortLock {
            global: CachePadded::new(Ticket::new()),
            locals: (0..nodes.max(1))
                .map(|_| {
                    CachePadded::new(Local {
                        lock: Ticket::new(),
                        global_held: AtomicBool::new(false),
                        passes: AtomicUsize::new(0),
                    })
                })
                .collect(),
            bound,
            counters: CachePadded::new(Counters {
                acquisitions: AtomicU64::new(0),
                local_handovers: AtomicU64::new(0),
                global_acquisitions: AtomicU64::new(0),
                cross_node_handovers: AtomicU64::new(0),
                last_node: AtomicUsize::new(NO_NODE),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// The number of nodes the lock was built for.
    pub fn nodes(&self) -> usize {
        self.locals.len()
    }

    /// Takes the lock on the calling thread's node
    /// ([`current_node`] modulo [`nodes`](Self::nodes)), waiting as long
    /// as needed.
    pub fn lock(&self) -> CohortGuard<'_, T> {
        let node = current_node() % self.locals.len();
        let local = &self.locals[node];
        let ticket = local.lock.acquire();
        let c = &self.counters;
        // Relaxed: `global_held` is written only under the local lock we now
        // hold, whose Acquire ordered it.
        if !local.global_held.load(Ordering::Relaxed) {
            // The global ticket need not be kept: its holder releases it
            // by serving the next one (`unlock`).
            self.global.acquire();
            bump(&c.global_acquisitions);
            let last = c.last_node.load(Ordering::Relaxed);
            if last != node && last != NO_NODE {
                bump(&c.cross_node_handovers);
            }
            c.last_node.store(node, Ordering::Relaxed);
        }
        bump(&c.acquisitions);
        CohortGuard {
            lock: self,
            node,
            ticket,
            _not_send: PhantomData,
        }
    }

    fn unlock(&self, node: usize, ticket: usize) {
        let local = &self.locals[node];
        // Relaxed: local-holder-only state.
        let passes = local.passes.load(Ordering::Relaxed);
        if passes < self.bound && local.lock.has_waiters(ticket) {
            local.passes.store(passes + 1, Ordering::Relaxed);
            local.global_held.store(true, Ordering::Relaxed);
            bump(&self.counters.local_handovers);
        } else {
            local.passes.store(0, Ordering::Relaxed);
            local.global_held.store(false, Ordering::Relaxed);
            // Relaxed: only the global holder writes `serving`.
            let g = self.global.serving.load(Ordering::Relaxed);
            self.global.release(g);
        }
        local.lock.release(ticket);
    }

    /// The hand-over counters (exact when the lock is free).
    pub fn stats(&self) -> CohortStats {
        let c = &self.counters;
        // Relaxed: statistics.
        CohortStats {
            acquisitions: c.acquisitions.load(Ordering::Relaxed),
            local_handovers: c.local_handovers.load(Ordering::Relaxed),
            global_acquisitions: c.global_acquisitions.load(Ordering::Relaxed),
            cross_node_handovers: c.cross_node_handovers.load(Ordering::Relaxed),
        }
    }

    /// Mutable access without locking (`&mut self` proves exclusivity).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The protected value.
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
        self.lock.unlock(self.node, self.ticket);
    }
}

impl<T> fmt::Debug for CohortGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohortGuard")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}
