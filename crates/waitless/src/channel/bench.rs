//! [`OptimizedChannel::benchmark_orderings`]: the same algorithm compiled
//! with each ordering strategy, measured side by side, with hardware cache
//! miss counters (`perf_event_open`) where the machine exposes them and CPU
//! time from `getrusage`, both from [`crate::measure`], the implementation
//! `waitless-bench` uses too.

use core::fmt;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::mpmc::OptimizedChannel;
use super::ordering::{AcquireRelease, Optimized, OrderingStrategy, SeqCstAll};
use crate::measure::{thread_cpu_ns, CacheMissCounter};
use crate::sync::atomic::{AtomicBool, Ordering};

/// Measurement window per (strategy, producers/consumers) point used by
/// [`OptimizedChannel::benchmark_orderings`]: 3 strategies × 3 points ×
/// 40 ms ≈ 0.4 s in all.
pub const DEFAULT_POINT_DURATION: Duration = Duration::from_millis(40);

/// The producer/consumer counts every strategy is measured at.
#[doc(hidden)] // describes benchmark_orderings' report, not an API to build on
pub const POINTS: [(usize, usize); 3] = [(1, 1), (2, 2), (4, 4)];

/// One operation in this many is timed individually for the mean latency.
const LATENCY_SAMPLE_EVERY: u64 = 32;

/// What one strategy (or one point of it) achieved.
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
    /// CPU time the worker threads consumed (user + system, from
    /// `getrusage`) divided by wall time × worker threads: 1.0 means every
    /// worker was on a CPU the whole time; lower means it was descheduled
    /// (oversubscription) or blocked.
    pub cpu_utilization: f64,
}

/// One strategy at one producer/consumer count.
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
    pub fn get(&self, name: &str) -> Option<&BenchmarkResults> {
        self.strategies
            .iter()
            .find(|s| s.strategy == name)
            .map(|s| &s.overall)
    }

    /// Overall results of [`SeqCstAll`].
    pub fn seq_cst_all(&self) -> &BenchmarkResults {
        self.get(SeqCstAll::NAME)
            .expect("every report measures SeqCstAll")
    }

    /// Overall results of [`AcquireRelease`].
    pub fn acquire_release(&self) -> &BenchmarkResults {
        self.get(AcquireRelease::NAME)
            .expect("every report measures AcquireRelease")
    }

    /// Overall results of [`Optimized`].
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
            cpu_utilization: if self.thread_wall_ns > 0 {
                self.cpu_ns as f64 / self.thread_wall_ns as f64
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
    let stop = AtomicBool::new(false);
    let threads = producers + consumers;
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ch, stop, barrier) = (&ch, &stop, &barrier);
                s.spawn(move || worker(ch, t < producers, stop, barrier))
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        // The measurement window (a benchmark, not synchronization).
        std::thread::sleep(d);
        // Relaxed: a stop request carries no data.
        stop.store(true, Ordering::Relaxed);
        let mut sums = Sums {
            misses: Some(0),
            ..Sums::default()
        };
        for h in handles {
            let w = h.join().expect("benchmark worker panicked");
            sums.add(&w);
        }
        sums.wall_ns = t0.elapsed().as_nanos() as u64;
        sums
    })
}

fn worker<O: OrderingStrategy>(
    ch: &OptimizedChannel<u64, O>,
    producer: bool,
    stop: &AtomicBool,
    barrier: &Barrier,
) -> Sums {
    let counter = CacheMissCounter::open_thread();
    barrier.wait();
    let cpu0 = thread_cpu_ns();
    let misses0 = counter.as_ref().and_then(|c| c.read());
    let t0 = Instant::now();
    let mut sums = Sums::default();
    let mut calls = 0u64;
    // Relaxed: see the store in `measure_point`.
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..32 {
            calls += 1;
            let timed = calls % LATENCY_SAMPLE_EVERY == 0;
            let start = timed.then(Instant::now);
            let ok = if producer {
                ch.send(calls).is_ok()
            } else {
                ch.recv().is_some()
            };
            if ok {
                sums.ops += 1;
                if !producer {
                    sums.received += 1;
                }
                if let Some(start) = start {
                    sums.sampled_ns += start.elapsed().as_nanos() as u64;
                    sums.samples += 1;
                }
            }
        }
    }
    sums.thread_wall_ns = t0.elapsed().as_nanos() as u64;
    sums.cpu_ns = thread_cpu_ns().saturating_sub(cpu0);
    sums.misses = match (counter.as_ref().and_then(|c| c.read()), misses0) {
        (Some(b), Some(a)) => Some(b.saturating_sub(a)),
        _ => None,
    };
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
                assert!((0.0..=1.5).contains(&r.cpu_utilization), "{r:?}");
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
