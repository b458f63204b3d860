//! Review tests (bt16fr): stress histories in which every thread fills its
//! own block of keys past a leaf's capacity (leaf splits, inner splits) and
//! then empties it (emptied leaves dropped, root collapse), interleaved with
//! lookups and `range` scans across all blocks, checked against
//! `waitless-check`'s ordered-map model. Blocks are disjoint so the shape
//! changes of different threads race each other and every scan.
#![cfg(not(loom))]

use waitless::btree::LockFreeBTree;
use waitless_check::{
    assert_linearizable, History, OrderedMapModel, OrderedOp, OrderedRet, Recorder,
};

type Op = OrderedOp<u64, u64>;
type Ret = OrderedRet<u64, u64>;

/// Fill-and-empty cycles per thread and history.
const CYCLES: u64 = if cfg!(miri) { 1 } else { 3 };

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `threads` threads; thread `t` owns keys `t * 1000 + (0..block)`. Each
/// inserts its block in a scrambled order and removes it in another,
/// with a lookup or a scan after every second update.
fn run(m: &LockFreeBTree<u64, u64>, threads: u64, block: u64, seed: u64) -> History<Op, Ret> {
    let rec: Recorder<Op, Ret> = Recorder::new();
    let span = threads * 1000;
    let start = std::sync::Barrier::new(threads as usize);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (rec, start) = (&rec, &start);
            s.spawn(move || {
                let mut log = rec.thread();
                start.wait();
                let mut x = seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let ins: Vec<u64> = (0..block).map(|i| t * 1000 + (i * 7) % block).collect();
                let rem: Vec<u64> = (0..block).map(|i| t * 1000 + (i * 11) % block).collect();
                let read = |log: &mut waitless_check::ThreadLog<'_, Op, Ret>, x: &mut u64| {
                    let r = xorshift(x);
                    if r % 3 == 0 {
                        let k = (r >> 8) % span;
                        let k = k - k % 1000 + (k % 1000) % block;
                        log.op(Op::Get(k), || Ret::Got(m.get(&k)));
                    } else {
                        let lo = (r >> 8) % span;
                        let hi = lo + (r >> 40) % span;
                        log.op(Op::Range(lo, hi), || {
                            // A yield inside the scan lets the other
                            // threads' updates and shape changes run while
                            // it is half done, even on two busy cores.
                            let got = m.range(lo..hi).enumerate().map(|(j, kv)| {
                                if j % 16 == 15 {
                                    std::thread::yield_now();
                                }
                                kv
                            });
                            Ret::Ranged(got.collect())
                        });
                    }
                };
                for c in 0..CYCLES {
                    for (i, &k) in ins.iter().enumerate() {
                        let v = t << 32 | c << 16 | i as u64;
                        log.op(Op::Insert(k, v), || Ret::Inserted(m.insert(k, v)));
                        if i % 2 == 1 {
                            read(&mut log, &mut x);
                        }
                    }
                    for (i, &k) in rem.iter().enumerate() {
                        log.op(Op::Remove(k), || Ret::Removed(m.remove(&k)));
                        if i % 2 == 1 {
                            read(&mut log, &mut x);
                        }
                    }
                }
            });
        }
    });
    rec.into_history()
}

#[test]
fn split_and_drop_histories_pass_the_ordered_map_model() {
    let (rounds, block) = if cfg!(miri) { (1, 6) } else { (30, 45) };
    for r in 0..rounds {
        let m = LockFreeBTree::new();
        let h = run(&m, 3, block, 0x2545_f491_4f6c_dd1d ^ r);
        assert_linearizable(&OrderedMapModel::new(), &h);
        assert!(m.is_empty());
    }
}
