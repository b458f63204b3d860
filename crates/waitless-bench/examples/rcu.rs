//! Runs the RCU workloads (reads/s of a small shared value, without and with
//! one extra writer thread) at 1, 2, 4 and 8 reader threads and prints a
//! table: `cargo run --release -p waitless-bench --example rcu [-- window_ms reps]`.
//!
//! Each cell is the median of `reps` runs (default 5 × 300 ms). The
//! contenders of one workload are run interleaved (rep 1 of each, then rep 2
//! of each, …) so that load changes on a shared machine hit them alike.
//! `THREADS=1,2,4` sets the thread counts; a third argument filters
//! workloads by name.

use std::time::Duration;

use waitless_bench::measure::RunConfig;
use waitless_bench::workloads::rcu;

fn main() {
    let mut args = std::env::args().skip(1);
    let window_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let filter: Option<String> = args.next();
    let cfg = RunConfig {
        warmup: Duration::from_millis(window_ms / 5),
        window: Duration::from_millis(window_ms),
    };
    let threads: Vec<usize> = std::env::var("THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4, 8]);
    let entries = rcu::entries();
    let mut workloads: Vec<&str> = entries.iter().map(|e| e.workload).collect();
    workloads.dedup();
    for w in workloads
        .into_iter()
        .filter(|w| filter.as_deref().map_or(true, |f| w.contains(f)))
    {
        let group: Vec<_> = entries.iter().filter(|e| e.workload == w).collect();
        // medians[contender][thread count]
        let mut medians = vec![vec![0f64; threads.len()]; group.len()];
        let mut write_rates = vec![vec![0f64; threads.len()]; group.len()];
        for (ti, &t) in threads.iter().enumerate() {
            let mut samples = vec![Vec::with_capacity(reps); group.len()];
            for _ in 0..reps {
                for (ci, e) in group.iter().enumerate() {
                    samples[ci].push((e.run)(&cfg, t).ops_per_sec);
                    let secs = (cfg.warmup + cfg.window).as_secs_f64();
                    write_rates[ci][ti] += rcu::last_run_writes() as f64 / secs / reps as f64;
                }
            }
            for (ci, mut v) in samples.into_iter().enumerate() {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                medians[ci][ti] = v[v.len() / 2];
            }
        }
        println!(
            "\n{w} ({}/s, median of {reps} × {window_ms} ms, interleaved)",
            group[0].unit
        );
        print!("{:<24}", "contender");
        for &t in &threads {
            print!("{:>16}", format!("T={t}"));
        }
        println!();
        for (ci, e) in group.iter().enumerate() {
            print!("{:<24}", e.contender);
            for (&m, &base) in medians[ci].iter().zip(&medians[0]) {
                let ratio = if ci == 0 {
                    String::new()
                } else {
                    format!(" ({:.2}x)", m / base)
                };
                print!("{:>16}", format!("{:.1}M{ratio}", m / 1e6));
            }
            println!();
        }
        if write_rates.iter().flatten().any(|&w| w > 0.0) {
            println!("writer's writes/s (mean over the runs, warm-up included):");
            for (ci, e) in group.iter().enumerate() {
                print!("{:<24}", e.contender);
                for w in &write_rates[ci] {
                    print!("{:>16}", format!("{:.2}M", w / 1e6));
                }
                println!();
            }
        }
    }
    println!("\n(ratios: against the first row of each workload: arc-swap load)");
}
