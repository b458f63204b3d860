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
    if filter.is_empty() || "tight-protect".contains(&filter) {
        tight_protect();
    }
    if filter.is_empty() || "single-get".contains(&filter) {
        single_get(
            args.get(4)
                .and_then(|s| s.parse().ok())
                .unwrap_or(2_000_000),
        );
    }
    if filter == "single-get" {
        return;
    }
    if filter == "memory" {
        memory();
        return;
    }
    if filter == "memory-one" {
        memory_one(args.get(4).map_or("", String::as_str));
        return;
    }
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

/// One thread, no harness: the bare cost of protect + read in a tight loop
/// (median of 5 runs of 20M iterations), next to a plain atomic load.
fn tight_protect() {
    use std::hint::black_box;
    use std::sync::atomic::{AtomicPtr, Ordering};
    use std::time::Instant;
    use waitless::hazard::{Domain, FenceStrategy, HazardPointer};
    const N: u32 = 20_000_000;
    fn median(mut f: impl FnMut() -> f64) -> f64 {
        let mut xs: Vec<f64> = (0..5).map(|_| f()).collect();
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        xs[2]
    }
    let src = AtomicPtr::new(Box::into_raw(Box::new(7u64)));
    println!("\n## hazard/tight-protect (1 thread, ns per protect+read, median of 5 x {N})");
    println!("| contender | ns/op |\n|---|---|");
    let plain = median(|| {
        let t = Instant::now();
        for _ in 0..N {
            // SAFETY: never freed during the loop.
            black_box(unsafe { *black_box(&src).load(Ordering::Acquire) });
        }
        t.elapsed().as_nanos() as f64 / f64::from(N)
    });
    println!("| plain Acquire load | {plain:.2} |");
    for (name, s) in [
        ("waitless (asymmetric)", FenceStrategy::Asymmetric),
        ("waitless (symmetric)", FenceStrategy::Symmetric),
    ] {
        let d = Domain::with_strategy(s);
        let mut hp = HazardPointer::new_in(&d);
        let ns = median(|| {
            let t = Instant::now();
            for _ in 0..N {
                let p = hp.protect(black_box(&src));
                // SAFETY: protected; never retired.
                black_box(unsafe { *p });
            }
            t.elapsed().as_nanos() as f64 / f64::from(N)
        });
        println!("| {name} [{:?}] | {ns:.2} |", d.strategy());
    }
    let mut hp = haphazard::HazardPointer::new();
    let ns = median(|| {
        let t = Instant::now();
        for _ in 0..N {
            let p = hp.protect_ptr(black_box(&src)).expect("non-null").0;
            // SAFETY: protected; never retired.
            black_box(unsafe { *p.as_ref() });
        }
        t.elapsed().as_nanos() as f64 / f64::from(N)
    });
    println!("| haphazard | {ns:.2} |");
    let a = crossbeam_epoch::Atomic::new(7u64);
    let ns = median(|| {
        let t = Instant::now();
        for _ in 0..N {
            let g = crossbeam_epoch::pin();
            // SAFETY: pinned; never retired.
            black_box(unsafe { *black_box(&a).load(Ordering::Acquire, &g).deref() });
        }
        t.elapsed().as_nanos() as f64 / f64::from(N)
    });
    println!("| crossbeam-epoch pin+load | {ns:.2} |");
    // SAFETY: the loops are over; nothing else refers to these.
    unsafe {
        drop(a.into_owned());
        drop(Box::from_raw(src.into_inner()));
    }
}

/// One thread, no harness: `get` of a present `u64` key picked at random from
/// 100,000, on `waitless::map` and on `std::collections::HashMap` (no lock),
/// both with std's `RandomState`. `lookups` gets per run, median of 3.
fn single_get(lookups: usize) {
    use std::collections::hash_map::RandomState;
    use std::collections::HashMap;
    use std::hint::black_box;
    use std::time::Instant;
    use waitless::map::LockFreeHashMap;
    const KEYS: u64 = 100_000;
    // A fixed pseudo-random key sequence (xorshift), the same for both maps.
    let order: Vec<u64> = {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..lookups)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % KEYS
            })
            .collect()
    };
    fn median(mut f: impl FnMut() -> f64) -> f64 {
        let mut xs: Vec<f64> = (0..3).map(|_| f()).collect();
        xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        xs[1]
    }
    let ours: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_hasher(RandomState::new());
    let mut std_map: HashMap<u64, u64> = HashMap::with_hasher(RandomState::new());
    for k in 0..KEYS {
        ours.insert(k, k);
        std_map.insert(k, k);
    }
    let w = median(|| {
        let t = Instant::now();
        for k in &order {
            black_box(ours.get(black_box(k)));
        }
        t.elapsed().as_nanos() as f64 / order.len() as f64
    });
    let p = median(|| {
        let mut view = ours.pin();
        let t = Instant::now();
        for k in &order {
            black_box(view.get(black_box(k)).copied());
        }
        t.elapsed().as_nanos() as f64 / order.len() as f64
    });
    let s = median(|| {
        let t = Instant::now();
        for k in &order {
            black_box(std_map.get(black_box(k)).copied());
        }
        t.elapsed().as_nanos() as f64 / order.len() as f64
    });
    println!("\n## map/single-get (1 thread, {KEYS} u64 keys, random present keys, median of 3 x {lookups})");
    println!("| contender | ns/op |\n|---|---|");
    println!("| waitless LockFreeHashMap::get | {w:.1} |");
    println!("| waitless Pinned::get (map.pin(), one view for the loop) | {p:.1} |");
    println!("| std HashMap::get (no lock) | {s:.1} |");
    println!("| waitless / std | {:.2}x (goal <= 1.5x) |", w / s);
}

/// Resident bytes per entry for 1M `u64 -> u64` entries, each contender in a
/// fresh child process (RSS from /proc/self/statm before and after the fill,
/// so one contender's freed memory cannot hide another's).
fn memory() {
    println!("\n## map/memory (1,000,000 u64 -> u64 inserted from empty, one process each)");
    println!("| contender | bytes/entry (RSS delta) |\n|---|---|");
    let me = std::env::current_exe().expect("own path");
    for name in [
        "waitless",
        "std HashMap",
        "RwLock<HashMap>",
        "dashmap",
        "papaya",
        "scc::HashMap",
    ] {
        let out = std::process::Command::new(&me)
            .args(["0", "0", "memory-one", name])
            .output()
            .expect("run child");
        let line = String::from_utf8_lossy(&out.stdout);
        println!("| {name} | {} |", line.trim());
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

fn memory_one(name: &str) {
    use std::collections::HashMap;
    use std::hint::black_box;
    use std::sync::RwLock;
    const N: u64 = 1_000_000;
    type S = std::collections::hash_map::RandomState;
    let before = rss_bytes();
    let after = match name {
        "waitless" => {
            let m = waitless::map::LockFreeHashMap::<u64, u64, S>::with_hasher(S::new());
            (0..N).for_each(|k| {
                let _ = m.insert(k, k);
            });
            let r = rss_bytes();
            black_box(&m);
            r
        }
        "std HashMap" => {
            let mut m = HashMap::<u64, u64, S>::with_hasher(S::new());
            (0..N).for_each(|k| {
                let _ = m.insert(k, k);
            });
            let r = rss_bytes();
            black_box(&m);
            r
        }
        "RwLock<HashMap>" => {
            let m = RwLock::new(HashMap::<u64, u64, S>::with_hasher(S::new()));
            (0..N).for_each(|k| {
                let _ = m.write().unwrap().insert(k, k);
            });
            let r = rss_bytes();
            black_box(&m);
            r
        }
        "dashmap" => {
            let m = dashmap::DashMap::<u64, u64, S>::with_hasher(S::new());
            (0..N).for_each(|k| {
                let _ = m.insert(k, k);
            });
            let r = rss_bytes();
            black_box(&m);
            r
        }
        "papaya" => {
            let m = papaya::HashMap::<u64, u64, S>::with_hasher(S::new());
            {
                let p = m.pin();
                (0..N).for_each(|k| {
                    let _ = p.insert(k, k);
                });
            }
            let r = rss_bytes();
            black_box(&m);
            r
        }
        "scc::HashMap" => {
            let m = scc::HashMap::<u64, u64, S>::with_hasher(S::new());
            (0..N).for_each(|k| {
                let _ = m.upsert_sync(k, k);
            });
            let r = rss_bytes();
            black_box(&m);
            r
        }
        _ => {
            println!("unknown contender");
            return;
        }
    };
    println!("{:.1}", (after.saturating_sub(before)) as f64 / N as f64);
}
