//! Runs the RCU workloads (reads/s of a small shared value, without and with one extra writer thread) at 1, 2, 4 and 8 threads and prints
//! a table: `cargo run --release -p waitless-bench --example rcu [-- window_ms reps]`.
//! Each cell is the median of `reps` runs (default 3 × 300 ms); a third
//! argument filters workloads by name, `THREADS=1,2,4` sets thread counts.

use std::time::Duration;

use waitless_bench::measure::RunConfig;
use waitless_bench::workloads::rcu;

fn main() {
    let mut args = std::env::args().skip(1);
    let window_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let filter: Option<String> = args.next();
    let cfg = RunConfig {
        warmup: Duration::from_millis(window_ms / 5),
        window: Duration::from_millis(window_ms),
    };
    // THREADS=1,2,4,8,16 overrides the thread counts.
    let threads: Vec<usize> = std::env::var("THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4, 8]);
    let entries = rcu::entries();
    let mut workload = "";
    let mut baseline: Vec<f64> = vec![];
    for e in entries
        .iter()
        .filter(|e| filter.as_deref().map_or(true, |f| e.workload.contains(f)))
    {
        if e.workload != workload {
            workload = e.workload;
            baseline.clear();
            println!(
                "\n{} ({}/s, median of {reps} × {window_ms} ms)",
                e.workload, e.unit
            );
            print!("{:<34}", "contender");
            for &t in &threads {
                print!("{:>16}", format!("T={t}"));
            }
            println!();
        }
        print!("{:<34}", e.contender);
        let mut row = vec![];
        for &t in &threads {
            let mut v: Vec<f64> = (0..reps).map(|_| (e.run)(&cfg, t).ops_per_sec).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let m = v[v.len() / 2];
            row.push(m);
            let ratio = if baseline.is_empty() {
                String::new()
            } else {
                format!(" ({:.2}x)", m / baseline[row.len() - 1])
            };
            print!("{:>16}", format!("{:.1}M{ratio}", m / 1e6));
        }
        println!();
        if baseline.is_empty() {
            baseline = row;
        }
    }
    println!("\n(ratios: against the first row of each workload: arc-swap load)");
}
