//! Hash-map workloads: waitless's `LockFreeHashMap` against `RwLock<HashMap>`
//! and `Mutex<HashMap>` baselines and the papaya, dashmap and scc peers, plus
//! the cost of one hazard-pointer `protect` against haphazard and a
//! crossbeam-epoch `pin` + load.
//!
//! Every map uses the same fixed hasher, std's `DefaultHasher` (SipHash-1-3
//! with zero keys) through `BuildHasherDefault`, so the comparison measures
//! the tables, not the hash functions. Keys are `u64` drawn uniformly from a
//! key space of [`KEYS`]; the mixed workloads start with half of it present.
//!
//! | workload | get / insert / remove / update |
//! |---|---|
//! | `map/read-heavy` | 98 / 1 / 1 / 0 |
//! | `map/exchange` | 10 / 40 / 40 / 10 |
//! | `map/insert-heavy` | 10 / 80 / 10 / 0 |
//! | `map/grow-from-empty` | fresh keys only, no pre-sizing (every op is an insert of a new key) |

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Mutex, RwLock};

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

/// The hasher every map uses.
pub type Fixed = BuildHasherDefault<DefaultHasher>;

/// Key space of the mixed workloads.
pub const KEYS: u64 = 1 << 16;

/// The operations a contender supports, on `u64 -> u64`.
pub trait BenchMap: Contender + Send + Sync {
    /// An empty map (never pre-sized).
    fn empty() -> Self;
    /// Reads a key.
    fn get(&self, k: u64) -> Option<u64>;
    /// Inserts or replaces.
    fn insert(&self, k: u64, v: u64);
    /// Removes.
    fn remove(&self, k: u64);
    /// Read-modify-write of an existing key.
    fn update(&self, k: u64);
}

/// waitless `LockFreeHashMap`.
pub struct Waitless(waitless::map::LockFreeHashMap<u64, u64, Fixed>);
impl Contender for Waitless {
    const NAME: &'static str = "waitless";
    const ROLE: Role = Role::Waitless;
}
impl BenchMap for Waitless {
    fn empty() -> Self {
        Self(waitless::map::LockFreeHashMap::with_hasher(Fixed::default()))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn remove(&self, k: u64) {
        self.0.remove(&k);
    }
    fn update(&self, k: u64) {
        self.0.update(&k, |v| v + 1);
    }
}

/// `RwLock<HashMap>`.
pub struct RwMap(RwLock<HashMap<u64, u64, Fixed>>);
impl Contender for RwMap {
    const NAME: &'static str = "RwLock<HashMap>";
    const ROLE: Role = Role::MutexBaseline;
}
impl BenchMap for RwMap {
    fn empty() -> Self {
        Self(RwLock::new(HashMap::default()))
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
    fn update(&self, k: u64) {
        if let Some(v) = self.0.write().unwrap().get_mut(&k) {
            *v += 1;
        }
    }
}

/// `Mutex<HashMap>`.
pub struct MutexMap(Mutex<HashMap<u64, u64, Fixed>>);
impl Contender for MutexMap {
    const NAME: &'static str = "Mutex<HashMap>";
    const ROLE: Role = Role::MutexBaseline;
}
impl BenchMap for MutexMap {
    fn empty() -> Self {
        Self(Mutex::new(HashMap::default()))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.lock().unwrap().insert(k, v);
    }
    fn remove(&self, k: u64) {
        self.0.lock().unwrap().remove(&k);
    }
    fn update(&self, k: u64) {
        if let Some(v) = self.0.lock().unwrap().get_mut(&k) {
            *v += 1;
        }
    }
}

/// papaya `HashMap` (pins per operation, as its docs' simple API does).
pub struct Papaya(papaya::HashMap<u64, u64, Fixed>);
impl Contender for Papaya {
    const NAME: &'static str = "papaya";
    const ROLE: Role = Role::Peer;
}
impl BenchMap for Papaya {
    fn empty() -> Self {
        Self(papaya::HashMap::with_hasher(Fixed::default()))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.pin().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.pin().insert(k, v);
    }
    fn remove(&self, k: u64) {
        self.0.pin().remove(&k);
    }
    fn update(&self, k: u64) {
        self.0.pin().update(k, |v| v + 1);
    }
}

/// dashmap `DashMap`.
pub struct Dash(dashmap::DashMap<u64, u64, Fixed>);
impl Contender for Dash {
    const NAME: &'static str = "dashmap";
    const ROLE: Role = Role::Peer;
}
impl BenchMap for Dash {
    fn empty() -> Self {
        Self(dashmap::DashMap::with_hasher(Fixed::default()))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k).map(|r| *r)
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn remove(&self, k: u64) {
        self.0.remove(&k);
    }
    fn update(&self, k: u64) {
        if let Some(mut r) = self.0.get_mut(&k) {
            *r += 1;
        }
    }
}

/// scc `HashMap`.
pub struct Scc(scc::HashMap<u64, u64, Fixed>);
impl Contender for Scc {
    const NAME: &'static str = "scc::HashMap";
    const ROLE: Role = Role::Peer;
}
impl BenchMap for Scc {
    fn empty() -> Self {
        Self(scc::HashMap::with_hasher(Fixed::default()))
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.0.read_sync(&k, |_, v| *v)
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.upsert_sync(k, v);
    }
    fn remove(&self, k: u64) {
        self.0.remove_sync(&k);
    }
    fn update(&self, k: u64) {
        self.0.update_sync(&k, |_, v| *v += 1);
    }
}

/// A per-thread xorshift generator (no shared state).
pub struct Rng(u64);
impl Rng {
    /// Seeded per thread.
    pub fn new(thread: usize) -> Self {
        Self(0x9E37_79B9_7F4A_7C15 ^ ((thread as u64 + 1) * 0x2545_F491_4F6C_DD1D))
    }
    /// Next value.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Percentages of get / insert / remove; the rest are updates.
#[derive(Clone, Copy)]
struct Mix {
    get: u64,
    insert: u64,
    remove: u64,
}

const READ_HEAVY: Mix = Mix {
    get: 98,
    insert: 1,
    remove: 1,
};
const EXCHANGE: Mix = Mix {
    get: 10,
    insert: 40,
    remove: 40,
};
const INSERT_HEAVY: Mix = Mix {
    get: 10,
    insert: 80,
    remove: 10,
};

fn mixed<M: BenchMap>(cfg: &RunConfig, threads: usize, mix: Mix) -> RunResult {
    let map = M::empty();
    for k in (0..KEYS).step_by(2) {
        map.insert(k, k);
    }
    run_workload(cfg, threads, Rng::new, |rng| {
        let r = rng.next_u64();
        let k = (r >> 8) % KEYS;
        let p = r % 100;
        if p < mix.get {
            std::hint::black_box(map.get(k));
        } else if p < mix.get + mix.insert {
            map.insert(k, r);
        } else if p < mix.get + mix.insert + mix.remove {
            map.remove(k);
        } else {
            map.update(k);
        }
        1
    })
}

fn read_heavy<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    mixed::<M>(cfg, threads, READ_HEAVY)
}

fn exchange<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    mixed::<M>(cfg, threads, EXCHANGE)
}

fn insert_heavy<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    mixed::<M>(cfg, threads, INSERT_HEAVY)
}

/// Every thread inserts fresh keys (its own arithmetic progression, spread
/// by a multiplicative hash) into a map that starts empty and is never
/// pre-sized, for the whole window.
fn grow_from_empty<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    let map = M::empty();
    let t = threads as u64;
    run_workload(
        cfg,
        threads,
        |i| i as u64,
        |next| {
            let k = next.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            map.insert(k, *next);
            *next += t;
            1
        },
    )
}

const READ_HEAVY_W: Workload = Workload::new("map", "map/read-heavy", "ops");
const EXCHANGE_W: Workload = Workload::new("map", "map/exchange", "ops");
const INSERT_HEAVY_W: Workload = Workload::new("map", "map/insert-heavy", "ops");
const GROW_W: Workload = Workload::new("map", "map/grow-from-empty", "inserts");

/// The table of implementations: every map contender on `$run`.
macro_rules! maps {
    ($workload:expr, $run:ident) => {
        table!(
            $workload,
            $run,
            [Waitless, RwMap, MutexMap, Papaya, Dash, Scc]
        )
    };
}

/// Every map workload entry.
pub fn entries() -> Vec<Entry> {
    [
        maps!(READ_HEAVY_W, read_heavy),
        maps!(EXCHANGE_W, exchange),
        maps!(INSERT_HEAVY_W, insert_heavy),
        maps!(GROW_W, grow_from_empty),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_map_entry_runs_and_counts_operations() {
        let cfg = RunConfig {
            warmup: Duration::from_millis(1),
            window: Duration::from_millis(5),
        };
        let es = entries();
        assert_eq!(es.len(), 4 * 6);
        for e in es {
            let r = (e.run)(&cfg, 2);
            assert!(r.ops > 0, "{} / {} did nothing", e.workload, e.contender);
        }
    }

    #[test]
    fn contenders_agree_on_a_sequential_script() {
        fn script<M: BenchMap>() -> Vec<Option<u64>> {
            let m = M::empty();
            let mut out = Vec::new();
            for k in 0..50 {
                m.insert(k, k);
            }
            for k in (0..50).step_by(3) {
                m.remove(k);
                m.update(k + 1);
            }
            for k in 0..52 {
                out.push(m.get(k));
            }
            out
        }
        let want = script::<MutexMap>();
        assert_eq!(script::<Waitless>(), want);
        assert_eq!(script::<RwMap>(), want);
        assert_eq!(script::<Papaya>(), want);
        assert_eq!(script::<Dash>(), want);
        assert_eq!(script::<Scc>(), want);
    }
}
