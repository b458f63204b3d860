//! Stress histories of the B-tree — inserts, removes, gets and `range`
//! scans with their full results — checked against `waitless-check`'s
//! ordered-map model, and a deliberately non-snapshot scan (a mock) that the
//! same model rejects, so these tests can fail.
#![cfg(not(loom))]

use waitless::btree::LockFreeBTree;
use waitless_check::{
    assert_linearizable, check, History, OrderedMapModel, OrderedOp, OrderedRet, Recorder,
};

type Op = OrderedOp<u64, u64>;
type Ret = OrderedRet<u64, u64>;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `threads` threads run `ops` random operations each on keys `0..keys`;
/// values are unique per (thread, step).
fn run(m: &LockFreeBTree<u64, u64>, threads: u64, ops: u64, keys: u64) -> History<Op, Ret> {
    let rec: Recorder<Op, Ret> = Recorder::new();
    // Pre-fill half the keys (recorded, so the model sees them) so scans
    // cross leaves: with fan-out 32, 24 keys plus inserts split the root.
    let mut log = rec.thread();
    for k in (0..keys).step_by(2) {
        let v = u64::MAX - k;
        log.op(Op::Insert(k, v), || Ret::Inserted(m.insert(k, v)));
    }
    drop(log);
    std::thread::scope(|s| {
        for t in 0..threads {
            let rec = &rec;
            s.spawn(move || {
                let mut log = rec.thread();
                let mut x = 0x2545_f491_4f6c_dd1d ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for i in 0..ops {
                    let r = xorshift(&mut x);
                    let k = r % keys;
                    match (r >> 32) % 8 {
                        0..=2 => {
                            let v = t << 32 | i;
                            log.op(Op::Insert(k, v), || Ret::Inserted(m.insert(k, v)));
                        }
                        3 => {
                            let v = t << 32 | i;
                            log.op(Op::TryInsert(k, v), || {
                                Ret::TryInserted(m.try_insert(k, v).is_ok())
                            });
                        }
                        4 => {
                            log.op(Op::Remove(k), || Ret::Removed(m.remove(&k)));
                        }
                        5 => {
                            log.op(Op::Get(k), || Ret::Got(m.get(&k)));
                        }
                        _ => {
                            let hi = k + (r >> 40) % keys;
                            log.op(Op::Range(k, hi), || Ret::Ranged(m.range(k..hi).collect()));
                        }
                    }
                }
            });
        }
    });
    rec.into_history()
}

#[test]
fn stress_histories_pass_the_ordered_map_model() {
    let (rounds, ops) = if cfg!(miri) { (1, 20) } else { (30, 150) };
    for _ in 0..rounds {
        for threads in [3, 4] {
            let h = run(&LockFreeBTree::new(), threads, ops, 48);
            assert_linearizable(&OrderedMapModel::new(), &h);
        }
    }
}

/// A scan that reads key by key with `get` (each read its own snapshot):
/// weakly consistent, like a skip-list iterator. A writer removes key 1 and
/// then inserts key 2 while it runs; it reports both, which never coexisted.
#[test]
fn a_non_snapshot_scan_is_rejected_and_the_real_one_is_not() {
    let m = LockFreeBTree::new();
    m.insert(1u64, 10u64);
    let model = OrderedMapModel::new();

    let mut h: History<Op, Ret> = History::new();
    h.push(0, Op::Insert(1, 10), Ret::Inserted(None), 0, 1);
    // The real scan starts at 10 and its snapshot is taken now.
    let real = m.range(0..5);
    // The mock scan, also from 10: reads key 0 and key 1 now...
    let mut mock: Vec<(u64, u64)> = Vec::new();
    for k in 0..2 {
        if let Some(v) = m.get(&k) {
            mock.push((k, v));
        }
    }
    // ... a writer runs two whole operations ...
    h.push(1, Op::Remove(1), Ret::Removed(m.remove(&1)), 20, 21);
    h.push(1, Op::Insert(2, 20), Ret::Inserted(m.insert(2, 20)), 30, 31);
    // ... and the mock reads the rest of its range.
    for k in 2..5 {
        if let Some(v) = m.get(&k) {
            mock.push((k, v));
        }
    }
    assert_eq!(mock, [(1, 10), (2, 20)]);
    let real: Vec<_> = real.collect();
    assert_eq!(real, [(1, 10)]);

    let mut with_mock = h.clone();
    with_mock.push(2, Op::Range(0, 5), Ret::Ranged(mock), 10, 40);
    assert!(
        check(&model, &with_mock).is_err(),
        "the model accepted a scan that mixes two states"
    );
    let mut with_real = h;
    with_real.push(2, Op::Range(0, 5), Ret::Ranged(real), 10, 40);
    assert_linearizable(&model, &with_real);
}
