use super::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as O};
use std::sync::Arc;

/// A value that counts its drops.
struct Counted(u64, Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, O::Relaxed);
    }
}

fn configs() -> [StackConfig; 3] {
    [
        StackConfig::default(),
        StackConfig {
            elimination: false,
            statistics: true,
        },
        StackConfig {
            elimination: true,
            statistics: false,
        },
    ]
}

#[test]
fn lifo_order_and_empty() {
    for cfg in configs() {
        let s = LockFreeStack::with_config(cfg);
        let g = s.enter();
        assert_eq!(s.pop(&g), None);
        for i in 0..10 {
            s.push(i).unwrap();
        }
        for i in (0..10).rev() {
            assert_eq!(s.pop(&g), Some(i));
        }
        assert_eq!(s.pop(&g), None);
    }
}

#[test]
fn stats_count_operations_and_retired_nodes() {
    let s = LockFreeStack::new();
    for i in 0..5 {
        s.push(i).unwrap();
    }
    {
        let g = s.enter();
        s.pop(&g);
        s.pop(&g);
        assert!(s.pop(&s.enter()).is_some(), "nested guard pops too");
    }
    let st = s.stats();
    assert_eq!(st.successful_pushes, 5);
    assert_eq!(st.successful_pops, 3);
    assert_eq!(st.active_nodes, 2);
    // `retry_count` is not asserted: a weak CAS may fail spuriously (Miri
    // makes it do so), and each failure is a retry.
    assert_eq!(st.retired_nodes, 3, "popped nodes wait for the epoch");
    let e = st.current_epoch;
    for _ in 0..3 {
        s.advance_epoch();
    }
    let st = s.stats();
    assert_eq!(st.retired_nodes, 0, "advance_epoch frees what became safe");
    assert!(st.current_epoch >= e + 2);

    let quiet = LockFreeStack::with_config(StackConfig {
        elimination: true,
        statistics: false,
    });
    quiet.push(1).unwrap();
    quiet.push(2).unwrap();
    let st = quiet.stats();
    assert_eq!((st.active_nodes, st.successful_pushes), (2, 0));
}

#[test]
fn advance_epoch_waits_for_a_pinned_thread() {
    let s = LockFreeStack::new();
    s.push(1).unwrap();
    s.push(2).unwrap();
    let pinned = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let _g = s.enter();
            pinned.store(true, O::Release);
            while !release.load(O::Acquire) {
                std::thread::yield_now();
            }
        });
        while !pinned.load(O::Acquire) {
            std::thread::yield_now();
        }
        assert_eq!(s.pop(&s.enter()), Some(2));
        for _ in 0..5 {
            s.advance_epoch();
        }
        assert_eq!(s.stats().retired_nodes, 1, "freed under a pinned thread");
        release.store(true, O::Release);
    });
    s.advance_epoch();
    s.advance_epoch();
    assert_eq!(s.stats().retired_nodes, 0);
}

#[test]
fn failed_allocation_gives_the_value_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let s = LockFreeStack::new();
    s.push(Counted(1, Arc::clone(&drops))).unwrap();
    node::FAIL_NEXT_ALLOCS.with(|f| f.set(1));
    let err = s.push(Counted(2, Arc::clone(&drops))).unwrap_err();
    assert_eq!(format!("{err:?}"), "StackError::OutOfMemory(..)");
    assert!(err.to_string().contains("out of memory"));
    let v = err.into_inner();
    assert_eq!(v.0, 2);
    assert_eq!(drops.load(O::Relaxed), 0, "the value was not dropped");
    drop(v);
    // The stack is intact and usable after the failure.
    s.push(Counted(3, Arc::clone(&drops))).unwrap();
    let g = s.enter();
    assert_eq!(s.pop(&g).map(|c| c.0), Some(3));
    assert_eq!(s.pop(&g).map(|c| c.0), Some(1));
    assert_eq!(s.stats().successful_pushes, 2);
}

#[test]
#[should_panic(expected = "another stack")]
fn pop_with_a_guard_from_another_stack_panics() {
    let a: LockFreeStack<u8> = LockFreeStack::new();
    let b: LockFreeStack<u8> = LockFreeStack::new();
    a.push(1).unwrap();
    let g = b.enter();
    let _ = a.pop(&g);
}

#[test]
fn drop_drops_every_remaining_value_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let n = if cfg!(miri) { 20 } else { 1000 };
    {
        let s = LockFreeStack::new();
        for i in 0..n {
            s.push(Counted(i, Arc::clone(&drops))).unwrap();
        }
        let g = s.enter();
        for _ in 0..n / 2 {
            drop(s.pop(&g));
        }
        assert_eq!(drops.load(O::Relaxed), n as usize / 2);
    }
    assert_eq!(drops.load(O::Relaxed), n as usize);
    assert_eq!(Arc::strong_count(&drops), 1);
}

#[test]
fn a_panicking_drop_leaks_nothing_else() {
    struct Bomb(u64, Arc<AtomicUsize>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            self.1.fetch_add(1, O::Relaxed);
            if self.0 == 3 {
                panic!("boom");
            }
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let s = LockFreeStack::new();
    for i in 0..8 {
        s.push(Bomb(i, Arc::clone(&drops))).unwrap();
    }
    drop(s.pop(&s.enter()));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(s)));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(drops.load(O::Relaxed), 8, "every value was dropped");
    assert_eq!(Arc::strong_count(&drops), 1, "no value leaked");
}

#[test]
fn non_static_values() {
    let owner = String::from("borrowed");
    let s = LockFreeStack::new();
    s.push(owner.as_str()).unwrap();
    assert_eq!(s.pop(&s.enter()), Some("borrowed"));
    s.push(&owner[..3]).unwrap();
    drop(s);
}

#[test]
fn stack_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LockFreeStack<Box<u8>>>();
    assert_send_sync::<StackError<u8>>();
}

/// Each thread pushes unique values and pops; at the end every value was
/// popped or left in the stack exactly once.
fn unique_values_run(threads: u64, per: u64, cfg: StackConfig) {
    let drops = Arc::new(AtomicUsize::new(0));
    let s = LockFreeStack::with_config(cfg);
    let popped: Vec<Vec<u64>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (s, drops) = (&s, &drops);
                sc.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..per {
                        s.push(Counted(t * per + i, Arc::clone(drops))).unwrap();
                        if i % 3 != 2 {
                            let g = s.enter();
                            if let Some(c) = s.pop(&g) {
                                got.push(c.0);
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = HashSet::new();
    for v in popped.iter().flatten() {
        assert!(seen.insert(*v), "value {v} popped twice");
    }
    let g = s.enter();
    while let Some(c) = s.pop(&g) {
        assert!(seen.insert(c.0), "value {} duplicated", c.0);
    }
    drop(g);
    assert_eq!(seen.len() as u64, threads * per, "values lost");
    let st = s.stats();
    if cfg.statistics {
        assert_eq!(st.successful_pushes, threads * per);
        assert_eq!(st.successful_pops, threads * per);
        assert_eq!(st.active_nodes, 0);
    }
    drop(s);
    assert_eq!(drops.load(O::Relaxed) as u64, threads * per);
    assert_eq!(Arc::strong_count(&drops), 1);
}

fn unique_per_thread() -> u64 {
    if cfg!(miri) {
        30
    } else {
        20_000
    }
}

#[test]
fn unique_values_8_threads_elimination() {
    unique_values_run(8, unique_per_thread(), configs()[0]);
}

#[test]
fn unique_values_8_threads_no_elimination() {
    unique_values_run(8, unique_per_thread(), configs()[1]);
}

#[test]
fn unique_values_8_threads_no_stats() {
    unique_values_run(8, unique_per_thread(), configs()[2]);
}

#[test]
fn elimination_exchange_hands_the_value_over() {
    let e: Elimination<u64> = Elimination::new();
    struct SendPtr(*mut Node<u64>);
    // SAFETY: the node is handed to exactly one other thread in the test.
    unsafe impl Send for SendPtr {}
    // SAFETY: a null block: a fresh allocation.
    let node = unsafe { alloc_node(42u64, core::ptr::null_mut()) }
        .ok()
        .unwrap();
    let sent = SendPtr(node);
    let done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let sent = sent;
            // Keep offering until a popper takes it.
            while !e.offer(sent.0, 0) {
                std::thread::yield_now();
            }
            done.store(true, O::Release);
        });
        let taken = loop {
            if let Some(p) = e.take(0) {
                break p;
            }
            std::thread::yield_now();
        };
        assert_eq!(taken, node);
        // SAFETY: `take` handed us the node exclusively.
        let v = unsafe { take_value(taken) };
        // SAFETY: exclusive, value moved out.
        unsafe { dealloc_node(taken) };
        assert_eq!(v, 42);
    });
    assert!(done.load(O::Acquire));
    assert!(e.is_idle());
}

#[test]
fn withdrawn_offer_stays_with_the_pusher() {
    let e: Elimination<u64> = Elimination::new();
    // SAFETY: a null block: a fresh allocation.
    let node = unsafe { alloc_node(1u64, core::ptr::null_mut()) }
        .ok()
        .unwrap();
    assert!(!e.offer(node, 1), "nobody popped");
    assert!(e.is_idle());
    assert!(e.take(1).is_none());
    // SAFETY: never published; value moved out below.
    let v = unsafe { take_value(node) };
    // SAFETY: as above.
    unsafe { dealloc_node(node) };
    assert_eq!(v, 1);
}

/// The node cache keeps popped blocks for the next pushes, holds at most
/// `NODE_CACHE_BYTES` per stack per thread, and the thread that drops a
/// stack gives its blocks back.
#[test]
fn node_cache_is_bounded_reused_and_returned_on_drop() {
    let n: u64 = if cfg!(miri) { 100 } else { 10_000 };
    // A fresh thread: its cache starts empty whatever other tests did.
    std::thread::spawn(move || {
        assert_eq!(cached_node_bytes(), 0);
        let s = LockFreeStack::new();
        for i in 0..n {
            s.push(i).unwrap();
        }
        let g = s.enter();
        while s.pop(&g).is_some() {}
        drop(g);
        // No thread is pinned: three advances end every grace period.
        s.advance_epoch();
        s.advance_epoch();
        s.advance_epoch();
        let held = cached_node_bytes();
        assert!(held > 0, "no popped node reached the cache");
        assert!(held <= NODE_CACHE_BYTES, "cache holds {held} bytes");
        s.push(1).unwrap();
        assert!(cached_node_bytes() < held, "the push did not reuse a block");
        drop(s);
        assert_eq!(cached_node_bytes(), 0);
    })
    .join()
    .unwrap();
}

/// Review hot13r: nodes popped by a thread that then stops popping (it only
/// pushes, or idles) must still be freed once the epoch has moved on with no
/// thread pinned. Before the intrusive pool they were closures in sealed bags
/// on the collector's global list, so any thread's `advance_epoch` ran them.
/// Now a sealed pool batch expires only when its own thread seals, pins 128
/// times, flushes or exits: here it is held for as long as the popper lives,
/// whatever the epoch does, and `retired_nodes` never drops. The assertion
/// allows the popper to keep up to the node cache's bound (a fix may bound
/// the private backlog instead of handing every batch over), but not every
/// node it ever popped.
// Under Miri the thousands of operations needed to pass the cache bound take
// many minutes; the hand-off it exercises is the same function a thread's
// exit runs, which the Miri-run tests cover.
#[cfg_attr(
    miri,
    ignore = "needs more nodes than the 64 KiB cache bound: too slow under Miri"
)]
#[test]
fn nodes_retired_by_a_thread_that_stopped_popping_are_freed_by_others_advances() {
    // More nodes than the cache bound holds (16-byte nodes: 4096).
    let n: u64 = if cfg!(miri) { 5_000 } else { 20_000 };
    // The popper only pops, so its cache never grows past its start.
    // Plus the open list it has not sealed yet (fewer than `pool_batch`,
    // 128 blocks of 16 bytes; the margin was 64 when every pool sealed
    // every 32 retirements).
    let bound = NODE_CACHE_START_BYTES / core::mem::size_of::<node::Node<u64>>() + 128;
    let s = LockFreeStack::new();
    for i in 0..n {
        s.push(i).unwrap();
    }
    let popped = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let g = s.enter();
            while s.pop(&g).is_some() {}
            drop(g);
            // The thread lives on, unpinned (a consumer that became a
            // producer, or a pool thread between jobs).
            popped.store(true, O::Release);
            while !release.load(O::Acquire) {
                std::thread::yield_now();
            }
        });
        while !popped.load(O::Acquire) {
            std::thread::yield_now();
        }
        // Nobody is pinned: these advances end every grace period.
        for _ in 0..4 {
            s.advance_epoch();
        }
        let left = s.stats().retired_nodes;
        release.store(true, O::Release);
        // Before the pool, only the popper's unsealed bag (< 32) waited.
        assert!(
            left <= bound,
            "{left} of {n} popped nodes still retired after 4 advances with nobody pinned"
        );
    });
}

/// Issue 13 (4 threads on 2 CPUs): while another thread stays pinned, the
/// popped nodes cannot expire, the pushes find the node cache empty and go
/// to the allocator. The cache then grows to the waiting backlog, so that
/// once the pinned thread moves on, the backlog is kept for the next wait
/// (up to `NODE_CACHE_BYTES`) instead of going back to the allocator.
#[test]
#[cfg_attr(miri, ignore)] // tens of thousands of operations
fn node_cache_grows_to_keep_the_backlog_of_a_held_epoch() {
    const START: usize = NODE_CACHE_START_BYTES;
    let n = 4 * START / core::mem::size_of::<node::Node<u64>>();
    let s = LockFreeStack::<u64>::new();
    let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|sc| {
        let s = &s;
        sc.spawn(move || {
            let g = s.enter();
            pinned_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            drop(g);
        });
        pinned_rx.recv().unwrap();
        for i in 0..n as u64 {
            s.push(i).unwrap();
            assert_eq!(s.pop(&s.enter()), Some(i));
        }
        // Nothing expired while the other thread held its pin.
        assert!(s.stats().retired_nodes >= n - 2 * 32, "{:?}", s.stats());
        go_tx.send(()).unwrap();
    });
    for _ in 0..3 {
        s.advance_epoch();
    }
    let cached = cached_node_bytes();
    assert!(
        cached > START && cached <= NODE_CACHE_BYTES,
        "the whole backlog should be kept: {cached} bytes"
    );
    // The next pushes are served from the cache.
    for i in 0..100 {
        s.push(i).unwrap();
    }
    assert_eq!(cached_node_bytes(), cached - 100 * size_of_node());
    drop(s);
    assert_eq!(cached_node_bytes(), 0);
}

fn size_of_node() -> usize {
    core::mem::size_of::<node::Node<u64>>()
}
