//! Bounded MPMC queues: `waitless::queue::WaitFreeQueue` against crossbeam's
//! `ArrayQueue` and `SegQueue`, `concurrent-queue` (bounded) and
//! `Mutex<VecDeque>`, all with capacity [`CAPACITY`].
//!
//! * `queue/pairs`: each thread enqueues one value then dequeues one; one
//!   counted operation is one enqueue+dequeue pair (the dequeue may get
//!   another thread's value; a failed dequeue still counts, as in the
//!   crossbeam benchmarks, since both calls ran).
//! * `queue/producer-consumer`: half the threads (rounded down) only
//!   enqueue, the rest only dequeue; one counted operation is one item
//!   received. At one thread, the thread alternates.
//! * `queue/pairs-16-threads`: `pairs` at 16 threads only, for the
//!   oversubscribed p99.9 and maximum latency (issue #11).
//!
//! Latency percentiles come with every run (`run_workload` samples one call
//! in 64).

use std::collections::VecDeque;
use std::sync::Mutex;

use crossbeam_queue::{ArrayQueue, SegQueue};
use waitless::queue::WaitFreeQueue;

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

/// Capacity of every bounded contender.
pub const CAPACITY: usize = 1024;

const PAIRS: Workload = Workload::new("queue", "queue/pairs", "enqueue+dequeue pairs");
const PRODUCER_CONSUMER: Workload =
    Workload::new("queue", "queue/producer-consumer", "items transferred");
/// `pairs` at 16 threads only: oversubscribed on small machines, where the
/// p99.9 and maximum latency show who waits for a descheduled thread
/// (issue #11 compares them with `ArrayQueue`'s).
const PAIRS_OVERSUBSCRIBED: Workload =
    Workload::new("queue", "queue/pairs-16-threads", "enqueue+dequeue pairs").at(&[16]);

/// A bounded queue of `u64` (capacity [`CAPACITY`]) as the workloads drive it.
pub trait BenchQueue: Contender + Sync + Sized {
    /// An empty queue.
    fn build() -> Self;
    /// `true` when the value went in.
    fn push(&self, v: u64) -> bool;
    /// A value, or `None` when empty.
    fn pop(&self) -> Option<u64>;
}

impl Contender for WaitFreeQueue<u64> {
    const NAME: &'static str = "waitless WaitFreeQueue";
    const ROLE: Role = Role::Waitless;
}

impl BenchQueue for WaitFreeQueue<u64> {
    fn build() -> Self {
        WaitFreeQueue::new(CAPACITY)
    }
    #[inline(always)]
    fn push(&self, v: u64) -> bool {
        self.enqueue(v).is_ok()
    }
    #[inline(always)]
    fn pop(&self) -> Option<u64> {
        self.dequeue()
    }
}

impl Contender for ArrayQueue<u64> {
    const NAME: &'static str = "crossbeam ArrayQueue";
    const ROLE: Role = Role::Peer;
}

impl BenchQueue for ArrayQueue<u64> {
    fn build() -> Self {
        ArrayQueue::new(CAPACITY)
    }
    #[inline(always)]
    fn push(&self, v: u64) -> bool {
        ArrayQueue::push(self, v).is_ok()
    }
    #[inline(always)]
    fn pop(&self) -> Option<u64> {
        ArrayQueue::pop(self)
    }
}

impl Contender for SegQueue<u64> {
    const NAME: &'static str = "crossbeam SegQueue";
    const ROLE: Role = Role::Peer;
}

impl BenchQueue for SegQueue<u64> {
    fn build() -> Self {
        SegQueue::new()
    }
    #[inline(always)]
    fn push(&self, v: u64) -> bool {
        SegQueue::push(self, v);
        true
    }
    #[inline(always)]
    fn pop(&self) -> Option<u64> {
        SegQueue::pop(self)
    }
}

impl Contender for concurrent_queue::ConcurrentQueue<u64> {
    const NAME: &'static str = "concurrent-queue bounded";
    const ROLE: Role = Role::Peer;
}

impl BenchQueue for concurrent_queue::ConcurrentQueue<u64> {
    fn build() -> Self {
        concurrent_queue::ConcurrentQueue::bounded(CAPACITY)
    }
    #[inline(always)]
    fn push(&self, v: u64) -> bool {
        concurrent_queue::ConcurrentQueue::push(self, v).is_ok()
    }
    #[inline(always)]
    fn pop(&self) -> Option<u64> {
        concurrent_queue::ConcurrentQueue::pop(self).ok()
    }
}

/// `Mutex<VecDeque>` with the same capacity.
pub struct MutexQueue(Mutex<VecDeque<u64>>);

impl Contender for MutexQueue {
    const NAME: &'static str = "Mutex<VecDeque>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchQueue for MutexQueue {
    fn build() -> Self {
        MutexQueue(Mutex::new(VecDeque::with_capacity(CAPACITY)))
    }
    #[inline(always)]
    fn push(&self, v: u64) -> bool {
        let mut q = self.0.lock().unwrap();
        if q.len() == CAPACITY {
            return false;
        }
        q.push_back(v);
        true
    }
    #[inline(always)]
    fn pop(&self) -> Option<u64> {
        self.0.lock().unwrap().pop_front()
    }
}

fn pairs<Q: BenchQueue>(cfg: &RunConfig, threads: usize) -> RunResult {
    let q = Q::build();
    run_workload(
        cfg,
        threads,
        |t| t as u64,
        |v| {
            *v = v.wrapping_add(1);
            std::hint::black_box(q.push(*v));
            std::hint::black_box(q.pop());
            1
        },
    )
}

fn producer_consumer<Q: BenchQueue>(cfg: &RunConfig, threads: usize) -> RunResult {
    let q = Q::build();
    let producers = threads / 2;
    run_workload(
        cfg,
        threads,
        |t| (t, 0u64),
        |(t, v)| {
            if threads == 1 {
                *v += 1;
                q.push(*v);
                u64::from(q.pop().is_some())
            } else if *t < producers {
                *v += 1;
                q.push(*v);
                0
            } else {
                u64::from(q.pop().is_some())
            }
        },
    )
}

/// The table of implementations: every queue contender on `$run`.
macro_rules! queues {
    ($workload:expr, $run:ident) => {
        table!(
            $workload,
            $run,
            [
                WaitFreeQueue<u64>,
                MutexQueue,
                ArrayQueue<u64>,
                SegQueue<u64>,
                concurrent_queue::ConcurrentQueue<u64>,
            ]
        )
    };
}

/// The queue workloads, one entry per contender.
pub fn entries() -> Vec<Entry> {
    [
        queues!(PAIRS, pairs),
        queues!(PRODUCER_CONSUMER, producer_consumer),
        queues!(PAIRS_OVERSUBSCRIBED, pairs),
    ]
    .concat()
}
