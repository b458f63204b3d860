//! Linearizability of the MPMC core: concurrent histories of `send`/`recv`
//! (unique values) recorded with `waitless-check` and checked against the
//! bounded FIFO queue model, for every ordering strategy and small
//! capacities (so `Full` and `None` answers are frequent and checked too).
#![cfg(not(loom))]

use std::sync::Barrier;
use std::thread;

use waitless::channel::{AcquireRelease, Optimized, OptimizedChannel, OrderingStrategy, SeqCstAll};
use waitless_check::{assert_linearizable, QueueModel, QueueOp, QueueRet, Recorder};

/// What one checked history contained, so the tests can show they were not
/// vacuous (answers of every kind, operations of different threads
/// overlapping in time).
#[derive(Default)]
struct Seen {
    full: usize,
    empty: usize,
    overlaps: usize,
}

fn record_and_check<O: OrderingStrategy>(
    cap: usize,
    threads: usize,
    ops_per_thread: usize,
    seen: &mut Seen,
) {
    let ch: OptimizedChannel<u64, O> = OptimizedChannel::with_strategy(cap);
    let rec: Recorder<QueueOp<u64>, QueueRet<u64>> = Recorder::new();
    let start = Barrier::new(threads);
    thread::scope(|s| {
        for t in 0..threads {
            let (ch, rec, start) = (&ch, &rec, &start);
            s.spawn(move || {
                let mut log = rec.thread();
                start.wait();
                // A cheap per-thread xorshift decides send or recv.
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                for i in 0..ops_per_thread {
                    if i % 64 == 63 {
                        // Give other threads a chance to interleave even
                        // when all of them share one CPU.
                        thread::yield_now();
                    }
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x % 2 == 0 {
                        let v = (t * ops_per_thread + i) as u64;
                        log.op(QueueOp::Enqueue(v), || match ch.send(v) {
                            Ok(()) => QueueRet::Enqueued,
                            Err(e) => {
                                assert!(e.is_full());
                                QueueRet::Full
                            }
                        });
                    } else {
                        log.op(QueueOp::Dequeue, || QueueRet::Dequeued(ch.recv()));
                    }
                }
            });
        }
    });
    let history = rec.into_history();
    let mut ops: Vec<_> = history.ops().iter().collect();
    ops.sort_by_key(|o| o.call);
    for w in ops.windows(2) {
        if w[0].thread != w[1].thread && w[0].ret.is_some_and(|r| w[1].call < r) {
            seen.overlaps += 1;
        }
    }
    for o in &ops {
        match o.output {
            Some(QueueRet::Full) => seen.full += 1,
            Some(QueueRet::Dequeued(None)) => seen.empty += 1,
            _ => {}
        }
    }
    assert_linearizable(&QueueModel::bounded(cap), &history);
}

fn rounds() -> usize {
    if cfg!(miri) {
        1
    } else {
        10
    }
}

fn not_vacuous(seen: &Seen) {
    assert!(seen.full > 0, "no Full answer was checked");
    assert!(seen.empty > 0, "no empty answer was checked");
    if !cfg!(miri) {
        assert!(seen.overlaps > 0, "no concurrent operations were checked");
    }
}

/// Runs `round` at least `rounds()` times and until some concurrency was
/// observed (at most 200 times: a loaded machine may run threads one after
/// another for a while), then checks the runs were not vacuous.
fn run_rounds(mut round: impl FnMut(&mut Seen)) {
    let mut seen = Seen::default();
    let mut n = 0;
    while n < rounds() || (seen.overlaps == 0 && !cfg!(miri) && n < 200) {
        round(&mut seen);
        n += 1;
    }
    not_vacuous(&seen);
}

#[test]
fn optimized_histories_are_linearizable() {
    run_rounds(|seen| {
        record_and_check::<Optimized>(2, 4, 1000, seen);
        record_and_check::<Optimized>(1, 3, 1000, seen);
    });
}

#[test]
fn acquire_release_histories_are_linearizable() {
    run_rounds(|seen| record_and_check::<AcquireRelease>(4, 4, 1000, seen));
}

#[test]
fn seq_cst_histories_are_linearizable() {
    run_rounds(|seen| record_and_check::<SeqCstAll>(2, 4, 1000, seen));
}
