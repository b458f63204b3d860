//! A lock-free Treiber stack with elimination backoff and per-stack epoch
//! reclamation.
//!
//! The stack is a singly linked list whose head is swung with a CAS
//! (Treiber, *Systems programming: coping with parallelism*, IBM RJ 5118,
//! 1986). Popped nodes are retired into the stack's own
//! [`Collector`], so a node is never freed — and
//! its address never reused — while a thread that may still hold it is
//! pinned: the ABA problem cannot occur (see `docs/stack.md`). Under
//! contention, a push and a pop whose head CAS failed may meet in a small
//! elimination array and cancel out without touching the head (Hendler,
//! Shavit, Yerushalmi, SPAA 2004).
//!
//! ```
//! use waitless::stack::LockFreeStack;
//!
//! let stack = LockFreeStack::new();
//! stack.push(1).unwrap();
//! stack.push(2).unwrap();
//! let guard = stack.enter();
//! assert_eq!(stack.pop(&guard), Some(2));
//! assert_eq!(stack.pop(&guard), Some(1));
//! assert_eq!(stack.pop(&guard), None);
//! ```
//!
//! # Progress and consistency
//!
//! `push` and `pop` are lock-free: a CAS on the head fails only because
//! another operation succeeded, and an elimination wait is bounded. Both
//! are linearizable (checked against `waitless_check::StackModel`): a push at
//! its successful head CAS (or just before the pop that takes its offer), a
//! pop at its successful head CAS or elimination take, an empty pop at the
//! load that read a null head.
//!
//! # Memory
//!
//! Nodes are allocated with `std::alloc`; if the allocator fails, `push`
//! returns [`StackError::OutOfMemory`] with the value. A popped node is
//! retired into the popping thread's record in the stack's collector and
//! becomes reusable by that thread's pushes once the epoch has advanced
//! twice past it (the node cache: bounded, see [`NODE_CACHE_BYTES`] and
//! [`cached_node_bytes`]); dropping the stack drops every value still in it
//! exactly once and frees every node and per-thread record.
//!
mod elimination;
mod ext;
mod node;
pub use ext::Drain;

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr;

use crate::contention::Site;
use crate::epoch::{Collector, Guard, Participant};
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::CachePadded;
pub(crate) use elimination::{slot_hint, Elimination};
use node::{alloc_node, dealloc_node, next, node_layout, set_next, Node};

/// Bytes of popped node blocks kept for reuse by the calling thread's next
/// pushes, summed over the live stacks it uses: the node cache. At most
/// [`NODE_CACHE_BYTES`] per stack per thread; returned to the allocator when
/// the thread exits, and when the stack is dropped.
///
/// ```
/// use waitless::stack::{cached_node_bytes, LockFreeStack};
/// let s = LockFreeStack::new();
/// s.push(1u64).unwrap();
/// drop(s);
/// assert_eq!(cached_node_bytes(), 0); // dropping a stack returns this thread's cache
/// ```
pub fn cached_node_bytes() -> usize {
    crate::epoch::thread_free_bytes()
}

/// The most bytes of popped node blocks one thread keeps for reuse per
/// stack (and at least 16 nodes, whatever their size).
///
/// A thread's cache starts at 64 KiB. It grows towards this bound only
/// when the thread's push finds it empty while the thread's own popped
/// nodes still wait out their grace period: the epoch is held back, as when
/// a thread is descheduled while pinned (more threads than CPUs). It then
/// grows to the size of that waiting backlog, so that when the backlog
/// expires it is kept for the next such wait instead of going back to the
/// allocator. Those blocks were allocated anyway while they waited: the
/// cache keeps at most the largest backlog the thread has seen. It stays at
/// that size until the thread exits or the stack is dropped, and
/// [`cached_node_bytes`] reports it.
///
/// ```
/// use waitless::stack::{cached_node_bytes, LockFreeStack, NODE_CACHE_BYTES};
/// let s = LockFreeStack::new();
/// for i in 0..100_000u64 {
///     s.push(i).unwrap();
/// }
/// let g = s.enter();
/// while s.pop(&g).is_some() {}
/// drop(g);
/// for _ in 0..3 {
///     s.advance_epoch(); // end the popped nodes' grace period
/// }
/// assert!(cached_node_bytes() <= NODE_CACHE_BYTES); // the rest went to the allocator
/// ```
pub const NODE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The node cache's starting bound per stack per thread (see
/// [`NODE_CACHE_BYTES`]).
#[cfg(all(test, not(loom)))]
const NODE_CACHE_START_BYTES: usize = crate::epoch::POOL_FREE_BYTES;

/// The node cache's bound under its earlier, per-size-class name.
///
/// ```
/// #[allow(deprecated)]
/// let old = waitless::stack::NODE_CACHE_CLASS_BYTES;
/// assert_eq!(old, waitless::stack::NODE_CACHE_BYTES);
/// ```
#[deprecated(note = "the node cache is per stack now: use `NODE_CACHE_BYTES`")]
pub const NODE_CACHE_CLASS_BYTES: usize = NODE_CACHE_BYTES;

static PUSH_SITE: Site = Site::new("stack.push");
static POP_SITE: Site = Site::new("stack.pop");

/// Statistics counter slots in each epoch participant record. A pop that
/// unlinks a node from the head retires it into the record's pool, whose
/// retirement count (`Collector::sum_retired`) is the count of those pops:
/// only pops by elimination need a counter of their own.
const PUSHES: usize = 0;
const ELIMINATED_POPS: usize = 1;
const RETRIES: usize = 2;

crate::utils::value_error! {
    /// The stack's error: the push could not allocate a node. Carries the value.
    enum StackError {
        /// The allocator failed; here is the value back.
        OutOfMemory => "out of memory: could not allocate a stack node",
    }
}

/// A snapshot of a stack's counters. Counts are summed over per-thread
/// records without stopping anyone, so they are exact only when no operation
/// is in flight.
///
/// ```
/// use waitless::stack::LockFreeStack;
///
/// let s = LockFreeStack::new();
/// s.push(1).unwrap();
/// s.push(2).unwrap();
/// assert_eq!(s.pop(&s.enter()), Some(2));
/// let st = s.stats();
/// assert_eq!((st.successful_pushes, st.successful_pops, st.active_nodes), (2, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Values in the stack (exact when quiescent).
    pub active_nodes: usize,
    /// Popped nodes waiting for the epoch to free them.
    pub retired_nodes: usize,
    /// The stack's global epoch.
    pub current_epoch: usize,
    /// Pops that returned a value.
    pub successful_pops: u64,
    /// Pushes that succeeded.
    pub successful_pushes: u64,
    /// Failed head CAS attempts (push and pop).
    pub retry_count: u64,
}

/// Construction options for [`LockFreeStack::with_config`].
///
/// ```
/// use waitless::stack::{LockFreeStack, StackConfig};
///
/// let s: LockFreeStack<u32> = LockFreeStack::with_config(StackConfig {
///     elimination: false,
///     ..StackConfig::default()
/// });
/// s.push(1).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackConfig {
    /// Use the elimination array after a failed head CAS (default `true`).
    pub elimination: bool,
    /// Keep the per-thread operation counters behind [`StackStats`]
    /// (default `true`). Without them `successful_*` and `retry_count` read
    /// zero and `active_nodes` is counted by walking the list.
    pub statistics: bool,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            elimination: true,
            statistics: true,
        }
    }
}

/// A lock-free LIFO stack. See the [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use waitless::stack::LockFreeStack;
///
/// let stack = Arc::new(LockFreeStack::new());
/// let workers: Vec<_> = (0..4)
///     .map(|t| {
///         let stack = Arc::clone(&stack);
///         std::thread::spawn(move || {
///             for i in 0..100 {
///                 stack.push(t * 100 + i).unwrap();
///             }
///         })
///     })
///     .collect();
/// for w in workers {
///     w.join().unwrap();
/// }
/// assert_eq!(stack.drain().count(), 400);
/// ```
pub struct LockFreeStack<T> {
    head: CachePadded<AtomicPtr<Node<T>>>,
    elimination: Elimination<T>,
    config: StackConfig,
    /// Dropped by hand in `Drop`, after the list is emptied: it runs every
    /// retired node's deferred free and frees every per-thread record.
    collector: ManuallyDrop<Collector>,
    _owns: PhantomData<T>,
}

// SAFETY: the stack owns its `T`s; moving it to another thread moves them,
// so `T: Send` is required and sufficient (node memory and the collector
// are `Send`).
unsafe impl<T: Send> Send for LockFreeStack<T> {}
// SAFETY: through `&LockFreeStack` a thread can push a `T` that another
// thread pops, i.e. `T`s move between threads (`T: Send`); no `&T` is ever
// handed out, so `T: Sync` is not needed. All shared state is atomic, and
// node contents are published with Release/Acquire (see the orderings).
unsafe impl<T: Send> Sync for LockFreeStack<T> {}

/// A pinned section on one stack, from [`LockFreeStack::enter`]. Nodes this
/// thread may see are not freed while it lives. `!Send`:
///
/// ```compile_fail
/// let s = waitless::stack::LockFreeStack::<u8>::new();
/// let g = s.enter();
/// std::thread::scope(|sc| {
///     sc.spawn(move || drop(g));
/// });
/// ```
#[must_use]
pub struct EpochGuard<'a, T> {
    guard: Guard<'a>,
    _stack: PhantomData<&'a LockFreeStack<T>>,
}

impl<T> fmt::Debug for EpochGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochGuard").finish_non_exhaustive()
    }
}

impl<T> LockFreeStack<T> {
    /// An empty stack with elimination and statistics on.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s: LockFreeStack<String> = LockFreeStack::new();
    /// assert!(s.pop(&s.enter()).is_none());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(StackConfig::default())
    }

    /// An empty stack with the given options.
    ///
    /// ```
    /// use waitless::stack::{LockFreeStack, StackConfig};
    /// let s: LockFreeStack<u32> =
    ///     LockFreeStack::with_config(StackConfig { elimination: false, ..Default::default() });
    /// s.push(3).unwrap();
    /// assert_eq!(s.pop(&s.enter()), Some(3));
    /// ```
    #[must_use]
    pub fn with_config(config: StackConfig) -> Self {
        Self {
            head: CachePadded::new(AtomicPtr::new(ptr::null_mut())),
            elimination: Elimination::new(),
            config,
            collector: ManuallyDrop::new(Collector::with_pool_max(NODE_CACHE_BYTES)),
            _owns: PhantomData,
        }
    }

    /// Pins the current thread on this stack. Hold the guard across a batch
    /// of pops to pay for pinning once; holding it for long delays the
    /// freeing of popped nodes (see [`StackStats::retired_nodes`]).
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s: LockFreeStack<u32> = (0..100).collect();
    /// let guard = s.enter(); // pin once for many pops
    /// let mut n = 0;
    /// while s.pop(&guard).is_some() {
    ///     n += 1;
    /// }
    /// assert_eq!(n, 100);
    /// ```
    #[inline]
    pub fn enter(&self) -> EpochGuard<'_, T> {
        EpochGuard {
            guard: self.collector.pin(),
            _stack: PhantomData,
        }
    }

    /// Pushes `value`. Fails only when a node cannot be allocated, and then
    /// gives `value` back.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    /// let s = LockFreeStack::new();
    /// assert!(s.push("a").is_ok());
    /// ```
    #[inline]
    pub fn push(&self, value: T) -> Result<(), StackError<T>> {
        self.push_with(value, || {
            self.config.elimination.then_some(&self.elimination)
        })
    }

    /// [`push`](Self::push) with the elimination array chosen by `eliminate`,
    /// which runs only after a failed head CAS (`None`: no elimination). The
    /// hook through which `numa::NodeAwareStack` uses its node's array.
    #[inline(always)]
    pub(crate) fn push_with<'e>(
        &self,
        value: T,
        eliminate: impl Fn() -> Option<&'e Elimination<T>>,
    ) -> Result<(), StackError<T>>
    where
        T: 'e,
    {
        let rec = self.collector.local_participant();
        let block = match rec {
            Some(p) => {
                // Counted before the push is done, and taken back below if
                // the node cannot be allocated: one test of `rec` on the
                // fast path and no test of `config.statistics` (when it is
                // off, `stats` reads no counter, so counting is harmless).
                // Counts are exact only when no operation is in flight
                // (`StackStats`).
                p.count(PUSHES, 1);
                // SAFETY: this thread owns its record.
                unsafe { p.take_block() }
            }
            None => ptr::null_mut(),
        };
        // SAFETY: `block` is null or a recycled block of this stack's pool,
        // whose blocks all have `Node<T>`'s layout.
        let node = match unsafe { alloc_node(value, block) } {
            Ok(node) => node,
            Err(value) => return Err(Self::push_failed(rec, value)),
        };
        // Relaxed: the pusher never dereferences the head it links to.
        let head = self.head.load(Ordering::Relaxed);
        // SAFETY: `node` is fresh or recycled, unpublished: this thread has
        // exclusive access to it.
        unsafe { set_next(node, head) };
        // Release pairs with the Acquire head load in `pop` (directly or
        // through the release sequence of later RMWs on the head): a
        // popper that reads `node` sees its value and `next`.
        match self
            .head
            .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
        {
            Ok(_) => PUSH_SITE.record(true),
            Err(now) => {
                PUSH_SITE.record(false);
                self.push_contended(rec, node, now, eliminate);
            }
        }
        Ok(())
    }

    /// A push whose node could not be allocated: takes back its count.
    #[cold]
    #[inline(never)]
    fn push_failed(rec: Option<&Participant>, value: T) -> StackError<T> {
        if let Some(p) = rec {
            p.uncount(PUSHES, 1);
        }
        StackError::OutOfMemory(value)
    }

    /// The rest of a push whose first head CAS failed (the head was `head`
    /// then): elimination offers and CAS retries until `node` is pushed or
    /// taken. Out of line, so that the uncontended path stays short.
    /// Counts the failed head CASes in `rec` (this thread's record, if
    /// any).
    #[cold]
    #[inline(never)]
    fn push_contended<'e>(
        &self,
        rec: Option<&Participant>,
        node: *mut Node<T>,
        mut head: *mut Node<T>,
        eliminate: impl Fn() -> Option<&'e Elimination<T>>,
    ) where
        T: 'e,
    {
        let mut retries = 1u64;
        // Counted here, out of line, so that the fast path keeps no flag
        // for it.
        let count = |retries| {
            if self.config.statistics {
                if let Some(p) = rec {
                    p.count(RETRIES, retries);
                }
            }
        };
        loop {
            if eliminate().is_some_and(|e| e.offer(node, slot_hint())) {
                return count(retries);
            }
            // SAFETY: `node` is unpublished (the CAS failed, or the offer
            // was withdrawn), so this thread still has exclusive access.
            unsafe { set_next(node, head) };
            // Release: as in `push_with`.
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    PUSH_SITE.record(true);
                    return count(retries);
                }
                Err(now) => {
                    PUSH_SITE.record(false);
                    retries += 1;
                    head = now;
                }
            }
        }
    }

    /// Pops the most recently pushed value, or `None` if the stack is empty.
    ///
    /// # Panics
    /// If `guard` comes from another stack's [`enter`](Self::enter).
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    /// let s = LockFreeStack::new();
    /// s.push(7).unwrap();
    /// let g = s.enter();
    /// assert_eq!(s.pop(&g), Some(7));
    /// ```
    #[inline]
    pub fn pop(&self, guard: &EpochGuard<'_, T>) -> Option<T> {
        self.pop_with(guard, || {
            self.config.elimination.then_some(&self.elimination)
        })
    }

    /// [`pop`](Self::pop) with the elimination array chosen by `eliminate`
    /// (see [`push_with`](Self::push_with)).
    #[inline(always)]
    pub(crate) fn pop_with<'e>(
        &self,
        guard: &EpochGuard<'_, T>,
        eliminate: impl Fn() -> Option<&'e Elimination<T>>,
    ) -> Option<T>
    where
        T: 'e,
    {
        assert!(
            ptr::eq(guard.guard.collector(), &*self.collector),
            "LockFreeStack::pop: the guard was created by another stack's `enter()`; \
             use a guard from this stack"
        );
        // The guard's record, by value: the contended path below gets it
        // (and the collector, the same as `self.collector`, checked above)
        // in registers, so the guard itself need not be stored in memory.
        let p = guard.guard.participant();
        let c = &*self.collector;
        // Acquire pairs with the Release CAS in `push`: the node's value
        // and `next` are visible.
        let head = self.head.load(Ordering::Acquire);
        let result = if head.is_null() {
            None
        } else {
            // SAFETY: `head` was read from the stack while this thread is
            // pinned (by `guard`), so it is not freed or reused until we
            // unpin even if another thread pops it now.
            let next = unsafe { next(head) };
            // Relaxed on success: we read only `head`'s value, already made
            // visible by the Acquire load above; the next popper that reads
            // `next` from the head synchronizes with `next`'s pusher through
            // the release sequence (this CAS is an RMW).
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    POP_SITE.record(true);
                    // SAFETY: the CAS unlinked `head`, under `guard`, whose
                    // record is `p`, in `c`.
                    Some(unsafe { unlinked(c, p, head) })
                }
                Err(_) => {
                    POP_SITE.record(false);
                    let (value, retries) = self.pop_contended(p, eliminate);
                    if self.config.statistics {
                        p.count(RETRIES, retries);
                    }
                    value
                }
            }
        };
        // No pop counter here: a pop that unlinked a node was counted by
        // `unlinked`'s retirement (see `ELIMINATED_POPS`).
        result
    }

    /// The rest of a pop whose first head CAS failed: elimination takes and
    /// CAS retries. Out of line, so that the uncontended path stays short.
    /// Returns the value (if any) and the number of failed head CASes.
    /// `p` is the record of the caller's guard of this stack (which pins
    /// this thread for the whole call).
    #[cold]
    #[inline(never)]
    fn pop_contended<'e>(
        &self,
        p: &Participant,
        eliminate: impl Fn() -> Option<&'e Elimination<T>>,
    ) -> (Option<T>, u64)
    where
        T: 'e,
    {
        let mut retries = 1u64;
        loop {
            if let Some(e) = eliminate() {
                if let Some(node) = e.take(slot_hint()) {
                    // SAFETY: `take` gave us exclusive ownership of an
                    // offered node whose value is visible (Acquire take /
                    // Release offer).
                    let value = unsafe { take_value(node) };
                    // SAFETY: exclusive and never published to the head: no
                    // other thread dereferences it, or ever read its address
                    // from the stack; this thread owns the guard's record;
                    // the value was moved out and the link is initialized.
                    unsafe { p.recycle_block(node.cast::<u8>(), node_layout::<T>()) };
                    if self.config.statistics {
                        p.count(ELIMINATED_POPS, 1);
                    }
                    return (Some(value), retries);
                }
            }
            // Acquire: as in `pop_with`.
            let head = self.head.load(Ordering::Acquire);
            if head.is_null() {
                return (None, retries);
            }
            // SAFETY: as in `pop_with`: read under the caller's pin.
            let next = unsafe { next(head) };
            // Relaxed: as in `pop_with`.
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    POP_SITE.record(true);
                    // SAFETY: the CAS unlinked `head`, under the caller's
                    // guard, whose record is `p`, in this stack's collector.
                    return (Some(unsafe { unlinked(&self.collector, p, head) }), retries);
                }
                Err(_) => {
                    POP_SITE.record(false);
                    retries += 1;
                }
            }
        }
    }

    /// Seals this thread's retired nodes, advances the epoch if every pinned
    /// thread has observed the current one, and frees the nodes that became
    /// safe. Calling it twice with no thread pinned frees everything this
    /// thread retired.
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s = LockFreeStack::new();
    /// s.push(1).unwrap();
    /// assert_eq!(s.pop(&s.enter()), Some(1));
    /// s.advance_epoch();
    /// s.advance_epoch();
    /// s.advance_epoch();
    /// assert_eq!(s.stats().retired_nodes, 0); // the popped node is freed
    /// ```
    pub fn advance_epoch(&self) {
        self.collector.flush();
    }

    /// The stack's counters (see [`StackStats`]).
    ///
    /// ```
    /// use waitless::stack::LockFreeStack;
    ///
    /// let s = LockFreeStack::new();
    /// s.push(1).unwrap();
    /// s.push(2).unwrap();
    /// assert_eq!(s.pop(&s.enter()), Some(2));
    /// let st = s.stats();
    /// assert_eq!((st.successful_pushes, st.successful_pops, st.active_nodes), (2, 1, 1));
    /// ```
    #[must_use]
    pub fn stats(&self) -> StackStats {
        let (pushes, pops, retries) = if self.config.statistics {
            (
                self.collector.sum_counter(PUSHES),
                self.collector
                    .sum_retired()
                    .wrapping_add(self.collector.sum_counter(ELIMINATED_POPS)),
                self.collector.sum_counter(RETRIES),
            )
        } else {
            (0, 0, 0)
        };
        let active_nodes = if self.config.statistics {
            pushes.saturating_sub(pops) as usize
        } else {
            self.count_nodes()
        };
        StackStats {
            active_nodes,
            retired_nodes: self.collector.pending(),
            current_epoch: self.collector.epoch(),
            successful_pops: pops,
            successful_pushes: pushes,
            retry_count: retries,
        }
    }

    /// Walks the list under a pin.
    fn count_nodes(&self) -> usize {
        let _g = self.enter();
        let mut n = 0;
        // Acquire: as in `pop`.
        let mut cur = self.head.load(Ordering::Acquire);
        while !cur.is_null() {
            n += 1;
            // SAFETY: pinned: nodes reachable now are not freed meanwhile;
            // `next` is immutable once published.
            cur = unsafe { next(cur) };
        }
        n
    }
}

/// Takes the value out of `head`, which this thread's successful pop CAS
/// just unlinked, and retires the node into `p`, this thread's record in
/// `c`.
///
/// # Safety
/// 1. This thread's CAS unlinked `head` from the stack whose collector is
///    `c`, while a guard of `c` whose record is `p` was alive, and that
///    guard is alive now.
#[inline(always)]
unsafe fn unlinked<T>(c: &Collector, p: &Participant, head: *mut Node<T>) -> T {
    // SAFETY: precondition 1: the successful CAS unlinked `head`: this
    // thread alone moves its value out, exactly once.
    let value = unsafe { take_value(head) };
    // SAFETY: the value was moved out; the node is unlinked, so only
    // threads pinned now may still hold it (and only load its atomic link),
    // and the pool reuses it only after they unpin. It has `Node<T>`'s
    // layout, like every block retired into this stack's collector, and
    // starts with its link. Precondition 1: `p` is the record of a live
    // guard of `c` on this thread.
    unsafe { c.retire_block_pinned(p, head.cast::<u8>(), node_layout::<T>()) };
    value
}

/// Moves the value out of `node`.
///
/// # Safety
/// 1. The caller owns the node's value exclusively and takes it once.
#[inline]
unsafe fn take_value<T>(node: *mut Node<T>) -> T {
    // SAFETY: precondition 1.
    unsafe { ManuallyDrop::take(&mut (*node).value) }
}

impl<T> Default for LockFreeStack<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for LockFreeStack<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFreeStack")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T> Drop for LockFreeStack<T> {
    fn drop(&mut self) {
        debug_assert!(self.elimination.is_idle());
        // `&mut self`: no other thread can access the stack.
        let head = self.head.load(Ordering::Relaxed);
        self.head.store(ptr::null_mut(), Ordering::Relaxed);
        /// Drops the collector after the list, also when a value's drop
        /// panics in `drop_list` (unwinding runs this guard).
        struct FinishCollector<'a>(&'a mut ManuallyDrop<Collector>);
        impl Drop for FinishCollector<'_> {
            fn drop(&mut self) {
                // SAFETY: dropped once, here (the guard is created once, in
                // the stack's `drop`), and the stack never uses it again.
                unsafe { ManuallyDrop::drop(self.0) };
            }
        }
        // This thread's cached nodes of this stack go back to the allocator
        // through its own record, so that its `cached_node_bytes` count
        // stays exact (the collector's drop frees the other records').
        if let Some(p) = self.collector.local_participant() {
            // SAFETY: this thread owns its record; `&mut self`: no guard of
            // this stack is alive.
            unsafe { p.free_cached_blocks() };
        }
        let finish = FinishCollector(&mut self.collector);
        // SAFETY: we own every node of the list exclusively.
        unsafe { drop_list(head) };
        drop(finish);
    }
}

/// Drops every value in the list starting at `cur` and frees its nodes. If a
/// value's destructor panics, the rest is still dropped and freed while
/// unwinding (a second panic aborts, as for any destructor).
///
/// # Safety
/// 1. The caller owns the whole list exclusively.
unsafe fn drop_list<T>(mut cur: *mut Node<T>) {
    struct Rest<T>(*mut Node<T>);
    impl<T> Drop for Rest<T> {
        fn drop(&mut self) {
            // SAFETY: the remaining list is still exclusively ours.
            unsafe { drop_list(self.0) }
        }
    }
    while !cur.is_null() {
        // SAFETY: precondition 1.
        let next = unsafe { next(cur) };
        // SAFETY: precondition 1: we own the value and take it once.
        let value = unsafe { take_value(cur) };
        // SAFETY: value moved out; node exclusively ours.
        unsafe { dealloc_node(cur) };
        let rest = Rest(next);
        drop(value);
        core::mem::forget(rest);
        cur = next;
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
