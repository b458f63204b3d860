//! The measurement harness shared by [`OptimizedChannel::benchmark_orderings`]
//! and the `waitless-bench` analyzer (which depends on this crate; the
//! library cannot depend on it): the measured loop ([`run_threads`]: OS
//! threads, a start barrier, warm-up, a window ended by a stop flag and
//! extended until every thread ran, sampled per-operation latency, per-thread
//! CPU time and run-queue wait), a hardware cache-miss counter through
//! `perf_event_open(2)`, and a thread's scheduler times. Not part of the
//! public API.
//!
//! [`OptimizedChannel::benchmark_orderings`]: crate::channel::OptimizedChannel::benchmark_orderings

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use crate::CachePadded;

/// How [`run_threads`] measures.
///
/// ```
/// use std::time::Duration;
/// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
/// let cfg = LoopConfig {
///     warmup: Duration::ZERO,
///     window: Duration::from_millis(5),
///     sample_every: 8,
///     min_calls_per_thread: 16,
///     cache_misses: false,
/// };
/// let run = run_threads(&cfg, 1, |_| (), |_| 1, MeanLatency::default);
/// assert!(run.elapsed >= cfg.window);
/// assert_eq!(run.threads[0].ops % 16, 0); // the phase is read every 16 calls
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopConfig {
    /// Calls made (and not counted) before the window opens.
    pub warmup: Duration,
    /// The measurement window.
    pub window: Duration,
    /// One call in this many is timed and given to the thread's
    /// [`LatencySink`]; a power of two.
    pub sample_every: u64,
    /// The window is extended (within a bound) until every thread has made
    /// this many calls in it, so a thread the OS did not schedule in time
    /// still contributes.
    pub min_calls_per_thread: u64,
    /// Open a per-thread hardware cache-miss counter
    /// ([`CacheMissCounter::open_thread`]) and read it over the window.
    pub cache_misses: bool,
}

/// Where a measured thread puts its sampled latencies (nanoseconds, for
/// calls that completed at least one operation).
///
/// ```
/// use waitless::measure::LatencySink;
/// /// Keeps the largest sample.
/// struct Max(u64);
/// impl LatencySink for Max {
///     fn record(&mut self, ns: u64) {
///         self.0 = self.0.max(ns);
///     }
/// }
/// let mut m = Max(0);
/// m.record(7);
/// m.record(3);
/// assert_eq!(m.0, 7);
/// ```
pub trait LatencySink: Send {
    /// Records one sampled latency.
    fn record(&mut self, ns: u64);
}

/// A [`LatencySink`] that keeps the sum and count (a mean).
///
/// ```
/// use waitless::measure::{LatencySink, MeanLatency};
/// let mut m = MeanLatency::default();
/// m.record(10);
/// m.record(30);
/// assert_eq!((m.sum_ns, m.samples), (40, 2));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeanLatency {
    /// Sum of the samples, in nanoseconds.
    pub sum_ns: u64,
    /// Number of samples.
    pub samples: u64,
}

impl LatencySink for MeanLatency {
    fn record(&mut self, ns: u64) {
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.samples += 1;
    }
}

/// What one thread of a [`run_threads`] run did in the window.
///
/// ```
/// use std::time::Duration;
/// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
/// let cfg = LoopConfig {
///     warmup: Duration::ZERO,
///     window: Duration::from_millis(5),
///     sample_every: 8,
///     min_calls_per_thread: 16,
///     cache_misses: false,
/// };
/// // Thread 0 completes an operation per call, thread 1 none.
/// let run = run_threads(&cfg, 2, |t| t, |t| u64::from(*t == 0), MeanLatency::default);
/// let (a, b) = (&run.threads[0], &run.threads[1]);
/// assert_eq!(a.ops, a.calls);
/// assert_eq!(b.ops, 0);
/// assert!(b.calls >= 16);
/// assert_eq!(a.latency.samples, a.calls / 8);
/// ```
#[derive(Debug, Clone)]
pub struct ThreadRun<L> {
    /// Operations counted (the sum of what its calls returned).
    pub ops: u64,
    /// Calls made.
    pub calls: u64,
    /// Its sampled latencies.
    pub latency: L,
    /// CPU time and run-queue wait over the window (`None` where the OS does
    /// not say, see [`ThreadTimes::now`]).
    pub times: Option<ThreadTimes>,
    /// Hardware cache misses over the window, when asked for and available.
    pub cache_misses: Option<u64>,
}

/// The outcome of [`run_threads`].
///
/// ```
/// use std::time::Duration;
/// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
/// let cfg = LoopConfig {
///     warmup: Duration::ZERO,
///     window: Duration::from_millis(5),
///     sample_every: 8,
///     min_calls_per_thread: 16,
///     cache_misses: false,
/// };
/// let run = run_threads(&cfg, 3, |_| (), |_| 2, MeanLatency::default);
/// assert_eq!(run.threads.len(), 3);
/// assert!(run.elapsed >= cfg.window);
/// ```
#[derive(Debug, Clone)]
pub struct LoopRun<L> {
    /// The window's actual length (longer than asked when it was extended).
    pub elapsed: Duration,
    /// One entry per thread, by thread index.
    pub threads: Vec<ThreadRun<L>>,
}

impl<L> LoopRun<L> {
    /// Operations of all threads together.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
    /// let cfg = LoopConfig {
    ///     warmup: Duration::ZERO,
    ///     window: Duration::from_millis(5),
    ///     sample_every: 8,
    ///     min_calls_per_thread: 16,
    ///     cache_misses: false,
    /// };
    /// let run = run_threads(&cfg, 2, |_| (), |_| 1, MeanLatency::default);
    /// assert_eq!(run.ops(), run.threads[0].ops + run.threads[1].ops);
    /// ```
    pub fn ops(&self) -> u64 {
        self.threads.iter().map(|t| t.ops).sum()
    }

    /// Every thread's scheduler times, or `None` if one is missing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
    /// let cfg = LoopConfig {
    ///     warmup: Duration::ZERO,
    ///     window: Duration::from_millis(5),
    ///     sample_every: 8,
    ///     min_calls_per_thread: 16,
    ///     cache_misses: false,
    /// };
    /// let run = run_threads(&cfg, 2, |_| (), |_| 1, MeanLatency::default);
    /// if let Some(times) = run.times() {
    ///     assert_eq!(times.len(), 2); // Linux: one entry per thread
    /// }
    /// ```
    pub fn times(&self) -> Option<Vec<ThreadTimes>> {
        self.threads.iter().map(|t| t.times).collect()
    }

    /// Cache misses of all threads together, or `None` if one is missing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
    /// let cfg = LoopConfig {
    ///     warmup: Duration::ZERO,
    ///     window: Duration::from_millis(5),
    ///     sample_every: 8,
    ///     min_calls_per_thread: 16,
    ///     cache_misses: true,
    /// };
    /// let run = run_threads(&cfg, 1, |_| (), |_| 1, MeanLatency::default);
    /// // `None` where the machine exposes no hardware counters (most VMs).
    /// assert_eq!(run.cache_misses(), run.threads[0].cache_misses);
    /// ```
    pub fn cache_misses(&self) -> Option<u64> {
        self.threads.iter().map(|t| t.cache_misses).sum()
    }
}

const PHASE_WARMUP: u8 = 0;
const PHASE_MEASURE: u8 = 1;
const PHASE_STOP: u8 = 2;

/// Calls between two reads of the phase flag.
const BATCH: u64 = 16;

/// Runs `op` on `threads` OS threads: `cfg.warmup`, then a window of
/// `cfg.window`, extended while some thread has not yet made
/// `cfg.min_calls_per_thread` calls in it (a thread the OS did not schedule
/// in time on a loaded machine), up to ten times the window (at least a
/// second); [`LoopRun::elapsed`] is the actual length.
///
/// `setup(thread_index)` builds each thread's private state (role, RNG,
/// guard…) on that thread, before the start barrier; `latency()` its
/// [`LatencySink`]. `op(&mut state)` performs one unit of work and returns
/// how many operations it completed (0 when, say, a consumer found the queue
/// empty; those calls are not counted, and not recorded when sampled).
///
/// # Panics
/// If `threads` is zero or `cfg.sample_every` is not a power of two, and
/// when `setup` or `op` panics on any thread (after the window, with the
/// first thread's panic).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
/// use waitless::measure::{run_threads, LoopConfig, MeanLatency};
/// let counter = AtomicU64::new(0);
/// let cfg = LoopConfig {
///     warmup: Duration::ZERO,
///     window: Duration::from_millis(5),
///     sample_every: 8,
///     min_calls_per_thread: 16,
///     cache_misses: false,
/// };
/// // Each thread's state is its index; one call is one increment.
/// let run = run_threads(
///     &cfg,
///     2,
///     |t| t,
///     |_| {
///         counter.fetch_add(1, Ordering::Relaxed);
///         1
///     },
///     MeanLatency::default,
/// );
/// // Warm-up calls ran but were not counted.
/// assert!(counter.load(Ordering::Relaxed) >= run.ops());
/// assert!(run.threads.iter().all(|t| t.calls >= cfg.min_calls_per_thread));
/// ```
pub fn run_threads<S, L: LatencySink>(
    cfg: &LoopConfig,
    threads: usize,
    setup: impl Fn(usize) -> S + Sync,
    op: impl Fn(&mut S) -> u64 + Sync,
    latency: impl Fn() -> L + Sync,
) -> LoopRun<L> {
    assert!(threads > 0, "run_threads needs at least one thread");
    assert!(
        cfg.sample_every.is_power_of_two(),
        "sample_every must be a power of two"
    );
    let mask = cfg.sample_every - 1;
    let phase = AtomicU8::new(PHASE_WARMUP);
    let barrier = Barrier::new(threads + 1);
    // ran[t]: thread t made its minimum number of calls in the window. A
    // progress signal only (the counts travel through `join`): Relaxed.
    let ran: Vec<CachePadded<AtomicBool>> = (0..threads)
        .map(|_| CachePadded::new(AtomicBool::new(false)))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (setup, op, latency, phase, barrier, ran) =
                    (&setup, &op, &latency, &phase, &barrier, &ran);
                s.spawn(move || {
                    // A panicking setup must still reach the barrier, or
                    // every other thread would wait there forever; the panic
                    // resumes right after it.
                    let state = catch_unwind(AssertUnwindSafe(|| setup(t)));
                    let mut sink = latency();
                    let counter = if cfg.cache_misses {
                        CacheMissCounter::open_thread()
                    } else {
                        None
                    };
                    barrier.wait();
                    let mut state = state.unwrap_or_else(|p| resume_unwind(p));
                    // Relaxed: the phase is a stop signal; it carries no
                    // data (results travel through `join`).
                    while phase.load(Ordering::Relaxed) == PHASE_WARMUP {
                        for _ in 0..BATCH {
                            op(&mut state);
                        }
                    }
                    let times0 = ThreadTimes::now();
                    let misses0 = counter.as_ref().and_then(CacheMissCounter::read);
                    let mut ops = 0u64;
                    let mut calls = 0u64;
                    let mut reported = false;
                    // Relaxed: as above.
                    while phase.load(Ordering::Relaxed) == PHASE_MEASURE {
                        for _ in 0..BATCH {
                            calls += 1;
                            if calls & mask == 0 {
                                let t0 = Instant::now();
                                let n = op(&mut state);
                                if n > 0 {
                                    sink.record((t0.elapsed().as_nanos() as u64).max(1));
                                }
                                ops += n;
                            } else {
                                ops += op(&mut state);
                            }
                        }
                        if !reported && calls >= cfg.min_calls_per_thread {
                            ran[t].store(true, Ordering::Relaxed);
                            reported = true;
                        }
                    }
                    let times = ThreadTimes::now().zip(times0).map(|(b, a)| b.since(a));
                    let cache_misses = counter
                        .as_ref()
                        .and_then(CacheMissCounter::read)
                        .zip(misses0)
                        .map(|(b, a)| b.saturating_sub(a));
                    ThreadRun {
                        ops,
                        calls,
                        latency: sink,
                        times,
                        cache_misses,
                    }
                })
            })
            .collect();
        barrier.wait();
        // The warm-up and the window are measured intervals of a
        // benchmark, not synchronization.
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
        let threads = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| resume_unwind(p)))
            .collect();
        LoopRun { elapsed, threads }
    })
}

/// CPU time one thread used and spent waiting for a CPU.
///
/// ```
/// use waitless::measure::ThreadTimes;
/// let a = ThreadTimes { cpu_ns: 10, wait_ns: 5 };
/// let b = ThreadTimes { cpu_ns: 25, wait_ns: 5 };
/// assert_eq!(b.since(a), ThreadTimes { cpu_ns: 15, wait_ns: 0 });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadTimes {
    /// Time on a CPU, in nanoseconds.
    pub cpu_ns: u64,
    /// Time runnable but waiting in the run queue, in nanoseconds.
    pub wait_ns: u64,
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), up to date
/// to the call.
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer,
    // which points to a live local of that type.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

impl ThreadTimes {
    /// The calling thread's totals so far (Linux: the CPU time from the
    /// thread CPU clock, the wait from `/proc/thread-self/schedstat`);
    /// `None` elsewhere and under Miri.
    ///
    /// ```
    /// use waitless::measure::ThreadTimes;
    /// if let Some(a) = ThreadTimes::now() {
    ///     let b = ThreadTimes::now().expect("read once, read again");
    ///     assert!(b.cpu_ns >= a.cpu_ns);
    /// }
    /// ```
    pub fn now() -> Option<Self> {
        if cfg!(miri) {
            return None;
        }
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut f = s.split_whitespace().map(|v| v.parse::<u64>().ok());
        let ticked = f.next()??;
        let wait_ns = f.next()??;
        // The schedstat run time of a running thread is as of its last
        // scheduler tick or switch: it advances in steps of a tick (4 ms at
        // HZ = 250), so over a window of a few milliseconds it read 0 or
        // 133 % of the window. The thread CPU clock brings it up to date.
        Some(Self {
            cpu_ns: thread_cpu_ns().unwrap_or(ticked),
            wait_ns,
        })
    }

    /// `self - earlier`, saturating.
    ///
    /// ```
    /// use waitless::measure::ThreadTimes;
    /// let early = ThreadTimes { cpu_ns: 30, wait_ns: 4 };
    /// let late = ThreadTimes { cpu_ns: 20, wait_ns: 9 };
    /// // Saturating: a later reading never gives a negative interval.
    /// assert_eq!(late.since(early), ThreadTimes { cpu_ns: 0, wait_ns: 5 });
    /// ```
    pub fn since(self, earlier: Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
        }
    }
}

/// A `PERF_COUNT_HW_CACHE_MISSES` counter (user space only), when the CPU
/// and the kernel expose one.
///
/// Most virtual machines expose no hardware counters, and
/// `kernel.perf_event_paranoid` may forbid them; the constructors then return
/// `None` and callers report "not available" instead of a number.
///
/// ```
/// use waitless::measure::CacheMissCounter;
/// match CacheMissCounter::open_thread() {
///     Some(c) => assert!(c.read().is_some()),
///     None => println!("no hardware counters here"),
/// }
/// ```
#[derive(Debug)]
pub struct CacheMissCounter {
    #[cfg(all(target_os = "linux", not(miri)))]
    fd: libc::c_int,
}

#[cfg(all(target_os = "linux", not(miri)))]
mod sys {
    /// The first published layout of `struct perf_event_attr`
    /// (`PERF_ATTR_SIZE_VER0`, 64 bytes); every kernel since 2.6.31 accepts
    /// it and zero-fills the fields added later.
    #[repr(C)]
    #[derive(Default)]
    pub(super) struct PerfEventAttrV0 {
        pub(super) type_: u32,
        pub(super) size: u32,
        pub(super) config: u64,
        pub(super) sample_period: u64,
        pub(super) sample_type: u64,
        pub(super) read_format: u64,
        /// Bit field: bit 0 `disabled`, bit 1 `inherit`, bit 5
        /// `exclude_kernel`, bit 6 `exclude_hv` (see `perf_event_open(2)`).
        pub(super) flags: u64,
        pub(super) wakeup_events: u32,
        pub(super) bp_type: u32,
        pub(super) config1: u64,
    }

    pub(super) const PERF_TYPE_HARDWARE: u32 = 0;
    pub(super) const PERF_COUNT_HW_CACHE_MISSES: u64 = 3;
    pub(super) const FLAG_DISABLED: u64 = 1 << 0;
    pub(super) const FLAG_INHERIT: u64 = 1 << 1;
    pub(super) const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
    pub(super) const FLAG_EXCLUDE_HV: u64 = 1 << 6;
    pub(super) const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    // _IO('$', 0) and _IO('$', 1).
    pub(super) const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
    pub(super) const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
}

impl CacheMissCounter {
    /// A counter for the calling thread alone, counting from now on; read
    /// it with [`read`](Self::read) before and after.
    ///
    /// ```
    /// use waitless::measure::CacheMissCounter;
    /// if let Some(c) = CacheMissCounter::open_thread() {
    ///     let a = c.read().unwrap();
    ///     let v: Vec<u64> = (0..10_000).collect();
    ///     std::hint::black_box(v);
    ///     assert!(c.read().unwrap() >= a);
    /// }
    /// ```
    pub fn open_thread() -> Option<Self> {
        let c = Self::open(false, false)?;
        // A counter that opens but cannot be read counts as absent.
        c.read()?;
        Some(c)
    }

    /// A disabled counter for the calling thread *and every thread it
    /// creates afterwards* (the kernel adds a child thread's count to the
    /// parent's when the child exits, so call
    /// [`stop_and_read`](Self::stop_and_read) after joining them); start it
    /// with [`start`](Self::start).
    ///
    /// ```
    /// use waitless::measure::CacheMissCounter;
    /// if let Some(c) = CacheMissCounter::open_inherited() {
    ///     c.start();
    ///     std::thread::spawn(|| std::hint::black_box(vec![1u8; 1 << 16])).join().unwrap();
    ///     // The child's count was added to ours when it exited.
    ///     assert!(c.stop_and_read().is_some());
    /// }
    /// ```
    pub fn open_inherited() -> Option<Self> {
        Self::open(true, true)
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    fn open(inherit: bool, disabled: bool) -> Option<Self> {
        use sys::*;
        let mut flags = FLAG_EXCLUDE_KERNEL | FLAG_EXCLUDE_HV;
        if inherit {
            flags |= FLAG_INHERIT;
        }
        if disabled {
            flags |= FLAG_DISABLED;
        }
        let attr = PerfEventAttrV0 {
            type_: PERF_TYPE_HARDWARE,
            size: core::mem::size_of::<PerfEventAttrV0>() as u32,
            config: PERF_COUNT_HW_CACHE_MISSES,
            flags,
            ..PerfEventAttrV0::default()
        };
        // SAFETY: `attr` is a valid, initialised perf_event_attr of the size
        // it declares and lives across the call; pid 0 / cpu -1 means "this
        // thread, any CPU"; group_fd -1 requests a standalone counter. The
        // syscall only reads `attr`.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttrV0,
                0 as libc::pid_t,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        (fd >= 0).then_some(Self {
            fd: fd as libc::c_int,
        })
    }

    #[cfg(not(all(target_os = "linux", not(miri))))]
    fn open(_inherit: bool, _disabled: bool) -> Option<Self> {
        None
    }

    /// Starts (or resumes) counting.
    ///
    /// ```
    /// use waitless::measure::CacheMissCounter;
    /// if let Some(c) = CacheMissCounter::open_inherited() {
    ///     assert_eq!(c.read(), Some(0)); // opened disabled
    ///     c.start();
    ///     let _ = c.stop_and_read();
    /// }
    /// ```
    pub fn start(&self) {
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: `self.fd` is an open perf event descriptor owned by `self`;
        // PERF_EVENT_IOC_ENABLE takes no argument.
        unsafe {
            libc::ioctl(self.fd, sys::PERF_EVENT_IOC_ENABLE as _, 0);
        }
    }

    /// The current count, or `None` if reading fails.
    ///
    /// ```
    /// use waitless::measure::CacheMissCounter;
    /// if let Some(c) = CacheMissCounter::open_thread() {
    ///     let (a, b) = (c.read().unwrap(), c.read().unwrap());
    ///     assert!(b >= a);
    /// }
    /// ```
    pub fn read(&self) -> Option<u64> {
        #[cfg(all(target_os = "linux", not(miri)))]
        {
            let mut value = 0u64;
            // SAFETY: `fd` is an open perf event descriptor we own, and
            // `value` is 8 writable bytes, the size a non-group read returns.
            let n = unsafe {
                libc::read(
                    self.fd,
                    (&mut value as *mut u64).cast::<libc::c_void>(),
                    core::mem::size_of::<u64>(),
                )
            };
            (n == core::mem::size_of::<u64>() as isize).then_some(value)
        }
        #[cfg(not(all(target_os = "linux", not(miri))))]
        {
            None
        }
    }

    /// Stops counting and returns the count (`None` if the read fails, or
    /// if the counter never ran because the PMU was busy).
    ///
    /// ```
    /// use waitless::measure::CacheMissCounter;
    /// if let Some(c) = CacheMissCounter::open_inherited() {
    ///     c.start();
    ///     std::hint::black_box(vec![0u64; 4096]);
    ///     let n = c.stop_and_read();
    ///     assert!(n.is_some());
    /// }
    /// ```
    pub fn stop_and_read(self) -> Option<u64> {
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: `self.fd` is an open perf event descriptor owned by
        // `self`; DISABLE takes no argument.
        unsafe {
            libc::ioctl(self.fd, sys::PERF_EVENT_IOC_DISABLE as _, 0);
        }
        self.read()
    }
}

impl Drop for CacheMissCounter {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: `self.fd` was returned by perf_event_open, is owned by
        // `self` and is closed exactly once, here.
        unsafe {
            libc::close(self.fd);
        }
    }
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn counters_are_either_absent_or_count() {
        // Most VMs have no PMU, so `open_*` is usually `None`; where a PMU
        // exists the counts must read back.
        if let Some(c) = CacheMissCounter::open_inherited() {
            c.start();
            let v: Vec<u64> = (0..100_000).collect();
            core::hint::black_box(v.iter().sum::<u64>());
            assert!(c.stop_and_read().is_some());
        }
        if let Some(c) = CacheMissCounter::open_thread() {
            assert!(c.read().is_some());
        }
    }

    #[test]
    fn thread_times_grow_with_work() {
        let Some(a) = ThreadTimes::now() else {
            if cfg!(target_os = "linux") {
                panic!("/proc/thread-self/schedstat is missing on Linux");
            }
            return;
        };
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(30) {
            x = core::hint::black_box(x.wrapping_add(1));
        }
        let d = ThreadTimes::now().expect("read once, read again").since(a);
        assert!(d.cpu_ns > 0, "{d:?}");
    }

    #[test]
    fn every_thread_runs_counts_and_samples() {
        use crate::sync::atomic::AtomicU64;
        let calls = AtomicU64::new(0);
        let cfg = LoopConfig {
            warmup: Duration::from_millis(2),
            window: Duration::from_millis(20),
            sample_every: 8,
            min_calls_per_thread: 64,
            cache_misses: true,
        };
        // Thread 0 completes an operation per call, thread 1 none.
        let run = run_threads(
            &cfg,
            2,
            |t| t,
            |t| {
                calls.fetch_add(1, Ordering::Relaxed);
                u64::from(*t == 0)
            },
            MeanLatency::default,
        );
        assert_eq!(run.threads.len(), 2);
        let (a, b) = (&run.threads[0], &run.threads[1]);
        assert!(a.calls >= 64 && b.calls >= 64, "{run:?}");
        assert_eq!(a.ops, a.calls);
        assert_eq!(b.ops, 0);
        assert_eq!(run.ops(), a.ops);
        // Warm-up calls ran but were not counted.
        assert!(calls.load(Ordering::Relaxed) >= a.calls + b.calls);
        assert_eq!(a.latency.samples, a.calls / 8);
        assert_eq!(b.latency.samples, 0);
        assert!(run.elapsed >= cfg.window);
        if cfg!(target_os = "linux") {
            assert!(run.times().is_some());
        }
    }

    #[test]
    fn a_panicking_setup_fails_the_run_instead_of_hanging_it() {
        let cfg = LoopConfig {
            warmup: Duration::ZERO,
            window: Duration::from_millis(5),
            sample_every: 64,
            min_calls_per_thread: 1,
            cache_misses: false,
        };
        let r = std::panic::catch_unwind(|| {
            run_threads(
                &cfg,
                3,
                |t| assert!(t != 1, "setup of thread 1 fails"),
                |_| 1,
                MeanLatency::default,
            )
        });
        assert!(r.is_err());
    }
}
