//! `NodeAwareStack`: histories of threads spread over 2, 4 and 8 simulated
//! nodes are linearizable stacks (`waitless_check::StackModel`), the
//! structure holds up under contention, and every value is dropped
//! exactly once.
#![cfg(not(loom))]

use std::sync::Barrier;

use waitless::numa::{set_node_override, NodeAwareStack};
use waitless_check::{assert_linearizable, DropLedger, Recorder, StackModel, StackOp, StackRet};

fn recorded_run(threads: u64, nodes: usize, ops: u64) {
    let s = NodeAwareStack::with_nodes(nodes);
    let rec: Recorder<StackOp<u64>, StackRet<u64>> = Recorder::new();
    // A start barrier, so the threads' operations really overlap.
    let start = Barrier::new(threads as usize);
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (s, rec, start) = (&s, &rec, &start);
            sc.spawn(move || {
                set_node_override(Some(t as usize % nodes));
                let mut log = rec.thread();
                start.wait();
                for i in 0..ops {
                    if (i / 3 + t) % 2 == 0 {
                        let v = t * ops + i;
                        log.op(StackOp::Push(v), || {
                            s.push(v).unwrap();
                            StackRet::Pushed
                        });
                    } else {
                        log.op(StackOp::Pop, || {
                            let g = s.enter();
                            StackRet::Popped(s.pop(&g))
                        });
                    }
                }
            });
        }
    });
    assert_linearizable(&StackModel::new(), &rec.into_history());
}

fn ops(threads: u64) -> u64 {
    if cfg!(miri) {
        10
    } else {
        3000 / threads
    }
}

#[test]
fn history_4_threads_2_nodes() {
    for _ in 0..5 {
        recorded_run(4, 2, ops(4));
    }
}

#[test]
fn history_8_threads_4_nodes() {
    for _ in 0..10 {
        recorded_run(8, 4, ops(8));
    }
}

#[test]
fn history_8_threads_8_nodes() {
    for _ in 0..5 {
        recorded_run(8, 8, ops(8));
    }
}

#[test]
fn every_value_dropped_once_under_contention() {
    let threads = 4;
    let n = if cfg!(miri) { 20 } else { 20_000 };
    // Ids are unique per value: a double drop of one panics in the ledger.
    let ledger = DropLedger::new(threads * n);
    {
        let s = NodeAwareStack::with_nodes(2);
        std::thread::scope(|sc| {
            for t in 0..threads {
                let (s, ledger) = (&s, &ledger);
                sc.spawn(move || {
                    set_node_override(Some(t % 2));
                    for i in 0..n {
                        s.push(ledger.track(t * n + i)).unwrap();
                        if i % 4 != 0 {
                            let g = s.enter();
                            drop(s.pop(&g));
                        }
                    }
                });
            }
        });
        let st = s.stats();
        assert_eq!(st.successful_pushes, (threads * n) as u64);
        assert_eq!(ledger.created(), threads * n);
        assert_eq!(ledger.live(), st.active_nodes, "{st:?}");
        assert_eq!(
            st.successful_pushes - st.successful_pops,
            st.active_nodes as u64
        );
    }
    ledger.assert_all_dropped();
}
