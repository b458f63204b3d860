//! [`OptimizedChannel::benchmark_orderings`]: the same algorithm compiled
//! with each ordering strategy, measured side by side, with hardware cache
//! miss counters (`perf_event_open`) where the machine exposes them and CPU
//! time from the scheduler, on [`crate::measure::run_threads`], the
//! measurement loop `waitless-bench` runs every workload on.

use core::fmt;
use std::time::Duration;

use super::mpmc::OptimizedChannel;
use super::ordering::{AcquireRelease, Optimized, OrderingStrategy, SeqCstAll};
use crate::measure::{run_threads, LoopConfig, MeanLatency};

/// Measurement window per (strategy, producers/consumers) point used by
/// [`OptimizedChannel::benchmark_orderings`]: 3 strategies × 3 points ×
/// 40 ms ≈ 0.4 s in all.
///
/// ```
/// use waitless::channel::DEFAULT_POINT_DURATION;
/// // benchmark_orderings() = benchmark_orderings_for(DEFAULT_POINT_DURATION).
/// assert_eq!(DEFAULT_POINT_DURATION.as_millis(), 40);
/// ```
pub const DEFAULT_POINT_DURATION: Duration = Duration::from_millis(40);

/// The producer/consumer counts every strategy is measured at.
///
/// ```
/// use std::time::Duration;
/// use waitless::channel::OptimizedChannel;
/// use waitless::channel::POINTS;
/// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
/// let measured: Vec<_> = report.strategies[0]
///     .points
///     .iter()
///     .map(|p| (p.producers, p.consumers))
///     .collect();
/// assert_eq!(measured, POINTS);
/// ```
#[doc(hidden)] // describes benchmark_orderings' report, not an API to build on
pub const POINTS: [(usize, usize); 3] = [(1, 1), (2, 2), (4, 4)];

/// One operation in this many is timed individually for the mean latency.
const LATENCY_SAMPLE_EVERY: u64 = 32;

/// Every worker makes at least this many calls in a point's window.
const MIN_CALLS_PER_THREAD: u64 = LATENCY_SAMPLE_EVERY;

/// What one strategy (or one point of it) achieved.
///
/// ```
/// use std::time::Duration;
/// use waitless::channel::OptimizedChannel;
/// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
/// let r = report.optimized();
/// assert!((0.0..=1.0).contains(&r.cpu_utilization));
/// if let Some(m) = r.cache_misses_per_op {
///     assert!(m >= 0.0);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchmarkResults {
    /// Messages received per second (each one also sent).
    pub throughput_ops_per_second: u64,
    /// Mean duration of a successful `send` or `recv` call, sampled.
    pub average_latency_ns: u64,
    /// Hardware cache misses (`PERF_COUNT_HW_CACHE_MISSES`, user space) per
    /// successful `send` or `recv`; `None` where the counters are unavailable
    /// (virtual machines, `perf_event_paranoid`, non-Linux, Miri).
    pub cache_misses_per_op: Option<f64>,
    /// CPU time the worker threads consumed (from the scheduler,
    /// `/proc/thread-self/schedstat`) divided by wall time × worker threads:
    /// 1.0 means every worker was on a CPU the whole time; lower means it was
    /// descheduled (oversubscription) or blocked. At most 1.0 (a worker's
    /// last batch may run past a very short window). 0.0 where the OS does
    /// not report a thread's CPU time (outside Linux).
    pub cpu_utilization: f64,
}

/// One strategy at one producer/consumer count.
///
/// ```
/// use std::time::Duration;
/// use waitless::channel::OptimizedChannel;
/// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
/// let p = &report.strategies[0].points[0];
/// assert_eq!((p.producers, p.consumers), (1, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderingPoint {
    /// Producer threads.
    pub producers: usize,
    /// Consumer threads.
    pub consumers: usize,
    /// What was measured.
    pub results: BenchmarkResults,
}

/// One strategy over every point.
///
/// ```
/// use std::time::Duration;
/// use waitless::channel::OptimizedChannel;
/// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
/// let s = &report.strategies[2];
/// assert_eq!(s.strategy, "Optimized");
/// assert_eq!(s.points.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyReport {
    /// The strategy's name ([`OrderingStrategy::NAME`]).
    pub strategy: &'static str,
    /// All points together: messages over total wall time, sample-weighted
    /// latency, misses over all operations, time-weighted utilization.
    pub overall: BenchmarkResults,
    /// Each point on its own.
    pub points: Vec<OrderingPoint>,
}

/// The outcome of [`OptimizedChannel::benchmark_orderings`]: one
/// [`BenchmarkResults`] per strategy.
///
/// ```
/// use std::time::Duration;
/// use waitless::channel::OptimizedChannel;
/// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
/// assert_eq!(report.capacity, 16);
/// assert_eq!(report.point_duration, Duration::from_millis(1));
/// assert!(report.to_string().starts_with("strategy"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OrderingReport {
    /// Capacity of every channel measured.
    pub capacity: usize,
    /// Measurement window of each point.
    pub point_duration: Duration,
    /// `SeqCstAll`, `AcquireRelease`, `Optimized`, in that order.
    pub strategies: Vec<StrategyReport>,
}

impl OrderingReport {
    /// The overall results of the strategy called `name`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::OptimizedChannel;
    /// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
    /// assert!(report.get("AcquireRelease").is_some());
    /// assert!(report.get("Relaxed").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&BenchmarkResults> {
        self.strategies
            .iter()
            .find(|s| s.strategy == name)
            .map(|s| &s.overall)
    }

    /// Overall results of [`SeqCstAll`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::OptimizedChannel;
    /// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
    /// assert_eq!(Some(report.seq_cst_all()), report.get("SeqCstAll"));
    /// ```
    pub fn seq_cst_all(&self) -> &BenchmarkResults {
        self.get(SeqCstAll::NAME)
            .expect("every report measures SeqCstAll")
    }

    /// Overall results of [`AcquireRelease`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::OptimizedChannel;
    /// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
    /// assert_eq!(Some(report.acquire_release()), report.get("AcquireRelease"));
    /// ```
    pub fn acquire_release(&self) -> &BenchmarkResults {
        self.get(AcquireRelease::NAME)
            .expect("every report measures AcquireRelease")
    }

    /// Overall results of [`Optimized`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::OptimizedChannel;
    /// let report = OptimizedChannel::<u64>::new(16).benchmark_orderings_for(Duration::from_millis(1));
    /// assert_eq!(Some(report.optimized()), report.get("Optimized"));
    /// ```
    pub fn optimized(&self) -> &BenchmarkResults {
        self.get(Optimized::NAME)
            .expect("every report measures Optimized")
    }
}

impl fmt::Display for OrderingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<15} {:>7} {:>14} {:>10} {:>12} {:>6}",
            "strategy", "P/C", "msgs/s", "mean ns", "misses/op", "cpu"
        )?;
        for s in &self.strategies {
            let rows = s
                .points
                .iter()
                .map(|p| (format!("{}/{}", p.producers, p.consumers), &p.results))
                .chain(std::iter::once(("all".to_string(), &s.overall)));
            for (label, r) in rows {
                let misses = r
                    .cache_misses_per_op
                    .map_or_else(|| "n/a".to_string(), |m| format!("{m:.3}"));
                writeln!(
                    f,
                    "{:<15} {:>7} {:>14} {:>10} {:>12} {:>6.2}",
                    s.strategy,
                    label,
                    r.throughput_ops_per_second,
                    r.average_latency_ns,
                    misses,
                    r.cpu_utilization
                )?;
            }
        }
        Ok(())
    }
}

impl<T, O: OrderingStrategy> OptimizedChannel<T, O> {
    /// Measures the algorithm compiled with each ordering strategy
    /// ([`SeqCstAll`], [`AcquireRelease`], [`Optimized`]), each on a fresh
    /// `u64` channel of this channel's capacity, at 1/1, 2/2 and 4/4
    /// producers/consumers, [`DEFAULT_POINT_DURATION`] per point.
    ///
    /// `self` is not used beyond its capacity (its contents are untouched).
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    /// let report = OptimizedChannel::<u64>::new(64)
    ///     .benchmark_orderings_for(std::time::Duration::from_millis(2));
    /// assert_eq!(report.strategies.len(), 3);
    /// println!("{report}");
    /// ```
    pub fn benchmark_orderings(&self) -> OrderingReport {
        self.benchmark_orderings_for(DEFAULT_POINT_DURATION)
    }

    /// [`benchmark_orderings`](Self::benchmark_orderings) with a chosen
    /// measurement window per point.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::channel::OptimizedChannel;
    /// let ch = OptimizedChannel::<u64>::new(8);
    /// let report = ch.benchmark_orderings_for(Duration::from_millis(2));
    /// assert_eq!(report.point_duration, Duration::from_millis(2));
    /// assert_eq!(report.strategies.len(), 3);
    /// ```
    pub fn benchmark_orderings_for(&self, point_duration: Duration) -> OrderingReport {
        let capacity = self.capacity();
        OrderingReport {
            capacity,
            point_duration,
            strategies: vec![
                measure_strategy::<SeqCstAll>(capacity, point_duration),
                measure_strategy::<AcquireRelease>(capacity, point_duration),
                measure_strategy::<Optimized>(capacity, point_duration),
            ],
        }
    }
}

/// Raw sums from one point.
#[derive(Default, Clone, Copy)]
struct Sums {
    received: u64,
    ops: u64,
    sampled_ns: u64,
    samples: u64,
    misses: Option<u64>,
    cpu_ns: u64,
    thread_wall_ns: u64,
    wall_ns: u64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.received += o.received;
        self.ops += o.ops;
        self.sampled_ns += o.sampled_ns;
        self.samples += o.samples;
        self.misses = match (self.misses, o.misses) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.cpu_ns += o.cpu_ns;
        self.thread_wall_ns += o.thread_wall_ns;
        self.wall_ns += o.wall_ns;
    }

    fn results(&self) -> BenchmarkResults {
        let secs = self.wall_ns as f64 / 1e9;
        BenchmarkResults {
            throughput_ops_per_second: if secs > 0.0 {
                (self.received as f64 / secs) as u64
            } else {
                0
            },
            average_latency_ns: self.sampled_ns.checked_div(self.samples).unwrap_or(0),
            cache_misses_per_op: self
                .misses
                .filter(|_| self.ops > 0)
                .map(|m| m as f64 / self.ops as f64),
            // At most 1.0: a worker's CPU interval runs from its own start
            // to the end of the batch in which it sees the stop signal, so
            // over a window of a few milliseconds on a loaded machine it
            // can exceed the window the coordinator timed (1.60 was seen
            // with 3 ms windows while other tests ran). A thread cannot
            // use more CPU than wall time, so the excess is that skew.
            cpu_utilization: if self.thread_wall_ns > 0 {
                (self.cpu_ns as f64 / self.thread_wall_ns as f64).min(1.0)
            } else {
                0.0
            },
        }
    }
}

fn measure_strategy<O: OrderingStrategy>(capacity: usize, d: Duration) -> StrategyReport {
    let mut total = Sums {
        misses: Some(0),
        ..Sums::default()
    };
    let mut points = Vec::new();
    for (producers, consumers) in POINTS {
        let sums = measure_point::<O>(capacity, producers, consumers, d);
        total.add(&sums);
        points.push(OrderingPoint {
            producers,
            consumers,
            results: sums.results(),
        });
    }
    StrategyReport {
        strategy: O::NAME,
        overall: total.results(),
        points,
    }
}

fn measure_point<O: OrderingStrategy>(
    capacity: usize,
    producers: usize,
    consumers: usize,
    d: Duration,
) -> Sums {
    let ch: OptimizedChannel<u64, O> = OptimizedChannel::with_strategy(capacity);
    let cfg = LoopConfig {
        warmup: Duration::ZERO,
        window: d,
        sample_every: LATENCY_SAMPLE_EVERY,
        min_calls_per_thread: MIN_CALLS_PER_THREAD,
        cache_misses: true,
    };
    // Each worker's state: whether it produces, and its next message.
    let run = run_threads(
        &cfg,
        producers + consumers,
        |t| (t < producers, 0u64),
        |(producer, next)| {
            let ok = if *producer {
                *next += 1;
                ch.send(*next).is_ok()
            } else {
                ch.recv().is_some()
            };
            u64::from(ok)
        },
        MeanLatency::default,
    );
    let wall_ns = run.elapsed.as_nanos() as u64;
    let mut sums = Sums {
        received: run.threads[producers..].iter().map(|t| t.ops).sum(),
        ops: run.ops(),
        misses: run.cache_misses(),
        wall_ns,
        thread_wall_ns: wall_ns * run.threads.len() as u64,
        ..Sums::default()
    };
    for t in &run.threads {
        sums.sampled_ns += t.latency.sum_ns;
        sums.samples += t.latency.samples;
        sums.cpu_ns += t.times.map_or(0, |x| x.cpu_ns);
    }
    sums
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;

    // Not under Miri: it calls getrusage/perf_event_open through FFI.
    #[test]
    fn reports_every_strategy_and_point_with_sane_numbers() {
        let ch = OptimizedChannel::<String>::new(32);
        ch.send("kept".into()).unwrap();
        let report = ch.benchmark_orderings_for(Duration::from_millis(3));
        assert_eq!(report.capacity, 32);
        let names: Vec<_> = report.strategies.iter().map(|s| s.strategy).collect();
        assert_eq!(names, ["SeqCstAll", "AcquireRelease", "Optimized"]);
        for s in &report.strategies {
            assert_eq!(s.points.len(), POINTS.len());
            for r in s.points.iter().map(|p| &p.results).chain([&s.overall]) {
                assert!((0.0..=1.0).contains(&r.cpu_utilization), "{r:?}");
                if let Some(m) = r.cache_misses_per_op {
                    assert!(m.is_finite() && m >= 0.0);
                }
            }
        }
        // Across nine points at least one message gets through, even on a
        // loaded machine, and the channel we were called on is untouched.
        assert!(report
            .strategies
            .iter()
            .any(|s| s.overall.throughput_ops_per_second > 0));
        assert_eq!(ch.recv().as_deref(), Some("kept"));
        assert!(report.to_string().contains("Optimized"));
        let _ = report.optimized();
        let _ = report.seq_cst_all();
        let _ = report.acquire_release();
    }
}
