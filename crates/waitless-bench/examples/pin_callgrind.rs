//! Single-thread pin + load + unpin, for instruction counts under callgrind
//! (repeatable on a loaded machine, unlike wall-clock timings):
//!
//! ```text
//! cargo build --release -p waitless-bench --example pin_callgrind
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/pin_callgrind <waitless|waitless-sym|crossbeam|rcu|arc-swap> 1000000
//! ```
//!
//! Subtract a run with 0 iterations and divide by the iteration count.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "waitless".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut acc = 0u64;
    match which.as_str() {
        "waitless" | "waitless-sym" => {
            let c = if which == "waitless" {
                waitless::epoch::Collector::new()
            } else {
                waitless::epoch::Collector::with_strategy(waitless::epoch::FenceStrategy::Symmetric)
            };
            let v = Box::into_raw(Box::new(42u64));
            let shared = AtomicPtr::new(v);
            drop(c.pin());
            for _ in 0..n {
                let _g = c.pin();
                let p = shared.load(Ordering::Acquire);
                // SAFETY: never freed while the loop runs.
                acc = acc.wrapping_add(unsafe { *p });
                black_box(acc);
            }
            // SAFETY: from `Box::into_raw`, no longer shared.
            drop(unsafe { Box::from_raw(v) });
        }
        "crossbeam" => {
            let shared = crossbeam_epoch::Atomic::new(42u64);
            drop(crossbeam_epoch::pin());
            for _ in 0..n {
                let g = crossbeam_epoch::pin();
                let p = shared.load(Ordering::Acquire, &g);
                // SAFETY: never freed while the loop runs.
                acc = acc.wrapping_add(unsafe { *p.deref() });
                black_box(acc);
            }
            // SAFETY: no thread is pinned any more.
            drop(unsafe { shared.into_owned() });
        }
        "rcu" => {
            let r = waitless::rcu::Rcu::new(42u64);
            drop(r.read());
            for _ in 0..n {
                acc = acc.wrapping_add(*r.read());
                black_box(acc);
            }
        }
        "arc-swap" => {
            let a = arc_swap::ArcSwap::from_pointee(42u64);
            for _ in 0..n {
                acc = acc.wrapping_add(**a.load());
                black_box(acc);
            }
        }
        other => panic!("unknown contender {other}"),
    }
    println!("{which} {n} {acc}");
}
