//! The queue's proof reports (`queue::verification::prove_*`) hold
//! on the real queue, report the bound for the queue's own configuration,
//! and leave the queue they are given untouched.
//!
//! Run with every feature to see the full evidence (step counts, checked
//! histories): `cargo test -p waitless --all-features --test proof_queue -- --nocapture`.
#![cfg(not(loom))]

use waitless::queue::verification::{
    dequeue_step_bound, enqueue_step_bound, prove_dequeue_wait_freedom, prove_enqueue_wait_freedom,
    prove_linearizability, prove_system_progress,
};
use waitless::queue::{WaitFreeQueue, DEFAULT_THREADS};
use waitless::Proof;

fn assert_report(p: &Proof) {
    println!("{p}");
    assert!(p.holds, "the proof does not hold:\n{p}");
    assert!(!p.property.is_empty());
    assert!(
        p.argument.contains("docs/wait-free-queue.md"),
        "{}",
        p.argument
    );
    let text = p.to_string();
    assert!(
        text.contains(p.property) && text.contains("holds"),
        "{text}"
    );
    if cfg!(feature = "step-count") {
        if let (Some(o), Some(b)) = (p.observed, p.bound) {
            assert!(o > 0 && o <= b, "observed {o}, bound {b}");
        }
    } else {
        assert_eq!(p.observed, None);
        assert!(p.evidence.contains("NOT CHECKED"), "{}", p.evidence);
    }
}

#[test]
fn wait_freedom_holds_and_states_the_bound_of_this_configuration() {
    for (cap, k) in [(2usize, 16usize), (1, 2)] {
        let q = WaitFreeQueue::<String>::with_threads(cap, k);
        let e = prove_enqueue_wait_freedom(&q);
        assert_report(&e);
        assert_eq!(e.bound, Some(enqueue_step_bound(cap, k) as u64));
        if cfg!(feature = "step-count") {
            assert!(e.observed.is_some());
        }
        let d = prove_dequeue_wait_freedom(&q);
        assert_report(&d);
        assert_eq!(d.bound, Some(dequeue_step_bound(cap, k) as u64));
    }
}

#[test]
fn default_queue_reports_the_default_thread_count() {
    let q = WaitFreeQueue::<u64>::new(1024);
    let p = prove_enqueue_wait_freedom(&q);
    assert_report(&p);
    assert_eq!(
        p.bound,
        Some(enqueue_step_bound(1024, DEFAULT_THREADS) as u64)
    );
}

#[test]
fn system_progress_holds() {
    let q = WaitFreeQueue::<u64>::with_threads(4, 8);
    let p = prove_system_progress(&q);
    assert_report(&p);
    let b = enqueue_step_bound(4, 8).max(dequeue_step_bound(4, 8)) as u64;
    assert_eq!(p.bound, Some(b));
    assert!(p.evidence.contains("completed at least"), "{}", p.evidence);
}

#[test]
fn linearizability_holds() {
    for (cap, k) in [(2usize, 4usize), (1024, 128)] {
        let q = WaitFreeQueue::<u64>::with_threads(cap, k);
        let p = prove_linearizability(&q);
        assert_report(&p);
        assert_eq!((p.bound, p.observed), (None, None));
        if cfg!(feature = "verify") {
            assert!(p.evidence.contains("linearizable"), "{}", p.evidence);
            assert!(!p.evidence.contains("NOT CHECKED: recorded histories"));
        } else {
            assert!(p.evidence.contains("feature `verify`"), "{}", p.evidence);
        }
    }
}

#[test]
fn the_queue_passed_in_is_not_disturbed() {
    let q = WaitFreeQueue::<String>::with_threads(4, 4);
    q.enqueue("a".to_string()).unwrap();
    q.enqueue("b".to_string()).unwrap();
    for p in [
        prove_enqueue_wait_freedom(&q),
        prove_dequeue_wait_freedom(&q),
        prove_linearizability(&q),
        prove_system_progress(&q),
    ] {
        assert!(p.holds, "{p}");
    }
    assert_eq!(q.len(), 2);
    assert_eq!(q.dequeue().as_deref(), Some("a"));
    assert_eq!(q.dequeue().as_deref(), Some("b"));
    assert_eq!(q.dequeue(), None);
}
