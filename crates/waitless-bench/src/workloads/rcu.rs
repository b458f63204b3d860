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
//! lock and swap the `Arc`) and `left_right` (`enter` on a per-thread read
//! handle / `append` + `publish`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use left_right::{Absorb, ReadHandle, WriteHandle};
use waitless::rcu::Rcu;

use super::{Entry, Role};
use crate::measure::{run_workload, RunConfig, RunResult};

const READ_ONLY: &str = "rcu/read-only";
const WITH_WRITER: &str = "rcu/read-with-writer";
const PACED: &str = "rcu/read-with-paced-writer";
const UNIT: &str = "reads";

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

/// Every RCU workload entry.
pub fn entries() -> Vec<Entry> {
    let e = |workload, contender, role, run| Entry {
        group: "rcu",
        workload,
        unit: UNIT,
        contender,
        role,
        fixed_threads: None,
        run,
    };
    vec![
        e(READ_ONLY, "arc-swap load", Role::Peer, |c, t| {
            run_arc_swap(c, t, Writer::None)
        }),
        e(READ_ONLY, "waitless Rcu::read", Role::Waitless, |c, t| {
            run_waitless(c, t, Writer::None)
        }),
        e(READ_ONLY, "RwLock<Arc<T>>", Role::MutexBaseline, |c, t| {
            run_rwlock(c, t, Writer::None)
        }),
        e(READ_ONLY, "left-right", Role::Peer, |c, t| {
            run_left_right(c, t, Writer::None)
        }),
        e(WITH_WRITER, "arc-swap load", Role::Peer, |c, t| {
            run_arc_swap(c, t, Writer::Continuous)
        }),
        e(WITH_WRITER, "waitless Rcu::read", Role::Waitless, |c, t| {
            run_waitless(c, t, Writer::Continuous)
        }),
        e(
            WITH_WRITER,
            "RwLock<Arc<T>>",
            Role::MutexBaseline,
            |c, t| run_rwlock(c, t, Writer::Continuous),
        ),
        e(WITH_WRITER, "left-right", Role::Peer, |c, t| {
            run_left_right(c, t, Writer::Continuous)
        }),
        e(PACED, "arc-swap load", Role::Peer, |c, t| {
            run_arc_swap(c, t, Writer::Paced)
        }),
        e(PACED, "waitless Rcu::read", Role::Waitless, |c, t| {
            run_waitless(c, t, Writer::Paced)
        }),
        e(PACED, "RwLock<Arc<T>>", Role::MutexBaseline, |c, t| {
            run_rwlock(c, t, Writer::Paced)
        }),
        e(PACED, "left-right", Role::Peer, |c, t| {
            run_left_right(c, t, Writer::Paced)
        }),
    ]
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
enum Role2<R, W> {
    Reader(R),
    Writer(W, u64, Instant),
}

/// Runs `readers` reader threads, plus one writer thread (index 0) when
/// `writer` is set; counts only reads and reports `readers` threads.
fn run_roles<R, W>(
    cfg: &RunConfig,
    readers: usize,
    writer: Writer,
    make_reader: impl Fn() -> R + Sync,
    make_writer: impl Fn() -> W + Sync,
    read: impl Fn(&mut R) + Sync,
    write: impl Fn(&mut W, u64) + Sync,
) -> RunResult {
    let threads = readers + usize::from(writer != Writer::None);
    LAST_RUN_WRITES.store(0, Ordering::Relaxed);
    let mut r = run_workload(
        cfg,
        threads,
        |t| {
            if writer != Writer::None && t == 0 {
                Role2::Writer(make_writer(), 1, Instant::now())
            } else {
                Role2::Reader(make_reader())
            }
        },
        |s| match s {
            Role2::Reader(r) => {
                read(r);
                1
            }
            Role2::Writer(w, v, next) => {
                if writer == Writer::Paced {
                    if Instant::now() < *next {
                        std::hint::spin_loop();
                        return 0;
                    }
                    *next += PACE;
                }
                write(w, *v);
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

fn run_waitless(cfg: &RunConfig, readers: usize, writer: Writer) -> RunResult {
    let rcu = Rcu::new(Value::new(0));
    run_roles(
        cfg,
        readers,
        writer,
        || (),
        || (),
        |_| {
            black_box(rcu.read().use_it());
        },
        |_, v| rcu.replace(Value::new(v)),
    )
}

fn run_arc_swap(cfg: &RunConfig, readers: usize, writer: Writer) -> RunResult {
    let cell = ArcSwap::from_pointee(Value::new(0));
    run_roles(
        cfg,
        readers,
        writer,
        || (),
        || (),
        |_| {
            black_box(cell.load().use_it());
        },
        |_, v| cell.store(Arc::new(Value::new(v))),
    )
}

fn run_rwlock(cfg: &RunConfig, readers: usize, writer: Writer) -> RunResult {
    let cell = RwLock::new(Arc::new(Value::new(0)));
    run_roles(
        cfg,
        readers,
        writer,
        || (),
        || (),
        |_| {
            black_box(cell.read().expect("not poisoned").use_it());
        },
        |_, v| *cell.write().expect("not poisoned") = Arc::new(Value::new(v)),
    )
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

fn run_left_right(cfg: &RunConfig, readers: usize, writer: Writer) -> RunResult {
    let (w, r) = left_right::new_from_empty::<Value, Set>(Value::new(0));
    let factory = r.factory();
    // The write handle is not `Sync`: the writer locks it for each write
    // (uncontended: only thread 0 writes). It stays in the mutex so it
    // outlives every reader (readers' `enter` fails once it is dropped).
    let w: Mutex<WriteHandle<Value, Set>> = Mutex::new(w);
    run_roles(
        cfg,
        readers,
        writer,
        || factory.handle(),
        || (),
        |h: &mut ReadHandle<Value>| {
            black_box(h.enter().expect("writer alive").use_it());
        },
        |_, v| {
            let mut w = w.lock().expect("not poisoned");
            w.append(Set(v));
            w.publish();
        },
    )
}
