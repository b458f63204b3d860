//! Loom models of the RCU cell's core races.
//!
//! Values carry a `loom::cell::UnsafeCell` that their destructor overwrites:
//! if a reader could still dereference a value when it is dropped (no
//! happens-before from the read to the drop), loom reports the data race.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use waitless::rcu::Rcu;

const POISON: u64 = u64::MAX;

struct Val {
    n: u64,
    cell: UnsafeCell<u64>,
    drops: Arc<AtomicUsize>,
}

// SAFETY: `cell` is written only in `drop` (exclusive access) and read only
// through `&Val` while it is alive; the RCU protocol under test is what
// orders the reads before the drop, and loom checks exactly that.
unsafe impl Sync for Val {}

impl Val {
    fn new(n: u64, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            n,
            cell: UnsafeCell::new(n),
            drops: Arc::clone(drops),
        }
    }

    /// Reads the payload; fails if the value was dropped.
    fn get(&self) -> u64 {
        // SAFETY: read-only access through `&self`; the only write is in
        // `drop`, and loom flags it if it is not ordered after this read.
        let v = self.cell.with(|p| unsafe { *p });
        assert_ne!(v, POISON, "read a dropped value");
        assert_eq!(v, self.n, "torn value");
        v
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: exclusive access.
        self.cell.with_mut(|p| unsafe { *p = POISON });
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// A reader against an updater that publishes twice and then waits for a
/// grace period (which runs the drops): the reader never sees a freed or
/// torn value, never goes back in time, and every value is dropped once.
#[test]
fn rcu_reader_vs_updater_never_sees_a_freed_value() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let rcu = Arc::new(Rcu::new(Val::new(0, &drops)));
        let r = Arc::clone(&rcu);
        let reader = thread::spawn(move || {
            let first = r.read().get();
            let second = r.read().get();
            assert!(second >= first, "went back in time");
        });
        rcu.update(|v| Val::new(v.get() + 1, &drops));
        rcu.replace(Val::new(2, &drops));
        rcu.synchronize();
        reader.join().unwrap();
        assert_eq!(rcu.read().get(), 2);
        drop(rcu);
        assert_eq!(drops.load(Ordering::Relaxed), 3, "every value dropped once");
    });
}

/// `synchronize` returns only after a reader that saw the old value is
/// done with it.
#[test]
fn rcu_synchronize_waits_for_a_pinned_reader() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let rcu = Arc::new(Rcu::new(Val::new(0, &drops)));
        let saw_old = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&rcu), Arc::clone(&saw_old));
        let reader = thread::spawn(move || {
            let g = r.read();
            if g.get() == 0 {
                // Before the guard drops: synchronize must see this.
                s.store(true, Ordering::Relaxed);
            }
            drop(g);
        });
        rcu.replace(Val::new(1, &drops));
        rcu.synchronize();
        let at_sync = saw_old.load(Ordering::Relaxed);
        reader.join().unwrap();
        if saw_old.load(Ordering::Relaxed) {
            assert!(
                at_sync,
                "synchronize returned before a reader of the old value finished"
            );
        }
        drop(rcu);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// Two racing updaters: no update is lost (the loser's closure reruns on
/// the winner's value) and every value, discarded ones included, is
/// dropped exactly once.
#[test]
fn rcu_racing_updates_lose_nothing() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(1));
        let rcu = Arc::new(Rcu::new(Val::new(0, &drops)));
        let (r, d, m) = (Arc::clone(&rcu), Arc::clone(&drops), Arc::clone(&made));
        let other = thread::spawn(move || {
            r.update(|v| {
                m.fetch_add(1, Ordering::Relaxed);
                Val::new(v.get() + 1, &d)
            })
        });
        rcu.update(|v| {
            made.fetch_add(1, Ordering::Relaxed);
            Val::new(v.get() + 1, &drops)
        });
        other.join().unwrap();
        assert_eq!(rcu.read().get(), 2);
        drop(rcu);
        assert_eq!(
            drops.load(Ordering::Relaxed),
            made.load(Ordering::Relaxed),
            "every value made is dropped exactly once"
        );
    });
}
