//! Hostile inputs get a clear panic or error, never undefined behaviour, a
//! hang or an abort: capacities of 0 and `usize::MAX`, hashers that return a
//! constant, and user closures that panic in the middle of an operation.
//! (Guards used on the wrong structure and `synchronize` while pinned are
//! covered beside the code: `stack::tests`, `epoch::tests`, `rcu::tests`.)
#![cfg(not(loom))]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};

use waitless::btree::LockFreeBTree;
use waitless::channel::{self, OptimizedChannel};
use waitless::map::LockFreeHashMap;
use waitless::queue::WaitFreeQueue;
use waitless::rcu::Rcu;

/// Runs `f`, expects a panic, and returns its message.
fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        String::from("<non-string panic payload>")
    }
}

#[test]
fn hostile_zero_and_max_capacities_panic_with_a_message() {
    for cap in [0usize, 3, usize::MAX] {
        let m = panic_message(|| drop(WaitFreeQueue::<u8>::new(cap)));
        assert!(m.contains("power of two"), "queue({cap}): {m}");
        let m = panic_message(|| drop(OptimizedChannel::<u8>::new(cap)));
        assert!(m.contains("power of two"), "channel({cap}): {m}");
        let m = panic_message(|| drop(channel::bounded::<u8>(cap)));
        assert!(m.contains("power of two"), "bounded({cap}): {m}");
        let m = panic_message(|| drop(channel::spsc::bounded::<u8>(cap)));
        assert!(m.contains("power of two"), "spsc({cap}): {m}");
    }
    // The largest power of two passes the power-of-two check and must still
    // be refused with a message, not an abort in the allocator.
    let huge = 1usize << (usize::BITS - 1);
    let m = panic_message(|| drop(WaitFreeQueue::<u8>::new(huge)));
    assert!(m.contains("at most"), "queue(2^63): {m}");
    let m = panic_message(|| drop(OptimizedChannel::<u8>::new(huge)));
    assert!(m.contains("maximum"), "channel(2^63): {m}");
}

#[test]
fn hostile_map_with_capacity_usize_max_still_works() {
    // A capacity far beyond memory is a hint, not an allocation: the map
    // must stay usable (it grows on demand) rather than abort on first use.
    let m: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_capacity(usize::MAX);
    for k in 0..1000u64 {
        assert_eq!(m.insert(k, k * 2), None);
    }
    for k in 0..1000u64 {
        assert_eq!(m.get(&k), Some(k * 2));
    }
    assert_eq!(m.len(), 1000);
}

/// A hasher that returns the same value for every key.
#[derive(Default)]
struct Constant;
impl Hasher for Constant {
    fn finish(&self) -> u64 {
        42
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn hostile_constant_hasher_degrades_but_stays_correct() {
    let m: LockFreeHashMap<u32, u32, BuildHasherDefault<Constant>> =
        LockFreeHashMap::with_hasher(BuildHasherDefault::default());
    let n = if cfg!(miri) { 20 } else { 500 };
    let mut model = HashMap::new();
    for k in 0..n {
        assert_eq!(m.insert(k, k), model.insert(k, k));
    }
    for k in (0..n).step_by(3) {
        assert_eq!(m.remove(&k), model.remove(&k));
    }
    for k in 0..n {
        assert_eq!(m.get(&k), model.get(&k).copied());
    }
    assert_eq!(m.len(), model.len());
}

#[test]
fn hostile_panicking_closures_leave_structures_intact() {
    // Map: get_or_insert_with's closure panics: nothing is inserted, and
    // the map keeps working.
    let m: LockFreeHashMap<u32, String> = LockFreeHashMap::new();
    m.insert(1, "one".into());
    let msg = panic_message(|| {
        m.get_or_insert_with(2, || panic!("user closure"));
    });
    assert_eq!(msg, "user closure");
    assert_eq!(m.get(&2), None);
    assert_eq!(m.get(&1).as_deref(), Some("one"));
    assert_eq!(m.get_or_insert_with(2, || "two".into()), "two");
    assert_eq!(m.len(), 2);

    // Rcu: update's closure panics: the old value stays published.
    let cell = Rcu::new(vec![1, 2, 3]);
    let msg = panic_message(|| {
        cell.update(|_| panic!("update closure"));
    });
    assert_eq!(msg, "update closure");
    assert_eq!(*cell.read(), vec![1, 2, 3]);
    cell.update(|v| v.iter().map(|x| x * 10).collect());
    assert_eq!(*cell.read(), vec![10, 20, 30]);

    // B-tree: get_with's closure panics: the guard is released (a later
    // writer's retirements still get freed) and the tree is unchanged.
    let t = LockFreeBTree::new();
    for k in 0..100u32 {
        t.insert(k, k);
    }
    let msg = panic_message(|| {
        let _ = t.get_with(&5, |_| -> u8 { panic!("reader closure") });
    });
    assert_eq!(msg, "reader closure");
    assert_eq!(t.len(), 100);
    assert_eq!(t.remove(&5), Some(5));
    assert_eq!(t.iter().count(), 99);
}

#[test]
fn hostile_btree_reversed_and_empty_ranges_yield_nothing() {
    let t = LockFreeBTree::new();
    for k in 0..50u32 {
        t.insert(k, ());
    }
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = t.range(40..10).count();
    assert_eq!(reversed, 0);
    assert_eq!(t.range(10..10).count(), 0);
    assert_eq!(t.range(60..).count(), 0);
}
