//! The behaviours that crossbeam-queue's own tests (`tests/array_queue.rs`,
//! `tests/seg_queue.rs`) pin down for a bounded MPMC queue, checked against
//! [`WaitFreeQueue`]. Written for waitless; each test names the peer test
//! that inspired it.
//!
//! Differences on purpose (SPEC §4): the capacity must be a power of two
//! (`ArrayQueue` takes any non-zero capacity), and there is no `force_push`
//! (the ring-buffer tests are not ported).

// The structures run on loom's atomics under `--cfg loom`, which work only
// inside `loom::model`: these tests are for the real build.
#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use waitless::queue::{QueueError, WaitFreeQueue};
use waitless_check::DropLedger;

/// Spins (yielding: the test machine has two cores) until `f` returns
/// `Some`.
fn until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Enqueues `v`, retrying (and yielding) while the queue is full; checks
/// that `Full` gives the same value back.
fn enqueue_retrying<T: PartialEq + std::fmt::Debug + Clone>(q: &WaitFreeQueue<T>, v: T) {
    let mut v = v;
    loop {
        match q.enqueue(v) {
            Ok(()) => return,
            Err(QueueError::Full(back)) => {
                v = back;
                std::thread::yield_now();
            }
        }
    }
}

// Inspired by crossbeam-queue `array_queue.rs::smoke` (capacity 1).
#[test]
fn capacity_one_round_trips() {
    let q = WaitFreeQueue::new(1);
    q.enqueue(7).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.enqueue(9), Err(QueueError::Full(9))));
    assert_eq!(q.dequeue(), Some(7));
    q.enqueue(8).unwrap();
    assert_eq!(q.dequeue(), Some(8));
    assert_eq!(q.dequeue(), None);
    assert_eq!(q.dequeue(), None);
    assert!(q.is_empty());
}

// Inspired by crossbeam-queue `array_queue.rs::capacity`.
#[test]
fn capacity_is_what_was_asked() {
    for shift in 0..11 {
        let q = WaitFreeQueue::<i32>::new(1 << shift);
        assert_eq!(q.capacity(), 1 << shift);
    }
}

// Inspired by crossbeam-queue `array_queue.rs::zero_capacity`: a capacity
// the queue cannot honour panics at construction, naming the reason.
#[test]
#[should_panic(expected = "capacity must be a power of two")]
fn zero_capacity_panics() {
    let _ = WaitFreeQueue::<i32>::new(0);
}

// Inspired by crossbeam-queue `array_queue.rs::zero_capacity` (the same
// check for a capacity that is not a power of two).
#[test]
#[should_panic(expected = "capacity must be a power of two")]
fn non_power_of_two_capacity_panics() {
    let _ = WaitFreeQueue::<i32>::new(3);
}

// Inspired by crossbeam-queue `array_queue.rs::len_empty_full`.
#[test]
fn len_empty_full_agree() {
    let q = WaitFreeQueue::new(2);
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (0, true, false));
    q.enqueue(()).unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (1, false, false));
    q.enqueue(()).unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (2, false, true));
    assert!(q.enqueue(()).is_err());
    assert_eq!(q.len(), 2);
    q.dequeue().unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (1, false, false));
    q.dequeue().unwrap();
    assert_eq!((q.len(), q.is_empty(), q.is_full()), (0, true, false));
}

// Inspired by crossbeam-queue `array_queue.rs::len`: exact lengths while
// one thread works, bounded lengths while two do.
#[test]
fn len_is_exact_alone_and_bounded_under_concurrency() {
    let count = if cfg!(miri) { 30 } else { 25_000 };
    let cap = if cfg!(miri) { 32 } else { 1024 };
    let iters = cap / 16;
    let q = WaitFreeQueue::new(cap);
    for _ in 0..cap / 8 {
        for i in 0..iters {
            q.enqueue(i).unwrap();
            assert_eq!(q.len(), i + 1);
        }
        for i in 0..iters {
            q.dequeue().unwrap();
            assert_eq!(q.len(), iters - i - 1);
        }
    }
    for i in 0..cap {
        q.enqueue(i).unwrap();
        assert_eq!(q.len(), i + 1);
    }
    assert!(q.is_full());
    for _ in 0..cap {
        q.dequeue().unwrap();
    }
    assert_eq!(q.len(), 0);

    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..count {
                assert_eq!(until(|| q.dequeue()), i);
                assert!(q.len() <= cap);
            }
        });
        s.spawn(|| {
            for i in 0..count {
                enqueue_retrying(&q, i);
                assert!(q.len() <= cap);
            }
        });
    });
    assert_eq!(q.len(), 0);
    assert!(q.is_empty());
}

// Inspired by crossbeam-queue `array_queue.rs::spsc` and
// `seg_queue.rs::spsc`: FIFO across threads through a small queue.
#[test]
fn spsc_order_through_a_tiny_queue() {
    let count = if cfg!(miri) { 50 } else { 100_000 };
    let q = WaitFreeQueue::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..count {
                assert_eq!(until(|| q.dequeue()), i);
            }
            assert_eq!(q.dequeue(), None);
        });
        s.spawn(|| {
            for i in 0..count {
                enqueue_retrying(&q, i);
            }
        });
    });
}

// Inspired by crossbeam-queue `array_queue.rs::mpmc` and
// `seg_queue.rs::mpmc`: every value arrives exactly once, and each
// producer's values arrive in its order.
#[test]
fn mpmc_no_loss_no_duplication() {
    let count = if cfg!(miri) { 50 } else { 20_000 };
    let threads = 4;
    let q = WaitFreeQueue::<(usize, usize)>::new(4);
    let seen: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut last = vec![None; threads];
                for _ in 0..count {
                    let (t, i) = until(|| q.dequeue());
                    assert!(
                        last[t].is_none_or(|l| l < i),
                        "producer {t}: {i} after {last:?}"
                    );
                    last[t] = Some(i);
                    seen[i].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for t in 0..threads {
            let q = &q;
            s.spawn(move || {
                for i in 0..count {
                    enqueue_retrying(q, (t, i));
                }
            });
        }
    });
    for (i, c) in seen.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), threads, "value {i}");
    }
    assert!(q.is_empty());
}

// Inspired by crossbeam-queue `array_queue.rs::linearizable`: with capacity
// equal to the number of threads, a thread that just enqueued always finds
// something to dequeue, and an enqueue of a thread that holds nothing in
// the queue never sees `Full` for long (here: it retries, and the dequeue
// that follows must succeed at once — `None` would not be linearizable).
#[test]
fn dequeue_after_own_enqueue_never_misses() {
    let count = if cfg!(miri) { 100 } else { 20_000 };
    let threads = 4;
    let q = WaitFreeQueue::new(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..count {
                    enqueue_retrying(&q, 0u8);
                    assert!(q.dequeue().is_some(), "the queue held our value");
                }
            });
        }
    });
    assert!(q.is_empty());
}

#[derive(Debug)]
struct Counted(waitless_check::Tracked);

// Inspired by crossbeam-queue `array_queue.rs::drops` and
// `seg_queue.rs::drops`: values moved through the queue are dropped by
// their receiver, values refused with `Full` come back (and are dropped
// once by the sender), and the queue drops what is left exactly once.
#[test]
fn drops_exactly_once_on_every_path() {
    let runs = if cfg!(miri) { 3 } else { 50 };
    let steps = if cfg!(miri) { 40 } else { 5_000 };
    for run in 0..runs {
        let additional = run % 30;
        let ledger = DropLedger::new(steps + additional);
        let q = WaitFreeQueue::new(32);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..steps {
                    drop(until(|| q.dequeue()));
                }
            });
            s.spawn(|| {
                for id in 0..steps {
                    let mut v = Counted(ledger.track(id));
                    loop {
                        match q.enqueue(v) {
                            Ok(()) => break,
                            Err(QueueError::Full(back)) => {
                                v = back;
                                std::thread::yield_now();
                            }
                        }
                    }
                }
            });
        });
        assert_eq!(
            ledger.dropped(),
            steps,
            "run {run}: each received value once"
        );
        for id in steps..steps + additional {
            q.enqueue(Counted(ledger.track(id))).unwrap();
        }
        assert_eq!(ledger.live(), additional);
        drop(q);
        ledger.assert_all_dropped();
        assert_eq!(ledger.dropped(), steps + additional);
    }
}

// Inspired by crossbeam-queue's `Full(T)` giving the value back
// (`ArrayQueue::push` returns `Err(value)`), including a value without
// `Debug` or `Clone`.
#[test]
fn full_gives_back_a_value_without_debug() {
    struct Opaque(u32);
    let q = WaitFreeQueue::new(1);
    assert!(q.enqueue(Opaque(1)).is_ok());
    let Err(QueueError::Full(back)) = q.enqueue(Opaque(2)) else {
        panic!("a full queue refuses")
    };
    assert_eq!(back.0, 2);
    let err = q.enqueue(Opaque(3)).unwrap_err();
    assert!(format!("{err:?}").contains("Full"));
    assert_eq!(err.to_string(), "the queue is full");
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert_eq!(boxed.to_string(), "the queue is full");
    assert_eq!(q.dequeue().map(|o| o.0), Some(1));
}

// Inspired by crossbeam-queue `array_queue.rs::into_iter` and the FIFO
// order its tests assume, drained here with `dequeue`.
#[test]
fn fifo_order_and_wraparound() {
    let q = WaitFreeQueue::new(8);
    let mut next_in = 0;
    let mut next_out = 0;
    // Many laps around the ring with a varying fill level.
    for round in 0..200 {
        for _ in 0..(round % 8) + 1 {
            if q.enqueue(next_in).is_ok() {
                next_in += 1;
            }
        }
        for _ in 0..(round % 5) + 1 {
            if let Some(v) = q.dequeue() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
        assert_eq!(q.len(), next_in - next_out);
    }
    while let Some(v) = q.dequeue() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
}

// Inspired by rtrb `lib.rs::zero_sized_type` and crossbeam-queue's
// zero-sized element handling in `seg_queue.rs`.
#[test]
fn zero_sized_elements_are_counted() {
    struct Zst;
    assert_eq!(std::mem::size_of::<Zst>(), 0);
    let q = WaitFreeQueue::new(4);
    for _ in 0..4 {
        assert!(q.enqueue(Zst).is_ok());
    }
    assert!(q.is_full());
    assert!(q.enqueue(Zst).is_err());
    for _ in 0..4 {
        assert!(q.dequeue().is_some());
    }
    assert!(q.dequeue().is_none());
}

/// Panics when dropped while `PANIC_IDS` says so.
struct PanicOnDrop(usize, std::sync::Arc<AtomicUsize>);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        assert!(self.0 != 1, "T::drop panics for value 1");
    }
}

// Inspired by crossbeam-queue's drop tests together with std's
// panic-in-drop tests for collections: one panicking `T::drop` while the
// queue is dropped does not leak the other values.
#[test]
fn a_panicking_drop_leaks_nothing_else() {
    let drops = std::sync::Arc::new(AtomicUsize::new(0));
    let q = WaitFreeQueue::new(4);
    for i in 0..4 {
        q.enqueue(PanicOnDrop(i, std::sync::Arc::clone(&drops)))
            .unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(move || drop(q))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

// Inspired by crossbeam-queue's `ArrayQueue: Send + Sync` (for `T: Send`)
// and its `Debug` impl.
#[test]
fn auto_traits_and_debug() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<WaitFreeQueue<String>>();
    send_sync::<WaitFreeQueue<std::cell::Cell<u8>>>(); // Send is enough
    let q = WaitFreeQueue::<u8>::new(2);
    q.enqueue(1).unwrap();
    assert!(format!("{q:?}").contains("WaitFreeQueue"));
}

// Inspired by crossbeam-queue `array_queue.rs::into_iter` and
// `seg_queue.rs::into_iter`: the owning iterator yields FIFO order.
#[test]
fn into_iter_yields_fifo_order() {
    let q = WaitFreeQueue::new(128);
    for i in 0..100 {
        q.enqueue(i).unwrap();
    }
    // Some laps first, so the values wrap around the ring.
    for i in 0..60 {
        assert_eq!(q.dequeue(), Some(i));
        q.enqueue(100 + i).unwrap();
    }
    let it = q.into_iter();
    assert_eq!(it.len(), 100);
    for (i, v) in it.enumerate() {
        assert_eq!(v, 60 + i);
    }
}

// Inspired by crossbeam-queue `seg_queue.rs::into_iter_drop`: stopping
// half way drops the rest exactly once.
#[test]
fn a_partial_into_iter_drops_the_rest() {
    let ledger = DropLedger::new(100);
    let q = WaitFreeQueue::new(128);
    for id in 0..100 {
        q.enqueue(Counted(ledger.track(id))).unwrap();
    }
    let mut it = q.into_iter();
    for id in 0..50 {
        assert_eq!(it.next().map(|c| c.0.id()), Some(id));
    }
    assert_eq!(it.size_hint(), (50, Some(50)));
    assert_eq!(ledger.live(), 50);
    drop(it);
    ledger.assert_all_dropped();
}

// Inspired by crossbeam-queue's `impl UnwindSafe/RefUnwindSafe for
// ArrayQueue`: a queue can be used across `catch_unwind` without
// `AssertUnwindSafe`, and a panic in user code between operations leaves
// it whole.
#[test]
fn usable_across_catch_unwind() {
    let q = WaitFreeQueue::new(4);
    q.enqueue(1).unwrap();
    let r = catch_unwind(|| {
        q.enqueue(2).unwrap();
        panic!("user code after an enqueue");
    });
    assert!(r.is_err());
    let owned = catch_unwind(move || q.into_iter().collect::<Vec<i32>>());
    assert_eq!(owned.unwrap(), [1, 2]);
}
