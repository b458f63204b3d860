//! Channel benchmark table (issue 6).
//!
//! `cargo run --release -p waitless-bench --example channel -- [window_ms] [reps]`
//!
//! Runs every channel entry at its fixed thread count `reps` times (default
//! 3 × 300 ms, warm-up 50 ms), interleaving contenders per repetition so
//! machine noise hits them alike, and prints medians with the ratio to the
//! goal peer (rtrb for SPSC, crossbeam-channel for MPMC and round trips),
//! then `OptimizedChannel::benchmark_orderings` at capacity 1024 with a
//! `window_ms` window per point.
use std::time::Duration;

use waitless::channel::OptimizedChannel;
use waitless_bench::measure::RunConfig;
use waitless_bench::workloads::channel::entries;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let window_ms: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let cfg = RunConfig {
        warmup: Duration::from_millis(50),
        window: Duration::from_millis(window_ms),
    };
    let entries = entries();
    let mut ops: Vec<Vec<f64>> = vec![Vec::new(); entries.len()];
    let mut p50: Vec<Vec<f64>> = vec![Vec::new(); entries.len()];
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); entries.len()];
    for rep in 0..reps {
        for (i, e) in entries.iter().enumerate() {
            let t = e.fixed_threads.map_or(2, |f| f[0]);
            eprint!("\rrep {}/{reps} {:<40}", rep + 1, e.contender);
            let r = (e.run)(&cfg, t);
            ops[i].push(r.ops_per_sec);
            p50[i].push(r.latency.p50_ns as f64);
            p99[i].push(r.latency.p99_ns as f64);
        }
    }
    eprintln!();
    println!(
        "channel workloads, medians of {reps} x {window_ms} ms (threads fixed per workload)\n"
    );
    println!(
        "| workload | contender | threads | Mops/s | vs goal peer | p50 ns | p99 ns |\n|---|---|---|---|---|---|---|"
    );
    let mut last = "";
    let mut goal = f64::NAN;
    for (i, e) in entries.iter().enumerate() {
        if e.workload != last {
            last = e.workload;
            let peer = if e.workload.ends_with("spsc") {
                "rtrb"
            } else {
                "crossbeam-channel"
            };
            goal = entries
                .iter()
                .position(|x| x.workload == e.workload && x.contender == peer)
                .map_or(f64::NAN, |j| median(ops[j].clone()));
        }
        let m = median(ops[i].clone());
        println!(
            "| {} | {} | {} | {:.2} | {:.2}x | {:.0} | {:.0} |",
            e.workload,
            e.contender,
            e.fixed_threads.map_or(2, |f| f[0]),
            m / 1e6,
            m / goal,
            median(p50[i].clone()),
            median(p99[i].clone())
        );
    }
    println!(
        "\nOptimizedChannel::<u64>::new({cap}).benchmark_orderings_for({window_ms} ms per point)\n",
        cap = 1024
    );
    let report = OptimizedChannel::<u64>::new(1024)
        .benchmark_orderings_for(Duration::from_millis(window_ms));
    println!("{report}");
}
