//! Runs the queue workloads at 1, 2, 4 and 8 threads and prints a table:
//! throughput, the ratio to `crossbeam ArrayQueue` in the same run, and
//! latency percentiles.
//!
//! `cargo run --release -p waitless-bench --example queue [window_ms] [threads,..]`
use std::time::Duration;

use waitless_bench::measure::RunConfig;
use waitless_bench::workloads::queue;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let window_ms: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    let threads: Vec<usize> = args
        .get(2)
        .map(|a| a.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4, 8]);
    let cfg = RunConfig {
        warmup: Duration::from_millis(window_ms / 3),
        window: Duration::from_millis(window_ms),
    };
    let entries = queue::entries();
    println!(
        "| workload | threads | contender | Mops/s | × ArrayQueue | p50 ns | p99 ns | p99.9 ns | max ns |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut workloads: Vec<&str> = entries.iter().map(|e| e.workload).collect();
    workloads.dedup();
    for w in workloads {
        for &t in &threads {
            let results: Vec<_> = entries
                .iter()
                .filter(|e| e.workload == w)
                .map(|e| (e.contender, (e.run)(&cfg, t)))
                .collect();
            let base = results
                .iter()
                .find(|(c, _)| c.contains("ArrayQueue"))
                .map(|(_, r)| r.ops_per_sec)
                .unwrap_or(f64::NAN);
            for (c, r) in &results {
                let l = r.latency;
                println!(
                    "| {w} | {t} | {c} | {:.2} | {:.2} | {} | {} | {} | {} |",
                    r.ops_per_sec / 1e6,
                    r.ops_per_sec / base,
                    l.p50_ns,
                    l.p99_ns,
                    l.p999_ns,
                    l.max_ns
                );
            }
        }
    }
}
