//! loom models of a leaf split racing a lookup, an insert and a range scan.
//!
//! Fan-out is 4 under loom, so a leaf pre-filled with 4 keys splits on the
//! next insert (and the root grows a level). Keys are [`Key`]s: each clone
//! holds a loom `UnsafeCell` that comparisons read and the destructor
//! writes, so loom reports a race (a causality violation) if a node could
//! be freed — its keys dropped — while a reader that loaded it is still
//! comparing them. The epoch bags are tiny under loom, so retired paths are
//! really freed inside the models.

use super::*;
use crate::sync::{Arc, UnsafeCell};
use loom::thread;

/// A key whose reads and destruction loom can see.
struct Key(UnsafeCell<u64>);

impl Key {
    fn new(v: u64) -> Self {
        Key(UnsafeCell::new(v))
    }
    fn get(&self) -> u64 {
        // SAFETY: the cell is written only by `drop`, which has exclusive
        // access; loom checks that no read races with it.
        self.0.with(|p| unsafe { *p })
    }
}

// SAFETY: shared access only reads the cell; the one write is in `drop`
// (`&mut self`). Whether the tree orders that drop after every read is
// exactly what the models check.
unsafe impl Sync for Key {}

impl Clone for Key {
    fn clone(&self) -> Self {
        Key::new(self.get())
    }
}
impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: exclusive access (`&mut self`); loom flags it if some
        // reader of this key is not ordered before it.
        self.0.with_mut(|p| unsafe { *p = u64::MAX });
    }
}
impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        self.get() == o.get()
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        let (a, b) = (self.get(), o.get());
        assert!(a != u64::MAX && b != u64::MAX, "compared a dropped key");
        a.cmp(&b)
    }
}

/// A map holding keys 10, 20, 30, 40: one full leaf (fan-out 4).
fn full_leaf() -> Arc<LockFreeBTree<Key, u64>> {
    assert_eq!(B, 4);
    let m = LockFreeBTree::new();
    for k in [10, 20, 30, 40] {
        m.insert(Key::new(k), k);
    }
    Arc::new(m)
}

fn keys(m: &LockFreeBTree<Key, u64>) -> Vec<u64> {
    m.iter()
        .map(|(k, v)| {
            assert_eq!(k.get(), v);
            v
        })
        .collect()
}

#[test]
fn split_races_a_lookup() {
    loom::model(|| {
        let m = full_leaf();
        let reader = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let old = m.get(&Key::new(40));
                let new = m.get(&Key::new(25));
                (old, new)
            })
        };
        assert_eq!(m.insert(Key::new(25), 25), None); // splits the leaf
        let (old, new) = reader.join().unwrap();
        assert_eq!(old, Some(40), "a key present throughout was missed");
        assert!(new.is_none() || new == Some(25));
        assert_eq!(keys(&m), [10, 20, 25, 30, 40]);
    });
}

#[test]
fn split_races_an_insert() {
    loom::model(|| {
        let m = full_leaf();
        let other = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.insert(Key::new(5), 5))
        };
        assert_eq!(m.insert(Key::new(35), 35), None);
        assert_eq!(other.join().unwrap(), None);
        assert_eq!(keys(&m), [5, 10, 20, 30, 35, 40], "an insert was lost");
        assert_eq!(m.len(), 6);
    });
}

#[test]
fn split_races_a_range_scan() {
    loom::model(|| {
        let m = full_leaf();
        let scanner = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let got: Vec<u64> = m
                    .range(Key::new(15)..Key::new(45))
                    .map(|(_, v)| v)
                    .collect();
                got
            })
        };
        // Split, then remove a key inside the scanned range.
        m.insert(Key::new(25), 25);
        m.remove(&Key::new(30));
        let got = scanner.join().unwrap();
        // Exactly one of the three states the map went through.
        let states: [&[u64]; 3] = [&[20, 30, 40], &[20, 25, 30, 40], &[20, 25, 40]];
        assert!(states.contains(&got.as_slice()), "not a snapshot: {got:?}");
    });
}

/// Removing the last keys of a leaf drops the leaf from its parent and
/// collapses the one-child root, racing a scan and a lookup.
#[test]
fn emptied_leaf_and_root_collapse_race_a_scan() {
    loom::model(|| {
        let m = full_leaf();
        m.insert(Key::new(50), 50); // leaves [10 20] [30 40 50]
        let scanner = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let got: Vec<u64> = m.iter().map(|(_, v)| v).collect();
                (got, m.get(&Key::new(40)))
            })
        };
        assert_eq!(m.remove(&Key::new(10)), Some(10));
        assert_eq!(m.remove(&Key::new(20)), Some(20)); // leaf gone, root collapses
        let (got, forty) = scanner.join().unwrap();
        assert_eq!(forty, Some(40));
        let states: [&[u64]; 3] = [&[10, 20, 30, 40, 50], &[20, 30, 40, 50], &[30, 40, 50]];
        assert!(states.contains(&got.as_slice()), "not a snapshot: {got:?}");
        assert_eq!(keys(&m), [30, 40, 50]);
    });
}
