//! Memory of the B-tree under a counting `#[global_allocator]`: churn does
//! not grow memory without bound (retired paths are reclaimed through the
//! map's collector), and dropping the map returns every byte. One test in
//! this file, so no other test allocates concurrently.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::Bound;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use waitless::btree::LockFreeBTree;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to `System` unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Seals the caller's bag and advances the epoch far enough for everything
/// retired so far to run (explicit advances are never batched).
fn reclaim(m: &LockFreeBTree<String, Vec<u8>>) {
    m.collector().flush();
    for _ in 0..3 {
        m.collector().try_advance();
    }
}

/// `threads` threads insert and remove `String` keys in a key space of
/// `keys`, `rounds` operations each. Plain spawned threads, joined: `join`
/// returns after a thread's thread-locals (its epoch record cache) are
/// gone, unlike a scope, which may return while they are still being torn
/// down — and allocate or free while we measure.
fn churn(m: &Arc<LockFreeBTree<String, Vec<u8>>>, threads: u64, rounds: u64, keys: u64) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let m = Arc::clone(m);
            std::thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = format!("k{}", x % keys);
                    if x & (1 << 40) == 0 {
                        m.insert(k.clone(), vec![0u8; (x % 40) as usize]);
                    } else {
                        m.remove(k.as_str());
                    }
                    if x % 64 == 0 {
                        let from = (Bound::Included(k.as_str()), Bound::Unbounded);
                        assert!(m.range::<str, _>(from).take(8).count() <= 8);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn churn_is_bounded_and_drop_returns_every_byte() {
    let rounds: u64 = if cfg!(miri) { 200 } else { 15_000 };
    let keys = if cfg!(miri) { 30 } else { 2_000 };
    let run = move |rounds: u64| {
        let m = Arc::new(LockFreeBTree::new());
        churn(&m, 3, rounds, keys);
        reclaim(&m);
        let after_one = live();
        for _ in 0..4 {
            churn(&m, 3, rounds, keys);
        }
        reclaim(&m);
        let after_five = live();
        // Four more rounds of the same churn: the live set is the same size
        // (same key space), retired paths were reclaimed. Allow slack for
        // garbage in flight (bags not yet sealed, epochs not yet advanced).
        let slack = after_one / 2 + 64 * 1024;
        assert!(
            after_five <= after_one + slack,
            "memory grew under churn: {after_one} -> {after_five} bytes"
        );
        drop(Arc::into_inner(m).expect("every churn thread joined"));
    };
    // Warm up every lazily allocated per-process state (std's thread
    // spawning, the test harness, formatting) with a short run of the same
    // code, so the measured run starts from a settled baseline.
    std::thread::spawn(move || run(rounds / 50)).join().unwrap();
    let before = live();
    std::thread::spawn(move || run(rounds)).join().unwrap();
    assert_eq!(
        live(),
        before,
        "bytes still allocated after the map dropped"
    );
}
