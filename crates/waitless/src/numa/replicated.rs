//! Node replication: Calciu, Sen, Balakrishnan & Aguilera, *Black-box
//! Concurrent Data Structures for NUMA Architectures* (ASPLOS 2017). The
//! `node-replication` crate is its Rust implementation; this one follows the
//! paper's design and was written from it.
//!
//! # Design
//!
//! - One **replica** of the sequential structure per node, and one shared,
//!   bounded, circular **operation log** of mutating operations.
//! - **Flat combining** inside a node: a writer posts its operation in its
//!   slot of the node's combining array; whoever takes the node's combiner
//!   lock collects every posted operation, reserves that many consecutive
//!   log entries with one CAS on the log tail, writes them, replays the log
//!   on its replica up to the end of its batch, and hands each poster its
//!   response. One thread per node touches the shared log per batch.
//! - **Reads** never touch the log's entries and write no shared line: a
//!   reader sets the reader flag in its own slot (the replica's
//!   reader-writer lock is distributed, one flag per thread slot), loads
//!   the *completed tail* `ctail` (the end of the longest log prefix some
//!   replica has applied) and the replica's `state` word (its applied
//!   position `ltail` and the writer bit, one line), and reads the replica
//!   if no writer is at work and `ltail >= ctail`; otherwise it clears its
//!   flag and waits, or replays the log itself if the combiner lock is
//!   free. With one replica `ctail` is not read: every completed write was
//!   applied to that replica before it returned.
//!
//! # Linearizability
//!
//! Writes take effect in log order: a write's linearization point is the
//! moment the replica that applied it first publishes it (the `ctail`
//! update, under that replica's writer lock, before any reader of that
//! replica can see the effect). A read linearizes when it reads its
//! replica: the replica then reflects a log prefix at least as long as
//! `ctail` was when the read began, so it includes every write that
//! completed before the read began, and any write it reflects beyond that
//! had already raised `ctail` before the replica became readable, so later
//! readers see it too. Checked with `waitless-check` (`tests/numa_replicated.rs`).
//!
//! # A slow replica: writers help, then wait
//!
//! An entry's slot may be reused only after every replica has applied the
//! entry (the log *head* is the minimum of the replicas' local tails).
//! When the log is full, the combiner that needs room first brings its own
//! replica up to the tail, then **helps** every lagging replica whose
//! combiner lock is free by replaying the log on it; it **waits** only
//! while a lagging replica's lock is held by another thread, which is then
//! itself replaying. So no entry is ever lost or overwritten early, and an
//! idle node (no thread left to combine for it) never stops the others:
//! writers on busy nodes do its replaying. Helping was chosen over pure
//! stalling because NR's threads are not guaranteed to come back to a node;
//! waiting is kept for the case where a helper could only duplicate work
//! already in progress. The price: a write on a busy node may pay for
//! replaying a whole log on a remote replica (counted in
//! [`NrStats::helped_replays`]).
//!
//! # Progress
//!
//! Blocking (flat combining; waits spin, then yield), like the paper's. An operation of `D` must not panic: a panic inside a combiner
//! would leave every other thread waiting, so it aborts the process
//! instead.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use super::topology::{current_node, Topology};
use crate::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use crate::{Backoff, CachePadded};

/// A sequential data structure that [`NodeReplicated`] can replicate: its
/// operations split into read-only ones and mutating ones.
///
/// Mutating operations are recorded in the shared log and applied to every
/// replica, so [`apply`](Sequential::apply) must be deterministic: the same
/// operations in the same order must produce the same state and answers on
/// every replica.
///
/// ```
/// use std::collections::HashMap;
/// use waitless::numa::Sequential;
///
/// #[derive(Default)]
/// struct Kv(HashMap<u64, u64>);
/// enum Write { Put(u64, u64), Del(u64) }
///
/// impl Sequential for Kv {
///     type ReadOp = u64;
///     type WriteOp = Write;
///     type Response = Option<u64>;
///     fn read(&self, k: &u64) -> Option<u64> { self.0.get(k).copied() }
///     fn apply(&mut self, op: &Write) -> Option<u64> {
///         match *op {
///             Write::Put(k, v) => self.0.insert(k, v),
///             Write::Del(k) => self.0.remove(&k),
///         }
///     }
/// }
/// ```
pub trait Sequential {
    /// A read-only operation.
    type ReadOp;
    /// A mutating operation (stored in the log, applied on every replica).
    type WriteOp;
    /// What operations answer.
    type Response;
    /// Runs a read-only operation.
    fn read(&self, op: &Self::ReadOp) -> Self::Response;
    /// Runs a mutating operation.
    fn apply(&mut self, op: &Self::WriteOp) -> Self::Response;
}

/// Sizes of a [`NodeReplicated`].
///
/// ```
/// # use waitless::numa::{NodeReplicated, NrConfig, Sequential};
/// # #[derive(Default)]
/// # struct Reg(u64);
/// # impl Sequential for Reg {
/// #     type ReadOp = ();
/// #     type WriteOp = u64;
/// #     type Response = u64;
/// #     fn read(&self, _: &()) -> u64 { self.0 }
/// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
/// # }
/// let nr = NodeReplicated::with_config(
///     NrConfig { log_entries: 8, ..NrConfig::new(2) },
///     Reg::default,
/// );
/// assert_eq!((nr.replicas(), nr.log_entries()), (2, 8));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NrConfig {
    /// Replicas (one per node; at least one).
    pub replicas: usize,
    /// Log entries, rounded up to a power of two (default 1024; smaller
    /// logs wrap, fill and make writers help more often).
    pub log_entries: usize,
    /// Threads that can be registered on one replica at a time (default 64).
    pub threads_per_replica: usize,
}

impl NrConfig {
    /// Defaults for `replicas` replicas.
    ///
    /// ```
    /// use waitless::numa::NrConfig;
    /// let c = NrConfig::new(3);
    /// assert_eq!((c.replicas, c.log_entries, c.threads_per_replica), (3, 1024, 64));
    /// ```
    #[must_use]
    pub fn new(replicas: usize) -> Self {
        NrConfig {
            replicas,
            log_entries: if cfg!(loom) { 2 } else { 1024 },
            threads_per_replica: if cfg!(loom) { 2 } else { 64 },
        }
    }
}

/// Counters of a [`NodeReplicated`], summed over replicas (exact when no
/// operation is in flight).
///
/// ```
/// # use waitless::numa::{NodeReplicated, Sequential};
/// # #[derive(Default)]
/// # struct Reg(u64);
/// # impl Sequential for Reg {
/// #     type ReadOp = ();
/// #     type WriteOp = u64;
/// #     type Response = u64;
/// #     fn read(&self, _: &()) -> u64 { self.0 }
/// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
/// # }
/// let nr = NodeReplicated::new(2, Reg::default);
/// nr.register_on(0).unwrap().write(1);
/// let st = nr.stats();
/// assert_eq!((st.appended, st.batches), (1, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NrStats {
    /// Combiner rounds that appended a batch to the log.
    pub batches: u64,
    /// Log entries appended (mutating operations).
    pub appended: u64,
    /// Log entries applied to a replica, over all replicas.
    pub replayed: u64,
    /// Of those, entries appended by another replica's combiner: each one
    /// is a log line (and the operation's data) pulled from another node.
    pub remote_replayed: u64,
    /// Combiner rounds that found the log full.
    pub log_full: u64,
    /// Replays a writer ran on another node's replica to free log space.
    pub helped_replays: u64,
    /// Replays a reader ran on its own replica to catch up with `ctail`.
    pub reader_syncs: u64,
}

/// Why a thread could not be registered.
///
/// ```
/// # use waitless::numa::{NodeReplicated, NrConfig, Sequential};
/// # #[derive(Default)]
/// # struct Reg(u64);
/// # impl Sequential for Reg {
/// #     type ReadOp = ();
/// #     type WriteOp = u64;
/// #     type Response = u64;
/// #     fn read(&self, _: &()) -> u64 { self.0 }
/// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
/// # }
/// let nr = NodeReplicated::with_config(
///     NrConfig { threads_per_replica: 1, ..NrConfig::new(1) },
///     Reg::default,
/// );
/// let _h = nr.register_on(0).unwrap();
/// assert_eq!(nr.register_on(0).unwrap_err().replica, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterError {
    /// The replica that had no free slot.
    pub replica: usize,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replica {} has no free thread slot (raise NrConfig::threads_per_replica)",
            self.replica
        )
    }
}

impl std::error::Error for RegisterError {}

// ------------------------------------------------------------------ log

/// One log entry. `alive` flips on every lap: entry `i` is written when
/// `alive == lap_flag(i)`.
struct Entry<W> {
    /// The operation and the replica that appended it. Written once per lap
    /// by the reserving combiner before it flips `alive`; read by replayers
    /// after they saw the flip; dropped by the next lap's writer or by
    /// `Drop`, once every replica has applied it.
    op: UnsafeCell<MaybeUninit<(W, usize)>>,
    alive: AtomicBool,
}

/// Index layout: log positions are `u64` counters that never wrap in
/// practice; position `i` lives in entry `i & mask`, lap `i / len`.
struct Log<W> {
    entries: Box<[CachePadded<Entry<W>>]>,
    mask: u64,
    /// `log2(len)`: a position's lap is `pos >> shift` (no division).
    shift: u32,
    /// Next position to reserve.
    tail: CachePadded<AtomicU64>,
    /// Every replica has applied every position below `head`; entries of
    /// positions `>= head - len`… are live. Only grows.
    head: CachePadded<AtomicU64>,
    /// Completed tail: some replica has applied, and made readable, every
    /// position below it. Only grows.
    ctail: CachePadded<AtomicU64>,
}

impl<W> Log<W> {
    fn new(len: usize) -> Self {
        let len = len.max(1).next_power_of_two();
        Log {
            entries: (0..len)
                .map(|_| {
                    CachePadded::new(Entry {
                        op: UnsafeCell::new(MaybeUninit::uninit()),
                        alive: AtomicBool::new(false),
                    })
                })
                .collect(),
            mask: len as u64 - 1,
            shift: len.trailing_zeros(),
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            ctail: CachePadded::new(AtomicU64::new(0)),
        }
    }

    fn len(&self) -> u64 {
        self.mask + 1
    }

    fn lap_flag(&self, pos: u64) -> bool {
        (pos >> self.shift) & 1 == 0
    }

    fn entry(&self, pos: u64) -> &Entry<W> {
        &self.entries[(pos & self.mask) as usize]
    }

    /// Writes position `pos`, which the caller reserved.
    ///
    /// # Safety
    /// 1. The caller reserved `pos` (so no one else writes it), and every
    ///    replica has applied `pos - len` if `pos >= len` (`head > pos - len`,
    ///    observed with Acquire), so nobody reads the entry's old content.
    unsafe fn write(&self, pos: u64, op: W, origin: usize) {
        let e = self.entry(pos);
        e.op.with_mut(|p| {
            if pos >= self.len() {
                // SAFETY: precondition 1: position `pos - len` was written
                // (every position below `head` was) and every replica is
                // done with it, so its content is ours to drop.
                unsafe { (*p).assume_init_drop() };
            }
            // SAFETY: exclusive by precondition 1.
            unsafe { (*p).write((op, origin)) };
        });
        // Release pairs with the Acquire load in `wait_alive`: a replayer
        // that sees this lap's flag sees the operation.
        e.alive.store(self.lap_flag(pos), Ordering::Release);
    }

    /// Waits until position `pos` (reserved by some combiner, which writes
    /// it without waiting for anything) is written.
    fn wait_alive(&self, pos: u64) {
        let e = self.entry(pos);
        let want = self.lap_flag(pos);
        let backoff = Backoff::new();
        // Acquire pairs with the Release store in `write`.
        while e.alive.load(Ordering::Acquire) != want {
            backoff.snooze();
        }
    }
}

impl<W> Drop for Log<W> {
    fn drop(&mut self) {
        // `&mut self`: no reservation is in flight, so every position in
        // the last `len` below the tail was written and not yet dropped
        // (Relaxed: `&mut` already orders every earlier access).
        let tail = self.tail.load(Ordering::Relaxed);
        let first = tail.saturating_sub(self.len());
        for pos in first..tail {
            let e = self.entry(pos);
            // SAFETY: see above: position `pos` holds a live operation, and
            // it is dropped here once (earlier laps were dropped by `write`).
            e.op.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

// -------------------------------------------------------------- replica

const EMPTY: u8 = 0;
const PENDING: u8 = 1;
const DONE: u8 = 2;

/// A thread's slot in its replica's combining array. It is also the
/// thread's reader flag in the replica's distributed reader-writer lock.
struct Slot<D: Sequential> {
    /// The slot belongs to a registered handle.
    taken: AtomicBool,
    /// `EMPTY` → (owner posts `op`) `PENDING` → (combiner stores `resp`)
    /// `DONE` → (owner takes `resp`) `EMPTY`.
    state: AtomicU8,
    /// The owner is reading the replica: its reader flag, written twice per
    /// read. On its own line, so the combiner's scan of `state` (which
    /// changes only when the owner writes) does not pull the line the
    /// reader keeps writing, and only `write_lock` touches it.
    reading: CachePadded<AtomicBool>,
    /// Written by the owner while `EMPTY`, taken by the combiner that saw
    /// `PENDING` (Acquire/Release on `state`).
    op: UnsafeCell<Option<D::WriteOp>>,
    /// Written by the combiner before `DONE`, taken by the owner after.
    resp: UnsafeCell<Option<D::Response>>,
}

/// The writer bit of [`Replica::state`].
const WRITING: u64 = 1;

struct Replica<D: Sequential> {
    /// `ltail << 1 | WRITING`: `ltail` is the next log position this
    /// replica will apply; `WRITING` is the writer flag of the replica's
    /// reader-writer lock, set while the combiner-lock holder applies
    /// entries. One word, so a reader checks both with one load of one
    /// line. Written only by the combiner-lock holder, read by everyone.
    state: CachePadded<AtomicU64>,
    /// The combiner lock: its holder alone appends for this node, replays
    /// onto this replica and writes `state`, `scratch` and the counters.
    combiner: CachePadded<AtomicBool>,
    /// One past the highest slot ever taken.
    high: AtomicUsize,
    slots: Box<[CachePadded<Slot<D>>]>,
    /// The replica. Padded: readers load its header (for a `HashMap`, the
    /// table pointer, mask and hasher keys) on every read, so no field the
    /// combiner writes (`scratch`, the counters) may share its line.
    data: CachePadded<UnsafeCell<D>>,
    /// Slot indices of the batch being combined (combiner-lock only).
    scratch: UnsafeCell<Vec<usize>>,
    stats: CachePadded<ReplicaCounters>,
}

/// Written only by the combiner-lock holder: Relaxed load + store.
#[derive(Default)]
struct ReplicaCounters {
    batches: AtomicU64,
    appended: AtomicU64,
    replayed: AtomicU64,
    remote_replayed: AtomicU64,
    log_full: AtomicU64,
    helped_replays: AtomicU64,
    reader_syncs: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    // Relaxed load + store: only the combiner-lock holder writes.
    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl<D: Sequential> Replica<D> {
    fn new(data: D, threads: usize) -> Self {
        Replica {
            state: CachePadded::new(AtomicU64::new(0)),
            combiner: CachePadded::new(AtomicBool::new(false)),
            high: AtomicUsize::new(0),
            slots: (0..threads.max(1))
                .map(|_| {
                    CachePadded::new(Slot {
                        taken: AtomicBool::new(false),
                        state: AtomicU8::new(EMPTY),
                        reading: CachePadded::new(AtomicBool::new(false)),
                        op: UnsafeCell::new(None),
                        resp: UnsafeCell::new(None),
                    })
                })
                .collect(),
            data: CachePadded::new(UnsafeCell::new(data)),
            scratch: UnsafeCell::new(Vec::new()),
            stats: CachePadded::new(ReplicaCounters::default()),
        }
    }

    fn try_lock(&self) -> bool {
        // Acquire pairs with the Release store in `unlock`: the previous
        // holder's replica, scratch and counter writes are visible.
        !self.combiner.load(Ordering::Relaxed)
            && self
                .combiner
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    fn unlock(&self) {
        // Release pairs with the Acquire CAS in `try_lock`.
        self.combiner.store(false, Ordering::Release);
    }

    /// The replica's `ltail` (see `state`), loaded with `order`.
    fn ltail(&self, order: Ordering) -> u64 {
        self.state.load(order) >> 1
    }
}

/// Aborts the process if dropped during a panic (see "Progress").
struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("NodeReplicated: an operation panicked inside a combiner; aborting");
            std::process::abort();
        }
    }
}

// ------------------------------------------------------- NodeReplicated

/// Node replication of a sequential structure `D`. See the
/// [module docs](crate::numa).
///
/// ```
/// use waitless::numa::{NodeReplicated, Sequential};
///
/// #[derive(Clone, Default)]
/// struct Counter(u64);
/// impl Sequential for Counter {
///     type ReadOp = ();
///     type WriteOp = u64;
///     type Response = u64;
///     fn read(&self, _: &()) -> u64 { self.0 }
///     fn apply(&mut self, add: &u64) -> u64 { self.0 += add; self.0 }
/// }
///
/// let nr = NodeReplicated::new(2, Counter::default);
/// std::thread::scope(|s| {
///     for node in 0..2 {
///         let nr = &nr;
///         s.spawn(move || {
///             let h = nr.register_on(node).unwrap();
///             for _ in 0..100 {
///                 h.write(1);
///             }
///         });
///     }
/// });
/// let h = nr.register().unwrap();
/// assert_eq!(h.read(&()), 200);
/// ```
pub struct NodeReplicated<D: Sequential> {
    log: Log<D::WriteOp>,
    replicas: Box<[CachePadded<Replica<D>>]>,
}

// SAFETY: every replica's `D` is read through `&D` by readers on several
// threads at once (`D: Sync`) and mutated by whichever thread holds its
// combiner lock (`D: Send`). Logged operations move from the posting thread
// into the log (`WriteOp: Send`) and are read through `&WriteOp` by the
// replayers of several replicas at once (`WriteOp: Sync`); responses move
// from the combiner to the poster (`Response: Send`). Read operations stay
// on the calling thread. All other state is atomics or is protected by the
// combiner lock and the replica's reader-writer lock.
unsafe impl<D> Sync for NodeReplicated<D>
where
    D: Sequential + Send + Sync,
    D::WriteOp: Send + Sync,
    D::Response: Send,
{
}
// SAFETY: owning the structure owns its replicas, logged operations and
// undelivered responses; moving it moves them (hence the `Send` bounds).
unsafe impl<D> Send for NodeReplicated<D>
where
    D: Sequential + Send,
    D::WriteOp: Send,
    D::Response: Send,
{
}

/// A thread's registration on one replica of a [`NodeReplicated`]; all
/// operations go through it. `Send` (the slot may move with its thread) but
/// not `Sync`: one slot serves one operation at a time.
///
/// ```
/// # use waitless::numa::{NodeReplicated, Sequential};
/// # #[derive(Default)]
/// # struct Reg(u64);
/// # impl Sequential for Reg {
/// #     type ReadOp = ();
/// #     type WriteOp = u64;
/// #     type Response = u64;
/// #     fn read(&self, _: &()) -> u64 { self.0 }
/// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
/// # }
/// let nr = NodeReplicated::new(2, Reg::default);
/// let h = nr.register_on(1).unwrap();
/// assert_eq!(h.write(5), 0);
/// assert_eq!(h.read(&()), 5);
/// ```
#[must_use]
pub struct NrHandle<'a, D: Sequential> {
    nr: &'a NodeReplicated<D>,
    replica: usize,
    slot: usize,
    /// `nr.replicas[replica]` and its slot `slot`, looked up once.
    rep: &'a Replica<D>,
    slot_ref: &'a Slot<D>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<D: Sequential> fmt::Debug for NrHandle<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NrHandle")
            .field("replica", &self.replica)
            .field("slot", &self.slot)
            .finish()
    }
}

impl<D: Sequential> NodeReplicated<D> {
    /// `replicas` replicas (at least one), each built by `make`, with the
    /// default log and slot sizes.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::new(3, Reg::default);
    /// assert_eq!(nr.replicas(), 3);
    /// ```
    #[must_use]
    pub fn new(replicas: usize, make: impl FnMut() -> D) -> Self {
        Self::with_config(NrConfig::new(replicas), make)
    }

    /// One replica per node of `topology`.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// use waitless::numa::Topology;
    /// let nr = NodeReplicated::for_topology(&Topology::uniform(2, 4), Reg::default);
    /// assert_eq!(nr.replicas(), 2);
    /// ```
    #[must_use]
    pub fn for_topology(topology: &Topology, make: impl FnMut() -> D) -> Self {
        Self::new(topology.num_nodes(), make)
    }

    /// With explicit sizes.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, NrConfig, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::with_config(
    ///     NrConfig { replicas: 2, log_entries: 5, threads_per_replica: 4 },
    ///     Reg::default,
    /// );
    /// assert_eq!(nr.log_entries(), 8); // rounded up to a power of two
    /// ```
    #[must_use]
    pub fn with_config(config: NrConfig, mut make: impl FnMut() -> D) -> Self {
        NodeReplicated {
            log: Log::new(config.log_entries),
            replicas: (0..config.replicas.max(1))
                .map(|_| CachePadded::new(Replica::new(make(), config.threads_per_replica)))
                .collect(),
        }
    }

    /// The number of replicas.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// assert_eq!(NodeReplicated::new(0, Reg::default).replicas(), 1); // at least one
    /// ```
    #[must_use]
    pub fn replicas(&self) -> usize {
        self.replicas.len()
    }

    /// The number of log entries.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// assert_eq!(NodeReplicated::new(1, Reg::default).log_entries(), 1024);
    /// ```
    #[must_use]
    pub fn log_entries(&self) -> usize {
        self.log.len() as usize
    }

    /// Registers the calling thread on the replica of its node
    /// ([`current_node`] modulo [`replicas`](Self::replicas)).
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// use waitless::numa::set_node_override;
    /// let nr = NodeReplicated::new(2, Reg::default);
    /// let prev = set_node_override(Some(1));
    /// assert_eq!(nr.register().unwrap().replica(), 1);
    /// set_node_override(prev);
    /// ```
    pub fn register(&self) -> Result<NrHandle<'_, D>, RegisterError> {
        self.register_on(current_node() % self.replicas.len())
    }

    /// Registers the calling thread on replica `replica` (modulo the
    /// number of replicas).
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::new(2, Reg::default);
    /// assert_eq!(nr.register_on(3).unwrap().replica(), 1); // modulo the replicas
    /// ```
    pub fn register_on(&self, replica: usize) -> Result<NrHandle<'_, D>, RegisterError> {
        let replica = replica % self.replicas.len();
        let r = &self.replicas[replica];
        for (i, s) in r.slots.iter().enumerate() {
            // Acquire pairs with the Release store in `NrHandle::drop`: the
            // previous owner's last uses of the slot happen before ours.
            if !s.taken.load(Ordering::Relaxed)
                && s.taken
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Relaxed: ordered by the SeqCst fences of `write_lock` and
                // of our first `read` (this store is sequenced before our
                // fence): if the combiner's fence comes first in S, our
                // read sees its `WRITING`; otherwise its `high` load sees
                // this slot.
                r.high.fetch_max(i + 1, Ordering::Relaxed);
                return Ok(NrHandle {
                    nr: self,
                    replica,
                    slot: i,
                    rep: r,
                    slot_ref: s,
                    _not_sync: PhantomData,
                });
            }
        }
        Err(RegisterError { replica })
    }

    /// The counters, summed over replicas.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::new(2, Reg::default);
    /// let h = nr.register_on(0).unwrap();
    /// h.write(1);
    /// nr.register_on(1).unwrap().read(&()); // replica 1 catches up
    /// let st = nr.stats();
    /// assert_eq!((st.appended, st.remote_replayed), (1, 1));
    /// ```
    #[must_use]
    pub fn stats(&self) -> NrStats {
        let mut s = NrStats::default();
        for r in self.replicas.iter() {
            let c = &r.stats;
            // Relaxed: statistics.
            s.batches += c.batches.load(Ordering::Relaxed);
            s.appended += c.appended.load(Ordering::Relaxed);
            s.replayed += c.replayed.load(Ordering::Relaxed);
            s.remote_replayed += c.remote_replayed.load(Ordering::Relaxed);
            s.log_full += c.log_full.load(Ordering::Relaxed);
            s.helped_replays += c.helped_replays.load(Ordering::Relaxed);
            s.reader_syncs += c.reader_syncs.load(Ordering::Relaxed);
        }
        s
    }

    /// Brings every replica up to the log tail and returns mutable access
    /// to replica `i`'s structure (`&mut self`: no operation is in flight).
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let mut nr = NodeReplicated::new(2, Reg::default);
    /// nr.register_on(0).unwrap().write(9);
    /// assert_eq!(nr.replica_mut(1).0, 9); // brought up to the log tail
    /// ```
    pub fn replica_mut(&mut self, i: usize) -> &mut D {
        // Relaxed: `&mut self` orders every earlier access.
        let tail = self.log.tail.load(Ordering::Relaxed);
        for r in 0..self.replicas.len() {
            // `&mut self`: every combiner lock is free.
            let locked = self.replicas[r].try_lock();
            debug_assert!(locked);
            self.replay(r, tail, None);
            self.replicas[r].unlock();
        }
        self.replicas[i].data.get_mut()
    }

    // ---- internals; `r` is a replica index

    /// Applies log positions `ltail..upto` to replica `r`.
    ///
    /// The caller holds `r`'s combiner lock, and `upto <= tail`. `own`
    /// is the caller's batch (`start`, slots): the responses of positions
    /// `start..start + slots.len()` go to those slots.
    fn replay(&self, r: usize, upto: u64, own: Option<(u64, &[usize])>) {
        let rep = &self.replicas[r];
        // Relaxed: only the combiner-lock holder (us) writes `state`.
        let from = rep.ltail(Ordering::Relaxed);
        if from >= upto {
            return;
        }
        // Wait for the entries first, so readers are not blocked meanwhile.
        for pos in from..upto {
            self.log.wait_alive(pos);
        }
        let abort = AbortOnPanic;
        self.write_lock(rep, from);
        let mut remote = 0;
        for pos in from..upto {
            let e = self.log.entry(pos);
            let resp = e.op.with(|p| {
                // SAFETY: `wait_alive` saw this lap's flag (Acquire), so the
                // entry holds position `pos`'s operation; it is not dropped
                // before this replica's `ltail` passes `pos` (the head is
                // the minimum of the ltails).
                let (op, origin) = unsafe { (*p).assume_init_ref() };
                if *origin != r {
                    remote += 1;
                }
                // SAFETY: we hold the combiner lock and the writer lock of
                // the replica: no other thread reads or writes its data.
                rep.data.with_mut(|d| unsafe { (*d).apply(op) })
            });
            if let Some((start, slots)) = own {
                if pos >= start {
                    let s = &rep.slots[slots[(pos - start) as usize]];
                    // SAFETY: the slot is `PENDING` and in our batch: its
                    // owner waits for `DONE` and does not touch `resp`.
                    s.resp.with_mut(|p| unsafe { *p = Some(resp) });
                }
            }
        }
        add(&rep.stats.replayed, upto - from);
        add(&rep.stats.remote_replayed, remote);
        // Release: pairs with the Acquire `ctail` load in `read`. SeqCst is
        // not needed: a reader that must see this value is ordered after
        // it through our `state` release below (it read the replica). Raised
        // before `state`: a reader that sees the new `ltail` sees a `ctail`
        // at least as high, so nothing it reads is newer than `ctail`.
        self.log.ctail.fetch_max(upto, Ordering::Release);
        // Publishes the new `ltail` and clears `WRITING` in one store (the
        // writer unlock). Release pairs with the Acquire `state` load in
        // `read` (the applied entries are visible) and with the
        // Acquire loads in `min_ltail` and `reserve` (the replayed entries
        // are no longer needed by `r`).
        rep.state.store(upto << 1, Ordering::Release);
        core::mem::forget(abort);
        if let Some((_, slots)) = own {
            for &i in slots {
                // Release pairs with the Acquire `state` load in `write`:
                // the owner sees `resp`.
                rep.slots[i].state.store(DONE, Ordering::Release);
            }
        }
    }

    /// Takes the writer side of `rep`'s reader-writer lock; `ltail` is its
    /// current applied position (the caller holds the combiner lock). The
    /// unlock is the `state` store at the end of `replay`.
    fn write_lock(&self, rep: &Replica<D>, ltail: u64) {
        // Dekker with `NrHandle::read`: we store `WRITING`, fence, then
        // load each reader flag; a reader stores its flag, fences, then
        // loads `state`. Relaxed store: the fence below orders it.
        rep.state.store(ltail << 1 | WRITING, Ordering::Relaxed);
        // SeqCst fence: in the total order S of SeqCst fences, ours and a
        // reader's are ordered; if ours is first the reader's `state` load
        // sees `WRITING`, if theirs is first our flag load below sees its
        // flag (and our `high` load sees its registration, see
        // `register_on`). So no reader reads while we apply. (Fences, not
        // SeqCst accesses: loom models SeqCst fences but not SeqCst loads
        // and stores.)
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above (see `register_on`).
        let high = rep.high.load(Ordering::Relaxed);
        for s in &rep.slots[..high] {
            let backoff = Backoff::new();
            // Acquire pairs with the reader's Release store that ends its
            // read: its reads happen before our writes. (The Dekker part
            // is the fence above.)
            while s.reading.load(Ordering::Acquire) {
                backoff.snooze();
            }
        }
    }

    /// The minimum over replicas of their `ltail`.
    fn min_ltail(&self) -> u64 {
        self.replicas
            .iter()
            // Acquire pairs with the Release `state` store in `replay`.
            .map(|r| r.ltail(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Reserves `k` (`1..=len`) consecutive positions for replica `r`,
    /// whose combiner lock the caller holds; returns the first.
    fn reserve(&self, r: usize, k: u64) -> u64 {
        let len = self.log.len();
        debug_assert!(k >= 1 && k <= len);
        let mut counted_full = false;
        let backoff = Backoff::new();
        loop {
            // Relaxed: the CAS below decides; positions carry no data yet.
            let t = self.log.tail.load(Ordering::Relaxed);
            // Acquire pairs with the Release `fetch_max` of `head` below:
            // every replica's use of the entries below it happened before.
            let h = self.log.head.load(Ordering::Acquire);
            if t + k <= h + len {
                // Relaxed: the reservation publishes nothing (the entries
                // are published by their `alive` flags).
                if self
                    .log
                    .tail
                    .compare_exchange_weak(t, t + k, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    return t;
                }
                continue;
            }
            let min = self.min_ltail();
            if min > h {
                // Release: the ltails we acquired travel with the head to
                // the next reserver (see the Acquire head load above).
                self.log.head.fetch_max(min, Ordering::AcqRel);
                continue;
            }
            if !counted_full {
                counted_full = true;
                add(&self.replicas[r].stats.log_full, 1);
            }
            // Full because some replica lags at `min`. Our own first: we
            // hold its lock.
            self.replay(r, t, None);
            // The head must reach `t + k - len` (> h, since the log is full).
            let need = t + k - len;
            for q in 0..self.replicas.len() {
                let rq = &self.replicas[q];
                // Acquire: as in `min_ltail`.
                if q != r && rq.ltail(Ordering::Acquire) < need && rq.try_lock() {
                    // Relaxed: `replay` waits for each entry itself.
                    let now = self.log.tail.load(Ordering::Relaxed);
                    self.replay(q, now, None);
                    rq.unlock();
                    add(&self.replicas[r].stats.helped_replays, 1);
                }
            }
            backoff.snooze();
        }
    }

    /// One combining round on replica `r`, whose combiner lock the caller
    /// holds: appends every posted operation and applies the log up to
    /// the end of the batch.
    fn combine(&self, r: usize) {
        let rep = &self.replicas[r];
        let abort = AbortOnPanic;
        rep.scratch.with_mut(|batch| {
            // SAFETY: `scratch` is only touched under the combiner lock,
            // which we hold.
            let batch = unsafe { &mut *batch };
            batch.clear();
            let cap = self.log.len() as usize;
            // Acquire: pairs with the `fetch_max` in `register_on`. A slot
            // registered later is not scanned; its owner then combines
            // for itself.
            let high = rep.high.load(Ordering::Acquire);
            for (i, s) in rep.slots[..high].iter().enumerate() {
                // Acquire pairs with the Release `PENDING` store in
                // `write`: the posted `op` is visible.
                if batch.len() < cap && s.state.load(Ordering::Acquire) == PENDING {
                    batch.push(i);
                }
            }
            if batch.is_empty() {
                return;
            }
            let k = batch.len() as u64;
            let start = self.reserve(r, k);
            for (j, &i) in batch.iter().enumerate() {
                // SAFETY: the slot is `PENDING`: its owner posted `op` and
                // waits for `DONE`; only we (the combiner) take it.
                let op = rep.slots[i].op.with_mut(|p| unsafe { (*p).take() });
                let op = op.expect("a PENDING slot holds an operation");
                // SAFETY: we reserved `start + j`; `reserve` saw `head`
                // (Acquire) above `start + j - len`.
                unsafe { self.log.write(start + j as u64, op, r) };
            }
            add(&rep.stats.batches, 1);
            add(&rep.stats.appended, k);
            self.replay(r, start + k, Some((start, batch)));
        });
        core::mem::forget(abort);
    }
}

impl<D: Sequential> NrHandle<'_, D> {
    /// The replica this handle runs on.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::new(4, Reg::default);
    /// assert_eq!(nr.register_on(2).unwrap().replica(), 2);
    /// ```
    #[must_use]
    pub fn replica(&self) -> usize {
        self.replica
    }

    /// Runs a mutating operation: it is logged, applied to every replica
    /// (lazily, for remote ones) and answered by this node's replica.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::new(2, Reg::default);
    /// let h = nr.register_on(0).unwrap();
    /// assert_eq!(h.write(3), 0); // the old value
    /// assert_eq!(h.write(4), 3);
    /// ```
    pub fn write(&self, op: D::WriteOp) -> D::Response {
        let nr = self.nr;
        let rep = self.rep;
        let s = self.slot_ref;
        // SAFETY: the slot is ours and `EMPTY`: no combiner reads `op` until
        // it sees `PENDING`.
        s.op.with_mut(|p| unsafe { *p = Some(op) });
        // Release pairs with the Acquire load in `combine`.
        s.state.store(PENDING, Ordering::Release);
        let backoff = Backoff::new();
        loop {
            // Acquire pairs with the Release `DONE` store in `replay`.
            if s.state.load(Ordering::Acquire) == DONE {
                // SAFETY: `DONE`: the combiner stored `resp` and is done with
                // the slot.
                let resp = s.resp.with_mut(|p| unsafe { (*p).take() });
                // Relaxed: only we write the slot's state while it is not
                // `PENDING`.
                s.state.store(EMPTY, Ordering::Relaxed);
                return resp.expect("a DONE slot holds a response");
            }
            if rep.try_lock() {
                nr.combine(self.replica);
                rep.unlock();
                continue;
            }
            backoff.snooze();
        }
    }

    /// Runs a read-only operation on this node's replica, after it has
    /// applied every write that completed before the call.
    ///
    /// The fast path: one store to the caller's own slot (its reader flag),
    /// one load of the shared `ctail` (skipped with one replica, see
    /// below), one load of the replica's `state`, the read, one store to
    /// clear the flag. Readers write no shared line.
    ///
    /// ```
    /// # use waitless::numa::{NodeReplicated, Sequential};
    /// # #[derive(Default)]
    /// # struct Reg(u64);
    /// # impl Sequential for Reg {
    /// #     type ReadOp = ();
    /// #     type WriteOp = u64;
    /// #     type Response = u64;
    /// #     fn read(&self, _: &()) -> u64 { self.0 }
    /// #     fn apply(&mut self, v: &u64) -> u64 { std::mem::replace(&mut self.0, *v) }
    /// # }
    /// let nr = NodeReplicated::new(2, Reg::default);
    /// nr.register_on(0).unwrap().write(8);
    /// // a read on the other replica sees the completed write
    /// assert_eq!(nr.register_on(1).unwrap().read(&()), 8);
    /// ```
    pub fn read(&self, op: &D::ReadOp) -> D::Response {
        let nr = self.nr;
        let rep = self.rep;
        let flag = &self.slot_ref.reading;
        let backoff = Backoff::new();
        loop {
            // Relaxed: the Dekker store, ordered by the fence below.
            flag.store(true, Ordering::Relaxed);
            // SeqCst fence: the Dekker pair with `write_lock`'s fence (see
            // there): either its combiner sees our flag or we see its
            // `WRITING`.
            fence(Ordering::SeqCst);
            // The log prefix this read must include: `ctail`, which covers
            // every write that completed before the call. With one replica
            // every completed write was applied to it before it returned
            // (a write completes on its own replica, this one), so its own
            // `ltail` already covers them and the shared `ctail` line is
            // left alone. Acquire pairs with the Release `fetch_max` in
            // `replay`.
            let need = if nr.replicas.len() == 1 {
                0
            } else {
                nr.log.ctail.load(Ordering::Acquire)
            };
            // Acquire pairs with the Release `state` store that ended the
            // last write: the entries it applied are visible. (The Dekker
            // part is the fence above.)
            let st = rep.state.load(Ordering::Acquire);
            if st & WRITING == 0 && st >> 1 >= need {
                // SAFETY: our flag is set and `WRITING` was clear after it
                // (Dekker, see `write_lock`): no writer applies to the
                // replica until we clear the flag; other readers only read.
                let resp = rep.data.with(|d| unsafe { (*d).read(op) });
                // Release pairs with the Acquire flag load in `write_lock`:
                // our reads happen before the next writer's writes.
                flag.store(false, Ordering::Release);
                return resp;
            }
            // Relaxed: we read nothing under the flag.
            flag.store(false, Ordering::Relaxed);
            if st & WRITING == 0 {
                // Behind `ctail`: catch up ourselves if no combiner is
                // already at work on this replica.
                if rep.try_lock() {
                    nr.replay(self.replica, need, None);
                    add(&rep.stats.reader_syncs, 1);
                    rep.unlock();
                    continue;
                }
                backoff.snooze();
            } else {
                // Relaxed: only a hint to stop waiting; the Acquire load
                // above, repeated, is what orders.
                while rep.state.load(Ordering::Relaxed) & WRITING != 0 {
                    backoff.snooze();
                }
            }
        }
    }
}

impl<D: Sequential> Drop for NrHandle<'_, D> {
    fn drop(&mut self) {
        // Release pairs with the Acquire CAS in `register_on`.
        self.slot_ref.taken.store(false, Ordering::Release);
    }
}

impl<D: Sequential> fmt::Debug for NodeReplicated<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeReplicated")
            .field("replicas", &self.replicas())
            .field("log_entries", &self.log_entries())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
