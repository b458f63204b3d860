//! What the `waitless::contention` counters cost.
//!
//! Measures one CAS retry loop (the cheapest retry loop there is, so the
//! counters' share is as large as it can get) three ways, interleaved, at 1
//! and 2 threads: with no `Site::record` call at all, with the calls compiled
//! in but counting off (what every structure pays in a build with the
//! `contention` feature), and with counting on (what a profiled run pays).
//!
//! Two views: the usual windowed medians (`run_workload`), and, for one
//! thread, the minimum over many short bursts — the intrinsic cost per call,
//! which stays readable on a loaded machine where preemption inflates every
//! median.
//!
//! ```sh
//! cargo run --release -p waitless-bench --features contention --example contention_overhead [-- WINDOW_MS REPEATS]
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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

/// Fastest of `bursts` timed bursts of `per_burst` calls on this thread, in
/// nanoseconds per call.
fn burst_min_ns(bursts: usize, per_burst: u32, f: fn(&AtomicU64)) -> f64 {
    let c = CachePadded::new(AtomicU64::new(0));
    let mut best = f64::INFINITY;
    for _ in 0..bursts {
        let t0 = Instant::now();
        for _ in 0..per_burst {
            f(&c);
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / f64::from(per_burst));
    }
    best
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

    // One thread, minimum over bursts, interleaved.
    let (mut p, mut f, mut n) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats {
        p = p.min(burst_min_ns(50, 100_000, cas_plain));
        contention::enable(false);
        f = f.min(burst_min_ns(50, 100_000, cas_recorded));
        contention::enable(true);
        n = n.min(burst_min_ns(50, 100_000, cas_recorded));
        contention::enable(false);
    }
    println!(
        "1 thread, fastest of {} bursts of 100k calls: no record {p:.2} ns, counting off {f:.2} ns (+{:.2}), counting on {n:.2} ns (+{:.2})",
        50 * repeats,
        f - p,
        n - p
    );
}
