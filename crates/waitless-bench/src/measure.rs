//! The measurement core every workload runs on.
//!
//! OS threads (never async tasks: a task scheduler adds its own queueing and
//! wake-up latency, which would be measured instead of the structure), a
//! start barrier so every thread begins together, a warm-up that is not
//! counted, a fixed measurement window ended by a stop flag, per-thread
//! operation counts merged after the run, and sampled per-operation latency
//! (one operation in [`LATENCY_SAMPLE_EVERY`] is timed, so reading the clock
//! does not dominate what is measured).
//!
//! The loop itself is `waitless::measure::run_threads`, the one the
//! library's `OptimizedChannel::benchmark_orderings` runs on too; this module
//! gives it an HDR histogram per thread and turns its outcome into a
//! [`RunResult`] with a [`CpuUse`] judgement, repeats and summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use waitless::measure::{run_threads, LatencySink, LoopConfig};

pub use waitless::measure::ThreadTimes;

/// One operation in this many is timed individually for the latency histogram.
pub const LATENCY_SAMPLE_EVERY: u64 = 64;

/// Every thread makes at least this many calls in the measurement window
/// (the window is extended until it has, see [`run_workload`]), so every
/// thread contributes at least one latency sample.
pub const MIN_CALLS_PER_THREAD: u64 = LATENCY_SAMPLE_EVERY;

/// How long to warm up and measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Warm-up before counting starts (seconds in JSON).
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// The measurement window (seconds in JSON).
    #[serde(with = "secs")]
    pub window: Duration,
}

/// Serde for a [`Duration`] as float seconds (`0.25`), the way
/// `results.json` writes every duration.
pub mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes float seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads float seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Duration>` (`null` for `None`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        /// Writes float seconds or `null`.
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&d.as_secs_f64()),
                None => s.serialize_none(),
            }
        }

        /// Reads float seconds or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<f64>::deserialize(d)?
                .map(|v| Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
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
    /// The actual window length (seconds in JSON).
    #[serde(with = "secs")]
    pub elapsed: Duration,
    /// `ops / elapsed`.
    pub ops_per_sec: f64,
    /// Sampled per-operation latency.
    pub latency: Percentiles,
    /// How much CPU the run's threads got (`None` where the OS does not
    /// say; see [`CpuUse`]).
    #[serde(default)]
    pub cpu: Option<CpuUse>,
}

impl RunResult {
    /// `true` when the run's threads did not get the CPU they asked for
    /// (another process took it): the rate measures the machine's load, not
    /// the structure.
    pub fn disturbed(&self) -> bool {
        self.cpu.is_some_and(|c| c.disturbed)
    }
}

/// A run is disturbed when its threads got less than this share of the CPU
/// time they were ready to use (capped at what the machine's hardware
/// threads can give): the rest they spent waiting in the run queue.
pub const MIN_CPU_SHARE: f64 = 0.8;

/// How much CPU a run's threads got during its window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// CPU time of all the run's threads together, in seconds.
    pub cpu_s: f64,
    /// Time they spent runnable but waiting for a CPU, in seconds.
    pub runqueue_wait_s: f64,
    /// The window, in seconds.
    pub wall_s: f64,
    /// Hardware threads the process may use.
    pub hardware_threads: usize,
    /// `cpu / min(cpu + wait, hardware_threads × wall)`: the share of the
    /// CPU time they could have had that they got (1.0: all of it).
    pub share: f64,
    /// `share < MIN_CPU_SHARE`.
    pub disturbed: bool,
}

impl CpuUse {
    /// Judges a run from its threads' times over a window of `wall_ns`, on
    /// a machine with `hardware_threads`. Threads that block (a lock
    /// waiter asleep) neither use CPU nor wait for it, so they do not count
    /// against the run; threads beyond the hardware threads wait for one
    /// another, which the cap on what they could have had accounts for.
    pub fn judge(threads: &[ThreadTimes], wall_ns: u64, hardware_threads: usize) -> Self {
        let cpu: u64 = threads.iter().map(|t| t.cpu_ns).sum();
        let wait: u64 = threads.iter().map(|t| t.wait_ns).sum();
        let capacity = wall_ns.saturating_mul(hardware_threads.max(1) as u64);
        let could = (cpu + wait).min(capacity);
        let share = if could == 0 {
            1.0
        } else {
            (cpu as f64 / could as f64).min(1.0)
        };
        Self {
            cpu_s: cpu as f64 / 1e9,
            runqueue_wait_s: wait as f64 / 1e9,
            wall_s: wall_ns as f64 / 1e9,
            hardware_threads,
            share,
            disturbed: share < MIN_CPU_SHARE,
        }
    }
}

/// An HDR histogram of nanosecond latencies, one per measured thread.
struct Hist(Histogram<u64>);

impl Hist {
    fn new() -> Self {
        Self(Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("valid histogram bounds"))
    }
}

impl LatencySink for Hist {
    fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns);
    }
}

/// Runs `op` on `threads` OS threads for `cfg.window` after `cfg.warmup`
/// (the loop is `waitless::measure::run_threads`).
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
    let run = run_threads(
        &LoopConfig {
            warmup: cfg.warmup,
            window: cfg.window,
            sample_every: LATENCY_SAMPLE_EVERY,
            min_calls_per_thread: MIN_CALLS_PER_THREAD,
            cache_misses: false,
        },
        threads,
        setup,
        op,
        Hist::new,
    );
    let mut merged = Hist::new().0;
    for t in &run.threads {
        merged.add(&t.latency.0).expect("same histogram bounds");
    }
    let hardware_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ops = run.ops();
    RunResult {
        threads,
        ops,
        elapsed: run.elapsed,
        ops_per_sec: ops as f64 / run.elapsed.as_secs_f64(),
        latency: Percentiles::from_histogram(&merged),
        cpu: run
            .times()
            .map(|t| CpuUse::judge(&t, run.elapsed.as_nanos() as u64, hardware_threads)),
    }
}

/// Runs `run` once, and again up to `retries` times while the run is
/// [disturbed](RunResult::disturbed); returns the last run and how many
/// retries it took.
pub fn run_with_retries(
    cfg: &RunConfig,
    threads: usize,
    retries: usize,
    run: impl Fn(&RunConfig, usize) -> RunResult,
) -> (RunResult, usize) {
    let mut r = run(cfg, threads);
    let mut n = 0;
    while r.disturbed() && n < retries {
        n += 1;
        r = run(cfg, threads);
    }
    (r, n)
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
    /// Runs kept that were still [disturbed](RunResult::disturbed) after
    /// their retries: when non-zero the measurement says more about the
    /// machine's load than about the contender.
    #[serde(default)]
    pub disturbed_runs: usize,
    /// Runs repeated because they were disturbed (not in `runs`).
    #[serde(default)]
    pub retries: usize,
    /// Every run kept, in the order they ran.
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
            disturbed_runs: runs.iter().filter(|r| r.disturbed()).count(),
            retries: 0,
            runs,
        }
    }

    /// The same, noting `retries` runs repeated because they were disturbed.
    pub fn with_retries(mut self, retries: usize) -> Self {
        self.retries = retries;
        self
    }

    /// `true` when a kept run was disturbed.
    pub fn is_disturbed(&self) -> bool {
        self.disturbed_runs > 0
    }
}

/// Runs `run(cfg, threads)` `repeats` times (at least once), each with up
/// to [`DEFAULT_RETRIES`] retries while disturbed, and summarises.
pub fn run_repeated(
    cfg: &RunConfig,
    threads: usize,
    repeats: usize,
    run: impl Fn(&RunConfig, usize) -> RunResult,
) -> Measurement {
    let mut retries = 0;
    let runs = (0..repeats.max(1))
        .map(|_| {
            let (r, n) = run_with_retries(cfg, threads, DEFAULT_RETRIES, &run);
            retries += n;
            r
        })
        .collect();
    Measurement::from_runs(runs).with_retries(retries)
}

/// How many times a disturbed run is repeated before it is kept and the
/// measurement marked disturbed.
pub const DEFAULT_RETRIES: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

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
    fn cpu_judgement_follows_the_run_queue_not_blocking_or_oversubscription() {
        let t = |cpu_ms: u64, wait_ms: u64| ThreadTimes {
            cpu_ns: cpu_ms * 1_000_000,
            wait_ns: wait_ms * 1_000_000,
        };
        let wall = 100_000_000;
        // Two spinning threads on two hardware threads, undisturbed.
        let c = CpuUse::judge(&[t(98, 2), t(97, 3)], wall, 2);
        assert!(!c.disturbed && c.share > 0.95, "{c:?}");
        // A third process took a third of each thread's time.
        let c = CpuUse::judge(&[t(66, 34), t(67, 33)], wall, 2);
        assert!(c.disturbed && c.share < 0.7, "{c:?}");
        // Lock waiters asleep: little CPU, no run-queue wait.
        let c = CpuUse::judge(&[t(30, 1), t(20, 1)], wall, 2);
        assert!(!c.disturbed, "{c:?}");
        // Four threads on two hardware threads wait for one another: they
        // got all the machine could give.
        let c = CpuUse::judge(&[t(50, 50); 4], wall, 2);
        assert!(!c.disturbed && (c.share - 1.0).abs() < 1e-9, "{c:?}");
        // The same four, with a third of the machine taken by someone else.
        let c = CpuUse::judge(&[t(33, 67); 4], wall, 2);
        assert!(c.disturbed, "{c:?}");
        assert_eq!(c.wall_s, 0.1);
    }

    #[test]
    fn retries_stop_at_the_first_undisturbed_run_or_the_bound() {
        let cfg = RunConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(1),
        };
        let calls = AtomicU64::new(0);
        let flaky = |_: &RunConfig, t: usize| {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            let mut r = fake(t, 1.0);
            r.cpu = Some(CpuUse::judge(
                &[ThreadTimes {
                    cpu_ns: 10,
                    wait_ns: if n < 2 { 90 } else { 0 },
                }],
                100,
                1,
            ));
            r
        };
        let (r, n) = run_with_retries(&cfg, 1, 5, flaky);
        assert_eq!((n, r.disturbed()), (2, false));
        calls.store(0, Ordering::Relaxed);
        let (r, n) = run_with_retries(&cfg, 1, 1, flaky);
        assert_eq!((n, r.disturbed()), (1, true));
        let m = Measurement::from_runs(vec![r, fake(1, 2.0)]);
        assert_eq!(m.disturbed_runs, 1);
        assert!(m.is_disturbed());
    }

    /// A workload and a deliberately spinning thread share one CPU: the
    /// workload's thread gets about half of it, and the run says so.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_spinning_thread_beside_the_workload_marks_the_run_disturbed() {
        use std::sync::atomic::AtomicBool;
        if ThreadTimes::now().is_none() {
            panic!("/proc/thread-self/schedstat is missing: the harness cannot see a disturbed machine here");
        }
        // SAFETY: a zeroed cpu_set_t is a valid empty set.
        let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `old` is a valid cpu_set_t of `size` bytes; 0 = this thread.
        assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut old) }, 0);
        let cpu = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: CPU_ISSET reads the set within its bounds (c < CPU_SETSIZE).
            .find(|&c| unsafe { libc::CPU_ISSET(c, &old) })
            .expect("this thread may run somewhere");
        // SAFETY: as above.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` < CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // Threads created from now on inherit the one-CPU mask.
        // SAFETY: `one` is a valid cpu_set_t of `size` bytes.
        assert_eq!(unsafe { libc::sched_setaffinity(0, size, &one) }, 0);
        let stop = AtomicBool::new(false);
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            let cfg = RunConfig {
                warmup: Duration::from_millis(10),
                window: Duration::from_millis(200),
            };
            let r = run_workload(
                &cfg,
                1,
                |_| 0u64,
                |x| {
                    *x = x.wrapping_add(1);
                    std::hint::black_box(*x);
                    1
                },
            );
            stop.store(true, Ordering::Relaxed);
            r
        });
        // SAFETY: `old` is the mask read above.
        assert_eq!(unsafe { libc::sched_setaffinity(0, size, &old) }, 0);
        let c = r.cpu.expect("schedstat read on every thread");
        assert_eq!(c.hardware_threads, 1, "{c:?}");
        assert_eq!(c.disturbed, c.share < MIN_CPU_SHARE);
        assert!(c.runqueue_wait_s > 0.0, "{c:?}");
        assert!(r.disturbed(), "the spinner took the CPU: {c:?}");
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
            cpu: None,
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
