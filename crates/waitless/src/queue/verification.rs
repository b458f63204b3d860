//! The proven step bound, and (feature `step-count`) the observed maximum.
//!
//! A *step* is one access to shared memory made by the operation itself:
//! an atomic load, store or read-modify-write, or a read or write of a value
//! cell. Local computation and the thread-local lookup of the calling
//! thread's record are not steps (they touch only the thread's own memory).
//!
//! The bound, proven in `docs/wait-free-queue.md` (theorem 1), for a queue
//! with `K` thread records:
//!
//! ```text
//! steps(op) ≤ CLAIM(K) + PRE + FAST + ROUND · (K + 2) + FINAL + CELL
//!           = (1 + 2K + 5·13) + 4 + 19 + 26 · (K + 2) + 2 + 6 = 28·K + 149
//! ```
//!
//! * `CLAIM(K) = 1 + 2K + 5·13`: claiming a record for this operation —
//!   one load of the record count, then each record tried at most once
//!   (chunk pointer + CAS), and at most 13 chunk additions of 5 steps
//!   (chunk pointer, cells, chunk CAS, count) when every record was taken.
//! * `PRE = 4`: the own record's chunk pointer, the spare cell, the last
//!   answer, the announcement.
//! * `FAST = 19`: one attempt to install the request without announcing it
//!   that does *not* return (a fast path that returns takes at most 27 and
//!   skips everything after it).
//! * `ROUND = 26`: the most steps one round of the help loop takes; at most
//!   `K + 2` rounds end without returning (the request is applied within
//!   `K + 1` versions of the first state read after announcing, lemma
//!   "turn").
//! * `FINAL = 2`: the round that reads the answer and stores the new spare.
//! * `CELL = 6`: finding the spare (2), writing the value into it and, for
//!   a `Full` answer, reading it back (2 each, with the cell chunk pointer);
//!   a dequeue reads one cell.
//!
//! **Records and threads.** Records are claimed per operation, so `K ≥ T`,
//! the most threads ever inside the queue at once, and `K` grows (by
//! doubling) only when a claimer tried every record and found each one
//! taken. `K ≤ 4096` always. The `threads` argument of the bound functions
//! is the record count `K`; [`records`] reads it from a queue. In every
//! run we measured `K = T` (or `K` was the initial count), but `K` is not
//! bounded by a function of `T`: a scan finds each record taken at the
//! moment it tries it, and short-lived threads can take them one after
//! another. So the bound is stated in `K`; for every `T ≤ 4096` it is at
//! most `enqueue_step_bound(_, 4096) = 114 837`.
//!
//! The bound does not grow with the capacity: all the work is in the
//! version-by-version helping, never in scanning the ring.
//!
//! ```
//! use waitless::queue::verification::{dequeue_step_bound, enqueue_step_bound};
//! assert_eq!(enqueue_step_bound(1024, 8), 28 * 8 + 149);
//! assert!(dequeue_step_bound(2, 128) < 3_800);
//! ```

#[cfg(feature = "step-count")]
use crate::sync::atomic::Ordering::Relaxed;

/// Claim steps besides the per-record ones: the count load and 13 chunk
/// additions of 5 steps.
const CLAIM_FIXED: usize = 1 + 5 * 13;
/// Steps per record in the claim scan.
const CLAIM_PER_RECORD: usize = 2;
/// Steps before the help loop.
const PRE: usize = 4;
/// The fast-path attempt that does not return.
const FAST: usize = 19;
/// Most steps in one non-final round of the help loop.
const ROUND: usize = 26;
/// Steps of the final round.
const FINAL: usize = 2;
/// Value-cell accesses.
const CELL: usize = 6;

/// Upper bound on the steps of one `enqueue` on a queue with `capacity`
/// slots and `threads` thread records (`K`, see the module docs; at least
/// the most threads ever inside the queue at once; [`records`] reads it).
pub fn enqueue_step_bound(capacity: usize, threads: usize) -> usize {
    let _ = capacity; // the bound is independent of the capacity
    let k = threads;
    CLAIM_FIXED + CLAIM_PER_RECORD * k + PRE + FAST + ROUND * (k + 2) + FINAL + CELL
}

/// Upper bound on the steps of one `dequeue`; see [`enqueue_step_bound`].
pub fn dequeue_step_bound(capacity: usize, threads: usize) -> usize {
    enqueue_step_bound(capacity, threads)
}

/// The number of thread records `K` the queue has now (it starts at the
/// count the queue was built with, rounded up to a power of two, and
/// doubles when a claimer finds every record taken).
pub fn records<T>(queue: &super::WaitFreeQueue<T>) -> usize {
    queue.core.records()
}

/// The largest step counts observed so far on one queue, merged over its
/// thread records (each record keeps the maximum of the operations its
/// owners ran).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedSteps {
    /// Most steps any single `enqueue` took.
    pub enqueue: usize,
    /// Most steps any single `dequeue` took.
    pub dequeue: usize,
}

/// The observed maxima of `queue`. Without the `step-count` feature nothing
/// is counted and both are 0.
pub fn observed_steps<T>(queue: &super::WaitFreeQueue<T>) -> ObservedSteps {
    #[allow(unused_mut)]
    let mut o = ObservedSteps::default();
    #[cfg(feature = "step-count")]
    {
        let core = queue.core();
        for r in 0..core.records() {
            let rec = core.record(r);
            o.enqueue = o.enqueue.max(rec.max_enq_steps.load(Relaxed) as usize);
            o.dequeue = o.dequeue.max(rec.max_deq_steps.load(Relaxed) as usize);
        }
    }
    #[cfg(not(feature = "step-count"))]
    let _ = queue;
    o
}

/// Builds a queue whose operations yield to the scheduler at the protocol's
/// hook points (after announcing, between reading and validating a
/// descriptor, before installing, before swapping a slot), so that stress
/// tests on few cores see operations preempted in the middle. Feature
/// `step-count` only; yielding is not a step and does not affect the bound.
#[cfg(feature = "step-count")]
pub fn queue_with_yield_hooks<T>(capacity: usize, threads: usize) -> super::WaitFreeQueue<T> {
    super::WaitFreeQueue::build(capacity, threads, true, true)
}

/// Like [`queue_with_yield_hooks`], and with the fast path switched off:
/// every operation announces itself and is finished through the help loop
/// (the analogue of wCQ with patience 1). Feature `step-count` only.
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
    pub(crate) fn finish(self, core: &super::core::Core, rec: usize, enqueue: bool) {
        #[cfg(feature = "step-count")]
        {
            let rec = core.record(rec);
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
        let _ = (core, rec, enqueue);
    }
}

// --- proof reports (issue 19): the queue's four proof obligations.
#[cfg(not(loom))]
pub use super::prove::{
    prove_dequeue_wait_freedom, prove_enqueue_wait_freedom, prove_linearizability,
    prove_system_progress,
};
