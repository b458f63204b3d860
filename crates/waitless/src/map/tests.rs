use super::*;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// A hasher that puts every key in one of `N` hashes: forces collisions
/// (several keys with one split-order key) and long runs.
#[derive(Default)]
struct Collide<const N: u64>(u64);
impl<const N: u64> Hasher for Collide<N> {
    fn finish(&self) -> u64 {
        self.0 % N
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(*b));
        }
    }
}

fn n(full: usize) -> usize {
    if cfg!(miri) {
        full / 50
    } else {
        full
    }
}

#[test]
fn basic_operations_match_std_semantics() {
    let m = LockFreeHashMap::new();
    assert!(m.is_empty());
    assert_eq!(m.insert(1, "a"), None);
    assert_eq!(m.insert(2, "b"), None);
    assert_eq!(m.insert(1, "c"), Some("a"));
    assert_eq!(m.len(), 2);
    assert_eq!(m.get(&1), Some("c"));
    assert!(m.contains_key(&2));
    assert!(!m.contains_key(&3));
    assert_eq!(m.remove(&2), Some("b"));
    assert_eq!(m.remove(&2), None);
    assert_eq!(m.len(), 1);
    assert_eq!(m.get_or_insert_with(5, || "e"), "e");
    assert_eq!(
        m.get_or_insert_with(5, || panic!("must not be called")),
        "e"
    );
    assert_eq!(
        m.update(&5, |v| if *v == "e" { "f" } else { "g" }),
        Some("e")
    );
    assert_eq!(m.get(&5), Some("f"));
    assert_eq!(m.update(&9, |_| "x"), None);
    assert!(!m.contains_key(&9));
}

#[test]
fn borrowed_lookups() {
    let m: LockFreeHashMap<String, u32> = LockFreeHashMap::new();
    m.insert("key".to_string(), 1);
    assert_eq!(m.get("key"), Some(1));
    assert_eq!(m.get_with("key", |v| v + 1), Some(2));
    assert_eq!(m.remove("key"), Some(1));
}

#[test]
fn grows_from_one_bucket_and_keeps_everything() {
    let m = LockFreeHashMap::with_capacity(1);
    assert_eq!(m.buckets(), 8, "the smallest table");
    let count = n(5000);
    for i in 0..count {
        assert_eq!(m.insert(i, i * 2), None);
    }
    // Every live key has a slot of the (quiescent) root table.
    assert!(m.buckets() >= count, "buckets {}", m.buckets());
    for i in 0..count {
        assert_eq!(m.get(&i), Some(i * 2));
    }
    assert_eq!(m.len(), count);
    let mut all: Vec<_> = m.iter().collect();
    all.sort_unstable();
    assert_eq!(all, (0..count).map(|i| (i, i * 2)).collect::<Vec<_>>());
    for i in (0..count).step_by(2) {
        assert_eq!(m.remove(&i), Some(i * 2));
    }
    assert_eq!(m.len(), count / 2);
    assert_eq!(m.iter().count(), count / 2);
}

#[test]
fn colliding_hashes_are_kept_apart() {
    let m: LockFreeHashMap<u32, u32, BuildHasherDefault<Collide<3>>> =
        LockFreeHashMap::with_hasher(Default::default());
    for i in 0..60 {
        assert_eq!(m.insert(i, i), None);
    }
    for i in 0..60 {
        assert_eq!(m.insert(i, i + 100), Some(i));
    }
    for i in (0..60).step_by(3) {
        assert_eq!(m.remove(&i), Some(i + 100));
    }
    for i in 0..60 {
        let want = if i % 3 == 0 { None } else { Some(i + 100) };
        assert_eq!(m.get(&i), want);
    }
    let mut keys: Vec<_> = m.iter().map(|(k, _)| k).collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..60).filter(|i| i % 3 != 0).collect::<Vec<_>>());
}

/// A value that counts how many of it are alive.
#[derive(Debug)]
struct Counted(Arc<()>, u64);
impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted(Arc::clone(&self.0), self.1)
    }
}
impl PartialEq for Counted {
    fn eq(&self, o: &Self) -> bool {
        self.1 == o.1
    }
}

#[test]
fn dropping_the_map_releases_every_key_and_value() {
    let token = Arc::new(());
    {
        let m = LockFreeHashMap::new();
        for i in 0..n(2000) as u64 {
            m.insert(Counted(token.clone(), i).1, Counted(token.clone(), i));
        }
        for i in 0..n(2000) as u64 {
            // replace (retires the old value) and remove half (retires nodes)
            m.insert(i, Counted(token.clone(), i + 1));
            if i % 2 == 0 {
                m.remove(&i);
            }
        }
        assert!(Arc::strong_count(&token) > 1);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked keys or values");
}

#[test]
fn arc_keys_and_values_are_not_leaked_under_concurrency() {
    let token = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Counted> = LockFreeHashMap::new();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (m, token) = (&m, &token);
                s.spawn(move || {
                    for i in 0..n(3000) as u64 {
                        let k = (i * 7 + t) % 257;
                        match i % 4 {
                            0 | 1 => {
                                m.insert(k, Counted(token.clone(), i));
                            }
                            2 => {
                                m.remove(&k);
                            }
                            _ => {
                                m.update(&k, |v| Counted(v.0.clone(), v.1 + 1));
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(m.len(), m.iter().count());
    }
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn panicking_hasher_and_eq_leave_the_map_intact() {
    #[derive(Clone, Debug)]
    struct Touchy(u32, #[allow(dead_code)] Arc<()>);
    impl Hash for Touchy {
        fn hash<H: Hasher>(&self, h: &mut H) {
            assert!(self.0 != 13, "hash panics on 13");
            (self.0 % 4).hash(h); // collisions, so Eq runs
        }
    }
    impl PartialEq for Touchy {
        fn eq(&self, o: &Self) -> bool {
            assert!(self.0 != 7 && o.0 != 7, "eq panics on 7");
            self.0 == o.0
        }
    }
    impl Eq for Touchy {}
    let token = Arc::new(());
    {
        let m = LockFreeHashMap::new();
        for i in 0..6 {
            m.insert(
                Touchy(i, token.clone()),
                Counted(token.clone(), u64::from(i)),
            );
        }
        let t = |i| Touchy(i, token.clone());
        let bad = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.insert(t(13), Counted(token.clone(), 13))
        }));
        assert!(bad.is_err());
        let bad = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.insert(t(7), Counted(token.clone(), 7))
        }));
        assert!(bad.is_err());
        let bad = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.remove(&t(7))));
        assert!(bad.is_err());
        for i in 0..6 {
            assert_eq!(m.get(&t(i)).map(|c| c.1), Some(u64::from(i)));
        }
        assert_eq!(m.len(), 6);
        assert_eq!(m.remove(&t(3)).map(|c| c.1), Some(3));
    }
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn update_retries_call_the_closure_again_and_drop_losers() {
    let m = LockFreeHashMap::new();
    m.insert(0u32, 0u64);
    let calls = AtomicUsize::new(0);
    let per = n(2000);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..per {
                    m.update(&0, |v| {
                        calls.fetch_add(1, Relaxed);
                        v + 1
                    });
                }
            });
        }
    });
    assert_eq!(m.get(&0), Some(4 * per as u64), "updates were lost");
    assert!(calls.load(Relaxed) >= 4 * per);
}

#[test]
fn get_or_insert_with_makes_one_winner() {
    let m = LockFreeHashMap::new();
    let made = AtomicUsize::new(0);
    let got: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u64)
            .map(|t| {
                let (m, made) = (&m, &made);
                s.spawn(move || {
                    m.get_or_insert_with("k", || {
                        made.fetch_add(1, Relaxed);
                        t
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(got.iter().all(|v| *v == got[0]), "{got:?}");
    assert_eq!(m.get("k"), Some(got[0]));
    assert!(made.load(Relaxed) >= 1);
}

#[test]
fn iteration_is_weakly_consistent_under_churn() {
    let m = LockFreeHashMap::new();
    let stable = n(1000) as u64;
    for i in 0..stable {
        m.insert(i, i);
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..n(4000) as u64 {
                let k = 1_000_000 + i % 300;
                m.insert(k, i);
                if i % 3 == 0 {
                    m.remove(&(1_000_000 + (i / 2) % 300));
                }
            }
        });
        for _ in 0..3 {
            let mut seen = std::collections::HashSet::new();
            for (k, v) in m.iter() {
                assert!(seen.insert(k), "key {k} yielded twice");
                if k < stable {
                    assert_eq!(v, k);
                }
            }
            for i in 0..stable {
                assert!(seen.contains(&i), "stable key {i} missed");
            }
        }
    });
}

#[test]
fn matches_std_on_a_sequential_mix() {
    let m: LockFreeHashMap<u16, u32, BuildHasherDefault<Collide<64>>> =
        LockFreeHashMap::with_hasher(Default::default());
    let mut std_map = HashMap::new();
    let mut x = 12345u32;
    for i in 0..n(20_000) as u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let k = (x % 500) as u16;
        match x % 5 {
            0 | 1 => assert_eq!(m.insert(k, i), std_map.insert(k, i)),
            2 => assert_eq!(m.remove(&k), std_map.remove(&k)),
            3 => assert_eq!(m.get(&k), std_map.get(&k).copied()),
            _ => assert_eq!(
                m.update(&k, |v| v + 1),
                std_map.get_mut(&k).map(|v| {
                    *v += 1;
                    *v - 1
                })
            ),
        }
    }
    assert_eq!(m.len(), std_map.len());
}

#[test]
fn map_is_send_and_sync_when_its_contents_are() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LockFreeHashMap<String, Vec<u8>>>();
}

#[test]
fn a_panicking_value_drop_does_not_interrupt_updates() {
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    /// Originals count their drops and panic in drop while armed (if even);
    /// clones do neither.
    struct Bomb(u32, bool);
    impl Clone for Bomb {
        fn clone(&self) -> Self {
            Bomb(self.0, true)
        }
    }
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !self.1 {
                DROPPED.fetch_add(1, Relaxed);
                if ARMED.load(Relaxed) && self.0 % 2 == 0 {
                    panic!("value drop panics");
                }
            }
        }
    }
    let keys = if cfg!(miri) { 100 } else { 300 };
    let m = LockFreeHashMap::new();
    for k in 0..keys {
        m.insert(k, Bomb(k * 2, false));
    }
    let mut panics = 0;
    for k in 0..keys {
        // The replaced value is retired; a later scan drops it and panics.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.insert(k, Bomb(k * 2 + 1, false))
        }));
        panics += usize::from(r.is_err());
    }
    assert!(panics > 0, "no scan ran a panicking drop");
    // Every update completed before its scan panicked.
    for k in 0..keys {
        assert_eq!(m.get_with(&k, |v| v.0), Some(k * 2 + 1));
    }
    assert_eq!(m.len(), keys as usize);
    ARMED.store(false, Relaxed);
    drop(m);
    // Every original value was dropped exactly once (Drop::drop entered).
    assert_eq!(DROPPED.load(Relaxed), 2 * keys as usize);
}

#[test]
fn a_pinned_view_keeps_its_borrowed_value_alive() {
    let token = Arc::new(());
    let m: LockFreeHashMap<u64, Counted> = LockFreeHashMap::new();
    for i in 0..n(200).max(10) as u64 {
        m.insert(i, Counted(token.clone(), i));
    }
    {
        let mut view = m.pin();
        assert!(view.get(&1_000_000).is_none());
        assert!(view.contains_key(&3));
        let r = view.get(&7).expect("present");
        // Replace and remove the value the view borrows, then force scans:
        // the borrowed value must survive (Miri checks the accesses).
        assert_eq!(
            m.insert(7, Counted(token.clone(), 70)).map(|c| c.1),
            Some(7)
        );
        assert_eq!(m.remove(&7).map(|c| c.1), Some(70));
        for i in 200..n(400) as u64 + 200 {
            m.insert(i, Counted(token.clone(), i));
            m.insert(i, Counted(token.clone(), i + 1));
        }
        m.raw.domain.reclaim();
        assert_eq!(r.1, 7);
        assert!(Arc::strong_count(&r.0) > 1);
        // The next call releases it.
        assert_eq!(view.get(&8).map(|c| c.1), Some(8));
    }
    drop(m);
    assert_eq!(Arc::strong_count(&token), 1, "leaked keys or values");
}

#[test]
fn a_replaced_inline_value_is_dropped_before_its_node_and_exactly_once() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    #[derive(Clone)]
    struct D(#[allow(dead_code)] u64);
    impl Drop for D {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Relaxed);
        }
    }
    let m = LockFreeHashMap::new();
    m.insert(1u64, D(1)); // inline in the node
    let before = DROPS.load(Relaxed);
    drop(m.insert(1, D(2))); // swaps the inline value out; drops the clone
    assert_eq!(DROPS.load(Relaxed), before + 1, "only the returned clone");
    m.raw.domain.reclaim();
    // The inline first value is dropped now, while its node stays linked.
    assert_eq!(DROPS.load(Relaxed), before + 2);
    assert_eq!(m.get_with(&1, |v| v.0), Some(2));
    drop(m.remove(&1)); // the boxed value and the node are retired
    m.raw.domain.reclaim();
    assert_eq!(DROPS.load(Relaxed), before + 4);
    assert!(m.is_empty());
    drop(m);
    assert_eq!(DROPS.load(Relaxed), before + 4, "nothing dropped twice");
}

#[test]
fn a_panicking_drop_in_the_guard_scan_leaks_no_returned_value() {
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    /// Originals panic in drop while armed; clones never do. Every one
    /// holds the token, so a leaked value shows in its count.
    struct Bomb(Arc<()>, bool);
    impl Clone for Bomb {
        fn clone(&self) -> Self {
            Bomb(Arc::clone(&self.0), false)
        }
    }
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.1 && ARMED.load(Relaxed) {
                panic!("value drop panics");
            }
        }
    }
    let token = Arc::new(());
    let keys = if cfg!(miri) { 100 } else { 300 };
    let m = LockFreeHashMap::new();
    for k in 0..keys {
        m.insert(k, Bomb(token.clone(), true));
    }
    let mut panics = 0;
    for k in 0..keys {
        for op in 0..3 {
            // Each op retires an original; its guard's scan drops earlier
            // ones, which panic, while the op returns a clone.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
                0 => m.insert(k, Bomb(token.clone(), true)).map(drop),
                1 => m.update(&k, |v| Bomb(v.0.clone(), true)).map(drop),
                _ => m.remove(&k).map(drop),
            }));
            panics += usize::from(r.is_err());
        }
    }
    assert!(panics > 0, "no scan ran a panicking drop");
    ARMED.store(false, Relaxed);
    drop(m);
    assert_eq!(Arc::strong_count(&token), 1, "a value was leaked");
}

/// Hashes that differ only in bits 61 and 62 (the top bits a split-order
/// key keeps below the element marker): the keys sit next to each other in
/// split order, and replacing and removing them keeps them apart.
#[derive(Default)]
struct HighBits(u64);
impl Hasher for HighBits {
    fn finish(&self) -> u64 {
        (self.0 % 4) << 61 | 0x5A5A
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(*b));
        }
    }
}

#[test]
fn hashes_differing_only_in_the_share_bits_are_kept_apart() {
    let token = Arc::new(());
    {
        let map: LockFreeHashMap<u8, Counted, BuildHasherDefault<HighBits>> =
            LockFreeHashMap::with_hasher(BuildHasherDefault::default());
        let val = |v: u64| Counted(Arc::clone(&token), v);
        for k in 0..4u8 {
            assert!(map.insert(k, val(u64::from(k))).is_none());
        }
        // Replace each inline value (its retired in-place drop holds a
        // second share of the node), then remove two of the keys.
        for k in 0..4u8 {
            let old = map.insert(k, val(u64::from(k) + 10)).expect("present");
            assert_eq!(old.1, u64::from(k));
        }
        assert_eq!(map.remove(&1).map(|c| c.1), Some(11));
        assert_eq!(map.remove(&3).map(|c| c.1), Some(13));
        for k in [0u8, 2] {
            assert_eq!(map.get_with(&k, |c| c.1), Some(u64::from(k) + 10));
        }
        assert!(!map.contains_key(&1) && !map.contains_key(&3));
        assert_eq!(map.len(), 2);
        map.raw.domain.reclaim();
        // Two live values; everything replaced or removed is freed.
        assert_eq!(Arc::strong_count(&token), 3);
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

#[test]
fn nested_views_take_extra_records_and_give_them_back() {
    let map: LockFreeHashMap<u32, u32> = (0..64).map(|k| (k, k * 2)).collect();
    let mut most = 0;
    for round in 0..if cfg!(miri) { 3 } else { 50 } {
        // Three views and a get at once need more than one record's slots.
        let mut a = map.pin();
        let mut b = map.pin();
        let mut c = map.pin();
        assert_eq!(a.get(&1).copied(), Some(2));
        assert_eq!(b.get(&2).copied(), Some(4));
        assert_eq!(c.get(&3).copied(), Some(6));
        assert_eq!(map.get(&(round % 64)), Some(round % 64 * 2));
        drop((a, b, c));
        most = most.max(map.raw.domain.records());
    }
    // Extra records are given back and reused, not taken anew each round.
    assert!(most <= 4, "{most} records for one thread");
}

#[test]
fn reads_nested_in_a_read_closure_keep_the_outer_value() {
    // The outer `get_with` holds the thread's cached hazard set while its
    // closure runs; the nested reads and writes take the per-call path
    // (other slots), and the outer value stays protected even when the
    // closure replaces and removes its key and forces scans.
    let token = Arc::new(());
    let map: LockFreeHashMap<u32, (u32, Arc<()>)> = LockFreeHashMap::new();
    for k in 0..=64 {
        map.insert(k, (k, Arc::clone(&token)));
    }
    let rounds = if cfg!(miri) { 4 } else { 64 };
    for r in 0..rounds {
        let seen = map.get_with(&r, |v| {
            let inner = map.get_with(&(r + 1), |w| w.0);
            assert_eq!(inner, Some(r + 1));
            for _ in 0..40 {
                map.insert(r, (u32::MAX, Arc::clone(&token)));
            }
            map.remove(&r);
            map.raw.domain.reclaim();
            // Still the value this read protected.
            assert_eq!(v.0, r);
            v.0
        });
        assert_eq!(seen, Some(r));
        assert_eq!(map.get(&r).map(|v| v.0), None);
        map.insert(r, (r, Arc::clone(&token)));
    }
    drop(map);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

// Deterministic single-thread tests of `insert`'s kept node (a link CAS
// that fails after a search found the key absent). The search walk loads a
// node's successor before calling `Eq` on it and does not re-validate a
// null successor, so an `Eq` that changes the map (a re-entrant call, armed
// once per thread) leaves the search a stale place at the end of the list:
// the link CAS fails and the node is kept for the next attempt.

/// Every key hashes to 0 except key 9, which hashes to 8: all in bucket 0
/// for up to 8 buckets, key 9 after the others in split order.
#[derive(Default)]
struct Place(u64);
impl Hasher for Place {
    fn finish(&self) -> u64 {
        if self.0 == 9 {
            8
        } else {
            0
        }
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = u64::from(*b);
        }
    }
}

thread_local! {
    /// Run by the next `Hooked::eq` on this thread (once).
    static HOOK: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
    /// Makes the next `Hooked::eq` on this thread panic (once).
    static PANIC_NEXT_EQ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[derive(Clone, Debug)]
struct Hooked(u8);
impl Hash for Hooked {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
    }
}
impl PartialEq for Hooked {
    fn eq(&self, o: &Self) -> bool {
        assert!(!PANIC_NEXT_EQ.with(|p| p.replace(false)), "eq panics");
        let hook = HOOK.with(|h| h.borrow_mut().take());
        if let Some(hook) = hook {
            hook();
        }
        self.0 == o.0
    }
}
impl Eq for Hooked {}

type HookedMap = LockFreeHashMap<Hooked, Counted, BuildHasherDefault<Place>>;

fn hooked_map() -> Arc<HookedMap> {
    Arc::new(LockFreeHashMap::with_capacity_and_hasher(
        8,
        BuildHasherDefault::default(),
    ))
}

fn arm(hook: impl FnOnce() + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

fn hook_ran() -> bool {
    HOOK.with(|h| h.borrow().is_none())
}

#[test]
fn a_kept_node_whose_key_appeared_replaces_the_winner() {
    let token = Arc::new(());
    {
        let val = |v: u64| Counted(Arc::clone(&token), v);
        let map = hooked_map();
        assert!(map.insert(Hooked(0), val(0)).is_none());
        // While the insert of 1 compares 0's key, another insert of 1 wins:
        // the link fails, the kept node's value replaces the winner's.
        let (m, v21) = (Arc::clone(&map), val(21));
        arm(move || assert!(m.insert(Hooked(1), v21).is_none()));
        assert_eq!(map.insert(Hooked(1), val(20)).map(|c| c.1), Some(21));
        assert!(hook_ran());
        assert_eq!(map.get(&Hooked(1)).map(|c| c.1), Some(20));
        assert_eq!(map.get(&Hooked(0)).map(|c| c.1), Some(0));
        assert_eq!(map.len(), 2);
        map.raw.domain.reclaim();
        // Two live values; 21 (replaced) and the returned clone are freed.
        assert_eq!(Arc::strong_count(&token), 3);
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

#[test]
fn a_kept_node_is_relinked_before_its_new_successor() {
    let token = Arc::new(());
    {
        let val = |v: u64| Counted(Arc::clone(&token), v);
        let map = hooked_map();
        assert!(map.insert(Hooked(0), val(0)).is_none());
        // The insert of 1 found its place at the end of the list (successor
        // null); meanwhile 9 (a later split-order key) and 2 (1's run) are
        // linked, so the kept node's second place has a successor, 9.
        let (m, v9, v2) = (Arc::clone(&map), val(9), val(2));
        arm(move || {
            assert!(m.insert(Hooked(9), v9).is_none());
            assert!(m.insert(Hooked(2), v2).is_none());
        });
        assert!(map.insert(Hooked(1), val(1)).is_none());
        assert!(hook_ran());
        for k in [0u8, 1, 2, 9] {
            assert_eq!(map.get(&Hooked(k)).map(|c| c.1), Some(u64::from(k)));
        }
        assert_eq!(map.len(), 4);
        let mut keys: Vec<u8> = map.iter().map(|(k, _)| k.0).collect();
        keys.sort_unstable();
        assert_eq!(keys, [0, 1, 2, 9]);
        for k in [9u8, 1] {
            assert_eq!(map.remove(&Hooked(k)).map(|c| c.1), Some(u64::from(k)));
        }
        map.raw.domain.reclaim();
        assert_eq!(Arc::strong_count(&token), 3);
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

#[test]
fn a_panicking_eq_after_a_failed_link_drops_the_kept_node_once() {
    let token = Arc::new(());
    {
        let val = |v: u64| Counted(Arc::clone(&token), v);
        let map = hooked_map();
        assert!(map.insert(Hooked(0), val(0)).is_none());
        // The link of 1 fails (2 appeared), and the next search's `Eq`
        // panics: the kept node, its key and its value go exactly once.
        let (m, v2) = (Arc::clone(&map), val(2));
        arm(move || {
            assert!(m.insert(Hooked(2), v2).is_none());
            PANIC_NEXT_EQ.with(|p| p.set(true));
        });
        let bad = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map.insert(Hooked(1), val(1))
        }));
        assert!(bad.is_err());
        assert!(hook_ran());
        assert!(!PANIC_NEXT_EQ.with(std::cell::Cell::get));
        assert!(!map.contains_key(&Hooked(1)));
        assert_eq!(map.len(), 2);
        map.raw.domain.reclaim();
        assert_eq!(Arc::strong_count(&token), 3, "the kept node's value");
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

// A value whose `clone` runs an armed hook once (given the value's key):
// lets a test act in the middle of an iteration's walk (which clones each
// value it yields).
type CloneHook = Option<Box<dyn FnOnce(u64)>>;

std::thread_local! {
    static CLONE_HOOK: std::cell::RefCell<CloneHook> =
        std::cell::RefCell::new(None);
}

#[derive(Debug, PartialEq)]
struct CloneHooked(u64);

impl Clone for CloneHooked {
    fn clone(&self) -> Self {
        let hook = CLONE_HOOK.with(|h| h.borrow_mut().take());
        if let Some(hook) = hook {
            hook(self.0);
        }
        CloneHooked(self.0)
    }
}

/// A key yielded, then removed and re-inserted while migrations run under
/// the walk, gets a new entry in a new table: the iterator must still not
/// yield it twice (it compares keys of equal tags once the walk crossed a
/// migration). Found by map12er's review.
#[test]
fn iteration_never_yields_a_key_twice_across_a_migration() {
    let m = Arc::new(LockFreeHashMap::<u64, CloneHooked>::with_capacity(1));
    for k in 0..4 {
        m.insert(k, CloneHooked(k));
    }
    let before = m.buckets();
    let hm = m.clone();
    // Runs while the walk clones the first value it yields, key `x`.
    CLONE_HOOK.with(|h| {
        *h.borrow_mut() = Some(Box::new(move |x| {
            assert!(hm.remove(&x).is_some());
            for f in 1_000..1_000 + 64 {
                hm.insert(f, CloneHooked(f));
            }
            assert!(hm.insert(x, CloneHooked(x)).is_none());
        }))
    });
    let keys: Vec<u64> = m.iter().map(|(k, _)| k).collect();
    assert!(CLONE_HOOK.with(|h| h.borrow().is_none()), "the hook ran");
    assert!(m.buckets() > before, "migrations ran under the walk");
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "a key yielded twice: {keys:?}");
    for k in 0..4 {
        assert!(
            keys.contains(&k),
            "key {k} present throughout, not yielded: {keys:?}"
        );
    }
}

// Wave 9 (map12w): `insert` and `remove` run on the thread's cached hazard
// set (`RawTable::insert_fast`/`remove_fast`), which they hold while user
// `Eq` and `V::clone` run.

#[test]
fn a_write_nested_in_a_fast_writes_eq_leaves_the_outer_write_correct() {
    // The fast insert of key 1 compares key 0's entry (same home) while it
    // holds the cached set (root in member 0, key 0's entry in member 2).
    // The hook removes key 0 and grows the table twice, so key 0's entry
    // and the table the outer probe is walking are retired, then scans.
    // The nested writes must take other slots (the per-call path): the
    // outer probe then finishes on the old table it still protects.
    let token = Arc::new(());
    {
        let val = |v: u64| Counted(Arc::clone(&token), v);
        let map = hooked_map();
        assert!(map.insert(Hooked(0), val(0)).is_none());
        assert!(map.insert(Hooked(1), val(1)).is_none());
        let before = map.raw.migrations.load(Relaxed);
        let (m, t) = (Arc::clone(&map), Arc::clone(&token));
        arm(move || {
            assert_eq!(m.remove(&Hooked(0)).map(|c| c.1), Some(0));
            for k in 100..140u8 {
                assert!(m
                    .insert(Hooked(k), Counted(Arc::clone(&t), k.into()))
                    .is_none());
            }
            m.raw.domain.reclaim();
        });
        assert_eq!(map.insert(Hooked(1), val(11)).map(|c| c.1), Some(1));
        assert!(hook_ran());
        assert!(
            map.raw.migrations.load(Relaxed) > before,
            "no migration ran"
        );
        assert_eq!(map.get(&Hooked(1)).map(|c| c.1), Some(11));
        assert_eq!(map.get(&Hooked(0)).map(|c| c.1), None);
        for k in 100..140u8 {
            assert_eq!(map.get(&Hooked(k)).map(|c| c.1), Some(k.into()));
        }
        assert_eq!(map.len(), 41);
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

#[test]
fn a_remove_nested_in_a_fast_removes_eq_keeps_both_results() {
    let token = Arc::new(());
    {
        let val = |v: u64| Counted(Arc::clone(&token), v);
        let map = hooked_map();
        for k in 0..4 {
            assert!(map.insert(Hooked(k), val(k.into())).is_none());
        }
        let m = Arc::clone(&map);
        // While the outer remove of 3 compares an earlier key, remove 2
        // and replace 3: the outer remove then takes the replacement.
        arm(move || {
            assert_eq!(m.remove(&Hooked(2)).map(|c| c.1), Some(2));
            assert_eq!(
                m.insert(Hooked(3), Counted(m_token(&m), 33)).map(|c| c.1),
                Some(3)
            );
            m.raw.domain.reclaim();
        });
        assert_eq!(map.remove(&Hooked(3)).map(|c| c.1), Some(33));
        assert!(hook_ran());
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&Hooked(0)).map(|c| c.1), Some(0));
        assert_eq!(map.get(&Hooked(1)).map(|c| c.1), Some(1));
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

/// The token of key 0's value (the hook has no other way to reach it).
fn m_token(m: &HookedMap) -> Arc<()> {
    m.get(&Hooked(0)).expect("key 0 present").0
}

#[test]
fn a_panicking_clone_in_a_fast_write_gives_the_cached_set_back() {
    use crate::hazard::CachedSet;
    /// Clones of a value with `1` set panic.
    struct Grumpy(Arc<()>, u32, bool);
    impl Clone for Grumpy {
        fn clone(&self) -> Self {
            assert!(!self.2, "clone panics");
            Grumpy(Arc::clone(&self.0), self.1, false)
        }
    }
    let token = Arc::new(());
    {
        let map: LockFreeHashMap<u32, Grumpy> = LockFreeHashMap::new();
        let val = |v, grumpy| Grumpy(Arc::clone(&token), v, grumpy);
        for k in 0..64 {
            assert!(map.insert(k, val(k, true)).is_none());
        }
        for k in 0..64 {
            // The fast path: the thread's cached set is free before ...
            assert!(CachedSet::<4>::try_new(&map.raw.domain).is_some());
            let op = |k: u32| {
                if k % 2 == 0 {
                    map.insert(k, val(k + 100, false)).map(drop)
                } else {
                    map.remove(&k).map(drop)
                }
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(k)));
            assert!(r.is_err(), "the clone of the old value did not panic");
            // ... and after the write whose clone panicked, which took effect.
            assert!(
                CachedSet::<4>::try_new(&map.raw.domain).is_some(),
                "the cached set was not given back"
            );
            let now = map.get_with(&k, |v| v.1);
            assert_eq!(now, (k % 2 == 0).then_some(k + 100));
        }
        assert_eq!(map.len(), 32);
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "leaked or double-freed values"
    );
}

#[test]
fn writes_in_a_thread_local_destructor_are_applied() {
    type Shared = Arc<LockFreeHashMap<u32, u32>>;
    /// Writes to the map when its thread's TLS is torn down, when the
    /// record cache may already be gone (the cached set is then not
    /// available and the write takes the per-call path).
    struct OnExit(Shared);
    impl Drop for OnExit {
        fn drop(&mut self) {
            for k in 0..64 {
                self.0.insert(k, k + 1);
            }
            for k in 0..64 {
                self.0.insert(k, k + 2);
            }
            for k in 0..32 {
                assert_eq!(self.0.remove(&k), Some(k + 2));
            }
        }
    }
    thread_local! {
        static EXIT: std::cell::RefCell<Option<OnExit>> = const { std::cell::RefCell::new(None) };
    }
    let map: Shared = Arc::new(LockFreeHashMap::new());
    for order in 0..2 {
        let m = Arc::clone(&map);
        std::thread::spawn(move || {
            if order == 0 {
                // Registered before the record cache: destroyed after it
                // (destructors run in reverse order of registration on
                // most platforms; either order must work).
                EXIT.with(|e| *e.borrow_mut() = Some(OnExit(Arc::clone(&m))));
                m.insert(1000, 0);
            } else {
                m.insert(1000, 0);
                EXIT.with(|e| *e.borrow_mut() = Some(OnExit(Arc::clone(&m))));
            }
        })
        .join()
        .expect("the thread's destructor writes panicked");
        for k in 0..32 {
            assert_eq!(map.get(&k), None);
        }
        for k in 32..64 {
            assert_eq!(map.get(&k), Some(k + 2));
        }
        assert_eq!(map.len(), 33);
    }
}
