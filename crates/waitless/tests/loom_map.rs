//! loom models of the map's core races on its open-addressing table
//! (`docs/hash-map.md`): insert/remove on keys that share a probe sequence,
//! and a migration to a larger table racing with insert and get. Under loom
//! the smallest table has 2 slots, every retire scans and tags equal the
//! (small) keys, so the rare paths (reclamation, migration with helpers,
//! tag claims that race) run. The table's internal races (a copy racing a
//! lookup, a stale copier, a remove racing a migration) are modelled in the
//! library's `map::table` loom tests, which need its internals.
#![cfg(loom)]

use std::hash::{BuildHasherDefault, Hasher};

use loom::thread;
use waitless::map::LockFreeHashMap;

/// The key is the hash: places keys in chosen slots (tag = key | 1, home
/// slot = tag >> 1 masked).
#[derive(Default)]
struct Id(u64);
impl Hasher for Id {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = LockFreeHashMap<u64, u64, BuildHasherDefault<Id>>;

fn map(cap: usize) -> loom::sync::Arc<Map> {
    loom::sync::Arc::new(LockFreeHashMap::with_capacity_and_hasher(
        cap,
        BuildHasherDefault::default(),
    ))
}

/// One thread removes and another re-inserts a key that shares a 2-slot
/// table with another key (2 and 4: each probe passes the other's slot);
/// both are value-cell CASes on the key's entry (remove leaves a tombstone
/// that keeps the key), the results are one of the linearizable ones and
/// the other key is untouched.
#[test]
fn insert_remove_one_bucket() {
    loom::model(|| {
        let m = map(2);
        m.insert(2, 20);
        m.insert(4, 40);
        let t = {
            let m = m.clone();
            thread::spawn(move || m.remove(&2))
        };
        let ins2 = m.insert(2, 21);
        let removed = t.join().unwrap();
        match (removed, ins2) {
            // remove before the re-insert
            (Some(20), None) => {}
            // re-insert (replace) before the remove
            (Some(21), Some(20)) => {}
            other => panic!("not linearizable: {other:?}"),
        }
        assert_eq!(m.get(&4), Some(40));
        let left = m.get(&2);
        assert_eq!(left.is_some(), removed == Some(20));
        assert_eq!(m.len(), 1 + usize::from(left.is_some()));
    });
}

/// Two threads remove the same key: exactly one gets the value.
#[test]
fn concurrent_removes_of_one_key() {
    loom::model(|| {
        let m = map(1);
        m.insert(1, 10);
        let t = {
            let m = m.clone();
            thread::spawn(move || m.remove(&1))
        };
        let a = m.remove(&1);
        let b = t.join().unwrap();
        assert!(
            matches!((a, b), (Some(10), None) | (None, Some(10))),
            "{a:?} {b:?}"
        );
        assert!(m.is_empty());
        assert_eq!(m.get(&1), None);
    });
}

/// A 2-slot table holding key 0 (its budget is 2 claims): whichever of the
/// inserts of key 1 (same tag as 0) and key 3 comes second migrates it to a
/// 4-slot table (entries frozen, copied by pointer, the root swung, the old
/// table retired) while the other thread inserts or reads; a thread that
/// needs a slot during the migration helps copy, nobody waits, and key 0
/// stays visible throughout.
#[test]
fn resize_races_with_insert_and_get() {
    loom::model(|| {
        let m = map(1);
        m.insert(0, 0);
        let t = {
            let m = m.clone();
            thread::spawn(move || {
                assert_eq!(m.insert(1, 1), None);
                assert_eq!(m.get(&1), Some(1));
            })
        };
        assert_eq!(m.get(&0), Some(0), "a resize hid an existing key");
        assert_eq!(m.insert(3, 3), None);
        t.join().unwrap();
        assert!(m.buckets() >= 2, "the table grew");
        for k in [0, 1, 3] {
            assert_eq!(m.get(&k), Some(k));
        }
        assert_eq!(m.len(), 3);
        let mut keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(keys, [0, 1, 3]);
    });
}

/// A reader borrows a key's inline first value (pinned view) while another
/// thread replaces it and then removes the key: the swapped-out inline value
/// is retired with a share of its entry (`OWN_INIT`), so the reader sees 10
/// or 11 (or nothing), and the entry is freed once (loom scans on every
/// retire).
#[test]
fn inline_value_read_races_replace_and_remove() {
    loom::model(|| {
        let m = map(1);
        m.insert(1, 10);
        let t = {
            let m = m.clone();
            thread::spawn(move || {
                assert_eq!(m.insert(1, 11), Some(10));
                assert_eq!(m.remove(&1), Some(11));
            })
        };
        let seen = m.pin().get(&1).copied();
        assert!(matches!(seen, None | Some(10) | Some(11)), "{seen:?}");
        t.join().unwrap();
        assert_eq!(m.get(&1), None);
        assert!(m.is_empty());
    });
}

/// Two threads insert two different keys into a fresh table at once (an
/// 8-slot table, from `with_capacity(4)`): each claims a slot with a tag CAS
/// and stores its entry with a word CAS, and both count against the table's
/// claim budget and the striped length; a claim that loses either CAS probes
/// on. Neither waits or loses a key.
#[test]
fn two_threads_link_one_bucket() {
    loom::model(|| {
        let m = map(4);
        let t = {
            let m = m.clone();
            thread::spawn(move || m.insert(3, 30))
        };
        let a = m.insert(7, 70);
        assert_eq!(t.join().unwrap(), None);
        assert_eq!(a, None);
        assert_eq!(m.get(&3), Some(30));
        assert_eq!(m.get(&7), Some(70));
        assert_eq!(m.len(), 2);
    });
}

/// Two threads insert the same absent key. The key and value travel loose
/// until a probe finds the key absent; both may claim the same slot (equal
/// tags), the loser's word CAS fails (or its probe finds the winner's
/// entry), so it replaces the winner's value, moving its own value out of
/// the entry it built (or boxing the loose one).
/// Exactly one insert sees the key absent, the other gets the first value
/// back, and the second value stays.
#[test]
fn two_inserts_of_one_key() {
    loom::model(|| {
        let m = map(2);
        let t = {
            let m = m.clone();
            thread::spawn(move || m.insert(1, 10))
        };
        let mine = m.insert(1, 11);
        let theirs = t.join().unwrap();
        let last = match (theirs, mine) {
            (None, Some(10)) => 11,
            (Some(11), None) => 10,
            other => panic!("not linearizable: {other:?}"),
        };
        assert_eq!(m.get(&1), Some(last));
        assert_eq!(m.len(), 1);
    });
}
