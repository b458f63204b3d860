//! A wait-free bounded MPMC queue.
//!
//! [`WaitFreeQueue`] is a bounded multi-producer multi-consumer FIFO queue in
//! which **every** `enqueue` and `dequeue` finishes within a number of its own
//! steps bounded by a function of the number of thread records `k` (see
//! [`verification::enqueue_step_bound`]), however the threads are scheduled.
//! There is no retry loop that another thread can keep failing, no give-up,
//! and no sleeping.
//!
//! # Algorithm
//!
//! A ring of `capacity` slot words in which fast and slow operations agree
//! on the word itself (the design issue #11 sketched):
//!
//! * Each slot word is `stamp | u | tid | cell`: the stamp says which
//!   ticket the slot waits for and whether it is empty or full, `cell` is
//!   the index of the value cell in it. Values live in `capacity + k` cells;
//!   each operation holds one *spare* cell, so an enqueue writes its value
//!   into its spare first and then publishes it with **one CAS** that swaps
//!   the spare into the slot (a dequeue swaps its empty spare in and takes
//!   the full cell). Helpers move only indices; only the owner of a cell
//!   reads or writes the value in it.
//! * `tail`/`head` are ticket counters used as **hints**: every ticket
//!   below a counter is done, and fewer than `W = 8` past it are (no
//!   fetch-and-add, so no ticket is ever burned). The **fast path** reads
//!   the counter once and scans the slots from there (eight words per
//!   cache line) for the first ticket not done; it fills that slot with
//!   one CAS, or decides `Full` (the slot still holds the element of
//!   ticket `y − capacity`) or `None` (the slot still waits for the
//!   enqueue of `y`) from that read. A fill that loses its CAS moves on to
//!   the next slot; the counter is moved (by CAS) once per line of `W`
//!   tickets, so most operations touch one contended line, as in
//!   `crossbeam`'s `ArrayQueue`. The fast path is lock-free on its own.
//! * After `P = 8` failed attempts an operation **announces** itself in its
//!   record and bumps a global `pending` count; every operation that starts
//!   while `pending ≠ 0` first helps each announced request to its answer.
//!   Helpers claim a ticket for the request in its answer word, fill the
//!   slot with `u = 1, tid = r` by the same single-word CAS a fast operation
//!   uses, and any thread *finalizes* a `u = 1` word from the word alone
//!   (commit the answer, then clear `u`). Nobody advances a ticket past, or
//!   decides `Full`/`None` from, a `u = 1` word.
//!
//! The proofs of linearizability and of the step bound
//! ([`verification::enqueue_step_bound`], `44k² + 117k + 273` for `k`
//! records, independent of the capacity) are in `docs/wait-free-queue.md`.
//!
//! # Threads
//!
//! Any number of threads may use a queue, over its life and at once. A
//! thread keeps one of the queue's first `base` records (the initial
//! chunk) across its operations on that queue, so its usual operation
//! neither claims nor releases anything; the record is given back when the
//! thread exits, or after 64 operations in a row on other queues (the
//! thread then keeps a record of the queue it now uses). Any other
//! operation claims one of the queue's `K` thread records for its own
//! duration (one CAS, normally on the record the thread used last; a
//! thread-local hint, no registry and no per-queue search) and keeps or
//! releases it when it returns. When every record is taken (kept ones
//! count as taken), the claimer adds a chunk of `K` more (allocating only
//! then, at most 12 times per queue), so no thread panics or waits because
//! the records are taken.
//! [`WaitFreeQueue::new`] starts with [`DEFAULT_THREADS`] records;
//! [`WaitFreeQueue::with_threads`] picks the initial count. The step bound is
//! a function of `K` ([`verification::records`]).
//!
//! # Progress and consistency
//!
//! Wait-free (bounded); linearizable. `len` is the number of filled minus
//! consumed tickets, each found by scanning at most `W` slots from its
//! counter, from a read in which the tail side did not move (at most three
//! tries), clamped to `0..=capacity`; it is exact when no operation is in
//! flight.
//!
//! # Limits
//!
//! Capacity at most 2^20. At most 4096 records: with more than 4096
//! operations inside one queue at once (or 4096 − `base` when idle threads
//! keep the `base` records of the initial chunk; records are kept only
//! when `base ≤ 2048`), a claim cycles through the records until one is
//! free (lock-free, not wait-free, for that claim). Tickets,
//! stamps and sequence numbers wrap freely; a thread preempted between
//! reading a slot word and its CAS while that slot is reused 2^29 times, or
//! while one record runs 2^40 requests, could act on a stale view (the
//! classic ABA bound of tagged words). Needs 64-bit atomics.
//!
//! ```
//! use waitless::queue::{QueueError, WaitFreeQueue};
//! let q = WaitFreeQueue::new(2);
//! q.enqueue(1).unwrap();
//! q.enqueue(2).unwrap();
//! assert!(matches!(q.enqueue(3), Err(QueueError::Full(3))));
//! assert_eq!(q.dequeue(), Some(1));
//! assert_eq!(q.len(), 1);
//! ```

mod ring;
pub mod verification;
// --- proof reports (issue 19)
#[cfg(not(loom))]
mod prove;

use std::cell::Cell;
use std::fmt;
use std::mem::MaybeUninit;

use self::ring::{Claim, Kind, Record, Ring, Start, MAX_CAPACITY, MAX_RECORDS};
#[cfg(not(loom))]
use self::ring::{Held, Keeper};
use self::verification::Steps;
use crate::sync::atomic::{AtomicPtr, Ordering::*};
use crate::sync::UnsafeCell;

/// The initial thread-record count of [`WaitFreeQueue::new`] (records are
/// added when more operations than this run at once; there is no limit on
/// the number of threads).
///
/// ```
/// use std::sync::Arc;
/// use waitless::queue::{WaitFreeQueue, DEFAULT_THREADS};
///
/// // More threads than DEFAULT_THREADS may use one queue: records are added.
/// let q = Arc::new(WaitFreeQueue::new(1024));
/// let hs: Vec<_> = (0..DEFAULT_THREADS + 2)
///     .map(|t| {
///         let q = Arc::clone(&q);
///         std::thread::spawn(move || q.enqueue(t).unwrap())
///     })
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(q.len(), DEFAULT_THREADS + 2);
/// ```
pub const DEFAULT_THREADS: usize = 8;

crate::utils::value_error! {
    /// The error of [`WaitFreeQueue::enqueue`]: the queue held `capacity`
    /// elements. The value is given back.
    enum QueueError {
        /// The queue was full; here is the value.
        Full => "the queue is full",
    }
}

/// A wait-free bounded MPMC FIFO queue; see the [module docs](self).
///
/// ```
/// use waitless::queue::WaitFreeQueue;
///
/// let q = WaitFreeQueue::new(8);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         for i in 0..4 {
///             q.enqueue(i).unwrap();
///         }
///     });
/// });
/// let out: Vec<i32> = std::iter::from_fn(|| q.dequeue()).collect();
/// assert_eq!(out, [0, 1, 2, 3]); // FIFO
/// ```
pub struct WaitFreeQueue<T> {
    ring: Ring,
    /// `capacity + K` value cells: `capacity + base` here, the spares of the
    /// records of chunk `j ≥ 1` in `more_cells[j]` (null until the chunk is
    /// added). A cell is initialised exactly while it is in a ring slot
    /// between an applied enqueue and the applied dequeue of that slot's
    /// ticket, or while it is a spare whose owner is between writing a value
    /// and taking it back (in `enqueue`) or between being answered and
    /// reading it (in `dequeue`).
    cells: Box<[UnsafeCell<MaybeUninit<T>>]>,
    more_cells: CellChunks<T>,
}

/// The added cell chunks; frees them when the queue is dropped (after the
/// queue's own `drop` dropped the values, even if a `T::drop` panicked).
struct CellChunks<T> {
    ptrs: Box<[AtomicPtr<UnsafeCell<MaybeUninit<T>>>]>,
    /// The initial record count (chunk `j ≥ 1` has `base << (j − 1)` cells).
    base: usize,
}

impl<T> Drop for CellChunks<T> {
    fn drop(&mut self) {
        for (j, p) in self.ptrs.iter().enumerate().skip(1) {
            let p = p.load(Relaxed);
            if !p.is_null() {
                let n = self.base << (j - 1);
                // SAFETY: `&mut self` (the queue is being dropped): `p` is
                // the leaked boxed slice of `n` cells made by `add_cells(j)`,
                // freed exactly once here. The cells hold no values any more
                // (the queue's `drop` dropped those), and `MaybeUninit` does
                // not drop.
                unsafe { drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n))) };
            }
        }
    }
}

// SAFETY: the queue moves `T` values between threads (enqueued on one,
// dequeued on another), so `T: Send` is required and sufficient: no `&T` is
// ever handed out, and each value is accessed by one thread at a time (the
// owner of its cell), so `T: Sync` is not needed for either impl.
unsafe impl<T: Send> Send for WaitFreeQueue<T> {}
// SAFETY: see above; every shared access goes through atomics in `Ring`, and
// cell accesses are exclusive by the ownership protocol argued in `enqueue`
// and `dequeue`.
unsafe impl<T: Send> Sync for WaitFreeQueue<T> {}

impl<T> fmt::Debug for WaitFreeQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFreeQueue")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("threads", &self.ring.records())
            .finish()
    }
}

crate::sync::thread_local! {
    /// The record this thread used last (any queue): the first record its
    /// next claim tries. A hint only; `usize::MAX` = not yet set.
    // Not `const { .. }`: loom's `thread_local!` does not accept it.
    #[allow(clippy::missing_const_for_thread_local)]
    static HINT: Cell<usize> = Cell::new(usize::MAX);
}

#[cfg(not(loom))]
std::thread_local! {
    /// The record this thread keeps across its operations on one queue
    /// (`ring::Held`). `const` and without drop glue, so the fast path
    /// reaches it with one thread-pointer-relative access (no registration
    /// or liveness check) where thread-locals are native; given back at
    /// thread exit by `GIVE_BACK`'s destructor, which owns what the record
    /// needs (`ring::Keeper`), as `HELD` may be freed first on targets
    /// without native thread-locals. Not under loom, whose threads share the OS thread's
    /// thread-locals: the loom models drive `Held` explicitly.
    static HELD: Held = const { Held::new() };
    /// Registered (first touched) by the first operation that keeps a
    /// record; its destructor gives that record back when the thread exits.
    static GIVE_BACK: GiveBackAtExit = const { GiveBackAtExit(Keeper::new()) };
}

/// The thread-exit hook of `HELD` (which has no destructor of its own): it
/// owns what the kept record needs (`ring::Keeper`), so the hand-back works
/// whether or not `HELD` still exists when it runs.
#[cfg(not(loom))]
struct GiveBackAtExit(Keeper);

#[cfg(not(loom))]
impl Drop for GiveBackAtExit {
    fn drop(&mut self) {
        // With native thread-locals `HELD` is never destroyed, so it is
        // still there. Without them (a boxed value behind an OS key) it may
        // have been freed already, and `try_with` then fails or makes a
        // fresh, empty one: the `Keeper` gives the record back either way.
        // An operation run by a later destructor finds `GIVE_BACK` gone and
        // does not keep its record.
        if HELD.try_with(|h| self.0.give_back(Some(h))).is_err() {
            self.0.give_back(None);
        }
    }
}

impl<T> WaitFreeQueue<T> {
    /// A queue holding at most `capacity` elements, starting with
    /// [`DEFAULT_THREADS`] thread records (any number of threads may use it).
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two, or is above 2^20.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::<u8>::new(8);
    /// assert_eq!(q.capacity(), 8);
    /// ```
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::with_threads(capacity, DEFAULT_THREADS)
    }

    /// A queue holding at most `capacity` elements, starting with `threads`
    /// thread records rounded up to a power of two (records are added when
    /// more operations run at once; the step bound grows linearly in the
    /// record count).
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two or is above 2^20, or `threads` is
    /// not in `1..=4096`.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::<u8>::with_threads(4, 2);
    /// assert!(q.is_empty());
    /// ```
    #[must_use]
    pub fn with_threads(capacity: usize, threads: usize) -> Self {
        Self::build(capacity, threads, false, true)
    }

    pub(crate) fn build(
        capacity: usize,
        threads: usize,
        yield_hooks: bool,
        fast_path: bool,
    ) -> Self {
        Self::build_at(capacity, threads, yield_hooks, fast_path, Start::default())
    }

    /// `build` with the counters starting at `start` (tests start them next
    /// to their wrap points).
    pub(crate) fn build_at(
        capacity: usize,
        threads: usize,
        yield_hooks: bool,
        fast_path: bool,
        start: Start,
    ) -> Self {
        assert!(
            capacity.is_power_of_two(),
            "WaitFreeQueue capacity must be a power of two, got {capacity}"
        );
        assert!(
            capacity <= MAX_CAPACITY,
            "WaitFreeQueue capacity must be at most {MAX_CAPACITY}, got {capacity}"
        );
        assert!(
            (1..=MAX_RECORDS).contains(&threads),
            "WaitFreeQueue thread count must be in 1..={MAX_RECORDS}, got {threads}"
        );
        let base_log2 = threads.next_power_of_two().trailing_zeros();
        let mut ring = Ring::new(capacity, base_log2, start);
        ring.slow_below = if fast_path { 0 } else { usize::MAX };
        #[cfg(feature = "step-count")]
        {
            ring.yield_hooks = yield_hooks;
        }
        #[cfg(not(feature = "step-count"))]
        let _ = yield_hooks;
        let cells = (0..capacity + ring.base())
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        let more_cells = CellChunks {
            ptrs: (0..ring.max_chunks())
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            base: ring.base(),
        };
        Self {
            ring,
            cells,
            more_cells,
        }
    }

    #[cfg(feature = "step-count")]
    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The number of cells chunk `j ≥ 1` holds (its record count).
    fn cell_chunk_len(&self, j: usize) -> usize {
        self.ring.base() << (j - 1)
    }

    /// Cell `c` (one step when it is in an added chunk: the chunk pointer).
    #[inline]
    fn cell(&self, c: usize, steps: &mut Steps) -> &UnsafeCell<MaybeUninit<T>> {
        if let Some(cell) = self.cells.get(c) {
            return cell;
        }
        let r = c - self.capacity();
        let (j, i) = self.ring.locate(r);
        // Acquire: pairs with the Release CAS in `add_cells`; the cell index
        // reached us through a record of chunk `j`, published after it.
        let p = self.more_cells.ptrs[j].load(Acquire);
        steps.tick(1);
        assert!(
            !p.is_null(),
            "waitless queue: cell {c} used before its chunk"
        );
        // SAFETY: a non-null pointer came from `add_cells(j)`: a leaked boxed
        // slice of `cell_chunk_len(j) > i` cells, freed only in `Drop`
        // (`&mut self`), so the reference cannot outlive it.
        unsafe { &*p.add(i) }
    }

    /// Makes the cells of record chunk `j` exist (before the records do).
    fn add_cells(&self, j: usize) {
        // Acquire: as in `cell`.
        if !self.more_cells.ptrs[j].load(Acquire).is_null() {
            return;
        }
        let fresh: Box<[UnsafeCell<MaybeUninit<T>>]> = (0..self.cell_chunk_len(j))
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        let mine = Box::into_raw(fresh) as *mut UnsafeCell<MaybeUninit<T>>;
        // Release: publishes the new cells (pairs with the Acquire in `cell`).
        if self.more_cells.ptrs[j]
            .compare_exchange(std::ptr::null_mut(), mine, Release, Relaxed)
            .is_err()
        {
            // SAFETY: `mine` was made just above and never published.
            unsafe { drop(self.cell_chunk_box(j, mine)) };
        }
    }

    /// # Safety
    ///
    /// `p` came from `add_cells(j)` and the caller owns it (never published,
    /// or the queue is being dropped).
    unsafe fn cell_chunk_box(
        &self,
        j: usize,
        p: *mut UnsafeCell<MaybeUninit<T>>,
    ) -> Box<[UnsafeCell<MaybeUninit<T>>]> {
        let n = self.cell_chunk_len(j);
        // SAFETY: by the caller's contract `p` starts a boxed slice of `n`
        // cells that nobody else owns.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) }
    }

    /// The most elements the queue holds.
    ///
    /// ```
    /// use waitless::queue::WaitFreeQueue;
    ///
    /// assert_eq!(WaitFreeQueue::<u8>::new(16).capacity(), 16);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.cells.len() - self.ring.base()
    }

    /// The number of elements; see the module docs on consistency. Never
    /// above `capacity`.
    ///
    /// ```
    /// use waitless::queue::WaitFreeQueue;
    ///
    /// let q = WaitFreeQueue::new(4);
    /// q.enqueue('a').unwrap();
    /// q.enqueue('b').unwrap();
    /// assert_eq!(q.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// `len() == 0`.
    ///
    /// ```
    /// use waitless::queue::WaitFreeQueue;
    ///
    /// let q = WaitFreeQueue::new(2);
    /// assert!(q.is_empty());
    /// q.enqueue(1).unwrap();
    /// assert!(!q.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len() == capacity()`.
    ///
    /// ```
    /// use waitless::queue::WaitFreeQueue;
    ///
    /// let q = WaitFreeQueue::new(1);
    /// q.enqueue(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Appends `value`, or gives it back in [`QueueError::Full`] when the
    /// queue holds `capacity` elements at the operation's linearization
    /// point. Wait-free.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::new(1);
    /// assert!(q.enqueue("a").is_ok());
    /// assert_eq!(q.enqueue("b").unwrap_err().into_inner(), "b");
    /// ```
    #[inline(always)]
    pub fn enqueue(&self, value: T) -> Result<(), QueueError<T>> {
        let mut steps = Steps::default();
        let (rec, me, held) = self.begin(&mut steps);
        let out = self.enqueue_at(rec, me, value, &mut steps);
        self.end(rec, me, held);
        out
    }

    /// Removes the oldest element, or `None` when the queue is empty at the
    /// operation's linearization point. Wait-free.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::new(4);
    /// assert_eq!(q.dequeue(), None::<u8>);
    /// q.enqueue(5).unwrap();
    /// assert_eq!(q.dequeue(), Some(5));
    /// ```
    #[inline(always)]
    pub fn dequeue(&self) -> Option<T> {
        let mut steps = Steps::default();
        let (rec, me, held) = self.begin(&mut steps);
        let out = self.dequeue_at(rec, me, &mut steps);
        self.end(rec, me, held);
        out
    }

    /// Starts an operation: a record of this thread, the one it keeps for
    /// this queue if any (no claim; then also `true`, to be passed to
    /// `end`), else one claimed for this operation (`claim_record`). The
    /// operation itself runs no user code, but a signal handler may run an
    /// operation on this thread in the middle of it: the kept record is
    /// marked in use (`Held::enter`) until `end`, so that operation claims
    /// another record.
    ///
    /// `begin`, the operation and `end` are straight-line code in
    /// `enqueue`/`dequeue` (no closure), so that the whole fast path is
    /// inlined into the caller; the claim paths are out of line.
    #[inline(always)]
    fn begin(&self, steps: &mut Steps) -> (usize, &Record, bool) {
        // Only the address of this thread's `Held` comes out of `try_with`.
        #[cfg(not(loom))]
        if let Ok(h) = HELD.try_with(|h| h as *const Held) {
            // SAFETY: `HELD` of this thread exists now (`try_with`
            // succeeded) and is freed at the earliest when the thread exits
            // (never, with native thread-locals: no drop glue; on targets
            // without them, by its OS key's destructor at thread exit),
            // which cannot happen before this operation returns: thread-exit
            // destructors run one after another on this thread. A signal
            // handler on this thread may use it meanwhile, but only through
            // `&Held` too (`Held` is made of `Cell`s; `enter` and `keep`
            // handle that).
            let h = unsafe { &*h };
            if let Some((r, me)) = self.ring.enter_held(h) {
                // SAFETY: `me` is `Held::ptr`, which only `keep` sets, to
                // `&first[r]` of the queue whose chunk 0 the `Keeper` it
                // filled keeps alive. That allocation is alive now: `keep`
                // refills `Held` and the `Keeper` only while `key` is not
                // `BUSY` (we hold the mark), and `Keeper::give_back` runs
                // only in the thread-exit guard's destructor, never during
                // an operation (a signal handler runs no TLS destructor).
                // `Ring::enter_held` found `me` inside `self.ring.first`,
                // also alive: two live allocations do not overlap, so
                // `me` is record `r` of `self.ring.first`, which lives as
                // long as `self`: the reference may have `self`'s lifetime.
                let me = unsafe { &*me };
                // The record's chunk pointer, counted as `Ring::rec` counts
                // it for a chunk-0 record (one bound for both paths).
                steps.tick(1);
                return (r, me, true);
            }
        }
        let (r, me) = self.claim_record(steps);
        (r, me, false)
    }

    /// Ends the operation `begin` started on `record`: unmarks the kept
    /// record, or keeps the claimed one for this thread's next operations
    /// (`ring::Held`) or releases it.
    #[inline(always)]
    fn end(&self, record: usize, me: &Record, held: bool) {
        if held {
            // `HELD` again rather than a `&Held` carried through the
            // operation: a thread-pointer-relative store, no register.
            #[cfg(not(loom))]
            let _ = HELD.try_with(|h| self.ring.leave_held(h, me));
            #[cfg(loom)]
            let _ = me;
        } else {
            self.done_with_claimed(record);
        }
    }

    /// A record claimed for one operation, and its chunk-0 reference.
    #[inline(never)]
    fn claim_record(&self, steps: &mut Steps) -> (usize, &Record) {
        let record = self.acquire(steps);
        (record, self.ring.rec(record, steps))
    }

    /// The operation on the claimed `record` returned: keep the record for
    /// this thread's next operations (`ring::Held`) or release it.
    #[inline(never)]
    fn done_with_claimed(&self, record: usize) {
        // Kept only while the thread-exit hook can still give it back
        // (touching `GIVE_BACK` registers its destructor; it fails once
        // that destructor has run).
        #[cfg(not(loom))]
        if GIVE_BACK
            .try_with(|g| {
                HELD.try_with(|h| self.ring.keep(h, &g.0, record))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
        {
            return;
        }
        self.ring.release(record);
    }

    /// Claims a free record, starting at this thread's hint. At most `K`
    /// CAS attempts on the existing records; when all are taken (more
    /// threads inside the queue than ever before), adds chunks of doubling
    /// size, each tried once (docs, lemma "claim").
    fn acquire(&self, steps: &mut Steps) -> usize {
        let hint = HINT
            .try_with(|h| {
                let v = h.get();
                if v != usize::MAX {
                    return v;
                }
                // A first hint spread by the address of this thread's slot
                // (distinct per live thread), so new threads do not all
                // start at record 0.
                let a = h as *const Cell<usize> as usize;
                (a >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52
            })
            .unwrap_or(0);
        // Usually the record this thread used last is free: one CAS.
        if self.ring.try_claim_first(hint, steps) {
            return hint;
        }
        let mut from = None;
        loop {
            match self.ring.claim(hint, from, steps) {
                Claim::Got(r) => {
                    let _ = HINT.try_with(|h| h.set(r));
                    return r;
                }
                // Every chunk exists and every record was taken (more than
                // `MAX_RECORDS` operations inside at once): scan them all
                // again (the one lock-free, not wait-free, case).
                Claim::Grow(0) => from = None,
                Claim::Grow(j) => {
                    self.ring.add_chunk(j, || self.add_cells(j), steps);
                    from = Some(j);
                }
            }
        }
    }

    /// `enqueue` for the owner of record `rec`.
    #[cfg(all(test, loom))]
    pub(crate) fn enqueue_in(
        &self,
        rec: usize,
        value: T,
        steps: &mut Steps,
    ) -> Result<(), QueueError<T>> {
        let me = self.ring.rec(rec, steps);
        self.enqueue_at(rec, me, value, steps)
    }

    /// `enqueue` for the owner of record `rec` (`me`, its chunk pointer
    /// counted by the caller).
    #[inline(always)]
    fn enqueue_at(
        &self,
        rec: usize,
        me: &Record,
        value: T,
        steps: &mut Steps,
    ) -> Result<(), QueueError<T>> {
        let spare = me.spare(steps);
        // SAFETY: the spare cell of record `rec` is owned by the caller (the
        // record's owner): no slot refers to it as full and no other thread
        // reads or writes it (module invariant on `cells`). It is
        // uninitialised, so nothing is overwritten without being dropped.
        self.cell(spare as usize, steps)
            .with_mut(|p| unsafe { (*p).write(value) });
        steps.tick(1);
        let a = self.ring.apply(rec, me, spare, Kind::Enqueue, steps);
        let out = if a.ok {
            Ok(())
        } else {
            // SAFETY: a failed enqueue leaves the spare with its owner, still
            // holding the value written above; we take it back, leaving the
            // cell uninitialised again.
            let v = self
                .cell(spare as usize, steps)
                .with(|p| unsafe { (*p).assume_init_read() });
            steps.tick(1);
            Err(QueueError::Full(v))
        };
        std::mem::take(steps).finish(&self.ring, rec, true);
        out
    }

    /// `dequeue` for the owner of record `rec`.
    #[cfg(all(test, loom))]
    pub(crate) fn dequeue_in(&self, rec: usize, steps: &mut Steps) -> Option<T> {
        let me = self.ring.rec(rec, steps);
        self.dequeue_at(rec, me, steps)
    }

    /// `dequeue` for the owner of record `rec` (`me`, its chunk pointer
    /// counted by the caller).
    #[inline(always)]
    fn dequeue_at(&self, rec: usize, me: &Record, steps: &mut Steps) -> Option<T> {
        let spare = me.spare(steps);
        let a = self.ring.apply(rec, me, spare, Kind::Dequeue, steps);
        let out = if a.ok {
            // SAFETY: the answer of an applied dequeue hands us the cell of
            // the oldest element: it was swapped into the ring by the applied
            // enqueue of the same ticket (whose owner wrote it before
            // announcing, release/acquire chain in `ring`) and no one else
            // owns it now. Reading it leaves it uninitialised; it becomes our
            // spare.
            let v = self
                .cell(a.cell, steps)
                .with(|p| unsafe { (*p).assume_init_read() });
            steps.tick(1);
            Some(v)
        } else {
            None
        };
        std::mem::take(steps).finish(&self.ring, rec, false);
        out
    }
}

impl<T> Drop for WaitFreeQueue<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        let cells: Vec<usize> = self.ring.quiescent_cells().collect();
        // A guard so that one panicking `T::drop` still drops the rest.
        struct Rest<'a, T> {
            q: &'a WaitFreeQueue<T>,
            cells: std::vec::IntoIter<usize>,
        }
        impl<T> Drop for Rest<'_, T> {
            fn drop(&mut self) {
                for c in self.cells.by_ref() {
                    // SAFETY: `&mut` access to the queue (we are in its
                    // `drop`); every operation returned, so the full slots
                    // from `head` on hold the queued values, each exactly
                    // once, and they are dropped exactly once here.
                    self.q
                        .cell(c, &mut Steps::default())
                        .with_mut(|p| unsafe { (*p).assume_init_drop() });
                }
            }
        }
        let mut rest = Rest {
            q: self,
            cells: cells.into_iter(),
        };
        for c in rest.cells.by_ref() {
            // SAFETY: as in `Rest::drop`; if this panics, `rest` drops the
            // remaining cells, never this one again.
            rest.q
                .cell(c, &mut Steps::default())
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, not(loom)))]
mod review_q11gr;

#[cfg(all(test, loom))]
mod loom_tests;

// --- bulk enqueue (issue 15)
mod ext;
pub use ext::{EnqueueAllError, IntoIter};
