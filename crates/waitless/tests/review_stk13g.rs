#![cfg(not(loom))]
//! Review stk13gr (wave 7) of branch stk13g (issue 13).
//!
//! stk13g raised the pool's seal batch (`epoch/pool.rs`, `POOL_BATCH`) from
//! 32 to 128 retirements. The retirements since the last seal sit on the
//! record's *open* list, which only its owner seals (every `POOL_BATCH`
//! retirements, on a periodic pin, on a flush or at exit). A thread that
//! pops and then stops therefore keeps its sealed backlog (at most one free
//! list cap, after which `seal_pool` hands it off) *plus* up to
//! `POOL_BATCH - 1` open blocks, whatever other threads' `advance_epoch`
//! calls do. `docs/epoch.md` and `epoch/pool.rs` say such a thread "keeps
//! at most one cap's worth", and the stack's own unit test
//! `nodes_retired_by_a_thread_that_stopped_popping_are_freed_by_others_advances`
//! allows the cap plus 64 blocks: with a batch of 32 the open list (< 32)
//! always fit in that margin; with 128 it does not, and the unit test only
//! passes because its 20 000 pops leave 32 open blocks. This test is that
//! unit test with a pop count that leaves 100 open blocks on top of a full
//! cap's worth of sealed ones.
//!
//! The margin of 64 is the unit test's; the finding is that the documented
//! bound of what a stopped popper keeps grew by 96 blocks per thread per
//! structure (for the B-tree's ~550-byte node blocks, whose free list starts
//! at 118 blocks, the open list alone is now larger than "one cap's worth").

use std::sync::atomic::{AtomicBool, Ordering as O};

use waitless::stack::{cached_node_bytes, LockFreeStack};

/// A `LockFreeStack<u64>` node's block size, measured through the public
/// node-cache report: one popped node, three advances with nobody pinned,
/// and the block is on this fresh thread's free list.
fn node_bytes() -> usize {
    std::thread::spawn(|| {
        let s = LockFreeStack::new();
        s.push(0u64).unwrap();
        assert_eq!(s.pop(&s.enter()), Some(0));
        for _ in 0..3 {
            s.advance_epoch();
        }
        let b = cached_node_bytes();
        assert!(b > 0, "the popped node did not reach the cache");
        b
    })
    .join()
    .unwrap()
}

/// A thread pops a cap's worth plus 100 nodes under one guard (so nothing
/// expires while it pops), unpins and idles; with nobody pinned, four
/// advances by another thread leave it holding more than the cap plus the
/// 64-block margin of the stack's unit test.
#[test]
fn a_stopped_popper_keeps_at_most_a_cap_plus_the_unit_tests_margin() {
    // The free list's starting bound, `POOL_FREE_BYTES` (64 KiB), in blocks
    // (at least `POOL_FREE_MIN`, 16); the popper never pushes, so its cap
    // never grows (`Pool::missed` runs only on a push's empty take).
    let cap = (64 * 1024 / node_bytes()).max(16);
    let bound = cap + 64;
    let n = (cap + 100) as u64;
    let s = LockFreeStack::new();
    for i in 0..n {
        s.push(i).unwrap();
    }
    let popped = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    let left = std::thread::scope(|sc| {
        sc.spawn(|| {
            let g = s.enter();
            let mut k = 0u64;
            while s.pop(&g).is_some() {
                k += 1;
            }
            assert_eq!(k, n);
            drop(g);
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
        left
    });
    assert!(
        left <= bound,
        "a popper that stopped keeps {left} of {n} popped nodes retired after 4 advances \
         with nobody pinned (free-list cap {cap} blocks, unit-test bound {bound})"
    );
    // Once the popper has exited, its backlog went to the garbage list.
    for _ in 0..3 {
        s.advance_epoch();
    }
    assert_eq!(s.stats().retired_nodes, 0);
}
