//! Review tests (map12er, wave 6) of `LockFreeHashMap` iteration on the
//! open-addressing table: what the walk promises across a migration.
//!
//! The interleavings are made deterministic by running map operations from
//! inside the walk itself: the value type's `Clone` (which `Iter` calls on
//! every value it yields, while the walk is parked on that entry) runs a
//! one-shot hook on the walking thread.

#![cfg(not(loom))]

use std::cell::RefCell;
use std::sync::Arc;

use waitless::map::LockFreeHashMap;

type Hook = Box<dyn FnOnce(u64)>;

thread_local! {
    /// Run once, by the next `Val::clone` on this thread, with its key.
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// A value that remembers its key; cloning it runs the pending hook.
#[derive(Debug, PartialEq, Eq)]
struct Val(u64);

impl Clone for Val {
    fn clone(&self) -> Self {
        // Taken before it runs: clones made by the hook's own map calls
        // (`remove` returns a clone) do not run it again.
        let hook = HOOK.with(|h| h.borrow_mut().take());
        if let Some(hook) = hook {
            hook(self.0);
        }
        Val(self.0)
    }
}

/// `Iter`'s documented guarantee: "no key is ever yielded twice" (map12er
/// finding 1: failed on ba877c4, fixed by map12e in 2fff729). The walk
/// yields key `k` from the old table; then, while the walk is still in that
/// table, `k` is removed, a migration drops its tombstone entry (sealed:
/// `FROZEN|COPIED|DROPPED`), and `k` is inserted again, which makes a new
/// entry in the new table. The walk matches entries across tables by
/// address (`seen`), so the new entry is not recognised and `k` is yielded
/// a second time.
#[test]
fn iter_never_yields_a_key_twice_across_a_migration() {
    let map: Arc<LockFreeHashMap<u64, Val>> = Arc::new(LockFreeHashMap::new());
    for k in 0..4 {
        map.insert(k, Val(k));
    }
    let before = map.buckets();
    let m = Arc::clone(&map);
    HOOK.with(|h| {
        *h.borrow_mut() = Some(Box::new(move |k| {
            // `k` is the key the walk is on: it was present when the walk
            // reached it, and now it goes away and comes back.
            assert_eq!(m.remove(&k), Some(Val(k)));
            let mut fresh = 1000;
            while m.buckets() == before {
                m.insert(fresh, Val(fresh));
                fresh += 1;
            }
            assert_eq!(m.insert(k, Val(k)), None);
        }));
    });
    let keys: Vec<u64> = map.iter().map(|(k, _)| k).collect();
    assert!(
        HOOK.with(|h| h.borrow().is_none()),
        "the hook ran (the walk cloned a value)"
    );
    assert!(map.buckets() > before, "a migration ran under the walk");
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        keys.len(),
        "a key was yielded twice: {keys:?}"
    );
    // The keys present for the whole walk (those the hook did not touch)
    // are all there.
    let touched = keys[0];
    for k in (0..4).filter(|&k| k != touched) {
        assert!(keys.contains(&k), "key {k} present throughout was missed");
    }
}

/// The same walk with the re-insert done *without* a migration: the key
/// comes back in its own tombstone entry (a value-cell CAS, same address),
/// so the walk skips it. Kept as the control of the test above: it passes.
#[test]
fn iter_does_not_yield_a_key_reinserted_in_its_own_entry_twice() {
    let map: Arc<LockFreeHashMap<u64, Val>> = Arc::new(LockFreeHashMap::new());
    for k in 0..4 {
        map.insert(k, Val(k));
    }
    let before = map.buckets();
    let m = Arc::clone(&map);
    HOOK.with(|h| {
        *h.borrow_mut() = Some(Box::new(move |k| {
            assert_eq!(m.remove(&k), Some(Val(k)));
            assert_eq!(m.insert(k, Val(k)), None);
        }));
    });
    let keys: Vec<u64> = map.iter().map(|(k, _)| k).collect();
    assert_eq!(map.buckets(), before, "no migration in the control");
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2, 3]);
}
