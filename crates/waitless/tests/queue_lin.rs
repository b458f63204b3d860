//! Linearizability of small concurrent histories, checked by exhaustive
//! search (Wing–Gong with memoization) against a sequential bounded queue.
//!
//! Many short rounds (3–4 threads × a few operations on capacity 1–2) make
//! `Full` and `None` answers common, which is where a bounded queue is most
//! often wrong. The search is self-contained so this test does not wait for
//! `waitless-check`; the long stress histories there complement it.
#![cfg(not(loom))]

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;

use waitless::queue::{QueueError, WaitFreeQueue};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Enq(u32, bool),   // value, ok (false = Full)
    Deq(Option<u32>), // result
}

#[derive(Clone, Copy, Debug)]
struct Event {
    call: u64,
    ret: u64,
    op: Op,
}

fn linearizable(events: &[Event], cap: usize) -> bool {
    fn go(
        events: &[Event],
        cap: usize,
        done: u32,
        q: &mut VecDeque<u32>,
        seen: &mut HashSet<(u32, Vec<u32>)>,
    ) -> bool {
        if done.count_ones() as usize == events.len() {
            return true;
        }
        if !seen.insert((done, q.iter().copied().collect())) {
            return false;
        }
        // Only operations that no pending operation must precede.
        let min_ret = (0..events.len())
            .filter(|&i| done & (1 << i) == 0)
            .map(|i| events[i].ret)
            .min()
            .unwrap();
        for i in 0..events.len() {
            if done & (1 << i) != 0 || events[i].call > min_ret {
                continue;
            }
            match events[i].op {
                Op::Enq(v, true) if q.len() < cap => {
                    q.push_back(v);
                    if go(events, cap, done | 1 << i, q, seen) {
                        return true;
                    }
                    q.pop_back();
                }
                Op::Enq(_, false) if q.len() == cap && go(events, cap, done | 1 << i, q, seen) => {
                    return true;
                }
                Op::Deq(Some(v)) if q.front() == Some(&v) => {
                    q.pop_front();
                    if go(events, cap, done | 1 << i, q, seen) {
                        return true;
                    }
                    q.push_front(v);
                }
                Op::Deq(None) if q.is_empty() && go(events, cap, done | 1 << i, q, seen) => {
                    return true;
                }
                _ => {}
            }
        }
        false
    }
    go(events, cap, 0, &mut VecDeque::new(), &mut HashSet::new())
}

fn round(q: WaitFreeQueue<u32>, threads: usize, ops: usize, seed: u64) -> Vec<Event> {
    let clock = AtomicU64::new(0);
    let barrier = Barrier::new(threads);
    let mut all = Vec::new();
    thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (q, clock, barrier) = (&q, &clock, &barrier);
                s.spawn(move || {
                    let mut rng = seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    let mut evs = Vec::new();
                    barrier.wait();
                    for i in 0..ops {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        // SeqCst: one real-time order for call/return stamps.
                        let call = clock.fetch_add(1, Ordering::SeqCst);
                        let op = if rng % 2 == 0 {
                            let v = (t * 100 + i) as u32;
                            match q.enqueue(v) {
                                Ok(()) => Op::Enq(v, true),
                                Err(QueueError::Full(back)) => {
                                    assert_eq!(back, v);
                                    Op::Enq(v, false)
                                }
                            }
                        } else {
                            Op::Deq(q.dequeue())
                        };
                        let ret = clock.fetch_add(1, Ordering::SeqCst);
                        evs.push(Event { call, ret, op });
                    }
                    evs
                })
            })
            .collect();
        for h in hs {
            all.extend(h.join().unwrap());
        }
    });
    all
}

fn histories(build: fn(usize, usize) -> WaitFreeQueue<u32>) {
    let rounds = if cfg!(miri) { 5 } else { 1_500 };
    let mut full = 0;
    let mut empty = 0;
    for r in 0..rounds {
        for (cap, threads, ops) in [(1usize, 3usize, 4usize), (2, 4, 4), (2, 3, 5)] {
            let h = round(build(cap, threads), threads, ops, r as u64 * 7 + cap as u64);
            full += h
                .iter()
                .filter(|e| matches!(e.op, Op::Enq(_, false)))
                .count();
            empty += h.iter().filter(|e| e.op == Op::Deq(None)).count();
            assert!(
                linearizable(&h, cap),
                "not linearizable (capacity {cap}): {h:?}"
            );
        }
    }
    // The rounds must actually reach the interesting answers.
    assert!(
        cfg!(miri) || (full > 0 && empty > 0),
        "full {full} empty {empty}"
    );
}

#[test]
fn small_histories_are_linearizable() {
    histories(WaitFreeQueue::with_threads);
}

/// The same with every operation forced through announce-and-help.
#[cfg(feature = "step-count")]
#[test]
fn small_histories_are_linearizable_slow_path_only() {
    histories(waitless::queue::verification::queue_slow_path_only);
}

#[test]
fn checker_rejects_a_wrong_history() {
    // enqueue(1) completes, then a dequeue returns None: not linearizable.
    let h = [
        Event {
            call: 0,
            ret: 1,
            op: Op::Enq(1, true),
        },
        Event {
            call: 2,
            ret: 3,
            op: Op::Deq(None),
        },
    ];
    assert!(!linearizable(&h, 1));
    // Full on an empty queue of capacity 2: not linearizable.
    let h = [Event {
        call: 0,
        ret: 1,
        op: Op::Enq(1, false),
    }];
    assert!(!linearizable(&h, 2));
    // Concurrent enqueue and a dequeue that sees it: fine.
    let h = [
        Event {
            call: 0,
            ret: 3,
            op: Op::Enq(1, true),
        },
        Event {
            call: 1,
            ret: 2,
            op: Op::Deq(Some(1)),
        },
    ];
    assert!(linearizable(&h, 1));
}
