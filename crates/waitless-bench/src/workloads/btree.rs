//! Ordered-map workloads: waitless's `LockFreeBTree` against the
//! `RwLock<BTreeMap>` baseline and the scc `TreeIndex` and crossbeam
//! `SkipMap` peers.
//!
//! Keys are `u64` drawn uniformly from a key space of [`KEYS`] (1M); every
//! map starts with [`PREFILL`] (100k) keys spread over it.
//!
//! | workload | what one operation is |
//! |---|---|
//! | `btree/read-heavy` | 98% lookup / 1% insert / 1% remove |
//! | `btree/scan` | 90% `range(k..)` of 64 entries (each entry read) / 5% insert / 5% remove |
//! | `btree/insert-heavy` | 50% insert / 50% remove |
//!
//! Scans differ in what they promise: waitless's is a linearizable snapshot,
//! scc's and `SkipMap`'s are not (weakly consistent), the `RwLock`'s holds
//! the read lock for the whole scan.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crossbeam_skiplist::SkipMap;
use scc::TreeIndex;
use waitless::btree::LockFreeBTree;

use super::map::Rng;
use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

/// Key space.
pub const KEYS: u64 = 1_000_000;
/// Keys present at the start.
pub const PREFILL: u64 = 100_000;
/// Entries per scan.
pub const SCAN_LEN: usize = 64;

const READ_HEAVY_W: Workload = Workload::new("btree", "btree/read-heavy", "operations");
const SCAN_W: Workload = Workload::new(
    "btree",
    "btree/scan",
    "operations (a 64-entry scan counts as one)",
);
const INSERT_HEAVY_W: Workload = Workload::new("btree", "btree/insert-heavy", "operations");

/// An ordered map `u64 -> u64` as the workloads drive it.
pub trait BenchOrdered: Contender + Sync + Sized {
    /// An empty map.
    fn build() -> Self;
    /// Reads a key.
    fn get(&self, k: u64) -> Option<u64>;
    /// Inserts or replaces.
    fn insert(&self, k: u64, v: u64);
    /// Removes.
    fn remove(&self, k: u64);
    /// Reads up to `n` entries from the first key `>= k`; returns a value
    /// that depends on every entry read.
    fn scan(&self, k: u64, n: usize) -> u64;
}

impl Contender for LockFreeBTree<u64, u64> {
    const NAME: &'static str = "waitless LockFreeBTree";
    const ROLE: Role = Role::Waitless;
}

impl BenchOrdered for LockFreeBTree<u64, u64> {
    fn build() -> Self {
        LockFreeBTree::new()
    }
    fn get(&self, k: u64) -> Option<u64> {
        LockFreeBTree::get(self, &k)
    }
    fn insert(&self, k: u64, v: u64) {
        LockFreeBTree::insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        LockFreeBTree::remove(self, &k);
    }
    fn scan(&self, k: u64, n: usize) -> u64 {
        self.range(k..).take(n).fold(0, |a, (k, v)| a ^ k ^ v)
    }
}

/// `RwLock<BTreeMap>`: the scan holds the read lock throughout.
pub struct RwBTree(RwLock<BTreeMap<u64, u64>>);

impl Contender for RwBTree {
    const NAME: &'static str = "RwLock<BTreeMap>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchOrdered for RwBTree {
    fn build() -> Self {
        RwBTree(RwLock::new(BTreeMap::new()))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.read().unwrap().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.write().unwrap().insert(k, v);
    }
    fn remove(&self, k: u64) {
        self.0.write().unwrap().remove(&k);
    }
    fn scan(&self, k: u64, n: usize) -> u64 {
        let g = self.0.read().unwrap();
        g.range(k..).take(n).fold(0, |a, (k, v)| a ^ k ^ v)
    }
}

impl Contender for TreeIndex<u64, u64> {
    const NAME: &'static str = "scc TreeIndex";
    const ROLE: Role = Role::Peer;
}

impl BenchOrdered for TreeIndex<u64, u64> {
    fn build() -> Self {
        TreeIndex::new()
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.peek_with(&k, |_, v| *v)
    }
    fn insert(&self, k: u64, v: u64) {
        // `TreeIndex` has no replace: an existing key keeps its value.
        let _ = self.insert_sync(k, v);
    }
    fn remove(&self, k: u64) {
        self.remove_sync(&k);
    }
    fn scan(&self, k: u64, n: usize) -> u64 {
        let guard = scc::Guard::new();
        self.range(k.., &guard)
            .take(n)
            .fold(0, |a, (k, v)| a ^ k ^ v)
    }
}

impl Contender for SkipMap<u64, u64> {
    const NAME: &'static str = "crossbeam SkipMap";
    const ROLE: Role = Role::Peer;
}

impl BenchOrdered for SkipMap<u64, u64> {
    fn build() -> Self {
        SkipMap::new()
    }
    fn get(&self, k: u64) -> Option<u64> {
        SkipMap::get(self, &k).map(|e| *e.value())
    }
    fn insert(&self, k: u64, v: u64) {
        SkipMap::insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        SkipMap::remove(self, &k);
    }
    fn scan(&self, k: u64, n: usize) -> u64 {
        self.range(k..)
            .take(n)
            .fold(0, |a, e| a ^ e.key() ^ e.value())
    }
}

/// Percentages of lookup / scan / insert; the rest are removes.
#[derive(Clone, Copy)]
struct Mix {
    get: u64,
    scan: u64,
    insert: u64,
}

const READ_HEAVY: Mix = Mix {
    get: 98,
    scan: 0,
    insert: 1,
};
const SCAN: Mix = Mix {
    get: 0,
    scan: 90,
    insert: 5,
};
const INSERT_HEAVY: Mix = Mix {
    get: 0,
    scan: 0,
    insert: 50,
};

fn prefilled<M: BenchOrdered>() -> M {
    let m = M::build();
    let mut rng = Rng::new(usize::MAX);
    let mut n = 0;
    while n < PREFILL {
        let k = (rng.next_u64() >> 8) % KEYS;
        if m.get(k).is_none() {
            m.insert(k, k);
            n += 1;
        }
    }
    m
}

fn mixed<M: BenchOrdered>(cfg: &RunConfig, threads: usize, mix: Mix) -> RunResult {
    let map = prefilled::<M>();
    run_workload(cfg, threads, Rng::new, |rng| {
        let r = rng.next_u64();
        let k = (r >> 8) % KEYS;
        let p = r % 100;
        if p < mix.get {
            std::hint::black_box(map.get(k));
        } else if p < mix.get + mix.scan {
            std::hint::black_box(map.scan(k, SCAN_LEN));
        } else if p < mix.get + mix.scan + mix.insert {
            map.insert(k, r);
        } else {
            map.remove(k);
        }
        1
    })
}

fn read_heavy<M: BenchOrdered>(cfg: &RunConfig, threads: usize) -> RunResult {
    mixed::<M>(cfg, threads, READ_HEAVY)
}

fn scan<M: BenchOrdered>(cfg: &RunConfig, threads: usize) -> RunResult {
    mixed::<M>(cfg, threads, SCAN)
}

fn insert_heavy<M: BenchOrdered>(cfg: &RunConfig, threads: usize) -> RunResult {
    mixed::<M>(cfg, threads, INSERT_HEAVY)
}

/// The table of implementations: every ordered-map contender on `$run`.
macro_rules! ordered {
    ($workload:expr, $run:ident) => {
        table!(
            $workload,
            $run,
            [
                LockFreeBTree<u64, u64>,
                RwBTree,
                TreeIndex<u64, u64>,
                SkipMap<u64, u64>,
            ]
        )
    };
}

/// The ordered-map workloads, one entry per contender.
pub fn entries() -> Vec<Entry> {
    [
        ordered!(READ_HEAVY_W, read_heavy),
        ordered!(SCAN_W, scan),
        ordered!(INSERT_HEAVY_W, insert_heavy),
    ]
    .concat()
}
