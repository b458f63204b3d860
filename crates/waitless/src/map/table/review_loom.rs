//! Review loom models of the open-addressing prototype (reviewer map12dr):
//! races the prototype's own four models do not cover. Same start as those:
//! a two-slot table holding keys 1 and 2 with a migration begun.

use super::*;
use crate::sync::Arc;
use loom::thread;

fn get(t: &RawTable<u64, u64>, k: u64) -> Option<u64> {
    t.get_with(k, &k, |v| *v)
}

/// Keys 1 and 2 in a two-slot table whose migration has begun.
fn migrating() -> Arc<RawTable<u64, u64>> {
    let m = Arc::new(RawTable::with_capacity(1));
    m.insert(1, 1, 10);
    m.insert(2, 2, 20);
    let mut g = m.guard();
    let (root, _) = m.root(&mut g);
    root.next.store(Table::new(4), Ordering::Release);
    drop(g);
    m
}

/// Copies every slot and moves the root.
fn help(m: &RawTable<u64, u64>) {
    let mut g = m.guard();
    m.help_root(&mut g);
}

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
                && unsafe { (*e).value.load(Ordering::Acquire) } != sealed()
        })
        .count()
}

/// A re-insert into a tombstone races the copier's decision (seal and
/// drop, or copy): either way the value is there afterwards, once.
#[test]
fn reinsert_races_the_drop_decision() {
    loom::model(|| {
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
        help(&m);
        assert_eq!(a.join().unwrap(), None);
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
        help(&m);
        let seen = get(&m, 1);
        let removed = a.join().unwrap();
        assert_eq!(removed, Some(10));
        assert!(seen == Some(10) || seen.is_none(), "{seen:?}");
        assert_eq!(get(&m, 1), None);
        assert_eq!(get(&m, 2), Some(20));
        assert_eq!(m.len(), 1);
    });
}

/// Two inserts of one new key while the table migrates (both must help
/// first): one inserts, the other replaces, and the key has one entry.
#[test]
fn two_inserts_of_a_new_key_during_migration() {
    loom::model(|| {
        let m = migrating();
        let a = {
            let m = m.clone();
            thread::spawn(move || m.insert(3, 3, 30))
        };
        let b = m.insert(3, 3, 31);
        match (a.join().unwrap(), b) {
            (None, Some(30)) => assert_eq!(get(&m, 3), Some(31)),
            (Some(31), None) => assert_eq!(get(&m, 3), Some(30)),
            other => panic!("not linearizable: {other:?}"),
        }
        assert_eq!(get(&m, 1), Some(10));
        assert_eq!(get(&m, 2), Some(20));
        assert_eq!(m.len(), 3);
        assert_eq!(live_entries(&m, 3), 1);
    });
}
