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
    queue_with_yield_hooks, records,
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

/// Checks the observed maxima against the bound for the queue's record
/// count `K` now (records only grow, so this is the largest `K` any
/// operation saw), and prints both.
fn check_bound(q: &WaitFreeQueue<usize>, threads: usize) {
    let o = observed_steps(q);
    let k = records(q);
    let (eb, db) = (
        enqueue_step_bound(q.capacity(), k),
        dequeue_step_bound(q.capacity(), k),
    );
    eprintln!(
        "capacity {:>4} threads {threads:>2} records {k:>3}: max steps enqueue {:>4} (bound {eb}), dequeue {:>4} (bound {db})",
        q.capacity(),
        o.enqueue,
        o.dequeue
    );
    assert!(k >= 1);
    // The counter counts: a single operation takes more than the
    // pre-loop steps, so a zero here means counting is broken.
    assert!(
        o.enqueue > 4 && o.dequeue > 4,
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

/// Operations per thread, so that every run stays short on 2 cores.
fn per(threads: usize) -> usize {
    (8_000 / threads).clamp(100, 2_000)
}

/// The grid: capacity 1, 2 and 1024 with 2, 16 and 64 threads
/// (oversubscribed on the 2-core machine), each with yields at the hook
/// points and with the slow path forced.
fn grid(cap: usize) {
    for threads in [2usize, 16, 64] {
        let q = queue_with_yield_hooks(cap, 1);
        hammer(&q, threads, per(threads));
        check_bound(&q, threads);
        let q = queue_slow_path_only(cap, 1);
        hammer(&q, threads, per(threads) / 2);
        check_bound(&q, threads);
    }
}

#[test]
fn grid_capacity_1() {
    grid(1);
}

#[test]
fn grid_capacity_2() {
    grid(2);
}

#[test]
fn grid_capacity_1024() {
    grid(1024);
}

#[test]
fn oversubscribed_16_threads_capacity_2_no_yields() {
    let q = WaitFreeQueue::with_threads(2, 16);
    hammer(&q, 16, 4_000);
    check_bound(&q, 16);
}

#[test]
fn default_records_8_threads_capacity_1024() {
    let q = WaitFreeQueue::new(1024);
    hammer(&q, 8, 5_000);
    check_bound(&q, 8);
}
