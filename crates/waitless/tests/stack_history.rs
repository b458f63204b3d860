//! Stress tests whose recorded histories are checked for linearizability
//! against `waitless_check::StackModel`, including 8 threads on 2 cores.
#![cfg(not(loom))]

use std::collections::VecDeque;
use std::sync::Mutex;
use waitless::stack::{LockFreeStack, StackConfig};

use waitless_check::{
    assert_linearizable, check, History, Recorder, StackModel, StackOp, StackRet,
};

/// The operations the recorded runs drive.
trait TestStack: Sync {
    fn push(&self, v: u64);
    fn pop(&self) -> Option<u64>;
}

impl TestStack for LockFreeStack<u64> {
    fn push(&self, v: u64) {
        LockFreeStack::push(self, v).unwrap();
    }
    fn pop(&self) -> Option<u64> {
        let g = self.enter();
        LockFreeStack::pop(self, &g)
    }
}

/// A deliberately wrong "stack" (FIFO): the harness must reject it, which
/// shows the history tests can fail.
struct Fifo(Mutex<VecDeque<u64>>);

impl TestStack for Fifo {
    fn push(&self, v: u64) {
        self.0.lock().unwrap().push_back(v);
    }
    fn pop(&self) -> Option<u64> {
        self.0.lock().unwrap().pop_front()
    }
}

/// `threads` threads each run `ops` operations (push unique values / pop),
/// recording every call and return; the history must be linearizable.
fn recorded_run(threads: u64, ops: u64, cfg: StackConfig) {
    let s = LockFreeStack::with_config(cfg);
    let history = record(&s, threads, ops);
    assert_linearizable(&StackModel::new(), &history);
}

fn record(s: &impl TestStack, threads: u64, ops: u64) -> History<StackOp<u64>, StackRet<u64>> {
    let rec: Recorder<StackOp<u64>, StackRet<u64>> = Recorder::new();
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (s, rec) = (&s, &rec);
            sc.spawn(move || {
                let mut log = rec.thread();
                for i in 0..ops {
                    // Mostly balanced, with runs of pushes and pops so the
                    // stack both grows and empties.
                    let push = (i / 3 + t) % 2 == 0;
                    if push {
                        let v = t * ops + i;
                        log.op(StackOp::Push(v), || {
                            s.push(v);
                            StackRet::Pushed
                        });
                    } else {
                        log.op(StackOp::Pop, || StackRet::Popped(s.pop()));
                    }
                }
            });
        }
    });
    rec.into_history()
}

fn ops_per_thread(threads: u64) -> u64 {
    if cfg!(miri) {
        10
    } else {
        3000 / threads
    }
}

#[test]
fn history_2_threads_is_linearizable() {
    for _ in 0..5 {
        recorded_run(2, ops_per_thread(2), StackConfig::default());
    }
}

#[test]
fn history_8_threads_oversubscribed_is_linearizable() {
    for _ in 0..20 {
        recorded_run(8, ops_per_thread(8), StackConfig::default());
    }
}

#[test]
fn a_fifo_history_is_rejected() {
    let fifo = Fifo(Mutex::new(VecDeque::new()));
    let history = record(&fifo, 2, 200);
    assert!(
        check(&StackModel::new(), &history).is_err(),
        "a FIFO passed as a stack: the history check would not catch bugs"
    );
}

#[test]
fn history_without_elimination_is_linearizable() {
    for _ in 0..3 {
        recorded_run(
            8,
            ops_per_thread(8),
            StackConfig {
                elimination: false,
                statistics: true,
            },
        );
    }
}
