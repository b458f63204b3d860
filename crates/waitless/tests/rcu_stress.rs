//! Stress tests of `waitless::rcu::Rcu`: readers check an invariant inside
//! every value they see (never torn, never freed, never going back in time)
//! while several writers publish, and every value is counted: each is
//! dropped exactly once, and none is left when the cell is gone.
//!
//! Sized to pass quickly on a loaded 2-core machine with more threads than
//! cores; nothing here depends on timing.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use waitless::rcu::Rcu;

const ALIVE: u64 = 0xA11C_E5A1_1CE5_A11C;
const NOT_HELD: u64 = u64::MAX;

/// Every value ever made, by id: created and dropped flags.
struct Ledger {
    created: AtomicUsize,
    dropped: Vec<AtomicBool>,
}

impl Ledger {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            created: AtomicUsize::new(0),
            dropped: (0..cap).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    fn dropped_count(&self) -> usize {
        self.dropped
            .iter()
            .filter(|d| d.load(Ordering::Acquire))
            .count()
    }
}

/// A value whose fields must agree: `b` and `payload` are derived from `a`.
struct Snap {
    /// Global version for `update` writers; per-writer sequence for
    /// `replace` writers.
    version: u64,
    writer: usize,
    a: u64,
    b: u64,
    payload: Box<[u64; 4]>,
    alive: u64,
    id: usize,
    ledger: Arc<Ledger>,
}

fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

impl Snap {
    fn new(ledger: &Arc<Ledger>, version: u64, writer: usize) -> Self {
        let id = ledger.created.fetch_add(1, Ordering::Relaxed);
        assert!(id < ledger.dropped.len(), "ledger too small");
        let a = mix(version ^ ((writer as u64) << 48));
        Self {
            version,
            writer,
            a,
            b: !a,
            payload: Box::new([a; 4]),
            alive: ALIVE,
            id,
            ledger: Arc::clone(ledger),
        }
    }

    fn check(&self) {
        assert_eq!(self.alive, ALIVE, "value {} was freed", self.id);
        assert_eq!(self.b, !self.a, "torn value {}", self.id);
        assert!(self.payload.iter().all(|&x| x == self.a), "torn payload");
        assert!(
            !self.ledger.dropped[self.id].load(Ordering::Acquire),
            "value {} used after its drop",
            self.id
        );
    }
}

impl Drop for Snap {
    fn drop(&mut self) {
        self.check();
        self.alive = 0;
        let twice = self.ledger.dropped[self.id].swap(true, Ordering::AcqRel);
        assert!(!twice, "value {} dropped twice", self.id);
    }
}

/// Sets the flag when dropped, so that a failing assertion on the main
/// thread stops the readers instead of leaving `thread::scope` waiting.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Counts a finished writer when dropped, also when the writer panics.
struct CountOnDrop<'a>(&'a AtomicUsize);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

fn scale(n: usize) -> usize {
    if cfg!(miri) {
        (n / 100).max(4)
    } else {
        n
    }
}

/// Several `update` writers increment a global version; readers check every
/// value and that the version they see never decreases; a nested guard
/// stays intact while newer values are read. No update is lost.
#[test]
fn rcu_updaters_and_readers() {
    let writers = 3;
    let readers = 5; // 8 threads on any machine: oversubscribed on 2 cores
    let per_writer = scale(20_000);
    let ledger = Ledger::new(64 * writers * per_writer + 1);
    let rcu = Rcu::new(Snap::new(&ledger, 0, 0));
    let done = AtomicUsize::new(0);
    let reads = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| {
                let mut last = 0;
                let mut n = 0u64;
                while done.load(Ordering::Acquire) < writers {
                    let g = rcu.read();
                    g.check();
                    assert!(
                        g.version >= last,
                        "went back in time: {} after {last}",
                        g.version
                    );
                    last = g.version;
                    if n % 64 == 0 {
                        // Hold the old guard across a few newer reads.
                        for _ in 0..8 {
                            let h = rcu.read();
                            h.check();
                            assert!(h.version >= g.version);
                            thread::yield_now();
                        }
                        g.check();
                    }
                    drop(g);
                    n += 1;
                }
                reads.fetch_add(n, Ordering::Relaxed);
            });
        }
        for w in 0..writers {
            let (rcu, ledger, done) = (&rcu, &ledger, &done);
            s.spawn(move || {
                let _done = CountOnDrop(done);
                for _ in 0..per_writer {
                    rcu.update(|old| {
                        old.check();
                        Snap::new(ledger, old.version + 1, w)
                    });
                }
            });
        }
    });
    assert_eq!(
        rcu.read().version,
        (writers * per_writer) as u64,
        "lost update"
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    drop(rcu);
    let created = ledger.created.load(Ordering::Relaxed);
    assert_eq!(ledger.dropped_count(), created, "leaked values");
}

/// `replace` writers publish their own sequences: a reader never sees a
/// writer's sequence go backwards (coherence), and every value is dropped
/// exactly once.
#[test]
fn rcu_replacers_and_readers() {
    let writers = 3;
    let readers = 4;
    let per_writer = scale(20_000);
    let ledger = Ledger::new(writers * per_writer + 1);
    let rcu = Rcu::new(Snap::new(&ledger, 0, 0));
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| {
                let mut last = vec![0u64; writers];
                while done.load(Ordering::Acquire) < writers {
                    let g = rcu.read();
                    g.check();
                    assert!(g.version >= last[g.writer], "writer's sequence went back");
                    last[g.writer] = g.version;
                }
            });
        }
        for w in 0..writers {
            let (rcu, ledger, done) = (&rcu, &ledger, &done);
            s.spawn(move || {
                let _done = CountOnDrop(done);
                for seq in 1..=per_writer as u64 {
                    rcu.replace(Snap::new(ledger, seq, w));
                }
            });
        }
    });
    drop(rcu);
    assert_eq!(
        ledger.dropped_count(),
        ledger.created.load(Ordering::Relaxed),
        "leaked values"
    );
}

/// While readers and an updater run, another thread calls `synchronize`:
/// when it returns, no reader still holds a value older than the one that
/// was current before the call. Readers publish the version they hold
/// before dropping their guard, so a stale one would be seen.
#[test]
fn rcu_synchronize_under_load() {
    let readers = 4;
    let updates = scale(20_000);
    let syncs = scale(300);
    let ledger = Ledger::new(64 * (updates + syncs) + 1);
    let rcu = Rcu::new(Snap::new(&ledger, 0, 0));
    let held: Vec<AtomicU64> = (0..readers).map(|_| AtomicU64::new(NOT_HELD)).collect();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for r in 0..readers {
            let (rcu, held, stop) = (&rcu, &held, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let g = rcu.read();
                    // Published while the guard is alive (before it drops).
                    held[r].store(g.version, Ordering::SeqCst);
                    g.check();
                    thread::yield_now();
                    held[r].store(NOT_HELD, Ordering::SeqCst);
                    drop(g);
                }
            });
        }
        let _stop_readers = SetOnDrop(&stop);
        let updater = s.spawn(|| {
            for _ in 0..updates {
                rcu.update(|old| Snap::new(&ledger, old.version + 1, 0));
            }
        });
        for _ in 0..syncs {
            // Publish a new value, so that readers likely hold older ones.
            rcu.update(|old| Snap::new(&ledger, old.version + 1, 1));
            let before = rcu.read().version;
            rcu.synchronize();
            for (r, h) in held.iter().enumerate() {
                let v = h.load(Ordering::SeqCst);
                assert!(
                    v == NOT_HELD || v >= before,
                    "reader {r} still holds version {v} after synchronize (current was {before})"
                );
            }
        }
        updater.join().unwrap();
    });
    rcu.synchronize();
    drop(rcu);
    assert_eq!(
        ledger.dropped_count(),
        ledger.created.load(Ordering::Relaxed)
    );
}

/// `replace` and `read` form a register: a recorded history of several
/// writers (unique values) and readers is linearizable.
#[test]
fn rcu_replace_and_read_are_linearizable() {
    use waitless_check::{assert_linearizable, Recorder, RegisterModel, RegisterOp, RegisterRet};

    let writers = 3u64;
    let readers = 3;
    let writes = scale(300) as u64;
    let reads = 2 * writes;
    for _round in 0..3 {
        let rcu = Rcu::new(0u64);
        let rec: Recorder<RegisterOp<u64>, RegisterRet<u64>> = Recorder::new();
        thread::scope(|s| {
            for w in 0..writers {
                let (rcu, rec) = (&rcu, &rec);
                s.spawn(move || {
                    let mut log = rec.thread();
                    for i in 1..=writes {
                        let v = (w + 1) << 32 | i;
                        log.op(RegisterOp::Write(v), || {
                            rcu.replace(v);
                            RegisterRet::Written
                        });
                    }
                });
            }
            for _ in 0..readers {
                let (rcu, rec) = (&rcu, &rec);
                s.spawn(move || {
                    let mut log = rec.thread();
                    for _ in 0..reads {
                        log.op(RegisterOp::Read, || RegisterRet::Read(*rcu.read()));
                    }
                });
            }
        });
        assert_linearizable(&RegisterModel::new(0u64), &rec.into_history());
    }
}
