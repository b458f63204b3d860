//! The proven step bound, and (feature `step-count`) the observed maximum.
//!
//! A *step* is one access to shared memory made by the operation itself:
//! an atomic load, store or read-modify-write, or a read or write of a value
//! cell. Local computation and the thread-local lookup of the calling
//! thread's record are not steps (they touch only the thread's own memory).
//!
//! The bound, proven in `docs/wait-free-queue.md` (theorem 1), for a queue
//! with `k` thread records:
//!
//! ```text
//! steps(op) ≤ PRE + FAST + k + ITER · (k + 2) + FINAL + CELL = 28 + k + 21 · (k + 2)
//! ```
//!
//! * `PRE = 3`: read the spare cell, read the last answer, announce.
//! * `FAST = 21`: one attempt to install the request without announcing it
//!   (the fast path; it returns when it succeeds).
//! * `k`: claiming a record on the thread's first operation on the queue
//!   (one CAS per record, at most `k`).
//! * `ITER = 21`: the most steps one round of the help loop takes; at most
//!   `k + 2` rounds end without returning (the request is applied within
//!   `k + 1` versions of the first state read after announcing, lemma
//!   "turn").
//! * `FINAL = 2`: the round that reads the answer and stores the new spare.
//! * `CELL = 2`: writing the value into the spare cell and, for a `Full`
//!   answer, reading it back (a dequeue reads one cell).
//!
//! The bound does not grow with the capacity: all the work is in the
//! version-by-version helping, never in scanning the ring.
//!
//! ```
//! use waitless::queue::verification::{dequeue_step_bound, enqueue_step_bound};
//! assert_eq!(enqueue_step_bound(1024, 8), 28 + 8 + 21 * 10);
//! assert!(dequeue_step_bound(2, 128) < 3_100);
//! ```

#[cfg(feature = "step-count")]
use crate::sync::atomic::Ordering::Relaxed;

/// Steps before the help loop.
const PRE: usize = 3;
/// The fast-path attempt.
const FAST: usize = 21;
/// Most steps in one non-final round of the help loop.
const ITER: usize = 21;
/// Steps of the final round.
const FINAL: usize = 2;
/// Value-cell accesses.
const CELL: usize = 2;

/// Upper bound on the steps of one `enqueue` on a queue with `capacity`
/// slots used through at most `threads` thread records (the record count
/// the queue was built with; [`WaitFreeQueue::new`](super::WaitFreeQueue::new)
/// uses [`DEFAULT_THREADS`](super::DEFAULT_THREADS)).
pub fn enqueue_step_bound(capacity: usize, threads: usize) -> usize {
    let _ = capacity; // the bound is independent of the capacity
    PRE + FAST + threads + ITER * (threads + 2) + FINAL + CELL
}

/// Upper bound on the steps of one `dequeue`; see [`enqueue_step_bound`].
pub fn dequeue_step_bound(capacity: usize, threads: usize) -> usize {
    enqueue_step_bound(capacity, threads)
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
    pub(crate) fn finish(self, rec: &super::core::Record, enqueue: bool) {
        #[cfg(feature = "step-count")]
        {
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
        let _ = (rec, enqueue);
    }
}
