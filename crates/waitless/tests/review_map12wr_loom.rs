//! loom models (map12wr review) of map12w's write fast path, which under
//! loom runs on the per-call guard's set (`insert_slow`/`remove_slow` call
//! `insert_fast`/`remove_fast` first; `CachedSet` is `None` under loom):
//! - a fast re-insert into a tombstone (`Probe::Tomb`, `swap_fast`'s
//!   `null → box` CAS) racing a migration that seals and drops that
//!   tombstone: exactly one wins, the key is never lost or doubled;
//! - a fast new-key claim (`claim_fast`) racing `put`'s `Found::Empty` arm
//!   (`get_or_insert_with`) for the same key: one entry, one winner.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//! cargo test -p waitless --release --test review_map12wr_loom -- --test-threads=1`
#![cfg(loom)]

use std::hash::{BuildHasherDefault, Hasher};

use loom::thread;
use waitless::map::LockFreeHashMap;

/// The key is the hash (tag = key | 1, home = tag >> 1 masked).
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

/// Key 0 is a tombstone in a 2-slot table (budget 2, one claim used); one
/// thread re-inserts it (fast path: `Tomb`, value-cell CAS) while another
/// inserts a new key (the second claim) and a third (over budget: grows,
/// so the migration seals and drops key 0's tombstone unless the re-insert
/// came first). Either way key 0 ends up with the re-inserted value and
/// exactly one entry.
#[test]
fn fast_reinsert_into_a_tombstone_races_its_drop() {
    loom::model(|| {
        let m = map(1);
        m.insert(0, 0);
        assert_eq!(m.remove(&0), Some(0));
        let t = {
            let m = m.clone();
            thread::spawn(move || {
                assert_eq!(m.insert(1, 1), None);
                assert_eq!(m.insert(3, 3), None);
            })
        };
        assert_eq!(m.insert(0, 5), None, "a tombstone holds no value");
        t.join().unwrap();
        assert_eq!(m.get(&0), Some(5));
        assert_eq!(m.len(), 3);
        assert_eq!(m.remove(&0), Some(5));
        assert_eq!(m.remove(&0), None, "a second entry for key 0");
        assert_eq!(m.len(), 2);
    });
}

/// A fast insert (`claim_fast`) and a `get_or_insert_with` (`put`) of one
/// new key (same tag as the present key 0, so both probe past it): one
/// slot claim wins, the other sees it.
#[test]
fn fast_claim_races_put_of_one_key() {
    loom::model(|| {
        let m = map(1);
        m.insert(0, 0);
        let t = {
            let m = m.clone();
            thread::spawn(move || m.get_or_insert_with(1, || 11))
        };
        let a = m.insert(1, 10);
        let b = t.join().unwrap();
        match (a, b) {
            // The insert first: `get_or_insert_with` returns its value.
            (None, 10) => {}
            // `get_or_insert_with` first: the insert replaces 11.
            (Some(11), 11) => {}
            other => panic!("not linearizable: {other:?}"),
        }
        assert_eq!(m.get(&1), Some(10));
        assert_eq!(m.len(), 2);
        assert_eq!(m.remove(&1), Some(10));
        assert_eq!(m.remove(&1), None, "a second entry for key 1");
    });
}
