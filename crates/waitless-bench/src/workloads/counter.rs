//! A demonstration group that needs no waitless structure: one shared
//! counter incremented by every thread.
//!
//! It is the smallest real lock-free-versus-lock comparison there is, and it
//! calibrates the machine: every contender hammers one cache line, so its
//! throughput is the "one contended word" ceiling of FIELD-NOTES' physical
//! limits. The lock-free contender is a compare-exchange retry loop (the
//! shape of a Treiber push) that reports its attempts to
//! [`waitless::contention`], so the report's contention profile has real
//! numbers even before the structures land; `fetch_add` is the hardware's
//! best answer (one locked instruction, no retry) and stands in as the peer.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use waitless::contention::Site;
use waitless::CachePadded;

use super::{Entry, Role};
use crate::measure::{run_workload, RunConfig, RunResult};

const GROUP: &str = "counter";
const WORKLOAD: &str = "counter/increment";
const UNIT: &str = "increments";

static CAS_SITE: Site = Site::new("counter.cas");

/// The counter group's entries.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            group: GROUP,
            workload: WORKLOAD,
            unit: UNIT,
            contender: "CAS retry loop",
            role: Role::Waitless,
            fixed_threads: None,
            run: run_cas_loop,
        },
        Entry {
            group: GROUP,
            workload: WORKLOAD,
            unit: UNIT,
            contender: "Mutex<u64>",
            role: Role::MutexBaseline,
            fixed_threads: None,
            run: run_mutex,
        },
        Entry {
            group: GROUP,
            workload: WORKLOAD,
            unit: UNIT,
            contender: "AtomicU64::fetch_add",
            role: Role::Peer,
            fixed_threads: None,
            run: run_fetch_add,
        },
    ]
}

/// One increment by compare-exchange, retried until it lands.
pub fn cas_increment(counter: &AtomicU64) {
    let mut cur = counter.load(Relaxed);
    loop {
        // Relaxed: the counter publishes nothing but its own value.
        match counter.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
            Ok(_) => {
                CAS_SITE.record(true);
                return;
            }
            Err(seen) => {
                CAS_SITE.record(false);
                cur = seen;
            }
        }
    }
}

fn run_cas_loop(cfg: &RunConfig, threads: usize) -> RunResult {
    let counter = CachePadded::new(AtomicU64::new(0));
    let r = run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            cas_increment(&counter);
            1
        },
    );
    black_box(counter.load(Relaxed));
    r
}

fn run_mutex(cfg: &RunConfig, threads: usize) -> RunResult {
    let counter = CachePadded::new(Mutex::new(0u64));
    let r = run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            *counter.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            1
        },
    );
    black_box(*counter.lock().unwrap_or_else(|e| e.into_inner()));
    r
}

fn run_fetch_add(cfg: &RunConfig, threads: usize) -> RunResult {
    let counter = CachePadded::new(AtomicU64::new(0));
    let r = run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            counter.fetch_add(1, Relaxed);
            1
        },
    );
    black_box(counter.load(Relaxed));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_contender_counts_increments() {
        let cfg = RunConfig {
            warmup: Duration::from_millis(1),
            window: Duration::from_millis(10),
        };
        for e in entries() {
            let r = (e.run)(&cfg, 2);
            assert_eq!(r.threads, 2);
            assert!(r.ops > 0, "{} counted nothing", e.contender);
        }
    }

    #[test]
    fn cas_increment_never_loses_an_increment() {
        let c = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        cas_increment(&c);
                    }
                });
            }
        });
        assert_eq!(c.load(Relaxed), 40_000);
    }
}
