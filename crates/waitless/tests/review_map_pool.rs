//! Review tests (map12fr, wave 7) for map12f's per-thread value-block cache
//! (`map/pool.rs`, 08a94a9): a replaced value's box is retired, freed by a
//! hazard scan into the scanning thread's cache and reused for the next
//! value box of the same size on that thread, whatever map or value type it
//! belongs to. These tests drive many scans (and so much reuse) and check:
//! - a value that a reader still protects is never reused (a pinned
//!   reference stays intact while its key is replaced thousands of times on
//!   the same thread, whose cache would hand the block straight back);
//! - every value is dropped exactly once (each carries an `Arc` token) when
//!   blocks move between maps and between value types of one size class, when
//!   a thread exits with a full cache, when a map is dropped in a
//!   thread-local destructor, and when a value's `Drop` panics in a scan;
//! - values outside the cache's classes (over-aligned, over 64 bytes, zero
//!   sized) still work;
//! - concurrent `update`s on recycled boxes lose no increment (an ABA on the
//!   value pointer would).
//!
//! Also under Miri: `cargo +nightly miri test -p waitless --test review_map_pool`.
#![cfg(not(loom))]

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use waitless::map::LockFreeHashMap;

/// Enough replaces for many scans (the map scans once per 512 retires of a
/// thread natively, per 16 under Miri).
const ROUNDS: u64 = if cfg!(miri) { 120 } else { 4000 };

/// A 32-byte value that can tell whether its bytes were overwritten.
#[derive(Clone, Debug)]
struct Val {
    key: u64,
    gen: u64,
    check: u64,
    _tok: Arc<()>,
}

impl Val {
    fn new(key: u64, gen: u64, tok: &Arc<()>) -> Self {
        Val {
            key,
            gen,
            check: Self::sum(key, gen),
            _tok: tok.clone(),
        }
    }

    fn sum(key: u64, gen: u64) -> u64 {
        (key ^ gen.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5
    }

    fn assert_intact(&self, key: u64) {
        assert_eq!(
            self.key, key,
            "a value read for key {key} holds another key's bytes"
        );
        assert_eq!(
            self.check,
            Self::sum(self.key, self.gen),
            "value of key {key} was overwritten"
        );
    }
}

/// A reference taken through a pinned view stays valid and unchanged while
/// the same thread replaces that key many times: the replaced box is
/// retired while the view's hazard protects it, so no scan may free it into
/// this thread's cache (from which the very next replace would take it).
#[test]
fn a_pinned_value_is_not_recycled_under_its_reader() {
    let tok = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        for k in 0..4 {
            m.insert(k, Val::new(k, 0, &tok));
        }
        // Make key 0's value a box (the first value is inline in the entry).
        m.insert(0, Val::new(0, 1, &tok));
        let mut view = m.pin();
        let held = view.get(&0).expect("present");
        assert_eq!(held.gen, 1);
        for gen in 2..ROUNDS {
            let old = m.insert(0, Val::new(0, gen, &tok)).expect("present");
            old.assert_intact(0);
            // Other keys too, so the thread's retired list fills and scans.
            m.insert(1 + gen % 3, Val::new(1 + gen % 3, gen, &tok));
        }
        held.assert_intact(0);
        assert_eq!(held.gen, 1, "the pinned value changed under its reader");
        drop(view);
        let now = m.get(&0).expect("present");
        now.assert_intact(0);
        assert_eq!(now.gen, ROUNDS - 1);
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

/// The same with the replaces on another thread, which scans and recycles
/// into its own cache.
#[test]
fn a_pinned_value_is_not_recycled_by_another_thread() {
    let tok = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        m.insert(0, Val::new(0, 0, &tok));
        m.insert(0, Val::new(0, 1, &tok));
        let mut view = m.pin();
        let held = view.get(&0).expect("present");
        std::thread::scope(|s| {
            s.spawn(|| {
                for gen in 2..ROUNDS {
                    m.insert(0, Val::new(0, gen, &tok))
                        .expect("present")
                        .assert_intact(0);
                }
            });
        });
        held.assert_intact(0);
        assert_eq!(held.gen, 1, "the pinned value changed under its reader");
        drop(view);
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

/// A 32-byte value of another type (so its boxes share the cache's size
/// class with `Val`'s).
#[derive(Clone, Debug)]
struct Other(String, #[allow(dead_code)] Arc<()>);

/// Blocks move between two maps and two value types of one size class on
/// one thread: every value reads back intact, and every one is dropped once.
#[test]
fn blocks_shared_by_two_maps_and_two_value_types_drop_each_value_once() {
    assert_eq!(
        std::mem::size_of::<Val>(),
        std::mem::size_of::<Other>(),
        "the test needs one size class"
    );
    let tok = Arc::new(());
    {
        let a: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        let b: LockFreeHashMap<u64, Other> = LockFreeHashMap::new();
        for gen in 0..ROUNDS {
            let k = gen % 5;
            if let Some(old) = a.insert(k, Val::new(k, gen, &tok)) {
                old.assert_intact(k);
            }
            let s = format!("{k}:{gen}");
            if let Some(old) = b.insert(k, Other(s, tok.clone())) {
                assert!(old.0.starts_with(&format!("{k}:")), "b[{k}] = {:?}", old.0);
            }
            if gen % 7 == 0 {
                a.remove(&k).expect("present").assert_intact(k);
            }
            if gen % 11 == 0 {
                b.update(&k, |o| Other(format!("{}+", o.0), tok.clone()));
            }
        }
        for k in 0..5 {
            if let Some(v) = a.get(&k) {
                v.assert_intact(k);
            }
            let s = b.get(&k).expect("present").0;
            assert!(s.starts_with(&format!("{k}:")), "b[{k}] = {s:?}");
        }
        drop(a);
        // `b` drops after `a`'s boxes went to this thread's cache.
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

/// A thread fills its cache (and leaves retired values in its hazard
/// record) and exits; the map is used and dropped on another thread.
#[test]
fn a_thread_exits_with_cached_blocks_and_retired_values() {
    let tok = Arc::new(());
    {
        let m = Arc::new(LockFreeHashMap::<u64, Val>::new());
        for round in 0..3u64 {
            let m2 = Arc::clone(&m);
            let tok2 = tok.clone();
            std::thread::spawn(move || {
                for gen in 0..ROUNDS {
                    let k = gen % 8;
                    let g = round * ROUNDS + gen;
                    if let Some(old) = m2.insert(k, Val::new(k, g, &tok2)) {
                        old.assert_intact(k);
                    }
                }
            })
            .join()
            .expect("writer");
        }
        for k in 0..8 {
            m.get(&k).expect("present").assert_intact(k);
            m.insert(k, Val::new(k, u64::MAX, &tok));
        }
        // Dropped here, on this thread.
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

thread_local! {
    static LOCAL_MAP: RefCell<Option<LockFreeHashMap<u64, Val>>> = const { RefCell::new(None) };
}

/// A map that lives in a thread-local is dropped by its destructor at
/// thread exit, and a thread-local destructor replaces values in a shared
/// map, both before and after the cache's own destructor ran (destructors
/// run in reverse order of first use on this platform; both orders are
/// tried): boxes are freed into a live cache or, once it is gone, to the
/// allocator; every value is dropped once.
#[test]
fn maps_used_and_dropped_in_thread_local_destructors() {
    struct ReplaceOnExit(Arc<LockFreeHashMap<u64, Val>>, Arc<()>);
    impl Drop for ReplaceOnExit {
        fn drop(&mut self) {
            for gen in 0..ROUNDS {
                let k = gen % 4;
                if let Some(old) = self.0.insert(k, Val::new(k, gen, &self.1)) {
                    old.assert_intact(k);
                }
            }
        }
    }
    thread_local! {
        static ON_EXIT: RefCell<Option<ReplaceOnExit>> = const { RefCell::new(None) };
    }
    fn churn(m: &LockFreeHashMap<u64, Val>, tok: &Arc<()>) {
        for gen in 0..ROUNDS {
            let k = gen % 4;
            if let Some(old) = m.insert(k, Val::new(k, gen, tok)) {
                old.assert_intact(k);
            }
        }
    }
    let tok = Arc::new(());
    {
        let shared = Arc::new(LockFreeHashMap::<u64, Val>::new());
        for cache_first in [false, true] {
            let tok2 = tok.clone();
            let shared2 = Arc::clone(&shared);
            std::thread::spawn(move || {
                if cache_first {
                    // The cache (and the hazard record cache) is first used
                    // before the two thread-locals below: destroyed last.
                    churn(&LockFreeHashMap::new(), &tok2);
                }
                ON_EXIT.with(|e| *e.borrow_mut() = Some(ReplaceOnExit(shared2, tok2.clone())));
                LOCAL_MAP.with(|m| *m.borrow_mut() = Some(LockFreeHashMap::new()));
                LOCAL_MAP.with(|m| churn(m.borrow().as_ref().expect("set above"), &tok2));
            })
            .join()
            .expect("thread");
        }
        for k in 0..4 {
            shared.get(&k).expect("present").assert_intact(k);
        }
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

static BOOM: AtomicBool = AtomicBool::new(false);

/// A value whose drop panics once `BOOM` is set and its flag is set.
#[derive(Clone)]
struct Bomb(#[allow(dead_code)] u64, bool, #[allow(dead_code)] Arc<()>);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.1 && BOOM.swap(false, Ordering::SeqCst) {
            panic!("Bomb::drop");
        }
    }
}

/// A value's `Drop` panics inside a scan (in the guard drop of a later
/// write): its block is still released (to the cache), nothing is freed
/// twice, and the map stays usable and drops every other value once.
#[test]
fn a_panicking_value_drop_in_a_scan_leaks_no_block_and_frees_nothing_twice() {
    let tok = Arc::new(());
    let mut panics = 0;
    {
        let m: LockFreeHashMap<u64, Bomb> = LockFreeHashMap::new();
        m.insert(0, Bomb(0, false, tok.clone()));
        // A boxed bomb, replaced: retired, its drop runs in some scan.
        m.insert(0, Bomb(0, true, tok.clone()));
        BOOM.store(true, Ordering::SeqCst);
        // The old value (a clone of the bomb) is returned to us: drop it
        // without the flag.
        let mut old = m.insert(0, Bomb(0, false, tok.clone())).expect("present");
        old.1 = false;
        drop(old);
        for gen in 0..ROUNDS {
            let k = 1 + gen % 4;
            let r = catch_unwind(AssertUnwindSafe(|| {
                m.insert(k, Bomb(gen, false, tok.clone()));
            }));
            if r.is_err() {
                panics += 1;
            }
        }
        assert!(!BOOM.load(Ordering::SeqCst), "the bomb was never dropped");
        for k in 1..5 {
            assert!(m.get(&k).is_some());
        }
    }
    assert_eq!(panics, 1, "the bomb's drop panicked once, inside a write");
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

/// Over-aligned (16), large (over 64 bytes) and zero-sized values bypass
/// the cache: replace them many times, read them back, drop them once.
#[test]
fn values_outside_the_cache_classes_still_work() {
    #[derive(Clone)]
    #[repr(align(16))]
    struct A16(u64, #[allow(dead_code)] Arc<()>);
    #[derive(Clone)]
    struct Big([u64; 9], #[allow(dead_code)] Arc<()>);
    let tok = Arc::new(());
    {
        let a: LockFreeHashMap<u64, A16> = LockFreeHashMap::new();
        let b: LockFreeHashMap<u64, Big> = LockFreeHashMap::new();
        let z: LockFreeHashMap<u64, ()> = LockFreeHashMap::new();
        let v: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        for gen in 0..ROUNDS {
            let k = gen % 3;
            a.insert(k, A16(gen, tok.clone()));
            b.insert(k, Big([gen; 9], tok.clone()));
            z.insert(k, ());
            v.insert(k, Val::new(k, gen, &tok));
            assert_eq!(a.get(&k).expect("a").0, gen);
            assert_eq!(b.get(&k).expect("b").0, [gen; 9]);
            assert_eq!(z.get(&k), Some(()));
            v.get(&k).expect("v").assert_intact(k);
        }
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}

/// Two threads `update` one key, and every 8th call of one thread's closure
/// waits (spinning) until the other thread finished another update, so that
/// thread's CAS fails and its closure runs again on the newer value, over
/// and over, while the boxes swapped out are recycled: every increment
/// lands (a CAS that went through against a value other than the one its
/// closure saw would lose one), and every value is dropped once.
#[test]
fn concurrent_updates_on_recycled_boxes_lose_no_increment() {
    use std::sync::atomic::AtomicU64;
    let per_thread: u64 = if cfg!(miri) { 40 } else { 20_000 };
    let tok = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        m.insert(0, Val::new(0, 0, &tok));
        let other_done = AtomicU64::new(0);
        // Set by this thread's first waiting closure: the other thread
        // starts its updates only then, so at least one wait happens
        // however the threads are scheduled (without it, a descheduled
        // main thread let the other finish first on a loaded machine).
        let first_wait = AtomicBool::new(false);
        let mut waits = 0u64;
        std::thread::scope(|s| {
            let (m, tok, other_done, first_wait) = (&m, &tok, &other_done, &first_wait);
            s.spawn(move || {
                // Acquire: pairs with the Release store below (a flag only).
                while !first_wait.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                for _ in 0..per_thread {
                    m.update(&0, |v| Val::new(0, v.gen + 1, tok))
                        .expect("present")
                        .assert_intact(0);
                    // Release: the waiter below only counts.
                    other_done.fetch_add(1, Ordering::Release);
                }
            });
            let mut calls = 0u64;
            for _ in 0..per_thread {
                m.update(&0, |v| {
                    v.assert_intact(0);
                    calls += 1;
                    if calls % 8 == 0 {
                        // Acquire: pairs with the Release add above.
                        let seen = other_done.load(Ordering::Acquire);
                        if seen < per_thread {
                            waits += 1;
                            // Release: pairs with the other thread's
                            // Acquire load before its first update.
                            first_wait.store(true, Ordering::Release);
                            while other_done.load(Ordering::Acquire) == seen {
                                std::thread::yield_now();
                            }
                        }
                    }
                    Val::new(0, v.gen + 1, tok)
                })
                .expect("present")
                .assert_intact(0);
            }
        });
        assert!(waits > 0, "the closures never raced");
        assert_eq!(
            m.get(&0).expect("present").gen,
            2 * per_thread,
            "an update was lost"
        );
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}
