//! The library's proof reports (queue wait-freedom, channel orderings) for the CLI:
//! `waitless-bench prove queue` and `waitless-bench analyze orderings`, and
//! the text files the HTML report links.
//!
//! The reports are computed on the spot by `waitless` itself
//! (`queue::verification::prove_*`, `channel::memory_analysis`); this crate
//! enables the library's `step-count` and `verify` features so that the
//! evidence includes step counts against the bound and checked histories.

use std::fmt::Write as _;

use waitless::channel::memory_analysis::{analyze_ordering_choices, prove_correctness};
use waitless::channel::{AcquireRelease, Optimized, OptimizedChannel, OrderingStrategy, SeqCstAll};
use waitless::queue::verification::{
    prove_dequeue_wait_freedom, prove_enqueue_wait_freedom, prove_linearizability,
    prove_system_progress,
};
use waitless::queue::WaitFreeQueue;
use waitless::Proof;

/// The four queue proofs for a queue of `capacity` built with `threads`
/// thread records, as one text report (about four seconds). The second
/// value is `true` when every proof holds.
pub fn queue_report(capacity: usize, threads: usize) -> (String, bool) {
    let q = WaitFreeQueue::<u64>::with_threads(capacity, threads);
    let proofs: [Proof; 4] = [
        prove_enqueue_wait_freedom(&q),
        prove_dequeue_wait_freedom(&q),
        prove_linearizability(&q),
        prove_system_progress(&q),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "waitless::queue::WaitFreeQueue — proof reports for capacity {capacity}, {threads} \
         thread records\n"
    );
    for p in &proofs {
        let _ = writeln!(out, "{p}");
    }
    let all = proofs.iter().all(|p| p.holds);
    let _ = writeln!(
        out,
        "{} of 4 proofs hold.",
        proofs.iter().filter(|p| p.holds).count()
    );
    (out, all)
}

fn strategy<O: OrderingStrategy>(capacity: usize, with_proof: bool, out: &mut String) -> bool {
    let ch: OptimizedChannel<u64, O> = OptimizedChannel::with_strategy(capacity);
    let a = analyze_ordering_choices(&ch);
    let _ = writeln!(out, "{a}");
    let mut ok = a.is_sound();
    if with_proof {
        let p = prove_correctness(&ch);
        let _ = writeln!(out, "{p}");
        ok &= p.holds;
    }
    ok
}

/// The ordering analysis of the channel under every strategy, each followed
/// by its correctness proof when `with_proof` (about a second each). The
/// second value is `true` when every analysis is sound and every proof holds.
pub fn orderings_report(capacity: usize, with_proof: bool) -> (String, bool) {
    let mut out = String::new();
    let mut ok = strategy::<Optimized>(capacity, with_proof, &mut out);
    ok &= strategy::<AcquireRelease>(capacity, with_proof, &mut out);
    ok &= strategy::<SeqCstAll>(capacity, with_proof, &mut out);
    (out, ok)
}

/// The proof files the comparison report writes next to `index.html` and
/// links from it.
pub const PROOF_FILES: [(&str, &str); 2] = [
    (
        "proofs-queue.txt",
        "queue proofs (waitless-bench prove queue)",
    ),
    (
        "orderings-channel.txt",
        "channel memory orderings (waitless-bench analyze orderings)",
    ),
];

/// Writes [`PROOF_FILES`] into `dir` (about five seconds: the four queue
/// proofs for capacity 1024 with 8 thread records, and the ordering
/// analysis of every channel strategy with the correctness proof of the
/// default one). Returns whether every proof held.
pub fn write_proof_files(dir: &std::path::Path) -> std::io::Result<bool> {
    let (queue, queue_ok) = queue_report(1024, 8);
    std::fs::write(dir.join(PROOF_FILES[0].0), queue)?;
    let mut orderings = String::new();
    let mut ok = strategy::<Optimized>(1024, true, &mut orderings);
    ok &= strategy::<AcquireRelease>(1024, false, &mut orderings);
    ok &= strategy::<SeqCstAll>(1024, false, &mut orderings);
    std::fs::write(dir.join(PROOF_FILES[1].0), orderings)?;
    Ok(queue_ok && ok)
}
