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
//! | `hazard/protect` | protect one pointer and read through it (ns per op) |

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, RwLock};

use super::{Entry, Role};
use crate::measure::{run_workload, RunConfig, RunResult};

/// The hasher every map uses.
pub type Fixed = BuildHasherDefault<DefaultHasher>;

/// Key space of the mixed workloads.
pub const KEYS: u64 = 1 << 16;

/// The operations a contender supports, on `u64 -> u64`.
pub trait BenchMap: Send + Sync + 'static {
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

type Payload = [u64; 2];

fn payload() -> AtomicPtr<Payload> {
    AtomicPtr::new(Box::into_raw(Box::new([1, 2])))
}

fn free_payload(p: AtomicPtr<Payload>) {
    // SAFETY: created by `payload` from a Box; the benchmark threads joined.
    drop(unsafe { Box::from_raw(p.into_inner()) });
}

/// One protect + read through the pointer, per op, with the hazard pointer
/// held across ops (the usual way to amortize acquiring it).
fn protect_waitless(
    cfg: &RunConfig,
    threads: usize,
    strategy: waitless::hazard::FenceStrategy,
) -> RunResult {
    use waitless::hazard::{Domain, HazardPointer};
    let domain = Domain::with_strategy(strategy);
    let src = payload();
    let r = run_workload(
        cfg,
        threads,
        |_| HazardPointer::new_in(&domain),
        |hp| {
            let p = hp.protect(&src);
            // SAFETY: protected; never retired during the run.
            std::hint::black_box(unsafe { (*p)[0] });
            1
        },
    );
    free_payload(src);
    r
}

fn protect_waitless_asym(cfg: &RunConfig, threads: usize) -> RunResult {
    protect_waitless(cfg, threads, waitless::hazard::FenceStrategy::Asymmetric)
}

fn protect_waitless_sym(cfg: &RunConfig, threads: usize) -> RunResult {
    protect_waitless(cfg, threads, waitless::hazard::FenceStrategy::Symmetric)
}

fn protect_haphazard(cfg: &RunConfig, threads: usize) -> RunResult {
    let src = payload();
    let r = run_workload(
        cfg,
        threads,
        |_| haphazard::HazardPointer::new(),
        |hp| {
            let p = hp.protect_ptr(&src).expect("non-null").0;
            // SAFETY: protected; never retired during the run.
            std::hint::black_box(unsafe { p.as_ref()[0] });
            1
        },
    );
    free_payload(src);
    r
}

fn protect_crossbeam_epoch(cfg: &RunConfig, threads: usize) -> RunResult {
    let src = crossbeam_epoch::Atomic::new([1u64, 2]);
    let r = run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            let guard = crossbeam_epoch::pin();
            let p = src.load(Ordering::Acquire, &guard);
            // SAFETY: pinned; never retired during the run.
            std::hint::black_box(unsafe { p.deref()[0] });
            1
        },
    );
    // SAFETY: the benchmark threads joined; nothing else refers to it.
    drop(unsafe { src.into_owned() });
    r
}

macro_rules! contenders {
    ($v:ident, $workload:literal, $unit:literal, $f:ident) => {
        $v.push(entry(
            $workload,
            $unit,
            "waitless",
            Role::Waitless,
            $f::<Waitless>,
        ));
        $v.push(entry(
            $workload,
            $unit,
            "RwLock<HashMap>",
            Role::MutexBaseline,
            $f::<RwMap>,
        ));
        $v.push(entry(
            $workload,
            $unit,
            "Mutex<HashMap>",
            Role::MutexBaseline,
            $f::<MutexMap>,
        ));
        $v.push(entry($workload, $unit, "papaya", Role::Peer, $f::<Papaya>));
        $v.push(entry($workload, $unit, "dashmap", Role::Peer, $f::<Dash>));
        $v.push(entry(
            $workload,
            $unit,
            "scc::HashMap",
            Role::Peer,
            $f::<Scc>,
        ));
    };
}

fn entry(
    workload: &'static str,
    unit: &'static str,
    contender: &'static str,
    role: Role,
    run: fn(&RunConfig, usize) -> RunResult,
) -> Entry {
    Entry {
        group: "map",
        workload,
        unit,
        contender,
        role,
        fixed_threads: None,
        run,
    }
}

/// Every map workload entry.
#[allow(clippy::vec_init_then_push)]
pub fn entries() -> Vec<Entry> {
    let mut v = Vec::new();
    contenders!(v, "map/read-heavy", "ops", read_heavy);
    contenders!(v, "map/exchange", "ops", exchange);
    contenders!(v, "map/insert-heavy", "ops", insert_heavy);
    contenders!(v, "map/grow-from-empty", "inserts", grow_from_empty);
    let p = "hazard/protect";
    v.push(entry(
        p,
        "protects",
        "waitless (asymmetric)",
        Role::Waitless,
        protect_waitless_asym,
    ));
    v.push(entry(
        p,
        "protects",
        "waitless (symmetric)",
        Role::Waitless,
        protect_waitless_sym,
    ));
    v.push(entry(
        p,
        "protects",
        "haphazard",
        Role::Peer,
        protect_haphazard,
    ));
    v.push(entry(
        p,
        "protects",
        "crossbeam-epoch pin+load",
        Role::Peer,
        protect_crossbeam_epoch,
    ));
    v
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
        assert_eq!(es.len(), 4 * 6 + 4);
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
