//! Single-thread `get` of a present `u64` key, for instruction counts under
//! callgrind (repeatable on a loaded machine, unlike wall-clock timings):
//!
//! ```text
//! cargo build --release -p waitless-bench --example map_callgrind
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/map_callgrind <waitless|waitless-pinned|std> 1000000
//! ```
//!
//! Each run inserts the same 100,000 keys (std `RandomState`), then looks
//! up `n` pseudo-random present keys. Subtract a run with 0 lookups and
//! divide by the lookup count.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hint::black_box;

use waitless::map::LockFreeHashMap;

const KEYS: u64 = 100_000;

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
            let m: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_hasher(RandomState::new());
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
            let mut m: HashMap<u64, u64> = HashMap::with_hasher(RandomState::new());
            for k in 0..KEYS {
                m.insert(k, k);
            }
            for k in keys(n) {
                acc = acc.wrapping_add(m.get(black_box(&k)).copied().unwrap_or(0));
            }
        }
        other => panic!("unknown contender {other}: waitless, waitless-pinned or std"),
    }
    println!("{}", black_box(acc));
}
