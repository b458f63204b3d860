//! Single-thread lookups and insert-heavy updates of the `btree` workloads,
//! for instruction and cache-miss counts under callgrind (exact and
//! repeatable on a loaded machine, unlike wall-clock timings):
//!
//! ```text
//! cargo build --release -p waitless-bench --example btree_callgrind
//! valgrind --tool=callgrind --cache-sim=yes --LL=1048576,16,64 \
//!     target/release/examples/btree_callgrind <ours|skipmap|scc> <get|ins|try> N
//! ```
//!
//! Each run fills the map with the same [`PREFILL`] (100k) `u64` keys drawn
//! uniformly from a key space of [`KEYS`] (1M), as `btree/read-heavy` does,
//! then runs `N` operations on one thread: `get` looks up uniform keys of
//! the space (about 10% present), `ins` is `btree/insert-heavy`'s mix (50%
//! insert / 50% remove of uniform keys), `try` the same mix with an insert
//! that leaves an existing key's value alone (ours: `try_insert`; scc's
//! `insert` always does; `SkipMap::get_or_insert`). Per operation = (run
//! with 2N − run with N) / N, so the prefill cancels. `--LL=1048576,16,64` simulates a
//! 1 MiB last level, a stand-in for a per-core L2 (a large real L3 holds
//! the whole working set, so callgrind's default LL shows no misses).

use std::hint::black_box;

use crossbeam_skiplist::SkipMap;
use scc::TreeIndex;
use waitless::btree::LockFreeBTree;

/// Key space.
const KEYS: u64 = 1_000_000;
/// Keys present at the start.
const PREFILL: u64 = 100_000;

/// A xorshift stream of keys in `0..KEYS`, fixed by `seed`.
fn keys(seed: u64) -> impl FnMut() -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The operations the probe drives, on each contender.
trait Probe {
    fn get(&self, k: u64) -> u64;
    fn insert(&self, k: u64, v: u64);
    /// Inserts unless the key is present.
    fn try_insert(&self, k: u64, v: u64);
    fn remove(&self, k: u64);
}

impl Probe for LockFreeBTree<u64, u64> {
    fn get(&self, k: u64) -> u64 {
        LockFreeBTree::get(self, &k).unwrap_or(0)
    }
    fn insert(&self, k: u64, v: u64) {
        LockFreeBTree::insert(self, k, v);
    }
    fn try_insert(&self, k: u64, v: u64) {
        let _ = LockFreeBTree::try_insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        LockFreeBTree::remove(self, &k);
    }
}

impl Probe for SkipMap<u64, u64> {
    fn get(&self, k: u64) -> u64 {
        SkipMap::get(self, &k).map_or(0, |e| *e.value())
    }
    fn insert(&self, k: u64, v: u64) {
        SkipMap::insert(self, k, v);
    }
    fn try_insert(&self, k: u64, v: u64) {
        SkipMap::get_or_insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        SkipMap::remove(self, &k);
    }
}

impl Probe for TreeIndex<u64, u64> {
    fn get(&self, k: u64) -> u64 {
        self.peek_with(&k, |_, v| *v).unwrap_or(0)
    }
    fn insert(&self, k: u64, v: u64) {
        // `TreeIndex` has no replace: an existing key keeps its value (as in
        // the benchmark's workloads).
        let _ = self.insert_sync(k, v);
    }
    fn try_insert(&self, k: u64, v: u64) {
        let _ = self.insert_sync(k, v);
    }
    fn remove(&self, k: u64) {
        self.remove_sync(&k);
    }
}

fn run(m: &impl Probe, op: &str, n: u64) -> u64 {
    let mut fill = keys(1);
    for _ in 0..PREFILL {
        let k = fill() % KEYS;
        m.insert(k, k);
    }
    let mut next = keys(2);
    let mut acc = 0u64;
    match op {
        "get" => {
            for _ in 0..n {
                let k = next() % KEYS;
                acc = acc.wrapping_add(m.get(black_box(k)));
            }
        }
        "ins" | "try" => {
            let replace = op == "ins";
            for _ in 0..n {
                let x = next();
                let k = (x >> 1) % KEYS;
                if x & 1 == 1 {
                    m.remove(black_box(k));
                } else if replace {
                    m.insert(black_box(k), x);
                } else {
                    m.try_insert(black_box(k), x);
                }
            }
        }
        other => panic!("unknown operation {other}: get, ins or try"),
    }
    acc
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let op = args.next().unwrap_or_else(|| "get".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let acc = match which.as_str() {
        "ours" => run(&LockFreeBTree::new(), &op, n),
        "skipmap" => run(&SkipMap::new(), &op, n),
        "scc" => run(&TreeIndex::new(), &op, n),
        other => panic!("unknown contender {other}: ours, skipmap or scc"),
    };
    println!("{}", black_box(acc));
}
