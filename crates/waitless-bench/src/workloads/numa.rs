//! NUMA workloads (`waitless::numa`, issue 17), same run for every
//! contender.
//!
//! - `numa/map-read-only`, `numa/map-90-10` and `numa/map-50-50`: a map of
//!   1024 `u64` keys (prefilled); each call is one operation on a random
//!   key, a read (100 %, 90 % or 50 %) or an insert. The read-only row
//!   measures reads alone (NR's replica reads against the lock's shared
//!   read path). Contenders: `NodeReplicated<HashMap>` (one
//!   replica per node), `RwLock<HashMap>`, `Mutex<HashMap>` and the
//!   `node-replication` crate (the Rust implementation of the same paper).
//! - `numa/lock`: a short critical section (two counters) under
//!   `CohortLock`, `std::sync::Mutex` and `parking_lot::Mutex`.
//! - `numa/stack-push-pop-pairs`: `NodeAwareStack` (per-node elimination
//!   arrays) against the plain `LockFreeStack`, a push then a pop per call.
//! - `numa/line-transfer` (2 threads): the two threads bounce one cache line
//!   with CAS, pinned to the same node or to two different nodes: the
//!   in-node and cross-node transfer costs of the cost model in
//!   `docs/numa.md` (on a one-node machine both rows run inside the node).
//!
//! Placement: when `Topology::current()` finds more than one node with
//! CPUs, thread `t` is pinned to a CPU of node `t mod nodes`, so
//! `current_node()` and the structures see real nodes. On a one-node
//! machine nothing is pinned and every structure has one node: the rows
//! then show the single-node overhead of the NUMA designs.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use waitless::numa::{CohortLock, NodeAwareStack, NodeReplicated, NrHandle, Sequential, Topology};
use waitless::stack::LockFreeStack;
use waitless::CachePadded;

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

const MAP_R: Workload = Workload::new("numa", "numa/map-read-only", "map reads");
const MAP_90: Workload = Workload::new("numa", "numa/map-90-10", "map ops");
const MAP_50: Workload = Workload::new("numa", "numa/map-50-50", "map ops");
const LOCK: Workload = Workload::new("numa", "numa/lock", "critical sections");
const STACK: Workload = Workload::new("numa", "numa/stack-push-pop-pairs", "push+pop pairs");
const LINE: Workload = Workload::new("numa", "numa/line-transfer", "line transfers").at(&[2]);

/// Keys in the map workloads.
const KEYS: u64 = 1024;

// ------------------------------------------------------------ placement

fn topology() -> &'static Topology {
    static T: OnceLock<Topology> = OnceLock::new();
    T.get_or_init(Topology::current)
}

/// The CPU lists of the nodes that have CPUs (memory-only nodes run no
/// threads).
fn cpu_nodes() -> Vec<&'static [usize]> {
    topology()
        .nodes()
        .iter()
        .filter(|n| !n.cpus.is_empty())
        .map(|n| n.cpus.as_slice())
        .collect()
}

fn node_count() -> usize {
    cpu_nodes().len().max(1)
}

/// Pins the calling thread to `cpu`, best effort (on failure the thread
/// stays where the scheduler put it).
fn pin_to_cpu(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `cpu_set_t` is plain data; all zeroes is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid set; `CPU_SET` ignores CPUs beyond it.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: pid 0 is the calling thread; `set` is valid for its size.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// Thread `t`'s placement: on a multi-node machine a CPU of node
/// `t mod nodes`; on one node, wherever the scheduler likes.
fn place(t: usize) {
    let nodes = cpu_nodes();
    if nodes.len() > 1 {
        let cpus = nodes[t % nodes.len()];
        pin_to_cpu(cpus[(t / nodes.len()) % cpus.len()]);
    }
}

/// Per-thread xorshift.
struct Rng(u64);

impl Rng {
    fn new(t: usize) -> Self {
        Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
    }

    /// `(is_write, key)`, a write with probability `write_pct` %.
    #[inline]
    fn op(&mut self, write_pct: u64) -> (bool, u64) {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 100 < write_pct, (self.0 >> 8) % KEYS)
    }
}

fn prefilled() -> HashMap<u64, u64> {
    (0..KEYS).map(|k| (k, k)).collect()
}

// ------------------------------------------------------------------ maps

/// A `u64 → u64` map as the map workloads drive it.
pub trait BenchMap: Contender + Sync + Sized {
    /// A thread's registration (a replica handle, or nothing).
    type Local<'a>
    where
        Self: 'a;
    /// The map, holding keys `0..1024`.
    fn build() -> Self;
    /// Thread `t`'s registration.
    fn local(&self, t: usize) -> Self::Local<'_>;
    /// Reads `k`.
    fn get(&self, l: &mut Self::Local<'_>, k: u64) -> Option<u64>;
    /// Inserts `k → v`, answering the old value.
    fn insert(&self, l: &mut Self::Local<'_>, k: u64, v: u64) -> Option<u64>;
}

/// The sequential map that `NodeReplicated` replicates.
pub struct SeqMap(HashMap<u64, u64>);

impl Sequential for SeqMap {
    type ReadOp = u64;
    type WriteOp = (u64, u64);
    type Response = Option<u64>;
    fn read(&self, k: &u64) -> Option<u64> {
        self.0.get(k).copied()
    }
    fn apply(&mut self, &(k, v): &(u64, u64)) -> Option<u64> {
        self.0.insert(k, v)
    }
}

/// `NodeReplicated<HashMap>`, one replica per node.
pub struct NrMap(NodeReplicated<SeqMap>);

impl Contender for NrMap {
    const NAME: &'static str = "waitless NodeReplicated<HashMap>";
    const ROLE: Role = Role::Waitless;
}

impl BenchMap for NrMap {
    type Local<'a> = NrHandle<'a, SeqMap>;
    fn build() -> Self {
        NrMap(NodeReplicated::new(node_count(), || SeqMap(prefilled())))
    }
    fn local(&self, t: usize) -> NrHandle<'_, SeqMap> {
        self.0
            .register_on(t % node_count())
            .expect("64 thread slots per replica")
    }
    fn get(&self, h: &mut NrHandle<'_, SeqMap>, k: u64) -> Option<u64> {
        h.read(&k)
    }
    fn insert(&self, h: &mut NrHandle<'_, SeqMap>, k: u64, v: u64) -> Option<u64> {
        h.write((k, v))
    }
}

/// `RwLock<HashMap>`.
pub struct RwMap(RwLock<HashMap<u64, u64>>);

impl Contender for RwMap {
    const NAME: &'static str = "RwLock<HashMap>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchMap for RwMap {
    type Local<'a> = ();
    fn build() -> Self {
        RwMap(RwLock::new(prefilled()))
    }
    fn local(&self, _: usize) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.read().unwrap().get(&k).copied()
    }
    fn insert(&self, _: &mut (), k: u64, v: u64) -> Option<u64> {
        self.0.write().unwrap().insert(k, v)
    }
}

/// `Mutex<HashMap>`.
pub struct MutexMap(Mutex<HashMap<u64, u64>>);

impl Contender for MutexMap {
    const NAME: &'static str = "Mutex<HashMap>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchMap for MutexMap {
    type Local<'a> = ();
    fn build() -> Self {
        MutexMap(Mutex::new(prefilled()))
    }
    fn local(&self, _: usize) {}
    fn get(&self, _: &mut (), k: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&k).copied()
    }
    fn insert(&self, _: &mut (), k: u64, v: u64) -> Option<u64> {
        self.0.lock().unwrap().insert(k, v)
    }
}

/// The same map for the `node-replication` crate's `Dispatch` trait.
#[derive(Default)]
pub struct CrateSeqMap(HashMap<u64, u64>);

impl node_replication::Dispatch for CrateSeqMap {
    type ReadOperation = u64;
    type WriteOperation = (u64, u64);
    type Response = Option<u64>;
    fn dispatch(&self, k: u64) -> Option<u64> {
        self.0.get(&k).copied()
    }
    fn dispatch_mut(&mut self, (k, v): (u64, u64)) -> Option<u64> {
        self.0.insert(k, v)
    }
}

type CrateReplica = Arc<node_replication::Replica<'static, CrateSeqMap>>;

/// The `node-replication` crate: one shared log, one replica per node.
pub struct CrateNrMap {
    replicas: Vec<CrateReplica>,
}

impl Contender for CrateNrMap {
    const NAME: &'static str = "node-replication crate";
    const ROLE: Role = Role::Peer;
}

impl BenchMap for CrateNrMap {
    type Local<'a> = (CrateReplica, node_replication::ReplicaToken);
    fn build() -> Self {
        // 2 MiB of log: the crate's own examples' order of magnitude.
        let log = Arc::new(node_replication::Log::<(u64, u64)>::new(2 * 1024 * 1024));
        let replicas = (0..node_count())
            .map(|_| node_replication::Replica::with_data(&log, CrateSeqMap(prefilled())))
            .collect();
        CrateNrMap { replicas }
    }
    fn local(&self, t: usize) -> Self::Local<'_> {
        let r = Arc::clone(&self.replicas[t % self.replicas.len()]);
        let token = r.register().expect("a free replica slot per thread");
        (r, token)
    }
    fn get(&self, (r, token): &mut Self::Local<'_>, k: u64) -> Option<u64> {
        r.execute(k, *token)
    }
    fn insert(&self, (r, token): &mut Self::Local<'_>, k: u64, v: u64) -> Option<u64> {
        r.execute_mut((k, v), *token)
    }
}

fn map_mix<M: BenchMap>(cfg: &RunConfig, threads: usize, write_pct: u64) -> RunResult {
    let m = M::build();
    run_workload(
        cfg,
        threads,
        |t| {
            place(t);
            (m.local(t), Rng::new(t))
        },
        |(l, rng)| {
            let (write, k) = rng.op(write_pct);
            if write {
                black_box(m.insert(l, k, rng.0));
            } else {
                black_box(m.get(l, k));
            }
            1
        },
    )
}

fn map_reads<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    map_mix::<M>(cfg, threads, 0)
}

fn map_90<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    map_mix::<M>(cfg, threads, 10)
}

fn map_50<M: BenchMap>(cfg: &RunConfig, threads: usize) -> RunResult {
    map_mix::<M>(cfg, threads, 50)
}

// ----------------------------------------------------------------- locks

/// What the lock workload protects: two counters on one line.
#[derive(Default)]
pub struct Section {
    a: u64,
    b: u64,
}

impl Section {
    #[inline]
    fn touch(&mut self) {
        self.a = self.a.wrapping_add(1);
        self.b ^= self.a;
    }
}

/// A mutual-exclusion lock over a [`Section`].
pub trait BenchLock: Contender + Sync + Sized {
    /// An unlocked lock.
    fn build() -> Self;
    /// Runs one critical section.
    fn section(&self);
}

impl Contender for CohortLock<Section> {
    const NAME: &'static str = "waitless CohortLock";
    const ROLE: Role = Role::Waitless;
}

impl BenchLock for CohortLock<Section> {
    fn build() -> Self {
        CohortLock::new(node_count(), Section::default())
    }
    fn section(&self) {
        self.lock().touch();
    }
}

/// `std::sync::Mutex`.
pub struct StdMutex(Mutex<Section>);

impl Contender for StdMutex {
    const NAME: &'static str = "std Mutex";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchLock for StdMutex {
    fn build() -> Self {
        StdMutex(Mutex::new(Section::default()))
    }
    fn section(&self) {
        self.0.lock().unwrap().touch();
    }
}

impl Contender for parking_lot::Mutex<Section> {
    const NAME: &'static str = "parking_lot Mutex";
    const ROLE: Role = Role::Peer;
}

impl BenchLock for parking_lot::Mutex<Section> {
    fn build() -> Self {
        parking_lot::Mutex::new(Section::default())
    }
    fn section(&self) {
        self.lock().touch();
    }
}

fn lock<L: BenchLock>(cfg: &RunConfig, threads: usize) -> RunResult {
    let l = L::build();
    run_workload(cfg, threads, place, |_| {
        l.section();
        1
    })
}

// ---------------------------------------------------------------- stacks

/// A stack of `u64` as the pairs workload drives it.
pub trait BenchStack: Contender + Sync + Sized {
    /// An empty stack.
    fn build() -> Self;
    /// A push then a pop.
    fn push_pop(&self, v: u64) -> Option<u64>;
}

impl Contender for NodeAwareStack<u64> {
    const NAME: &'static str = "waitless NodeAwareStack";
    const ROLE: Role = Role::Waitless;
}

impl BenchStack for NodeAwareStack<u64> {
    fn build() -> Self {
        NodeAwareStack::with_nodes(node_count())
    }
    fn push_pop(&self, v: u64) -> Option<u64> {
        self.push(v).expect("allocation");
        self.pop(&self.enter())
    }
}

/// The plain `LockFreeStack` (default configuration).
pub struct PlainStack(LockFreeStack<u64>);

impl Contender for PlainStack {
    const NAME: &'static str = "waitless LockFreeStack (plain)";
    const ROLE: Role = Role::Waitless;
}

impl BenchStack for PlainStack {
    fn build() -> Self {
        PlainStack(LockFreeStack::new())
    }
    fn push_pop(&self, v: u64) -> Option<u64> {
        self.0.push(v).expect("allocation");
        self.0.pop(&self.0.enter())
    }
}

fn stack_pairs<S: BenchStack>(cfg: &RunConfig, threads: usize) -> RunResult {
    let s = S::build();
    run_workload(
        cfg,
        threads,
        |t| {
            place(t);
            t as u64
        },
        |v| {
            *v = v.wrapping_add(1);
            black_box(s.push_pop(*v));
            1
        },
    )
}

// --------------------------------------------------------- line transfer

/// Where the two threads of `numa/line-transfer` run.
pub trait BenchPlacement: Contender + Sized {
    /// `true`: on two different nodes (when the machine has them).
    const CROSS: bool;
}

/// Both threads on node 0 (two different CPUs of it when it has two).
pub struct SameNode;

impl Contender for SameNode {
    const NAME: &'static str = "same node";
    const ROLE: Role = Role::Waitless;
}

impl BenchPlacement for SameNode {
    const CROSS: bool = false;
}

/// The threads on nodes 0 and 1 (on a one-node machine: as `SameNode`).
pub struct CrossNode;

impl Contender for CrossNode {
    const NAME: &'static str = "different nodes";
    const ROLE: Role = Role::Waitless;
}

impl BenchPlacement for CrossNode {
    const CROSS: bool = true;
}

/// Two threads bounce one line: thread `t` waits until the counter's
/// parity is `t`, then increments it; each counted operation is one
/// transfer of the line from the other thread's cache.
fn line_transfer<P: BenchPlacement>(cfg: &RunConfig, threads: usize) -> RunResult {
    let line = CachePadded::new(AtomicU64::new(0));
    let nodes = cpu_nodes();
    let cpu_of = |t: usize| -> Option<usize> {
        if P::CROSS && nodes.len() > 1 {
            Some(nodes[t % nodes.len()][0])
        } else {
            nodes
                .first()
                .filter(|c| c.len() > 1)
                .map(|c| c[t % c.len()])
        }
    };
    run_workload(
        cfg,
        threads,
        |t| {
            if let Some(cpu) = cpu_of(t) {
                pin_to_cpu(cpu);
            }
            t as u64 % 2
        },
        |me| {
            // Relaxed: the counter carries no data; moving the line is the
            // whole point.
            let v = line.load(Ordering::Relaxed);
            if v % 2 == *me
                && line
                    .compare_exchange(v, v + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                1
            } else {
                std::hint::spin_loop();
                0
            }
        },
    )
}

/// The NUMA workloads, one entry per contender.
pub fn entries() -> Vec<Entry> {
    [
        table!(MAP_90, map_90, [NrMap, RwMap, MutexMap, CrateNrMap]),
        // After the 90/10 mix, which stays the group's headline workload.
        table!(MAP_R, map_reads, [NrMap, RwMap, MutexMap, CrateNrMap]),
        table!(MAP_50, map_50, [NrMap, RwMap, MutexMap, CrateNrMap]),
        table!(
            LOCK,
            lock,
            [CohortLock<Section>, StdMutex, parking_lot::Mutex<Section>]
        ),
        table!(STACK, stack_pairs, [NodeAwareStack<u64>, PlainStack]),
        table!(LINE, line_transfer, [SameNode, CrossNode]),
    ]
    .concat()
}
