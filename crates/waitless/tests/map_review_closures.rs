//! Review tests (map12er, wave 6): user closures that run *inside* a map
//! operation (`update`'s `f`, `get_or_insert_with`'s `make`, `retain`'s
//! `keep`) and change the map under it, deterministically: the key is
//! removed, a migration seals and drops its entry while the outer operation
//! still holds hazard pointers on that entry and its value, and then the
//! closure returns or panics. Keys and values carry an `Arc` token, so a
//! leak or a double drop shows in its count (and Miri checks the accesses:
//! `cargo +nightly miri test -p waitless --test map_review_closures`).

#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use waitless::map::LockFreeHashMap;

#[derive(Clone, Debug)]
struct Tok(u64, #[allow(dead_code)] Arc<()>);

impl PartialEq for Tok {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Tok {}
impl std::hash::Hash for Tok {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h);
    }
}

type Map = LockFreeHashMap<Tok, Tok>;

/// Inserts fresh keys until the table has grown (a migration finished).
fn force_a_migration(m: &Map, token: &Arc<()>, fresh: &mut u64) {
    let before = m.buckets();
    while m.buckets() == before {
        m.insert(Tok(*fresh, token.clone()), Tok(*fresh, token.clone()));
        *fresh += 1;
    }
}

/// `update`'s closure removes its own key and forces a migration (which
/// seals and drops the entry `update` is working on), then returns a new
/// value: the CAS fails on the sealed entry, `update` finds the key absent
/// and returns `None`, and the value the closure made is dropped, once.
/// Then the same with a closure that panics after doing that, and with a
/// boxed (not inline) current value.
#[test]
fn update_whose_closure_removes_the_key_and_migrates_returns_none() {
    let token = Arc::new(());
    let t = |i| Tok(i, token.clone());
    {
        let m: Map = LockFreeHashMap::new();
        for k in 0..4 {
            m.insert(t(k), t(k * 10));
        }
        let mut fresh = 1000;
        let mut calls = 0;
        let r = m.update(&t(1), |v| {
            calls += 1;
            assert_eq!(v.0, 10, "called on the value it saw");
            if calls == 1 {
                assert_eq!(m.remove(&t(1)).map(|o| o.0), Some(10));
                force_a_migration(&m, &token, &mut fresh);
                // Still readable: protected by the outer update.
                assert_eq!(v.0, 10);
            }
            t(11)
        });
        assert_eq!(r, None, "the key was removed before update's CAS");
        assert_eq!(calls, 1, "not called again on an absent key");
        assert_eq!(m.get(&t(1)), None);
        // Again, panicking inside the closure after the removal and migration.
        let p = catch_unwind(AssertUnwindSafe(|| {
            m.update(&t(2), |_| {
                assert_eq!(m.remove(&t(2)).map(|o| o.0), Some(20));
                force_a_migration(&m, &token, &mut fresh);
                panic!("update closure panics");
            })
        }));
        assert!(p.is_err());
        assert_eq!(m.get(&t(2)), None);
        // Key 3 with a boxed value (its inline first value replaced, and
        // that drop scanned): now only the outer update's hazard on the
        // entry keeps the dropped entry alive while the closure runs.
        assert_eq!(m.insert(t(3), t(30)).map(|o| o.0), Some(30));
        // Retire enough (replacing key 0's value) for scans to run the
        // pending drop of key 3's inline value.
        for _ in 0..256 {
            assert_eq!(m.insert(t(0), t(0)).map(|o| o.0), Some(0));
        }
        let r = m.update(&t(3), |v| {
            assert_eq!(m.remove(&t(3)).map(|o| o.0), Some(30));
            force_a_migration(&m, &token, &mut fresh);
            assert_eq!(v.0, 30);
            t(31)
        });
        assert_eq!(r, None);
        assert_eq!(m.get(&t(3)), None);
        assert_eq!(m.get(&t(0)).map(|v| v.0), Some(0));
        // The map still works for the keys the closures touched.
        assert_eq!(m.insert(t(1), t(12)), None);
        assert_eq!(m.insert(t(2), t(22)), None);
        assert_eq!(m.update(&t(1), |v| t(v.0 + 1)).map(|o| o.0), Some(12));
        assert_eq!(m.get(&t(1)).map(|v| v.0), Some(13));
        assert_eq!(m.len(), 3 + (fresh - 1000) as usize);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// `get_or_insert_with`'s `make` finds the key absent, and while it runs
/// another insert of the key happens and a migration moves the table: the
/// made value is dropped, the other one is returned and kept. Then a
/// `make` that panics after forcing a migration leaves the key absent.
#[test]
fn get_or_insert_with_whose_make_races_an_insert_and_a_migration() {
    let token = Arc::new(());
    let t = |i| Tok(i, token.clone());
    {
        let m: Map = LockFreeHashMap::new();
        for k in 0..4 {
            m.insert(t(k), t(k * 10));
        }
        assert_eq!(m.remove(&t(1)).map(|o| o.0), Some(10));
        let mut fresh = 1000;
        let v = m.get_or_insert_with(t(1), || {
            // The key's tombstone entry is sealed and dropped here; the
            // key comes back in a new entry of the new table.
            force_a_migration(&m, &token, &mut fresh);
            assert_eq!(m.insert(t(1), t(15)), None);
            t(16)
        });
        assert_eq!(v.0, 15, "the value inserted first wins");
        assert_eq!(m.get(&t(1)).map(|v| v.0), Some(15));
        let p = catch_unwind(AssertUnwindSafe(|| {
            m.get_or_insert_with(t(5), || {
                force_a_migration(&m, &token, &mut fresh);
                panic!("make panics");
            })
        }));
        assert!(p.is_err());
        assert_eq!(m.get(&t(5)), None);
        assert_eq!(m.get_or_insert_with(t(5), || t(55)).0, 55);
    }
    assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
}

/// `retain`'s `keep` removes the key it is looking at and re-inserts it
/// before answering "remove": the value `keep` saw is gone, so the new one
/// is kept (check-and-remove on the value cell). Without a migration the
/// key comes back in its own entry, which the walk has already met, so the
/// new value must survive. With a migration in between, the entry the walk
/// protects is sealed and dropped under it and the key comes back in a new
/// entry, which the walk may meet again (then `keep` removes it): either
/// way no original value is left and nothing leaks.
#[test]
fn retain_keeps_a_value_written_while_keep_ran() {
    for migrate in [false, true] {
        let token = Arc::new(());
        let t = |i| Tok(i, token.clone());
        {
            let m: Map = LockFreeHashMap::new();
            for k in 0..4 {
                m.insert(t(k), t(k * 10));
            }
            let mut fresh = 1000;
            let mut first = None;
            m.retain(|k, v| {
                if first.is_none() && k.0 < 4 {
                    first = Some(k.0);
                    assert_eq!(m.remove(k).map(|o| o.0), Some(v.0));
                    if migrate {
                        force_a_migration(&m, &token, &mut fresh);
                    }
                    assert_eq!(m.insert(k.clone(), t(k.0 * 10 + 1)), None);
                    // The value seen is still readable under the walk's
                    // protection.
                    assert_eq!(v.0, k.0 * 10);
                }
                k.0 >= 4 // remove every original key
            });
            let first = first.expect("keep ran");
            for k in (0..4).filter(|&k| k != first) {
                assert_eq!(m.get(&t(k)), None, "key {k} kept");
            }
            let left = m.get(&t(first)).map(|v| v.0);
            if migrate {
                assert!(
                    left.is_none() || left == Some(first * 10 + 1),
                    "a stale value: {left:?}"
                );
            } else {
                assert_eq!(
                    left,
                    Some(first * 10 + 1),
                    "a value keep never saw was removed"
                );
            }
        }
        assert_eq!(Arc::strong_count(&token), 1, "leaked or double-dropped");
    }
}
