//! What the `waitless::contention` counters cost.
//!
//! Measures one CAS retry loop (the cheapest retry loop there is, so the
//! counters' share is as large as it can get) three ways, interleaved, at 1
//! and 2 threads: with no `Site::record` call at all, with the calls compiled
//! in but counting off (what every structure pays in a build with the
//! `contention` feature), and with counting on (what a profiled run pays).
//!
//! ```sh
//! cargo run --release -p waitless-bench --example contention_overhead [-- WINDOW_MS REPEATS]
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use waitless::contention::{self, Site};
use waitless::CachePadded;
use waitless_bench::measure::{run_repeated, run_workload, Measurement, RunConfig};

static SITE: Site = Site::new("overhead.cas");

#[inline(never)]
fn cas_plain(c: &AtomicU64) {
    let mut cur = c.load(Relaxed);
    while let Err(seen) = c.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
        cur = seen;
    }
}

#[inline(never)]
fn cas_recorded(c: &AtomicU64) {
    let mut cur = c.load(Relaxed);
    loop {
        match c.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
            Ok(_) => {
                SITE.record(true);
                return;
            }
            Err(seen) => {
                SITE.record(false);
                cur = seen;
            }
        }
    }
}

fn measure(cfg: &RunConfig, threads: usize, repeats: usize, f: fn(&AtomicU64)) -> Measurement {
    run_repeated(cfg, threads, repeats, |cfg, t| {
        let c = CachePadded::new(AtomicU64::new(0));
        run_workload(
            cfg,
            t,
            |_| (),
            |_| {
                f(&c);
                1
            },
        )
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let window_ms: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let repeats: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cfg = RunConfig {
        warmup: Duration::from_millis(window_ms / 10),
        window: Duration::from_millis(window_ms.max(1)),
    };
    println!(
        "contention counters compiled in: {}; window {window_ms} ms, median of {repeats}",
        contention::is_compiled_in()
    );
    println!(
        "{:>7}  {:>22}  {:>22}  {:>22}",
        "threads", "no record call", "record, counting off", "record, counting on"
    );
    for threads in [1usize, 2] {
        // Interleave the three variants so machine drift hits them alike.
        let mut plain = Vec::new();
        let mut off = Vec::new();
        let mut on = Vec::new();
        for _ in 0..repeats {
            plain.extend(measure(&cfg, threads, 1, cas_plain).runs);
            contention::enable(false);
            off.extend(measure(&cfg, threads, 1, cas_recorded).runs);
            contention::enable(true);
            on.extend(measure(&cfg, threads, 1, cas_recorded).runs);
            contention::enable(false);
        }
        let cell = |m: &Measurement| {
            // Nanoseconds per operation per thread.
            let ns = 1e9 * threads as f64 / m.median_ops_per_sec;
            format!("{ns:6.2} ns/op ±{:>3.0}%", m.spread * 100.0)
        };
        let (p, f, n) = (
            Measurement::from_runs(plain),
            Measurement::from_runs(off),
            Measurement::from_runs(on),
        );
        println!(
            "{threads:>7}  {:>22}  {:>22}  {:>22}",
            cell(&p),
            cell(&f),
            cell(&n)
        );
        let base = p.median_ops_per_sec;
        println!(
            "{:>7}  {:>22}  {:>22}  {:>22}",
            "",
            "1.00x",
            format!("{:.2}x", f.median_ops_per_sec / base),
            format!("{:.2}x", n.median_ops_per_sec / base)
        );
    }
}
