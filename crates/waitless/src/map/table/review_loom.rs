//! Review loom models of the open-addressing prototype (reviewer map12dr):
//! races the prototype's own four models do not cover. Same start as those:
//! a two-slot table holding keys 1 and 2 with a migration begun.

use super::*;
use crate::sync::Arc;
use loom::thread;

use super::loom_tests::{get, help, migrating};

/// Entries of the root whose key is `k` and whose value is not sealed.
fn live_entries(m: &RawTable<u64, u64>, k: u64) -> usize {
    let mut g = m.guard();
    let (root, _) = m.root(&mut g);
    assert!(root.next.load(Ordering::Acquire).is_null());
    root.slots
        .iter()
        .filter(|s| {
            let e = untag(s.word.load(Ordering::Acquire));
            // SAFETY: quiescent (every thread joined); linked entries live.
            !e.is_null()
                && unsafe { (*e).key } == k
                && untag(unsafe { (*e).value.load(Ordering::Acquire) }) != sealed()
        })
        .count()
}

/// A re-insert into a tombstone races the copier's decision (seal and
/// drop, or copy): either way the value is there afterwards, once. One
/// preemption: where the seal wins, the insert helps the whole migration,
/// and two preemptions take minutes.
#[test]
fn reinsert_races_the_drop_decision() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.check(|| {
        let m = Arc::new(RawTable::with_capacity(1));
        m.insert(1, 1, 10);
        m.insert(2, 2, 20);
        assert_eq!(m.remove(1, &1), Some(10));
        {
            let mut g = m.guard();
            let (root, _) = m.root(&mut g);
            root.next.store(Table::new(4), Ordering::Release);
        }
        let a = {
            let m = m.clone();
            thread::spawn(move || m.insert(1, 1, 11))
        };
        copy_1(&m);
        assert_eq!(a.join().unwrap(), None);
        help(&m);
        assert_eq!(get(&m, 1), Some(11));
        assert_eq!(get(&m, 2), Some(20));
        assert_eq!(m.len(), 2);
        assert_eq!(live_entries(&m, 1), 1);
    });
}

/// A lookup races a remove and the migration: it returns the old value or
/// nothing, and afterwards the key is gone in every table.
#[test]
fn lookup_races_remove_and_migration() {
    loom::model(|| {
        let m = migrating();
        let a = {
            let m = m.clone();
            thread::spawn(move || m.remove(1, &1))
        };
        copy_1(&m);
        let seen = get(&m, 1);
        let removed = a.join().unwrap();
        help(&m);
        assert_eq!(removed, Some(10));
        assert!(seen == Some(10) || seen.is_none(), "{seen:?}");
        assert_eq!(get(&m, 1), None);
        assert_eq!(get(&m, 2), Some(20));
        assert_eq!(m.len(), 1);
    });
}

/// A stale copier of key 1's old slot that read it before the freeze may
/// seal key 1's entry after the migration, when that entry is a tombstone
/// in the new root (the seal comes before its freezing CAS, which then
/// fails). A re-insert must still bring the key back exactly once.
#[test]
fn stale_copier_seal_then_reinsert_in_new_table() {
    loom::model(|| {
        let m = migrating();
        let a = {
            let m = m.clone();
            thread::spawn(move || copy_1(&m))
        };
        help(&m);
        assert_eq!(m.remove(1, &1), Some(10));
        assert_eq!(m.insert(1, 1, 11), None);
        a.join().unwrap();
        assert_eq!(get(&m, 1), Some(11));
        assert_eq!(get(&m, 2), Some(20));
        assert_eq!(m.len(), 2);
        assert_eq!(live_entries(&m, 1), 1);
    });
}

/// Key 1's slot in the root (tag 1).
fn slot_of_1(root: &Table<u64, u64>) -> usize {
    (0..root.slots.len())
        .find(|&i| root.slots.at(i).tag.load(Ordering::Relaxed) == 1)
        .expect("key 1's slot")
}

/// Copies key 1's slot only, as a helper that owns its chunk would.
fn copy_1(m: &RawTable<u64, u64>) {
    let mut g = m.guard();
    let (root, ti) = m.root(&mut g);
    // Acquire: as in `help_root`; a root that finished migrating has none.
    if root.next.load(Ordering::Acquire).is_null() {
        return;
    }
    if let Some((n, _)) = m.advance(&mut g, root, ti) {
        let i = slot_of_1(root);
        m.copy_slot(&mut g, root, i, n);
    }
}
