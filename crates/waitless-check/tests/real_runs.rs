//! Real recorded runs: a correct lock-based queue and map are accepted, a
//! deliberately racy queue is caught.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::thread;

use waitless_check::*;

const THREADS: u64 = 4;
const CAP: usize = 4;

/// Tiny per-thread PRNG (xorshift64*), so the tests need no dependency.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A bounded queue: correct (`split == false`) or with a dequeue split into
/// two critical sections (`split == true`): read the front, unlock, yield,
/// lock again and pop whatever is at the front then. Two dequeuers can read
/// the same front, so one value comes out twice and another never.
struct TestQueue {
    q: Mutex<VecDeque<u64>>,
    split: bool,
}

impl TestQueue {
    fn enqueue(&self, v: u64) -> QueueRet<u64> {
        let mut q = self.q.lock().unwrap();
        if q.len() == CAP {
            QueueRet::Full
        } else {
            q.push_back(v);
            QueueRet::Enqueued
        }
    }

    fn dequeue(&self) -> QueueRet<u64> {
        if !self.split {
            return QueueRet::Dequeued(self.q.lock().unwrap().pop_front());
        }
        let front = self.q.lock().unwrap().front().copied();
        if front.is_none() {
            return QueueRet::Dequeued(None);
        }
        // The race window: another dequeuer may read the same front now.
        thread::yield_now();
        self.q.lock().unwrap().pop_front();
        QueueRet::Dequeued(front)
    }
}

fn record_queue(
    split: bool,
    ops_per_thread: u64,
    seed: u64,
) -> History<QueueOp<u64>, QueueRet<u64>> {
    let queue = TestQueue {
        q: Mutex::new(VecDeque::new()),
        split,
    };
    let rec = Recorder::new();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (queue, rec) = (&queue, &rec);
            s.spawn(move || {
                let mut rng = Rng::new(seed ^ (t + 1));
                let mut log = rec.thread();
                for i in 0..ops_per_thread {
                    if rng.next() % 2 == 0 {
                        let v = t << 32 | i; // unique values
                        log.op(QueueOp::Enqueue(v), || queue.enqueue(v));
                    } else {
                        log.op(QueueOp::Dequeue, || queue.dequeue());
                    }
                }
            });
        }
    });
    rec.into_history()
}

#[test]
fn mutex_queue_under_four_threads_is_linearizable() {
    for seed in 0..3 {
        let h = record_queue(false, 1000, seed);
        assert_eq!(h.len(), 4000);
        assert_eq!(h.pending(), 0);
        assert_linearizable(&QueueModel::bounded(CAP), &h);
    }
}

#[test]
fn mutex_queue_with_the_wrong_capacity_is_caught() {
    // The same correct queue, checked against a larger capacity: its Full
    // answers become impossible. Shows the Full check bites on real runs.
    let mut rejected = false;
    for seed in 0..10 {
        let h = record_queue(false, 1000, seed);
        let saw_full = h.ops().iter().any(|o| o.output == Some(QueueRet::Full));
        if saw_full {
            let err = check(&QueueModel::bounded(CAP + 1), &h).unwrap_err();
            assert!(
                err.stuck()
                    .iter()
                    .any(|o| o.output.as_deref() == Some("Full"))
                    || err.prefix_len() > 0
            );
            rejected = true;
            break;
        }
    }
    assert!(
        rejected,
        "no run of a capacity-{CAP} queue ever reported Full"
    );
}

#[test]
fn racy_queue_is_caught() {
    const ATTEMPTS: u64 = 50;
    for attempt in 0..ATTEMPTS {
        let h = record_queue(true, 400, attempt);
        match check_with_limit(&QueueModel::bounded(CAP), &h, ASSERT_STEP_LIMIT) {
            CheckOutcome::NonLinearizable(err) => {
                // The explanation is about a dequeue.
                assert!(
                    err.stuck().iter().any(|o| o.input == "Dequeue"),
                    "attempt {attempt}: {err}"
                );
                println!("racy queue caught at attempt {attempt}:\n{err}");
                return;
            }
            CheckOutcome::Linearizable => {}
            CheckOutcome::Unknown { .. } => panic!("attempt {attempt}: undecided"),
        }
    }
    panic!("the racy queue passed {ATTEMPTS} checks");
}

#[test]
fn mutex_map_under_four_threads_is_linearizable() {
    let map: Mutex<HashMap<u64, u64>> = Mutex::new(HashMap::new());
    let rec = Recorder::new();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (map, rec) = (&map, &rec);
            s.spawn(move || {
                let mut rng = Rng::new(t + 100);
                let mut log = rec.thread();
                for i in 0..1000u64 {
                    let k = rng.next() % 16;
                    match rng.next() % 3 {
                        0 => {
                            let v = t << 32 | i;
                            log.op(MapOp::Insert(k, v), || {
                                MapRet::Inserted(map.lock().unwrap().insert(k, v))
                            });
                        }
                        1 => {
                            log.op(MapOp::Get(k), || {
                                MapRet::Got(map.lock().unwrap().get(&k).copied())
                            });
                        }
                        _ => {
                            log.op(MapOp::Remove(k), || {
                                MapRet::Removed(map.lock().unwrap().remove(&k))
                            });
                        }
                    }
                }
            });
        }
    });
    let h = rec.into_history();
    assert_eq!(h.len(), 4000);
    assert_linearizable(&MapModel::new(), &h);
}

#[test]
fn a_panicking_thread_leaves_a_pending_operation() {
    let queue = Mutex::new(VecDeque::new());
    let rec: Recorder<QueueOp<u64>, QueueRet<u64>> = Recorder::new();
    thread::scope(|s| {
        let (queue, rec) = (&queue, &rec);
        let h = s.spawn(move || {
            let mut log = rec.thread();
            log.op(QueueOp::Enqueue(1), || {
                queue.lock().unwrap().push_back(1);
                QueueRet::Enqueued
            });
            log.op(QueueOp::Enqueue(2), || {
                queue.lock().unwrap().push_back(2);
                panic!("injected failure after the effect");
            });
        });
        assert!(h.join().is_err());
        let mut log = rec.thread();
        for _ in 0..3 {
            log.op(QueueOp::Dequeue, || {
                QueueRet::Dequeued(queue.lock().unwrap().pop_front())
            });
        }
    });
    let h = rec.into_history();
    assert_eq!(h.pending(), 1);
    assert_linearizable(&QueueModel::unbounded(), &h);
}
