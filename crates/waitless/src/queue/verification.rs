//! The proven step bound, and (feature `step-count`) the observed maximum.
//!
//! A *step* is one access to shared memory made by the operation itself:
//! an atomic load, store or read-modify-write, or a read or write of a value
//! cell. Local computation and the thread-local lookup of the calling
//! thread's record are not steps (they touch only the thread's own memory).
//!
//! The bound, proven in `docs/wait-free-queue.md` (theorem 1), for a queue
//! with `K` thread records, patience `P` (= 8 fast attempts) and the ticket
//! window `W` (= 8: how far a counter may lag the done tickets):
//!
//! ```text
//! steps(op) ≤ CLAIM(K) + PRE + HELP_ALL(K) + P · ATTEMPT + SLOW(K) + CELL + RELEASE
//!   CLAIM(K)    = 2 + 1 + 2K + 5·12
//!   PRE         = 3
//!   HELP_ALL(K) = 1 + 3K + (K − 1) · HELP_ONE(K)
//!   HELP_ONE(K) = 1 + ROUND · (4K + 2 + W) + 1,   ROUND = 11
//!   ATTEMPT     = 2W + 8
//!   SLOW(K)     = 3 + HELP_ONE(K) + 1 + 4 + 1
//!   CELL = 4, RELEASE = 1
//!   total       = 44·K² + (29 + 11W)·K + 145 + 16W
//!               = 44·K² + 117·K + 273      (P = 8, W = 8)
//! ```
//!
//! * `CLAIM(K)`: claiming a record for this operation — one try of the
//!   record the thread used last (chunk pointer + CAS); if it is taken, one
//!   load of the record count, then each record tried at most once (chunk pointer +
//!   CAS), and at most 12 chunk additions of 5 steps (chunk pointer, cells,
//!   chunk CAS, count) when every record was taken.
//! * `PRE`: the own record's chunk pointer, the spare cell, `pending`.
//! * `HELP_ALL(K)`: only when `pending ≠ 0`: the record count, each
//!   record's chunk pointer, `req` and `resp`, and helping each pending
//!   request (at most `K − 1`, not our own) to its answer.
//! * `HELP_ONE(K)`: the record's chunk pointer, at most `4K + 2 + W` rounds
//!   that do not return (lemma "rounds": each such round overlaps a change
//!   of the ticket counter, of its slot or of the request's answer word, and
//!   at most `4K + 2 + W` such changes happen while a request is pending,
//!   because only the at most `K − 1` operations already running when it
//!   was announced can finish before it, and the counter starts at most `W`
//!   tickets behind), each of at most `ROUND` steps (the
//!   answer, the counter, the slot, then at most a claim CAS, a fill CAS and
//!   a finalization of 6), and the returning round (1).
//! * `ATTEMPT`: one fast attempt: the counter and the record's hint (the
//!   ticket after its last fast fill), then at most `W` slots, each a load
//!   and at most one fill CAS, and at the last one a finalization of 6, or
//!   a counter CAS and the hint store; a fast path that returns takes at most `P · ATTEMPT
//!   + 1` and skips `SLOW`.
//! * `SLOW(K)`: the last answer, the `pending` increment and the
//!   announcement; helping our own request; the decrement; clearing our own
//!   slot word (4; it is at the counter's ticket, lemma "finalize"); the
//!   new spare.
//! * `CELL = 4`: writing the value into the spare (found in `PRE`) and, for
//!   a `Full` answer, reading it back (2 each, with the cell chunk pointer);
//!   a dequeue reads one cell. (Before round 6 an enqueue looked its record
//!   and spare up twice, and `CELL` was 6.) `RELEASE`: giving the record back (made
//!   after the count is folded, so the observed counts never include it).
//!
//! **Records and threads.** Records are claimed per operation, so `K ≥ T`,
//! the most threads ever inside the queue at once, and `K` grows (by
//! doubling) only when a claimer tried every record and found each one
//! taken. `K ≤ 4096` always. The `threads` argument of the bound functions
//! is the record count `K`; [`records`] reads it from a queue. `K` is not
//! bounded by a function of `T` (a scan finds each record taken at the
//! moment it tries it, and short-lived threads can take them one after
//! another), so the bound is stated in `K`.
//!
//! The bound does not grow with the capacity: a helper only ever looks at
//! the slot of the current ticket, and a fast attempt at most `W` slots. It is quadratic in
//! `K` because an operation that finds requests pending helps each of them
//! (up to `K − 1`) to its answer before its own; an uncontended operation
//! takes the fast path: about 10 steps.
//!
//! ```
//! use waitless::queue::verification::{dequeue_step_bound, enqueue_step_bound};
//! assert_eq!(enqueue_step_bound(1024, 8), 44 * 64 + 117 * 8 + 273);
//! assert_eq!(dequeue_step_bound(1024, 8), enqueue_step_bound(1024, 8));
//! assert!(dequeue_step_bound(2, 64) < 200_000);
//! ```

#[cfg(feature = "step-count")]
use crate::sync::atomic::Ordering::Relaxed;

/// Claim steps besides the per-record ones: the direct try of the hint,
/// the count load and 12 chunk additions of 5 steps.
const CLAIM_FIXED: usize = 2 + 1 + 5 * 12;
/// Steps per record in the claim scan.
const CLAIM_PER_RECORD: usize = 2;
/// The own record's chunk pointer, the spare, `pending`.
const PRE: usize = 3;
/// Most steps of one helping round that does not return.
const ROUND: usize = 11;
/// The ticket window `W` (`ring::WINDOW`).
const W: usize = super::ring::WINDOW as usize;
/// Most steps of one fast attempt: the counter and the record's hint; at
/// most `W` slots, each a load and at most one fill CAS; at the last one a
/// finalization (6), or a counter CAS and the hint store.
const ATTEMPT: usize = 2 + 2 * W + 6;
/// The slow path besides helping its own request: the last answer,
/// `pending` up, the announcement, `pending` down, clearing our slot word
/// (4), the new spare.
const SLOW_FIXED: usize = 3 + 1 + 4 + 1;
/// Value-cell accesses.
const CELL: usize = 4;
/// Giving the record back.
const RELEASE: usize = 1;

/// Steps to help one pending request to its answer, with `k` records.
fn help_one(k: usize) -> usize {
    1 + ROUND * (4 * k + 2 + W) + 1
}

/// Upper bound on the steps of one `enqueue` on a queue with `capacity`
/// slots and `threads` thread records (`K`, see the module docs; at least
/// the most threads ever inside the queue at once; [`records`] reads it).
///
/// ```
/// use waitless::queue::verification::enqueue_step_bound;
///
/// // Independent of the capacity, quadratic in the record count.
/// assert_eq!(enqueue_step_bound(2, 16), enqueue_step_bound(1 << 20, 16));
/// assert_eq!(enqueue_step_bound(2, 1), 44 + 117 + 273);
/// ```
pub fn enqueue_step_bound(capacity: usize, threads: usize) -> usize {
    let _ = capacity; // the bound is independent of the capacity
    let k = threads.max(1);
    let claim = CLAIM_FIXED + CLAIM_PER_RECORD * k;
    let help_all = 1 + 3 * k + (k - 1) * help_one(k);
    let slow = SLOW_FIXED + help_one(k);
    claim + PRE + help_all + super::ring::PATIENCE * ATTEMPT + slow + CELL + RELEASE
}

/// Upper bound on the steps of one `dequeue`; see [`enqueue_step_bound`].
///
/// ```
/// use waitless::queue::verification::{dequeue_step_bound, enqueue_step_bound};
///
/// assert_eq!(dequeue_step_bound(8, 4), enqueue_step_bound(8, 4));
/// ```
pub fn dequeue_step_bound(capacity: usize, threads: usize) -> usize {
    enqueue_step_bound(capacity, threads)
}

/// The number of thread records `K` the queue has now (it starts at the
/// count the queue was built with, rounded up to a power of two, and
/// doubles when a claimer finds every record taken).
///
/// ```
/// use waitless::queue::{verification::records, WaitFreeQueue};
///
/// let q = WaitFreeQueue::<u8>::with_threads(4, 3);
/// assert_eq!(records(&q), 4); // rounded up to a power of two
/// q.enqueue(1).unwrap(); // one thread at a time: no growth
/// assert_eq!(records(&q), 4);
/// ```
pub fn records<T>(queue: &super::WaitFreeQueue<T>) -> usize {
    queue.ring.records()
}

/// The largest step counts observed so far on one queue, merged over its
/// thread records (each record keeps the maximum of the operations its
/// owners ran).
///
/// ```
/// use waitless::queue::verification::ObservedSteps;
///
/// let none = ObservedSteps::default();
/// assert_eq!((none.enqueue, none.dequeue), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedSteps {
    /// Most steps any single `enqueue` took.
    pub enqueue: usize,
    /// Most steps any single `dequeue` took.
    pub dequeue: usize,
}

/// The observed maxima of `queue`. Without the `step-count` feature nothing
/// is counted and both are 0.
///
/// ```
/// use waitless::queue::verification::{enqueue_step_bound, observed_steps, records};
/// use waitless::queue::WaitFreeQueue;
///
/// let q = WaitFreeQueue::new(4);
/// q.enqueue(1).unwrap();
/// assert_eq!(q.dequeue(), Some(1));
/// let o = observed_steps(&q);
/// assert!(o.enqueue <= enqueue_step_bound(4, records(&q)));
/// if cfg!(feature = "step-count") {
///     assert!(o.enqueue > 0 && o.dequeue > 0);
/// }
/// ```
pub fn observed_steps<T>(queue: &super::WaitFreeQueue<T>) -> ObservedSteps {
    #[allow(unused_mut)]
    let mut o = ObservedSteps::default();
    #[cfg(feature = "step-count")]
    {
        let ring = queue.ring();
        for r in 0..ring.records() {
            let rec = ring.record(r);
            o.enqueue = o.enqueue.max(rec.max_enq_steps.load(Relaxed) as usize);
            o.dequeue = o.dequeue.max(rec.max_deq_steps.load(Relaxed) as usize);
        }
    }
    #[cfg(not(feature = "step-count"))]
    let _ = queue;
    o
}

/// Builds a queue whose operations yield to the scheduler at the protocol's
/// hook points (after announcing, between reading a ticket counter and its
/// slot, before a claim's fill CAS, before a commit), so that stress tests
/// on few cores see operations preempted in the middle. Feature
/// `step-count` only; yielding is not a step and does not affect the bound.
///
/// ```
/// use waitless::queue::verification::queue_with_yield_hooks;
///
/// let q = queue_with_yield_hooks::<u32>(2, 2);
/// q.enqueue(7).unwrap();
/// assert_eq!(q.dequeue(), Some(7));
/// ```
#[cfg(feature = "step-count")]
pub fn queue_with_yield_hooks<T>(capacity: usize, threads: usize) -> super::WaitFreeQueue<T> {
    super::WaitFreeQueue::build(capacity, threads, true, true)
}

/// Like [`queue_with_yield_hooks`], and with the fast path switched off:
/// every operation announces itself and is finished by helping (patience
/// 0: every slot change is a `u = 1` fill). Feature `step-count` only.
///
/// ```
/// use waitless::queue::verification::queue_slow_path_only;
///
/// let q = queue_slow_path_only::<u32>(1, 1);
/// q.enqueue(1).unwrap();
/// assert!(q.enqueue(2).is_err());
/// assert_eq!(q.dequeue(), Some(1));
/// ```
// Hidden: a hook for the step-bound and history tests (tests/queue_*.rs),
// which must reach the slow path; not an API to build on.
#[doc(hidden)]
#[cfg(feature = "step-count")]
pub fn queue_slow_path_only<T>(capacity: usize, threads: usize) -> super::WaitFreeQueue<T> {
    super::WaitFreeQueue::build(capacity, threads, true, false)
}

/// A per-operation step counter; a zero-sized no-op without `step-count`.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    #[cfg(feature = "step-count")]
    n: u64,
}

impl Steps {
    #[inline(always)]
    pub(crate) fn tick(&mut self, k: u64) {
        #[cfg(feature = "step-count")]
        {
            self.n += k;
        }
        #[cfg(not(feature = "step-count"))]
        let _ = k;
    }

    /// Folds this operation's count into record `rec`'s maxima.
    #[inline(always)]
    pub(crate) fn finish(self, ring: &super::ring::Ring, rec: usize, enqueue: bool) {
        #[cfg(feature = "step-count")]
        {
            let rec = ring.record(rec);
            // Relaxed: owner-only counters, read after the threads joined.
            let m = if enqueue {
                &rec.max_enq_steps
            } else {
                &rec.max_deq_steps
            };
            if self.n > m.load(Relaxed) {
                m.store(self.n, Relaxed);
            }
        }
        #[cfg(not(feature = "step-count"))]
        let _ = (ring, rec, enqueue);
    }
}

// --- proof reports (issue 19): the queue's four proof obligations.
#[cfg(not(loom))]
pub use super::prove::{
    prove_dequeue_wait_freedom, prove_enqueue_wait_freedom, prove_linearizability,
    prove_system_progress,
};
