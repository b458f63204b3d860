//! Read-copy-update workloads: reads per second of a small shared value.
//!
//! - `rcu/read-only`: every thread reads the value (and one field of it) in
//!   a loop; nobody writes.
//! - `rcu/read-with-writer`: the same readers plus **one extra thread**
//!   (thread 0 of the run) that publishes a new value continuously. Only
//!   reads are counted, and the thread count reported is the number of
//!   readers (the run has one more thread).
//! - `rcu/read-with-paced-writer`: as above, but the writer publishes at a
//!   fixed rate (100,000 writes/s), the same for every contender; a writer
//!   that publishes as fast as it can is faster with some contenders than
//!   with others, and each write invalidates the readers' cache line.
//!
//! Contenders: `waitless::rcu::Rcu` (`read`/`replace`), `arc_swap::ArcSwap`
//! (`load`/`store`), `RwLock<Arc<T>>` (read lock and dereference / write
//! lock and swap the `Arc`), `left_right` (`enter` on a per-thread read
//! handle / `append` + `publish`) and a `crossbeam_epoch::Atomic`
//! (`pin` + load / swap + `defer_destroy`, the issue-13 yardstick for
//! RCU reads).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use left_right::{Absorb, ReadHandle, WriteHandle};
use waitless::rcu::Rcu;

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

const READ_ONLY: Workload = Workload::new("rcu", "rcu/read-only", "reads");
const WITH_WRITER: Workload = Workload::new("rcu", "rcu/read-with-writer", "reads");
const PACED: Workload = Workload::new("rcu", "rcu/read-with-paced-writer", "reads");

/// The paced writer's period: 100,000 writes per second for every
/// contender, so that readers of each face the same invalidation rate.
const PACE: Duration = Duration::from_micros(10);

/// Whether, and how, thread 0 writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Writer {
    /// No writer: all threads read.
    None,
    /// One extra thread publishes as fast as it can.
    Continuous,
    /// One extra thread publishes every [`PACE`].
    Paced,
}

/// The shared value: small, like a configuration snapshot.
#[derive(Clone, Debug, Default)]
pub struct Value {
    a: u64,
    b: u64,
}

impl Value {
    fn new(version: u64) -> Self {
        Self {
            a: version.wrapping_mul(3),
            b: !version.wrapping_mul(3),
        }
    }

    /// What a reader does with the value: touch two fields.
    #[inline]
    fn use_it(&self) -> u64 {
        self.a ^ self.b
    }
}

/// A published [`Value`] as the workloads drive it: many readers, at most
/// one writer.
pub trait BenchRcu: Contender + Sync + Sized {
    /// A reader's private state (a read handle, or nothing).
    type Reader;
    /// A cell holding `Value::new(0)`.
    fn build() -> Self;
    /// A reader's state, made on the reader's thread.
    fn reader(&self) -> Self::Reader;
    /// Reads the current value and uses it.
    fn read(&self, reader: &mut Self::Reader) -> u64;
    /// Publishes `Value::new(version)` (only ever called by one thread).
    fn write(&self, version: u64);
}

/// The table of implementations: every RCU contender on `$run`.
macro_rules! cells {
    ($workload:expr, $run:ident) => {
        table!(
            $workload,
            $run,
            [
                ArcSwapCell,
                WaitlessRcu,
                RwLockCell,
                LeftRight,
                CrossbeamCell
            ]
        )
    };
}

/// Every RCU workload entry.
pub fn entries() -> Vec<Entry> {
    [
        cells!(READ_ONLY, read_only),
        cells!(WITH_WRITER, with_writer),
        cells!(PACED, paced_writer),
    ]
    .concat()
}

fn read_only<C: BenchRcu>(cfg: &RunConfig, readers: usize) -> RunResult {
    run_cell::<C>(cfg, readers, Writer::None)
}

fn with_writer<C: BenchRcu>(cfg: &RunConfig, readers: usize) -> RunResult {
    run_cell::<C>(cfg, readers, Writer::Continuous)
}

fn paced_writer<C: BenchRcu>(cfg: &RunConfig, readers: usize) -> RunResult {
    run_cell::<C>(cfg, readers, Writer::Paced)
}

/// Writes published by the writer thread in the last run (warm-up
/// included), so that reads/s can be read next to the write rate.
static LAST_RUN_WRITES: AtomicU64 = AtomicU64::new(0);

/// Writes the writer published during the last `rcu/read-with-writer` run
/// (warm-up and measurement window together).
pub fn last_run_writes() -> u64 {
    LAST_RUN_WRITES.load(Ordering::Relaxed)
}

/// A thread's role: thread 0 writes when there is a writer.
enum Thread<R> {
    Reader(R),
    Writer(u64, Instant),
}

/// Runs `readers` reader threads, plus one writer thread (index 0) when
/// `writer` is set; counts only reads and reports `readers` threads.
fn run_cell<C: BenchRcu>(cfg: &RunConfig, readers: usize, writer: Writer) -> RunResult {
    let cell = C::build();
    let threads = readers + usize::from(writer != Writer::None);
    LAST_RUN_WRITES.store(0, Ordering::Relaxed);
    let mut r = run_workload(
        cfg,
        threads,
        |t| {
            if writer != Writer::None && t == 0 {
                Thread::Writer(1, Instant::now())
            } else {
                Thread::Reader(cell.reader())
            }
        },
        |s| match s {
            Thread::Reader(r) => {
                black_box(cell.read(r));
                1
            }
            Thread::Writer(v, next) => {
                if writer == Writer::Paced {
                    if Instant::now() < *next {
                        std::hint::spin_loop();
                        return 0;
                    }
                    *next += PACE;
                }
                cell.write(*v);
                *v += 1;
                // Only the writer touches this: an uncontended line.
                LAST_RUN_WRITES.store(*v - 1, Ordering::Relaxed);
                0
            }
        },
    );
    r.threads = readers;
    r
}

/// `waitless::rcu::Rcu` (`read` / `replace`).
pub struct WaitlessRcu(Rcu<Value>);

impl Contender for WaitlessRcu {
    const NAME: &'static str = "waitless Rcu::read";
    const ROLE: Role = Role::Waitless;
}

impl BenchRcu for WaitlessRcu {
    type Reader = ();
    fn build() -> Self {
        Self(Rcu::new(Value::new(0)))
    }
    fn reader(&self) {}
    fn read(&self, _: &mut ()) -> u64 {
        self.0.read().use_it()
    }
    fn write(&self, version: u64) {
        self.0.replace(Value::new(version));
    }
}

/// `arc_swap::ArcSwap` (`load` / `store`).
pub struct ArcSwapCell(ArcSwap<Value>);

impl Contender for ArcSwapCell {
    const NAME: &'static str = "arc-swap load";
    const ROLE: Role = Role::Peer;
}

impl BenchRcu for ArcSwapCell {
    type Reader = ();
    fn build() -> Self {
        Self(ArcSwap::from_pointee(Value::new(0)))
    }
    fn reader(&self) {}
    fn read(&self, _: &mut ()) -> u64 {
        self.0.load().use_it()
    }
    fn write(&self, version: u64) {
        self.0.store(Arc::new(Value::new(version)));
    }
}

/// `crossbeam_epoch::Atomic<Value>`: `pin` + load / swap + `defer_destroy`.
pub struct CrossbeamCell(crossbeam_epoch::Atomic<Value>);

impl Contender for CrossbeamCell {
    const NAME: &'static str = "crossbeam_epoch pin+load";
    const ROLE: Role = Role::Peer;
}

impl BenchRcu for CrossbeamCell {
    type Reader = ();
    fn build() -> Self {
        Self(crossbeam_epoch::Atomic::new(Value::new(0)))
    }
    fn reader(&self) {}
    fn read(&self, _: &mut ()) -> u64 {
        let g = crossbeam_epoch::pin();
        let p = self.0.load(std::sync::atomic::Ordering::Acquire, &g);
        // SAFETY: pinned; replaced values are retired with `defer_destroy`,
        // and the pointer is never null.
        unsafe { p.deref() }.use_it()
    }
    fn write(&self, version: u64) {
        let g = crossbeam_epoch::pin();
        let old = self.0.swap(
            crossbeam_epoch::Owned::new(Value::new(version)),
            std::sync::atomic::Ordering::AcqRel,
            &g,
        );
        // SAFETY: unlinked by the swap; readers that hold it are pinned.
        unsafe { g.defer_destroy(old) };
    }
}

impl Drop for CrossbeamCell {
    fn drop(&mut self) {
        let a = std::mem::replace(&mut self.0, crossbeam_epoch::Atomic::null());
        // SAFETY: `&mut self`: no reader is left.
        drop(unsafe { a.into_owned() });
    }
}

/// `RwLock<Arc<Value>>`: read lock and dereference / write lock and swap.
pub struct RwLockCell(RwLock<Arc<Value>>);

impl Contender for RwLockCell {
    const NAME: &'static str = "RwLock<Arc<T>>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchRcu for RwLockCell {
    type Reader = ();
    fn build() -> Self {
        Self(RwLock::new(Arc::new(Value::new(0))))
    }
    fn reader(&self) {}
    fn read(&self, _: &mut ()) -> u64 {
        self.0.read().expect("not poisoned").use_it()
    }
    fn write(&self, version: u64) {
        *self.0.write().expect("not poisoned") = Arc::new(Value::new(version));
    }
}

/// left-right's operation: set the whole value.
struct Set(u64);

impl Absorb<Set> for Value {
    fn absorb_first(&mut self, op: &mut Set, _other: &Self) {
        *self = Value::new(op.0);
    }

    fn sync_with(&mut self, first: &Self) {
        *self = first.clone();
    }
}

/// `left_right`: `enter` on a per-thread read handle / `append` + `publish`.
///
/// The write handle is not `Sync`: the writer locks it for each write
/// (uncontended: only thread 0 writes). It lives as long as the cell, so it
/// outlives every reader (readers' `enter` fails once it is dropped).
pub struct LeftRight {
    writer: Mutex<WriteHandle<Value, Set>>,
    factory: left_right::ReadHandleFactory<Value>,
}

impl Contender for LeftRight {
    const NAME: &'static str = "left-right";
    const ROLE: Role = Role::Peer;
}

impl BenchRcu for LeftRight {
    type Reader = ReadHandle<Value>;
    fn build() -> Self {
        let (w, r) = left_right::new_from_empty::<Value, Set>(Value::new(0));
        Self {
            writer: Mutex::new(w),
            factory: r.factory(),
        }
    }
    fn reader(&self) -> ReadHandle<Value> {
        self.factory.handle()
    }
    fn read(&self, h: &mut ReadHandle<Value>) -> u64 {
        h.enter().expect("writer alive").use_it()
    }
    fn write(&self, version: u64) {
        let mut w = self.writer.lock().expect("not poisoned");
        w.append(Set(version));
        w.publish();
    }
}
