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
/// checked just now on this machine (SPEC §4).
///
/// Produced by the queue's `verification::prove_*` functions and the
/// channel's `memory_analysis::prove_correctness`; `Display` prints a
/// readable report.
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
