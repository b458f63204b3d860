//! Review tests (bt16fr) of the per-leaf writer protocol: snapshot scans
//! checked against a writer's program order while leaves split (insert
//! phases) and emptied leaves are dropped (remove phases).
//!
//! Each writer owns the keys `k % WRITERS == w` and, round after round,
//! inserts all of them in a fixed scrambled order (so consecutive updates
//! hit different leaves), then removes them in the same order. At any
//! instant the writer's keys present in the map are therefore a *window*
//! of its order: a prefix (insert phase) or a suffix (remove phase), all
//! carrying the same round's value. A linearizable snapshot (`iter`,
//! `range`) restricted to one writer's keys must show exactly such a
//! window; a scan that mixed two instants (e.g. read leaf B before an
//! update and leaf A after a later one) shows a gap.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, Ordering};

use waitless::btree::LockFreeBTree;

const WRITERS: u64 = 2;

/// The writer's order: its keys scrambled by a multiplicative step.
fn order(w: u64, n: u64) -> Vec<u64> {
    // 97 is coprime with n for the sizes used, so this is a permutation.
    (0..n).map(|i| ((i * 97) % n) * WRITERS + w).collect()
}

/// Checks one scan result against writer `w`'s order: the writer's keys
/// seen inside `[lo, hi)` are a prefix-window or a suffix-window of its
/// order (restricted to the range), all with one value.
fn check_window(w: u64, ord: &[u64], lo: u64, hi: u64, got: &[(u64, u64)]) {
    let mine: Vec<(u64, u64)> = got
        .iter()
        .copied()
        .filter(|(k, _)| k % WRITERS == w)
        .collect();
    if mine.is_empty() {
        return;
    }
    let v0 = mine[0].1;
    assert!(
        mine.iter().all(|&(_, v)| v == v0),
        "writer {w}: one snapshot holds values of two rounds: {mine:?}"
    );
    let present: std::collections::BTreeSet<u64> = mine.iter().map(|&(k, _)| k).collect();
    // Positions in the writer's order of the in-range keys.
    let in_range: Vec<(usize, u64)> = ord
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, k)| lo <= k && k < hi)
        .collect();
    let flags: Vec<bool> = in_range.iter().map(|(_, k)| present.contains(k)).collect();
    // Prefix window: present ones are all before absent ones; suffix: the
    // reverse. (The round's value also tells the phase, but either shape
    // is accepted: the writer may be in either phase.)
    let first_absent = flags.iter().position(|&f| !f).unwrap_or(flags.len());
    let prefix = flags[first_absent..].iter().all(|&f| !f);
    let first_present = flags.iter().position(|&f| f).unwrap_or(flags.len());
    let suffix = flags[first_present..].iter().all(|&f| f);
    assert!(
        prefix || suffix,
        "writer {w}: scan of [{lo}, {hi}) saw a gap in the writer's order \
         (not one instant): present flags in update order {flags:?}"
    );
}

fn run(n: u64, rounds: u64, scans_per_reader: usize) {
    let m: LockFreeBTree<u64, u64> = LockFreeBTree::new();
    let orders: Vec<Vec<u64>> = (0..WRITERS).map(|w| order(w, n)).collect();
    let done = AtomicU64::new(0);
    let space = n * WRITERS;
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (m, ord, done) = (&m, &orders[w as usize], &done);
            s.spawn(move || {
                for r in 0..rounds {
                    for &k in ord {
                        assert_eq!(m.insert(k, r), None, "key {k} round {r}");
                    }
                    for &k in ord {
                        assert_eq!(m.remove(&k), Some(r), "key {k} round {r}");
                    }
                }
                done.fetch_add(1, Ordering::Release);
            });
        }
        for t in 0..2u64 {
            let (m, orders, done) = (&m, &orders, &done);
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                let mut i = 0;
                while i < scans_per_reader || done.load(Ordering::Acquire) < WRITERS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (lo, hi) = if i % 3 == 0 {
                        (0, space)
                    } else {
                        let a = x % space;
                        (a, a + (x >> 32) % space)
                    };
                    let it = if lo == 0 && hi == space {
                        m.iter()
                    } else {
                        m.range(lo..hi)
                    };
                    // Yield now and then inside the scan, so that writers
                    // run while it is half done even on two busy cores.
                    let got: Vec<(u64, u64)> = it
                        .enumerate()
                        .map(|(j, kv)| {
                            if j % 8 == 7 {
                                std::thread::yield_now();
                            }
                            kv
                        })
                        .collect();
                    for w in 0..WRITERS {
                        check_window(w, &orders[w as usize], lo, hi, &got);
                    }
                    i += 1;
                    if i >= scans_per_reader * 50 {
                        break;
                    }
                }
            });
        }
        // The readers stop once both writers finish (and after their
        // minimum number of scans).
    });
    assert!(m.is_empty());
}

#[test]
fn scans_see_a_window_of_each_writers_order_across_splits_and_drops() {
    if cfg!(miri) {
        run(20, 2, 5);
    } else {
        run(301, 60, 400);
    }
}

/// A `range` taken before other threads rewrite the whole map — every leaf
/// updated, split, emptied and dropped, several times, with the collector
/// pushed to reclaim — still yields exactly the contents at its call: its
/// snapshot's root version, handles and leaf versions are kept alive by its
/// guard and found again through the version chains.
#[test]
fn a_held_scan_outlives_rewrites_splits_and_drops_of_every_leaf() {
    let n: u64 = if cfg!(miri) { 24 } else { 400 };
    let m: LockFreeBTree<u64, u64> = LockFreeBTree::new();
    for k in 0..n {
        m.insert(k, k);
    }
    let held = m.range(n / 4..n);
    let head: Vec<(u64, u64)> = m.iter().take(3).collect();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let m = &m;
            s.spawn(move || {
                for round in 1..4u64 {
                    for k in (0..n).filter(|k| k % 2 == t) {
                        m.remove(&k);
                    }
                    for k in (0..n).filter(|k| k % 2 == t) {
                        m.insert(k, k * 1000 + round);
                    }
                    for k in (0..n).filter(|k| k % 2 == t).step_by(3) {
                        m.insert(k + n, round);
                    }
                    let g = m.collector().pin();
                    g.flush();
                    drop(g);
                    m.collector().try_advance();
                }
            });
        }
    });
    let got: Vec<(u64, u64)> = held.collect();
    let want: Vec<(u64, u64)> = (n / 4..n).map(|k| (k, k)).collect();
    assert_eq!(got, want, "a held scan lost its snapshot");
    assert_eq!(head, [(0, 0), (1, 1), (2, 2)]);
    assert_eq!(m.get(&1), Some(1000 + 3));
}

/// Real-time order between lookups and scans while a writer inserts keys
/// in a scrambled order (leaves split under the readers): a key that a
/// finished `get` saw is in every later scan, and a key that a finished
/// scan saw is found by every later `get` (keys are only inserted here).
/// A lookup that read a pending leaf version without stamping it, or a
/// stamp not ordered with the scan's clock bump, breaks the first rule.
#[test]
fn lookups_and_scans_agree_in_real_time_while_leaves_split() {
    let n: u64 = if cfg!(miri) { 24 } else { 3000 };
    let m: LockFreeBTree<u64, u64> = LockFreeBTree::new();
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        let (m, done) = (&m, &done);
        s.spawn(move || {
            for i in 0..n {
                let k = (i * 7919) % n;
                assert_eq!(m.insert(k, k), None);
            }
            done.store(1, Ordering::Release);
        });
        for t in 0..2u64 {
            s.spawn(move || {
                let mut x = 0x2545_f491_4f6c_dd1du64 ^ (t + 1);
                let mut rounds = 0u32;
                while done.load(Ordering::Acquire) == 0 || rounds < 4 {
                    rounds += 1;
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % n;
                    let lo = k.saturating_sub(40);
                    let seen_by_get = m.get(&k).is_some();
                    let scan: Vec<u64> = m.range(lo..k + 40).map(|(k, _)| k).collect();
                    let in_scan = scan.binary_search(&k).is_ok();
                    assert!(
                        !seen_by_get || in_scan,
                        "get({k}) saw the key, a later scan did not"
                    );
                    for &j in &scan {
                        assert!(m.contains_key(&j), "a scan saw {j}, a later get did not");
                    }
                }
            });
        }
    });
    assert_eq!(m.len() as u64, n);
}
