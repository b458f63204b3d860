//! The behaviours that the peers' own test suites pin down for an ordered
//! map — crossbeam-skiplist's `tests/map.rs` (`SkipMap`) and std's
//! `BTreeMap` — checked against [`LockFreeBTree`]. Written for waitless;
//! each test names the peer test that inspired it.
//!
//! Differences on purpose (SPEC §9.1), checked here as such:
//! - a reversed or empty range yields nothing (std panics on some of them);
//! - `iter`/`range` are snapshots: removals after the iterator was created
//!   are not seen (SkipMap's iterator is weakly consistent and sees them).
//!
//! Since session 11 the API offers every peer behaviour these suites use:
//! reverse iteration (`Range: DoubleEndedIterator`), `clear`,
//! `FromIterator`/`Extend`/`IntoIterator for &map`, `Clone`, `PartialEq`
//! and `pop_first`/`pop_last` (tested at the end of this file).

// The structures run on loom's atomics under `--cfg loom`, which work only
// inside `loom::model`: these tests are for the real build.
#![cfg(not(loom))]

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use waitless::btree::LockFreeBTree;

/// Keys of a map, ascending, from `iter`.
fn keys<V: Clone>(m: &LockFreeBTree<i32, V>) -> Vec<i32> {
    m.iter().map(|(k, _)| k).collect()
}

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// Inspired by crossbeam-skiplist `map.rs::is_empty`.
#[test]
fn is_empty_follows_inserts_and_removes() {
    let m = LockFreeBTree::new();
    assert!(m.is_empty());
    m.insert(1, 10);
    assert!(!m.is_empty());
    m.insert(2, 20);
    m.insert(3, 30);
    assert_eq!(m.remove(&2), Some(20));
    assert!(!m.is_empty());
    assert_eq!(m.remove(&1), Some(10));
    assert!(!m.is_empty());
    assert_eq!(m.remove(&3), Some(30));
    assert!(m.is_empty());
    assert_eq!(m.len(), 0);
}

// Inspired by crossbeam-skiplist `map.rs::insert` and std's
// `BTreeMap::insert` doc test (the old value comes back).
#[test]
fn insert_returns_the_old_value_and_get_misses_absent_keys() {
    let present = [0, 4, 2, 12, 8, 7, 11, 5];
    let absent = [1, 3, 6, 9, 10, -1, 13, i32::MIN, i32::MAX];
    let m = LockFreeBTree::new();
    for &x in &present {
        assert_eq!(m.insert(x, x * 10), None);
        assert_eq!(m.get(&x), Some(x * 10));
    }
    for &x in &absent {
        assert_eq!(m.get(&x), None);
        assert!(!m.contains_key(&x));
        assert_eq!(m.get_with(&x, |v| *v), None);
    }
    for &x in &present {
        assert_eq!(m.insert(x, x * 100), Some(x * 10));
        assert_eq!(m.get(&x), Some(x * 100));
    }
    assert_eq!(m.len(), present.len());
}

// Inspired by crossbeam-skiplist `map.rs::remove` and `insert_and_remove`.
#[test]
fn remove_of_absent_keys_changes_nothing() {
    let m = LockFreeBTree::new();
    for x in [0, 4, 2, 12, 8, 7, 11, 5] {
        m.insert(x, x * 10);
    }
    for x in [1, 3, 6, 9, 10] {
        assert_eq!(m.remove(&x), None);
    }
    for x in [2, 12, 8] {
        assert_eq!(m.remove(&x), Some(x * 10));
        assert_eq!(m.remove(&x), None, "a second remove of {x} finds nothing");
    }
    assert_eq!(keys(&m), [0, 4, 5, 7, 11]);

    let s = LockFreeBTree::new();
    for x in [3, 5, 1, 4, 2] {
        s.insert(x, 0);
    }
    assert_eq!(keys(&s), [1, 2, 3, 4, 5]);
    let steps: [(i32, bool, &[i32]); 7] = [
        (4, true, &[1, 2, 3, 5]),
        (3, true, &[1, 2, 5]),
        (1, true, &[2, 5]),
        (1, false, &[2, 5]),
        (3, false, &[2, 5]),
        (2, true, &[5]),
        (5, true, &[]),
    ];
    for (k, found, after) in steps {
        assert_eq!(s.remove(&k).is_some(), found, "remove({k})");
        assert_eq!(keys(&s), after);
    }
    s.insert(3, 0);
    s.insert(1, 0);
    s.insert(3, 0);
    s.insert(5, 0);
    assert_eq!(keys(&s), [1, 3, 5]);
}

// Inspired by crossbeam-skiplist `map.rs::len`.
#[test]
fn len_counts_keys_not_inserts() {
    let m = LockFreeBTree::new();
    assert_eq!(m.len(), 0);
    for (i, x) in [4, 2, 12, 8, 7, 11, 5].into_iter().enumerate() {
        m.insert(x, x * 10);
        assert_eq!(m.len(), i + 1);
    }
    m.insert(5, 0);
    m.insert(5, 0);
    assert_eq!(m.len(), 7);
    m.remove(&6);
    assert_eq!(m.len(), 7);
    m.remove(&5);
    assert_eq!(m.len(), 6);
    m.remove(&12);
    assert_eq!(m.len(), 5);
    assert_eq!(m.iter().count(), m.len());
}

// Inspired by crossbeam-skiplist `map.rs::front_and_back` and std's
// `first_key_value` / `last_key_value` doc tests.
#[test]
fn first_and_last_key_value() {
    let m = LockFreeBTree::new();
    assert_eq!(m.first_key_value(), None);
    assert_eq!(m.last_key_value(), None);
    for x in [4, 2, 12, 8, 7, 11, 5] {
        m.insert(x, x * 10);
    }
    assert_eq!(m.first_key_value(), Some((2, 20)));
    assert_eq!(m.last_key_value(), Some((12, 120)));
    m.remove(&2);
    m.remove(&12);
    assert_eq!(m.first_key_value(), Some((4, 40)));
    assert_eq!(m.last_key_value(), Some((11, 110)));
    for x in [4, 5, 7, 8] {
        m.remove(&x);
    }
    // One key left: it is both ends.
    assert_eq!(m.first_key_value(), Some((11, 110)));
    assert_eq!(m.last_key_value(), Some((11, 110)));
    m.remove(&11);
    assert_eq!(m.first_key_value(), None);
    assert_eq!(m.last_key_value(), None);
}

// Inspired by crossbeam-skiplist `map.rs::iter` (removals while an
// iterator is live). SkipMap's iterator sees them; ours is a snapshot
// (SPEC §9.1, a documented difference), so it yields what was there when
// it was created, and a new iterator sees the removals.
#[test]
fn iterator_is_a_snapshot_of_its_creation() {
    let m = LockFreeBTree::new();
    for x in [4, 2, 12, 8, 7, 11, 5] {
        m.insert(x, x * 10);
    }
    let mut it = m.iter();
    m.remove(&2);
    assert_eq!(it.next(), Some((2, 20)));
    m.remove(&7);
    m.insert(6, 60);
    assert_eq!(it.next(), Some((4, 40)));
    m.remove(&5);
    m.remove(&12);
    let rest: Vec<i32> = it.map(|(k, _)| k).collect();
    assert_eq!(rest, [5, 7, 8, 11, 12]);
    assert_eq!(keys(&m), [4, 6, 8, 11]);
}

/// What std's `BTreeMap::range` yields for these bounds, or nothing where
/// std panics (start > end, or both bounds excluded and equal): SPEC §9.1
/// says a reversed range yields nothing.
fn expected(reference: &BTreeMap<i32, i32>, lo: Bound<i32>, hi: Bound<i32>) -> Vec<(i32, i32)> {
    let (a, b) = (bound_value(lo), bound_value(hi));
    let empty = match (a, b) {
        (Some(a), Some(b)) => a > b || (a == b && matches!((lo, hi), (Excluded(_), Excluded(_)))),
        _ => false,
    };
    if empty {
        return Vec::new();
    }
    reference.range((lo, hi)).map(|(k, v)| (*k, *v)).collect()
}

fn bound_value(b: Bound<i32>) -> Option<i32> {
    match b {
        Included(x) | Excluded(x) => Some(x),
        Unbounded => None,
    }
}

// Inspired by crossbeam-skiplist `map.rs::iter_range` (its table of bound
// pairs: below, between, on and above the keys; equal; reversed) and std's
// `BTreeMap::range` tests.
#[test]
fn range_matches_std_for_every_bound_pair() {
    let m = LockFreeBTree::new();
    let mut reference = BTreeMap::new();
    for x in (0..10).map(|x| x * 10) {
        m.insert(x, x);
        reference.insert(x, x);
    }
    let points = [-2, -1, 0, 25, 50, 70, 80, 90, 100];
    let mut bounds = vec![Unbounded];
    for p in points {
        bounds.push(Included(p));
        bounds.push(Excluded(p));
    }
    for &lo in &bounds {
        for &hi in &bounds {
            let got: Vec<(i32, i32)> = m.range((lo, hi)).collect();
            assert_eq!(got, expected(&reference, lo, hi), "range({lo:?}, {hi:?})");
        }
    }
    // The `RangeBounds` sugar forms too.
    assert_eq!(m.range(25..80).count(), 5);
    assert_eq!(m.range(25..=80).count(), 6);
    assert_eq!(m.range(..=0).collect::<Vec<_>>(), [(0, 0)]);
    assert_eq!(m.range(90..).collect::<Vec<_>>(), [(90, 90)]);
    assert_eq!(m.range(..).count(), 10);
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = m.range(80..20).count();
    assert_eq!(reversed, 0);
}

// Inspired by crossbeam-skiplist `map.rs::iter_range2` (issue 671: a range
// count, then an insert of a key in that range).
#[test]
fn insert_after_a_counted_range() {
    let m = LockFreeBTree::new();
    for x in [1, 3, 5] {
        m.insert(x, x);
    }
    assert_eq!(m.range(2..4).count(), 1);
    assert_eq!(m.insert(3, 3), Some(3));
    assert_eq!(keys(&m), [1, 3, 5]);
}

// Inspired by crossbeam-skiplist `map.rs::issue_1178` (inserting keys that
// a range over `Vec<u8>` keys returned). Here the writes happen while the
// range is still open and half consumed, and the bounds borrow as slices.
#[test]
fn writes_while_a_range_is_open() {
    let m: LockFreeBTree<Vec<u8>, Vec<u8>> = LockFreeBTree::new();
    for k in 1u8..=3 {
        m.insert(vec![k], vec![k]);
    }
    let lo: &[u8] = &[1];
    let hi: &[u8] = &[3];
    let mut r = m.range::<[u8], _>((Included(lo), Excluded(hi)));
    let (k, v) = r.next().expect("key [1]");
    assert_eq!(m.insert(k, v), Some(vec![1]));
    assert_eq!(m.insert(vec![2, 0], vec![9]), None);
    assert_eq!(m.remove(&[2u8][..]), Some(vec![2]));
    // The open range still yields its snapshot.
    assert_eq!(r.collect::<Vec<_>>(), [(vec![2], vec![2])]);
    let now: Vec<Vec<u8>> = m.iter().map(|(k, _)| k).collect();
    assert_eq!(now, [vec![1], vec![2, 0], vec![3]]);
}

// Inspired by std `BTreeMap`'s `Borrow` lookups (`String` keys, `&str`
// queries) and crossbeam-skiplist's `get` with borrowed keys.
#[test]
fn borrowed_lookups() {
    let m: LockFreeBTree<String, usize> = LockFreeBTree::new();
    for w in ["pear", "apple", "fig"] {
        m.insert(w.to_owned(), w.len());
    }
    assert_eq!(m.get("fig"), Some(3));
    assert!(m.contains_key("apple"));
    assert!(!m.contains_key("plum"));
    assert_eq!(m.get_with("pear", |n| n * 2), Some(8));
    let from_b: Vec<String> = m
        .range::<str, _>((Included("b"), Unbounded))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(from_b, ["fig", "pear"]);
    assert_eq!(m.remove("apple"), Some(5));
    assert_eq!(m.remove("apple"), None);
}

// Inspired by the model comparisons of std's `BTreeMap` tests and papaya's
// `fuzz/fuzz_targets/std.rs`: a long deterministic mix of operations,
// enough keys to split nodes over several levels and to merge them again.
#[test]
fn long_mixed_sequence_matches_std() {
    let ops = if cfg!(miri) { 400 } else { 40_000 };
    let span = if cfg!(miri) { 64 } else { 4_096 };
    let m = LockFreeBTree::new();
    let mut reference = BTreeMap::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..ops {
        let k = i64::try_from(rng.below(span)).unwrap();
        match rng.below(10) {
            0..=4 => assert_eq!(m.insert(k, i), reference.insert(k, i), "insert {k}"),
            5..=7 => assert_eq!(m.remove(&k), reference.remove(&k), "remove {k}"),
            8 => assert_eq!(m.get(&k), reference.get(&k).copied(), "get {k}"),
            _ => {
                let hi = k + i64::try_from(rng.below(64)).unwrap();
                let got: Vec<_> = m.range(k..hi).take(8).collect();
                let want: Vec<_> = reference
                    .range(k..hi)
                    .take(8)
                    .map(|(a, b)| (*a, *b))
                    .collect();
                assert_eq!(got, want, "range {k}..{hi}");
            }
        }
        if i % 997 == 0 {
            assert_eq!(m.len(), reference.len());
            assert_eq!(
                m.first_key_value(),
                reference.first_key_value().map(|(a, b)| (*a, *b))
            );
            assert_eq!(
                m.last_key_value(),
                reference.last_key_value().map(|(a, b)| (*a, *b))
            );
        }
    }
    let all: Vec<_> = m.iter().collect();
    let want: Vec<_> = reference.into_iter().collect();
    assert_eq!(all, want);
    // Drain to empty: every merge path down to the empty tree.
    for (k, _) in &all {
        assert!(m.remove(k).is_some());
    }
    assert!(m.is_empty());
    assert_eq!(m.iter().next(), None);
    assert_eq!(m.first_key_value(), None);
}

// Inspired by std's `FusedIterator` guarantee for `btree_map::Range` and
// crossbeam-skiplist `map.rs::range_next_memory_leak` (a range ended and
// asked again).
#[test]
fn range_stays_exhausted() {
    let m = LockFreeBTree::new();
    m.insert(1, 1);
    let mut r = m.range(0..5);
    assert_eq!(r.next(), Some((1, 1)));
    assert_eq!(r.next(), None);
    m.insert(2, 2);
    assert_eq!(r.next(), None);
    assert_eq!(r.next(), None);
}

// Inspired by papaya `basic.rs::current_kv_dropped` and crossbeam-skiplist's
// drop tests: every key and value the map ever held is released exactly
// once, on replace, on remove and at the map's own drop, retired versions
// included.
#[test]
fn every_key_and_value_is_released_once() {
    let key_token = Arc::new(());
    let val_token = Arc::new(());
    let n = if cfg!(miri) { 40 } else { 2_000 };
    {
        let m: LockFreeBTree<(u32, Arc<()>), Arc<()>> = LockFreeBTree::new();
        for i in 0..n {
            assert!(m
                .insert((i, Arc::clone(&key_token)), Arc::clone(&val_token))
                .is_none());
        }
        for i in (0..n).step_by(3) {
            let old = m.insert((i, Arc::clone(&key_token)), Arc::clone(&val_token));
            assert!(old.is_some());
        }
        for i in (0..n).step_by(2) {
            assert!(m.remove(&(i, Arc::clone(&key_token))).is_some());
        }
        assert_eq!(m.len(), usize::try_from(n / 2).unwrap());
        // Dropped here with half its entries left and retired versions
        // still waiting in its collector.
    }
    assert_eq!(Arc::strong_count(&key_token), 1, "a key was leaked");
    assert_eq!(Arc::strong_count(&val_token), 1, "a value was leaked");
}

// Inspired by crossbeam-skiplist `map.rs::get_or_insert_with_panic` (a
// panic in user code leaves the map usable and consistent).
#[test]
fn a_panicking_closure_leaves_the_map_usable() {
    let m = LockFreeBTree::new();
    m.insert(1, 10);
    m.insert(2, 20);
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.get_with(&1, |_| -> u8 { panic!("user code") })
    }));
    assert!(r.is_err());
    assert_eq!(m.get(&1), Some(10));
    assert_eq!(m.insert(3, 30), None);
    assert_eq!(keys(&m), [1, 2, 3]);
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.iter()
            .for_each(|(k, _)| assert!(k < 2, "stop in the middle"));
    }));
    assert!(r.is_err());
    assert_eq!(m.remove(&2), Some(20));
    assert_eq!(keys(&m), [1, 3]);
}

/// A value whose `Clone` panics while [`CLONE_PANICS`] is set; counts live
/// instances.
#[derive(Debug)]
struct Fragile(u32);
static CLONE_PANICS: AtomicBool = AtomicBool::new(false);
static FRAGILE_LIVE: AtomicUsize = AtomicUsize::new(0);
impl Fragile {
    fn new(v: u32) -> Self {
        FRAGILE_LIVE.fetch_add(1, Ordering::SeqCst);
        Self(v)
    }
}
impl Clone for Fragile {
    fn clone(&self) -> Self {
        assert!(!CLONE_PANICS.load(Ordering::SeqCst), "V::clone panics");
        Self::new(self.0)
    }
}
impl Drop for Fragile {
    fn drop(&mut self) {
        FRAGILE_LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

// Inspired by the panic-safety tests of std's `BTreeMap` (a panicking
// `Clone` during an operation neither corrupts the map nor drops a value
// twice) — here `V::clone`, which `get`, `range` and our copy-on-write
// `insert`/`remove` call.
#[test]
fn a_panicking_value_clone_corrupts_nothing() {
    let n = if cfg!(miri) { 40 } else { 300 };
    {
        let m = LockFreeBTree::new();
        for i in 0..n {
            m.insert(i, Fragile::new(i));
        }
        CLONE_PANICS.store(true, Ordering::SeqCst);
        let tries: [&dyn Fn(); 4] = [
            &|| drop(m.get(&5)),
            &|| {
                let _ = m.iter().count();
            },
            &|| drop(m.insert(7, Fragile::new(700))),
            &|| drop(m.remove(&9)),
        ];
        let mut panicked = 0;
        for f in tries {
            if catch_unwind(AssertUnwindSafe(f)).is_err() {
                panicked += 1;
            }
        }
        CLONE_PANICS.store(false, Ordering::SeqCst);
        assert!(panicked >= 2, "get and iteration clone the value");
        // Whatever an interrupted insert/remove did, it did all or nothing.
        let v7 = m.get(&7).expect("key 7 stays").0;
        assert!(v7 == 7 || v7 == 700, "7 -> {v7}");
        let len = m.len();
        assert!(len == usize::try_from(n).unwrap() || len + 1 == usize::try_from(n).unwrap());
        assert_eq!(m.iter().count(), len);
        let ks: Vec<u32> = m.iter().map(|(k, _)| k).collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(m.insert(n, Fragile::new(n)).map(|f| f.0), None);
    }
    assert_eq!(
        FRAGILE_LIVE.load(Ordering::SeqCst),
        0,
        "a value leaked or dropped twice"
    );
}

// Inspired by rtrb `lib.rs::zero_sized_type` and std's ZST map tests.
#[test]
fn zero_sized_keys_and_values() {
    let unit_values: LockFreeBTree<u32, ()> = LockFreeBTree::new();
    for i in 0..100 {
        assert_eq!(unit_values.insert(i, ()), None);
    }
    assert_eq!(unit_values.insert(5, ()), Some(()));
    assert_eq!(unit_values.len(), 100);
    assert_eq!(unit_values.remove(&5), Some(()));
    assert_eq!(unit_values.range(0..10).count(), 9);

    let unit_key: LockFreeBTree<(), u32> = LockFreeBTree::new();
    assert_eq!(unit_key.insert((), 1), None);
    assert_eq!(unit_key.insert((), 2), Some(1));
    assert_eq!(unit_key.len(), 1);
    assert_eq!(unit_key.first_key_value(), Some(((), 2)));
    assert_eq!(unit_key.last_key_value(), Some(((), 2)));
    assert_eq!(unit_key.remove(&()), Some(2));
    assert!(unit_key.is_empty());
}

// Inspired by crossbeam-skiplist `map.rs::concurrent_insert` (issue 672):
// threads insert disjoint keys; all of them are there afterwards, in order.
#[test]
fn concurrent_disjoint_inserts_all_land() {
    let per = if cfg!(miri) { 30 } else { 3_000 };
    let threads = 4;
    let m = LockFreeBTree::new();
    std::thread::scope(|s| {
        for t in 0..threads {
            let m = &m;
            s.spawn(move || {
                for i in 0..per {
                    assert_eq!(m.insert(i * threads + t, t), None);
                }
            });
        }
    });
    let all: Vec<(u32, u32)> = m.iter().collect();
    assert_eq!(all.len(), usize::try_from(per * threads).unwrap());
    for (i, (k, v)) in all.into_iter().enumerate() {
        assert_eq!(usize::try_from(k).unwrap(), i);
        assert_eq!(v, k % threads);
    }
}

// Inspired by crossbeam-skiplist `map.rs::concurrent_remove`: threads race
// to remove the same keys; each key is removed by exactly one of them.
#[test]
fn concurrent_removes_of_the_same_keys_succeed_once() {
    let n: u32 = if cfg!(miri) { 30 } else { 4_000 };
    let m = LockFreeBTree::new();
    for i in 0..n {
        m.insert(i, i);
    }
    let wins: Vec<Vec<u32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let m = &m;
                s.spawn(move || (0..n).filter(|i| m.remove(i) == Some(*i)).collect())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u32> = wins.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
    assert!(m.is_empty());
}

// Inspired by crossbeam-skiplist `map.rs::concurrent_insert_get_same_key`
// (issue 1023): a key being replaced over and over is never missing.
#[test]
fn a_replaced_key_is_never_missing() {
    let rounds = if cfg!(miri) { 50 } else { 10_000 };
    let m = LockFreeBTree::new();
    m.insert(0u32, 0u32);
    m.insert(1, 1);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..rounds {
                assert!(m.insert(0, i).is_some());
            }
        });
        for _ in 0..rounds {
            assert!(m.get(&0).is_some());
            assert!(m.contains_key(&0));
            assert_eq!(m.first_key_value().map(|(k, _)| k), Some(0));
            assert_eq!(m.len(), 2);
        }
    });
}

// Inspired by crossbeam-skiplist's `SkipMap: Send + Sync` use across
// threads and std's auto-trait tests.
#[test]
fn auto_traits_and_default() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LockFreeBTree<String, Vec<u8>>>();
    send_sync::<LockFreeBTree<u64, ()>>();
    // std's BTreeMap and SkipMap are UnwindSafe and RefUnwindSafe (peers10's B1).
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<LockFreeBTree<u8, u8>>();
    unwind_safe::<LockFreeBTree<String, Vec<u8>>>();
    let m: LockFreeBTree<u8, u8> = LockFreeBTree::default();
    // Usable across catch_unwind without AssertUnwindSafe.
    assert!(std::panic::catch_unwind(|| m.len()).is_ok());
    assert!(m.is_empty());
    m.insert(1, 2);
    // Entries, like `BTreeMap`'s `Debug` (since session 11).
    assert_eq!(format!("{m:?}"), "{1: 2}");
}

/// A key whose `tag` takes no part in the order.
#[derive(Clone, Debug)]
struct Tagged {
    k: u32,
    tag: &'static str,
}
impl PartialEq for Tagged {
    fn eq(&self, o: &Self) -> bool {
        self.k == o.k
    }
}
impl Eq for Tagged {}
impl PartialOrd for Tagged {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Tagged {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.k.cmp(&o.k)
    }
}

// Inspired by std's `BTreeMap::insert` docs ("the key is not updated")
// and crossbeam-skiplist's `insert` (which replaces the whole entry). Our
// B-tree documents SkipMap's behaviour (`insert` docs): the new key object
// replaces the old one — a documented difference from std, checked here.
#[test]
fn insert_replaces_the_whole_entry_like_skipmap() {
    let m = LockFreeBTree::new();
    assert_eq!(m.insert(Tagged { k: 1, tag: "first" }, 1), None);
    assert_eq!(
        m.insert(
            Tagged {
                k: 1,
                tag: "second"
            },
            2
        ),
        Some(1)
    );
    let (k, v) = m.first_key_value().unwrap();
    assert_eq!((k.tag, v), ("second", 2));
    assert_eq!(m.len(), 1);
}

// Inspired by crossbeam-skiplist `map.rs::concurrent_insert_get_same_key`
// and `concurrent_remove`, widened to node splits and merges: while writers
// insert and remove the odd keys (splitting and merging nodes), the even
// keys — present throughout — are never missing from lookups, ranges,
// `first/last_key_value` or `len`, and every range is ascending.
#[test]
fn stable_keys_survive_concurrent_splits_and_merges() {
    let evens: u32 = if cfg!(miri) { 24 } else { 2_000 };
    let rounds = if cfg!(miri) { 2 } else { 6 };
    let m = LockFreeBTree::new();
    for k in 0..evens {
        m.insert(2 * k, k);
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..rounds {
                for k in 0..evens - 1 {
                    m.insert(2 * k + 1, 0);
                }
                for k in 0..evens - 1 {
                    assert_eq!(m.remove(&(2 * k + 1)), Some(0));
                }
            }
            done.store(true, Ordering::Release);
        });
        let mut rng = Rng(7);
        // At least some checks even if the writer finishes first.
        for checks in 0.. {
            if checks >= 50 && done.load(Ordering::Acquire) {
                break;
            }
            let k = u32::try_from(rng.below(u64::from(evens))).unwrap();
            assert_eq!(m.get(&(2 * k)), Some(k));
            let lo = 2 * k;
            let hi = lo + 200;
            let got: Vec<u32> = m.range(lo..hi).map(|(k, _)| k).collect();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "ascending: {got:?}");
            let want_evens: Vec<u32> = (lo..hi.min(2 * evens)).step_by(2).collect();
            let got_evens: Vec<u32> = got.iter().copied().filter(|k| k % 2 == 0).collect();
            assert_eq!(got_evens, want_evens);
            assert_eq!(m.first_key_value(), Some((0, 0)));
            assert_eq!(m.last_key_value(), Some((2 * (evens - 1), evens - 1)));
            let len = m.len();
            assert!(
                len >= evens as usize && len < 2 * evens as usize,
                "len {len}"
            );
        }
    });
    assert_eq!(m.len(), evens as usize);
}

/// std's `BTreeMap` `from_iter`/`extend`/`into_iter` tests: a later pair
/// replaces an earlier one; `for (k, v) in &map` walks in key order.
#[test]
fn collect_extend_and_iterate_by_reference_like_btreemap() {
    let pairs = [(3, 'c'), (1, 'a'), (2, 'b'), (1, 'A')];
    let m: LockFreeBTree<i32, char> = pairs.into_iter().collect();
    let std: BTreeMap<i32, char> = pairs.into_iter().collect();
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        std.clone().into_iter().collect::<Vec<_>>()
    );
    let mut m = m;
    m.extend([(4, 'd'), (2, 'B')]);
    (&m).extend([(5, 'e')]);
    let mut std = std;
    std.extend([(4, 'd'), (2, 'B'), (5, 'e')]);
    let mut seen = Vec::new();
    for (k, v) in &m {
        seen.push((k, v));
    }
    assert_eq!(seen, std.into_iter().collect::<Vec<_>>());
}

/// std's `test_clone`/`test_eq` and `test_debug`: a clone is independent;
/// equality is by entries; `Debug` prints the entries like `BTreeMap`.
#[test]
fn clone_eq_and_debug_like_btreemap() {
    let a: LockFreeBTree<i32, String> = (0..50).map(|i| (i, i.to_string())).collect();
    let b = a.clone();
    assert_eq!(a, b);
    b.insert(7, "seven".into());
    assert_ne!(a, b);
    assert_eq!(a.get(&7).as_deref(), Some("7"));
    b.insert(7, "7".into());
    assert_eq!(a, b);
    b.remove(&49);
    assert_ne!(a, b, "a shorter map compared equal");
    let small: LockFreeBTree<i32, &str> = [(2, "two"), (1, "one")].into_iter().collect();
    let std: BTreeMap<i32, &str> = [(2, "two"), (1, "one")].into_iter().collect();
    assert_eq!(format!("{small:?}"), format!("{std:?}"));
    assert_eq!(format!("{:?}", LockFreeBTree::<u8, u8>::new()), "{}");
}

/// std's `test_pop_first_last`: popping from both ends, in any mix, takes
/// the entries in the order `BTreeMap` does, and `clear` empties the map.
#[test]
fn pop_first_and_pop_last_take_the_ends_like_btreemap() {
    let m: LockFreeBTree<i32, i32> = (0..300).map(|i| (i, -i)).collect();
    let mut std: BTreeMap<i32, i32> = (0..300).map(|i| (i, -i)).collect();
    for step in 0..310 {
        if step % 3 == 0 {
            assert_eq!(m.pop_last(), std.pop_last(), "pop_last at step {step}");
        } else {
            assert_eq!(m.pop_first(), std.pop_first(), "pop_first at step {step}");
        }
        assert_eq!(m.len(), std.len());
    }
    assert!(m.is_empty());
    let m: LockFreeBTree<i32, i32> = (0..300).map(|i| (i, i)).collect();
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.first_key_value(), None);
    m.insert(1, 1);
    assert_eq!(m.pop_first(), Some((1, 1)));
}

/// SkipMap's concurrent `pop_front`/`pop_back`: threads popping from both
/// ends at once take every key exactly once (no key is lost or taken twice),
/// and each thread's pops from one end come out in order.
#[test]
fn concurrent_pops_take_every_key_once() {
    let n = if cfg!(miri) { 60 } else { 20_000 };
    let m: LockFreeBTree<i32, i32> = (0..n).map(|i| (i, i * 2)).collect();
    let taken: Vec<Vec<(i32, i32)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let m = &m;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = if t % 2 == 0 {
                            m.pop_first()
                        } else {
                            m.pop_last()
                        };
                        match got {
                            Some(kv) => mine.push(kv),
                            None => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (t, mine) in taken.iter().enumerate() {
        let ordered = if t % 2 == 0 {
            mine.windows(2).all(|w| w[0].0 < w[1].0)
        } else {
            mine.windows(2).all(|w| w[0].0 > w[1].0)
        };
        assert!(ordered, "thread {t}'s pops are out of order");
    }
    let mut all: Vec<(i32, i32)> = taken.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).map(|i| (i, i * 2)).collect::<Vec<_>>());
    assert!(m.is_empty());
}

/// std's `BTreeMap` range tests run from both ends (`test_range_backwards*`,
/// `test_range_1000` with `next_back`): `rev()` and any mix of `next` and
/// `next_back` yield what `BTreeMap::range` yields, across many leaves and
/// levels, with sparse leaves left by removals.
#[test]
fn double_ended_ranges_match_std_across_leaves() {
    let m = LockFreeBTree::new();
    let mut reference = BTreeMap::new();
    let n = if cfg!(miri) { 200 } else { 3000 };
    // Insert in a scrambled order, then thin out runs of keys.
    for i in 0..n {
        let k = (i * 7919) % n * 3;
        m.insert(k, -k);
        reference.insert(k, -k);
    }
    for k in (0..n * 3).filter(|k| k % 9 == 0 || (k / 100) % 4 == 1) {
        assert_eq!(m.remove(&k), reference.remove(&k));
    }
    let points = [-5, 0, 1, 299, 300, 301, n * 3 / 2, n * 3 - 3, n * 3 + 10];
    let mut bounds = vec![Unbounded];
    for p in points {
        bounds.push(Included(p));
        bounds.push(Excluded(p));
    }
    for &lo in &bounds {
        for &hi in &bounds {
            let mut want = expected(&reference, lo, hi);
            // An alternation of ends driven by the bounds, then the rest.
            let mut got_front = Vec::new();
            let mut got_back = Vec::new();
            let mut r = m.range((lo, hi));
            let (mut a, mut b) = (0usize, want.len());
            for step in 0.. {
                let from_back = (step * 5 + 3) % 7 < 3;
                let item = if from_back { r.next_back() } else { r.next() };
                let Some(item) = item else { break };
                if from_back {
                    b -= 1;
                    assert_eq!(item, want[b], "next_back of range({lo:?}, {hi:?})");
                    got_back.push(item);
                } else {
                    assert_eq!(item, want[a], "next of range({lo:?}, {hi:?})");
                    a += 1;
                    got_front.push(item);
                }
            }
            assert_eq!(a, b, "range({lo:?}, {hi:?}) stopped early or ran over");
            assert_eq!(r.next(), None);
            assert_eq!(r.next_back(), None);
            want.reverse();
            let rev: Vec<(i32, i32)> = m.range((lo, hi)).rev().collect();
            assert_eq!(rev, want, "rev of range({lo:?}, {hi:?})");
        }
    }
    assert_eq!(
        m.iter().next_back(),
        reference.iter().next_back().map(|(k, v)| (*k, *v))
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = m.range(80..20).next_back();
    assert_eq!(reversed, None);
}

/// The back end walks the same snapshot as the front: entries removed
/// after the iterator was created still come out of `next_back`, and keys
/// inserted later do not (std has no concurrent writers; SPEC §9.1's
/// snapshot, from the other end).
#[test]
fn next_back_walks_the_snapshot_taken_at_the_call() {
    let m = LockFreeBTree::new();
    for k in 0..500 {
        m.insert(k, k);
    }
    let mut r = m.range(100..400);
    assert_eq!(r.next(), Some((100, 100)));
    for k in 0..500 {
        m.remove(&k);
    }
    m.insert(450, 0);
    m.insert(399, -1);
    let back: Vec<i32> = r.by_ref().rev().map(|(k, _)| k).collect();
    assert_eq!(back, (101..400).rev().collect::<Vec<_>>());
    assert_eq!(r.next(), None);
    assert_eq!(m.iter().rev().collect::<Vec<_>>(), [(450, 0), (399, -1)]);
}

/// `try_insert` racing on the same keys (scc's `TreeIndex::insert`
/// semantics): exactly one thread wins each key, the map keeps the winner's
/// value, every loser gets its own key and value back, and no value is
/// leaked or dropped twice (counted through `Arc`s).
#[test]
fn racing_try_inserts_make_one_winner_per_key() {
    use std::sync::Arc;
    let n: u32 = if cfg!(miri) { 40 } else { 5_000 };
    let token = Arc::new(());
    let m: LockFreeBTree<u32, (usize, Arc<()>)> = LockFreeBTree::new();
    let wins: Vec<Vec<u32>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4usize)
            .map(|t| {
                let (m, token) = (&m, &token);
                s.spawn(move || {
                    let mut won = Vec::new();
                    for i in 0..n {
                        // Each thread walks the keys in its own order.
                        let k = if t % 2 == 0 { i } else { n - 1 - i };
                        match m.try_insert(k, (t, Arc::clone(token))) {
                            Ok(()) => won.push(k),
                            Err((back_k, (back_t, _))) => {
                                assert_eq!((back_k, back_t), (k, t), "not our key and value back");
                            }
                        }
                    }
                    won
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<u32> = wins.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "a key won twice or never");
    for (t, won) in wins.iter().enumerate() {
        for &k in won {
            assert_eq!(
                m.get_with(&k, |v| v.0),
                Some(t),
                "key {k} holds a loser's value"
            );
        }
    }
    assert_eq!(Arc::strong_count(&token), 1 + n as usize);
    drop(m);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a value leaked or was dropped twice"
    );
}
