//! Property-based fuzz targets for the stack and the wait-free queue: their
//! whole public API driven sequentially against a std model, and with 2–4
//! threads under exact drop accounting and per-producer order checks.
//!
//! The map, the B-tree and the channels have their own targets
//! (`map_proptest`, `btree_proptest`, `channel_model`), the reclamation
//! schemes theirs in `reclaim_fuzz`. A default `cargo test` runs a few
//! hundred cases of each; `.ci/fuzz-for` reruns one target with fresh seeds
//! for a wall-clock budget (`docs/reliability.md` §4 has the figures).
#![cfg(not(loom))]

use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::Barrier;
use waitless::queue::WaitFreeQueue;
use waitless::stack::{LockFreeStack, StackConfig};
use waitless_check::DropLedger;

/// Runs `plans[..threads]` on one thread each, all released together; step
/// `i` of the plan that starts at id `first` calls `op(s, ledger, first + i,
/// step)`. Returns each thread's first id and the ids its `op` returned.
fn run_plans<S: Sync>(
    s: &S,
    ledger: &DropLedger,
    plans: Vec<Vec<bool>>,
    threads: usize,
    op: impl Fn(&S, &DropLedger, usize, bool) -> Option<usize> + Sync,
) -> Vec<(usize, Vec<usize>)> {
    let start = Barrier::new(threads);
    let mut base = 0;
    std::thread::scope(|sc| {
        let handles: Vec<_> = plans
            .into_iter()
            .take(threads)
            .map(|plan| {
                let first = base;
                base += plan.len();
                let (start, op) = (&start, &op);
                sc.spawn(move || {
                    start.wait();
                    let got = plan
                        .into_iter()
                        .enumerate()
                        .filter_map(|(i, step)| op(s, ledger, first + i, step))
                        .collect();
                    (first, got)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // `PROPTEST_CASES` sets the count (`.ci/fuzz-for`).
        cases: if cfg!(miri) {
            4
        } else {
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(128)
        },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum StackOp {
    Push(u16),
    Pop,
    Len,
    Drain(u8),
    Extend(Vec<u16>),
    AdvanceEpoch,
    Stats,
}

fn stack_op() -> impl Strategy<Value = StackOp> {
    prop_oneof![
        4 => any::<u16>().prop_map(StackOp::Push),
        4 => Just(StackOp::Pop),
        1 => Just(StackOp::Len),
        1 => (0u8..4).prop_map(StackOp::Drain),
        1 => proptest::collection::vec(any::<u16>(), 0..8).prop_map(StackOp::Extend),
        1 => Just(StackOp::AdvanceEpoch),
        1 => Just(StackOp::Stats),
    ]
}

#[derive(Debug, Clone)]
enum QueueOp {
    Enqueue(u16),
    Dequeue,
    EnqueueAll(Vec<u16>),
    Len,
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        4 => any::<u16>().prop_map(QueueOp::Enqueue),
        4 => Just(QueueOp::Dequeue),
        1 => proptest::collection::vec(any::<u16>(), 0..6).prop_map(QueueOp::EnqueueAll),
        1 => Just(QueueOp::Len),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// One thread: every operation of the stack agrees with a `Vec`, with
    /// and without elimination and statistics.
    #[test]
    fn stack_matches_a_vec(
        elimination in any::<bool>(),
        statistics in any::<bool>(),
        ops in proptest::collection::vec(stack_op(), 1..300),
    ) {
        let s = LockFreeStack::with_config(StackConfig { elimination, statistics });
        let mut m: Vec<u16> = Vec::new();
        for op in ops {
            match op {
                StackOp::Push(v) => {
                    prop_assert!(s.push(v).is_ok());
                    m.push(v);
                }
                StackOp::Pop => {
                    let g = s.enter();
                    prop_assert_eq!(s.pop(&g), m.pop());
                }
                StackOp::Len => {
                    prop_assert_eq!(s.len(), m.len());
                    prop_assert_eq!(s.is_empty(), m.is_empty());
                }
                StackOp::Drain(n) => {
                    let got: Vec<u16> = s.drain().take(usize::from(n)).collect();
                    let want: Vec<u16> = (0..usize::from(n)).map_while(|_| m.pop()).collect();
                    prop_assert_eq!(got, want);
                }
                StackOp::Extend(vs) => {
                    (&s).extend(vs.iter().copied());
                    m.extend(vs);
                }
                StackOp::AdvanceEpoch => s.advance_epoch(),
                StackOp::Stats => {
                    let st = s.stats();
                    if statistics {
                        prop_assert_eq!(st.active_nodes, m.len());
                    }
                }
            }
        }
        let rest: Vec<u16> = s.drain().collect();
        m.reverse();
        prop_assert_eq!(rest, m);
    }

    /// 2–4 threads push and pop tracked values at random; every value is
    /// popped at most once, and every value ends up dropped exactly once
    /// (popped and dropped by a thread, or dropped with the stack).
    #[test]
    fn concurrent_stack_drops_each_value_once(
        threads in 2usize..=4,
        elimination in any::<bool>(),
        plans in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 1..200), 4),
    ) {
        let total: usize = plans.iter().take(threads).map(|p| p.len()).sum();
        let ledger = DropLedger::new(total);
        let stack = LockFreeStack::with_config(StackConfig { elimination, statistics: true });
        let results = run_plans(&stack, &ledger, plans, threads, |s, l, id, push| {
            if push {
                assert!(s.push(l.track(id)).is_ok());
                None
            } else {
                s.pop(&s.enter()).map(|v| v.id())
            }
        });
        let mut seen = vec![false; total];
        for (_, popped) in results {
            for id in popped {
                prop_assert!(!seen[id], "value {} popped twice", id);
                seen[id] = true;
            }
        }
        let created = ledger.created();
        let left = stack.len();
        prop_assert_eq!(ledger.live(), left, "values alive beyond the ones still in the stack");
        drop(stack);
        prop_assert_eq!(ledger.dropped(), created);
        ledger.assert_all_dropped();
    }

    /// One thread: the queue agrees with a bounded `VecDeque`, including
    /// `Full` (the value given back), `None`, `len`, `is_full` and the
    /// bulk enqueue's leftover.
    #[test]
    fn queue_matches_a_bounded_deque(
        log2_cap in 0u32..5,
        records in 1usize..4,
        ops in proptest::collection::vec(queue_op(), 1..300),
    ) {
        let cap = 1usize << log2_cap;
        let q = WaitFreeQueue::with_threads(cap, records);
        let mut m: VecDeque<u16> = VecDeque::new();
        for op in ops {
            match op {
                QueueOp::Enqueue(v) => match q.enqueue(v) {
                    Ok(()) => {
                        prop_assert!(m.len() < cap);
                        m.push_back(v);
                    }
                    Err(e) => {
                        prop_assert_eq!(m.len(), cap);
                        prop_assert_eq!(e.into_inner(), v);
                    }
                },
                QueueOp::Dequeue => prop_assert_eq!(q.dequeue(), m.pop_front()),
                QueueOp::EnqueueAll(vs) => {
                    let fit = (cap - m.len()).min(vs.len());
                    let rest: Vec<u16> = match q.enqueue_all(vs.iter().copied()) {
                        Ok(n) => {
                            prop_assert_eq!(n, vs.len());
                            Vec::new()
                        }
                        Err(e) => {
                            prop_assert_eq!(e.enqueued, fit);
                            std::iter::once(e.value).chain(e.rest).collect()
                        }
                    };
                    m.extend(vs[..fit].iter().copied());
                    prop_assert_eq!(rest, vs[fit..].to_vec());
                }
                QueueOp::Len => {
                    prop_assert_eq!(q.len(), m.len());
                    prop_assert_eq!(q.is_empty(), m.is_empty());
                    prop_assert_eq!(q.is_full(), m.len() == cap);
                }
            }
        }
    }

    /// 2–4 threads with fewer records than threads (the slow path and
    /// record sharing run): every value is dequeued at most once, values of
    /// one producer reach any one consumer in their enqueue order, and
    /// every value is dropped exactly once.
    #[test]
    fn concurrent_queue_keeps_order_and_drops_each_value_once(
        threads in 2usize..=4,
        log2_cap in 0u32..4,
        records in 1usize..3,
        plans in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 1..200), 4),
    ) {
        let total: usize = plans.iter().take(threads).map(|p| p.len()).sum();
        let ledger = DropLedger::new(total);
        let q = WaitFreeQueue::with_threads(1usize << log2_cap, records);
        let results = run_plans(&q, &ledger, plans, threads, |q, l, id, enq| {
            if enq {
                // Full gives the tracked value back; it drops here.
                let _ = q.enqueue(l.track(id));
                None
            } else {
                q.dequeue().map(|v| v.id())
            }
        });
        let starts: Vec<usize> = results.iter().map(|r| r.0).collect();
        let producer = |id: usize| starts.iter().rposition(|&s| s <= id).unwrap();
        let mut seen = vec![false; total];
        for (_, got) in &results {
            let mut last = vec![None::<usize>; starts.len()];
            for &id in got {
                prop_assert!(!seen[id], "value {} dequeued twice", id);
                seen[id] = true;
                let p = producer(id);
                prop_assert!(last[p].map_or(true, |l| l < id), "producer {}'s values out of order", p);
                last[p] = Some(id);
            }
        }
        prop_assert_eq!(ledger.live(), q.len());
        drop(q);
        ledger.assert_all_dropped();
    }
}
