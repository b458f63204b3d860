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

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

const INCREMENT: Workload = Workload::new("counter", "counter/increment", "increments");

static CAS_SITE: Site = Site::new("counter.cas");

/// One shared counter as the workload drives it.
pub trait BenchCounter: Contender + Sync + Sized {
    /// A counter at zero, alone on its cache line.
    fn build() -> Self;
    /// Adds one.
    fn increment(&self);
    /// The current value.
    fn get(&self) -> u64;
}

/// A compare-exchange retry loop ([`cas_increment`]).
pub struct CasLoop(CachePadded<AtomicU64>);

impl Contender for CasLoop {
    const NAME: &'static str = "CAS retry loop";
    const ROLE: Role = Role::Waitless;
}

impl BenchCounter for CasLoop {
    fn build() -> Self {
        Self(CachePadded::new(AtomicU64::new(0)))
    }
    fn increment(&self) {
        cas_increment(&self.0);
    }
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// `Mutex<u64>`.
pub struct MutexCounter(CachePadded<Mutex<u64>>);

impl Contender for MutexCounter {
    const NAME: &'static str = "Mutex<u64>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchCounter for MutexCounter {
    fn build() -> Self {
        Self(CachePadded::new(Mutex::new(0)))
    }
    fn increment(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
    fn get(&self) -> u64 {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `AtomicU64::fetch_add`: one locked instruction, no retry.
pub struct FetchAdd(CachePadded<AtomicU64>);

impl Contender for FetchAdd {
    const NAME: &'static str = "AtomicU64::fetch_add";
    const ROLE: Role = Role::Peer;
}

impl BenchCounter for FetchAdd {
    fn build() -> Self {
        Self(CachePadded::new(AtomicU64::new(0)))
    }
    fn increment(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The counter group's entries.
pub fn entries() -> Vec<Entry> {
    table!(INCREMENT, increment, [CasLoop, MutexCounter, FetchAdd])
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

fn increment<C: BenchCounter>(cfg: &RunConfig, threads: usize) -> RunResult {
    let counter = C::build();
    let r = run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            counter.increment();
            1
        },
    );
    black_box(counter.get());
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
