//! Tests of the not-wired open-addressing prototype (`map/table.rs`).

use super::*;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use waitless_check::{assert_linearizable, MapModel, MapOp, MapRet, Recorder};

fn n(full: usize) -> usize {
    if cfg!(miri) {
        (full / 200).max(8)
    } else {
        full
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A table with a hasher: full 64-bit hashes, or only `coarse` distinct ones.
struct T<K, V> {
    raw: RawTable<K, V>,
    coarse: u64,
}

impl<K: Eq + Hash, V: Clone> T<K, V> {
    fn new(cap: usize, coarse: u64) -> Self {
        T {
            raw: RawTable::with_capacity(cap),
            coarse,
        }
    }
    fn h<Q: Hash + ?Sized>(&self, k: &Q) -> u64 {
        let h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(k);
        if self.coarse == 0 {
            h
        } else {
            h % self.coarse
        }
    }
    fn insert(&self, k: K, v: V) -> Option<V> {
        self.raw.insert(self.h(&k), k, v)
    }
    fn get(&self, k: &K) -> Option<V> {
        self.raw.get_with(self.h(k), k, V::clone)
    }
    fn remove(&self, k: &K) -> Option<V> {
        self.raw.remove(self.h(k), k)
    }
}

fn sequential_against_std(coarse: u64, keys: u64, ops: usize) {
    let t = T::new(1, coarse);
    let mut std = HashMap::new();
    let mut x = 0x2545_f491_4f6c_dd1d ^ coarse;
    for i in 0..ops {
        let r = xorshift(&mut x);
        let k = r % keys;
        let h = t.h(&k);
        match (r >> 40) % 8 {
            0 | 1 => assert_eq!(t.insert(k, i), std.insert(k, i), "insert {k}"),
            2 | 3 => assert_eq!(t.remove(&k), std.remove(&k), "remove {k}"),
            4 => {
                let want = std.get_mut(&k).map(|v| {
                    let old = *v;
                    *v = old * 3 + 1;
                    old
                });
                assert_eq!(t.raw.update(h, &k, |v| v * 3 + 1), want, "update {k}");
            }
            5 => {
                let want = *std.entry(k).or_insert(i);
                assert_eq!(
                    t.raw.get_or_insert_with(h, k, || i),
                    want,
                    "get_or_insert_with {k}"
                );
            }
            6 => {
                let mut g = t.raw.guard();
                assert_eq!(t.raw.lookup(&mut g, h, &k), std.get(&k), "lookup {k}");
            }
            _ => assert_eq!(t.get(&k), std.get(&k).copied(), "get {k}"),
        }
        assert_eq!(t.raw.len(), std.len());
    }
    for k in 0..keys {
        assert_eq!(t.get(&k), std.get(&k).copied());
    }
}

#[test]
fn matches_std_on_random_operations() {
    sequential_against_std(0, 300, n(20_000));
}

#[test]
fn matches_std_with_colliding_hashes() {
    sequential_against_std(3, 60, n(6_000));
}

#[test]
fn grows_and_churn_does_not_grow_forever() {
    let t = T::new(1, 0);
    // At least 100 keys: same-size migrations start at 64 slots.
    let keys = n(20_000).max(100) as u64;
    for k in 0..keys {
        assert_eq!(t.insert(k, k), None);
    }
    for k in 0..keys {
        assert_eq!(t.get(&k), Some(k));
    }
    assert_eq!(t.raw.len(), keys as usize);
    let cap = t.raw.capacity();
    assert!(cap as u64 >= keys + keys / 4, "capacity {cap}");
    // Churn through fresh keys with a small live set: tombstones are
    // dropped by same-size migrations, so the table stops growing.
    for k in 0..keys {
        t.remove(&k);
    }
    for k in keys..keys * 6 {
        t.insert(k, k);
        t.remove(&(k - 10)).unwrap_or_default();
    }
    assert!(t.raw.capacity() <= cap, "{} > {cap}", t.raw.capacity());
    for k in keys * 6 - 10..keys * 6 {
        assert_eq!(t.get(&k), Some(k));
    }
    assert_eq!(t.raw.len(), 10);
}

/// Key and value types that count themselves through an `Arc`.
#[derive(Clone, Debug)]
pub(super) struct Tok(pub(super) u64, #[allow(dead_code)] pub(super) Arc<()>);
impl PartialEq for Tok {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Tok {}
impl Hash for Tok {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
    }
}

#[test]
fn every_key_and_value_is_dropped_exactly_once() {
    let token = Arc::new(());
    {
        let t = T::new(1, 5);
        let mut x = 7u64;
        for i in 0..n(5_000) as u64 {
            let r = xorshift(&mut x);
            let k = Tok(r % 200, token.clone());
            match r >> 62 {
                0 | 1 => drop(t.insert(k, Tok(i, token.clone()))),
                2 => drop(t.remove(&k)),
                _ => drop(t.get(&k)),
            }
        }
        t.raw.domain.reclaim();
        assert!(Arc::strong_count(&token) > 1);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

#[test]
fn concurrent_arc_counts_are_exact() {
    let token = Arc::new(());
    {
        let t = T::new(1, 0);
        std::thread::scope(|s| {
            for th in 0..4u64 {
                let t = &t;
                let token = &token;
                s.spawn(move || {
                    let mut x = 0x9E37_79B9 ^ th;
                    for i in 0..n(4_000) as u64 {
                        let r = xorshift(&mut x);
                        let k = Tok(r % 500, token.clone());
                        match r >> 62 {
                            0 | 1 => drop(t.insert(k, Tok(i, token.clone()))),
                            2 => drop(t.remove(&k)),
                            _ => drop(t.get(&k)),
                        }
                    }
                });
            }
        });
        assert!(t.raw.migrations.load(Ordering::Relaxed) > 0);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// Dropping a table in the middle of a migration: one slot copied without
/// its COPIED mark (a helper that stopped there), one frozen and not
/// copied, the rest untouched; every entry is freed exactly once.
#[test]
fn dropping_mid_migration_frees_each_entry_once() {
    let token = Arc::new(());
    {
        let t: T<Tok, Tok> = T::new(1, 0);
        for i in 0..5 {
            t.insert(Tok(i, token.clone()), Tok(i, token.clone()));
        }
        t.remove(&Tok(4, token.clone()));
        let mut g = t.raw.guard();
        let (root, ti) = t.raw.root(&mut g);
        let next = Table::new(root.slots.len() * 2);
        root.next.store(next, Ordering::Release);
        let (n, _) = t.raw.advance(&mut g, root, ti).unwrap();
        let mut seen = 0;
        for (i, s) in root.slots.iter().enumerate() {
            let w = s.word.load(Ordering::Acquire);
            if w.is_null() {
                continue;
            }
            seen += 1;
            match seen {
                1 => {
                    s.word.store(tagged(w, FROZEN), Ordering::Release);
                    // The entry, not the word (whose filter bits would be
                    // added twice by `slot_word`).
                    put_if_absent(n, s.tag.load(Ordering::Relaxed), untag(w));
                }
                2 => s.word.store(tagged(w, FROZEN), Ordering::Release),
                3 => t.raw.copy_slot(&mut g, root, i, n),
                _ => {}
            }
        }
        drop(g);
        // Readers see every live key through the half-migrated pair.
        for i in 0..4 {
            assert_eq!(t.get(&Tok(i, token.clone())).map(|v| v.0), Some(i));
        }
        assert_eq!(t.get(&Tok(4, token.clone())), None);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

#[test]
fn a_panicking_eq_leaves_the_table_intact() {
    #[derive(Clone)]
    struct Boom(u64, #[allow(dead_code)] Arc<()>);
    impl PartialEq for Boom {
        fn eq(&self, o: &Self) -> bool {
            assert!(self.0 != 666 && o.0 != 666, "boom");
            self.0 == o.0
        }
    }
    impl Eq for Boom {}
    impl Hash for Boom {
        fn hash<H: Hasher>(&self, h: &mut H) {
            0u8.hash(h); // every key collides
        }
    }
    let token = Arc::new(());
    {
        let t = T::new(1, 0);
        for i in 0..20 {
            t.insert(Boom(i, token.clone()), i);
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.insert(Boom(666, token.clone()), 0)
        }));
        assert!(r.is_err());
        for i in 0..20 {
            assert_eq!(t.get(&Boom(i, token.clone())), Some(i));
        }
        assert_eq!(t.raw.len(), 20);
    }
    assert_eq!(Arc::strong_count(&token), 1);
}

/// Per-key histories of concurrent runs, checked by `waitless-check`; the
/// fresh-key run makes tombstones pile up so same-size and doubling
/// migrations happen while the others read and write.
fn history(coarse: u64, keys: u64, fresh: bool) {
    let t: T<u64, u64> = T::new(1, coarse);
    let rec: Recorder<MapOp<u64, u64>, MapRet<u64>> = Recorder::new();
    // Fixed seeds: the keys inserted, so the migrations, do not depend on
    // the interleaving.
    let ops = n(1500).max(60) as u64;
    std::thread::scope(|s| {
        for th in 0..4u64 {
            let (t, rec) = (&t, &rec);
            s.spawn(move || {
                let mut log = rec.thread();
                let mut x = 0x1234_5678_9abc_def1 ^ (th + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for i in 0..ops {
                    let r = xorshift(&mut x);
                    let k = if fresh { (i / 4) * 8 + r % 8 } else { r % keys };
                    match (r >> 32) % 3 {
                        0 => {
                            let v = th << 32 | i;
                            log.op(MapOp::Insert(k, v), || MapRet::Inserted(t.insert(k, v)));
                        }
                        1 => {
                            log.op(MapOp::Get(k), || MapRet::Got(t.get(&k)));
                        }
                        _ => {
                            log.op(MapOp::Remove(k), || MapRet::Removed(t.remove(&k)));
                        }
                    }
                }
            });
        }
    });
    if fresh {
        assert!(
            t.raw.migrations.load(Ordering::Relaxed) > 0,
            "no migration ran"
        );
    }
    assert_linearizable(&MapModel::new(), &rec.into_history());
}

#[test]
#[cfg_attr(miri, ignore = "histories need real interleavings: run natively")]
fn histories_are_linearizable() {
    for round in 0..3 {
        history(0, 16 + round * 24, false);
    }
    history(0, 0, true);
}

#[test]
#[cfg_attr(miri, ignore = "histories need real interleavings: run natively")]
fn histories_with_colliding_hashes_are_linearizable() {
    history(4, 24, false);
    history(4, 0, true);
}

/// The first value lives inline in the entry. Replaced under a reader that
/// still borrows it, it stays alive (and readable) through scans until the
/// reader is done, then it is dropped exactly once, and the entry lives on
/// with the new value.
#[test]
fn a_replaced_inline_value_outlives_its_reader_and_is_dropped_once() {
    let token = Arc::new(());
    let tok = |i| Tok(i, token.clone());
    {
        let t: T<Tok, Tok> = T::new(1, 0);
        assert_eq!(t.insert(tok(1), tok(10)), None);
        let h = t.h(&tok(1));
        let before = Arc::strong_count(&token);
        let seen = t.raw.get_with(h, &tok(1), |v| {
            // Swap the inline value out from under this borrow; its drop is
            // retired with a share of the entry.
            assert_eq!(t.insert(tok(1), tok(11)).map(|o| o.0), Some(10));
            t.raw.domain.reclaim();
            // Still protected by this reader: not dropped (a UAF here is
            // what Miri would report).
            assert_eq!(v.0, 10);
            v.0
        });
        assert_eq!(seen, Some(10));
        t.raw.domain.reclaim();
        // The old inline value is gone; the new box took its place.
        assert_eq!(Arc::strong_count(&token), before);
        assert_eq!(t.get(&tok(1)).map(|v| v.0), Some(11));
        assert_eq!(t.remove(&tok(1)).map(|v| v.0), Some(11));
        assert_eq!(t.insert(tok(1), tok(12)), None);
        assert_eq!(t.get(&tok(1)).map(|v| v.0), Some(12));
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// A removed inline value whose drop is still pending (a reader protects
/// it) while a migration drops the tombstone's entry: the entry's retired
/// release runs first and must not free it; the inline drop, later, frees
/// it. Then the other order (no reader: one scan runs both), and a table
/// dropped while an inline drop is pending.
#[test]
fn an_entry_outlives_a_pending_inline_drop_in_either_order() {
    let token = Arc::new(());
    let tok = |i| Tok(i, token.clone());
    {
        let t: T<Tok, Tok> = T::new(1, 0);
        for i in 0..4 {
            t.insert(tok(i), tok(i));
        }
        let h = t.h(&tok(1));
        t.raw.get_with(h, &tok(1), |v| {
            assert_eq!(t.remove(&tok(1)).map(|o| o.0), Some(1));
            let mut g = t.raw.guard();
            let (root, _) = t.raw.root(&mut g);
            let m = t.raw.migrations.load(Ordering::Relaxed);
            t.raw.grow(&mut g, root);
            drop(g);
            assert_eq!(t.raw.migrations.load(Ordering::Relaxed), m + 1);
            t.raw.domain.reclaim();
            assert_eq!(
                v.0, 1,
                "the removed inline value was dropped under its reader"
            );
        });
        t.raw.domain.reclaim();
        assert_eq!(t.get(&tok(1)), None);
        // No reader: the inline drop and the entry's release are pending
        // together.
        assert_eq!(t.remove(&tok(2)).map(|o| o.0), Some(2));
        {
            let mut g = t.raw.guard();
            let (root, _) = t.raw.root(&mut g);
            t.raw.grow(&mut g, root);
        }
        t.raw.domain.reclaim();
        // A pending inline drop when the table itself is dropped.
        assert_eq!(t.insert(tok(3), tok(33)).map(|o| o.0), Some(3));
        assert_eq!(t.get(&tok(0)).map(|v| v.0), Some(0));
        assert_eq!(t.get(&tok(3)).map(|v| v.0), Some(33));
        assert_eq!(t.raw.len(), 2);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// An entry is one allocation of the key, the first value and the value
/// word: 24 bytes for `u64 → u64` (a 32-byte malloc chunk); a slot is a
/// 4-byte tag and an 8-byte word in two arrays.
#[test]
fn an_entry_holds_its_first_value_inline_and_a_slot_is_12_bytes() {
    assert_eq!(core::mem::size_of::<Entry<u64, u64>>(), 24);
    let p = Table::<u64, u64>::new(64);
    // SAFETY: fresh, never shared; freed below.
    let t = unsafe { Box::from_raw(p) };
    let bytes = core::mem::size_of_val(&*t.slots.tags) + core::mem::size_of_val(&*t.slots.words);
    assert_eq!(bytes, 64 * 12);
}

/// `update` loses no increment while other threads churn fresh keys
/// (forcing migrations under it); `get_or_insert_with` makes one winner
/// per key; Arc counts stay exact.
#[test]
fn concurrent_updates_and_get_or_insert_are_atomic() {
    let token = Arc::new(());
    {
        let t: T<u64, (u64, Arc<()>)> = T::new(1, 0);
        let keys = 8u64;
        let per = n(2_000) as u64;
        let made = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for th in 0..3u64 {
                let (t, token, made) = (&t, &token, &made);
                s.spawn(move || {
                    for i in 0..per {
                        let k = i % keys;
                        let h = t.h(&k);
                        t.raw.get_or_insert_with(h, k, || {
                            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            (0, token.clone())
                        });
                        t.raw.update(h, &k, |v| (v.0 + 1, v.1.clone()));
                        // Fresh keys: migrations run under the updates.
                        let f = 1_000 + th * per + i;
                        t.insert(f, (0, token.clone()));
                        t.remove(&f);
                    }
                });
            }
        });
        assert!(
            t.raw.migrations.load(Ordering::Relaxed) > 0,
            "no migration ran"
        );
        let total: u64 = (0..keys).map(|k| t.get(&k).expect("present").0).sum();
        assert_eq!(total, 3 * per, "an update was lost");
        assert!(made.load(std::sync::atomic::Ordering::Relaxed) >= keys as usize);
        assert_eq!(t.raw.len(), keys as usize);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// `visit` sees every key present for the whole walk exactly once, while
/// other threads churn fresh keys (migrations run under the walk); its
/// check-and-remove is `retain`/`clear`.
#[test]
fn visit_is_weakly_consistent_under_churn_and_removes_what_it_is_told() {
    let token = Arc::new(());
    {
        let t: T<u64, Tok> = T::new(1, 0);
        let stable = n(2_000) as u64;
        for k in 0..stable {
            t.insert(k, Tok(k, token.clone()));
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let (tt, token, stop) = (&t, &token, &stop);
            s.spawn(move || {
                let mut f = 1u64 << 40;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tt.insert(f, Tok(f, token.clone()));
                    tt.remove(&(f - 3));
                    f += 1;
                }
            });
            for _ in 0..3 {
                let mut counts = HashMap::new();
                t.raw.visit(|_, _, k, v| {
                    assert_eq!(*k, v.0);
                    *counts.entry(*k).or_insert(0) += 1;
                    false
                });
                for k in 0..stable {
                    assert_eq!(
                        counts.get(&k),
                        Some(&1),
                        "key {k} visited {:?}",
                        counts.get(&k)
                    );
                }
                assert!(counts.values().all(|&c| c == 1), "a key visited twice");
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        // retain: remove the odd keys.
        t.raw.visit(|_, _, k, _| *k < stable && k % 2 == 1);
        for k in 0..stable {
            assert_eq!(t.get(&k).is_some(), k % 2 == 0, "key {k}");
        }
        // clear
        t.raw.visit(|_, _, _, _| true);
        assert_eq!(t.raw.len(), 0);
        assert!((0..stable).all(|k| t.get(&k).is_none()));
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}
