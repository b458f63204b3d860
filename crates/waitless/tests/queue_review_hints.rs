//! Review tests (q11dr) for the queue's "ticket counters as hints" (round
//! 5): a fast attempt scans up to `W` slots from the counter or from its
//! record's last fill, and the counter moves once per line of `W` tickets,
//! so it may lag the done tickets and every record's hint sits somewhere
//! else in the window.
//!
//! * `operations_one_at_a_time_on_many_records_match_a_model`: several
//!   threads, each keeping its own record (so its own per-side hint), run
//!   the operations one at a time in a seeded random order. With nothing
//!   concurrent every answer is determined: each `Full`/`None`, each value
//!   and `len` must equal a `VecDeque` model's, and dropping the queue
//!   must drop exactly the values left in it, once. Fails if a scan from a
//!   lagging counter or from a stale hint decides `Full`/`None` wrongly,
//!   skips a filled ticket, or if `len`/`Drop` miss the lag.
//! * `per_producer_order_survives_concurrent_scans`: producers enqueue
//!   increasing sequence numbers; every consumer must see each producer's
//!   numbers in increasing order, and every value must come out exactly
//!   once. Fails if a losing fill that moves on to the next slot lets a
//!   later enqueue overtake an earlier completed one, or if a dequeuer
//!   skips a filled slot.
#![cfg(not(loom))]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use waitless::queue::{QueueError, WaitFreeQueue};

/// A value whose drop is recorded (exactly-once drop check).
struct Tracked<'a> {
    v: u64,
    dropped: &'a [AtomicU8],
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        let before = self.dropped[self.v as usize].fetch_add(1, Ordering::Relaxed);
        assert_eq!(before, 0, "value {} dropped twice", self.v);
    }
}

enum Cmd {
    Enq(u64),
    Deq,
    Stop,
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Enqueued,
    Full(u64),
    Dequeued(Option<u64>),
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn one_at_a_time(cap: usize, workers: usize, ops: usize, seed: u64) {
    let dropped: Vec<AtomicU8> = (0..ops).map(|_| AtomicU8::new(0)).collect();
    let q: WaitFreeQueue<Tracked<'_>> = WaitFreeQueue::with_threads(cap, workers);
    let mut model: VecDeque<u64> = VecDeque::new();
    // Which op numbers were enqueues (only those created a value).
    let mut created = vec![false; ops];
    let (mut fulls, mut nones) = (0usize, 0usize);
    thread::scope(|s| {
        let (reply_tx, reply_rx) = mpsc::channel::<Reply>();
        let mut cmd_tx = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = mpsc::channel::<Cmd>();
            cmd_tx.push(tx);
            let (q, dropped, reply_tx) = (&q, &dropped[..], reply_tx.clone());
            s.spawn(move || {
                while let Ok(cmd) = rx.recv() {
                    let r = match cmd {
                        Cmd::Enq(v) => match q.enqueue(Tracked { v, dropped }) {
                            Ok(()) => Reply::Enqueued,
                            Err(QueueError::Full(back)) => Reply::Full(back.v),
                        },
                        Cmd::Deq => Reply::Dequeued(q.dequeue().map(|t| t.v)),
                        Cmd::Stop => break,
                    };
                    reply_tx.send(r).unwrap();
                }
            });
        }
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        // Phases biased towards enqueues or dequeues, so that the queue runs
        // full and empty many times and the counters lap the ring.
        let mut enq_bias = 50u64;
        for v in 0..ops as u64 {
            if v % 16 == 0 {
                enq_bias = [15, 50, 85][(xorshift(&mut rng) % 3) as usize];
            }
            let w = (xorshift(&mut rng) % workers as u64) as usize;
            let enq = xorshift(&mut rng) % 100 < enq_bias;
            created[v as usize] = enq;
            cmd_tx[w]
                .send(if enq { Cmd::Enq(v) } else { Cmd::Deq })
                .unwrap();
            let got = reply_rx.recv().unwrap();
            let want = if enq {
                if model.len() < cap {
                    model.push_back(v);
                    Reply::Enqueued
                } else {
                    fulls += 1;
                    Reply::Full(v)
                }
            } else {
                let d = model.pop_front();
                if d.is_none() {
                    nones += 1;
                }
                Reply::Dequeued(d)
            };
            assert_eq!(
                got, want,
                "op {v} on worker {w} (capacity {cap}, seed {seed}): queue {got:?}, model {want:?}"
            );
            // Quiescent: `len` is exact even with lagging counters.
            assert_eq!(q.len(), model.len(), "len after op {v} (capacity {cap})");
        }
        for tx in &cmd_tx {
            tx.send(Cmd::Stop).unwrap();
        }
    });
    // The run must reach both answers (Miri's short runs need not fill
    // the larger queues).
    assert!(
        cfg!(miri) || (fulls > 0 && nones > 0),
        "fulls {fulls} nones {nones}"
    );
    // Every value not left in the queue was dropped once already
    // (dequeued or given back by `Full`, then dropped by the worker).
    for (v, d) in dropped.iter().enumerate() {
        let left = model.contains(&(v as u64));
        assert_eq!(
            d.load(Ordering::Relaxed),
            u8::from(created[v] && !left),
            "value {v} (left in queue: {left})"
        );
    }
    drop(q);
    for (v, d) in dropped.iter().enumerate() {
        assert_eq!(
            d.load(Ordering::Relaxed),
            u8::from(created[v]),
            "value {v} not dropped once"
        );
    }
}

#[test]
fn operations_one_at_a_time_on_many_records_match_a_model() {
    let ops = if cfg!(miri) { 120 } else { 3000 };
    let seeds = if cfg!(miri) { 1 } else { 4 };
    for cap in [1usize, 2, 4, 8, 16, 32] {
        for seed in 0..seeds {
            one_at_a_time(cap, 3, ops, seed * 31 + cap as u64);
        }
    }
}

fn per_producer_order(q: &WaitFreeQueue<u64>, producers: usize, consumers: usize, per: usize) {
    let got: Vec<AtomicUsize> = (0..producers * per).map(|_| AtomicUsize::new(0)).collect();
    // Producers whose every enqueue has returned.
    let finished = AtomicUsize::new(0);
    thread::scope(|s| {
        for p in 0..producers {
            let finished = &finished;
            s.spawn(move || {
                for i in 0..per {
                    let mut v = (p * per + i) as u64;
                    loop {
                        match q.enqueue(v) {
                            Ok(()) => break,
                            Err(QueueError::Full(back)) => {
                                v = back;
                                thread::yield_now();
                            }
                        }
                    }
                }
                // Release: pairs with the consumers' Acquire load.
                finished.fetch_add(1, Ordering::Release);
            });
        }
        for _ in 0..consumers {
            let (got, finished) = (&got, &finished);
            s.spawn(move || {
                // The last sequence number seen from each producer.
                let mut last: Vec<Option<usize>> = vec![None; producers];
                loop {
                    // Read before the dequeue: a `None` after every enqueue
                    // returned means every value was dequeued by then (by
                    // one consumer or another), so this one may stop.
                    let all_in = finished.load(Ordering::Acquire) == producers;
                    match q.dequeue() {
                        Some(v) => {
                            let v = v as usize;
                            let (p, i) = (v / per, v % per);
                            if let Some(l) = last[p] {
                                assert!(
                                    i > l,
                                    "producer {p}: {i} dequeued after {l} (FIFO broken)"
                                );
                            }
                            last[p] = Some(i);
                            got[v].fetch_add(1, Ordering::Relaxed);
                        }
                        None if all_in => break,
                        None => thread::yield_now(),
                    }
                }
            });
        }
    });
    for (v, c) in got.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "value {v} not dequeued once");
    }
    assert_eq!(q.dequeue(), None);
    assert_eq!(q.len(), 0);
}

#[test]
fn per_producer_order_survives_concurrent_scans() {
    let per = if cfg!(miri) { 40 } else { 10_000 };
    for cap in [2usize, 8, 64] {
        let q = WaitFreeQueue::with_threads(cap, 2);
        per_producer_order(&q, 3, 2, per);
    }
}

/// The same with yields at the protocol's hook points (between the scan's
/// loads and CASes), so that scans are preempted mid-window and more
/// operations fall back to the slow path next to fast ones.
#[cfg(feature = "step-count")]
#[test]
fn per_producer_order_survives_concurrent_scans_with_yields() {
    let per = if cfg!(miri) { 20 } else { 2_000 };
    for cap in [2usize, 8, 64] {
        let q = waitless::queue::verification::queue_with_yield_hooks(cap, 2);
        per_producer_order(&q, 3, 2, per);
    }
}

/// Memory safety with lagging counters at `Drop`: many short concurrent
/// bursts on small queues (so the counters are left anywhere in their
/// window, also exactly `W` behind after a stale line-end CAS), then the
/// queue is dropped. Every value is dropped exactly once: by the consumer
/// that dequeued it, by the producer that got it back with `Full`, or by
/// the queue's `Drop`. Fails if `Drop` starts from the lagging `head`
/// instead of the first unconsumed ticket (a value dropped twice or never).
#[test]
fn every_value_is_dropped_once_after_concurrent_bursts() {
    let rounds = if cfg!(miri) { 2 } else { 150 };
    for round in 0..rounds {
        for cap in [1usize, 2, 4, 8, 16] {
            let (threads, ops) = (3usize, 24usize);
            let dropped: Vec<AtomicU8> = (0..threads * ops).map(|_| AtomicU8::new(0)).collect();
            let q: WaitFreeQueue<Tracked<'_>> = WaitFreeQueue::with_threads(cap, 2);
            thread::scope(|s| {
                for t in 0..threads {
                    let (q, dropped) = (&q, &dropped[..]);
                    s.spawn(move || {
                        let mut rng = (round * 131 + t * 7 + cap) as u64 | 1;
                        for i in 0..ops {
                            let v = (t * ops + i) as u64;
                            if xorshift(&mut rng) % 3 != 0 {
                                drop(q.enqueue(Tracked { v, dropped }));
                            } else {
                                drop(q.dequeue());
                                // The unused value is dropped here, once.
                                drop(Tracked { v, dropped });
                            }
                        }
                    });
                }
            });
            drop(q);
            for (v, d) in dropped.iter().enumerate() {
                assert_eq!(
                    d.load(Ordering::Relaxed),
                    1,
                    "value {v} (capacity {cap}, round {round}) not dropped once"
                );
            }
        }
    }
}
