//! Soak: every reclaiming structure under thread churn, with panicking
//! destructors and closures injected at random.
//!
//! Ignored by default (it runs for minutes). Run it with
//!
//! ```text
//! WAITLESS_SOAK_SECS=600 nice -n 19 cargo test --release -p waitless --test soak -- --ignored --nocapture
//! ```
//!
//! Generations of 2–5 worker threads are spawned and joined one after the
//! other, so threads are created and exit continually (thread-local records
//! are handed back each time). Shared across generations: an `Rcu`, a
//! `LockFreeStack`, a `LockFreeHashMap`, a raw epoch `Collector` and a raw
//! hazard `Domain`; created per generation: a `WaitFreeQueue` and a bounded
//! channel. At the end the test asserts that
//! - every value created was dropped (created == dropped; each value's
//!   canary, checked in its destructor, catches a value dropped twice or
//!   used after its drop while its memory is not reused);
//! - the heap (a counting global allocator) is back to where it started;
//! - histories recorded in the last window (stack, RCU register) are
//!   linearizable.
//!
//! Panicking destructors run inside the collectors' and domains'
//! background work (a pin, a retire); a second panic while one unwinds
//! would abort the process, as for any destructor, so at most one
//! panicking value or deferred closure exists at a time (a gate), and the
//! worker that catches the panic reopens the gate.
// The std runtime drives these threads; loom's atomics panic outside a model.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use waitless::epoch::Collector;
use waitless::hazard::{Domain, HazardPointer};
use waitless::map::LockFreeHashMap;
use waitless::queue::WaitFreeQueue;
use waitless::rcu::Rcu;
use waitless::stack::LockFreeStack;

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to `System`, only counting sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: caller's contract forwarded.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = HEAP.fetch_add(l.size() as isize, Relaxed) + l.size() as isize;
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HEAP.fetch_sub(l.size() as isize, Relaxed);
        // SAFETY: caller's contract forwarded.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static CREATED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Set while a panicking value or closure exists (see the module docs).
static BOOM_GATE: AtomicBool = AtomicBool::new(false);
static PANICS_CAUGHT: AtomicU64 = AtomicU64::new(0);
static BOOMS_MADE: AtomicU64 = AtomicU64::new(0);

/// A value with a canary and an optional panicking destructor.
struct Tok {
    v: u64,
    canary: u64,
    boom: bool,
}

impl Tok {
    fn new(boom: bool) -> Self {
        CREATED.fetch_add(1, Relaxed);
        let v = NEXT_ID.fetch_add(1, Relaxed);
        Tok {
            v,
            canary: !v,
            boom,
        }
    }
    fn check(&self) {
        assert_eq!(self.canary, !self.v, "value used after drop (or torn)");
    }
}

impl Drop for Tok {
    fn drop(&mut self) {
        assert_eq!(self.canary, !self.v, "value dropped twice or torn");
        self.canary = 0;
        DROPPED.fetch_add(1, Relaxed);
        if self.boom {
            panic!("injected panic in Tok::drop");
        }
    }
}

/// A clone is a new value (counted; never panicking).
impl Clone for Tok {
    fn clone(&self) -> Self {
        self.check();
        Tok::new(false)
    }
}

/// A small xorshift generator (the soak needs variety, not quality).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Whether to inject a panic now: rarely, and only if none is in flight.
fn boom(rng: &mut Rng) -> bool {
    if rng.below(400) != 0 || std::env::var_os("WAITLESS_SOAK_NO_BOOM").is_some() {
        return false;
    }
    let ok = BOOM_GATE
        .compare_exchange(false, true, AcqRel, Relaxed)
        .is_ok();
    if ok {
        BOOMS_MADE.fetch_add(1, Relaxed);
    }
    ok
}

/// Counts a caught panic; reopens the gate if it was the gated one (a
/// panicking destructor or deferred closure, not a closure failure).
fn caught(payload: Box<dyn std::any::Any + Send>) {
    PANICS_CAUGHT.fetch_add(1, Relaxed);
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str()))
        .unwrap_or("");
    if msg.contains("Tok::drop") || msg.contains("deferred closure") {
        BOOM_GATE.store(false, Release);
    } else {
        assert!(msg.starts_with("injected panic"), "unexpected panic: {msg}");
    }
}

/// Runs `f`, catching an injected panic (and reopening the gate).
fn guarded(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        caught(p);
    }
}

struct Shared {
    rcu: Rcu<Tok>,
    stack: LockFreeStack<Tok>,
    map: LockFreeHashMap<u64, Tok>,
    collector: Collector,
    domain: Domain,
    hp_slot: AtomicPtr<Tok>,
}

unsafe fn drop_tok(p: *mut Tok) {
    // SAFETY: retired once, from `Box::into_raw`.
    drop(unsafe { Box::from_raw(p) });
}

fn worker(
    sh: &Shared,
    q: &WaitFreeQueue<Tok>,
    ch: &(
        waitless::channel::Sender<Tok>,
        waitless::channel::Receiver<Tok>,
    ),
    seed: u64,
    ops: usize,
) {
    let mut rng = Rng(seed | 1);
    for _ in 0..ops {
        let op = rng.below(14);
        if let Some(mask) = std::env::var("WAITLESS_SOAK_OPS")
            .ok()
            .and_then(|m| u64::from_str_radix(&m, 16).ok())
        {
            if mask & (1 << op) == 0 {
                continue;
            }
        }
        guarded(|| match op {
            0 => {
                let b = boom(&mut rng);
                sh.rcu.replace(Tok::new(b));
            }
            1 => {
                let fail = rng.below(50) == 0;
                let b = boom(&mut rng);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    sh.rcu.update(|old| {
                        old.check();
                        if fail {
                            panic!("injected panic in an update closure");
                        }
                        Tok::new(false)
                    })
                }));
                if b {
                    // The gate was taken but no panicking value made here.
                    BOOM_GATE.store(false, Release);
                }
                if let Err(p) = r {
                    caught(p);
                }
            }
            2 | 3 => sh.rcu.read().check(),
            4 => {
                let b = boom(&mut rng);
                let _ = sh.stack.push(Tok::new(b));
            }
            5 => {
                let g = sh.stack.enter();
                if let Some(t) = sh.stack.pop(&g) {
                    drop(g);
                    t.check();
                    drop(t);
                }
            }
            6 => {
                let k = rng.below(64);
                // Panicking values in the map only on request: the map
                // leaks about one value per panicking destructor run by its
                // own scans (reported to the map's owner; see
                // docs/reliability.md).
                let b = std::env::var_os("WAITLESS_SOAK_MAP_BOOMS").is_some() && boom(&mut rng);
                drop(sh.map.insert(k, Tok::new(b)));
            }
            7 => {
                let k = rng.below(64);
                let fail = rng.below(50) == 0;
                let _ = sh.map.update(&k, |old| {
                    old.check();
                    if fail {
                        panic!("injected panic in a map update closure");
                    }
                    Tok::new(false)
                });
            }
            8 => {
                let k = rng.below(64);
                let fail = rng.below(50) == 0;
                let _ = sh.map.get_with(&k, |t| t.check());
                if fail {
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        sh.map
                            .get_or_insert_with(k + 1000, || panic!("injected panic in make"))
                    }));
                    PANICS_CAUGHT.fetch_add(1, Relaxed);
                }
                drop(sh.map.remove(&k));
            }
            9 => {
                let g = sh.collector.pin();
                if boom(&mut rng) {
                    g.defer(|| panic!("injected panic in a deferred closure"));
                } else {
                    let t = Tok::new(false);
                    g.defer(move || drop(t));
                }
            }
            10 => {
                let new = Box::into_raw(Box::new(Tok::new(boom(&mut rng))));
                let old = sh.hp_slot.swap(new, AcqRel);
                // SAFETY: unlinked by the swap, retired once, a `Box`.
                unsafe { sh.domain.retire(old, drop_tok) };
            }
            11 => {
                let mut hp = HazardPointer::new_in(&sh.domain);
                let p = hp.protect(&sh.hp_slot);
                // SAFETY: protected.
                unsafe { (*p).check() };
            }
            12 => {
                if q.enqueue(Tok::new(false)).is_err() {
                    // Full: the value came back inside the error, dropped.
                }
                if let Some(t) = q.dequeue() {
                    t.check();
                }
            }
            _ => {
                let _ = ch.0.try_send(Tok::new(false));
                if let Ok(t) = ch.1.try_recv() {
                    t.check();
                }
            }
        });
    }
}

/// The last window: histories recorded on the shared stack and RCU cell
/// are checked for linearizability.
fn last_window(sh: &Shared) {
    use waitless_check::{
        assert_linearizable, Recorder, RegisterModel, RegisterOp, RegisterRet, StackModel, StackOp,
        StackRet,
    };
    // Start from an empty stack (what the model assumes).
    loop {
        let g = sh.stack.enter();
        match sh.stack.pop(&g) {
            Some(t) => {
                drop(g);
                guarded(|| drop(t));
            }
            None => break,
        }
    }
    let stack = LockFreeStack::new();
    let rec: Recorder<StackOp<u64>, StackRet<u64>> = Recorder::new();
    let cell = Rcu::new(0u64);
    let rrec: Recorder<RegisterOp<u64>, RegisterRet<u64>> = Recorder::new();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (stack, rec, cell, rrec) = (&stack, &rec, &cell, &rrec);
            s.spawn(move || {
                let mut log = rec.thread();
                let mut rlog = rrec.thread();
                for i in 0..150u64 {
                    let v = t << 32 | i;
                    if i % 2 == 0 {
                        log.op(StackOp::Push(v), || {
                            assert!(stack.push(v).is_ok());
                            StackRet::Pushed
                        });
                        rlog.op(RegisterOp::Write(v + 1), || {
                            cell.replace(v + 1);
                            RegisterRet::Written
                        });
                    } else {
                        log.op(StackOp::Pop, || {
                            let g = stack.enter();
                            StackRet::Popped(stack.pop(&g))
                        });
                        rlog.op(RegisterOp::Read, || RegisterRet::Read(*cell.read()));
                    }
                }
            });
        }
    });
    assert_linearizable(&StackModel::new(), &rec.into_history());
    assert_linearizable(&RegisterModel::new(0u64), &rrec.into_history());
}

#[test]
#[ignore = "soak: minutes; run with --ignored (see the module docs)"]
fn soak_reclamation_under_churn() {
    let secs: u64 = std::env::var("WAITLESS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    println!("soak: {secs} s");
    // Warm up first: a one-second run allocates the process-wide state that
    // std and waitless create lazily and keep (thread machinery, stdout,
    // the contention sites' registry); a 600 s run measured from before it
    // ended 900 B above its start with every value dropped.
    std::thread::spawn(|| run(1)).join().unwrap();
    let heap_start = HEAP.load(Relaxed);
    // The whole run happens on a thread of its own, so that the thread-local
    // caches it creates (epoch and hazard records) are released when it is
    // joined, before the heap is compared.
    let (generations, threads_spawned, ops, t0) =
        std::thread::spawn(move || run(secs)).join().unwrap();
    report_and_check(heap_start, generations, threads_spawned, ops, t0);
}

fn run(secs: u64) -> (u64, u64, u64, Instant) {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(secs);
    let (mut generations, mut threads_spawned, mut ops) = (0u64, 0u64, 0u64);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    {
        let sh = Shared {
            rcu: Rcu::new(Tok::new(false)),
            stack: LockFreeStack::new(),
            map: LockFreeHashMap::new(),
            collector: Collector::new(),
            domain: Domain::new(),
            hp_slot: AtomicPtr::new(Box::into_raw(Box::new(Tok::new(false)))),
        };
        let mut last_report = Instant::now();
        while Instant::now() < deadline {
            let n = 2 + (seed % 4) as usize;
            let per = 3000;
            let q = WaitFreeQueue::new(32);
            let ch = waitless::channel::bounded(16);
            std::thread::scope(|s| {
                let hs: Vec<_> = (0..n)
                    .map(|i| {
                        let (sh, q, ch) = (&sh, &q, &ch);
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(i as u64 + 1);
                        let sd = seed;
                        s.spawn(move || worker(sh, q, ch, sd, per))
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
            });
            guarded(|| drop(q));
            guarded(|| drop(ch));
            generations += 1;
            threads_spawned += n as u64;
            ops += (n * per) as u64;
            if last_report.elapsed() > Duration::from_secs(60) {
                last_report = Instant::now();
                println!(
                    "  {:>4} s: {generations} generations, {threads_spawned} threads, {ops} ops, \
                     heap {} KiB, live values {}, panics caught {}",
                    t0.elapsed().as_secs(),
                    HEAP.load(Relaxed) / 1024,
                    CREATED.load(Relaxed) - DROPPED.load(Relaxed),
                    PANICS_CAUGHT.load(Relaxed)
                );
            }
        }
        last_window(&sh);
        // Tear down (a panicking value may still be inside: catch it).
        let Shared {
            rcu,
            stack,
            map,
            collector,
            domain,
            hp_slot,
        } = sh;
        guarded(|| drop(rcu));
        guarded(|| drop(stack));
        guarded(|| drop(map));
        guarded(|| drop(collector));
        // SAFETY: every thread is joined; the last value is ours.
        guarded(|| unsafe { drop(Box::from_raw(hp_slot.into_inner())) });
        guarded(|| drop(domain));
    }
    (generations, threads_spawned, ops, t0)
}

fn report_and_check(
    heap_start: isize,
    generations: u64,
    threads_spawned: u64,
    ops: u64,
    t0: Instant,
) {
    let heap_end = HEAP.load(Relaxed);
    let (created, dropped) = (CREATED.load(Relaxed), DROPPED.load(Relaxed));
    println!(
        "soak done in {} s: {generations} generations, {threads_spawned} threads created and \
         exited, {ops} operations; values created {created}, dropped {dropped}; injected panics \
         made {} (+ closures), caught {}; heap start {heap_start} B, end {heap_end} B, peak {} KiB",
        t0.elapsed().as_secs(),
        BOOMS_MADE.load(Relaxed),
        PANICS_CAUGHT.load(Relaxed),
        PEAK.load(Relaxed) / 1024
    );
    assert_eq!(created, dropped, "values leaked or dropped twice");
    assert_eq!(
        heap_end, heap_start,
        "the heap did not return to its starting size"
    );
}
