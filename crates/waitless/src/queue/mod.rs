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
//! This is not wCQ. It is an announce-and-help construction in the style of
//! Herlihy's wait-free universal construction, specialised to a ring so that
//! values never move once written:
//!
//! * The whole logical queue (head ticket, length) plus "the last operation
//!   applied" is an immutable *descriptor*; one 64-bit `state` word names the
//!   current one by `(version, installer)`. Each thread record has two
//!   descriptor buffers and writes only its own.
//! * An operation announces itself in its record (kind, sequence number, and
//!   the thread's *spare cell*), then loops: read the current descriptor,
//!   finish its side effects (answer its owner, swap one ring slot), pick the
//!   next request to apply — the request of record `(version + 1) mod k` if
//!   it is pending, else its own — and CAS `state` to the new version. Since
//!   the turn rotates through every record, an announced request is applied
//!   within `k + 1` versions, and every failed CAS means a version was
//!   installed, so at most `k + 2` rounds end without returning. Before
//!   announcing, an operation makes one *fast-path* attempt to install its
//!   own request directly (allowed only when the turn does not belong to
//!   another pending request), which is all an uncontended operation needs.
//! * Values live in `capacity + k` cells. Ring slot `i` holds a cell index;
//!   each record owns one spare cell. An enqueue writes its value into its
//!   spare and, when applied, *swaps* the spare into the slot of its ticket,
//!   receiving the slot's (empty) cell as its new spare. A dequeue swaps its
//!   empty spare into the slot and receives the full cell. Helpers move only
//!   indices; only the owner of a cell reads or writes the value in it, so
//!   no `T` is ever copied twice or read by two threads.
//!
//! `Full` and `None` are decided on the descriptor, whose length counts
//! exactly the applied enqueues minus the applied dequeues, so they are
//! linearizable answers and exactly `capacity` elements fit. The proof of
//! the step bound and of linearizability is in `docs/wait-free-queue.md`.
//!
//! # Threads
//!
//! Each thread that uses a queue claims one of its `k` records on first use
//! (at most `k` CAS attempts) and releases it when the thread exits.
//! [`WaitFreeQueue::new`] makes [`DEFAULT_THREADS`] records;
//! [`WaitFreeQueue::with_threads`] picks the number (1 to 255). A thread that
//! finds every record taken panics with a message naming the limit: the
//! step bound is a function of `k`, so the queue does not grow it silently.
//!
//! # Progress and consistency
//!
//! Wait-free (bounded); linearizable. `len` is exact when it validates (it
//! retries at most three times) and otherwise the length after a recently
//! applied operation; it is always within `0..=capacity`.
//!
//! # Limits
//!
//! Capacity at most 2^20. Sequence numbers are 40 bits and ring stamps 42
//! bits: a helper preempted while one thread completes 2^40 operations, or
//! while one ring slot is reused 2^41 times, could act on a stale view (the
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

mod core;
pub mod verification;

use std::cell::RefCell;
use std::fmt;
use std::mem::MaybeUninit;
// The record registry's `Arc`/`Weak` only manage the lifetime of the
// protocol core (a thread's exit handler must not outlive it); they are not
// part of the synchronization under test, and loom's `Arc` has no `Weak`.
use std::sync::{Arc, Weak};

use self::core::{Core, Kind, MAX_CAPACITY, MAX_RECORDS};
use self::verification::Steps;
use crate::sync::UnsafeCell;

/// Thread records made by [`WaitFreeQueue::new`]: at most this many threads
/// may use one such queue at the same time.
pub const DEFAULT_THREADS: usize = 128;

crate::utils::value_error! {
    /// The error of [`WaitFreeQueue::enqueue`]: the queue held `capacity`
    /// elements. The value is given back.
    enum QueueError {
        /// The queue was full; here is the value.
        Full => "the queue is full",
    }
}

/// A wait-free bounded MPMC FIFO queue; see the [module docs](self).
pub struct WaitFreeQueue<T> {
    core: Arc<Core>,
    /// `capacity + k` value cells. A cell is initialised exactly while it is
    /// in a ring slot between an applied enqueue and the applied dequeue of
    /// that slot's ticket, or while it is a spare whose owner is between
    /// writing a value and taking it back (in `enqueue`) or between being
    /// answered and reading it (in `dequeue`).
    cells: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the queue moves `T` values between threads (enqueued on one,
// dequeued on another), so `T: Send` is required and sufficient: no `&T` is
// ever handed out, and each value is accessed by one thread at a time (the
// owner of its cell), so `T: Sync` is not needed for either impl.
unsafe impl<T: Send> Send for WaitFreeQueue<T> {}
// SAFETY: see above; every shared access goes through atomics in `Core`, and
// cell accesses are exclusive by the ownership protocol argued in `enqueue`
// and `dequeue`.
unsafe impl<T: Send> Sync for WaitFreeQueue<T> {}

impl<T> fmt::Debug for WaitFreeQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFreeQueue")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("threads", &self.core.records())
            .finish()
    }
}

struct Registration {
    core: Weak<Core>,
    record: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            core.release(self.record);
        }
    }
}

crate::sync::thread_local! {
    // Not `const { .. }`: loom's `thread_local!` does not accept it.
    #[allow(clippy::missing_const_for_thread_local)]
    static REGISTRATIONS: RefCell<Vec<Registration>> = RefCell::new(Vec::new());
}

impl<T> WaitFreeQueue<T> {
    /// A queue holding at most `capacity` elements, usable by up to
    /// [`DEFAULT_THREADS`] threads at once.
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two, or is above 2^20.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::<u8>::new(8);
    /// assert_eq!(q.capacity(), 8);
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self::with_threads(capacity, DEFAULT_THREADS)
    }

    /// A queue holding at most `capacity` elements, usable by up to
    /// `threads` threads at once (the step bound grows linearly in
    /// `threads`).
    ///
    /// # Panics
    ///
    /// If `capacity` is not a power of two or is above 2^20, or `threads` is
    /// not in `1..=255`.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::<u8>::with_threads(4, 2);
    /// assert!(q.is_empty());
    /// ```
    pub fn with_threads(capacity: usize, threads: usize) -> Self {
        Self::build(capacity, threads, false, true)
    }

    pub(crate) fn build(
        capacity: usize,
        threads: usize,
        yield_hooks: bool,
        fast_path: bool,
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
        let mut core = Core::new(capacity, threads);
        core.fast_path = fast_path;
        #[cfg(feature = "step-count")]
        {
            core.yield_hooks = yield_hooks;
        }
        #[cfg(not(feature = "step-count"))]
        let _ = yield_hooks;
        let cells = (0..capacity + threads)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        Self {
            core: Arc::new(core),
            cells,
        }
    }

    #[cfg(feature = "step-count")]
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The most elements the queue holds.
    pub fn capacity(&self) -> usize {
        self.cells.len() - self.core.records()
    }

    /// The number of elements; see the module docs on consistency. Never
    /// above `capacity`.
    pub fn len(&self) -> usize {
        self.core.len()
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
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Appends `value`, or gives it back in [`QueueError::Full`] when the
    /// queue holds `capacity` elements at the operation's linearization
    /// point. Wait-free.
    ///
    /// # Panics
    ///
    /// If more threads than the queue's thread count use it at once.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::new(1);
    /// assert!(q.enqueue("a").is_ok());
    /// assert_eq!(q.enqueue("b").unwrap_err().into_inner(), "b");
    /// ```
    pub fn enqueue(&self, value: T) -> Result<(), QueueError<T>> {
        self.with_record(|q, rec, steps| q.enqueue_in(rec, value, steps))
    }

    /// Removes the oldest element, or `None` when the queue is empty at the
    /// operation's linearization point. Wait-free.
    ///
    /// # Panics
    ///
    /// If more threads than the queue's thread count use it at once.
    ///
    /// ```
    /// let q = waitless::queue::WaitFreeQueue::new(4);
    /// assert_eq!(q.dequeue(), None::<u8>);
    /// q.enqueue(5).unwrap();
    /// assert_eq!(q.dequeue(), Some(5));
    /// ```
    pub fn dequeue(&self) -> Option<T> {
        self.with_record(|q, rec, steps| q.dequeue_in(rec, steps))
    }

    /// Runs `f` with the calling thread's record, claiming one on first use.
    fn with_record<R>(&self, f: impl FnOnce(&Self, usize, &mut Steps) -> R) -> R {
        let mut steps = Steps::default();
        let key = Arc::as_ptr(&self.core);
        let found = REGISTRATIONS.try_with(|regs| {
            let mut regs = regs.borrow_mut();
            if let Some(r) = regs.iter().find(|r| r.core.as_ptr() == key) {
                return Some(r.record);
            }
            regs.retain(|r| r.core.strong_count() > 0);
            let record = self.claim(&mut steps);
            regs.push(Registration {
                core: Arc::downgrade(&self.core),
                record,
            });
            Some(record)
        });
        match found {
            Ok(Some(record)) => f(self, record, &mut steps),
            _ => {
                // Thread-local storage is being torn down: borrow a record
                // for this one operation.
                let record = self.claim(&mut steps);
                let out = f(self, record, &mut steps);
                self.core.release(record);
                out
            }
        }
    }

    fn claim(&self, steps: &mut Steps) -> usize {
        match self.core.claim(steps) {
            Some(r) => r,
            None => panic!(
                "WaitFreeQueue: more than {} threads are using this queue; \
                 build it with WaitFreeQueue::with_threads(capacity, threads)",
                self.core.records()
            ),
        }
    }

    /// `enqueue` for the owner of record `rec`.
    pub(crate) fn enqueue_in(
        &self,
        rec: usize,
        value: T,
        steps: &mut Steps,
    ) -> Result<(), QueueError<T>> {
        let spare = self.core.spare(rec);
        // SAFETY: the spare cell of record `rec` is owned by the caller (the
        // record's owner): no slot refers to it as full and no other thread
        // reads or writes it (module invariant on `cells`). It is
        // uninitialised, so nothing is overwritten without being dropped.
        self.cells[spare].with_mut(|p| unsafe { (*p).write(value) });
        steps.tick(1);
        let a = self.core.apply(rec, Kind::Enqueue, steps);
        let out = if a.ok {
            Ok(())
        } else {
            // SAFETY: a failed enqueue leaves the spare with its owner, still
            // holding the value written above; we take it back, leaving the
            // cell uninitialised again.
            let v = self.cells[spare].with(|p| unsafe { (*p).assume_init_read() });
            steps.tick(1);
            Err(QueueError::Full(v))
        };
        std::mem::take(steps).finish(self.core.record(rec), true);
        out
    }

    /// `dequeue` for the owner of record `rec`.
    pub(crate) fn dequeue_in(&self, rec: usize, steps: &mut Steps) -> Option<T> {
        let a = self.core.apply(rec, Kind::Dequeue, steps);
        let out = if a.ok {
            // SAFETY: the answer of an applied dequeue hands us the cell of
            // the oldest element: it was swapped into the ring by the applied
            // enqueue of the same ticket (whose owner wrote it before
            // announcing, release/acquire chain in `Core`) and no one else
            // owns it now. Reading it leaves it uninitialised; it becomes our
            // spare.
            let v = self.cells[a.cell].with(|p| unsafe { (*p).assume_init_read() });
            steps.tick(1);
            Some(v)
        } else {
            None
        };
        std::mem::take(steps).finish(self.core.record(rec), false);
        out
    }
}

impl<T> Drop for WaitFreeQueue<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        let cells: Vec<usize> = self.core.quiescent_cells().collect();
        // A guard so that one panicking `T::drop` still drops the rest.
        struct Rest<'a, T> {
            q: &'a WaitFreeQueue<T>,
            cells: std::vec::IntoIter<usize>,
        }
        impl<T> Drop for Rest<'_, T> {
            fn drop(&mut self) {
                for c in self.cells.by_ref() {
                    // SAFETY: `&mut` access to the queue (we are in its
                    // `drop`); the cells of tickets `head..head+len` of the
                    // completed current descriptor hold the queued values,
                    // each exactly once, and are dropped exactly once here.
                    self.q.cells[c].with_mut(|p| unsafe { (*p).assume_init_drop() });
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
            rest.q.cells[c].with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

// --- bulk enqueue (issue 15)
mod ext;
pub use ext::EnqueueAllError;
