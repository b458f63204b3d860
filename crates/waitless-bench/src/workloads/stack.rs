//! Stack and epoch workloads.
//!
//! - `stack/push-pop-pairs`: every thread pushes a value and pops one, in a
//!   loop, on one shared stack. Contenders: waitless (elimination on, off,
//!   and without statistics counters, to measure their cost),
//!   `Mutex<Vec<u64>>`, `sdd::Stack` (scc's stack, which scc 3 moved to its
//!   epoch crate `sdd`), and a plain Treiber stack on `crossbeam-epoch`.
//! - `epoch/pin-unpin`: the cost of pinning and unpinning: a waitless
//!   per-instance `Collector`, the waitless default collector, and
//!   `crossbeam_epoch::pin()`.
//! - `epoch/pin-load`: pin, load and dereference a shared pointer, unpin —
//!   what an RCU-style read costs.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use crossbeam_epoch as cbe;
use waitless::epoch::Collector;
use waitless::stack::{LockFreeStack, StackConfig};

use super::{Entry, Role};
use crate::measure::{run_workload, RunConfig, RunResult};

const PAIRS: &str = "stack/push-pop-pairs";
const PAIR_UNIT: &str = "push+pop pairs";

/// Every stack and epoch workload entry.
pub fn entries() -> Vec<Entry> {
    let pair = |contender, role, run| Entry {
        group: "stack",
        workload: PAIRS,
        unit: PAIR_UNIT,
        contender,
        role,
        fixed_threads: None,
        run,
    };
    let epoch = |workload, unit, contender, role, run| Entry {
        group: "epoch",
        workload,
        unit,
        contender,
        role,
        fixed_threads: None,
        run,
    };
    vec![
        pair("Mutex<Vec>", Role::MutexBaseline, run_mutex_vec),
        pair("waitless", Role::Waitless, run_waitless),
        pair(
            "waitless (no elimination)",
            Role::Waitless,
            run_waitless_no_elim,
        ),
        pair("waitless (no stats)", Role::Waitless, run_waitless_no_stats),
        pair("sdd::Stack (scc)", Role::Peer, run_sdd),
        pair("Treiber on crossbeam-epoch", Role::Peer, run_cb_treiber),
        epoch(
            "epoch/pin-unpin",
            "pin+unpin",
            "crossbeam_epoch::pin",
            Role::Peer,
            run_pin_crossbeam,
        ),
        epoch(
            "epoch/pin-unpin",
            "pin+unpin",
            "waitless Collector::pin",
            Role::Waitless,
            run_pin_collector,
        ),
        epoch(
            "epoch/pin-unpin",
            "pin+unpin",
            "waitless epoch::pin (default)",
            Role::Waitless,
            run_pin_default,
        ),
        epoch(
            "epoch/pin-load",
            "pin+load+unpin",
            "crossbeam_epoch::pin",
            Role::Peer,
            run_pin_load_crossbeam,
        ),
        epoch(
            "epoch/pin-load",
            "pin+load+unpin",
            "waitless Collector::pin",
            Role::Waitless,
            run_pin_load_collector,
        ),
    ]
}

fn waitless_pairs(cfg: &RunConfig, threads: usize, sc: StackConfig) -> RunResult {
    let s = LockFreeStack::with_config(sc);
    run_workload(
        cfg,
        threads,
        |t| t as u64,
        |v| {
            let g = s.enter();
            let _ = s.push(*v);
            let got = s.pop(&g);
            *v = v.wrapping_add(got.unwrap_or(1));
            1
        },
    )
}

fn run_waitless(cfg: &RunConfig, threads: usize) -> RunResult {
    waitless_pairs(cfg, threads, StackConfig::default())
}

fn run_waitless_no_elim(cfg: &RunConfig, threads: usize) -> RunResult {
    waitless_pairs(
        cfg,
        threads,
        StackConfig {
            elimination: false,
            statistics: true,
        },
    )
}

fn run_waitless_no_stats(cfg: &RunConfig, threads: usize) -> RunResult {
    waitless_pairs(
        cfg,
        threads,
        StackConfig {
            elimination: true,
            statistics: false,
        },
    )
}

fn run_mutex_vec(cfg: &RunConfig, threads: usize) -> RunResult {
    let s: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    run_workload(
        cfg,
        threads,
        |t| t as u64,
        |v| {
            s.lock().unwrap().push(*v);
            let got = s.lock().unwrap().pop();
            *v = v.wrapping_add(got.unwrap_or(1));
            1
        },
    )
}

fn run_sdd(cfg: &RunConfig, threads: usize) -> RunResult {
    let s: sdd::Stack<u64> = sdd::Stack::new();
    run_workload(
        cfg,
        threads,
        |t| t as u64,
        |v| {
            s.push(*v);
            let got = s.pop().map(|e| **e);
            *v = v.wrapping_add(got.unwrap_or(1));
            1
        },
    )
}

/// A plain Treiber stack on crossbeam-epoch: no elimination, no counters.
struct CbTreiber {
    head: cbe::Atomic<CbNode>,
}

struct CbNode {
    value: std::mem::ManuallyDrop<u64>,
    next: cbe::Atomic<CbNode>,
}

impl CbTreiber {
    fn push(&self, value: u64) {
        let mut n = cbe::Owned::new(CbNode {
            value: std::mem::ManuallyDrop::new(value),
            next: cbe::Atomic::null(),
        });
        let g = cbe::pin();
        loop {
            let head = self.head.load(Ordering::Relaxed, &g);
            n.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange(head, n, Ordering::Release, Ordering::Relaxed, &g)
            {
                Ok(_) => return,
                Err(e) => n = e.new,
            }
        }
    }

    fn pop(&self) -> Option<u64> {
        let g = cbe::pin();
        loop {
            let head = self.head.load(Ordering::Acquire, &g);
            // SAFETY: pinned; nodes are retired with `defer_destroy`.
            let h = unsafe { head.as_ref() }?;
            let next = h.next.load(Ordering::Relaxed, &g);
            if self
                .head
                .compare_exchange(head, next, Ordering::Relaxed, Ordering::Relaxed, &g)
                .is_ok()
            {
                let v = *h.value;
                // SAFETY: unlinked by the CAS above; `u64` needs no drop.
                unsafe { g.defer_destroy(head) };
                return Some(v);
            }
        }
    }
}

impl Drop for CbTreiber {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

fn run_cb_treiber(cfg: &RunConfig, threads: usize) -> RunResult {
    let s = CbTreiber {
        head: cbe::Atomic::null(),
    };
    run_workload(
        cfg,
        threads,
        |t| t as u64,
        |v| {
            s.push(*v);
            let got = s.pop();
            *v = v.wrapping_add(got.unwrap_or(1));
            1
        },
    )
}

fn run_pin_collector(cfg: &RunConfig, threads: usize) -> RunResult {
    let c = Collector::new();
    run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            let g = c.pin();
            std::hint::black_box(&g);
            1
        },
    )
}

fn run_pin_default(cfg: &RunConfig, threads: usize) -> RunResult {
    run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            let g = waitless::epoch::pin();
            std::hint::black_box(&g);
            1
        },
    )
}

fn run_pin_crossbeam(cfg: &RunConfig, threads: usize) -> RunResult {
    run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            let g = cbe::pin();
            std::hint::black_box(&g);
            1
        },
    )
}

fn run_pin_load_collector(cfg: &RunConfig, threads: usize) -> RunResult {
    let c = Collector::new();
    let value = Box::into_raw(Box::new(42u64));
    let shared = AtomicPtr::new(value);
    let r = run_workload(
        cfg,
        threads,
        |_| 0u64,
        |acc| {
            let _g = c.pin();
            let p = shared.load(Ordering::Acquire);
            // SAFETY: `p` is never freed during the run.
            *acc = acc.wrapping_add(unsafe { *p });
            std::hint::black_box(*acc);
            1
        },
    );
    // SAFETY: the run is over; `value` came from `Box::into_raw`.
    drop(unsafe { Box::from_raw(value) });
    r
}

fn run_pin_load_crossbeam(cfg: &RunConfig, threads: usize) -> RunResult {
    let shared = cbe::Atomic::new(42u64);
    let r = run_workload(
        cfg,
        threads,
        |_| 0u64,
        |acc| {
            let g = cbe::pin();
            let p = shared.load(Ordering::Acquire, &g);
            // SAFETY: never freed during the run.
            *acc = acc.wrapping_add(unsafe { *p.deref() });
            std::hint::black_box(*acc);
            1
        },
    );
    // SAFETY: the run is over and no thread is pinned.
    drop(unsafe { shared.into_owned() });
    r
}
