//! The measurement core every workload runs on.
//!
//! OS threads (never async tasks: a task scheduler adds its own queueing and
//! wake-up latency, which would be measured instead of the structure), a
//! start barrier so every thread begins together, a warm-up that is not
//! counted, a fixed measurement window ended by a stop flag, per-thread
//! operation counts merged after the run, and sampled per-operation latency
//! (one operation in [`LATENCY_SAMPLE_EVERY`] is timed, so reading the clock
//! does not dominate what is measured).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use waitless::CachePadded;

/// One operation in this many is timed individually for the latency histogram.
pub const LATENCY_SAMPLE_EVERY: u64 = 64;

/// Every thread makes at least this many calls in the measurement window
/// (the window is extended until it has, see [`run_workload`]), so every
/// thread contributes at least one latency sample.
pub const MIN_CALLS_PER_THREAD: u64 = LATENCY_SAMPLE_EVERY;

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
/// The window lasts `cfg.window`, or longer if some thread has not yet made
/// [`MIN_CALLS_PER_THREAD`] calls in it (a thread the OS did not schedule in
/// time on a loaded machine), up to ten times the window (at least a
/// second); `elapsed` is the actual length.
///
/// `setup(thread_index)` builds each thread's private state (role, RNG,
/// guard…) before the start barrier. `op(&mut state)` performs one unit of
/// work and returns how many operations it completed (0 when, say, a consumer
/// found the queue empty; those calls are not counted and not timed).
///
/// # Panics
/// If `threads` is zero, or when `setup` or `op` panics on any thread (after
/// the run's window, with the first thread's panic).
pub fn run_workload<S>(
    cfg: &RunConfig,
    threads: usize,
    setup: impl Fn(usize) -> S + Sync,
    op: impl Fn(&mut S) -> u64 + Sync,
) -> RunResult {
    assert!(threads > 0, "run_workload needs at least one thread");
    let phase = AtomicU8::new(PHASE_WARMUP);
    let barrier = Barrier::new(threads + 1);
    // ran[t]: thread t made MIN_CALLS_PER_THREAD calls in the window. A
    // progress signal only (the counts travel through `join`): Relaxed.
    let ran: Vec<CachePadded<AtomicBool>> = (0..threads)
        .map(|_| CachePadded::new(AtomicBool::new(false)))
        .collect();
    let (ops, hist, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (setup, op, phase, barrier, ran) = (&setup, &op, &phase, &barrier, &ran);
                s.spawn(move || {
                    // A panicking setup must still reach the barrier, or
                    // every other thread would wait there forever; the panic
                    // resumes right after it.
                    let state = catch_unwind(AssertUnwindSafe(|| setup(t)));
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2)
                        .expect("valid histogram bounds");
                    barrier.wait();
                    let mut state = state.unwrap_or_else(|p| resume_unwind(p));
                    while phase.load(Ordering::Relaxed) == PHASE_WARMUP {
                        for _ in 0..16 {
                            op(&mut state);
                        }
                    }
                    let mut ops = 0u64;
                    let mut calls = 0u64;
                    let mut reported = false;
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
                        if !reported && calls >= MIN_CALLS_PER_THREAD {
                            ran[t].store(true, Ordering::Relaxed);
                            reported = true;
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
        // On an oversubscribed or loaded machine a thread may not have been
        // scheduled at all during a short window; extend the window (the
        // elapsed time is measured, so the rate stays honest) until every
        // thread made its minimum number of calls, within a bound so a
        // thread stuck in `op` cannot hang the run.
        let limit = Instant::now() + cfg.window.max(Duration::from_millis(100)) * 10;
        while !ran.iter().all(|r| r.load(Ordering::Relaxed)) && Instant::now() < limit {
            std::thread::sleep(Duration::from_micros(200));
        }
        phase.store(PHASE_STOP, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        let mut total = 0u64;
        let mut merged = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2)
            .expect("valid histogram bounds");
        for h in handles {
            let (ops, hist) = h.join().unwrap_or_else(|p| resume_unwind(p));
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

/// Several runs of the same contender at the same thread count, summarised.
///
/// Throughput is reported as the median of the runs (robust against one run
/// that a noisy neighbour slowed down) with the minimum, maximum and a
/// relative spread, so a reader can tell a real difference from noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Threads that ran.
    pub threads: usize,
    /// Median of the runs' `ops_per_sec`.
    pub median_ops_per_sec: f64,
    /// Slowest run.
    pub min_ops_per_sec: f64,
    /// Fastest run.
    pub max_ops_per_sec: f64,
    /// `(max - min) / median`: 0.1 means the runs differed by 10 % of the median.
    pub spread: f64,
    /// Latency percentiles of the run whose throughput is the median.
    pub latency: Percentiles,
    /// Every run, in the order they ran.
    pub runs: Vec<RunResult>,
}

impl Measurement {
    /// Summarises `runs` (all at the same thread count).
    ///
    /// # Panics
    /// If `runs` is empty.
    pub fn from_runs(runs: Vec<RunResult>) -> Self {
        assert!(!runs.is_empty(), "a measurement needs at least one run");
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| runs[a].ops_per_sec.total_cmp(&runs[b].ops_per_sec));
        let mid = order[(order.len() - 1) / 2];
        let median = if order.len() % 2 == 1 {
            runs[mid].ops_per_sec
        } else {
            let hi = order[order.len() / 2];
            (runs[mid].ops_per_sec + runs[hi].ops_per_sec) / 2.0
        };
        let min = runs[order[0]].ops_per_sec;
        let max = runs[order[order.len() - 1]].ops_per_sec;
        Self {
            threads: runs[0].threads,
            median_ops_per_sec: median,
            min_ops_per_sec: min,
            max_ops_per_sec: max,
            spread: if median > 0.0 {
                (max - min) / median
            } else {
                0.0
            },
            latency: runs[mid].latency,
            runs,
        }
    }
}

/// Runs `run(cfg, threads)` `repeats` times (at least once) and summarises.
pub fn run_repeated(
    cfg: &RunConfig,
    threads: usize,
    repeats: usize,
    run: impl Fn(&RunConfig, usize) -> RunResult,
) -> Measurement {
    let runs = (0..repeats.max(1)).map(|_| run(cfg, threads)).collect();
    Measurement::from_runs(runs)
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
        // Every thread made its minimum number of calls, each timed once.
        assert!(r.ops >= 3 * MIN_CALLS_PER_THREAD, "{r:?}");
        assert!(r.latency.samples >= 3, "{r:?}");
        assert!(r.latency.p50_ns <= r.latency.max_ns);
    }

    #[test]
    fn zero_returning_calls_are_not_counted() {
        let cfg = RunConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(10),
        };
        let calls0 = AtomicU64::new(0);
        let r = run_workload(
            &cfg,
            2,
            |t| t,
            |t| {
                if *t == 0 {
                    calls0.fetch_add(1, Ordering::Relaxed);
                    1
                } else {
                    0
                }
            },
        );
        // Thread 0 made at least its minimum number of calls in the window;
        // thread 1's calls (each returning 0) add nothing.
        assert!(r.ops >= MIN_CALLS_PER_THREAD, "{r:?}");
        assert!(r.ops <= calls0.load(Ordering::Relaxed));
    }

    #[test]
    fn a_panicking_setup_fails_the_run_instead_of_hanging_it() {
        let cfg = RunConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(5),
        };
        let r = std::panic::catch_unwind(|| {
            run_workload(
                &cfg,
                3,
                |t| assert!(t != 1, "setup of thread 1 fails"),
                |_| 1,
            )
        });
        assert!(r.is_err());
    }

    fn fake(threads: usize, ops_per_sec: f64) -> RunResult {
        RunResult {
            threads,
            ops: ops_per_sec as u64,
            elapsed: Duration::from_secs(1),
            ops_per_sec,
            latency: Percentiles {
                p50_ns: ops_per_sec as u64,
                ..Percentiles::default()
            },
        }
    }

    #[test]
    fn measurement_takes_the_median_and_its_latency() {
        let m = Measurement::from_runs(vec![fake(2, 30.0), fake(2, 10.0), fake(2, 20.0)]);
        assert_eq!(m.threads, 2);
        assert_eq!(m.median_ops_per_sec, 20.0);
        assert_eq!(m.min_ops_per_sec, 10.0);
        assert_eq!(m.max_ops_per_sec, 30.0);
        assert!((m.spread - 1.0).abs() < 1e-12);
        assert_eq!(m.latency.p50_ns, 20);
        assert_eq!(m.runs.len(), 3);
    }

    #[test]
    fn even_number_of_runs_averages_the_middle_two() {
        let m = Measurement::from_runs(vec![
            fake(1, 40.0),
            fake(1, 10.0),
            fake(1, 20.0),
            fake(1, 30.0),
        ]);
        assert_eq!(m.median_ops_per_sec, 25.0);
    }

    #[test]
    fn run_repeated_runs_at_least_once() {
        let calls = AtomicU64::new(0);
        let cfg = RunConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(1),
        };
        let m = run_repeated(&cfg, 1, 0, |_, t| {
            calls.fetch_add(1, Ordering::Relaxed);
            fake(t, 5.0)
        });
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(m.median_ops_per_sec, 5.0);
    }
}
