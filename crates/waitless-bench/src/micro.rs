//! One-thread probes and cost measurements that do not fit the comparison
//! report's "contenders × thread counts" shape: `waitless-bench micro …`.
//!
//! - [`map_get`]: `LockFreeHashMap::get` against `std::collections::HashMap::get`
//!   behind no lock, one thread (issue 12's "within 1.5× of std" line);
//! - [`hazard_protect`]: the bare cost of protect + read in a tight loop;
//! - [`map_memory`]: resident bytes per entry for a million entries, each
//!   map in a fresh child process;
//! - [`contention_overhead`]: what the `waitless::contention` counters cost.
//!
//! Each returns its report as text (tables in Markdown, as the docs quote
//! them). The numbers are wall-clock timings: on a loaded machine prefer
//! `valgrind --tool=callgrind` on the same command for instruction counts.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use waitless::CachePadded;

use crate::measure::{run_repeated, run_workload, Measurement, RunConfig};

fn median(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut xs: Vec<f64> = (0..runs.max(1)).map(|_| f()).collect();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One thread, no harness: `get` of a present `u64` key picked at random
/// from 100,000, on `waitless::map` (plain `get` and a pinned view) and on
/// `std::collections::HashMap` (no lock), all with std's `RandomState`;
/// `lookups` gets per run, median of 3. The last line is the ratio against
/// std with issue 12's goal.
pub fn map_get(lookups: usize) -> String {
    use std::collections::hash_map::RandomState;
    use std::collections::HashMap;
    use waitless::map::LockFreeHashMap;
    const KEYS: u64 = 100_000;
    // A fixed pseudo-random key sequence (xorshift), the same for both maps.
    let order: Vec<u64> = {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..lookups.max(1))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % KEYS
            })
            .collect()
    };
    let ours: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_hasher(RandomState::new());
    let mut std_map: HashMap<u64, u64> = HashMap::with_hasher(RandomState::new());
    for k in 0..KEYS {
        ours.insert(k, k);
        std_map.insert(k, k);
    }
    let per_lookup = |t: Instant| t.elapsed().as_nanos() as f64 / order.len() as f64;
    let w = median(3, || {
        let t = Instant::now();
        for k in &order {
            black_box(ours.get(black_box(k)));
        }
        per_lookup(t)
    });
    let p = median(3, || {
        let mut view = ours.pin();
        let t = Instant::now();
        for k in &order {
            black_box(view.get(black_box(k)).copied());
        }
        per_lookup(t)
    });
    let s = median(3, || {
        let t = Instant::now();
        for k in &order {
            black_box(std_map.get(black_box(k)).copied());
        }
        per_lookup(t)
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## map/single-get (1 thread, {KEYS} u64 keys, random present keys, median of 3 x {})",
        order.len()
    );
    let _ = writeln!(out, "| contender | ns/op |\n|---|---|");
    let _ = writeln!(out, "| waitless LockFreeHashMap::get | {w:.1} |");
    let _ = writeln!(
        out,
        "| waitless Pinned::get (map.pin(), one view for the loop) | {p:.1} |"
    );
    let _ = writeln!(out, "| std HashMap::get (no lock) | {s:.1} |");
    let _ = writeln!(out, "| waitless / std | {:.2}x (goal <= 1.5x) |", w / s);
    out
}

/// One thread, no harness: protect + read of one pointer in a tight loop,
/// `iterations` per run, median of 5, next to a plain `Acquire` load,
/// haphazard and a crossbeam-epoch pin + load.
pub fn hazard_protect(iterations: u32) -> String {
    use std::sync::atomic::AtomicPtr;
    use waitless::hazard::{Domain, FenceStrategy, HazardPointer};
    let n = iterations.max(1);
    let per_iter = |t: Instant| t.elapsed().as_nanos() as f64 / f64::from(n);
    let src = AtomicPtr::new(Box::into_raw(Box::new(7u64)));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## hazard/tight-protect (1 thread, ns per protect+read, median of 5 x {n})"
    );
    let _ = writeln!(out, "| contender | ns/op |\n|---|---|");
    let plain = median(5, || {
        let t = Instant::now();
        for _ in 0..n {
            // SAFETY: `src` points at a live Box that is freed only at the
            // end of this function.
            black_box(unsafe { *black_box(&src).load(Ordering::Acquire) });
        }
        per_iter(t)
    });
    let _ = writeln!(out, "| plain Acquire load | {plain:.2} |");
    for (name, strategy) in [
        ("waitless (asymmetric)", FenceStrategy::Asymmetric),
        ("waitless (symmetric)", FenceStrategy::Symmetric),
    ] {
        let d = Domain::with_strategy(strategy);
        let mut hp = HazardPointer::new_in(&d);
        let ns = median(5, || {
            let t = Instant::now();
            for _ in 0..n {
                let p = hp.protect(black_box(&src));
                // SAFETY: protected, and never retired.
                black_box(unsafe { *p });
            }
            per_iter(t)
        });
        let _ = writeln!(out, "| {name} [{:?}] | {ns:.2} |", d.strategy());
    }
    let mut hp = haphazard::HazardPointer::new();
    let ns = median(5, || {
        let t = Instant::now();
        for _ in 0..n {
            let p = hp.protect_ptr(black_box(&src)).expect("non-null").0;
            // SAFETY: protected, and never retired.
            black_box(unsafe { *p.as_ref() });
        }
        per_iter(t)
    });
    let _ = writeln!(out, "| haphazard | {ns:.2} |");
    let a = crossbeam_epoch::Atomic::new(7u64);
    let ns = median(5, || {
        let t = Instant::now();
        for _ in 0..n {
            let g = crossbeam_epoch::pin();
            // SAFETY: pinned, and the value is never retired.
            black_box(unsafe { *black_box(&a).load(Ordering::Acquire, &g).deref() });
        }
        per_iter(t)
    });
    let _ = writeln!(out, "| crossbeam-epoch pin+load | {ns:.2} |");
    // SAFETY: the loops are over and nothing else refers to either value;
    // both came from `Box`es (crossbeam's `Atomic::new` boxes its value).
    unsafe {
        drop(a.into_owned());
        drop(Box::from_raw(src.into_inner()));
    }
    out
}

/// The maps [`map_memory`] measures, by the name [`map_memory_one`] takes.
pub const MEMORY_CONTENDERS: [&str; 6] = [
    "waitless",
    "std HashMap",
    "RwLock<HashMap>",
    "dashmap",
    "papaya",
    "scc::HashMap",
];

/// Entries [`map_memory_one`] inserts.
pub const MEMORY_ENTRIES: u64 = 1_000_000;

/// Resident bytes per entry for [`MEMORY_ENTRIES`] `u64 -> u64` entries
/// inserted from empty, each map in a fresh child process (`exe micro
/// map-memory-one NAME`, RSS before and after the fill) so that one map's
/// freed memory cannot hide another's.
pub fn map_memory(exe: &std::path::Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## map/memory ({MEMORY_ENTRIES} u64 -> u64 inserted from empty, one process each)"
    );
    let _ = writeln!(out, "| contender | bytes/entry (RSS delta) |\n|---|---|");
    for name in MEMORY_CONTENDERS {
        let cell = match std::process::Command::new(exe)
            .args(["micro", "map-memory-one", name])
            .output()
        {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            Ok(o) => format!("failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => format!("failed to start: {e}"),
        };
        let _ = writeln!(out, "| {name} | {cell} |");
    }
    out
}

/// This process's resident set in bytes (`/proc/self/statm`; 0 elsewhere).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// Fills the map called `name` (one of [`MEMORY_CONTENDERS`]) with
/// `entries` entries in this process and returns its resident bytes per
/// entry; `None` for an unknown name.
pub fn map_memory_one(name: &str, entries: u64) -> Option<f64> {
    use std::collections::HashMap;
    use std::sync::RwLock;
    type S = std::collections::hash_map::RandomState;
    // Fills `m`, reads the resident set while `m` is still alive.
    fn fill<M>(mut m: M, entries: u64, mut insert: impl FnMut(&mut M, u64)) -> u64 {
        (0..entries).for_each(|k| insert(&mut m, k));
        let r = rss_bytes();
        black_box(&m);
        r
    }
    let before = rss_bytes();
    let after = match name {
        "waitless" => fill(
            waitless::map::LockFreeHashMap::<u64, u64, S>::with_hasher(S::new()),
            entries,
            |m, k| {
                let _ = m.insert(k, k);
            },
        ),
        "std HashMap" => fill(
            HashMap::<u64, u64, S>::with_hasher(S::new()),
            entries,
            |m, k| {
                let _ = m.insert(k, k);
            },
        ),
        "RwLock<HashMap>" => fill(
            RwLock::new(HashMap::<u64, u64, S>::with_hasher(S::new())),
            entries,
            |m, k| {
                let _ = m.write().expect("never poisoned").insert(k, k);
            },
        ),
        "dashmap" => fill(
            dashmap::DashMap::<u64, u64, S>::with_hasher(S::new()),
            entries,
            |m, k| {
                let _ = m.insert(k, k);
            },
        ),
        "papaya" => fill(
            papaya::HashMap::<u64, u64, S>::with_hasher(S::new()),
            entries,
            |m, k| {
                let _ = m.pin().insert(k, k);
            },
        ),
        "scc::HashMap" => fill(
            scc::HashMap::<u64, u64, S>::with_hasher(S::new()),
            entries,
            |m, k| {
                let _ = m.upsert_sync(k, k);
            },
        ),
        _ => return None,
    };
    Some(after.saturating_sub(before) as f64 / entries.max(1) as f64)
}

/// A CAS retry loop with no counter call.
#[inline(never)]
fn cas_plain(c: &AtomicU64) {
    let mut cur = c.load(Ordering::Relaxed);
    while let Err(seen) =
        c.compare_exchange_weak(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed)
    {
        cur = seen;
    }
}

/// The same loop reporting every attempt to a contention site (the
/// `counter` group's CAS loop).
#[inline(never)]
fn cas_recorded(c: &AtomicU64) {
    crate::workloads::counter::cas_increment(c);
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

/// What the `waitless::contention` counters cost: one CAS retry loop (the
/// cheapest retry loop there is, so the counters' share is as large as it
/// gets) with no `Site::record` call, with the calls but counting off (what
/// every structure pays in a build with the `contention` feature), and with
/// counting on (what a profiled run pays), interleaved, at 1 and 2 threads
/// (medians of `repeats` windows), then on one thread the minimum over many
/// short bursts (the intrinsic cost per call, readable on a loaded machine).
/// Without the feature the record calls compile to nothing, and the report
/// says so.
pub fn contention_overhead(window: Duration, repeats: usize) -> String {
    use waitless::contention;
    let cfg = RunConfig {
        warmup: window / 10,
        window,
    };
    let repeats = repeats.max(1);
    let measure = |threads: usize, f: fn(&AtomicU64)| -> Measurement {
        run_repeated(&cfg, threads, 1, |cfg, t| {
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
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "contention counters compiled in: {}{}; window {} ms, median of {repeats}",
        contention::is_compiled_in(),
        if contention::is_compiled_in() {
            ""
        } else {
            " (build with --features contention to measure them)"
        },
        window.as_millis()
    );
    let _ = writeln!(
        out,
        "{:>7}  {:>22}  {:>22}  {:>22}",
        "threads", "no record call", "record, counting off", "record, counting on"
    );
    for threads in [1usize, 2] {
        // Interleaved so that machine drift hits the three alike.
        let (mut plain, mut off, mut on) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            plain.extend(measure(threads, cas_plain).runs);
            contention::enable(false);
            off.extend(measure(threads, cas_recorded).runs);
            contention::enable(true);
            on.extend(measure(threads, cas_recorded).runs);
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
        let _ = writeln!(
            out,
            "{threads:>7}  {:>22}  {:>22}  {:>22}",
            cell(&p),
            cell(&f),
            cell(&n)
        );
        let base = p.median_ops_per_sec;
        let _ = writeln!(
            out,
            "{:>7}  {:>22}  {:>22}  {:>22}",
            "",
            "1.00x",
            format!("{:.2}x", f.median_ops_per_sec / base),
            format!("{:.2}x", n.median_ops_per_sec / base)
        );
    }
    let (mut p, mut f, mut n) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats {
        p = p.min(burst_min_ns(50, 100_000, cas_plain));
        contention::enable(false);
        f = f.min(burst_min_ns(50, 100_000, cas_recorded));
        contention::enable(true);
        n = n.min(burst_min_ns(50, 100_000, cas_recorded));
        contention::enable(false);
    }
    let _ = writeln!(
        out,
        "1 thread, fastest of {} bursts of 100k calls: no record {p:.2} ns, counting off {f:.2} ns (+{:.2}), counting on {n:.2} ns (+{:.2})",
        50 * repeats,
        f - p,
        n - p
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_get_prints_the_ratio_against_std() {
        let s = map_get(1_000);
        assert!(s.contains("| std HashMap::get (no lock) |"), "{s}");
        assert!(s.contains("| waitless / std | "), "{s}");
        assert!(s.contains("(goal <= 1.5x)"), "{s}");
    }

    #[test]
    fn hazard_protect_measures_every_contender() {
        let s = hazard_protect(1_000);
        for name in [
            "plain Acquire load",
            "waitless (asymmetric)",
            "waitless (symmetric)",
            "haphazard",
            "crossbeam-epoch",
        ] {
            assert!(s.contains(name), "{name}: {s}");
        }
    }

    #[test]
    fn map_memory_one_fills_every_known_map_and_rejects_others() {
        for name in MEMORY_CONTENDERS {
            let b = map_memory_one(name, 1_000).expect("a known map");
            assert!(b.is_finite() && b >= 0.0, "{name}: {b}");
        }
        assert_eq!(map_memory_one("nosuch", 10), None);
    }
}
