//! The behaviours that papaya's `tests/basic.rs` and dashmap's unit tests
//! (`src/lib.rs`, `mod tests`) pin down for a concurrent hash map, checked
//! against [`LockFreeHashMap`]. Written for waitless; each test names the
//! peer test that inspired it.
//!
//! A difference on purpose: `update` returns the value it *replaced* (our
//! documented contract, like `insert`), where papaya's `update` returns the
//! new one; the tests check ours.

// The structures run on loom's atomics under `--cfg loom`, which work only
// inside `loom::model`: these tests are for the real build.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use waitless::map::LockFreeHashMap;

// Inspired by papaya `basic.rs::new`/`default` and dashmap `test_default`.
#[test]
fn constructors_make_empty_maps() {
    let a: LockFreeHashMap<u32, u32> = LockFreeHashMap::new();
    let b: LockFreeHashMap<u32, u32> = LockFreeHashMap::default();
    let c: LockFreeHashMap<u32, u32> = LockFreeHashMap::with_capacity(1_000);
    let d: LockFreeHashMap<u32, u32, BuildHasherDefault<DefaultHasher>> =
        LockFreeHashMap::with_hasher(BuildHasherDefault::default());
    let e: LockFreeHashMap<u32, u32, std::hash::RandomState> =
        LockFreeHashMap::with_capacity_and_hasher(0, std::hash::RandomState::new());
    for m in [&a, &b, &c] {
        assert!(m.is_empty());
        assert_eq!(m.len(), 0);
        assert_eq!(m.insert(42, 0), None);
        assert_eq!(m.get(&42), Some(0));
    }
    for i in 0..100 {
        d.insert(i, i);
        e.insert(i, i);
    }
    for i in 0..100 {
        assert_eq!(d.get(&i), Some(i));
        assert_eq!(e.get(&i), Some(i));
    }
}

// Inspired by papaya `basic.rs::get_empty`, `get_key_value_empty`,
// `remove_empty` and `update_empty`.
#[test]
fn an_empty_map_answers_none_and_calls_nothing() {
    let m: LockFreeHashMap<u32, u32> = LockFreeHashMap::new();
    assert_eq!(m.get(&42), None);
    assert_eq!(m.get_key_value(&42), None);
    assert_eq!(m.remove(&42), None);
    assert!(!m.contains_key(&42));
    assert_eq!(m.get_with(&42, |_| unreachable!("absent")), None::<()>);
    assert_eq!(m.update(&42, |_| unreachable!("absent: not called")), None);
    assert_eq!(m.get(&42), None, "update of an absent key inserts nothing");
    assert!(m.is_empty());
    assert_eq!(m.iter().count(), 0);
    assert_eq!(m.pin().get(&42), None);
}

// Inspired by papaya `basic.rs::insert_and_remove`, `insert_and_get`,
// `insert_and_get_key_value` and `reinsert`.
#[test]
fn insert_get_reinsert_remove() {
    let m = LockFreeHashMap::new();
    assert_eq!(m.insert(42, 0), None);
    assert_eq!(m.get(&42), Some(0));
    assert_eq!(m.get_key_value(&42), Some((42, 0)));
    assert_eq!(m.pin().get(&42), Some(&0));
    assert_eq!(m.insert(42, 1), Some(0));
    assert_eq!(m.get(&42), Some(1));
    assert_eq!(m.len(), 1);
    assert_eq!(m.remove(&42), Some(1));
    assert_eq!(m.get(&42), None);
    assert_eq!(m.remove(&42), None);
    assert!(m.is_empty());
}

// Inspired by papaya `basic.rs::update` and `mixed`.
#[test]
fn update_replaces_atomically_and_returns_the_old_value() {
    let m = LockFreeHashMap::new();
    m.insert(42, 0);
    assert_eq!(m.update(&42, |v| v + 1), Some(0));
    assert_eq!(m.len(), 1);
    assert_eq!(m.get(&42), Some(1));

    for i in 0..100 {
        assert_eq!(m.insert(i, i + 1), if i == 42 { Some(1) } else { None });
    }
    for i in 0..100 {
        assert_eq!(m.update(&i, |v| v - 1), Some(i + 1));
        assert_eq!(m.get(&i), Some(i));
    }
    for i in 0..100 {
        assert_eq!(m.remove(&i), Some(i));
        assert_eq!(m.get(&i), None);
    }
    assert!(m.is_empty());
}

// Inspired by papaya `basic.rs::get_or_insert_with` and `try_insert_with`
// (the closure is not called for a present key).
#[test]
fn get_or_insert_with_runs_the_closure_only_for_an_absent_key() {
    let m = LockFreeHashMap::new();
    let mut calls = 0;
    assert_eq!(
        m.get_or_insert_with(42, || {
            calls += 1;
            0
        }),
        0
    );
    assert_eq!(m.len(), 1);
    assert_eq!(
        m.get_or_insert_with(42, || {
            calls += 1;
            1
        }),
        0
    );
    assert_eq!(calls, 1);
    assert_eq!(m.get(&42), Some(0));
    assert_eq!(m.len(), 1);
}

// Inspired by crossbeam-skiplist `map.rs::get_or_insert_with_panic` and
// papaya's panic-safety of user closures: a panic in user code leaves the
// map unchanged and usable.
#[test]
fn panicking_user_closures_change_nothing() {
    let m = LockFreeHashMap::new();
    m.insert(1, 10);
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.get_or_insert_with(2, || panic!("make"))
    }));
    assert!(r.is_err());
    assert_eq!(m.get(&2), None);
    let r = catch_unwind(AssertUnwindSafe(|| m.update(&1, |_| panic!("f"))));
    assert!(r.is_err());
    assert_eq!(m.get(&1), Some(10));
    let r = catch_unwind(AssertUnwindSafe(|| {
        m.get_with(&1, |_| -> () { panic!("read") })
    }));
    assert!(r.is_err());
    let r = catch_unwind(AssertUnwindSafe(|| m.retain(|_, _| panic!("keep?"))));
    assert!(r.is_err());
    assert_eq!(m.len(), 1);
    assert_eq!(m.insert(2, 20), None);
    assert_eq!(m.update(&1, |v| v + 1), Some(10));
    assert_eq!(m.get(&1), Some(11));
}

// Inspired by papaya `basic.rs::concurrent_insert`: two threads insert the
// same keys with different values; every key ends with one of them.
#[test]
fn concurrent_inserts_of_the_same_keys() {
    let n = if cfg!(miri) { 32 } else { 4_096 };
    let m = LockFreeHashMap::new();
    std::thread::scope(|s| {
        for t in 0..2usize {
            let m = &m;
            s.spawn(move || {
                for i in 0..n {
                    m.insert(i, t);
                }
            });
        }
    });
    assert_eq!(m.len(), n);
    for i in 0..n {
        let v = m.get(&i).expect("present");
        assert!(v == 0 || v == 1);
        assert_eq!(m.get_key_value(&i), Some((i, v)));
    }
}

// Inspired by papaya `basic.rs::concurrent_remove`: each key is removed by
// exactly one thread, with the value it held.
#[test]
fn concurrent_removes_succeed_once() {
    let n = if cfg!(miri) { 32 } else { 4_096 };
    let m: LockFreeHashMap<usize, usize> = (0..n).map(|i| (i, i)).collect();
    let wins: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let m = &m;
                s.spawn(move || {
                    (0..n)
                        .filter(|i| match m.remove(i) {
                            Some(v) => {
                                assert_eq!(v, *i);
                                true
                            }
                            None => false,
                        })
                        .count()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().sum::<usize>(), n);
    assert!(m.is_empty());
    for i in 0..n {
        assert_eq!(m.get(&i), None);
    }
}

// Inspired by papaya `basic.rs::concurrent_update`: no update is lost.
#[test]
fn concurrent_updates_lose_nothing() {
    let n = if cfg!(miri) { 16 } else { 2_048 };
    let m: LockFreeHashMap<usize, usize> = (0..n).map(|i| (i, i)).collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..n {
                    let old = m.update(&i, |v| v + 1).expect("present");
                    assert!(old == i || old == i + 1);
                }
            });
        }
    });
    for i in 0..n {
        assert_eq!(m.get(&i), Some(i + 2));
    }
}

// Inspired by papaya `basic.rs::concurrent_resize_and_get`: keys inserted
// before growth are found by readers throughout the resizes.
#[test]
fn readers_find_old_keys_while_the_map_grows() {
    let old = if cfg!(miri) { 16 } else { 1_000 };
    let grow = if cfg!(miri) { 64 } else { 50_000 };
    let m: LockFreeHashMap<usize, usize> = LockFreeHashMap::with_capacity(1);
    for i in 0..old {
        m.insert(i, i);
    }
    let start = m.buckets();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in old..grow {
                m.insert(i, i);
            }
        });
        s.spawn(|| {
            for _ in 0..if cfg!(miri) { 2 } else { 20 } {
                for i in 0..old {
                    assert_eq!(m.get(&i), Some(i));
                }
                std::thread::yield_now();
            }
        });
    });
    assert!(m.buckets() > start, "the map grew");
    assert_eq!(m.len(), grow);
    for i in 0..grow {
        assert_eq!(m.get(&i), Some(i));
    }
}

// Inspired by papaya `basic.rs::current_kv_dropped`: after the map is
// dropped, it holds no key or value — current, replaced or removed.
#[test]
fn dropping_the_map_releases_every_key_and_value() {
    let key = Arc::new(0usize);
    let val = Arc::new(0usize);
    {
        let m = LockFreeHashMap::new();
        m.insert(Arc::clone(&key), Arc::clone(&val));
        assert_eq!(Arc::strong_count(&key), 2);
        assert_eq!(Arc::strong_count(&val), 2);
        drop(m);
        assert_eq!(Arc::strong_count(&key), 1);
        assert_eq!(Arc::strong_count(&val), 1);
    }
    let n = if cfg!(miri) { 20 } else { 2_000 };
    {
        let m = LockFreeHashMap::new();
        for i in 0..n {
            m.insert((i, Arc::clone(&key)), Arc::clone(&val));
        }
        for i in (0..n).step_by(3) {
            assert!(m.insert((i, Arc::clone(&key)), Arc::clone(&val)).is_some());
        }
        for i in (0..n).step_by(2) {
            assert!(m.remove(&(i, Arc::clone(&key))).is_some());
        }
        assert!(m.update(&(1, Arc::clone(&key)), Arc::clone).is_some());
    }
    assert_eq!(Arc::strong_count(&key), 1, "a key was leaked");
    assert_eq!(Arc::strong_count(&val), 1, "a value was leaked");
}

// Inspired by papaya `basic.rs::empty_maps_equal`,
// `different_size_maps_not_equal`, `same_values_equal`,
// `different_values_not_equal` and dashmap `test_equal`.
#[test]
fn equality_compares_contents() {
    let a: LockFreeHashMap<u32, u32> = LockFreeHashMap::new();
    let b: LockFreeHashMap<u32, u32> = LockFreeHashMap::with_capacity(64);
    assert_eq!(a, b);
    a.insert(1, 1);
    assert_ne!(a, b);
    assert_ne!(b, a);
    b.insert(1, 2);
    assert_ne!(a, b, "same keys, different values");
    b.insert(1, 1);
    assert_eq!(a, b);
    b.insert(2, 2);
    assert_ne!(a, b, "a subset is not equal");
    assert_ne!(b, a);
    a.insert(2, 2);
    assert_eq!(a, b);
    assert_eq!(b, a);
}

// Inspired by papaya `basic.rs::clone_map_empty` and `clone_map_filled`.
#[test]
fn a_clone_is_equal_and_independent() {
    let m: LockFreeHashMap<u32, u32> = LockFreeHashMap::new();
    let c = m.clone();
    assert_eq!(c.len(), 0);
    assert_eq!(m, c);
    for i in 0..100 {
        m.insert(i, i * 2);
    }
    let c = m.clone();
    assert_eq!(c.len(), m.len());
    assert_eq!(m, c);
    c.insert(1000, 1);
    m.insert(0, 7);
    assert_ne!(m, c);
    assert_eq!(m.get(&1000), None);
    assert_eq!(c.get(&0), Some(0));
}

// Inspired by papaya `basic.rs::debug`.
#[test]
fn debug_prints_the_entries() {
    let m = LockFreeHashMap::new();
    m.insert(42, 0);
    m.insert(16, 8);
    let s = format!("{m:?}");
    assert!(s == "{42: 0, 16: 8}" || s == "{16: 8, 42: 0}", "{s}");
}

// Inspired by papaya `basic.rs::extend`, `extend_ref`, `from_iter_empty`
// and `from_iter_repeated`.
#[test]
fn extend_and_from_iter() {
    let mut m = LockFreeHashMap::new();
    m.extend((0..50).map(|i| (i, i)));
    (&m).extend((50..100).map(|i| (i, i)));
    let mut got: Vec<(u32, u32)> = m.iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).map(|i| (i, i)).collect::<Vec<_>>());

    let empty: LockFreeHashMap<u32, u32> = std::iter::empty().collect();
    assert_eq!(empty.len(), 0);

    let repeated: LockFreeHashMap<u32, u32> = (0..4).map(|i| (0, i)).collect();
    assert_eq!(repeated.len(), 1);
    assert_eq!(repeated.iter().collect::<Vec<_>>(), [(0, 3)]);
}

// Inspired by papaya `basic.rs::len` and `iter`: without writers, iteration
// yields every entry once, and len agrees.
#[test]
fn len_and_iteration_agree() {
    let n = if cfg!(miri) { 64 } else { 5_000 };
    let m = LockFreeHashMap::new();
    for i in 0..n {
        assert_eq!(m.insert(i, i + 1), None);
        if i % 97 == 0 {
            assert_eq!(m.len(), i + 1);
        }
    }
    assert_eq!(m.len(), n);
    let mut got: Vec<(usize, usize)> = (&m).into_iter().collect();
    got.sort_unstable();
    assert_eq!(got, (0..n).map(|i| (i, i + 1)).collect::<Vec<_>>());
    let mut ks: Vec<usize> = m.keys().collect();
    ks.sort_unstable();
    assert_eq!(ks, (0..n).collect::<Vec<_>>());
    assert_eq!(m.values().sum::<usize>(), (1..=n).sum::<usize>());
}

// Inspired by papaya `basic.rs::retain_empty`, `retain_all_false`,
// `retain_all_true`, `retain_some` and `clear`.
#[test]
fn retain_and_clear() {
    let empty: LockFreeHashMap<u32, u32> = LockFreeHashMap::new();
    empty.retain(|_, _| false);
    assert_eq!(empty.len(), 0);

    let fill = || -> LockFreeHashMap<u32, u32> { (0..100).map(|i| (i, i)).collect() };
    let m = fill();
    m.retain(|_, _| false);
    assert_eq!(m.len(), 0);
    let m = fill();
    m.retain(|_, _| true);
    assert_eq!(m.len(), 100);
    let m = fill();
    m.retain(|&k, _| k < 5);
    assert_eq!(m.len(), 5);
    let mut kept: Vec<u32> = m.keys().collect();
    kept.sort_unstable();
    assert_eq!(kept, [0, 1, 2, 3, 4]);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.iter().count(), 0);
    m.insert(9, 9);
    assert_eq!(m.len(), 1);
}

// Inspired by dashmap `test_more_complex_values` and `test_map_view`
// (owned `String` keys looked up by `&str`, heap values).
#[test]
fn borrowed_keys_and_complex_values() {
    let m: LockFreeHashMap<String, Vec<String>> = LockFreeHashMap::new();
    for i in 0..50u32 {
        m.insert(format!("k{i}"), vec![i.to_string(); 3]);
    }
    assert_eq!(m.get("k7"), Some(vec!["7".to_owned(); 3]));
    assert!(m.contains_key("k49"));
    assert!(!m.contains_key("k50"));
    assert_eq!(m.get_with("k3", Vec::len), Some(3));
    let mut view = m.pin();
    assert_eq!(view.get("k1").map(|v| v[0].as_str()), Some("1"));
    assert!(view.contains_key("k2"));
    drop(view);
    assert_eq!(m.remove("k7").map(|v| v.len()), Some(3));
    assert_eq!(m.get("k7"), None);
}

/// A hasher that sends every key to the same bucket.
#[derive(Default, Clone)]
struct Collide;
impl Hasher for Collide {
    fn finish(&self) -> u64 {
        7
    }
    fn write(&mut self, _: &[u8]) {}
}
impl BuildHasher for Collide {
    type Hasher = Self;
    fn build_hasher(&self) -> Self {
        Self
    }
}

// Inspired by dashmap `test_multiple_hashes` and papaya's collision
// handling: with every hash equal, the map is still a map.
#[test]
fn every_key_colliding() {
    let n = if cfg!(miri) { 16 } else { 300 };
    let m: LockFreeHashMap<u32, u32, Collide> = LockFreeHashMap::with_hasher(Collide);
    let mut model = HashMap::new();
    for i in 0..n {
        assert_eq!(m.insert(i % 200, i), model.insert(i % 200, i));
    }
    for i in (0..n).step_by(3) {
        assert_eq!(m.remove(&i), model.remove(&i));
    }
    assert_eq!(m.len(), model.len());
    for i in 0..n {
        assert_eq!(m.get(&i), model.get(&i).copied());
    }
}

// Inspired by rtrb `lib.rs::zero_sized_type`: zero-sized keys and values.
#[test]
fn zero_sized_keys_and_values() {
    let m: LockFreeHashMap<(), ()> = LockFreeHashMap::new();
    assert_eq!(m.insert((), ()), None);
    assert_eq!(m.insert((), ()), Some(()));
    assert_eq!(m.len(), 1);
    assert_eq!(m.get(&()), Some(()));
    assert_eq!(m.remove(&()), Some(()));
    assert!(m.is_empty());
}

// Inspired by papaya's and dashmap's `Send + Sync` maps shared by threads.
#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LockFreeHashMap<String, Vec<u8>>>();
    send_sync::<LockFreeHashMap<u64, (), Collide>>();
}

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
impl std::hash::Hash for Tagged {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.k.hash(h);
    }
}

// Inspired by papaya's `insert` contract (its docs and std's "insert and
// complex keys": the key is not updated) — a replace, an update and a
// `get_or_insert_with` of a present key keep the key object first stored.
#[test]
fn replacing_a_value_keeps_the_stored_key() {
    let m = LockFreeHashMap::new();
    m.insert(Tagged { k: 1, tag: "first" }, 1);
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
    let (k, v) = m.get_key_value(&Tagged { k: 1, tag: "query" }).unwrap();
    assert_eq!((k.tag, v), ("first", 2));
    assert_eq!(
        m.update(
            &Tagged {
                k: 1,
                tag: "update"
            },
            |v| v + 1
        ),
        Some(2)
    );
    assert_eq!(m.get_or_insert_with(Tagged { k: 1, tag: "other" }, || 9), 3);
    let all: Vec<(&str, u32)> = m.iter().map(|(k, v)| (k.tag, v)).collect();
    assert_eq!(all, [("first", 3)]);
}
