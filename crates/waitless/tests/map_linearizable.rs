//! Stress tests whose recorded histories must pass `waitless-check`'s map
//! model (checked per key), plus a check that the checker does reject a
//! history from a deliberately broken map (so these tests can fail).
#![cfg(not(loom))]

use std::hash::{BuildHasherDefault, Hasher};

use waitless::map::LockFreeHashMap;
use waitless_check::{assert_linearizable, check, MapModel, MapOp, MapRet, Recorder};

/// Few distinct hashes, so keys share split-order keys and buckets.
#[derive(Default)]
struct Coarse(u64);
impl Hasher for Coarse {
    fn finish(&self) -> u64 {
        self.0 % 5
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_mul(131).wrapping_add(u64::from(*b));
        }
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `threads` threads run `ops` random operations each on `keys` keys; values
/// are unique per (thread, step) so the checker can match reads to writes.
fn run<S: std::hash::BuildHasher + Sync>(
    m: &LockFreeHashMap<u64, u64, S>,
    threads: u64,
    ops: u64,
    keys: u64,
) -> waitless_check::History<MapOp<u64, u64>, MapRet<u64>> {
    let rec: Recorder<MapOp<u64, u64>, MapRet<u64>> = Recorder::new();
    std::thread::scope(|s| {
        for t in 0..threads {
            let rec = &rec;
            s.spawn(move || {
                let mut log = rec.thread();
                let mut x = 0x1234_5678_9abc_def1 ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for i in 0..ops {
                    let r = xorshift(&mut x);
                    let k = r % keys;
                    match (r >> 32) % 3 {
                        0 => {
                            let v = t << 32 | i;
                            log.op(MapOp::Insert(k, v), || MapRet::Inserted(m.insert(k, v)));
                        }
                        1 => {
                            log.op(MapOp::Get(k), || MapRet::Got(m.get(&k)));
                        }
                        _ => {
                            log.op(MapOp::Remove(k), || MapRet::Removed(m.remove(&k)));
                        }
                    }
                }
            });
        }
    });
    rec.into_history()
}

#[test]
fn histories_are_linearizable() {
    for round in 0..4 {
        let m = LockFreeHashMap::with_capacity(1);
        let h = run(&m, 4, 1500, 16 + round * 16);
        assert_linearizable(&MapModel::new(), &h);
    }
}

#[test]
fn histories_with_colliding_hashes_are_linearizable() {
    for _ in 0..4 {
        let m = LockFreeHashMap::with_hasher(BuildHasherDefault::<Coarse>::default());
        let h = run(&m, 4, 1500, 12);
        assert_linearizable(&MapModel::new(), &h);
    }
}

/// The same harness on a map that loses its removes' results would be
/// caught: a sanity check that the history test can fail.
#[test]
fn a_wrong_answer_is_rejected() {
    let m = LockFreeHashMap::new();
    let rec: Recorder<MapOp<u64, u64>, MapRet<u64>> = Recorder::new();
    {
        let mut log = rec.thread();
        log.op(MapOp::Insert(1, 10), || MapRet::Inserted(m.insert(1, 10)));
        // Report a remove as finding nothing although the key is present.
        log.op(MapOp::Remove(1), || {
            m.remove(&1);
            MapRet::Removed(None)
        });
    }
    assert!(check(&MapModel::new(), &rec.into_history()).is_err());
}
