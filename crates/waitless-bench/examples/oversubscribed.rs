//! The B-tree's insert-heavy mix (50 % insert / 50 % remove of uniform keys
//! over 100k of 1M, as `btree/insert-heavy`) on `T` threads, with what a
//! throughput figure hides: the longest single operation, how many took
//! over a millisecond, and the process's peak resident set. Above the
//! core count (4 and 8 threads on the 2-core VM) this is where a stalled
//! epoch shows: garbage piles up, pools run dry, memory grows.
//!
//! ```text
//! cargo build --release -p waitless-bench --example oversubscribed
//! target/release/examples/oversubscribed <ours|scc> <threads> [seconds]
//! ```
//!
//! One contender per process: the peak resident set (`VmHWM`) is the
//! process's. Operation latencies include preemption (a descheduled
//! thread's operation lasts a scheduler slice), so compare the two
//! contenders at the same thread count, not with a bound.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scc::TreeIndex;
use waitless::btree::LockFreeBTree;

/// Key space.
const KEYS: u64 = 1_000_000;
/// Keys present at the start.
const PREFILL: u64 = 100_000;

/// The two operations of the mix, on each contender.
trait Probe: Sync {
    fn insert(&self, k: u64, v: u64);
    fn remove(&self, k: u64);
}

impl Probe for LockFreeBTree<u64, u64> {
    fn insert(&self, k: u64, v: u64) {
        LockFreeBTree::insert(self, k, v);
    }
    fn remove(&self, k: u64) {
        LockFreeBTree::remove(self, &k);
    }
}

impl Probe for TreeIndex<u64, u64> {
    fn insert(&self, k: u64, v: u64) {
        // No replace in `TreeIndex`: an existing key keeps its value.
        let _ = self.insert_sync(k, v);
    }
    fn remove(&self, k: u64) {
        self.remove_sync(&k);
    }
}

/// One xorshift step.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// What one thread saw.
#[derive(Default)]
struct Seen {
    ops: u64,
    max: Duration,
    over_1ms: u64,
}

fn run(m: &impl Probe, threads: usize, window: Duration) -> (f64, Vec<Seen>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..PREFILL {
        let k = next(&mut x) % KEYS;
        m.insert(k, k);
    }
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let seen = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ ((t as u64 + 1) * 7919);
                    let mut seen = Seen::default();
                    // Relaxed: a stop flag; the join orders the results.
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            let r = next(&mut x);
                            let k = (r >> 1) % KEYS;
                            let t0 = Instant::now();
                            if r & 1 == 0 {
                                m.insert(black_box(k), r);
                            } else {
                                m.remove(black_box(k));
                            }
                            let d = t0.elapsed();
                            seen.max = seen.max.max(d);
                            seen.over_1ms += u64::from(d > Duration::from_millis(1));
                        }
                        seen.ops += 64;
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker panicked"))
            .collect::<Vec<_>>()
    });
    let ops: u64 = seen.iter().map(|s| s.ops).sum();
    (ops as f64 / start.elapsed().as_secs_f64(), seen)
}

/// The process's peak resident set in KiB (`VmHWM`), if Linux says.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ours".into());
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let window = Duration::from_secs_f64(secs);
    let (rate, seen) = match which.as_str() {
        "ours" => run(&LockFreeBTree::new(), threads, window),
        "scc" => run(&TreeIndex::new(), threads, window),
        other => panic!("unknown contender {other}: ours or scc"),
    };
    let max = seen.iter().map(|s| s.max).max().unwrap_or_default();
    let slow: u64 = seen.iter().map(|s| s.over_1ms).sum();
    let peak = peak_rss_kib().map_or("?".into(), |k| format!("{} MB", k / 1024));
    println!(
        "{which:>4} {threads} threads: {:.2} M ops/s, longest op {:.1} ms, {slow} ops over 1 ms, peak RSS {peak}",
        rate / 1e6,
        max.as_secs_f64() * 1e3,
    );
}
