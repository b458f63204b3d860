//! The measurement core every workload runs on.
//!
//! OS threads (never async tasks: a task scheduler adds its own queueing and
//! wake-up latency, which would be measured instead of the structure), a
//! start barrier so every thread begins together, a warm-up that is not
//! counted, a fixed measurement window ended by a stop flag, per-thread
//! operation counts merged after the run, and sampled per-operation latency
//! (one operation in [`LATENCY_SAMPLE_EVERY`] is timed, so reading the clock
//! does not dominate what is measured).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One operation in this many is timed individually for the latency histogram.
pub const LATENCY_SAMPLE_EVERY: u64 = 64;

/// How long to warm up and measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Warm-up before counting starts.
    pub warmup: Duration,
    /// The measurement window.
    pub window: Duration,
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sampled latency.
    pub max_ns: u64,
    /// Number of samples behind the percentiles.
    pub samples: u64,
}

impl Percentiles {
    /// Percentiles of a histogram of nanosecond values.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            samples: h.len(),
        }
    }
}

/// The outcome of one measured run at one thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Threads that ran.
    pub threads: usize,
    /// Operations counted during the window, all threads together.
    pub ops: u64,
    /// The actual window length.
    pub elapsed: Duration,
    /// `ops / elapsed`.
    pub ops_per_sec: f64,
    /// Sampled per-operation latency.
    pub latency: Percentiles,
}

const PHASE_WARMUP: u8 = 0;
const PHASE_MEASURE: u8 = 1;
const PHASE_STOP: u8 = 2;

/// Runs `op` on `threads` OS threads for `cfg.window` after `cfg.warmup`.
///
/// `setup(thread_index)` builds each thread's private state (role, RNG,
/// guard…) before the start barrier. `op(&mut state)` performs one unit of
/// work and returns how many operations it completed (0 when, say, a consumer
/// found the queue empty; those calls are not counted and not timed).
///
/// # Panics
/// If `threads` is zero.
pub fn run_workload<S>(
    cfg: &RunConfig,
    threads: usize,
    setup: impl Fn(usize) -> S + Sync,
    op: impl Fn(&mut S) -> u64 + Sync,
) -> RunResult {
    assert!(threads > 0, "run_workload needs at least one thread");
    let phase = AtomicU8::new(PHASE_WARMUP);
    let barrier = Barrier::new(threads + 1);
    let (ops, hist, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (setup, op, phase, barrier) = (&setup, &op, &phase, &barrier);
                s.spawn(move || {
                    let mut state = setup(t);
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2)
                        .expect("valid histogram bounds");
                    barrier.wait();
                    while phase.load(Ordering::Relaxed) == PHASE_WARMUP {
                        for _ in 0..16 {
                            op(&mut state);
                        }
                    }
                    let mut ops = 0u64;
                    let mut calls = 0u64;
                    while phase.load(Ordering::Relaxed) == PHASE_MEASURE {
                        for _ in 0..16 {
                            calls += 1;
                            if calls % LATENCY_SAMPLE_EVERY == 0 {
                                let t0 = Instant::now();
                                let n = op(&mut state);
                                if n > 0 {
                                    let ns = t0.elapsed().as_nanos() as u64;
                                    hist.saturating_record(ns.max(1));
                                }
                                ops += n;
                            } else {
                                ops += op(&mut state);
                            }
                        }
                    }
                    (ops, hist)
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(cfg.warmup);
        let t0 = Instant::now();
        phase.store(PHASE_MEASURE, Ordering::Relaxed);
        std::thread::sleep(cfg.window);
        phase.store(PHASE_STOP, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        let mut total = 0u64;
        let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2)
            .expect("valid histogram bounds");
        for h in handles {
            let (ops, hist) = h.join().expect("workload thread panicked");
            total += ops;
            merged.add(&hist).expect("same histogram bounds");
        }
        (total, merged, elapsed)
    });
    RunResult {
        threads,
        ops,
        elapsed,
        ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
        latency: Percentiles::from_histogram(&hist),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn counts_every_completed_operation_from_every_thread() {
        let counter = AtomicU64::new(0);
        let cfg = RunConfig {
            warmup: Duration::from_millis(5),
            window: Duration::from_millis(30),
        };
        let r = run_workload(
            &cfg,
            3,
            |t| t,
            |_| {
                counter.fetch_add(1, Ordering::Relaxed);
                1
            },
        );
        assert_eq!(r.threads, 3);
        assert!(r.ops > 0);
        // Warm-up calls are executed but not counted.
        assert!(counter.load(Ordering::Relaxed) >= r.ops);
        assert!(r.latency.samples > 0);
        assert!(r.latency.p50_ns <= r.latency.max_ns);
    }

    #[test]
    fn zero_returning_calls_are_not_counted() {
        let cfg = RunConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(10),
        };
        let r = run_workload(&cfg, 2, |t| t, |t| u64::from(*t == 0));
        assert!(r.ops > 0);
    }
}
