//! Unit tests (Miri runs them scaled: fan-out 4 under Miri, so splits,
//! empty-node removal and root collapse all happen with few keys).

use super::node::{Kind, Slot, B};
use super::*;
use core::fmt;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::atomic::AtomicIsize;
use std::sync::atomic::Ordering as StdOrdering;

/// Keys per test: several levels of nodes at the configured fan-out.
fn n() -> u64 {
    if cfg!(miri) {
        60
    } else {
        3000
    }
}

/// A slot's stored key image is its key's (the fast search path relies on
/// it), and 0 for key types without an image.
fn check_image<K, V>(s: Slot<K, V>) {
    let kind = Kind::of::<K>();
    let want = if kind == Kind::Other {
        0
    } else {
        // SAFETY: entries of a live node are alive; `kind` is `K`'s.
        unsafe { kind.image(key_of(s.e)) }
    };
    assert_eq!(s.h, want, "stale or wrong key image in a slot");
}

/// Walks the current version and checks the tree invariants: sorted keys,
/// separators bounding their children, bottom flags, no frozen handle and
/// no empty leaf unless it is the only one, stamped current versions.
fn check_invariants<K: Ord + fmt::Debug, V>(m: &LockFreeBTree<K, V>) {
    use super::node::{is_frozen, leaf_at};
    fn leaf<K: Ord + fmt::Debug, V>(
        h: HandlePtr<K, V>,
        lo: Option<&K>,
        hi: Option<&K>,
        sole: bool,
    ) -> usize {
        // SAFETY: no writer runs; the handle is in the current version.
        let cur = unsafe { &*h }.cur.load(Ordering::Relaxed);
        assert!(!is_frozen(cur), "a frozen handle left in the tree");
        // SAFETY: as above.
        let l = unsafe { leaf_at(cur) };
        assert_ne!(l.ts.load(Ordering::Relaxed), PENDING, "unstamped version");
        let k: Vec<&K> = l
            .ents
            .entries()
            .iter()
            // SAFETY: entries of a live version are alive.
            .map(|&e| unsafe { key_of(e) })
            .collect();
        assert!(sole || !k.is_empty(), "empty leaf that is not the only one");
        for s in l.ents.iter() {
            // SAFETY: as above.
            let refs = unsafe { (*s.e).refs.load(Ordering::Relaxed) };
            assert!(refs >= 1, "a leaf entry with no count");
            check_image(s);
        }
        assert!(k.windows(2).all(|w| w[0] < w[1]), "leaf unsorted {k:?}");
        if let (Some(lo), Some(f)) = (lo, k.first()) {
            assert!(lo <= *f);
        }
        if let (Some(hi), Some(l)) = (hi, k.last()) {
            assert!(*l < hi);
        }
        k.len()
    }
    fn walk<K: Ord + fmt::Debug, V>(
        p: NodePtr<K, V>,
        lo: Option<&K>,
        hi: Option<&K>,
        is_root: bool,
        depth: usize,
        bottom_depth: &mut Option<usize>,
    ) -> usize {
        // SAFETY: no writer runs: the current version is alive.
        let Node::Inner(n) = (unsafe { &*p }) else {
            panic!("a leaf version above the handles")
        };
        let ks: Vec<&K> = n
            .keys
            .entries()
            .iter()
            // SAFETY: separators of a live node are alive.
            .map(|&e| unsafe { key_of(e) })
            .collect();
        n.keys.iter().for_each(check_image);
        let kids = n.kids.as_slice();
        assert!(!kids.is_empty() && ks.len() + 1 == kids.len());
        assert!(
            !is_root || n.bottom || kids.len() > 1,
            "one-child root not collapsed"
        );
        assert!(ks.windows(2).all(|w| w[0] < w[1]), "separators unsorted");
        if n.bottom {
            assert_eq!(*bottom_depth.get_or_insert(depth), depth, "uneven depth");
        }
        let mut total = 0;
        for (i, &c) in kids.iter().enumerate() {
            let clo = if i == 0 { lo } else { Some(ks[i - 1]) };
            let chi = if i == ks.len() { hi } else { Some(ks[i]) };
            total += if n.bottom {
                leaf::<K, V>(c.cast(), clo, chi, is_root && kids.len() == 1)
            } else {
                walk(c, clo, chi, false, depth + 1, bottom_depth)
            };
        }
        total
    }
    // SAFETY: no writer runs: the current root version is alive.
    let tree = unsafe { &*m.root.load(Ordering::Relaxed) }.tree;
    let total = walk(tree, None, None, true, 0, &mut None);
    assert_eq!(total, m.len());
}

/// A pseudo-random permutation-ish sequence.
fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[test]
fn insert_get_remove_against_btreemap() {
    let m = LockFreeBTree::new();
    let mut r = BTreeMap::new();
    let n = n();
    for i in 0..n {
        let k = mix(i) % (n * 2);
        assert_eq!(m.insert(k, i), r.insert(k, i));
    }
    check_invariants(&m);
    assert_eq!(m.len(), r.len());
    for k in 0..n * 2 {
        assert_eq!(m.get(&k), r.get(&k).copied());
        assert_eq!(m.contains_key(&k), r.contains_key(&k));
    }
    assert!(m.iter().eq(r.iter().map(|(k, v)| (*k, *v))));
    for i in 0..n * 2 {
        let k = mix(i + 7) % (n * 2);
        assert_eq!(m.remove(&k), r.remove(&k));
        if i % 97 == 0 {
            check_invariants(&m);
        }
    }
    check_invariants(&m);
    assert!(m.iter().eq(r.iter().map(|(k, v)| (*k, *v))));
    assert_eq!(
        m.first_key_value(),
        r.first_key_value().map(|(k, v)| (*k, *v))
    );
    assert_eq!(
        m.last_key_value(),
        r.last_key_value().map(|(k, v)| (*k, *v))
    );
}

#[test]
fn remove_everything_collapses_to_an_empty_root() {
    let m = LockFreeBTree::new();
    let n = n();
    for k in 0..n {
        m.insert(k, k);
    }
    // SAFETY: no writer runs; the root is alive while `m` is.
    let root = unsafe { &*(*m.root.load(Ordering::Relaxed)).tree };
    assert!(matches!(root, Node::Inner(n) if !n.bottom), "not grown");
    for k in (0..n).rev() {
        assert_eq!(m.remove(&k), Some(k));
    }
    check_invariants(&m);
    assert!(m.is_empty());
    assert_eq!(m.first_key_value(), None);
    assert_eq!(m.last_key_value(), None);
    assert_eq!(m.iter().count(), 0);
    // And it grows again.
    for k in 0..n {
        m.insert(k, k);
    }
    check_invariants(&m);
    assert_eq!(m.len(), n as usize);
}

#[test]
fn every_kind_of_bound() {
    let m = LockFreeBTree::new();
    let mut r = BTreeMap::new();
    for k in (0..(B as u64 * 12)).map(|k| k * 3) {
        m.insert(k, k + 1);
        r.insert(k, k + 1);
    }
    let top = B as u64 * 36 + 4;
    let step = if cfg!(miri) { 17 } else { 1 };
    let bounds = |x: u64| [Included(x), Excluded(x), Unbounded];
    for a in (0..top).step_by(step) {
        for b in (a.saturating_sub(3)..top).step_by(step * 5) {
            for lo in bounds(a) {
                for hi in bounds(b) {
                    let got: Vec<_> = m.range((lo, hi)).collect();
                    let reversed = match (lo, hi) {
                        (Included(x), Included(y)) => x > y,
                        (Included(x) | Excluded(x), Excluded(y)) | (Excluded(x), Included(y)) => {
                            x >= y
                        }
                        _ => false,
                    };
                    let want: Vec<_> = if reversed {
                        Vec::new() // std panics here; we yield nothing
                    } else {
                        r.range((lo, hi)).map(|(k, v)| (*k, *v)).collect()
                    };
                    assert_eq!(got, want, "range ({lo:?}, {hi:?})");
                }
            }
        }
    }
    let (five, ten) = (5, 10);
    assert_eq!(m.range(ten..five).count(), 0);
    assert_eq!(m.range(five..five).count(), 0);
    assert_eq!(m.range((Excluded(6), Included(6))).count(), 0);
    assert_eq!(m.range(6..=6).count(), 1);
}

#[test]
fn string_keys_with_str_lookups() {
    let m: LockFreeBTree<String, usize> = LockFreeBTree::new();
    let n = n() as usize;
    for i in 0..n {
        m.insert(format!("key{i:05}"), i);
    }
    assert_eq!(m.get("key00042"), Some(42));
    assert!(m.contains_key("key00001"));
    assert_eq!(m.get_with("key00003", |v| v * 2), Some(6));
    assert_eq!(m.remove("key00002"), Some(2));
    assert_eq!(m.get("key00002"), None);
    let got: Vec<_> = m
        .range::<str, _>((Included("key00010"), Excluded("key00013")))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(got, ["key00010", "key00011", "key00012"]);
    check_invariants(&m);
}

#[test]
fn range_is_lazy_and_long_lived_iterators_see_their_snapshot() {
    let m = LockFreeBTree::new();
    let n = n();
    for k in 0..n {
        m.insert(k, k);
    }
    let mut it = m.range(10..);
    assert_eq!(it.next(), Some((10, 10)));
    // Writers change the map while the iterator is open.
    for k in 0..n {
        m.remove(&k);
    }
    m.insert(n + 5, 0);
    assert_eq!(it.next(), Some((11, 11)));
    assert_eq!(it.count() as u64, n - 12);
    assert_eq!(m.iter().collect::<Vec<_>>(), [(n + 5, 0)]);
}

/// Counts live objects: creations (including clones) minus drops.
struct Tracked(u64, &'static AtomicIsize);
impl Tracked {
    fn new(v: u64, live: &'static AtomicIsize) -> Self {
        live.fetch_add(1, StdOrdering::Relaxed);
        Tracked(v, live)
    }
}
impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.0, self.1)
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        let before = self.1.fetch_sub(1, StdOrdering::Relaxed);
        assert!(before > 0, "dropped more objects than were created");
    }
}
impl PartialEq for Tracked {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Tracked {}
impl PartialOrd for Tracked {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Tracked {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

#[test]
fn every_key_and_value_is_dropped_exactly_once() {
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    let n = n() / 2;
    {
        let m = LockFreeBTree::new();
        std::thread::scope(|s| {
            for t in 0..3u64 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..n {
                        let k = mix(i * 3 + t) % n;
                        m.insert(Tracked::new(k, &LIVE), Tracked::new(i, &LIVE));
                        if i % 3 == 0 {
                            drop(m.remove(&Tracked::new(mix(i) % n, &LIVE)));
                        }
                        if i % 16 == 0 {
                            let c = m.range(Tracked::new(k, &LIVE)..).take(5).count();
                            assert!(c <= 5);
                        }
                    }
                });
            }
        });
        assert!(LIVE.load(StdOrdering::Relaxed) > 0);
    }
    assert_eq!(
        LIVE.load(StdOrdering::Relaxed),
        0,
        "leaked or double-dropped"
    );
}

#[test]
fn concurrent_disjoint_writers_lose_nothing() {
    let m = LockFreeBTree::new();
    let n = n();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let m = &m;
            s.spawn(move || {
                for i in 0..n / 4 {
                    assert_eq!(m.insert(i * 4 + t, t), None);
                }
                for i in (0..n / 4).step_by(2) {
                    assert_eq!(m.remove(&(i * 4 + t)), Some(t));
                }
            });
        }
    });
    check_invariants(&m);
    let want: Vec<u64> = (0..n / 4 * 4).filter(|k| (k / 4) % 2 == 1).collect();
    assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), want);
}

/// One writer inserts `i` and `2n - i` for i = 0, 1, ...: every instant's
/// contents are a prefix of the low keys plus a suffix of the high keys of
/// (almost) the same length. A scan that is not a snapshot — one that read
/// the low part early and the high part late — sees more high than low keys.
#[test]
fn scans_are_snapshots() {
    let m = LockFreeBTree::new();
    let n = n();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..n {
                m.insert(i, ());
                m.insert(2 * n - i, ());
            }
            done.store(true, StdOrdering::Release);
        });
        s.spawn(|| loop {
            let finished = done.load(StdOrdering::Acquire);
            let keys: Vec<u64> = m.iter().map(|(k, _)| k).collect();
            let low = keys.iter().take_while(|&&k| k < n).count() as u64;
            let high = keys.len() as u64 - low;
            assert!(keys[..low as usize].iter().copied().eq(0..low));
            assert!(keys[low as usize..]
                .iter()
                .copied()
                .eq(2 * n - high + 1..=2 * n));
            assert!(low == high || low == high + 1, "low {low}, high {high}");
            if finished {
                break;
            }
        });
    });
}

#[test]
fn debug_and_default() {
    let m: LockFreeBTree<u8, u8> = Default::default();
    m.insert(1, 2);
    assert_eq!(format!("{m:?}"), "{1: 2}");
    assert!(format!("{:?}", m.iter()).starts_with("Range"));
}

/// A key that cannot be cloned: its drop is recorded in a `DropLedger`,
/// which panics on a second drop of the same object.
#[derive(Debug)]
struct LedgerKey {
    k: u64,
    _drop: waitless_check::Tracked,
}
impl PartialEq for LedgerKey {
    fn eq(&self, o: &Self) -> bool {
        self.k == o.k
    }
}
impl Eq for LedgerKey {}
impl PartialOrd for LedgerKey {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for LedgerKey {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        self.k.cmp(&o.k)
    }
}
impl Borrow<u64> for LedgerKey {
    fn borrow(&self) -> &u64 {
        &self.k
    }
}

/// Writers need no `K: Clone`: every key object handed to `insert` (each
/// with its own ledger id) is dropped exactly once — when replaced, removed
/// (after a grace period, possibly later while it serves as a separator),
/// or with the map — under concurrent inserts, replacements, removes and
/// reads.
#[test]
fn keys_need_no_clone_and_each_is_dropped_exactly_once() {
    let per = n();
    let ledger = waitless_check::DropLedger::new(3 * per as usize);
    {
        let m: LockFreeBTree<LedgerKey, u64> = LockFreeBTree::new();
        std::thread::scope(|s| {
            for t in 0..3u64 {
                let (m, ledger) = (&m, &ledger);
                s.spawn(move || {
                    for i in 0..per {
                        let k = mix(i * 3 + t) % (per / 2);
                        let id = (t * per + i) as usize;
                        m.insert(
                            LedgerKey {
                                k,
                                _drop: ledger.track(id),
                            },
                            i,
                        );
                        if i % 3 == 0 {
                            m.remove(&(mix(i) % (per / 2)));
                        }
                        if i % 16 == 0 {
                            // (`range` yields clones, so it needs K: Clone.)
                            assert!(m.len() <= per as usize / 2);
                            let _ = m.get_with(&k, |v| *v);
                        }
                    }
                });
            }
        });
        check_invariants(&m);
        assert!(ledger.live() > 0);
    }
    assert_eq!(ledger.created(), 3 * per as usize);
    ledger.assert_all_dropped();
}

/// A removed entry's value is dropped once the grace period has passed,
/// even when its key lives on as a separator.
#[test]
fn values_go_when_their_key_leaves_the_map() {
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    let n = n();
    let m = LockFreeBTree::new();
    for k in 0..n {
        m.insert(k, Tracked::new(k, &LIVE));
    }
    // Remove every other key: many of the removed keys are separators.
    for k in (0..n).step_by(2) {
        assert!(m.remove(&k).is_some());
    }
    check_invariants(&m);
    for _ in 0..8 {
        m.collector().flush();
        m.collector().try_advance();
    }
    assert_eq!(LIVE.load(StdOrdering::Relaxed), m.len() as isize);
    drop(m);
    assert_eq!(LIVE.load(StdOrdering::Relaxed), 0);
}

/// A key whose comparison panics when it involves the value 13.
#[derive(Debug)]
struct TouchyKey {
    k: u64,
    _drop: waitless_check::Tracked,
}
impl PartialEq for TouchyKey {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
    }
}
impl Eq for TouchyKey {}
impl PartialOrd for TouchyKey {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TouchyKey {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        assert!(self.k != 13 && o.k != 13, "comparing 13");
        self.k.cmp(&o.k)
    }
}

/// An `insert` whose key comparison panics frees its unpublished entry
/// (the key dropped once, nothing leaked) and leaves the map unchanged and
/// usable.
#[test]
fn a_panicking_comparison_in_insert_frees_its_entry() {
    let n = n();
    let ledger = waitless_check::DropLedger::new(n as usize + 1);
    {
        let m: LockFreeBTree<TouchyKey, u64> = LockFreeBTree::new();
        let key = |k: u64| TouchyKey {
            k,
            _drop: ledger.track(k as usize),
        };
        for k in (0..n).filter(|&k| k != 13) {
            m.insert(key(k), k);
        }
        let before = ledger.live();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.insert(key(13), 0)));
        assert!(r.is_err(), "the comparison with 13 panics");
        assert!(ledger.is_dropped(13), "the unpublished key was not freed");
        assert_eq!(ledger.live(), before);
        assert_eq!(m.len(), n as usize - 1);
        check_invariants(&m);
        m.insert(key(n), n);
        assert_eq!(m.len(), n as usize);
    }
    ledger.assert_all_dropped();
}

/// Armed [`Bomb`]s not yet dropped (at most one at a time: a second panic
/// while the collector unwinds from the first would abort).
static ARMED: AtomicIsize = AtomicIsize::new(0);

/// A value whose destructor panics while `armed` (clones are unarmed and
/// optionally tracked).
#[derive(Debug)]
struct Bomb {
    armed: bool,
    /// Marks the replacement values (clones keep it).
    tracked: bool,
    _drop: Option<waitless_check::Tracked>,
}
impl Bomb {
    fn armed() -> Self {
        ARMED.fetch_add(1, StdOrdering::Relaxed);
        Bomb {
            armed: true,
            tracked: false,
            _drop: None,
        }
    }
}
impl Clone for Bomb {
    fn clone(&self) -> Self {
        Bomb {
            armed: false,
            tracked: self.tracked,
            _drop: None,
        }
    }
}
impl Drop for Bomb {
    fn drop(&mut self) {
        if core::mem::take(&mut self.armed) {
            ARMED.fetch_sub(1, StdOrdering::Relaxed);
            panic!("an armed value was dropped");
        }
    }
}

/// A deferred release runs user code (a value's destructor) inside the
/// collections that a later writer's `defer` calls start, after that
/// writer's CAS. If that code panics, the `insert` unwinds with its entry
/// already published: it must not free it (the map still points to it).
/// Only an update that drops an entry reference defers after its CAS (node
/// blocks are retired into the epoch pool, which runs no user code), so
/// the tracked inserts here replace an existing key's value.
/// Miri: skipped (thousands of rounds, and the collector's pacing decides
/// how often a bomb goes off after a CAS, so it does not scale down).
#[test]
#[cfg_attr(miri, ignore = "too slow under Miri")]
fn a_panic_after_the_publishing_cas_keeps_the_published_entry() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    /// Runs `f` until it returns without a bomb going off in a collection
    /// it started (at most one bomb is armed, so this ends).
    fn quietly<R>(f: impl Fn() -> R) -> R {
        loop {
            if let Ok(r) = catch_unwind(AssertUnwindSafe(&f)) {
                return r;
            }
        }
    }
    let rounds = 2000usize;
    let ledger = waitless_check::DropLedger::new(rounds);
    let bomb_key = |i: usize| 1_000_000 + i as u64;
    let plain = || Bomb {
        armed: false,
        tracked: false,
        _drop: None,
    };
    let mut published_then_panicked = 0;
    {
        let m: LockFreeBTree<u64, Bomb> = LockFreeBTree::new();
        for i in 0..rounds {
            if ARMED.load(StdOrdering::Relaxed) == 0 {
                // Insert and remove an armed value: the release of its
                // leaf reference is deferred, and some later collection
                // runs it and panics.
                quietly(|| {
                    if !m.contains_key(&bomb_key(i)) {
                        assert!(m.insert(bomb_key(i), Bomb::armed()).is_none());
                    }
                });
                while quietly(|| m.contains_key(&bomb_key(i))) {
                    let _ = catch_unwind(AssertUnwindSafe(|| m.remove(&bomb_key(i))));
                }
            }
            // Garbage so that bags fill and collections run often.
            for f in 0..4u64 {
                let _ = catch_unwind(AssertUnwindSafe(|| m.insert(2_000_000 + f, plain())));
            }
            // An untracked value first, then its tracked replacement: the
            // replacement releases the old value's leaf reference through
            // `defer` after its CAS.
            while !quietly(|| m.contains_key(&(i as u64))) {
                let _ = catch_unwind(AssertUnwindSafe(|| m.insert(i as u64, plain())));
            }
            let v = Bomb {
                armed: false,
                tracked: true,
                _drop: Some(ledger.track(i)),
            };
            let r = catch_unwind(AssertUnwindSafe(|| m.insert(i as u64, v)));
            let published = quietly(|| m.get_with(&(i as u64), |b| b.tracked)) == Some(true);
            if r.is_err() && published {
                published_then_panicked += 1;
                assert!(
                    !ledger.is_dropped(i),
                    "insert {i} published its entry, then freed it while unwinding"
                );
            }
            if !published {
                // The replacement unwound before its CAS (and dropped its
                // value); put a tracked value in so every index is tracked
                // once in the map at the end.
                let v = Bomb {
                    armed: false,
                    tracked: true,
                    _drop: None,
                };
                assert!(ledger.is_dropped(i));
                while !quietly(|| m.get_with(&(i as u64), |b| b.tracked)).unwrap_or(false) {
                    let v = v.clone();
                    let _ = catch_unwind(AssertUnwindSafe(|| m.insert(i as u64, v)));
                }
            }
        }
        // Let the last bomb go off.
        while m.collector().pending() > 0 {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                m.collector().flush();
                m.collector().try_advance();
            }));
        }
        assert_eq!(m.len(), rounds + 4);
        for i in 0..rounds as u64 {
            assert!(m.contains_key(&i), "{i} is missing");
        }
    }
    ledger.assert_all_dropped();
    assert!(
        published_then_panicked > 0,
        "no insert panicked after its CAS: the test did not test anything"
    );
}

/// A value whose destructor panics when it holds `true` (clones hold
/// `false`). Each test below arms at most one at a time.
#[derive(Debug)]
struct Boom(bool);
impl Clone for Boom {
    fn clone(&self) -> Self {
        Boom(false)
    }
}
impl Drop for Boom {
    fn drop(&mut self) {
        if self.0 {
            panic!("an armed value was dropped");
        }
    }
}

/// A value destructor that panics leaks nothing else: not its own entry
/// and key when it runs in a deferred release, and not the rest of the
/// map when it runs while the map drops.
#[test]
fn panicking_value_destructors_leak_nothing_else() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let n = if cfg!(miri) { 40 } else { 400 };
    let key = |ledger: &waitless_check::DropLedger, i: usize| LedgerKey {
        k: i as u64,
        _drop: ledger.track(i),
    };
    // In a deferred release: the entry's count still drops, so the key is
    // dropped (before the fix the entry and its key leaked).
    let ledger = waitless_check::DropLedger::new(1);
    {
        let m: LockFreeBTree<LedgerKey, Boom> = LockFreeBTree::new();
        assert!(m.insert(key(&ledger, 0), Boom(true)).is_none());
        let mut exploded = false;
        // The removal defers the release; a later collection runs it.
        match catch_unwind(AssertUnwindSafe(|| m.remove(&0u64))) {
            Ok(v) => assert!(v.is_some()),
            Err(_) => exploded = true,
        }
        while m.collector().pending() > 0 {
            if catch_unwind(AssertUnwindSafe(|| {
                m.collector().flush();
                m.collector().try_advance();
            }))
            .is_err()
            {
                exploded = true;
            }
        }
        assert!(exploded, "the armed value was never dropped");
        assert!(
            ledger.is_dropped(0),
            "the key of the panicking value leaked"
        );
        assert!(m.is_empty());
    }
    ledger.assert_all_dropped();

    // While the map drops: the rest of the map is still freed.
    let ledger = waitless_check::DropLedger::new(n);
    let m: LockFreeBTree<LedgerKey, Boom> = LockFreeBTree::new();
    for i in 0..n {
        m.insert(key(&ledger, i), Boom(i == n / 2));
    }
    assert!(catch_unwind(AssertUnwindSafe(move || drop(m))).is_err());
    ledger.assert_all_dropped();
}

/// Checks one scan of the churn in
/// `scans_held_across_block_recycling_keep_their_snapshot`: writer `t` owns
/// the keys `k` with `k % 2 == t` and, round by round in ascending key
/// order, removes each key and inserts it back with the round number. So in
/// any snapshot a writer's keys, in order, show values that never increase
/// and span at most one round, with at most one key missing (the one it is
/// between removing and re-inserting).
fn assert_churn_snapshot(n: u64, scan: &[(u64, u64)]) {
    for t in 0..2 {
        let mine: Vec<(u64, u64)> = scan.iter().copied().filter(|(k, _)| k % 2 == t).collect();
        let missing = (n / 2) as usize - mine.len();
        assert!(missing <= 1, "writer {t}: {missing} keys missing");
        assert!(
            mine.windows(2).all(|w| w[0].1 >= w[1].1),
            "writer {t}: values rise along the keys: {mine:?}"
        );
        if let (Some(first), Some(last)) = (mine.first(), mine.last()) {
            assert!(first.1 - last.1 <= 1, "writer {t}: rounds mixed: {mine:?}");
        }
    }
}

/// Sets the flag if dropped while panicking: a failed thread of a test
/// must not leave the others waiting for it for ever.
struct FailFlag<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for FailFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, StdOrdering::Release);
        }
    }
}

/// Waits (yielding) until `done()`; panics if another thread failed.
fn wait_for(failed: &std::sync::atomic::AtomicBool, done: impl Fn() -> bool) {
    while !done() {
        assert!(!failed.load(StdOrdering::Acquire), "another thread failed");
        std::thread::yield_now();
    }
}

/// Review bt16r: node blocks are recycled through the writers' pools while
/// scans are open. Phase 1 churns long enough for the writers' pools to
/// expire and reuse blocks; then a scan is opened and held while the writers
/// churn on (reusing blocks that expired before it pinned, and the blocks of
/// their failed attempts); the held scan must still show exactly the
/// version it started on, and every short scan meanwhile must be a snapshot.
/// A block reused before its grace period ends shows up here as a wrong
/// value or key (and under Miri as a data race on the node).
#[test]
fn scans_held_across_block_recycling_keep_their_snapshot() {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let n: u64 = if cfg!(miri) { 24 } else { 600 };
    let (rounds1, rounds2) = if cfg!(miri) { (3, 2) } else { (20, 20) };
    let m = LockFreeBTree::new();
    for k in 0..n {
        m.insert(k, 0u64);
    }
    let failed = AtomicBool::new(false);
    let phase1_done = AtomicUsize::new(0);
    let held = AtomicBool::new(false);
    let phase2_done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (m, failed, phase1_done, held, phase2_done) =
                (&m, &failed, &phase1_done, &held, &phase2_done);
            s.spawn(move || {
                let _flag = FailFlag(failed);
                let churn = |r: u64| {
                    for k in (t..n).step_by(2) {
                        assert!(m.remove(&k).is_some(), "key {k} lost");
                        assert_eq!(m.insert(k, r), None, "key {k} doubled");
                    }
                };
                for r in 1..=rounds1 {
                    churn(r);
                }
                phase1_done.fetch_add(1, StdOrdering::Release);
                wait_for(failed, || held.load(StdOrdering::Acquire));
                for r in rounds1 + 1..=rounds1 + rounds2 {
                    churn(r);
                }
                phase2_done.fetch_add(1, StdOrdering::Release);
            });
        }
        let _flag = FailFlag(&failed);
        // Short scans while the pools warm up.
        while phase1_done.load(StdOrdering::Acquire) < 2 {
            assert!(!failed.load(StdOrdering::Acquire), "a writer failed");
            assert_churn_snapshot(n, &m.iter().collect::<Vec<_>>());
        }
        // Every writer is between phases: the version is fixed and every
        // key holds `rounds1`.
        let mut it = m.iter();
        assert_eq!(it.next(), Some((0, rounds1)));
        held.store(true, StdOrdering::Release);
        // The writers churn on; our scan keeps its snapshot.
        let mut rest: Vec<(u64, u64)> = it.by_ref().take((n / 2) as usize).collect();
        wait_for(&failed, || phase2_done.load(StdOrdering::Acquire) == 2);
        rest.extend(it);
        let want: Vec<(u64, u64)> = (1..n).map(|k| (k, rounds1)).collect();
        assert_eq!(rest, want);
    });
    let last = rounds1 + rounds2;
    assert_eq!(
        m.iter().collect::<Vec<_>>(),
        (0..n).map(|k| (k, last)).collect::<Vec<_>>()
    );
    check_invariants(&m);
}

/// The key images behind the fast search path order exactly like the keys,
/// at every boundary of every kind (signed values below zero included), and
/// only the primitive types get one.
#[test]
fn key_images_order_like_the_keys() {
    fn strictly_increasing<T: Ord + fmt::Debug>(sorted: &[T]) {
        assert!(sorted.windows(2).all(|w| w[0] < w[1]), "samples not sorted");
        let kind = Kind::of::<T>();
        assert_ne!(kind, Kind::Other, "{}", core::any::type_name::<T>());
        // SAFETY: `kind` is `T`'s own kind, not `Other`.
        let img: Vec<u64> = sorted.iter().map(|k| unsafe { kind.image(k) }).collect();
        assert!(
            img.windows(2).all(|w| w[0] < w[1]),
            "{}: images {img:x?} of {sorted:?} out of order",
            core::any::type_name::<T>()
        );
    }
    strictly_increasing(&[0u8, 1, 127, 128, 255]);
    strictly_increasing(&[0u16, 1, 0x7fff, 0x8000, u16::MAX]);
    strictly_increasing(&[0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX]);
    strictly_increasing(&[0u64, 1, i64::MAX as u64, 1 << 63, u64::MAX]);
    strictly_increasing(&[0usize, 1, isize::MAX as usize, usize::MAX]);
    strictly_increasing(&[i8::MIN, -1, 0, 1, i8::MAX]);
    strictly_increasing(&[i16::MIN, -1, 0, 1, i16::MAX]);
    strictly_increasing(&[i32::MIN, -1, 0, 1, i32::MAX]);
    strictly_increasing(&[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX]);
    strictly_increasing(&[isize::MIN, -1, 0, 1, isize::MAX]);
    strictly_increasing(&['\0', 'a', 'z', '\u{d7ff}', '\u{e000}', char::MAX]);
    strictly_increasing(&[false, true]);
    // Look-alikes take the generic path.
    assert_eq!(Kind::of::<core::cell::Cell<u64>>(), Kind::Other);
    assert_eq!(Kind::of::<std::sync::atomic::AtomicU64>(), Kind::Other);
    assert_eq!(Kind::of::<u128>(), Kind::Other);
    assert_eq!(Kind::of::<&'static u64>(), Kind::Other);
    assert_eq!(Kind::of::<str>(), Kind::Other);
}

/// Random inserts, removes, lookups and ranges on keys of type `T` against
/// `BTreeMap`, with the invariants (stored images included) checked.
fn against_btreemap<T: Ord + Copy + fmt::Debug>(key: impl Fn(u64) -> T) {
    let m = LockFreeBTree::new();
    let mut r = BTreeMap::new();
    // Miri: a few operations (the images' unsafe reads are covered for
    // every kind by `key_images_order_like_the_keys`).
    let ops = if cfg!(miri) { 24 } else { n() * 3 };
    for i in 0..ops {
        let k = key(mix(i));
        match mix(i + 1) % 4 {
            0 | 1 => assert_eq!(m.insert(k, i), r.insert(k, i)),
            2 => assert_eq!(m.remove(&k), r.remove(&k)),
            _ => {
                let hi = key(mix(i + 2));
                let (lo, hi) = if k <= hi { (k, hi) } else { (hi, k) };
                assert!(m.range(lo..=hi).eq(r.range(lo..=hi).map(|(k, v)| (*k, *v))));
                assert!(m.range((Excluded(lo), Unbounded)).take(5).eq(r
                    .range((Excluded(lo), Unbounded))
                    .take(5)
                    .map(|(k, v)| (*k, *v))));
            }
        }
        assert_eq!(m.get(&k), r.get(&k).copied());
        if i % 211 == 0 {
            check_invariants(&m);
        }
    }
    check_invariants(&m);
    assert!(m.iter().eq(r.iter().map(|(k, v)| (*k, *v))));
}

#[test]
fn signed_char_and_bool_keys_against_btreemap() {
    // Negative and positive, around zero and at the extremes.
    against_btreemap(|x| (x as i64) >> 40);
    against_btreemap(|x| char::from_u32((x % 0x11_0000) as u32).unwrap_or('\u{fffd}'));
    if cfg!(miri) {
        return;
    }
    against_btreemap(|x| x as i64);
    against_btreemap(|x| x as i8);
    against_btreemap(|x| (x as i32) >> 20);
    against_btreemap(|x| (x as isize) >> 50);
    against_btreemap(|x| x & 1 == 0);
}

/// A query type that a `u64` key borrows as: lookups with it must compare
/// through `Ord` (the image path is for `Q = K` only). Its order is the
/// keys' (as `Borrow` requires); its comparisons are counted.
#[derive(PartialEq, Eq, Debug)]
#[repr(transparent)]
struct Id(u64);

static ID_CMPS: AtomicIsize = AtomicIsize::new(0);

impl Ord for Id {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        ID_CMPS.fetch_add(1, StdOrdering::Relaxed);
        self.0.cmp(&o.0)
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Borrow<Id> for u64 {
    fn borrow(&self) -> &Id {
        // SAFETY: `Id` is a `repr(transparent)` wrapper of `u64`.
        unsafe { &*(self as *const u64).cast::<Id>() }
    }
}

#[test]
fn borrowed_query_types_take_the_generic_path() {
    let m = LockFreeBTree::new();
    let n = n();
    for k in 0..n {
        m.insert(k * 2, k);
    }
    let before = ID_CMPS.load(StdOrdering::Relaxed);
    for k in 0..n * 2 {
        let want = (k % 2 == 0).then_some(k / 2);
        assert_eq!(m.get(&Id(k)), want);
        assert_eq!(m.get(&k), want);
    }
    assert!(m
        .range::<Id, _>(Id(10)..Id(16))
        .map(|(k, _)| k)
        .eq([10, 12, 14]));
    assert!(
        ID_CMPS.load(StdOrdering::Relaxed) - before >= n as isize,
        "`Id` lookups did not compare through `Id::cmp`"
    );
}

/// The map's collector lets each thread keep more than the pool's default
/// 64 KiB of recycled node blocks once its retired backlog has been larger
/// (`NODE_POOL_BYTES`): a writer's later updates reuse them instead of the
/// allocator. Dropping the map returns them.
#[test]
#[cfg_attr(miri, ignore = "thousands of path copies")]
fn the_node_pool_keeps_more_than_the_default_once_the_epoch_was_held() {
    let m = LockFreeBTree::new();
    for k in 0..2000u64 {
        m.insert(k, k);
    }
    {
        // Our own pin holds the epoch back: every update's retired path
        // waits, and the backlog grows past the default free-list cap.
        let _hold = m.collector().pin();
        for i in 0..4000u64 {
            m.insert(i % 2000, i);
        }
    }
    // The backlog expires; the free list keeps it up to the raised cap.
    for i in 0..4000u64 {
        m.insert(i % 2000, i);
    }
    m.collector().flush();
    // (A test runs on its own thread: only this map's pool counts.)
    let cached = crate::epoch::thread_free_bytes();
    assert!(
        cached > 64 * 1024,
        "only {cached} bytes of node blocks kept for reuse"
    );
    assert!(cached <= NODE_POOL_BYTES + 4096);
    drop(m);
    assert_eq!(crate::epoch::thread_free_bytes(), 0);
}

/// Per-leaf writers and snapshot scans: two writers each insert their own
/// keys alternately at the low and the high end of the key space (so
/// consecutive inserts of one writer land in leaves far apart, updated
/// through different handles, and the writers share leaves, so they race
/// each other's splits); every scan must show, for each writer, exactly a
/// prefix of its sequence (a snapshot), and never less than the scan
/// before. A scan that read each leaf's newest version instead of the one
/// of its snapshot fails this (checked by mutation).
#[test]
fn scans_are_snapshots_under_writers_on_different_leaves() {
    use std::sync::atomic::AtomicUsize;
    fn key(w: u64, i: u64) -> u64 {
        let base = if i % 2 == 0 { 1_000 } else { 10_000_000 };
        base + (i / 2) * 2 + w
    }
    let n: u64 = if cfg!(miri) { 40 } else { 20_000 };
    let m = LockFreeBTree::new();
    let done = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (m, done, failed) = (&m, &done, &failed);
            s.spawn(move || {
                let _flag = FailFlag(failed);
                for i in 0..n {
                    assert_eq!(m.insert(key(w, i), i), None);
                }
                done.fetch_add(1, StdOrdering::Release);
            });
        }
        let _flag = FailFlag(&failed);
        let mut last = [0u64; 2];
        let mut scans = 0;
        while done.load(StdOrdering::Acquire) < 2 || scans < 3 {
            assert!(!failed.load(StdOrdering::Acquire), "a writer failed");
            scans += 1;
            let got: Vec<u64> = m.iter().map(|(k, _)| k).collect();
            assert!(got.windows(2).all(|p| p[0] < p[1]), "unsorted");
            for w in 0..2u64 {
                let mut mine: Vec<u64> = got.iter().copied().filter(|&k| k % 2 == w).collect();
                let c = mine.len() as u64;
                let mut want: Vec<u64> = (0..c).map(|i| key(w, i)).collect();
                mine.sort_unstable();
                want.sort_unstable();
                assert!(mine == want, "writer {w}: not a prefix: not a snapshot");
                assert!(c >= last[w as usize], "a later scan lost keys");
                last[w as usize] = c;
            }
        }
    });
    assert_eq!(m.len() as u64, 2 * n);
    check_invariants(&m);
}

/// Issue #16: "reads write no shared memory". With no update in flight
/// (every version stamped, which `check_invariants` asserts), lookups,
/// scans, `len`, `is_empty` and `first/last_key_value` leave the clock —
/// the only word a reader could write apart from a pending stamp — and
/// every root and leaf version stamp as they were. (Sessions 5–7 bumped the
/// clock in every scan: this fails there.) Updates advance it.
#[test]
fn reads_write_nothing_shared_without_a_pending_update() {
    use super::node::leaf_at;
    /// Every stamp of the current version (root and leaves), in order.
    fn stamps(m: &LockFreeBTree<u64, u64>) -> Vec<u64> {
        fn walk(p: NodePtr<u64, u64>, out: &mut Vec<u64>) {
            // SAFETY: no writer runs: the current version is alive.
            let Node::Inner(n) = (unsafe { &*p }) else {
                unreachable!()
            };
            for &c in n.kids.as_slice() {
                if n.bottom {
                    let h: HandlePtr<u64, u64> = c.cast();
                    // SAFETY: as above.
                    let l = unsafe { leaf_at((*h).cur.load(Ordering::Relaxed)) };
                    out.push(l.ts.load(Ordering::Relaxed));
                } else {
                    walk(c, out);
                }
            }
        }
        // SAFETY: no writer runs.
        let r = unsafe { &*m.root.load(Ordering::Relaxed) };
        let mut out = vec![r.ts.load(Ordering::Relaxed)];
        walk(r.tree, &mut out);
        out
    }
    let n = n();
    let m = LockFreeBTree::new();
    for i in 0..n {
        m.insert(mix(i) % (4 * n), i);
    }
    for i in 0..n / 3 {
        m.remove(&(mix(i) % (4 * n)));
    }
    check_invariants(&m);
    let clock = m.clock.load(Ordering::Relaxed);
    let before = stamps(&m);
    let mut found = 0;
    for k in 0..4 * n {
        found += usize::from(m.get(&k).is_some());
        assert_eq!(m.contains_key(&k), m.get_with(&k, |_| ()).is_some());
    }
    let all: Vec<_> = m.iter().collect();
    assert_eq!(all.len(), found);
    assert_eq!(m.len(), found);
    assert!(!m.is_empty());
    assert_eq!(m.first_key_value(), all.first().copied());
    assert_eq!(m.last_key_value(), all.last().copied());
    for lo in (0..4 * n).step_by(97) {
        let _ = m.range(lo..lo + 64).count();
    }
    // A remove that finds nothing.
    assert_eq!(m.remove(&(4 * n + 1)), None);
    // Readers in parallel (no writer): still nothing written.
    std::thread::scope(|sc| {
        for t in 0..2u64 {
            let m = &m;
            sc.spawn(move || {
                for i in 0..n / 4 {
                    let k = mix(i + t) % (4 * n);
                    let _ = m.get(&k);
                    let _ = m.range(k..).take(16).count();
                }
            });
        }
    });
    assert_eq!(
        m.clock.load(Ordering::Relaxed),
        clock,
        "a read wrote the clock"
    );
    assert_eq!(stamps(&m), before, "a read wrote a stamp");
    // An update advances it (writers pay for the snapshots).
    m.insert(4 * n + 1, 0);
    assert!(m.clock.load(Ordering::Relaxed) > clock);
}

/// `next_back` and `rev` over a tree several levels deep (fan-out 4 under
/// Miri), with empty ranges and both ends meeting in the middle of a leaf
/// and at a leaf boundary.
#[test]
fn ranges_are_double_ended() {
    let m = LockFreeBTree::new();
    let n: i64 = if cfg!(miri) { 40 } else { 400 };
    for k in (0..n).rev() {
        m.insert(k, k * 2);
    }
    check_invariants(&m);
    let all: Vec<(i64, i64)> = (0..n).map(|k| (k, k * 2)).collect();
    let rev: Vec<(i64, i64)> = m.iter().rev().collect();
    assert!(rev.iter().eq(all.iter().rev()));
    for meet in [0, 1, n / 2, n - 1, n] {
        let mut r = m.iter();
        let front: Vec<_> = r.by_ref().take(meet as usize).collect();
        let back: Vec<_> = r.by_ref().rev().collect();
        assert_eq!(front.len() + back.len(), n as usize, "meeting at {meet}");
        assert!(front.iter().chain(back.iter().rev()).eq(all.iter()));
        assert_eq!((r.next(), r.next_back()), (None, None));
    }
    assert_eq!(m.range(5..5).next_back(), None);
    assert_eq!(m.range(n..).next_back(), None);
    assert_eq!(m.range(..0).next_back(), None);
    assert_eq!(m.range(..=0).next_back(), Some((0, 0)));
    assert_eq!(m.range(3..n - 3).next_back(), Some((n - 4, 2 * (n - 4))));
}
