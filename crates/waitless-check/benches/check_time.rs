//! Checking time of 4-thread histories of 1k, 10k and 100k operations:
//!
//! - `rec`: recorded from real runs of a bounded `Mutex<VecDeque>` queue
//!   (one partition) and a `Mutex<HashMap>` map (partitioned per key). On a
//!   loaded 2-core machine these overlap little (see the overlap column).
//! - `gen`: generated with heavy overlap: four simulated threads issue
//!   operations back to back with random durations, each takes effect at a
//!   random instant inside its interval, and the answers come from running
//!   the operations sequentially in that order (so about four operations
//!   are open at any time, and the history is linearizable).
//!
//! Every check is bounded (`STEP_LIMIT`); a history that does not decide is
//! counted in the `undecided` column instead of hanging the benchmark.
//!
//! `cargo bench -p waitless-check --bench check_time`

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use waitless_check::*;

const THREADS: u64 = 4;
const QUEUE_CAP: usize = 8;
const STEP_LIMIT: u64 = 20_000_000;
const MAP_KEYS: u64 = 256;

fn record_queue(total: u64, seed: u64) -> History<QueueOp<u64>, QueueRet<u64>> {
    let q = Mutex::new(VecDeque::new());
    let rec = Recorder::new();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (q, rec) = (&q, &rec);
            s.spawn(move || {
                let mut rng = generate::Rng::new(seed ^ (t + 1));
                let mut log = rec.thread();
                for i in 0..total / THREADS {
                    if rng.next_u64() % 2 == 0 {
                        let v = t << 32 | i;
                        log.op(QueueOp::Enqueue(v), || {
                            let mut q = q.lock().unwrap();
                            if q.len() == QUEUE_CAP {
                                QueueRet::Full
                            } else {
                                q.push_back(v);
                                QueueRet::Enqueued
                            }
                        });
                    } else {
                        log.op(QueueOp::Dequeue, || {
                            QueueRet::Dequeued(q.lock().unwrap().pop_front())
                        });
                    }
                }
            });
        }
    });
    rec.into_history()
}

fn record_map(total: u64, seed: u64) -> History<MapOp<u64, u64>, MapRet<u64>> {
    let m = Mutex::new(HashMap::new());
    let rec = Recorder::new();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (m, rec) = (&m, &rec);
            s.spawn(move || {
                let mut rng = generate::Rng::new(seed ^ (t + 1));
                let mut log = rec.thread();
                for i in 0..total / THREADS {
                    let k = rng.next_u64() % MAP_KEYS;
                    match rng.next_u64() % 4 {
                        0 | 1 => {
                            log.op(MapOp::Get(k), || {
                                MapRet::Got(m.lock().unwrap().get(&k).copied())
                            });
                        }
                        2 => {
                            let v = t << 32 | i;
                            log.op(MapOp::Insert(k, v), || {
                                MapRet::Inserted(m.lock().unwrap().insert(k, v))
                            });
                        }
                        _ => {
                            log.op(MapOp::Remove(k), || {
                                MapRet::Removed(m.lock().unwrap().remove(&k))
                            });
                        }
                    }
                }
            });
        }
    });
    rec.into_history()
}

fn generate_queue(total: u64, seed: u64) -> History<QueueOp<u64>, QueueRet<u64>> {
    generate::queue_history(THREADS as usize, total as usize, QUEUE_CAP, seed)
}

fn generate_map(total: u64, seed: u64) -> History<MapOp<u64, u64>, MapRet<u64>> {
    generate::map_history(THREADS as usize, total as usize, MAP_KEYS, seed)
}

/// Mean number of operations open at an operation's call (its own
/// included): how much the recorded history overlaps.
fn mean_overlap<I, O>(h: &History<I, O>) -> f64 {
    let mut ev: Vec<(u64, i64)> = Vec::new();
    for o in h.ops() {
        ev.push((o.call, 1));
        ev.push((o.ret.unwrap_or(u64::MAX), -1));
    }
    ev.sort_by_key(|&(t, d)| (t, -d));
    let (mut open, mut sum, mut calls) = (0i64, 0i64, 0i64);
    for (_, d) in ev {
        open += d;
        if d > 0 {
            sum += open;
            calls += 1;
        }
    }
    sum as f64 / calls.max(1) as f64
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench<M: Model>(
    name: &str,
    model: &M,
    total: u64,
    runs: u64,
    record: impl Fn(u64, u64) -> History<M::Input, M::Output>,
) {
    let mut times = Vec::new();
    let mut overlap = 0.0;
    let mut undecided = 0;
    for seed in 0..runs {
        let h = record(total, seed);
        overlap += mean_overlap(&h) / runs as f64;
        let start = Instant::now();
        let outcome = check_with_limit(model, &h, STEP_LIMIT);
        times.push(start.elapsed());
        match outcome {
            CheckOutcome::Linearizable => {}
            CheckOutcome::Unknown { .. } => undecided += 1,
            CheckOutcome::NonLinearizable(e) => panic!("{name}: {e}"),
        }
    }
    let med = median(times.clone());
    let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    println!(
        "{name:<24} {total:>8} {runs:>5} {overlap:>8.2} {:>11.3} {:>9.3} {:>9.3} {:>8.0} {undecided:>9}",
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        total as f64 / med.as_secs_f64() / 1e3,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs with no
    // flag: keep that run tiny.
    let quick = !std::env::args().any(|a| a == "--bench");
    println!("checking time, 4 recorded threads (times in ms; overlap = mean ops open at a call)");
    println!(
        "{:<24} {:>8} {:>5} {:>8} {:>11} {:>9} {:>9} {:>8} {:>9}",
        "workload",
        "ops",
        "runs",
        "overlap",
        "median ms",
        "min ms",
        "max ms",
        "kops/s",
        "undecided"
    );
    let sizes: &[(u64, u64)] = if quick {
        &[(1_000, 1)]
    } else {
        &[(1_000, 11), (10_000, 7), (100_000, 5)]
    };
    for &(total, runs) in sizes {
        bench(
            &format!("rec queue bounded({QUEUE_CAP})"),
            &QueueModel::bounded(QUEUE_CAP),
            total,
            runs,
            record_queue,
        );
        bench(
            &format!("rec map ({MAP_KEYS} keys)"),
            &MapModel::new(),
            total,
            runs,
            record_map,
        );
        bench(
            &format!("gen queue bounded({QUEUE_CAP})"),
            &QueueModel::bounded(QUEUE_CAP),
            total,
            runs,
            generate_queue,
        );
        bench(
            &format!("gen map ({MAP_KEYS} keys)"),
            &MapModel::new(),
            total,
            runs,
            generate_map,
        );
    }
}
