//! The cost-model simulation of `docs/numa.md`: runs each design with
//! threads spread over simulated nodes and counts the events that cost a
//! cross-node cache-line transfer on a real NUMA machine. Prints a table
//! (`cargo test --release -p waitless --test numa_costs -- --nocapture`)
//! and asserts the counters' invariants.
//!
//! Every thread yields after each operation, so the threads of all nodes
//! take turns even on a machine with fewer cores than threads (without it,
//! a 2-core machine runs each thread for a whole time slice and almost no
//! hand-over crosses nodes, which says nothing about a NUMA machine whose
//! nodes all run at once). The lock rows also yield *inside* the critical
//! section: the saturated regime, where every other thread queues while
//! one holds the lock, which is where cohorting is meant to act.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::sync::{Barrier, Mutex};

use waitless::numa::{set_node_override, CohortLock, NodeReplicated, NrConfig, Sequential};

const OPS: usize = if cfg!(miri) { 20 } else { 2_000 };

/// Per-operation rates of one simulated run.
#[derive(Debug)]
struct Row {
    design: String,
    nodes: usize,
    threads: usize,
    /// Events per operation, by name.
    rates: Vec<(&'static str, f64)>,
}

fn print(rows: &[Row]) {
    println!("\n| design | nodes | threads | events per operation |");
    println!("|---|---|---|---|");
    for r in rows {
        let ev: Vec<String> = r.rates.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        println!(
            "| {} | {} | {} | {} |",
            r.design,
            r.nodes,
            r.threads,
            ev.join(", ")
        );
    }
}

fn run_threads(threads: usize, nodes: usize, f: impl Fn(usize) + Sync) {
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (f, start) = (&f, &start);
            s.spawn(move || {
                set_node_override(Some(t % nodes));
                start.wait();
                f(t);
            });
        }
    });
}

/// A `Mutex` that notes the node of each holder: how often does a plain
/// lock hand over across nodes?
fn mutex_row(nodes: usize, threads: usize) -> Row {
    struct S {
        last: usize,
        cross: u64,
        n: u64,
    }
    let m = Mutex::new(S {
        last: usize::MAX,
        cross: 0,
        n: 0,
    });
    run_threads(threads, nodes, |t| {
        for _ in 0..OPS {
            let mut g = m.lock().unwrap();
            let node = t % nodes;
            if g.last != node && g.last != usize::MAX {
                g.cross += 1;
            }
            g.last = node;
            g.n += 1;
            std::thread::yield_now();
            drop(g);
            std::thread::yield_now();
        }
    });
    let s = m.into_inner().unwrap();
    assert_eq!(s.n, (threads * OPS) as u64);
    Row {
        design: "Mutex".into(),
        nodes,
        threads,
        rates: vec![("cross-node hand-overs", s.cross as f64 / s.n as f64)],
    }
}

fn cohort_row(nodes: usize, threads: usize, bound: usize) -> Row {
    let lock = CohortLock::with_bound(nodes, bound, 0u64);
    run_threads(threads, nodes, |_| {
        for _ in 0..OPS {
            let mut g = lock.lock();
            *g += 1;
            std::thread::yield_now();
            drop(g);
            std::thread::yield_now();
        }
    });
    let st = lock.stats();
    let n = st.acquisitions;
    assert_eq!(n, (threads * OPS) as u64);
    assert_eq!(*lock.lock(), n);
    assert_eq!(st.global_acquisitions + st.local_handovers, n);
    assert!(st.cross_node_handovers < st.global_acquisitions);
    // At most `bound` hand-overs inside a node per global acquisition.
    assert!(st.global_acquisitions * (bound as u64 + 1) >= n, "{st:?}");
    Row {
        design: format!("CohortLock bound {bound}"),
        nodes,
        threads,
        rates: vec![
            (
                "cross-node hand-overs",
                st.cross_node_handovers as f64 / n as f64,
            ),
            ("local hand-overs", st.local_handovers as f64 / n as f64),
        ],
    }
}

#[derive(Default)]
struct Map(HashMap<u64, u64>);
impl Sequential for Map {
    type ReadOp = u64;
    type WriteOp = (u64, u64);
    type Response = Option<u64>;
    fn read(&self, k: &u64) -> Option<u64> {
        self.0.get(k).copied()
    }
    fn apply(&mut self, &(k, v): &(u64, u64)) -> Option<u64> {
        self.0.insert(k, v)
    }
}

fn nr_row(nodes: usize, threads: usize, read_pct: usize) -> Row {
    let nr = NodeReplicated::with_config(
        NrConfig {
            replicas: nodes,
            log_entries: 1024,
            threads_per_replica: threads,
        },
        Map::default,
    );
    run_threads(threads, nodes, |t| {
        let h = nr.register().unwrap();
        for i in 0..OPS {
            let k = (i * 7 + t) as u64 % 1024;
            if i % 100 < read_pct {
                h.read(&k);
            } else {
                h.write((k, i as u64));
            }
            std::thread::yield_now();
        }
    });
    let st = nr.stats();
    let total = (threads * OPS) as u64;
    let writes = total * (100 - read_pct as u64) / 100;
    assert_eq!(st.appended, writes, "{st:?}");
    assert!(st.batches <= st.appended);
    assert!(st.replayed <= nodes as u64 * st.appended);
    assert!(st.remote_replayed <= (nodes as u64 - 1) * st.appended);
    let per = |x: u64| x as f64 / total as f64;
    Row {
        design: format!("NodeReplicated {read_pct}% reads"),
        nodes,
        threads,
        rates: vec![
            ("log appends (CAS on tail)", per(st.batches)),
            ("entries written", per(st.appended)),
            ("entries replayed", per(st.replayed)),
            ("remote entries replayed", per(st.remote_replayed)),
            ("helped replays", per(st.helped_replays)),
            ("reader syncs", per(st.reader_syncs)),
        ],
    }
}

#[test]
fn simulated_cross_node_costs() {
    let mut rows = Vec::new();
    for (nodes, threads) in [(2, 4), (2, 8), (4, 8)] {
        rows.push(mutex_row(nodes, threads));
        rows.push(cohort_row(nodes, threads, 0));
        rows.push(cohort_row(nodes, threads, 64));
        rows.push(nr_row(nodes, threads, 90));
        rows.push(nr_row(nodes, threads, 50));
    }
    print(&rows);
}
