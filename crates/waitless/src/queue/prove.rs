//! The queue's proof obligations as executable reports.
//!
//! Each `prove_*` function returns a [`Proof`]: the property, the proven
//! step bound evaluated for the given queue's capacity and thread count
//! (from [`enqueue_step_bound`] / [`dequeue_step_bound`], the same functions
//! the step tests use), the argument in brief (the full proof is in
//! `docs/wait-free-queue.md`), and evidence gathered on the spot:
//!
//! * an **adversarial run** on a *fresh* queue of the same capacity and
//!   thread count (the queue passed in is only asked for its configuration):
//!   more threads than CPUs, every operation pushed through the announced
//!   slow path and yielding at the protocol's hook points where the
//!   `step-count` feature provides those test constructors, then the same
//!   with the fast path on. Values are unique per producer, so after the run
//!   and a final drain the report checks that every enqueued value came out
//!   exactly once, that each consumer saw each producer's values in order,
//!   and that `len()` never left `0..=capacity`. With `step-count`, the
//!   largest step count any single operation took ([`observed_steps`]) is
//!   set against the bound;
//! * for [`prove_linearizability`], short recorded histories (a few threads,
//!   a few dozen operations each, queues pre-filled so `Full` answers occur
//!   where the capacity allows) checked by `waitless-check`'s Wing–Gong–Lowe
//!   search against a bounded FIFO model, when the `verify` feature compiles
//!   the checker in; without it the evidence says that this was not checked.
//!
//! A panic inside the evidence run is caught and reported as `holds =
//! false` with its message; the functions themselves never panic. Each call
//! takes about a second (the run stops at a deadline once every thread has
//! done a minimum number of operations).

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::verification::{dequeue_step_bound, enqueue_step_bound, observed_steps, ObservedSteps};
use super::{QueueError, WaitFreeQueue};
use crate::proof::{check_fifo_histories, panic_message, FifoUnderTest, HistoryPlan, Proof};

const ENQUEUE_WAIT_FREEDOM: &str =
    "every enqueue finishes within a bounded number of its own steps \
     (wait-freedom), whatever the scheduler does";
const DEQUEUE_WAIT_FREEDOM: &str =
    "every dequeue finishes within a bounded number of its own steps \
     (wait-freedom), whatever the scheduler does";
const LINEARIZABILITY: &str =
    "enqueue and dequeue are linearizable against a bounded FIFO queue of \
     this capacity (Full and None included): no loss, no duplication, FIFO";
const SYSTEM_PROGRESS: &str = "every thread that keeps taking steps keeps completing operations \
     (wait-freedom implies lock-freedom: the system always progresses)";

const ENQUEUE_ARGUMENT: &str = "\
An enqueue first helps every announced request to its answer (only when the
pending count is non-zero), then makes at most P = 8 fast-path attempts on
the ring (read the tail hint and scan at most W = 8 slots from it; fill the
first free one with one CAS or decide Full), and then announces its request
and helps it: each helping round is a bounded number of steps, and only the
operations already running when the request was announced can overtake it,
so it is answered within 4k + 2 + W rounds. No step waits for another thread. The bound, a function of the
record count k (independent of the capacity), is
`queue::verification::enqueue_step_bound(capacity, threads)`.
Full proof: docs/wait-free-queue.md, theorem 1 (wait-freedom and the step
bound) with the lemmas before it.";

const DEQUEUE_ARGUMENT: &str = "\
A dequeue runs the same protocol as an enqueue on the head side (help the
announced requests, at most P fast attempts, then an announced request
helped within 4k + 2 + W bounded rounds), so it has the same bound:
`queue::verification::dequeue_step_bound(capacity, threads)`. No step waits
for another thread. Full proof: docs/wait-free-queue.md, theorem 1.";

const LINEARIZABILITY_ARGUMENT: &str = "\
Each operation takes effect at one atomic step inside its interval: the CAS
that fills (or empties) the slot of its ticket, fast or slow (a u = 1 fill is
always committed), or, for Full and None, the read of the first slot of a
scan from the ticket hint whose ticket y is not done: still holding the
element of ticket y - capacity (Full) or still waiting for the enqueue of y
(None). Tickets are filled
and consumed in order, one slot word chain per ticket, so the dequeue of
ticket x returns exactly the value the enqueue of ticket x wrote: FIFO, no
loss, no duplication, exactly capacity elements fit. Full proof:
docs/wait-free-queue.md, section 4 (linearizability).";

const SYSTEM_PROGRESS_ARGUMENT: &str = "\
Wait-freedom is the strongest progress condition: since every operation of
every thread finishes within max(enqueue_step_bound, dequeue_step_bound)
(`queue::verification`) of its own steps, any thread that is scheduled keeps
completing operations, so the system as a whole always progresses
(lock-freedom) and no thread starves (starvation-freedom), even when other
threads are preempted forever in the middle of an operation. Full proof:
docs/wait-free-queue.md, theorem 1.";

/// The configuration the evidence queues copy from the queue under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Config {
    capacity: usize,
    /// The thread parameter the step bound is stated in.
    threads: usize,
}

impl Config {
    /// The only place that reads the queue under test (two plain reads; no
    /// operation runs on it, so it is never disturbed).
    fn of<T>(q: &WaitFreeQueue<T>) -> Self {
        Config {
            capacity: q.capacity(),
            threads: records_of(q),
        }
    }
}

/// The thread parameter `threads` of the step bound for `q`: its number of
/// thread records.
fn records_of<T>(q: &WaitFreeQueue<T>) -> usize {
    q.ring.records()
}

/// How a fresh evidence queue schedules its operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schedule {
    /// Fast path off and yields at the hook points (`step-count` only).
    SlowPathForced,
    /// Fast path on, yields at the hook points (`step-count` only).
    YieldHooks,
    /// The queue as users build it.
    Plain,
}

impl Schedule {
    /// The schedules the step evidence runs, most adversarial first.
    fn adversarial() -> &'static [Schedule] {
        if cfg!(feature = "step-count") {
            &[Schedule::SlowPathForced, Schedule::YieldHooks]
        } else {
            &[Schedule::Plain]
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Schedule::SlowPathForced => {
                "slow path forced (every operation announced and helped), yielding at every protocol hook"
            }
            Schedule::YieldHooks => "fast path on, yielding at every protocol hook",
            Schedule::Plain => "the queue as built by with_threads (no test hooks compiled in)",
        }
    }
}

/// A fresh queue of `cfg` under `schedule`.
fn fresh(cfg: Config, schedule: Schedule) -> WaitFreeQueue<u64> {
    #[cfg(feature = "step-count")]
    {
        use super::verification::{queue_slow_path_only, queue_with_yield_hooks};
        match schedule {
            Schedule::SlowPathForced => queue_slow_path_only(cfg.capacity, cfg.threads),
            Schedule::YieldHooks => queue_with_yield_hooks(cfg.capacity, cfg.threads),
            Schedule::Plain => WaitFreeQueue::with_threads(cfg.capacity, cfg.threads),
        }
    }
    #[cfg(not(feature = "step-count"))]
    {
        let _ = schedule;
        WaitFreeQueue::with_threads(cfg.capacity, cfg.threads)
    }
}

/// How much evidence one call gathers.
#[derive(Clone, Copy, Debug)]
struct Effort {
    /// Most worker threads (never more than the queue's thread count).
    max_threads: usize,
    /// Operations every worker does before it looks at the deadline.
    min_ops: usize,
    /// Operations after which a worker stops even before the deadline.
    max_ops: usize,
    /// Wall-clock budget of one adversarial phase.
    phase: Duration,
}

impl Effort {
    fn standard() -> Self {
        if cfg!(miri) {
            return Effort {
                max_threads: 2,
                min_ops: 6,
                max_ops: 6,
                phase: Duration::ZERO,
            };
        }
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        Effort {
            // Oversubscribed: four threads per CPU (at least 4), at most 16
            // so a call stays near a second.
            max_threads: (4 * cpus).clamp(4, 16),
            min_ops: 64,
            max_ops: 1 << 20,
            phase: Duration::from_millis(350),
        }
    }
}

/// What one worker did.
#[derive(Default)]
struct WorkerLog {
    produced: u64,
    received: Vec<u64>,
    ops: u64,
    full: u64,
    empty: u64,
    problem: Option<String>,
}

/// What one adversarial phase showed.
struct Run {
    schedule: Schedule,
    threads: usize,
    ops: u64,
    min_thread_ops: u64,
    max_thread_ops: u64,
    full: u64,
    empty: u64,
    drained: usize,
    steps: ObservedSteps,
    /// The fresh queue's thread parameter after the run (the bound the
    /// observed steps are held to).
    records_after: usize,
    /// The first contradiction found (lost or duplicated value, order, a
    /// wrong `Full` value, `len` out of range, a panic).
    problem: Option<String>,
}

/// Values are `producer << VALUE_BITS | sequence`.
const VALUE_BITS: u32 = 40;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// One worker of an adversarial phase. Even workers enqueue twice as often
/// as they dequeue and odd ones the reverse, so the queue swings between
/// empty and full.
fn worker(q: &WaitFreeQueue<u64>, t: usize, effort: Effort, deadline: Instant) -> WorkerLog {
    let mut log = WorkerLog::default();
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) << 17);
    let cap = q.capacity();
    for i in 0..effort.max_ops {
        if i >= effort.min_ops && i % 16 == 0 && Instant::now() >= deadline {
            break;
        }
        let enqueue_weight = if t % 2 == 0 { 2 } else { 1 };
        if xorshift(&mut x) % 3 < enqueue_weight {
            let v = (t as u64) << VALUE_BITS | log.produced;
            match q.enqueue(v) {
                Ok(()) => log.produced += 1,
                Err(QueueError::Full(back)) => {
                    log.full += 1;
                    if back != v {
                        log.problem.get_or_insert(format!(
                            "enqueue({v:#x}) answered Full but gave back {back:#x}"
                        ));
                    }
                }
            }
        } else {
            match q.dequeue() {
                Some(v) => log.received.push(v),
                None => log.empty += 1,
            }
        }
        log.ops += 1;
        if i % 64 == 0 {
            let len = q.len();
            if len > cap {
                log.problem
                    .get_or_insert(format!("len() returned {len} > capacity {cap}"));
            }
        }
    }
    log
}

/// Runs one adversarial phase on a fresh queue; never panics.
fn adversarial_run(cfg: Config, schedule: Schedule, effort: Effort) -> Run {
    let threads = cfg.threads.min(effort.max_threads).max(1);
    let mut run = Run {
        schedule,
        threads,
        ops: 0,
        min_thread_ops: 0,
        max_thread_ops: 0,
        full: 0,
        empty: 0,
        drained: 0,
        steps: ObservedSteps::default(),
        records_after: cfg.threads,
        problem: None,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let q = fresh(cfg, schedule);
        let start = Barrier::new(threads);
        let deadline = Instant::now() + effort.phase;
        let logs: Vec<Result<WorkerLog, String>> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (q, start) = (&q, &start);
                    s.spawn(move || {
                        start.wait();
                        catch_unwind(AssertUnwindSafe(|| worker(q, t, effort, deadline)))
                            .map_err(|p| panic_message(&*p))
                    })
                })
                .collect();
            // Joining each handle (rather than leaving it to the scope) waits
            // for the thread to exit completely, thread-locals included, so
            // every record the workers held is released before the drain.
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| Err(panic_message(&*p))))
                .collect()
        });
        let mut logs_ok = Vec::with_capacity(threads);
        for (t, l) in logs.into_iter().enumerate() {
            match l {
                Ok(l) => logs_ok.push(l),
                Err(msg) => return Err(format!("worker {t} panicked: {msg}")),
            }
        }
        let mut drained = Vec::new();
        while let Some(v) = q.dequeue() {
            drained.push(v);
            if drained.len() > cfg.capacity {
                return Err(format!(
                    "the drain after the run returned more than capacity {} values",
                    cfg.capacity
                ));
            }
        }
        Ok((logs_ok, drained, observed_steps(&q), records_of(&q)))
    }));
    let (logs, drained, steps, records_after) = match outcome {
        Ok(Ok(x)) => x,
        Ok(Err(msg)) => {
            run.problem = Some(msg);
            return run;
        }
        Err(p) => {
            run.problem = Some(format!("the evidence run panicked: {}", panic_message(&*p)));
            return run;
        }
    };
    run.steps = steps;
    run.records_after = records_after;
    run.drained = drained.len();
    run.ops = logs.iter().map(|l| l.ops).sum();
    run.min_thread_ops = logs.iter().map(|l| l.ops).min().unwrap_or(0);
    run.max_thread_ops = logs.iter().map(|l| l.ops).max().unwrap_or(0);
    run.full = logs.iter().map(|l| l.full).sum();
    run.empty = logs.iter().map(|l| l.empty).sum();
    run.problem = logs.iter().find_map(|l| l.problem.clone());
    if run.problem.is_none() {
        run.problem = exactly_once_in_order(&logs, &drained);
    }
    run
}

/// Checks that the values received by the workers plus the drained ones are
/// exactly the values produced, each once, and that every consumer (and the
/// drain) saw each producer's values in increasing order (FIFO).
fn exactly_once_in_order(logs: &[WorkerLog], drained: &[u64]) -> Option<String> {
    let producers = logs.len();
    let mut got: Vec<Vec<u64>> = vec![Vec::new(); producers];
    for stream in logs.iter().map(|l| &l.received[..]).chain([drained]) {
        let mut last: Vec<Option<u64>> = vec![None; producers];
        for &v in stream {
            let (p, i) = ((v >> VALUE_BITS) as usize, v & ((1 << VALUE_BITS) - 1));
            if p >= producers {
                return Some(format!("dequeued {v:#x}, a value no thread enqueued"));
            }
            if last[p].is_some_and(|prev| prev >= i) {
                return Some(format!(
                    "FIFO violated: one consumer dequeued value {i} of producer {p} after value {}",
                    last[p].unwrap_or(0)
                ));
            }
            last[p] = Some(i);
            got[p].push(i);
        }
    }
    for (p, seen) in got.iter_mut().enumerate() {
        seen.sort_unstable();
        let produced = logs[p].produced;
        for (want, &have) in (0..produced).zip(seen.iter()) {
            if have != want {
                return Some(if have < want {
                    format!("value {have} of producer {p} was dequeued twice")
                } else {
                    format!("value {want} of producer {p} was lost")
                });
            }
        }
        if seen.len() as u64 != produced {
            return Some(if (seen.len() as u64) < produced {
                format!(
                    "producer {p} enqueued {produced} values but only {} came out (lost)",
                    seen.len()
                )
            } else {
                format!("producer {p} enqueued {produced} values but more came out")
            });
        }
    }
    None
}

impl FifoUnderTest for WaitFreeQueue<u64> {
    fn enqueue(&self, v: u64) -> bool {
        WaitFreeQueue::enqueue(self, v).is_ok()
    }

    fn dequeue(&self) -> Option<u64> {
        WaitFreeQueue::dequeue(self)
    }
}

/// The operation whose steps a wait-freedom proof bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Enqueue,
    Dequeue,
}

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn describe_runs(out: &mut String, cfg: Config, runs: &[Run]) {
    let _ = writeln!(
        out,
        "Fresh WaitFreeQueue<u64> with capacity {} and thread count {} (the configuration of the \
         queue passed in, which was not touched); {} CPU(s) available.",
        cfg.capacity,
        cfg.threads,
        cpus()
    );
    for r in runs {
        let _ = writeln!(
            out,
            "- {}: {} threads, {} operations ({}..{} per thread), {} Full, {} None, {} drained \
             at the end{}.",
            r.schedule.describe(),
            r.threads,
            r.ops,
            r.min_thread_ops,
            r.max_thread_ops,
            r.full,
            r.empty,
            r.drained,
            if cfg!(feature = "step-count") {
                format!(
                    "; steps observed: enqueue {}, dequeue {}",
                    r.steps.enqueue, r.steps.dequeue
                )
            } else {
                String::new()
            }
        );
    }
    if runs.iter().all(|r| r.problem.is_none()) {
        let _ = writeln!(
            out,
            "Every enqueued value came out exactly once, each consumer saw each producer's values \
             in order, and len() stayed within 0..=capacity."
        );
    }
    if !cfg!(feature = "step-count") {
        let _ = writeln!(
            out,
            "NOT CHECKED: step counts (the step counter and the slow-path/yield test constructors \
             are compiled in by feature `step-count`), so this run shows completion and the \
             absence of loss, not the bound."
        );
    }
}

/// The wait-freedom proof of `op` with an explicit bound function, so that
/// tests can feed a bound that is too small and see the report contradict it.
pub(crate) fn wait_freedom_against<T>(
    queue: &WaitFreeQueue<T>,
    op: Op,
    bound_fn: fn(usize, usize) -> usize,
    effort_phase: Option<Duration>,
) -> Proof {
    let cfg = Config::of(queue);
    let mut effort = Effort::standard();
    if let Some(p) = effort_phase {
        effort.phase = p;
    }
    let bound = bound_fn(cfg.capacity, cfg.threads) as u64;
    let runs: Vec<Run> = Schedule::adversarial()
        .iter()
        .map(|&s| adversarial_run(cfg, s, effort))
        .collect();
    let pick = |s: &ObservedSteps| match op {
        Op::Enqueue => s.enqueue as u64,
        Op::Dequeue => s.dequeue as u64,
    };
    let observed = cfg!(feature = "step-count")
        .then(|| runs.iter().map(|r| pick(&r.steps)).max().unwrap_or(0));
    let mut evidence = String::new();
    describe_runs(&mut evidence, cfg, &runs);
    let mut holds = true;
    for r in &runs {
        if let Some(p) = &r.problem {
            holds = false;
            let _ = writeln!(evidence, "CONTRADICTION ({}): {p}", r.schedule.describe());
        }
    }
    let name = match op {
        Op::Enqueue => "enqueue",
        Op::Dequeue => "dequeue",
    };
    // The evidence queue's own bound: its thread parameter may have grown
    // during the run if the queue grows it on demand.
    let run_records = runs
        .iter()
        .map(|r| r.records_after)
        .max()
        .unwrap_or(cfg.threads);
    let run_bound = bound_fn(cfg.capacity, run_records) as u64;
    if run_records != cfg.threads {
        let _ = writeln!(
            evidence,
            "The evidence queue's thread parameter grew to {run_records} during the run; its \
             operations are held to the bound for that, {run_bound}."
        );
    }
    if let Some(o) = observed {
        if o > run_bound {
            holds = false;
            let _ = writeln!(
                evidence,
                "CONTRADICTION: one {name} took {o} steps, more than the bound of {run_bound}."
            );
        } else if o == 0 && runs.iter().any(|r| r.ops > 0) {
            holds = false;
            let _ = writeln!(
                evidence,
                "CONTRADICTION: operations completed but the step counter recorded none \
                 (the counter is not counting, so the bound was not checked)."
            );
        } else {
            let _ = writeln!(
                evidence,
                "The largest {name} took {o} steps, within the bound of {run_bound}."
            );
        }
    }
    Proof {
        property: match op {
            Op::Enqueue => ENQUEUE_WAIT_FREEDOM,
            Op::Dequeue => DEQUEUE_WAIT_FREEDOM,
        },
        holds,
        bound: Some(bound),
        observed,
        argument: match op {
            Op::Enqueue => ENQUEUE_ARGUMENT,
            Op::Dequeue => DEQUEUE_ARGUMENT,
        },
        evidence,
    }
}

/// Wait-freedom of `enqueue` on a queue configured like `queue`, as a
/// [`Proof`]: the bound is [`enqueue_step_bound`] for the queue's capacity
/// and thread count; the evidence is an adversarial run on a *fresh* queue
/// of the same configuration (more threads than CPUs; with feature
/// `step-count`, first with the slow path forced and then with the fast
/// path, yielding at every protocol hook, and the largest step count of one
/// enqueue held against the bound), checked for lost, duplicated and
/// reordered values. About a second; never panics (a panic in the run is
/// reported as `holds = false`); `queue` itself is only asked for its
/// capacity and thread count. The argument points to
/// `docs/wait-free-queue.md`, theorem 1.
///
/// ```
/// use waitless::queue::{verification, WaitFreeQueue};
/// let q = WaitFreeQueue::<String>::with_threads(8, 4);
/// let proof = verification::prove_enqueue_wait_freedom(&q);
/// assert!(proof.holds, "{proof}");
/// assert_eq!(proof.bound, Some(verification::enqueue_step_bound(8, 4) as u64));
/// ```
pub fn prove_enqueue_wait_freedom<T>(queue: &WaitFreeQueue<T>) -> Proof {
    wait_freedom_against(queue, Op::Enqueue, enqueue_step_bound, None)
}

/// Wait-freedom of `dequeue` on a queue configured like `queue`; as
/// [`prove_enqueue_wait_freedom`].
///
/// ```
/// use waitless::queue::{verification, WaitFreeQueue};
/// let q = WaitFreeQueue::<u8>::with_threads(2, 4);
/// let proof = verification::prove_dequeue_wait_freedom(&q);
/// assert!(proof.holds, "{proof}");
/// ```
pub fn prove_dequeue_wait_freedom<T>(queue: &WaitFreeQueue<T>) -> Proof {
    wait_freedom_against(queue, Op::Dequeue, dequeue_step_bound, None)
}

/// System-wide progress on a queue configured like `queue`: the same
/// adversarial run, reporting that every thread kept completing operations;
/// the bound is the larger of the two per-operation bounds. About a second;
/// never panics.
///
/// ```
/// use waitless::queue::{verification, WaitFreeQueue};
/// let q = WaitFreeQueue::<u8>::with_threads(4, 4);
/// assert!(verification::prove_system_progress(&q).holds);
/// ```
pub fn prove_system_progress<T>(queue: &WaitFreeQueue<T>) -> Proof {
    let cfg = Config::of(queue);
    let effort = Effort::standard();
    let bound = enqueue_step_bound(cfg.capacity, cfg.threads)
        .max(dequeue_step_bound(cfg.capacity, cfg.threads)) as u64;
    let runs: Vec<Run> = Schedule::adversarial()
        .iter()
        .map(|&s| adversarial_run(cfg, s, effort))
        .collect();
    let observed = cfg!(feature = "step-count").then(|| {
        runs.iter()
            .map(|r| r.steps.enqueue.max(r.steps.dequeue) as u64)
            .max()
            .unwrap_or(0)
    });
    let mut evidence = String::new();
    describe_runs(&mut evidence, cfg, &runs);
    let mut holds = true;
    for r in &runs {
        if let Some(p) = &r.problem {
            holds = false;
            let _ = writeln!(evidence, "CONTRADICTION ({}): {p}", r.schedule.describe());
        } else if r.min_thread_ops < effort.min_ops as u64 {
            holds = false;
            let _ = writeln!(
                evidence,
                "CONTRADICTION ({}): a thread completed only {} operations",
                r.schedule.describe(),
                r.min_thread_ops
            );
        } else {
            let _ = writeln!(
                evidence,
                "Every one of the {} threads ({:.1} per CPU) completed at least {} operations \
                 while the others were being preempted ({}).",
                r.threads,
                r.threads as f64 / cpus() as f64,
                r.min_thread_ops,
                r.schedule.describe()
            );
        }
    }
    let run_records = runs
        .iter()
        .map(|r| r.records_after)
        .max()
        .unwrap_or(cfg.threads);
    let run_bound = enqueue_step_bound(cfg.capacity, run_records)
        .max(dequeue_step_bound(cfg.capacity, run_records)) as u64;
    if let Some(o) = observed {
        if o > run_bound {
            holds = false;
            let _ = writeln!(
                evidence,
                "CONTRADICTION: one operation took {o} steps, more than the bound of {run_bound}."
            );
        } else {
            let _ = writeln!(
                evidence,
                "The largest operation took {o} steps, within the bound of {run_bound}."
            );
        }
    }
    Proof {
        property: SYSTEM_PROGRESS,
        holds,
        bound: Some(bound),
        observed,
        argument: SYSTEM_PROGRESS_ARGUMENT,
        evidence,
    }
}

/// Linearizability of a queue configured like `queue`: an adversarial run
/// checked for loss, duplication and per-producer order, plus (feature
/// `verify`) short recorded histories checked by `waitless-check` against a
/// bounded FIFO model. `bound` and `observed` are `None`. About a second;
/// never panics.
///
/// ```
/// use waitless::queue::{verification, WaitFreeQueue};
/// let q = WaitFreeQueue::<u8>::with_threads(2, 4);
/// let proof = verification::prove_linearizability(&q);
/// assert!(proof.holds, "{proof}");
/// ```
pub fn prove_linearizability<T>(queue: &WaitFreeQueue<T>) -> Proof {
    let cfg = Config::of(queue);
    let mut effort = Effort::standard();
    effort.phase /= 2;
    let runs: Vec<Run> = Schedule::adversarial()
        .iter()
        .map(|&s| adversarial_run(cfg, s, effort))
        .collect();
    let mut evidence = String::new();
    describe_runs(&mut evidence, cfg, &runs);
    let mut holds = true;
    for r in &runs {
        if let Some(p) = &r.problem {
            holds = false;
            let _ = writeln!(evidence, "CONTRADICTION ({}): {p}", r.schedule.describe());
        }
    }
    let plan = HistoryPlan {
        capacity: cfg.capacity,
        threads: cfg.threads,
        budget: Duration::from_millis(if cfg!(miri) { 0 } else { 450 }),
        variants: if cfg!(feature = "step-count") {
            "every other history with the slow path forced"
        } else {
            "the plain queue"
        },
    };
    let make = |round: u64| {
        fresh(
            cfg,
            if round % 2 == 1 {
                Schedule::SlowPathForced
            } else {
                Schedule::Plain
            },
        )
    };
    match check_fifo_histories(&plan, make) {
        Ok(text) => evidence.push_str(&text),
        Err(text) => {
            holds = false;
            evidence.push_str(&text);
        }
    }
    Proof {
        property: LINEARIZABILITY,
        holds,
        bound: None,
        observed: None,
        argument: LINEARIZABILITY_ARGUMENT,
        evidence,
    }
}

#[cfg(test)]
mod tests;
