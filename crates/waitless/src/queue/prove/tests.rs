//! The proof reports can say "no": a bound that is too small, a lost or
//! duplicated value, an order violation and a panic in the evidence run each
//! make the report contradict the claim, with the reason.

use super::*;

fn log(produced: u64, received: &[u64]) -> WorkerLog {
    WorkerLog {
        produced,
        received: received.to_vec(),
        ..WorkerLog::default()
    }
}

fn v(producer: u64, i: u64) -> u64 {
    producer << VALUE_BITS | i
}

#[test]
fn exactly_once_accepts_a_correct_run() {
    let logs = [log(3, &[v(1, 0), v(0, 0)]), log(1, &[v(0, 1)])];
    assert_eq!(exactly_once_in_order(&logs, &[v(0, 2)]), None);
}

#[test]
fn exactly_once_finds_a_lost_value() {
    let logs = [log(3, &[v(0, 0)]), log(0, &[v(0, 2)])];
    let p = exactly_once_in_order(&logs, &[]).expect("a loss");
    assert!(p.contains("value 1 of producer 0 was lost"), "{p}");
}

#[test]
fn exactly_once_finds_a_duplicate() {
    let logs = [log(2, &[v(0, 0), v(0, 1)]), log(0, &[v(0, 1)])];
    let p = exactly_once_in_order(&logs, &[]).expect("a duplicate");
    assert!(
        p.contains("dequeued twice") || p.contains("more came out"),
        "{p}"
    );
}

#[test]
fn exactly_once_finds_a_fifo_violation() {
    let logs = [log(2, &[v(0, 1), v(0, 0)])];
    let p = exactly_once_in_order(&logs, &[]).expect("an order violation");
    assert!(p.contains("FIFO violated"), "{p}");
}

#[test]
fn exactly_once_finds_a_foreign_value() {
    let logs = [log(0, &[v(7, 0)])];
    let p = exactly_once_in_order(&logs, &[]).expect("a foreign value");
    assert!(p.contains("no thread enqueued"), "{p}");
}

#[test]
fn a_panic_in_the_evidence_run_is_reported_not_propagated() {
    // Capacity 3 is rejected by the constructor: the fresh queue panics.
    let bad = Config {
        capacity: 3,
        threads: 2,
    };
    let run = adversarial_run(bad, Schedule::Plain, Effort::standard());
    let p = run.problem.expect("the panic is reported");
    assert!(p.contains("panicked") && p.contains("power of two"), "{p}");
}

#[test]
fn the_real_queue_holds_under_the_scaled_effort() {
    // Small enough for Miri (Effort::standard shrinks under cfg(miri)).
    let q = WaitFreeQueue::<u8>::with_threads(2, 2);
    let p = prove_enqueue_wait_freedom(&q);
    assert!(p.holds, "{p}");
    assert_eq!(p.bound, Some(enqueue_step_bound(2, 2) as u64));
    assert_eq!(p.observed.is_some(), cfg!(feature = "step-count"));
}

#[cfg(feature = "step-count")]
#[test]
fn a_bound_that_is_too_small_is_contradicted() {
    let q = WaitFreeQueue::<u8>::with_threads(2, 4);
    for op in [Op::Enqueue, Op::Dequeue] {
        let p = wait_freedom_against(&q, op, |_, _| 3, Some(Duration::from_millis(50)));
        assert!(!p.holds, "{p}");
        assert_eq!(p.bound, Some(3));
        let o = p.observed.expect("step-count measures");
        assert!(o > 3, "{p}");
        assert!(
            p.evidence.contains("more than the bound of 3"),
            "{}",
            p.evidence
        );
        assert!(p.to_string().contains("CONTRADICTED"), "{p}");
    }
}
