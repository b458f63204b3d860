//! Generated histories that are linearizable by construction and overlap
//! heavily: for testing checkers and for timing them.
//!
//! `threads` simulated threads issue operations back to back with random
//! durations; each takes effect at a random instant inside its interval;
//! the answers come from running the operations, in that effect order, on
//! a sequential structure. So about `threads` operations are open at any
//! time, and the effect order is a valid linearization.
//!
//! ```
//! use waitless_check::{check, generate, QueueModel};
//!
//! let h = generate::queue_history(4, 500, 8, 7);
//! assert_eq!(h.len(), 500);
//! assert!(check(&QueueModel::bounded(8), &h).is_ok());
//! ```

use std::collections::{HashMap, VecDeque};

use crate::{History, MapOp, MapRet, QueueOp, QueueRet, StackOp, StackRet};

/// A small deterministic generator (xorshift, multiplied): the same seed
/// gives the same history on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; any seed works, including 0.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One operation's place in a generated timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The simulated thread.
    pub thread: usize,
    /// Call timestamp.
    pub call: u64,
    /// Return timestamp (`> call`).
    pub ret: u64,
}

/// `total` operations of `threads` simulated threads (round robin), sorted
/// by their effect instants: apply them in this order to a sequential
/// structure and the answers form a linearizable history.
///
/// # Panics
/// If `threads` is zero.
#[must_use]
pub fn timeline(threads: usize, total: usize, seed: u64) -> Vec<Slot> {
    assert!(threads > 0, "a timeline needs at least one thread");
    let mut rng = Rng::new(seed);
    let mut clock = vec![0u64; threads];
    let mut ops = Vec::with_capacity(total);
    for i in 0..total {
        let thread = i % threads;
        let call = clock[thread] + rng.below(50);
        let ret = call + 50 + rng.below(450);
        let effect = call + rng.below(ret - call + 1);
        clock[thread] = ret;
        ops.push((effect, Slot { thread, call, ret }));
    }
    ops.sort_by_key(|o| o.0);
    ops.into_iter().map(|o| o.1).collect()
}

/// A bounded-queue history (capacity `capacity`): half enqueues of unique
/// values (the operation's index), half dequeues.
#[must_use]
pub fn queue_history(
    threads: usize,
    total: usize,
    capacity: usize,
    seed: u64,
) -> History<QueueOp<u64>, QueueRet<u64>> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let mut q = VecDeque::new();
    let mut h = History::new();
    for (i, s) in timeline(threads, total, seed).into_iter().enumerate() {
        if rng.below(2) == 0 {
            let v = i as u64;
            let out = if q.len() == capacity {
                QueueRet::Full
            } else {
                q.push_back(v);
                QueueRet::Enqueued
            };
            h.push(s.thread, QueueOp::Enqueue(v), out, s.call, s.ret);
        } else {
            let out = QueueRet::Dequeued(q.pop_front());
            h.push(s.thread, QueueOp::Dequeue, out, s.call, s.ret);
        }
    }
    h
}

/// A stack history: half pushes of unique values, half pops.
#[must_use]
pub fn stack_history(
    threads: usize,
    total: usize,
    seed: u64,
) -> History<StackOp<u64>, StackRet<u64>> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let mut st = Vec::new();
    let mut h = History::new();
    for (i, s) in timeline(threads, total, seed).into_iter().enumerate() {
        if rng.below(2) == 0 {
            st.push(i as u64);
            h.push(
                s.thread,
                StackOp::Push(i as u64),
                StackRet::Pushed,
                s.call,
                s.ret,
            );
        } else {
            let out = StackRet::Popped(st.pop());
            h.push(s.thread, StackOp::Pop, out, s.call, s.ret);
        }
    }
    h
}

/// A map history over keys `0..keys`: half gets, a quarter inserts (of the
/// operation's index), a quarter removes.
#[must_use]
pub fn map_history(
    threads: usize,
    total: usize,
    keys: u64,
    seed: u64,
) -> History<MapOp<u64, u64>, MapRet<u64>> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let mut m = HashMap::new();
    let mut h = History::new();
    for (i, s) in timeline(threads, total, seed).into_iter().enumerate() {
        let k = rng.below(keys);
        let (op, out) = match rng.below(4) {
            0 | 1 => (MapOp::Get(k), MapRet::Got(m.get(&k).copied())),
            2 => (
                MapOp::Insert(k, i as u64),
                MapRet::Inserted(m.insert(k, i as u64)),
            ),
            _ => (MapOp::Remove(k), MapRet::Removed(m.remove(&k))),
        };
        h.push(s.thread, op, out, s.call, s.ret);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_are_deterministic_and_well_formed() {
        let a = timeline(4, 300, 9);
        assert_eq!(a, timeline(4, 300, 9));
        assert_ne!(a, timeline(4, 300, 10));
        assert_eq!(a.len(), 300);
        assert!(a.iter().all(|s| s.ret > s.call && s.thread < 4));
        // Each thread's operations do not overlap one another.
        for t in 0..4 {
            let mut mine: Vec<_> = a.iter().filter(|s| s.thread == t).collect();
            mine.sort_by_key(|s| s.call);
            assert!(mine.windows(2).all(|w| w[0].ret <= w[1].call));
        }
    }

    #[test]
    fn operations_overlap_across_threads() {
        let a = timeline(4, 400, 3);
        let overlapping = a
            .iter()
            .filter(|x| {
                a.iter()
                    .any(|y| y.thread != x.thread && y.call < x.ret && x.call < y.ret)
            })
            .count();
        assert!(
            overlapping > 300,
            "{overlapping} of 400 overlap another thread"
        );
    }
}
