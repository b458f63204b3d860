//! The behaviours that arc-swap's own tests (`tests/stress.rs`,
//! `tests/bug-198.rs`, `tests/random.rs` and its doc tests) pin down for a
//! read-mostly cell, checked against [`Rcu`]. Written for waitless; each
//! test names the peer test that inspired it.

// The structures run on loom's atomics under `--cfg loom`, which work only
// inside `loom::model`: these tests are for the real build.
#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use waitless::rcu::Rcu;

// Inspired by arc-swap's basic store/load doc tests (`ArcSwap::store`,
// `load`, `into_inner`).
#[test]
fn reads_see_the_last_published_value() {
    let cell = Rcu::new(String::from("a"));
    assert_eq!(*cell.read(), "a");
    cell.replace(String::from("b"));
    assert_eq!(*cell.read(), "b");
    cell.update(|s| format!("{s}c"));
    assert_eq!(*cell.read(), "bc");
    assert_eq!(cell.load(), "bc");
    assert_eq!(cell.fetch_update(|s| s.to_uppercase()), "bc");
    assert_eq!(cell.into_inner(), "BC");
}

// Inspired by arc-swap `tests/bug-198.rs`: with many read guards held, two
// racing writers, then two reads on this thread: once a read has seen a
// written value, a later read does not go back, and once it has seen the
// second write's value it stays there.
#[test]
fn reads_are_coherent_with_many_guards_held() {
    let rounds = if cfg!(miri) { 5 } else { 500 };
    for _ in 0..rounds {
        let cell = Rcu::new(0usize);
        let held: Vec<_> = (0..8).map(|_| cell.read()).collect();
        let start = Barrier::new(3);
        std::thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                cell.replace(1);
            });
            s.spawn(|| {
                start.wait();
                cell.replace(2);
            });
            start.wait();
            let a1 = *cell.read();
            let a2 = *cell.read();
            if a1 != a2 && a1 != 0 {
                // a1 was the first write, a2 the second (last) one.
                assert_eq!(a2, *cell.read());
            }
            if a1 != 0 {
                assert_ne!(a2, 0, "a read went back to the initial value");
            }
        });
        assert!(
            held.iter().all(|g| **g == 0),
            "held guards keep their value"
        );
        drop(held);
        let last = *cell.read();
        assert!(last == 1 || last == 2);
    }
}

// Inspired by arc-swap `tests/stress.rs::load_parallel`: one writer
// publishes increasing values; every reader sees them in order.
#[test]
fn readers_never_see_values_go_backwards() {
    let writes = if cfg!(miri) { 50 } else { 20_000 };
    let cell = Rcu::new(0u64);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut last = 0;
                while !done.load(Ordering::Acquire) {
                    let now = *cell.read();
                    assert!(last <= now, "{last} then {now}");
                    last = now;
                }
                assert_eq!(*cell.read(), writes);
            });
        }
        for i in 1..=writes {
            cell.replace(i);
        }
        done.store(true, Ordering::Release);
    });
}

// Inspired by arc-swap's `rcu` doc test and `tests/stress.rs::storm_*`:
// read-copy-update from several threads loses no increment.
#[test]
fn concurrent_updates_lose_nothing() {
    let per = if cfg!(miri) { 20 } else { 5_000 };
    let threads = 4;
    let cell = Rcu::new(vec![0usize; 4]);
    std::thread::scope(|s| {
        for t in 0..threads {
            let cell = &cell;
            s.spawn(move || {
                for _ in 0..per {
                    cell.update(|v| {
                        let mut v = v.clone();
                        v[t] += 1;
                        v
                    });
                }
            });
        }
    });
    assert_eq!(*cell.read(), vec![per; threads]);
}

/// Counts live instances of values that went through a cell.
struct Live<'a>(&'a AtomicUsize, usize);
impl<'a> Live<'a> {
    fn new(count: &'a AtomicUsize, v: usize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count, v)
    }
}
impl Clone for Live<'_> {
    fn clone(&self) -> Self {
        Self::new(self.0, self.1)
    }
}
impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// Inspired by arc-swap `tests/stress.rs::storm_unroll` (its final check
// that no node is left alive) and the `Guard` keeping its value alive: a
// read guard keeps the value it saw, replaced values are dropped exactly
// once, and nothing is left after the cell is dropped.
#[test]
fn every_value_is_dropped_once_and_not_before_its_readers() {
    let live = AtomicUsize::new(0);
    {
        let cell = Rcu::new(Live::new(&live, 0));
        let guard = cell.read();
        cell.replace(Live::new(&live, 1));
        cell.update(|v| Live::new(v.0, v.1 + 1));
        assert_eq!(guard.1, 0, "the guard still reads the old value");
        assert!(live.load(Ordering::SeqCst) >= 2);
        drop(guard);
        cell.synchronize();
        assert_eq!(cell.pending(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 1, "only the current value");
        let per = if cfg!(miri) { 10 } else { 2_000 };
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..per {
                        cell.update(|v| Live::new(v.0, v.1 + 1));
                        let g = cell.read();
                        assert!(g.1 >= 2);
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..per {
                    assert!(cell.read().1 >= 2);
                }
            });
        });
        assert_eq!(cell.read().1, 2 + 2 * per);
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "a value leaked or dropped twice"
    );
}

// Inspired by arc-swap's `rcu` contract that the closure may run again on
// a race, and by crossbeam-skiplist's `get_or_insert_with_panic`: a panic
// in the closure publishes nothing and leaves the cell usable.
#[test]
fn a_panicking_update_publishes_nothing() {
    let live = AtomicUsize::new(0);
    {
        let cell = Rcu::new(Live::new(&live, 1));
        let r = catch_unwind(AssertUnwindSafe(|| {
            cell.update(|_| panic!("user code"));
        }));
        assert!(r.is_err());
        assert_eq!(cell.read().1, 1);
        cell.update(|v| Live::new(v.0, v.1 * 10));
        assert_eq!(cell.read().1, 10);
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

// Inspired by arc-swap's `Default`, `From` and `Debug` impls
// (`ArcSwap: From<Arc<T>>`, `Debug` printing the value).
#[test]
fn conversions_and_debug() {
    let d: Rcu<Vec<u8>> = Rcu::default();
    assert!(d.read().is_empty());
    let f = Rcu::from(7u8);
    assert_eq!(*f.read(), 7);
    let shown = format!("{f:?}");
    assert!(shown.contains('7'), "{shown}");
    assert_eq!(format!("{:?}", f.read()), "7");
    let mut m = Rcu::new(vec![1]);
    m.get_mut().push(2);
    assert_eq!(*m.read(), [1, 2]);
}

// Inspired by rtrb `lib.rs::zero_sized_type`.
#[test]
fn zero_sized_values() {
    let cell = Rcu::new(());
    let g = cell.read();
    cell.replace(());
    cell.update(|()| ());
    assert_eq!(*g, ());
    drop(g);
    cell.synchronize();
    assert_eq!(cell.pending(), 0);
}

// Inspired by arc-swap's `ArcSwap<T>: Send + Sync` (for `T: Send + Sync`)
// and its use from many threads through an `Arc`.
#[test]
fn auto_traits_and_sharing() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Rcu<String>>();
    send_sync::<Rcu<Vec<Arc<u8>>>>();
    let cell = Arc::new(Rcu::new(0usize));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let c = Arc::clone(&cell);
            std::thread::spawn(move || c.update(|v| v + 1))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*cell.read(), 2);
}
