//! loom models of the open-addressing prototype's races. Each model starts
//! from a two-slot table holding keys 1 and 2 (same tag position) with a
//! migration already begun (`next` installed), so the threads run only the
//! race itself: copies, the root move, the table retire and its scan.

use super::*;
use crate::sync::Arc;
use loom::thread;

pub(super) fn get(t: &RawTable<u64, u64>, k: u64) -> Option<u64> {
    t.get_with(k, &k, |v| *v)
}

/// Keys 1 and 2 in a two-slot table whose migration has begun.
pub(super) fn migrating() -> Arc<RawTable<u64, u64>> {
    let m = Arc::new(RawTable::with_capacity(1));
    m.insert(1, 1, 10);
    m.insert(2, 2, 20);
    let mut g = m.guard();
    let (root, _) = m.root(&mut g);
    root.next.store(Table::new(4), Ordering::Release);
    drop(g);
    m
}

/// Copies every slot and moves the root (what a writer does first).
pub(super) fn help(m: &RawTable<u64, u64>) {
    let mut g = m.guard();
    m.help_root(&mut g);
}

/// A lookup races the freeze and copy of its key's slot and the root move.
#[test]
fn lookup_races_migration() {
    loom::model(|| {
        let m = migrating();
        let a = {
            let m = m.clone();
            thread::spawn(move || get(&m, 1))
        };
        help(&m);
        assert_eq!(a.join().unwrap(), Some(10));
        assert_eq!(get(&m, 2), Some(20));
    });
}

/// Slot of key 1 (tag 1) in the root.
fn slot_of_1(root: &Table<u64, u64>) -> usize {
    (0..root.slots.len())
        .find(|&i| root.slots.at(i).tag.load(Ordering::Relaxed) == 1)
        .expect("key 1's slot")
}

/// Copies key 1's slot only (the freeze that decides copy or drop).
fn copy_1(m: &RawTable<u64, u64>) {
    let mut g = m.guard();
    let (root, ti) = m.root(&mut g);
    if let Some((n, _)) = m.advance(&mut g, root, ti) {
        let i = slot_of_1(root);
        m.copy_slot(&mut g, root, i, n);
    }
}

/// A remove races the freeze of its key's slot: the key is gone afterwards
/// whether its tombstone was dropped (sealed) or copied, and both tables
/// agree.
#[test]
fn remove_races_migration() {
    loom::model(|| {
        let m = migrating();
        let a = {
            let m = m.clone();
            thread::spawn(move || m.remove(1, &1))
        };
        copy_1(&m);
        assert_eq!(a.join().unwrap(), Some(10));
        assert_eq!(get(&m, 1), None);
        assert_eq!(get(&m, 2), Some(20));
        assert_eq!(m.len(), 1);
    });
}

/// Two inserts of one absent key into one probe group: one links its
/// entry, the other replaces its value.
#[test]
fn two_inserts_of_one_key() {
    loom::model(|| {
        let m: Arc<RawTable<u64, u64>> = Arc::new(RawTable::with_capacity(1));
        let a = {
            let m = m.clone();
            thread::spawn(move || m.insert(1, 1, 10))
        };
        let b = m.insert(1, 1, 11);
        match (a.join().unwrap(), b) {
            (None, Some(10)) => assert_eq!(get(&m, 1), Some(11)),
            (Some(11), None) => assert_eq!(get(&m, 1), Some(10)),
            other => panic!("not linearizable: {other:?}"),
        }
        assert_eq!(m.len(), 1);
    });
}

/// A slow copier of key 1's slot races a helper that copies it and then
/// removes key 1 (in the new table, where the copy put it): the slow copier
/// must not bring the key back nor put its entry in a second slot.
#[test]
fn stale_copier_after_remove_in_new_table() {
    loom::model(|| {
        let m = migrating();
        let a = {
            let m = m.clone();
            thread::spawn(move || copy_1(&m))
        };
        copy_1(&m);
        assert_eq!(m.remove(1, &1), Some(10));
        a.join().unwrap();
        assert_eq!(get(&m, 1), None);
        assert_eq!(get(&m, 2), Some(20));
    });
}
