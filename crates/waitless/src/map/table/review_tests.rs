//! Review tests of the open-addressing prototype (reviewer map12dr): each
//! one drives a suspicion about the protocol through the table's internals
//! and fails if the suspected bug is real.

use super::tests::Tok;
use super::*;
use std::hash::Hash;
use std::sync::Arc;

fn n(full: usize) -> usize {
    if cfg!(miri) {
        (full / 50).max(8)
    } else {
        full
    }
}

/// The root table's slots: `(index, tag, entry word)` for every slot with a
/// non-null entry (test thread only, quiescent table).
fn root_words<K: Eq + Hash, V>(t: &RawTable<K, V>) -> Vec<(usize, u32, *mut Entry<K, V>)> {
    let mut g = t.guard();
    let (root, _) = t.root(&mut g);
    assert!(
        root.next.load(Ordering::Acquire).is_null(),
        "quiescent table still migrating"
    );
    root.slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let w = s.word.load(Ordering::Acquire);
            (!untag(w).is_null()).then(|| (i, s.tag.load(Ordering::Relaxed), w))
        })
        .collect()
}

/// A hash spreads keys over every slot of a table: the home slot of a key
/// must be able to be any slot. Suspicion: `tag & mask` with `tag = hash |
/// 1` makes every home slot odd, so half the slots are reachable only by
/// probing past a neighbour (twice the home collisions, longer clusters).
#[test]
fn home_slots_cover_the_whole_table() {
    let mut homes = std::collections::BTreeSet::new();
    for i in 0..64u64 {
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let t: RawTable<u64, u64> = RawTable::with_capacity(1);
        t.insert(h, i, i);
        let words = root_words(&t);
        assert_eq!(words.len(), 1);
        homes.insert(words[0].0);
        assert_eq!(t.capacity(), 8);
    }
    assert_eq!(
        homes.len(),
        8,
        "64 well-spread hashes use only the home slots {homes:?} of 8"
    );
}

/// The "dead copy" path of §7b: a copy-freeze wins after a seal, so the
/// sealed entry is copied into the next table. A re-insert of the key must
/// then create one new entry (probes skip the dead one), the next
/// migration must drop the dead one, and everything is freed once.
#[test]
fn a_sealed_entry_copied_as_dead_is_skipped_then_dropped() {
    let token = Arc::new(());
    {
        let t: RawTable<Tok, Tok> = RawTable::with_capacity(1);
        let tok = |i| Tok(i, token.clone());
        for i in 0..4 {
            t.insert(i, tok(i), tok(i));
        }
        assert_eq!(t.remove(1, &tok(1)).map(|v| v.0), Some(1));
        {
            let mut g = t.guard();
            let (root, ti) = t.root(&mut g);
            let slot = root
                .slots
                .iter()
                .find(|s| {
                    let e = untag(s.word.load(Ordering::Acquire));
                    // SAFETY: quiescent, entries live while linked.
                    !e.is_null() && unsafe { (*e).key.0 } == 1
                })
                .expect("key 1's tombstone");
            let w = slot.word.load(Ordering::Acquire);
            // What a sealing copier leaves when a copy-freeze beat its
            // drop-freeze: value SEALED, slot FROZEN (decision: copy).
            // SAFETY: as above.
            // The share bits stay (the table's; the removed `init`'s drop
            // may still be pending).
            let cell = unsafe { &(*untag(w)).value };
            let bits = flags(cell.load(Ordering::Acquire));
            cell.store(tagged(sealed(), bits), Ordering::Release);
            slot.word.store(tagged(w, FROZEN), Ordering::Release);
            root.next
                .store(Table::new(root.slots.len() * 2), Ordering::Release);
            let _ = ti;
            t.help_root(&mut g);
        }
        assert_eq!(t.migrations.load(Ordering::Relaxed), 1);
        assert_eq!(t.get_with(1, &tok(1), |v| v.0), None);
        assert_eq!(t.insert(1, tok(1), tok(11)).map(|v| v.0), None);
        assert_eq!(t.get_with(1, &tok(1), |v| v.0), Some(11));
        assert_eq!(t.len(), 4);
        // Both entries of key 1 are in the root now: the dead one and the
        // new one; only one is live.
        let live_1 = |t: &RawTable<Tok, Tok>| {
            root_words(t)
                .iter()
                .filter(|&&(_, _, w)| {
                    let e = untag(w);
                    // SAFETY: quiescent.
                    unsafe {
                        (*e).key.0 == 1 && untag((*e).value.load(Ordering::Acquire)) != sealed()
                    }
                })
                .count()
        };
        assert_eq!(live_1(&t), 1);
        // The next migration drops the dead entry.
        {
            let mut g = t.guard();
            let (root, _) = t.root(&mut g);
            t.grow(&mut g, root);
        }
        assert_eq!(t.migrations.load(Ordering::Relaxed), 2);
        let keys_1 = root_words(&t)
            .iter()
            // SAFETY: quiescent.
            .filter(|&&(_, _, w)| unsafe { (*untag(w)).key.0 } == 1)
            .count();
        assert_eq!(keys_1, 1, "the dead entry survived a second migration");
        assert_eq!(live_1(&t), 1);
        for i in 0..4 {
            let want = if i == 1 { 11 } else { i };
            assert_eq!(t.get_with(i, &tok(i), |v| v.0), Some(want));
        }
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// Lock-freedom of growth: every chunk handed out, none done (their owners
/// stalled or panicked). A writer that needs a slot must still finish the
/// migration on its own (the sweep) and insert.
#[test]
fn abandoned_chunks_do_not_block_growth() {
    // Under Miri a smaller table (still several chunks: `CHUNK` is 2 there).
    let t: RawTable<u64, u64> = RawTable::with_capacity(if cfg!(miri) { 24 } else { 200 });
    let cap = t.capacity();
    let mut k = 0;
    // Fill to the budget.
    while t.capacity() == cap && k < 10 * cap as u64 {
        {
            let mut g = t.guard();
            let (root, _) = t.root(&mut g);
            // Relaxed: single thread.
            if root.claims.load(Ordering::Relaxed) + 1 >= root.max {
                break;
            }
        }
        t.insert(k, k, k);
        k += 1;
    }
    {
        let mut g = t.guard();
        let (root, _) = t.root(&mut g);
        root.next
            .store(Table::new(root.slots.len() * 2), Ordering::Release);
        // Every chunk handed out to helpers that never come back.
        root.handed.store(root.chunks() + 3, Ordering::Relaxed);
    }
    // New keys: each needs a slot, so it must get the migration done.
    for j in 0..4 {
        assert_eq!(t.insert(k + j, k + j, j), None);
    }
    assert!(t.migrations.load(Ordering::Relaxed) >= 1);
    for i in 0..k {
        assert_eq!(t.get_with(i, &i, |v| *v), Some(i));
    }
    for j in 0..4 {
        assert_eq!(t.get_with(k + j, &(k + j), |v| *v), Some(j));
    }
}

/// Concurrent inserts and removes of a few keys with colliding hashes and
/// fresh-key churn (migrations while writing): afterwards no key has two
/// live entries, `len` counts the live entries, and each key reads back.
#[test]
fn no_key_has_two_live_entries_after_concurrent_churn() {
    // One round under Miri: every key shares one of 4 hashes, so each
    // operation probes the whole cluster (quadratic in the keys).
    for round in 0..if cfg!(miri) { 1 } else { 3u64 } {
        let t: RawTable<u64, u64> = RawTable::with_capacity(1);
        let ops = n(4000) as u64;
        std::thread::scope(|s| {
            for th in 0..4u64 {
                let t = &t;
                s.spawn(move || {
                    let mut x = 0x2545_F491_4F6C_DD1D ^ ((th + 1 + round * 7) * 0x9E37_79B9);
                    for i in 0..ops {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // A few hot keys with 4 hashes, plus fresh keys.
                        let k = if x % 4 == 0 {
                            1000 + i * 4 + th
                        } else {
                            x % 12
                        };
                        let h = k % 4;
                        if (x >> 20) % 3 == 0 {
                            t.remove(h, &k);
                        } else {
                            t.insert(h, k, (th << 32) | i);
                        }
                    }
                });
            }
        });
        assert!(t.migrations.load(Ordering::Relaxed) > 0, "no migration ran");
        let words = root_words(&t);
        let mut live = std::collections::HashMap::new();
        for &(_, _, w) in &words {
            let e = untag(w);
            // SAFETY: quiescent; linked entries are live.
            let (k, v) = unsafe { ((*e).key, untag((*e).value.load(Ordering::Acquire))) };
            if !v.is_null() && v != sealed() {
                *live.entry(k).or_insert(0) += 1;
            }
        }
        for (k, c) in &live {
            assert_eq!(*c, 1, "key {k} has {c} live entries");
            assert!(t.get_with(k % 4, k, |_| ()).is_some());
        }
        assert_eq!(t.len(), live.len(), "len and the live entries disagree");
    }
}

/// Suspicion: `insert` and `remove` clone the old value *before* retiring
/// its box; a panicking `Clone` then leaks the box that was swapped out.
#[test]
fn a_panicking_clone_of_the_old_value_leaks_nothing() {
    struct C(Arc<()>, bool);
    impl Clone for C {
        fn clone(&self) -> Self {
            assert!(!self.1, "clone panics");
            C(self.0.clone(), false)
        }
    }
    let token = Arc::new(());
    {
        let t: RawTable<u64, C> = RawTable::with_capacity(1);
        t.insert(1, 1, C(token.clone(), true));
        t.insert(2, 2, C(token.clone(), true));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.insert(1, 1, C(token.clone(), false)).map(drop)
        }));
        assert!(r.is_err());
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.remove(2, &2).map(drop)));
        assert!(r.is_err());
    }
    assert_eq!(Arc::strong_count(&token), 1, "a swapped-out value leaked");
}

/// The map's `a_panicking_drop_in_the_guard_scan_leaks_no_returned_value`
/// for the table: an operation that retired something scans in its guard's
/// drop; if a value's drop panics there, the clone it was returning must
/// not leak (the map drops its guard before returning for this reason).
#[test]
fn a_panicking_drop_in_the_guard_scan_leaks_no_returned_value() {
    static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    struct Bomb(Arc<()>, bool);
    impl Clone for Bomb {
        fn clone(&self) -> Self {
            Bomb(Arc::clone(&self.0), false)
        }
    }
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.1 && ARMED.load(Ordering::Relaxed) {
                panic!("value drop panics");
            }
        }
    }
    let token = Arc::new(());
    let keys = if cfg!(miri) { 100 } else { 300 };
    {
        let t: RawTable<u64, Bomb> = RawTable::with_capacity(1);
        for k in 0..keys {
            t.insert(k, k, Bomb(token.clone(), true));
        }
        let mut panics = 0;
        for k in 0..keys {
            for op in 0..2 {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
                    0 => t.insert(k, k, Bomb(token.clone(), true)).map(drop),
                    _ => t.remove(k, &k).map(drop),
                }));
                panics += usize::from(r.is_err());
            }
        }
        assert!(panics > 0, "no scan ran a panicking drop");
        ARMED.store(false, Ordering::Relaxed);
    }
    assert_eq!(Arc::strong_count(&token), 1, "a value was leaked");
}
