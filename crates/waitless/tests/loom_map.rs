//! loom models of the map's core races: insert/remove on one bucket, and a
//! resize (bucket split) racing with insert and get. Under loom every retire
//! scans and the map checks its load factor on every insert, so the rare
//! paths (reclamation, growth, lazy bucket initialization) run.
#![cfg(loom)]

use std::hash::{BuildHasherDefault, Hasher};

use loom::thread;
use waitless::map::LockFreeHashMap;

/// The key is the hash: places keys in chosen buckets.
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

/// One thread removes and another re-inserts a key of a bucket shared with
/// another key (2 and 4 collide in bucket 0 of a 2-bucket map); the results
/// are one of the linearizable ones and the other key is untouched.
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

/// A one-bucket map with one key: inserting key 1 doubles the table and
/// splits bucket 1 off (its dummy is spliced into the list) while another
/// thread looks up key 0 and inserts key 3 (which also belongs to bucket 1).
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
/// is retired with a share of its node, so the reader sees 10 or 11 (or
/// nothing), and the node is freed once (loom scans on every retire).
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

/// Two threads need the same fresh bucket at once (a 4-bucket map whose
/// bucket 3 has no dummy linked yet): one links the inline dummy, the other
/// searches from the parent bucket meanwhile; neither waits or loses a key.
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
/// until a search finds the key absent; the loser's link CAS fails (or its
/// search finds the winner's node), so it replaces the winner's value,
/// moving its own value out of the node it built (or boxing the loose one).
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
