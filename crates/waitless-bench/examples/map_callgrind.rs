//! Single-thread `get` of a present `u64` key, for instruction counts under
//! callgrind (repeatable on a loaded machine, unlike wall-clock timings):
//!
//! ```text
//! cargo build --release -p waitless-bench --example map_callgrind
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/map_callgrind <waitless|waitless-pinned|std> 1000000
//! ```
//!
//! Each run inserts the same 100,000 keys (std's SipHash with fixed keys), then looks
//! up `n` pseudo-random present keys. Subtract a run with 0 lookups and
//! divide by the lookup count.
//!
//! `waitless-ih` and `std-ih` run `n` operations of `map/insert-heavy`'s
//! mix instead (10% get, 80% insert, 10% remove over 2^16 keys, half present
//! at the start), on one thread: the per-operation cost of that workload
//! without the harness (`std-ih` is a plain `HashMap`, no lock).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::hint::black_box;

use waitless::map::LockFreeHashMap;

const KEYS: u64 = 100_000;

/// A fixed hasher (std's SipHash-1-3 with zero keys, as the benchmark's
/// map workloads use), so that runs are repeatable: with `RandomState` the
/// probe lengths, hence the counts, change from run to run.
type Fixed = BuildHasherDefault<DefaultHasher>;

fn keys(n: u64) -> impl Iterator<Item = u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % KEYS
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "waitless".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut acc = 0u64;
    match which.as_str() {
        "waitless" | "waitless-pinned" => {
            let m: LockFreeHashMap<u64, u64, Fixed> =
                LockFreeHashMap::with_hasher(Fixed::default());
            for k in 0..KEYS {
                m.insert(k, k);
            }
            if which == "waitless" {
                for k in keys(n) {
                    acc = acc.wrapping_add(m.get(black_box(&k)).unwrap_or(0));
                }
            } else {
                let mut view = m.pin();
                for k in keys(n) {
                    acc = acc.wrapping_add(view.get(black_box(&k)).copied().unwrap_or(0));
                }
            }
        }
        "std" => {
            let mut m: HashMap<u64, u64, Fixed> = HashMap::with_hasher(Fixed::default());
            for k in 0..KEYS {
                m.insert(k, k);
            }
            for k in keys(n) {
                acc = acc.wrapping_add(m.get(black_box(&k)).copied().unwrap_or(0));
            }
        }
        "waitless-ih" => {
            let m: LockFreeHashMap<u64, u64, Fixed> =
                LockFreeHashMap::with_hasher(Fixed::default());
            // A third argument runs that many threads on one map (for
            // `perf`; callgrind serializes threads).
            let threads: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
            acc = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        let m = &m;
                        s.spawn(move || {
                            insert_heavy(n, t, |op, k, v| match op {
                                0 => m.get(&k).unwrap_or(0),
                                1 => m.insert(k, v).unwrap_or(0),
                                _ => m.remove(&k).unwrap_or(0),
                            })
                        })
                    })
                    .collect();
                hs.into_iter()
                    .fold(0u64, |a, h| a.wrapping_add(h.join().unwrap()))
            });
        }
        "std-ih" => {
            let mut m: HashMap<u64, u64, Fixed> = HashMap::with_hasher(Fixed::default());
            acc = insert_heavy(n, 0, |op, k, v| match op {
                0 => m.get(&k).copied().unwrap_or(0),
                1 => m.insert(k, v).unwrap_or(0),
                _ => m.remove(&k).unwrap_or(0),
            });
        }
        other => panic!(
            "unknown contender {other}: waitless, waitless-pinned, std, waitless-ih or std-ih"
        ),
    }
    println!("{}", black_box(acc));
}

/// `map/insert-heavy`'s mix on one thread: fills half of 2^16 keys, then runs
/// `n` operations (`op(0|1|2, key, value)` = get / insert / remove); every
/// thread fills the same keys (the later fills replace).
fn insert_heavy(n: u64, thread: u64, mut op: impl FnMut(u8, u64, u64) -> u64) -> u64 {
    const SPACE: u64 = 1 << 16;
    let mut acc = 0u64;
    for k in (0..SPACE).step_by(2) {
        acc = acc.wrapping_add(op(1, k, k));
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ thread.wrapping_mul(0x2545_F491_4F6C_DD1D);
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x >> 8) % SPACE;
        let p = x % 100;
        let which = if p < 10 {
            0
        } else if p < 90 {
            1
        } else {
            2
        };
        acc = acc.wrapping_add(op(which, black_box(k), x));
    }
    acc
}
