//! Step-bound tests: with the `step-count` feature every queue operation
//! counts its steps, and the observed maximum must never exceed the proven
//! bound, even oversubscribed (16 threads on a 2-core machine), at capacity
//! 2, and with yields at every protocol hook point (the analogue of forcing
//! wCQ's slow path: every operation is preempted mid-flight and helped).
//!
//! Run: `cargo test -p waitless --features step-count --test queue_steps`.
#![cfg(all(feature = "step-count", not(loom)))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use waitless::queue::verification::{
    dequeue_step_bound, enqueue_step_bound, observed_steps, queue_slow_path_only,
    queue_with_yield_hooks,
};
use waitless::queue::{QueueError, WaitFreeQueue};

/// Mixed enqueue/dequeue from `threads` threads with unique values; checks
/// no loss / no duplication and returns nothing (the caller checks steps).
fn hammer(q: &WaitFreeQueue<usize>, threads: usize, per: usize) {
    let hits: Vec<AtomicUsize> = (0..threads * per).map(|_| AtomicUsize::new(0)).collect();
    thread::scope(|s| {
        for t in 0..threads {
            let hits = &hits;
            s.spawn(move || {
                let mut i = 0;
                let mut n = 0usize;
                while i < per {
                    n += 1;
                    // Producers and consumers: odd threads dequeue twice as
                    // often, so the queue swings between empty and full.
                    if t % 2 == 0 || n % 3 == 0 {
                        match q.enqueue(t * per + i) {
                            Ok(()) => i += 1,
                            Err(QueueError::Full(v)) => assert_eq!(v, t * per + i),
                        }
                    }
                    if let Some(v) = q.dequeue() {
                        hits[v].fetch_add(1, Ordering::Relaxed);
                    }
                    assert!(q.len() <= q.capacity());
                }
            });
        }
    });
    while let Some(v) = q.dequeue() {
        hits[v].fetch_add(1, Ordering::Relaxed);
    }
    for (v, h) in hits.iter().enumerate() {
        assert_eq!(h.load(Ordering::Relaxed), 1, "value {v}");
    }
}

fn check_bound(q: &WaitFreeQueue<usize>, threads: usize) {
    let o = observed_steps(q);
    let (eb, db) = (
        enqueue_step_bound(q.capacity(), threads),
        dequeue_step_bound(q.capacity(), threads),
    );
    eprintln!(
        "capacity {} records {threads}: max steps enqueue {} (bound {eb}), dequeue {} (bound {db})",
        q.capacity(),
        o.enqueue,
        o.dequeue
    );
    // The counter counts: a single operation takes more than the
    // pre-loop steps, so a zero here means counting is broken.
    assert!(
        o.enqueue > 3 && o.dequeue > 3,
        "step counter not counting: {o:?}"
    );
    assert!(
        o.enqueue <= eb,
        "enqueue took {} steps > bound {eb}",
        o.enqueue
    );
    assert!(
        o.dequeue <= db,
        "dequeue took {} steps > bound {db}",
        o.dequeue
    );
}

#[test]
fn oversubscribed_16_threads_capacity_2_with_yields() {
    let q = queue_with_yield_hooks(2, 16);
    hammer(&q, 16, 1_500);
    check_bound(&q, 16);
}

#[test]
fn oversubscribed_16_threads_capacity_2_no_yields() {
    let q = WaitFreeQueue::with_threads(2, 16);
    hammer(&q, 16, 4_000);
    check_bound(&q, 16);
}

#[test]
fn small_record_count_is_tight() {
    // With k = 3 records and 3 threads, every turn belongs to a live thread.
    let q = queue_with_yield_hooks(4, 3);
    hammer(&q, 3, 5_000);
    check_bound(&q, 3);
}

#[test]
fn default_records_8_threads_capacity_1024() {
    let q = WaitFreeQueue::new(1024);
    hammer(&q, 8, 5_000);
    check_bound(&q, waitless::queue::DEFAULT_THREADS);
}

#[test]
fn capacity_1_with_yields() {
    let q = queue_with_yield_hooks(1, 4);
    hammer(&q, 4, 2_000);
    check_bound(&q, 4);
}

#[test]
fn slow_path_forced_16_threads_capacity_2() {
    // Every operation announces itself and is finished by the help loop,
    // with yields at every hook: the most demanding schedule we can force.
    let q = queue_slow_path_only(2, 16);
    hammer(&q, 16, 1_500);
    check_bound(&q, 16);
}

#[test]
fn slow_path_forced_capacity_1_k_2() {
    let q = queue_slow_path_only(1, 2);
    hammer(&q, 2, 5_000);
    check_bound(&q, 2);
}
