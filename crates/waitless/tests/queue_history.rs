//! Stress histories of `WaitFreeQueue` checked for linearizability against
//! `waitless_check::QueueModel::bounded(capacity)`, with unique values and
//! per-value hit counts (no loss, no duplication). Oversubscribed on
//! purpose: more threads than cores, small capacities so `Full` and `None`
//! are frequent answers.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use waitless::queue::{QueueError, WaitFreeQueue};
use waitless_check::{assert_linearizable, QueueModel, QueueOp, QueueRet, Recorder};

fn run(q: &WaitFreeQueue<u64>, threads: usize, ops_per_thread: usize) {
    let cap = q.capacity();
    let rec: Recorder<QueueOp<u64>, QueueRet<u64>> = Recorder::new();
    let enqueued: Vec<AtomicUsize> = (0..threads * ops_per_thread)
        .map(|_| AtomicUsize::new(0))
        .collect();
    let dequeued: Vec<AtomicUsize> = (0..threads * ops_per_thread)
        .map(|_| AtomicUsize::new(0))
        .collect();
    thread::scope(|s| {
        for t in 0..threads {
            let (rec, enqueued, dequeued) = (&rec, &enqueued, &dequeued);
            s.spawn(move || {
                let mut log = rec.thread();
                let mut rng = (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for i in 0..ops_per_thread {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if rng % 2 == 0 {
                        let v = (t * ops_per_thread + i) as u64;
                        let r = log.op(QueueOp::Enqueue(v), || match q.enqueue(v) {
                            Ok(()) => QueueRet::Enqueued,
                            Err(QueueError::Full(back)) => {
                                assert_eq!(back, v, "Full gave back a different value");
                                QueueRet::Full
                            }
                        });
                        if r == QueueRet::Enqueued {
                            enqueued[v as usize].fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        let r = log.op(QueueOp::Dequeue, || QueueRet::Dequeued(q.dequeue()));
                        if let QueueRet::Dequeued(Some(v)) = r {
                            dequeued[v as usize].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    assert!(q.len() <= cap);
                }
            });
        }
    });
    let history = rec.into_history();
    assert_linearizable(&QueueModel::bounded(cap), &history);
    while let Some(v) = q.dequeue() {
        dequeued[v as usize].fetch_add(1, Ordering::Relaxed);
    }
    for v in 0..enqueued.len() {
        assert_eq!(
            enqueued[v].load(Ordering::Relaxed),
            dequeued[v].load(Ordering::Relaxed),
            "value {v}: enqueued and dequeued counts differ"
        );
        assert!(
            dequeued[v].load(Ordering::Relaxed) <= 1,
            "value {v} duplicated"
        );
    }
}

#[test]
fn history_8_threads_capacity_2() {
    for _ in 0..3 {
        run(&WaitFreeQueue::with_threads(2, 8), 8, 400);
    }
}

#[test]
fn history_4_threads_capacity_4() {
    for _ in 0..3 {
        run(&WaitFreeQueue::new(4), 4, 800);
    }
}

#[test]
fn history_16_threads_capacity_1() {
    run(&WaitFreeQueue::with_threads(1, 16), 16, 200);
}

/// Every operation forced through announce-and-help, with yields at every
/// hook point.
#[cfg(feature = "step-count")]
#[test]
fn history_slow_path_forced_8_threads_capacity_2() {
    for _ in 0..3 {
        run(
            &waitless::queue::verification::queue_slow_path_only(2, 8),
            8,
            400,
        );
    }
}
