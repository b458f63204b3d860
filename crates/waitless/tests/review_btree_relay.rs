//! Review stress test (bt16gr) of session 8's clock (writers and helping
//! readers advance it, scans only load it): causality relayed between
//! threads must be visible in every snapshot.
//!
//! A writer counts key `A` up (`insert(A, i)`, i = 1, 2, ...). Relay `L`
//! polls `A` with lookups and writes each new value it sees to key `B`;
//! relay `S` polls `A` with one-key range scans and writes what it sees to
//! key `C`. `A`, `B` and `C` sit in different leaves, far apart, and a
//! churn thread splits and empties the leaves between them (shape changes:
//! new root versions). Since `B`'s (and `C`'s) value `v` was written after
//! an operation observed `A = v`, every linearizable snapshot shows
//! `B <= A` and `C <= A`, and a thread's successive observations of any key
//! never go back. A relay that reads `A`'s newest version while its writer
//! has installed it but not stamped it must stamp it itself (or the later
//! `B` could be stamped first); a scan that misses a version stamped at or
//! before its clock value, or shows one stamped after, breaks the checks.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};

use waitless::btree::LockFreeBTree;

const A: u64 = 0;
const B: u64 = 1_000_000;
const C: u64 = 2_000_000;

fn rounds() -> u64 {
    if cfg!(miri) {
        40
    } else {
        10_000
    }
}

/// The values of `A`, `B`, `C` in one snapshot (0 when absent).
fn snapshot(m: &LockFreeBTree<u64, u64>) -> (u64, u64, u64) {
    let (mut a, mut b, mut c) = (0, 0, 0);
    for (k, v) in m.iter() {
        match k {
            A => a = v,
            B => b = v,
            C => c = v,
            _ => {}
        }
    }
    (a, b, c)
}

#[test]
fn relayed_updates_are_ordered_in_every_snapshot() {
    let n = rounds();
    let m = LockFreeBTree::new();
    // Filler between the three keys: several leaves and two levels, so
    // `A`, `B` and `C` have their own leaves.
    let fill = if cfg!(miri) { 24 } else { 400 };
    for i in 1..=fill {
        m.insert(i * 1000, 0);
        m.insert(B + i * 1000, 0);
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let (m, done) = (&m, &done);
        sc.spawn(move || {
            for i in 1..=n {
                m.insert(A, i);
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
        });
        // Relay through lookups.
        sc.spawn(move || {
            let mut last = 0;
            loop {
                let fin = done.load(Ordering::Acquire);
                let a = m.get(&A).unwrap_or(0);
                assert!(a >= last, "a lookup went back: {a} after {last}");
                if a > last {
                    m.insert(B, a);
                    last = a;
                }
                if fin {
                    break;
                }
            }
            assert_eq!(last, n);
        });
        // Relay through scans.
        sc.spawn(move || {
            let mut last = 0;
            loop {
                let fin = done.load(Ordering::Acquire);
                let a = m.range(A..=A).next().map_or(0, |(_, v)| v);
                assert!(a >= last, "a scan went back: {a} after {last}");
                if a > last {
                    m.insert(C, a);
                    last = a;
                }
                if fin {
                    break;
                }
            }
            assert_eq!(last, n);
        });
        // Churn between the keys: splits, emptied leaves, new root versions.
        sc.spawn(move || {
            let mut r = 0u64;
            while !done.load(Ordering::Acquire) {
                let base = 500 + (r % 3) * 1000;
                for j in 0..40 {
                    m.insert(base + j, j);
                }
                for j in 0..40 {
                    m.remove(&(base + j));
                }
                r += 1;
            }
        });
        // The checker.
        let (mut la, mut lb, mut lc) = (0, 0, 0);
        loop {
            let fin = done.load(Ordering::Acquire);
            let (a, b, c) = snapshot(m);
            assert!(b <= a && c <= a, "not a snapshot: A={a} B={b} C={c}");
            assert!(
                a >= la && b >= lb && c >= lc,
                "a later scan went back: ({a}, {b}, {c}) after ({la}, {lb}, {lc})"
            );
            // Real time: a lookup after this scan sees at least as much.
            assert!(
                m.get(&A).unwrap_or(0) >= a,
                "a lookup after a scan went back"
            );
            assert!(
                m.get(&B).unwrap_or(0) >= b,
                "a lookup after a scan went back"
            );
            (la, lb, lc) = (a, b, c);
            if fin {
                break;
            }
        }
    });
    assert_eq!(snapshot(&m).0, n);
}
