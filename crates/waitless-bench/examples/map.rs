//! Runs the map and hazard-pointer workloads at 1, 2, 4 and 8 threads and
//! prints one table per workload (median of `REPS` runs, ops/s, and the
//! ratio to the best peer and to `RwLock<HashMap>` measured in the same run).
//!
//! `cargo run --release -p waitless-bench --example map [window_ms] [reps] [filter]`

use std::time::Duration;

use waitless_bench::measure::RunConfig;
use waitless_bench::workloads::{map, Role};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let window_ms: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let filter = args.get(3).cloned().unwrap_or_default();
    let cfg = RunConfig {
        warmup: Duration::from_millis(window_ms / 5),
        window: Duration::from_millis(window_ms),
    };
    let threads = [1usize, 2, 4, 8];
    let entries = map::entries();
    let mut workloads: Vec<&str> = entries.iter().map(|e| e.workload).collect();
    workloads.dedup();
    for w in workloads.into_iter().filter(|w| w.contains(&filter)) {
        println!(
            "\n## {w}  (median of {reps} x {window_ms} ms; M ops/s, ns/op at T=1 in brackets)"
        );
        print!("| contender |");
        for t in threads {
            print!(" T={t} |");
        }
        println!();
        println!("|---|{}", "---|".repeat(threads.len()));
        let mut rows = Vec::new();
        for e in entries.iter().filter(|e| e.workload == w) {
            let mut meds = Vec::new();
            for &t in &threads {
                let mut xs: Vec<f64> = (0..reps).map(|_| (e.run)(&cfg, t).ops_per_sec).collect();
                xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
                meds.push(xs[xs.len() / 2]);
            }
            rows.push((e.contender, e.role, meds));
        }
        for (name, _, meds) in &rows {
            print!("| {name} |");
            for (i, m) in meds.iter().enumerate() {
                if i == 0 {
                    print!(" {:.1} [{:.1}] |", m / 1e6, 1e9 / m);
                } else {
                    print!(" {:.1} |", m / 1e6);
                }
            }
            println!();
        }
        let ours: Vec<_> = rows.iter().filter(|r| r.1 == Role::Waitless).collect();
        if let Some((_, _, wm)) = ours.first() {
            let ratio = |pick: &dyn Fn(&str, Role) -> bool, label: &str| {
                let others: Vec<_> = rows.iter().filter(|r| pick(r.0, r.1)).collect();
                if others.is_empty() {
                    return;
                }
                print!("| waitless / {label} |");
                for (i, w) in wm.iter().enumerate() {
                    let best = others.iter().map(|r| r.2[i]).fold(0.0, f64::max);
                    print!(" {:.2}x |", w / best);
                }
                println!();
            };
            ratio(&|_, r| r == Role::Peer, "best peer");
            ratio(
                &|n, r| r == Role::MutexBaseline && n.starts_with("RwLock"),
                "RwLock<HashMap>",
            );
        }
    }
}
