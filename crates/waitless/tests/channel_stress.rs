//! Exactly-once stress tests: every value unique, every value received once,
//! for the MPMC core (every strategy, capacity 1 included), the SPSC ring and
//! the blocking handles, at 2 threads and oversubscribed (8+ threads on any
//! machine). Drop counting proves no leak and no double drop.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use waitless::channel::{
    self, AcquireRelease, Optimized, OptimizedChannel, OrderingStrategy, SeqCstAll,
};

/// Seconds a test may take before it fails as hung (a lost value or a
/// parked thread never woken would otherwise hang the suite).
const HANG: u64 = 300;

use waitless_check::within;

fn scale(n: usize) -> usize {
    if cfg!(miri) {
        (n / 500).max(4)
    } else {
        n
    }
}

/// Per-producer values are `producer * per + i`; checks each was seen once
/// and each producer's values arrived in order at every consumer.
fn mpmc_exactly_once<O: OrderingStrategy>(cap: usize, producers: usize, consumers: usize) {
    let per = scale(20_000);
    let ch: OptimizedChannel<usize, O> = OptimizedChannel::with_strategy(cap);
    let total = producers * per;
    let seen: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
    let received = AtomicUsize::new(0);
    thread::scope(|s| {
        for p in 0..producers {
            let ch = &ch;
            s.spawn(move || {
                for i in 0..per {
                    let mut v = p * per + i;
                    while let Err(e) = ch.send(v) {
                        assert!(e.is_full());
                        v = e.into_inner();
                        thread::yield_now();
                    }
                }
            });
        }
        for _ in 0..consumers {
            s.spawn(|| {
                let mut last = vec![None::<usize>; producers];
                while received.load(Ordering::Relaxed) < total {
                    match ch.recv() {
                        Some(v) => {
                            let p = v / per;
                            if let Some(prev) = last[p] {
                                assert!(v > prev, "producer {p}: {v} after {prev}");
                            }
                            last[p] = Some(v);
                            seen[v].fetch_add(1, Ordering::Relaxed);
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                        None => thread::yield_now(),
                    }
                }
            });
        }
    });
    for (v, c) in seen.iter().enumerate() {
        assert_eq!(
            c.load(Ordering::Relaxed),
            1,
            "value {v} received wrong number of times"
        );
    }
    assert_eq!(ch.recv(), None);
    assert!(ch.is_empty());
}

#[test]
fn mpmc_optimized_2p2c() {
    within(HANG, "mpmc_optimized_2p2c", || {
        mpmc_exactly_once::<Optimized>(16, 2, 2);
    });
}

#[test]
fn mpmc_capacity_one_every_strategy() {
    within(HANG, "mpmc_capacity_one_every_strategy", || {
        mpmc_exactly_once::<Optimized>(1, 2, 2);
        mpmc_exactly_once::<AcquireRelease>(1, 2, 2);
        mpmc_exactly_once::<SeqCstAll>(1, 2, 2);
    });
}

#[test]
fn mpmc_oversubscribed_every_strategy() {
    within(HANG, "mpmc_oversubscribed_every_strategy", || {
        mpmc_exactly_once::<Optimized>(4, 5, 4);
        mpmc_exactly_once::<AcquireRelease>(8, 4, 5);
        mpmc_exactly_once::<SeqCstAll>(2, 4, 4);
    });
}

#[test]
fn spsc_exactly_once_in_order() {
    within(HANG, "spsc_exactly_once_in_order", || {
        for cap in [1usize, 2, 1024] {
            let n = scale(300_000);
            let (mut tx, mut rx) = channel::spsc::bounded::<usize>(cap);
            thread::scope(|s| {
                s.spawn(move || {
                    for i in 0..n {
                        let mut v = i;
                        while let Err(e) = tx.push(v) {
                            v = e.into_inner();
                            thread::yield_now();
                        }
                    }
                });
                let mut expect = 0;
                while expect < n {
                    match rx.pop() {
                        Some(v) => {
                            assert_eq!(v, expect);
                            expect += 1;
                        }
                        None => thread::yield_now(),
                    }
                }
                assert_eq!(rx.pop(), None);
            });
        }
    });
}

fn blocking_exactly_once(cap: usize, senders: usize, receivers: usize) {
    let per = scale(10_000);
    let total = senders * per;
    let (tx, rx) = channel::bounded::<usize>(cap);
    let seen: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
    thread::scope(|s| {
        for p in 0..senders {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..per {
                    tx.send(p * per + i).unwrap();
                }
            });
        }
        drop(tx);
        for _ in 0..receivers {
            let rx = rx.clone();
            let seen = &seen;
            s.spawn(move || {
                // Ends when every sender is gone and the channel is drained.
                for v in rx.iter() {
                    seen[v].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    for (v, c) in seen.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "value {v}");
    }
    assert_eq!(rx.try_recv(), Err(channel::TryRecvError::Disconnected));
}

#[test]
fn blocking_2x2() {
    within(HANG, "blocking_2x2", || {
        blocking_exactly_once(4, 2, 2);
    });
}

#[test]
fn blocking_oversubscribed_small_capacity() {
    within(HANG, "blocking_oversubscribed_small_capacity", || {
        // 12 threads on a 2-core machine, capacity 1: parks constantly.
        blocking_exactly_once(1, 6, 6);
    });
}

#[test]
fn blocking_timeouts_lose_nothing() {
    within(HANG, "blocking_timeouts_lose_nothing", || {
        let per = scale(5_000);
        let (tx, rx) = channel::bounded::<usize>(2);
        let seen: Vec<AtomicUsize> = (0..per * 3).map(|_| AtomicUsize::new(0)).collect();
        thread::scope(|s| {
            for p in 0..3 {
                let tx = tx.clone();
                s.spawn(move || {
                    for i in 0..per {
                        let mut v = p * per + i;
                        loop {
                            match tx.send_timeout(v, std::time::Duration::from_micros(50)) {
                                Ok(()) => break,
                                Err(e) => {
                                    assert!(e.is_timeout());
                                    v = e.into_inner();
                                }
                            }
                        }
                    }
                });
            }
            drop(tx);
            for _ in 0..3 {
                let rx = rx.clone();
                let seen = &seen;
                s.spawn(move || loop {
                    match rx.recv_timeout(std::time::Duration::from_micros(30)) {
                        Ok(v) => {
                            seen[v].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(channel::RecvTimeoutError::Timeout) => {}
                        Err(channel::RecvTimeoutError::Disconnected) => break,
                    }
                });
            }
        });
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    });
}

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn drops_counted_across_threads_no_leak_no_double_drop() {
    within(
        HANG,
        "drops_counted_across_threads_no_leak_no_double_drop",
        || {
            let made = scale(4_000).max(64);
            let drops = Arc::new(AtomicUsize::new(0));
            // MPMC core: consumers drop what they take, the channel drops the rest.
            {
                let ch = OptimizedChannel::<Counted>::new(64);
                thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            for _ in 0..made / 2 {
                                let mut v = Counted(drops.clone());
                                while let Err(e) = ch.send(v) {
                                    v = e.into_inner();
                                    thread::yield_now();
                                }
                            }
                        });
                    }
                    s.spawn(|| {
                        // Take all but 32: the rest stay inside (capacity 64 > 32).
                        for _ in 0..made / 2 * 2 - 32 {
                            while ch.recv().is_none() {
                                thread::yield_now();
                            }
                        }
                    });
                });
            }
            assert_eq!(drops.load(Ordering::Relaxed), made / 2 * 2);
            // Blocking: the last receiver goes with values inside, which are dropped
            // at once (the sender is still alive); failed sends give values back.
            drops.store(0, Ordering::Relaxed);
            {
                let (tx, rx) = channel::bounded::<Counted>(8);
                for _ in 0..5 {
                    tx.send(Counted(drops.clone())).unwrap();
                }
                drop(rx.recv().unwrap());
                assert_eq!(drops.load(Ordering::Relaxed), 1);
                drop(rx);
                assert_eq!(drops.load(Ordering::Relaxed), 5);
                let back = tx.send(Counted(drops.clone())).unwrap_err().into_inner();
                assert_eq!(drops.load(Ordering::Relaxed), 5);
                drop(back);
                assert_eq!(drops.load(Ordering::Relaxed), 6);
            }
            assert_eq!(drops.load(Ordering::Relaxed), 6);
            // SPSC: batches, then both ends dropped in either order.
            drops.store(0, Ordering::Relaxed);
            {
                let (mut p, mut c) = channel::spsc::bounded::<Counted>(16);
                let mut src = (0..10).map(|_| Counted(drops.clone()));
                assert_eq!(p.push_iter(&mut src), 10);
                let mut out = Vec::new();
                assert_eq!(c.pop_batch(&mut out, 4), 4);
                drop(out);
                drop(c);
                assert_eq!(drops.load(Ordering::Relaxed), 4);
            }
            assert_eq!(drops.load(Ordering::Relaxed), 10);
        },
    );
}
