//! The analyzer: compare a lock-free implementation with a lock across thread
//! counts, say from the numbers when lock-free pays off, and profile where a
//! lock-free implementation contends.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::measure::{
    run_repeated, run_with_retries, run_workload, Measurement, RunConfig, RunResult,
    DEFAULT_RETRIES,
};
use crate::perf::CacheMissCounter;

/// Relative spread above which a measurement is called noisy.
pub const NOISY_SPREAD: f64 = 0.25;

/// Whether the difference between two measurements is not established by
/// their runs: their min–max ranges overlap, either side's spread exceeds
/// [`NOISY_SPREAD`], or either side was [disturbed](Measurement::is_disturbed).
/// No verdict ("faster", "choose it", a crossover) is drawn from such a pair.
pub fn within_noise(a: &Measurement, b: &Measurement) -> bool {
    let overlap = a.min_ops_per_sec <= b.max_ops_per_sec && b.min_ops_per_sec <= a.max_ops_per_sec;
    overlap
        || a.spread > NOISY_SPREAD
        || b.spread > NOISY_SPREAD
        || a.is_disturbed()
        || b.is_disturbed()
}

/// Measures lock-free implementations against lock-based ones.
///
/// Every measurement is `repeats` runs of a fixed window after a short
/// warm-up, on OS threads that start together; the result of a measurement is
/// the median run with its spread (see [`Measurement`]).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use waitless_bench::{analyze_lock_free_benefits, LockFreePerformanceAnalyzer};
///
/// let analyzer = LockFreePerformanceAnalyzer::new(Duration::from_millis(20))
///     .warmup(Duration::from_millis(2))
///     .repeats(3);
///
/// // One call of each closure is one operation; every thread calls it in a
/// // loop. The lock-free side is a compare-exchange retry loop (a Treiber
/// // push without the node); the lock side guards a counter with a Mutex.
/// let head = Arc::new(AtomicU64::new(0));
/// let lock_free = move || {
///     let mut cur = head.load(Relaxed);
///     while let Err(seen) = head.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
///         cur = seen;
///     }
/// };
/// let counter = Arc::new(Mutex::new(0u64));
/// let mutex = move || *counter.lock().unwrap() += 1;
///
/// let results = analyzer.compare_implementations(lock_free, mutex, vec![1, 2, 4]);
/// assert_eq!(results.points.len(), 3);
/// assert!(results.points.iter().all(|p| p.lock_free.median_ops_per_sec > 0.0));
///
/// let analysis = analyze_lock_free_benefits(&results);
/// assert!(analysis.maximum_improvement_factor > 0.0);
/// for line in &analysis.recommendations {
///     println!("{line}");
/// }
/// ```
///
/// Workloads that need per-thread state (roles, RNGs, handles) or a fresh
/// instance per run use [`compare_workloads`](Self::compare_workloads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockFreePerformanceAnalyzer {
    window: Duration,
    warmup: Duration,
    repeats: usize,
    thread_counts: Vec<usize>,
}

/// The default warm-up: a tenth of the window, at most 100 ms.
fn default_warmup(window: Duration) -> Duration {
    (window / 10).min(Duration::from_millis(100))
}

impl LockFreePerformanceAnalyzer {
    /// An analyzer that measures each run for `measurement_duration`.
    ///
    /// Defaults: warm-up a tenth of the window (at most 100 ms), 3 repeats,
    /// thread counts 1, 2, 4, 8.
    ///
    /// # Panics
    /// If `measurement_duration` is zero.
    pub fn new(measurement_duration: Duration) -> Self {
        assert!(
            !measurement_duration.is_zero(),
            "the measurement duration must be positive"
        );
        Self {
            window: measurement_duration,
            warmup: default_warmup(measurement_duration),
            repeats: 3,
            thread_counts: vec![1, 2, 4, 8],
        }
    }

    /// Sets the warm-up before each run's window. It is capped at a fifth of
    /// the measurement window: a longer warm-up only spends time.
    pub fn warmup(mut self, warmup: Duration) -> Self {
        self.warmup = warmup.min(self.window / 5);
        self
    }

    /// Sets how many runs make one measurement (at least 1; odd numbers give
    /// a true median).
    pub fn repeats(mut self, repeats: usize) -> Self {
        self.repeats = repeats.max(1);
        self
    }

    /// Sets the default thread counts (used by [`Self::profile_contention`],
    /// and by [`Self::compare_implementations`] when it is given none).
    ///
    /// # Panics
    /// If a count is zero.
    pub fn thread_counts(mut self, counts: Vec<usize>) -> Self {
        assert!(
            counts.iter().all(|&t| t > 0),
            "thread counts must be positive"
        );
        self.thread_counts = counts;
        self
    }

    /// The per-run configuration (warm-up and window).
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            warmup: self.warmup,
            window: self.window,
        }
    }

    /// The measurement window of one run.
    pub fn measurement_duration(&self) -> Duration {
        self.window
    }

    /// The warm-up before each run.
    pub fn warmup_duration(&self) -> Duration {
        self.warmup
    }

    /// Runs per measurement.
    pub fn repeat_count(&self) -> usize {
        self.repeats
    }

    /// The default thread counts.
    pub fn default_thread_counts(&self) -> &[usize] {
        &self.thread_counts
    }

    /// Measures `run` (which builds a fresh instance and runs it, e.g. with
    /// [`run_workload`]) at `threads` threads, `repeats` times.
    pub fn measure(
        &self,
        threads: usize,
        run: impl Fn(usize, &RunConfig) -> RunResult,
    ) -> Measurement {
        run_repeated(&self.run_config(), threads, self.repeats, |cfg, t| {
            run(t, cfg)
        })
    }

    /// Measures two implementations of one operation at every thread count
    /// (the seed's signature): each call of `lock_free_impl` or `mutex_impl` is one
    /// operation, and every thread calls it in a loop for the measurement
    /// window. The closures share whatever they captured across threads and
    /// runs (an `Arc` of the structure, typically). An empty `thread_counts`
    /// uses the analyzer's defaults.
    ///
    /// Runs interleave the two sides (see [`compare_workloads`](Self::compare_workloads)).
    ///
    /// # Panics
    /// If a thread count is zero.
    pub fn compare_implementations<F1, F2, T, U>(
        &self,
        lock_free_impl: F1,
        mutex_impl: F2,
        thread_counts: Vec<usize>,
    ) -> ComparisonResults
    where
        F1: Fn() -> T + Send + Sync + 'static,
        F2: Fn() -> U + Send + Sync + 'static,
        T: Send + 'static,
        U: Send + 'static,
    {
        self.compare_workloads(
            |threads, cfg| call_in_a_loop(cfg, threads, &lock_free_impl),
            |threads, cfg| call_in_a_loop(cfg, threads, &mutex_impl),
            thread_counts,
        )
    }

    /// The general form of [`compare_implementations`](Self::compare_implementations):
    /// each closure gets the thread count and the run configuration and
    /// returns one run's result, normally by building a fresh instance and
    /// measuring it with [`run_workload`] (which gives per-thread setup).
    /// Both are run at every thread count, `repeats` times each,
    /// interleaved (lock-free, mutex, lock-free, mutex…) so slow drift of
    /// the machine hits both alike. An empty `thread_counts` uses the
    /// analyzer's defaults.
    ///
    /// # Panics
    /// If a thread count is zero.
    pub fn compare_workloads<L, M>(
        &self,
        lock_free: L,
        mutex: M,
        thread_counts: Vec<usize>,
    ) -> ComparisonResults
    where
        L: Fn(usize, &RunConfig) -> RunResult,
        M: Fn(usize, &RunConfig) -> RunResult,
    {
        let counts = if thread_counts.is_empty() {
            self.thread_counts.clone()
        } else {
            thread_counts
        };
        assert!(
            counts.iter().all(|&t| t > 0),
            "thread counts must be positive"
        );
        let cfg = self.run_config();
        let mut lf = Vec::with_capacity(counts.len());
        let mut mx = Vec::with_capacity(counts.len());
        let retry = |run: &dyn Fn(usize, &RunConfig) -> RunResult, t, retries: &mut usize| {
            let (r, n) = run_with_retries(&cfg, t, DEFAULT_RETRIES, |c, t| run(t, c));
            *retries += n;
            r
        };
        for &t in &counts {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (mut ra, mut rb) = (0, 0);
            for _ in 0..self.repeats {
                a.push(retry(&lock_free, t, &mut ra));
                b.push(retry(&mutex, t, &mut rb));
            }
            lf.push(Measurement::from_runs(a).with_retries(ra));
            mx.push(Measurement::from_runs(b).with_retries(rb));
        }
        ComparisonResults::from_measurements("lock-free", "mutex", lf, mx)
            .expect("both sides measured at the same thread counts")
    }

    /// Reads the numbers: where lock-free starts to win, by how much, and
    /// what to do about it. See [`analyze_lock_free_benefits`].
    pub fn analyze_lock_free_benefits(&self, results: &ComparisonResults) -> BenefitAnalysis {
        analyze_lock_free_benefits(results)
    }

    /// Runs `f` (one call = one operation) on the largest default thread
    /// count for `duration`,
    /// with the [`waitless::contention`] counters on, and reports CAS success
    /// rate, retries per operation, hot spots and — where the CPU exposes
    /// them to `perf_event_open` — hardware cache-miss events, the portable
    /// proxy for cache-line transfers.
    ///
    /// The counters are process-wide: profile one thing at a time. Only
    /// waitless code (and code that reports to a
    /// [`waitless::contention::Site`]) shows up in the CAS numbers.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    /// use std::time::Duration;
    /// use waitless::contention::Site;
    /// use waitless_bench::LockFreePerformanceAnalyzer;
    ///
    /// static PUSH: Site = Site::new("example.push");
    /// let head = std::sync::Arc::new(AtomicU64::new(0));
    /// let analyzer = LockFreePerformanceAnalyzer::new(Duration::from_millis(20))
    ///     .thread_counts(vec![2]);
    /// let profile = analyzer.profile_contention(
    ///     move || {
    ///         let mut cur = head.load(Relaxed);
    ///         loop {
    ///             match head.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
    ///                 Ok(_) => { PUSH.record(true); return; }
    ///                 Err(seen) => { PUSH.record(false); cur = seen; }
    ///             }
    ///         }
    ///     },
    ///     Duration::from_millis(20),
    /// );
    /// // CAS numbers exist when waitless-bench is built with `--features contention`.
    /// if waitless::contention::is_compiled_in() {
    ///     assert_eq!(profile.hot_spots[0].site, "example.push");
    ///     assert!(profile.cas_success_rate.unwrap() > 0.0);
    /// }
    /// println!("{}", profile.summary());
    /// ```
    pub fn profile_contention<F>(&self, f: F, duration: Duration) -> ContentionProfile
    where
        F: Fn() + Send + Sync + 'static,
    {
        let threads = self.thread_counts.iter().copied().max().unwrap_or(1);
        let cfg = RunConfig {
            warmup: self.warmup.min(duration / 5),
            window: duration,
        };
        profile_with(threads, || call_in_a_loop(&cfg, threads, &f))
    }
}

/// Runs `f` on `threads` threads for one window; one call is one operation.
fn call_in_a_loop<T>(cfg: &RunConfig, threads: usize, f: &(impl Fn() -> T + Sync)) -> RunResult {
    run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            std::hint::black_box(f());
            1
        },
    )
}

/// Runs `run` once with the contention counters (and, where available, a
/// hardware cache-miss counter) on, and turns the counts into a profile.
///
/// `run` must create its threads itself (as [`run_workload`] does): the
/// hardware counter follows threads created after it is opened.
pub fn profile_with(threads: usize, run: impl FnOnce() -> RunResult) -> ContentionProfile {
    use waitless::contention;
    let misses = CacheMissCounter::open_inherited();
    contention::enable(true);
    let before = contention::snapshot();
    if let Some(m) = &misses {
        m.start();
    }
    let result = run();
    let cache_misses = misses.and_then(|m| m.stop_and_read());
    let delta = contention::snapshot().since(&before);
    contention::enable(false);
    ContentionProfile::from_counts(threads, &result, &delta, cache_misses)
}

/// Both sides of a comparison at each thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonResults {
    /// Name of the lock-free contender.
    pub lock_free_name: String,
    /// Name of the lock-based contender.
    pub mutex_name: String,
    /// One point per thread count, in the order measured.
    pub points: Vec<ComparisonPoint>,
}

/// Both sides at one thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonPoint {
    /// Threads that ran.
    pub threads: usize,
    /// The lock-free implementation.
    pub lock_free: Measurement,
    /// The lock-based implementation.
    pub mutex: Measurement,
    /// `lock_free.median / mutex.median` (above 1: lock-free is faster).
    pub improvement_factor: f64,
}

impl ComparisonResults {
    /// Pairs measurements taken at the same thread counts. `None` when the
    /// two lists do not cover the same thread counts in the same order.
    pub fn from_measurements(
        lock_free_name: &str,
        mutex_name: &str,
        lock_free: Vec<Measurement>,
        mutex: Vec<Measurement>,
    ) -> Option<Self> {
        if lock_free.len() != mutex.len()
            || lock_free
                .iter()
                .zip(&mutex)
                .any(|(a, b)| a.threads != b.threads)
        {
            return None;
        }
        let points = lock_free
            .into_iter()
            .zip(mutex)
            .map(|(lf, mx)| ComparisonPoint {
                threads: lf.threads,
                improvement_factor: ratio(lf.median_ops_per_sec, mx.median_ops_per_sec),
                lock_free: lf,
                mutex: mx,
            })
            .collect();
        Some(Self {
            lock_free_name: lock_free_name.to_owned(),
            mutex_name: mutex_name.to_owned(),
            points,
        })
    }
}

/// `a / b`, with 0 when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// What the numbers say about lock-free versus the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenefitAnalysis {
    /// The smallest measured thread count from which lock-free is faster than
    /// the lock (by median) at that count and every larger one measured;
    /// `None` when it is not faster at the largest count.
    pub crossover_thread_count: Option<usize>,
    /// The best `lock_free / mutex` ratio over all thread counts (above 1:
    /// lock-free wins somewhere; below 1: the lock wins everywhere).
    pub maximum_improvement_factor: f64,
    /// Thread count of the best ratio.
    pub best_thread_count: Option<usize>,
    /// The ratio at each thread count, sorted by thread count.
    pub improvement_by_threads: Vec<ThreadRatio>,
    /// Advice written from the numbers above.
    pub recommendations: Vec<String>,
}

/// The improvement factor at one thread count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThreadRatio {
    /// Threads that ran.
    pub threads: usize,
    /// `lock_free / mutex` by median.
    pub factor: f64,
    /// `true` when the difference is not established by these runs (see
    /// [`within_noise`]): the ratio is shown as "within noise", not as a fact.
    pub within_noise: bool,
}

/// Formats an operation rate with a metric suffix (`12.3M`).
pub fn human_rate(v: f64) -> String {
    let (scaled, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if scaled >= 100.0 {
        format!("{scaled:.0}{suffix}")
    } else if scaled >= 10.0 {
        format!("{scaled:.1}{suffix}")
    } else {
        format!("{scaled:.2}{suffix}")
    }
}

/// Reads a comparison: the crossover thread count, the best improvement
/// factor, and recommendations written from those numbers, the spread of the
/// runs and the machine's core count.
pub fn analyze_lock_free_benefits(results: &ComparisonResults) -> BenefitAnalysis {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    analyze_with_cores(results, cores)
}

/// [`analyze_lock_free_benefits`] for a machine with `cores` hardware threads.
pub fn analyze_with_cores(results: &ComparisonResults, cores: usize) -> BenefitAnalysis {
    let mut points: Vec<&ComparisonPoint> = results.points.iter().collect();
    points.sort_by_key(|p| p.threads);
    let by_threads: Vec<ThreadRatio> = points
        .iter()
        .map(|p| ThreadRatio {
            threads: p.threads,
            factor: p.improvement_factor,
            within_noise: within_noise(&p.lock_free, &p.mutex),
        })
        .collect();

    // Walk down from the largest count while lock-free keeps winning by
    // more than the noise.
    let mut crossover = None;
    for r in by_threads.iter().rev() {
        if r.factor > 1.0 && !r.within_noise {
            crossover = Some(r.threads);
        } else {
            break;
        }
    }
    let max_factor = by_threads.iter().map(|r| r.factor).fold(0.0, f64::max);
    // Verdicts only from established ratios.
    let established: Vec<ThreadRatio> = by_threads
        .iter()
        .copied()
        .filter(|r| !r.within_noise)
        .collect();
    let best = established
        .iter()
        .copied()
        .max_by(|a, b| a.factor.total_cmp(&b.factor));

    let lf = &results.lock_free_name;
    let mx = &results.mutex_name;
    let mut rec = Vec::new();
    if by_threads.is_empty() {
        rec.push("No thread count was measured; nothing to recommend.".to_owned());
        return BenefitAnalysis {
            crossover_thread_count: None,
            maximum_improvement_factor: 0.0,
            best_thread_count: None,
            improvement_by_threads: by_threads,
            recommendations: rec,
        };
    }
    let first = by_threads[0];
    let last = by_threads[by_threads.len() - 1];
    let shown = |r: &ThreadRatio| {
        if r.within_noise {
            format!("within noise at {}", r.threads)
        } else {
            format!("{:.2}x at {}", r.factor, r.threads)
        }
    };
    if established.is_empty() {
        rec.push(format!(
            "{lf} versus {mx} is within noise at every measured thread count (ranges overlap, spread above {:.0}%, or the machine was busy): no verdict from this run; rerun on a quiet machine with more repeats.",
            NOISY_SPREAD * 100.0
        ));
    }
    match crossover {
        _ if established.is_empty() => {}
        Some(t) if t == first.threads => rec.push(format!(
            "{lf} is faster than {mx} at every measured thread count ({:.2}x at {} thread{}, {:.2}x at {}): choose it wherever this operation mix is hot.",
            first.factor,
            first.threads,
            plural(first.threads),
            last.factor,
            last.threads
        )),
        Some(t) => {
            let below: Vec<String> = by_threads
                .iter()
                .filter(|r| r.threads < t)
                .map(shown)
                .collect();
            rec.push(format!(
                "Crossover at {t} threads: {mx} is as fast or faster below ({}); {lf} wins from {t} threads on ({:.2}x at {}). Choose {lf} when {t} or more threads hit it at once.",
                below.join(", "),
                last.factor,
                last.threads
            ));
        }
        None if best.is_some_and(|b| b.factor > 1.0) => {
            let b = best.expect("checked");
            rec.push(format!(
                "No stable crossover: {lf} wins at {} thread{} ({:.2}x) but not at {} ({}). The lock is the safer default here; measure your real thread count.",
                b.threads,
                plural(b.threads),
                b.factor,
                last.threads,
                shown(&last)
            ));
        }
        None if established.len() == by_threads.len() => rec.push(format!(
            "{mx} is faster at every measured thread count (best ratio {:.2}x at {}): keep the lock for this workload unless you need lock-freedom's progress guarantee (no blocking when a thread is preempted holding a lock).",
            max_factor,
            best.map_or(0, |b| b.threads)
        )),
        None => rec.push(format!(
            "{mx} is as fast or faster wherever the difference is established ({}): keep the lock for this workload unless you need lock-freedom's progress guarantee.",
            by_threads.iter().map(shown).collect::<Vec<_>>().join(", ")
        )),
    }
    if let Some(b) = best {
        if b.factor > 1.0 {
            let p = points
                .iter()
                .find(|p| p.threads == b.threads)
                .expect("best comes from the points");
            rec.push(format!(
                "Largest gain {:.2}x at {} thread{}: {} vs {} {}/s (medians).",
                b.factor,
                b.threads,
                plural(b.threads),
                human_rate(p.lock_free.median_ops_per_sec),
                human_rate(p.mutex.median_ops_per_sec),
                "ops"
            ));
        }
    }
    let noisy: Vec<String> = by_threads
        .iter()
        .filter(|r| r.within_noise)
        .map(|r| r.threads.to_string())
        .collect();
    if !noisy.is_empty() {
        rec.push(format!(
            "At {} thread(s) the comparison is within noise (min-max ranges overlap, a spread above the threshold, or a disturbed run): rerun with more repeats or a longer window on a quiet machine before deciding on those counts.",
            noisy.join(", ")
        ));
    }
    let spread_max = points
        .iter()
        .flat_map(|p| [p.lock_free.spread, p.mutex.spread])
        .fold(0.0f64, f64::max);
    if spread_max > NOISY_SPREAD {
        rec.push(format!(
            "Runs differ by up to {:.0}% of their median: the machine is noisy (shared or oversubscribed); trust ratios measured in the same run more than absolute rates.",
            spread_max * 100.0
        ));
    }
    let over: Vec<String> = by_threads
        .iter()
        .filter(|r| r.threads > cores)
        .map(|r| r.threads.to_string())
        .collect();
    if !over.is_empty() {
        rec.push(format!(
            "{} thread(s) exceed this machine's {} hardware thread{}: those points measure preemption (a lock holder descheduled stalls every waiter; a preempted lock-free thread stalls no one), not parallel scaling.",
            over.join(", "),
            cores,
            plural(cores)
        ));
    }
    let disturbed: Vec<String> = points
        .iter()
        .filter(|p| p.lock_free.is_disturbed() || p.mutex.is_disturbed())
        .map(|p| p.threads.to_string())
        .collect();
    if !disturbed.is_empty() {
        rec.push(format!(
            "At {} thread(s) a run's threads did not get the CPU they needed even after retries (another process was running): those measurements are marked disturbed.",
            disturbed.join(", ")
        ));
    }
    BenefitAnalysis {
        crossover_thread_count: crossover,
        maximum_improvement_factor: max_factor,
        best_thread_count: by_threads
            .iter()
            .max_by(|a, b| a.factor.total_cmp(&b.factor))
            .map(|b| b.threads),
        improvement_by_threads: by_threads,
        recommendations: rec,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Where a lock-free implementation contends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentionProfile {
    /// Threads that ran.
    pub threads: usize,
    /// Length of the profiled window.
    #[serde(with = "crate::measure::secs")]
    pub elapsed: Duration,
    /// Operations completed in the window.
    pub operations: u64,
    /// Throughput during profiling (counters on, so slightly below an
    /// unprofiled run).
    pub ops_per_sec: f64,
    /// CAS attempts reported by every site (warm-up included).
    pub cas_attempts: u64,
    /// Failed CAS attempts (retries).
    pub cas_failures: u64,
    /// `successes / attempts`; `None` when nothing reported a CAS.
    pub cas_success_rate: Option<f64>,
    /// Failed CAS attempts per completed operation.
    pub average_retries_per_op: f64,
    /// Hardware cache-miss events (`PERF_COUNT_HW_CACHE_MISSES`, user space,
    /// all threads of the run), the portable proxy for cache-line
    /// transfers; `None` where the CPU or the kernel does not expose
    /// hardware counters (most VMs, `perf_event_paranoid` > 2).
    pub cache_line_transfer_events: Option<u64>,
    /// `cache_line_transfer_events / operations`, when measured.
    pub cache_line_transfers_per_op: Option<f64>,
    /// Sites with at least one attempt, most failures first.
    pub hot_spots: Vec<HotSpot>,
}

/// One CAS site's share of the contention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotSpot {
    /// The site's name (`module.operation`).
    pub site: String,
    /// CAS attempts.
    pub attempts: u64,
    /// Failed attempts.
    pub failures: u64,
    /// `failures / attempts`.
    pub failure_rate: f64,
}

impl ContentionProfile {
    /// Builds a profile from a run and the counter deltas taken around it.
    pub fn from_counts(
        threads: usize,
        result: &RunResult,
        delta: &waitless::contention::ContentionSnapshot,
        cache_misses: Option<u64>,
    ) -> Self {
        let attempts = delta.attempts();
        let failures = delta.failures();
        let ops = result.ops;
        Self {
            threads,
            elapsed: result.elapsed,
            operations: ops,
            ops_per_sec: result.ops_per_sec,
            cas_attempts: attempts,
            cas_failures: failures,
            cas_success_rate: (attempts > 0)
                .then(|| (attempts - failures) as f64 / attempts as f64),
            average_retries_per_op: if ops > 0 {
                failures as f64 / ops as f64
            } else {
                0.0
            },
            cache_line_transfer_events: cache_misses,
            cache_line_transfers_per_op: cache_misses
                .filter(|_| ops > 0)
                .map(|m| m as f64 / ops as f64),
            hot_spots: delta
                .sites
                .iter()
                .map(|s| HotSpot {
                    site: s.name.to_owned(),
                    attempts: s.attempts,
                    failures: s.failures,
                    failure_rate: ratio(s.failures as f64, s.attempts as f64),
                })
                .collect(),
        }
    }

    /// Whether the profile has anything to say: a CAS site reported, or
    /// hardware counters counted. Without the `contention` feature on a
    /// machine without exposed counters, it has not.
    pub fn has_findings(&self) -> bool {
        self.cas_attempts > 0 || self.cache_line_transfer_events.is_some()
    }

    /// One line for a table or a log.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        match self.cas_success_rate {
            Some(rate) => {
                let _ = write!(
                    s,
                    "CAS success {:.2}%, {:.4} retries/op",
                    rate * 100.0,
                    self.average_retries_per_op
                );
            }
            None => s.push_str("no CAS site reported"),
        }
        if let Some(h) = self.hot_spots.first() {
            let _ = write!(
                s,
                ", hottest {} ({:.2}% failed)",
                h.site,
                h.failure_rate * 100.0
            );
        }
        match self.cache_line_transfers_per_op {
            Some(m) => {
                let _ = write!(s, ", {m:.2} cache misses/op");
            }
            None => s.push_str(", no hardware counters"),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Percentiles;

    fn m(threads: usize, lo: f64, med: f64, hi: f64) -> Measurement {
        let run = |v: f64| RunResult {
            threads,
            ops: v as u64,
            elapsed: Duration::from_secs(1),
            ops_per_sec: v,
            latency: Percentiles::default(),
            cpu: None,
        };
        Measurement::from_runs(vec![run(lo), run(med), run(hi)])
    }

    fn cmp(points: &[(usize, f64, f64)]) -> ComparisonResults {
        let lf = points
            .iter()
            .map(|&(t, l, _)| m(t, l * 0.99, l, l * 1.01))
            .collect();
        let mx = points
            .iter()
            .map(|&(t, _, x)| m(t, x * 0.99, x, x * 1.01))
            .collect();
        ComparisonResults::from_measurements("lf", "mx", lf, mx).unwrap()
    }

    #[test]
    fn crossover_is_where_lock_free_starts_winning_for_good() {
        let r = cmp(&[
            (1, 50.0, 100.0),
            (2, 90.0, 100.0),
            (4, 150.0, 100.0),
            (8, 300.0, 100.0),
        ]);
        let a = analyze_with_cores(&r, 16);
        assert_eq!(a.crossover_thread_count, Some(4));
        assert!((a.maximum_improvement_factor - 3.0).abs() < 1e-9);
        assert_eq!(a.best_thread_count, Some(8));
        assert!(a.recommendations[0].contains("Crossover at 4 threads"));
        assert_eq!(a.improvement_by_threads.len(), 4);
    }

    #[test]
    fn winning_everywhere_crosses_over_at_the_smallest_count() {
        let r = cmp(&[(2, 300.0, 100.0), (1, 200.0, 100.0)]);
        let a = analyze_with_cores(&r, 16);
        assert_eq!(a.crossover_thread_count, Some(1));
        assert!(a.recommendations[0].contains("every measured thread count"));
    }

    #[test]
    fn losing_at_the_largest_count_means_no_crossover() {
        let r = cmp(&[(1, 50.0, 100.0), (2, 120.0, 100.0), (4, 80.0, 100.0)]);
        let a = analyze_with_cores(&r, 16);
        assert_eq!(a.crossover_thread_count, None);
        assert!((a.maximum_improvement_factor - 1.2).abs() < 1e-9);
        assert!(a.recommendations[0].contains("No stable crossover"));

        let r = cmp(&[(1, 50.0, 100.0), (2, 60.0, 100.0)]);
        let a = analyze_with_cores(&r, 16);
        assert_eq!(a.crossover_thread_count, None);
        assert!(a.maximum_improvement_factor < 1.0);
        assert!(a.recommendations[0].contains("faster at every measured thread count"));
    }

    #[test]
    fn overlap_and_oversubscription_are_called_out() {
        let lf = vec![
            m(1, 90.0, 100.0, 110.0),
            m(2, 50.0, 100.0, 150.0),
            m(4, 180.0, 200.0, 220.0),
        ];
        let mx = vec![
            m(1, 95.0, 100.0, 105.0),
            m(2, 10.0, 11.0, 12.0),
            m(4, 18.0, 20.0, 22.0),
        ];
        let r = ComparisonResults::from_measurements("lf", "mx", lf, mx).unwrap();
        let a = analyze_with_cores(&r, 2);
        // 1: the ranges overlap; 2: no overlap, but a 100% spread.
        assert!(a.improvement_by_threads[0].within_noise);
        assert!(a.improvement_by_threads[1].within_noise);
        assert!(!a.improvement_by_threads[2].within_noise);
        // The crossover needs established wins: only 4 qualifies.
        assert_eq!(a.crossover_thread_count, Some(4));
        let all = a.recommendations.join("\n");
        assert!(
            all.contains("within noise at 1, within noise at 2"),
            "{all}"
        );
        assert!(
            all.contains("At 1, 2 thread(s) the comparison is within noise"),
            "{all}"
        );
        assert!(all.contains("4 thread(s) exceed this machine's 2"), "{all}");
        assert!(all.contains("noisy"), "{all}");
    }

    #[test]
    fn disturbed_or_noisy_everywhere_gives_no_verdict() {
        let mut lf = m(2, 290.0, 300.0, 310.0);
        lf.disturbed_runs = 1;
        let r = ComparisonResults::from_measurements(
            "lf",
            "mx",
            vec![m(1, 100.0, 200.0, 300.0), lf],
            vec![m(1, 10.0, 10.0, 10.0), m(2, 10.0, 10.0, 10.0)],
        )
        .unwrap();
        let a = analyze_with_cores(&r, 2);
        assert!(a.improvement_by_threads.iter().all(|r| r.within_noise));
        assert_eq!(a.crossover_thread_count, None);
        let all = a.recommendations.join("\n");
        assert!(
            all.contains("within noise at every measured thread count"),
            "{all}"
        );
        assert!(!all.contains("hoose"), "{all}");
        assert!(!all.contains("Largest gain"), "{all}");
        assert!(all.contains("marked disturbed"), "{all}");
    }

    #[test]
    fn mismatched_thread_counts_are_rejected() {
        let r = ComparisonResults::from_measurements(
            "lf",
            "mx",
            vec![m(1, 1.0, 1.0, 1.0)],
            vec![m(2, 1.0, 1.0, 1.0)],
        );
        assert!(r.is_none());
    }

    #[test]
    fn warmup_is_capped_at_a_fifth_of_the_window() {
        let a = LockFreePerformanceAnalyzer::new(Duration::from_millis(100))
            .warmup(Duration::from_secs(1));
        assert_eq!(a.warmup_duration(), Duration::from_millis(20));
        let a = LockFreePerformanceAnalyzer::new(Duration::from_secs(10));
        assert_eq!(a.warmup_duration(), Duration::from_millis(100));
        assert!(a.warmup_duration() <= a.measurement_duration() / 5);
    }

    #[test]
    fn profile_counts_cas_sites_and_operations() {
        static SITE: waitless::contention::Site = waitless::contention::Site::new("test.profile");
        let a = LockFreePerformanceAnalyzer::new(Duration::from_millis(20))
            .thread_counts(vec![2])
            .warmup(Duration::ZERO);
        let p = a.profile_contention(
            || {
                SITE.record(true);
                SITE.record(false);
            },
            Duration::from_millis(20),
        );
        assert_eq!(p.threads, 2);
        assert!(p.operations > 0);
        if !waitless::contention::is_compiled_in() {
            // Built without `--features contention`: nothing to report.
            assert!(p.hot_spots.is_empty());
            assert!(p.cas_success_rate.is_none());
            return;
        }
        let h = p
            .hot_spots
            .iter()
            .find(|h| h.site == "test.profile")
            .expect("site reported");
        assert_eq!(h.attempts, 2 * h.failures);
        // Every call records one failure, and warm-up calls count too.
        assert!(p.average_retries_per_op >= 1.0);
        assert!(p.cas_success_rate.is_some());
    }

    #[test]
    fn human_rate_uses_metric_suffixes() {
        assert_eq!(human_rate(1_234_567.0), "1.23M");
        assert_eq!(human_rate(98_500_000.0), "98.5M");
        assert_eq!(human_rate(2.5e9), "2.50G");
        assert_eq!(human_rate(512.0), "512");
    }
}
