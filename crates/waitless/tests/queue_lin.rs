//! Linearizability of many small concurrent histories, checked by
//! `waitless_check` (Wing–Gong–Lowe search with memoization) against
//! `QueueModel::bounded(capacity)`.
//!
//! Many short rounds (3–4 threads × a few operations) at capacities 1–16
//! make `Full` and `None` answers common at the small capacities, which is
//! where a bounded queue is most often wrong. Each round runs with the fast
//! path and (feature `step-count`) with every operation forced through
//! announce-and-help plus yields at the hook points.
#![cfg(not(loom))]

use std::sync::Barrier;
use std::thread;

use waitless::queue::{QueueError, WaitFreeQueue};
use waitless_check::{check, History, QueueModel, QueueOp, QueueRet, Recorder};

type H = History<QueueOp<u32>, QueueRet<u32>>;

fn round(q: &WaitFreeQueue<u32>, threads: usize, ops: usize, seed: u64) -> H {
    let rec: Recorder<QueueOp<u32>, QueueRet<u32>> = Recorder::new();
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        for t in 0..threads {
            let (rec, barrier) = (&rec, &barrier);
            s.spawn(move || {
                let mut log = rec.thread();
                let mut rng = seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                barrier.wait();
                for i in 0..ops {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Enqueue-heavy so that the small queues fill up.
                    if rng % 5 < 3 {
                        let v = (t * 100 + i) as u32;
                        log.op(QueueOp::Enqueue(v), || match q.enqueue(v) {
                            Ok(()) => QueueRet::Enqueued,
                            Err(QueueError::Full(back)) => {
                                assert_eq!(back, v);
                                QueueRet::Full
                            }
                        });
                    } else {
                        log.op(QueueOp::Dequeue, || QueueRet::Dequeued(q.dequeue()));
                    }
                }
            });
        }
    });
    rec.into_history()
}

fn histories(build: fn(usize, usize) -> WaitFreeQueue<u32>) {
    let rounds = if cfg!(miri) { 2 } else { 120 };
    let (mut full, mut empty) = (0, 0);
    for r in 0..rounds {
        for (cap, threads, ops) in [
            (1usize, 3usize, 4usize),
            (2, 4, 4),
            (2, 3, 6),
            (4, 3, 6),
            (8, 4, 6),
            (16, 4, 8),
        ] {
            // One record to start with: the rounds also exercise growth.
            let q = build(cap, 1);
            let mut h = round(&q, threads, ops, r as u64 * 7 + cap as u64);
            // The leftovers, dequeued after the round, belong to the history
            // too (so a lost value shows up as a non-linearizable one).
            let mut log_end = h.ops().iter().filter_map(|o| o.ret).max().unwrap_or(0) + 1;
            while let Some(v) = q.dequeue() {
                h.push(
                    threads,
                    QueueOp::Dequeue,
                    QueueRet::Dequeued(Some(v)),
                    log_end,
                    log_end + 1,
                );
                log_end += 2;
            }
            full += h
                .ops()
                .iter()
                .filter(|o| o.output == Some(QueueRet::Full))
                .count();
            empty += h
                .ops()
                .iter()
                .filter(|o| o.output == Some(QueueRet::Dequeued(None)))
                .count();
            if let Err(e) = check(&QueueModel::bounded(cap), &h) {
                panic!("not linearizable (capacity {cap}):\n{e}");
            }
        }
    }
    // The rounds must actually reach the interesting answers.
    assert!(
        cfg!(miri) || (full > 0 && empty > 0),
        "full {full} empty {empty}"
    );
}

#[test]
fn small_histories_are_linearizable() {
    histories(WaitFreeQueue::with_threads);
}

/// The same with every operation forced through announce-and-help.
#[cfg(feature = "step-count")]
#[test]
fn small_histories_are_linearizable_slow_path_only() {
    histories(waitless::queue::verification::queue_slow_path_only);
}

/// The same with the fast path and yields at every hook point.
#[cfg(feature = "step-count")]
#[test]
fn small_histories_are_linearizable_with_yields() {
    histories(waitless::queue::verification::queue_with_yield_hooks);
}
