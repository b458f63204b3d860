//! Review tests (q11gr) for the queue's round 8 (q11g): the fast attempt's
//! "this side's stamp" word is now computed as `(y & !mask) · lap_scale |
//! before << STAMP_SHIFT` instead of with two variable shifts, the scan is a
//! do-while loop, and the new spare is stored when `ok`. These tests start
//! the counters next to every wrap point the new arithmetic sees, at every
//! offset of the scan window, at capacities 1 to 1024 (the existing
//! `counters_wrap` covers 1, 2 and 8 at one offset next to the 2^64 wrap),
//! and compare every answer with a sequential model. The `debug_assert` in
//! `attempt` (new word = old formula) runs on every slot read here.
//!
//! Needs internals (`build_at`, `ring::Start`): the lead adds
//! `#[cfg(all(test, not(loom)))] mod review_q11gr;` to `queue/mod.rs`.

use super::ring::{self, WINDOW};
use super::{QueueError, WaitFreeQueue};
use std::collections::VecDeque;

fn scale(n: usize) -> usize {
    if cfg!(miri) {
        (n / 100).max(8)
    } else {
        n
    }
}

/// Starting tickets next to the wraps of capacity `2^log2`: the 64-bit
/// ticket wrap (where the stamp wraps too), and the stamp-only wrap at lap
/// `2^29` (stamp `2·lap mod 2^30`), each at several offsets so that the
/// scan window (`WINDOW` tickets, aligned) straddles the wrap in every way.
fn starts(log2: u32) -> Vec<u64> {
    let stamp_wrap = 1u64 << (29 + log2);
    let mut v = Vec::new();
    for k in [0, 1, WINDOW - 1, WINDOW, WINDOW + 3, 3 << log2] {
        v.push(0u64.wrapping_sub(k));
        v.push(stamp_wrap.wrapping_sub(k));
    }
    if cfg!(miri) {
        v.truncate(4);
    }
    v
}

/// One thread, a pseudo-random mix of enqueues and dequeues (biased to
/// fill, then to drain, so `Full` and `None` both happen at the wraps),
/// every answer checked against a `VecDeque`.
#[test]
fn every_answer_is_the_models_across_every_wrap() {
    for log2 in [0u32, 1, 2, 3, 4, 10] {
        let cap = 1usize << log2;
        for head in starts(log2) {
            for fast in [true, false] {
                let start = ring::Start {
                    seq: ring::SEQ_MASK - 3,
                    head,
                };
                let q = WaitFreeQueue::build_at(cap, 2, false, fast, start);
                let mut model = VecDeque::new();
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ head ^ cap as u64;
                let mut next = 0u64;
                // Long enough to pass the wrap at capacity 1024 (the ring is
                // filled and drained in phases).
                let ops = scale(if cap > 64 { 6 * cap } else { 600 });
                for i in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let phase_fill = (i / (cap + 3)) % 2 == 0;
                    let enq = if phase_fill { x % 4 != 0 } else { x % 4 == 0 };
                    if enq {
                        let got = q.enqueue(next);
                        if model.len() < cap {
                            assert!(
                                got.is_ok(),
                                "cap {cap} head {head:#x} fast {fast} op {i}: Full with {} of {cap}",
                                model.len()
                            );
                            model.push_back(next);
                        } else {
                            assert!(
                                matches!(got, Err(QueueError::Full(v)) if v == next),
                                "cap {cap} head {head:#x} fast {fast} op {i}: not Full when full"
                            );
                        }
                        next += 1;
                    } else {
                        assert_eq!(
                            q.dequeue(),
                            model.pop_front(),
                            "cap {cap} head {head:#x} fast {fast} op {i}"
                        );
                    }
                }
                while let Some(v) = model.pop_front() {
                    assert_eq!(q.dequeue(), Some(v), "cap {cap} head {head:#x} drain");
                }
                assert_eq!(q.dequeue(), None);
                assert!(q.ring.idle_records_agree());
                assert!(q.ring.cells_partition());
            }
        }
    }
}

/// Two threads on a queue started next to the ticket wrap (capacity 1, 2
/// and 8, fast path on and off): each enqueues its own increasing values
/// and dequeues whatever is there; every value comes out exactly once and
/// each producer's values in order.
#[test]
fn two_threads_across_the_wrap_lose_and_repeat_nothing() {
    use std::sync::atomic::{AtomicU8, Ordering};
    let per = scale(3_000);
    for cap in [1usize, 2, 8] {
        for fast in [true, false] {
            let start = ring::Start {
                seq: ring::SEQ_MASK - 2,
                head: 0u64.wrapping_sub(2 * WINDOW + 1),
            };
            let q = WaitFreeQueue::<u64>::build_at(cap, 2, false, fast, start);
            let seen: Vec<AtomicU8> = (0..2 * per).map(|_| AtomicU8::new(0)).collect();
            let take = |v: u64, last: &mut [Option<u64>; 2]| {
                let p = (v & 1) as usize;
                let n = v >> 1;
                if let Some(l) = last[p] {
                    assert!(n > l, "producer {p}: {n} after {l}");
                }
                last[p] = Some(n);
                let before = seen[v as usize].fetch_add(1, Ordering::Relaxed);
                assert_eq!(before, 0, "value {v} dequeued twice");
            };
            std::thread::scope(|s| {
                for me in 0..2u64 {
                    let q = &q;
                    let take = &take;
                    s.spawn(move || {
                        let mut last = [None, None];
                        let mut i = 0;
                        while i < per as u64 {
                            match q.enqueue(2 * i + me) {
                                Ok(()) => i += 1,
                                Err(QueueError::Full(_)) => {}
                            }
                            if let Some(v) = q.dequeue() {
                                take(v, &mut last);
                            }
                        }
                    });
                }
            });
            let mut last = [None, None];
            while let Some(v) = q.dequeue() {
                take(v, &mut last);
            }
            for (v, s) in seen.iter().enumerate() {
                assert_eq!(
                    s.load(Ordering::Relaxed),
                    1,
                    "cap {cap} fast {fast}: value {v}"
                );
            }
            assert!(q.ring.idle_records_agree());
            assert!(q.ring.cells_partition());
        }
    }
}
