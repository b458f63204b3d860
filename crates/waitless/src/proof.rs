//! [`Proof`]: what a structure guarantees, and whether it was checked just now.
//!
//! The queue's [`verification`](crate::queue::verification) functions
//! (`prove_enqueue_wait_freedom`, `prove_dequeue_wait_freedom`,
//! `prove_linearizability`, `prove_system_progress`) and the channel's
//! [`memory_analysis::prove_correctness`](crate::channel::memory_analysis::prove_correctness)
//! return one. A `Proof` pairs a claim proven on paper (the argument in
//! brief, with the full proof in `docs/`) with evidence gathered on the spot:
//! an adversarial run on a fresh structure of the same configuration, with
//! its largest observed step count set against the proven bound, and a
//! recorded history checked for linearizability where the checker is
//! compiled in (feature `verify`). `holds` is `false` when that evidence
//! contradicts the claim; the evidence then says why.
//!
//! ```
//! let q = waitless::queue::WaitFreeQueue::<u32>::with_threads(4, 2);
//! let p = waitless::queue::verification::prove_enqueue_wait_freedom(&q);
//! assert!(p.holds, "{p}");
//! assert!(p.bound.is_some());
//! println!("{p}");
//! ```

use std::fmt;

/// A property of a concurrent structure, its proven bound, and the evidence
/// checked just now on this machine.
///
/// Produced by the queue's `verification::prove_*` functions and the
/// channel's `memory_analysis::prove_correctness`; `Display` prints a
/// readable report.
///
/// ```
/// use waitless::channel::{memory_analysis::prove_correctness, OptimizedChannel};
///
/// let p = prove_correctness(&OptimizedChannel::<u64>::new(4));
/// assert!(p.holds, "the evidence contradicts the claim: {}", p.evidence);
/// assert!(!p.property.is_empty() && !p.argument.is_empty());
/// // No step bound is claimed for the channel (it is lock-free, not wait-free).
/// assert_eq!(p.bound, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The property claimed, in one sentence.
    pub property: &'static str,
    /// `false` if the evidence gathered just now contradicts the property
    /// (a step count above the bound, a lost or duplicated value, a history
    /// that is not linearizable, a panic); `evidence` then says which.
    pub holds: bool,
    /// The proven step bound for this structure's configuration (capacity,
    /// thread count), where the property has one.
    pub bound: Option<u64>,
    /// The largest step count the evidence run measured, when the step
    /// counter is compiled in (feature `step-count`).
    pub observed: Option<u64>,
    /// The proof in brief, naming where the full proof is in `docs/`.
    pub argument: &'static str,
    /// What was checked just now, on this machine, and how (and what was not).
    pub evidence: String,
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "property: {}", self.property)?;
        let verdict = if self.holds {
            "holds (the evidence below does not contradict the proof)"
        } else {
            "CONTRADICTED by the evidence below"
        };
        writeln!(f, "verdict:  {verdict}")?;
        match self.bound {
            Some(b) => writeln!(f, "bound:    {b} steps per operation (proven)")?,
            None => writeln!(f, "bound:    none (the property has no step bound)")?,
        }
        match (self.observed, self.bound) {
            (Some(o), Some(b)) => writeln!(
                f,
                "observed: {o} steps at most ({:.1}% of the bound)",
                o as f64 * 100.0 / b.max(1) as f64
            )?,
            (Some(o), None) => writeln!(f, "observed: {o} steps at most")?,
            (None, Some(_)) => writeln!(
                f,
                "observed: not measured (the step counter is compiled in by feature `step-count`)"
            )?,
            (None, None) => writeln!(f, "observed: none (no step count for this property)")?,
        }
        writeln!(f, "argument:")?;
        write_indented(f, self.argument)?;
        writeln!(f, "evidence:")?;
        write_indented(f, &self.evidence)
    }
}

/// Writes `text` with every line indented by four spaces.
fn write_indented(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for line in text.lines() {
        if line.is_empty() {
            writeln!(f)?;
        } else {
            writeln!(f, "    {line}")?;
        }
    }
    Ok(())
}

/// The text of a caught panic payload.
#[cfg(not(loom))]
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// A bounded FIFO (queue or channel) whose recorded histories the proof
/// reports check; values are unique `u64`s.
#[cfg(not(loom))]
#[cfg_attr(not(feature = "verify"), allow(dead_code))] // used by the checker only
pub(crate) trait FifoUnderTest: Sync {
    /// `true` if enqueued, `false` for a `Full` answer.
    fn enqueue(&self, v: u64) -> bool;
    /// The oldest value, `None` for an empty answer.
    fn dequeue(&self) -> Option<u64>;
}

/// What [`check_fifo_histories`] records.
#[cfg(not(loom))]
#[cfg_attr(not(feature = "verify"), allow(dead_code))] // read by the checker only
pub(crate) struct HistoryPlan {
    /// Capacity of the structure (and of the sequential model).
    pub(crate) capacity: usize,
    /// Most threads the structure allows at once (histories use up to 4).
    pub(crate) threads: usize,
    /// Keep recording new histories until this is spent (at least two).
    pub(crate) budget: std::time::Duration,
    /// How the fresh structures vary between histories, for the report.
    pub(crate) variants: &'static str,
}

#[cfg(all(not(loom), feature = "verify"))]
pub(crate) use histories::check_fifo_histories;

#[cfg(all(not(loom), not(feature = "verify")))]
/// Without `waitless-check` no history is recorded; says so.
pub(crate) fn check_fifo_histories<Q: FifoUnderTest>(
    _plan: &HistoryPlan,
    _fresh: impl Fn(u64) -> Q,
) -> Result<String, String> {
    Ok(
        "NOT CHECKED: recorded histories against a sequential model (the \
        linearizability checker waitless-check is compiled in by feature `verify`); the \
        evidence above covers loss, duplication and per-producer FIFO order only.\n"
            .to_string(),
    )
}

#[cfg(all(not(loom), feature = "verify"))]
mod histories {
    //! Short recorded histories checked by `waitless-check`.

    use std::fmt::Write as _;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::Barrier;
    use std::thread;
    use std::time::Instant;

    use waitless_check::{check_with_limit, CheckOutcome, QueueModel, QueueOp, QueueRet, Recorder};

    use super::{panic_message, FifoUnderTest, HistoryPlan};

    /// Threads per recorded history.
    const THREADS: usize = 4;
    /// Operations per thread per history.
    const OPS: u64 = 40;
    /// Pre-fill up to capacity − 1 only for capacities up to this, so the
    /// checker's states stay small.
    const PREFILL_MAX: usize = 64;
    /// Search budget per history (model steps).
    const STEP_LIMIT: u64 = 2_000_000;

    #[derive(Default)]
    struct Tally {
        histories: usize,
        ops: usize,
        full: usize,
        empty: usize,
        undecided: usize,
    }

    /// Records and checks histories of fresh structures from `fresh(round)`
    /// until the budget is spent (at least two): up to four threads, each
    /// doing [`OPS`] random enqueues (unique values) and dequeues; every
    /// second pair of histories starts with the structure pre-filled to
    /// capacity − 1 (when that is cheap), so `Full` answers occur. `Ok` with
    /// a description, or `Err` with the checker's explanation.
    pub(crate) fn check_fifo_histories<Q: FifoUnderTest>(
        plan: &HistoryPlan,
        fresh: impl Fn(u64) -> Q,
    ) -> Result<String, String> {
        let deadline = Instant::now() + plan.budget;
        let threads = plan.threads.clamp(1, THREADS);
        let mut tally = Tally::default();
        let mut round = 0u64;
        while round < 2 || Instant::now() < deadline {
            let prefill = if round % 4 >= 2 && plan.capacity <= PREFILL_MAX {
                plan.capacity - 1
            } else {
                0
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                one(plan, &fresh(round), threads, prefill, round, &mut tally)
            }));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(format!(
                        "CONTRADICTION: recorded history {} ({threads} threads, pre-filled with \
                         {prefill}) is not linearizable against a bounded FIFO of capacity {}:\n{e}",
                        round + 1,
                        plan.capacity
                    ))
                }
                Err(p) => {
                    return Err(format!(
                        "CONTRADICTION: recording history {} panicked: {}",
                        round + 1,
                        panic_message(&*p)
                    ))
                }
            }
            round += 1;
        }
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Linearizability: {} recorded histories ({} operations in all, {threads} threads \
             each, {OPS} operations per thread, unique values; {}{}) checked by \
             waitless-check's Wing–Gong–Lowe search against a bounded FIFO model of capacity \
             {}: {} linearizable{}; {} Full and {} empty answers among them.",
            tally.histories,
            tally.ops,
            plan.variants,
            if plan.capacity <= PREFILL_MAX {
                "; half pre-filled to capacity − 1 so Full answers occur"
            } else {
                "; the capacity is too large to pre-fill cheaply, so Full answers are not exercised"
            },
            plan.capacity,
            tally.histories - tally.undecided,
            if tally.undecided > 0 {
                format!(
                    ", {} undecided within {STEP_LIMIT} search steps (not counted as checked)",
                    tally.undecided
                )
            } else {
                String::new()
            },
            tally.full,
            tally.empty
        );
        Ok(s)
    }

    fn one<Q: FifoUnderTest>(
        plan: &HistoryPlan,
        q: &Q,
        threads: usize,
        prefill: usize,
        round: u64,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let rec: Recorder<QueueOp<u64>, QueueRet<u64>> = Recorder::new();
        let start = Barrier::new(threads);
        thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (rec, start) = (&rec, &start);
                    s.spawn(move || {
                        let mut log = rec.thread();
                        let enqueue = |log: &mut waitless_check::ThreadLog<'_, _, _>, v: u64| {
                            log.op(QueueOp::Enqueue(v), || {
                                if q.enqueue(v) {
                                    QueueRet::Enqueued
                                } else {
                                    QueueRet::Full
                                }
                            });
                        };
                        if t == 0 {
                            // The pre-fill runs on a worker (the caller's
                            // thread must not take a thread slot of a
                            // queue), before every other operation.
                            for i in 0..prefill as u64 {
                                enqueue(&mut log, (1 << 32) | i);
                            }
                        }
                        let mut x = 0xD1B5_4A32_D192_ED03u64 ^ (round << 8) ^ (t as u64 + 1);
                        start.wait();
                        for i in 0..OPS {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            if x % 2 == 0 {
                                enqueue(&mut log, ((t as u64 + 2) << 32) | i);
                            } else {
                                log.op(QueueOp::Dequeue, || QueueRet::Dequeued(q.dequeue()));
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                if let Err(p) = h.join() {
                    std::panic::resume_unwind(p);
                }
            }
        });
        let history = rec.into_history();
        tally.histories += 1;
        tally.ops += history.len();
        for op in history.ops() {
            match op.output {
                Some(QueueRet::Full) => tally.full += 1,
                Some(QueueRet::Dequeued(None)) => tally.empty += 1,
                _ => {}
            }
        }
        match check_with_limit(&QueueModel::bounded(plan.capacity), &history, STEP_LIMIT) {
            CheckOutcome::Linearizable => Ok(()),
            CheckOutcome::NonLinearizable(e) => Err(e.to_string()),
            CheckOutcome::Unknown { .. } => {
                tally.undecided += 1;
                Ok(())
            }
        }
    }
}
