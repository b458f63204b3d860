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

/// Counts live keys of the models that check exact drops (std atomics: a
/// plain counter, reset at the start of each execution; loom runs one
/// execution at a time on its own scheduler).
static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);
/// The counter of the models that do not check drops.
static UNCOUNTED: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

/// A key whose reads and destruction loom can see.
struct Key(UnsafeCell<u64>, &'static std::sync::atomic::AtomicIsize);

impl Key {
    fn new(v: u64) -> Self {
        Key::counted(v, &UNCOUNTED)
    }
    fn counted(v: u64, live: &'static std::sync::atomic::AtomicIsize) -> Self {
        live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Key(UnsafeCell::new(v), live)
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
        Key::counted(self.get(), self.1)
    }
}
impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: exclusive access (`&mut self`); loom flags it if some
        // reader of this key is not ordered before it.
        self.0.with_mut(|p| unsafe { *p = u64::MAX });
        let before = self.1.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        assert!(before > 0, "a key dropped twice");
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

/// Two `try_insert`s of one new key into a full leaf (the first to
/// publish splits it) make one winner, whose value the map keeps; the
/// loser gets its own key and value back.
#[test]
fn racing_try_inserts_across_a_split_make_one_winner() {
    loom::model(|| {
        let m = full_leaf();
        let other = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.try_insert(Key::new(25), 2).map_err(|(k, v)| (k.get(), v)))
        };
        let mine = m.try_insert(Key::new(25), 1).map_err(|(k, v)| (k.get(), v));
        let theirs = other.join().unwrap();
        let winner = match (mine, theirs) {
            (Ok(()), Err(back)) => {
                assert_eq!(back, (25, 2), "not the loser's own key and value");
                1
            }
            (Err(back), Ok(())) => {
                assert_eq!(back, (25, 1), "not the loser's own key and value");
                2
            }
            other => panic!("not exactly one winner: {other:?}"),
        };
        assert_eq!(m.get(&Key::new(25)), Some(winner));
        let ks: Vec<u64> = m.iter().map(|(k, _)| k.get()).collect();
        assert_eq!(ks, [10, 20, 25, 30, 40]);
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

/// As above, scanned from the back (`next_back` descends the snapshot's
/// rightmost path and climbs back across the split).
#[test]
fn split_races_a_reverse_range_scan() {
    loom::model(|| {
        let m = full_leaf();
        let scanner = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let got: Vec<u64> = m
                    .range(Key::new(15)..Key::new(45))
                    .rev()
                    .map(|(_, v)| v)
                    .collect();
                got
            })
        };
        m.insert(Key::new(25), 25);
        m.remove(&Key::new(30));
        let got = scanner.join().unwrap();
        let states: [&[u64]; 3] = [&[40, 30, 20], &[40, 30, 25, 20], &[40, 25, 20]];
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

/// A map holding `keys`, with counted keys.
fn counted(keys: &[u64]) -> Arc<LockFreeBTree<Key, u64>> {
    LIVE.store(0, std::sync::atomic::Ordering::Relaxed);
    let m = LockFreeBTree::new();
    for &k in keys {
        m.insert(Key::counted(k, &LIVE), k);
    }
    Arc::new(m)
}

/// Drops the last handle of `m` (its collector runs every deferred
/// release) and checks that every key object was dropped exactly once.
fn drop_and_count(m: Arc<LockFreeBTree<Key, u64>>) {
    drop(m);
    assert_eq!(
        LIVE.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "a key leaked"
    );
}

/// A split takes a speculative count on its new separator (here 30) while
/// another writer removes that very key: whichever CAS wins, the entry is
/// freed exactly once, after every reader of its key (the separator) or
/// value (the leaf slot) is done.
#[test]
fn split_races_removal_of_its_separator() {
    loom::model(|| {
        let m = counted(&[10, 20, 30, 40]);
        let remover = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.remove(&Key::counted(30, &LIVE)))
        };
        // [10 20 30 35 40] splits into [10 20] | [30 35 40], separator 30.
        assert_eq!(m.insert(Key::counted(35, &LIVE), 35), None);
        assert_eq!(remover.join().unwrap(), Some(30));
        assert_eq!(keys(&m), [10, 20, 35, 40]);
        assert_eq!(m.get(&Key::counted(30, &LIVE)), None);
        drop_and_count(m);
    });
}

/// The separator's own key leaves the map (its value is dropped) while a
/// reader routes through it to a neighbour; then the leaf on its left
/// empties and the separator itself goes, freeing the entry.
#[test]
fn removed_separator_key_races_a_lookup() {
    loom::model(|| {
        // [10 20] | [25 30 40], separator 25; then [20] | [25 30 40].
        let m = counted(&[10, 20, 30, 40, 25]);
        assert_eq!(m.remove(&Key::counted(10, &LIVE)), Some(10));
        let reader = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.get(&Key::new(30)))
        };
        assert_eq!(m.remove(&Key::counted(25, &LIVE)), Some(25));
        assert_eq!(m.remove(&Key::counted(20, &LIVE)), Some(20)); // separator 25 goes
        assert_eq!(
            reader.join().unwrap(),
            Some(30),
            "a key present throughout was missed"
        );
        assert_eq!(keys(&m), [30, 40]);
        drop_and_count(m);
    });
}

/// Replacing a value (a new entry; the old one's value is dropped after a
/// grace period) races a lookup that reads the old value.
#[test]
fn replace_races_a_lookup() {
    loom::model(|| {
        let m = counted(&[10, 20]);
        let reader = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.get(&Key::new(20)))
        };
        assert_eq!(m.insert(Key::counted(20, &LIVE), 200), Some(20));
        let got = reader.join().unwrap();
        assert!(got == Some(20) || got == Some(200), "{got:?}");
        assert_eq!(m.get(&Key::new(20)), Some(200));
        drop_and_count(m);
    });
}

/// Per-leaf writers: updates of different leaves install leaf versions in
/// their handles and never replace the root version (no path copy, no
/// shared word), and a scan racing them is a snapshot: the writer inserts
/// 15 (left leaf) before 45 (right leaf), so a scan that sees 45 sees 15.
#[test]
fn writers_on_different_leaves_and_a_scan() {
    loom::model(|| {
        let m = full_leaf();
        m.insert(Key::new(25), 25); // leaves [10 20 25] | [30 40]
        let root = m.root.load(Ordering::Relaxed);
        let writer = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                assert_eq!(m.insert(Key::new(15), 15), None);
                assert_eq!(m.insert(Key::new(45), 45), None);
            })
        };
        let got = keys(&m);
        assert!(
            !got.contains(&45) || got.contains(&15),
            "not a snapshot: {got:?}"
        );
        writer.join().unwrap();
        assert_eq!(keys(&m), [10, 15, 20, 25, 30, 40, 45]);
        assert_eq!(
            m.root.load(Ordering::Relaxed),
            root,
            "a leaf update replaced the root version"
        );
    });
}

/// An update of a leaf (removing 40) races the freeze and split of that
/// leaf by another writer's insert (25): neither is lost or doubled, the
/// split is done once whoever completes it, and the remover's own scan
/// afterwards does not see 40.
#[test]
fn a_leaf_update_races_a_split_of_its_leaf() {
    loom::model(|| {
        let m = full_leaf();
        let splitter = {
            let m = Arc::clone(&m);
            thread::spawn(move || assert_eq!(m.insert(Key::new(25), 25), None))
        };
        assert_eq!(m.remove(&Key::new(40)), Some(40));
        let got = keys(&m);
        assert!(
            got == [10, 20, 30] || got == [10, 20, 25, 30],
            "a scan after our remove: {got:?}"
        );
        splitter.join().unwrap();
        assert_eq!(keys(&m), [10, 20, 25, 30]);
        // SAFETY: every writer joined: the current root version is alive.
        let tree = unsafe { &*(*m.root.load(Ordering::Relaxed)).tree };
        match tree {
            Node::Inner(n) => assert!(
                n.bottom && n.kids.len() <= 2,
                "the split was not done exactly once"
            ),
            Node::Leaf(_) => unreachable!(),
        }
    });
}

/// Session 8: writers advance the clock and scans only load it. A scan
/// and a lookup race one update's install (the handle CAS) and its stamp
/// (the clock increment and the stamp CAS), in both orders: whatever a
/// finished reader saw of the update, a reader that starts later sees
/// too (real-time order between a lookup and a snapshot scan), and the
/// scan is a snapshot of the two leaves (the writer's second update, 45,
/// implies its first, 15). A reader that meets the first version pending
/// stamps it itself; loom explores the writer stopped between its CAS and
/// its increment, and between its increment and its stamp CAS.
#[test]
fn a_scan_and_a_lookup_race_an_install_and_its_stamp() {
    loom::model(|| {
        let m = full_leaf();
        m.insert(Key::new(25), 25); // leaves [10 20 25] | [30 40]
        let writer = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                assert_eq!(m.insert(Key::new(15), 15), None);
                assert_eq!(m.insert(Key::new(45), 45), None);
            })
        };
        let seen = m.get(&Key::new(15)).is_some();
        let got = keys(&m);
        assert!(
            !seen || got.contains(&15),
            "a scan missed an update a finished lookup saw: {got:?}"
        );
        assert!(
            !got.contains(&45) || got.contains(&15),
            "not a snapshot: {got:?}"
        );
        if got.contains(&45) {
            assert_eq!(m.get(&Key::new(45)), Some(45), "a lookup went back");
        }
        writer.join().unwrap();
        assert_eq!(keys(&m), [10, 15, 20, 25, 30, 40, 45]);
    });
}
