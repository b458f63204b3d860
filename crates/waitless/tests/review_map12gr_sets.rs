//! Review tests (map12gr, wave 8) for map12g's cached hazard set (2141121):
//! every map operation and pinned view takes slots `0..4` of the thread's
//! cached hazard record through one thread-local read and a mask
//! test-and-set; a set taken while another is alive (nested closures, a
//! second view) falls back to another run of the record or an extra record.
//!
//! The tests check, with drop counting (each tracked value carries an `Arc`
//! token), that:
//! - a value protected through any of those sets is not freed while the set
//!   is alive, and IS freed by a later scan once it drops, whatever order the
//!   sets are dropped in (a slot left non-null or a mask bit left set would
//!   stop reclamation, or hand the next set a dirty slot);
//! - a panic inside a protected region (nested closures, a panicking `Eq`
//!   mid-insert) leaves no protection behind and the fast path usable;
//! - a view kept alive while the thread uses more maps than its record cache
//!   holds (so idle entries are evicted) keeps its protection;
//! - a view kept in a thread-local, dropped before or after the hazard
//!   record cache's own thread-local destructor, clears its slots and gives
//!   its record back (another thread then reuses it).
//!
//! Also under Miri: `cargo +nightly miri test -p waitless --test review_map12gr_sets`.
#![cfg(not(loom))]

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use waitless::map::{LockFreeHashMap, Pinned};

/// Enough replaces for several scans (the map hands its retired values over
/// once per 512 retires of a thread natively, per 2 under Miri).
const ROUNDS: u64 = if cfg!(miri) { 150 } else { 2000 };

/// A value that carries a token and a check word.
#[derive(Clone, Debug)]
struct Val {
    key: u64,
    check: u64,
    _tok: Arc<()>,
}

impl Val {
    fn new(key: u64, tok: &Arc<()>) -> Self {
        Val {
            key,
            check: key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5A5A,
            _tok: tok.clone(),
        }
    }

    fn assert_intact(&self, key: u64) {
        assert_eq!(self.key, key, "value of key {key} holds another key");
        assert_eq!(
            self.check,
            key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5A5A,
            "value of key {key} was overwritten (freed under its reader?)"
        );
    }
}

/// Keys at or above this are used only to drive scans.
const CHURN: u64 = 1000;

/// Replaces the churn keys `ROUNDS` times, retiring that many boxes on this
/// thread, so several hand-overs and scans run.
fn drive_scans(m: &LockFreeHashMap<u64, Val>, churn: &Arc<()>) {
    for i in 0..ROUNDS {
        let k = CHURN + i % 4;
        m.insert(k, Val::new(k, churn));
    }
}

/// Inserts `key` twice (the second value is a separately retired box) with
/// a value holding `tok`.
fn put(m: &LockFreeHashMap<u64, Val>, key: u64, tok: &Arc<()>) {
    m.insert(key, Val::new(key, tok));
    m.insert(key, Val::new(key, tok));
}

/// Sets taken nested (fast path, then another run of the record, then an
/// extra record) and dropped in another order than taken: while alive each
/// protects its value; once all are dropped, every value they protected is
/// freed by later scans, and the fast-path slots protect again.
#[test]
fn nested_views_dropped_out_of_order_protect_then_leave_nothing() {
    let churn = Arc::new(());
    let tracked = Arc::new(());
    let other = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        for k in 0..3 {
            put(&m, k, &tracked);
        }
        let mut v1 = m.pin(); // cached set: slots 0..4 of the cached record
        let mut v2 = m.pin(); // slots 4..8 (slow path)
        let mut v3 = m.pin(); // an extra record
        let a = v1.get(&0).expect("present");
        let b = v2.get(&1).expect("present");
        let c = v3.get(&2).expect("present");
        for k in 0..3 {
            m.insert(k, Val::new(k, &other));
        }
        drive_scans(&m, &churn);
        a.assert_intact(0);
        b.assert_intact(1);
        c.assert_intact(2);
        // One token per original value still in the map's hands (3 values
        // protected by the views; the first, inline ones were replaced
        // before any view existed and may be freed already).
        assert!(
            Arc::strong_count(&tracked) >= 4,
            "a protected value was freed"
        );
        drop(v2);
        drop(v1);
        drop(v3);
        drive_scans(&m, &churn);
        assert_eq!(
            Arc::strong_count(&tracked),
            1,
            "a value protected by a dropped view was never freed: a hazard slot stayed set"
        );

        // The fast-path slots work again after the out-of-order drops.
        let renewed = Arc::new(());
        put(&m, 0, &renewed);
        let mut v = m.pin();
        let held = v.get(&0).expect("present");
        m.insert(0, Val::new(0, &other));
        drive_scans(&m, &churn);
        held.assert_intact(0);
        assert!(
            Arc::strong_count(&renewed) >= 2,
            "the value under a fresh view was freed"
        );
        drop(v);
        drive_scans(&m, &churn);
        assert_eq!(Arc::strong_count(&renewed), 1, "protection leaked");
    }
    assert_eq!(Arc::strong_count(&churn), 1, "a churn value leaked");
    assert_eq!(Arc::strong_count(&other), 1, "a value leaked");
}

/// Three map operations nested in closures (each takes its own set) inside
/// a view: the innermost replaces what the outer ones protect, scans run
/// inside, and nothing protected is freed under its reader.
#[test]
fn nested_closures_protect_their_values_while_inner_sets_scan() {
    let churn = Arc::new(());
    let tracked = Arc::new(());
    let other = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        for k in 0..3 {
            put(&m, k, &tracked);
        }
        let mut view = m.pin();
        let outer = view.get(&0).expect("present");
        let r = m.get_with(&1, |v1| {
            m.get_with(&2, |v2| {
                m.insert(0, Val::new(0, &other));
                m.insert(1, Val::new(1, &other));
                m.insert(2, Val::new(2, &other));
                drive_scans(&m, &churn);
                v1.assert_intact(1);
                v2.assert_intact(2);
                v1.key + v2.key
            })
        });
        assert_eq!(r, Some(Some(3)));
        outer.assert_intact(0);
        drop(view);
        drive_scans(&m, &churn);
        assert_eq!(
            Arc::strong_count(&tracked),
            1,
            "a value protected by a nested set was never freed"
        );
    }
    assert_eq!(Arc::strong_count(&churn), 1);
    assert_eq!(Arc::strong_count(&other), 1);
}

/// A panic inside nested protected regions unwinds through every set's drop:
/// afterwards nothing stays protected.
#[test]
fn a_panic_inside_nested_sets_leaves_no_protection() {
    let churn = Arc::new(());
    let tracked = Arc::new(());
    let other = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        for k in 0..3 {
            put(&m, k, &tracked);
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            m.get_with(&0, |_| {
                m.get_with(&1, |_| {
                    let mut v = m.pin();
                    let _ = v.get(&2);
                    panic!("inside three sets");
                })
            })
        }));
        assert!(r.is_err());
        for k in 0..3 {
            m.insert(k, Val::new(k, &other));
        }
        drive_scans(&m, &churn);
        assert_eq!(
            Arc::strong_count(&tracked),
            1,
            "a value protected when the panic unwound was never freed"
        );
    }
    assert_eq!(Arc::strong_count(&churn), 1);
    assert_eq!(Arc::strong_count(&other), 1);
}

thread_local! {
    static PANIC_EQ: Cell<bool> = const { Cell::new(false) };
}

/// A key whose `Eq` panics on demand and whose hash is constant (every key
/// collides, so an insert compares keys with its hazards published).
#[derive(Clone, Debug)]
struct Key(u64);

impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        if PANIC_EQ.with(Cell::get) {
            panic!("Eq panics");
        }
        self.0 == o.0
    }
}
impl Eq for Key {}
impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        7u8.hash(h);
    }
}

/// An insert whose key comparison panics mid-operation (hazards on the
/// table, the entry and the value published) leaves no slot protected: the
/// values it could have protected are freed by later writes' scans.
#[test]
fn a_panicking_eq_mid_insert_leaves_no_protection() {
    let tracked = Arc::new(());
    let other = Arc::new(());
    {
        let m: LockFreeHashMap<Key, Val> = LockFreeHashMap::new();
        for k in 0..3 {
            m.insert(Key(k), Val::new(k, &tracked));
            m.insert(Key(k), Val::new(k, &tracked));
        }
        for k in 0..3 {
            PANIC_EQ.with(|p| p.set(true));
            let r = catch_unwind(AssertUnwindSafe(|| m.insert(Key(k), Val::new(k, &other))));
            PANIC_EQ.with(|p| p.set(false));
            assert!(r.is_err(), "Eq did not run");
            let r = catch_unwind(AssertUnwindSafe(|| {
                let mut v = m.pin();
                PANIC_EQ.with(|p| p.set(true));
                let _ = v.get(&Key(k));
            }));
            PANIC_EQ.with(|p| p.set(false));
            assert!(r.is_err(), "Eq did not run");
        }
        for k in 0..3 {
            m.insert(Key(k), Val::new(k, &other));
        }
        for i in 0..ROUNDS {
            let k = 10 + i % 3;
            m.insert(Key(k), Val::new(k, &other));
        }
        assert_eq!(
            Arc::strong_count(&tracked),
            1,
            "a value protected when Eq panicked was never freed"
        );
        for k in 0..3 {
            m.get(&Key(k)).expect("present").assert_intact(k);
        }
    }
    assert_eq!(Arc::strong_count(&other), 1);
}

/// A view stays protecting while the thread uses more maps (hazard domains)
/// than its record cache holds, so that idle cache entries are evicted.
#[test]
fn a_view_survives_record_cache_eviction() {
    let churn = Arc::new(());
    let tracked = Arc::new(());
    let other = Arc::new(());
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        put(&m, 0, &tracked);
        let mut view = m.pin();
        let held = view.get(&0).expect("present");
        let maps: Vec<LockFreeHashMap<u64, Val>> =
            (0..12).map(|_| LockFreeHashMap::new()).collect();
        for round in 0..3 {
            for (i, x) in maps.iter().enumerate() {
                let k = i as u64 + round;
                x.insert(k, Val::new(k, &other));
                x.get(&k).expect("present").assert_intact(k);
                let mut xv = x.pin();
                xv.get(&k).expect("present").assert_intact(k);
            }
            m.insert(0, Val::new(0, &other));
            drive_scans(&m, &churn);
            held.assert_intact(0);
        }
        assert!(
            Arc::strong_count(&tracked) >= 2,
            "the viewed value was freed after its record was evicted"
        );
        drop(view);
        drive_scans(&m, &churn);
        assert_eq!(Arc::strong_count(&tracked), 1, "protection leaked");
        drop(maps);
    }
    assert_eq!(Arc::strong_count(&churn), 1);
    assert_eq!(Arc::strong_count(&other), 1);
}

type View = Pinned<'static, u64, Val, std::hash::RandomState>;

/// Holds a view until the thread's thread-local destructors run; the drop
/// reads through it, drops it, and then uses the map again (its record
/// cache may already be gone).
struct Holder {
    map: &'static LockFreeHashMap<u64, Val>,
    view: Option<View>,
    other: Arc<()>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut v) = self.view.take() {
            v.get(&0).expect("present").assert_intact(0);
            drop(v);
            self.map.insert(5, Val::new(5, &self.other));
            let mut again = self.map.pin();
            again.get(&5).expect("present").assert_intact(5);
        }
    }
}

thread_local! {
    static HOLD: RefCell<Option<Holder>> = const { RefCell::new(None) };
}

fn view_in_thread_local(register_holder_first: bool) {
    let churn = Arc::new(());
    let tracked = Arc::new(());
    let other = Arc::new(());
    let raw: *mut LockFreeHashMap<u64, Val> = Box::into_raw(Box::new(LockFreeHashMap::new()));
    // SAFETY: freed at the end, after every thread using it was joined.
    let m: &'static LockFreeHashMap<u64, Val> = unsafe { &*raw };
    put(m, 0, &tracked);
    for _ in 0..2 {
        let other2 = other.clone();
        std::thread::spawn(move || {
            if register_holder_first {
                // `HOLD`'s destructor is registered before the record
                // cache's (first map use below).
                HOLD.with(|h| h.borrow_mut().take());
            } else {
                m.get(&0).expect("present").assert_intact(0);
            }
            let mut view = m.pin();
            view.get(&0).expect("present").assert_intact(0);
            HOLD.with(|h| {
                *h.borrow_mut() = Some(Holder {
                    map: m,
                    view: Some(view),
                    other: other2,
                })
            });
        })
        .join()
        .expect("thread");
    }
    m.insert(0, Val::new(0, &other));
    drive_scans(m, &churn);
    assert_eq!(
        Arc::strong_count(&tracked),
        1,
        "a value protected by a view dropped in a thread-local destructor was never freed"
    );
    // Another thread reuses the released records.
    std::thread::scope(|s| {
        s.spawn(|| {
            put(m, 1, &tracked);
            let mut v = m.pin();
            let held = v.get(&1).expect("present");
            m.insert(1, Val::new(1, &other));
            drive_scans(m, &churn);
            held.assert_intact(1);
        });
    });
    drive_scans(m, &churn);
    m.insert(1, Val::new(1, &other));
    drive_scans(m, &churn);
    assert_eq!(Arc::strong_count(&tracked), 1, "protection leaked");
    // SAFETY: no thread uses `m` any more (all joined).
    drop(unsafe { Box::from_raw(raw) });
    assert_eq!(Arc::strong_count(&churn), 1);
    assert_eq!(Arc::strong_count(&other), 1);
}

#[test]
fn a_view_in_a_thread_local_dropped_after_the_record_cache() {
    view_in_thread_local(true);
}

#[test]
fn a_view_in_a_thread_local_dropped_before_the_record_cache() {
    view_in_thread_local(false);
}

/// The read fast path (`probe` on the cached set, and on a pinned view's
/// set) racing growth (several migrations), replaces and removes: a key
/// present throughout is always found, with an intact value; a key that is
/// never inserted is never found.
#[test]
fn fast_reads_race_growth_replace_and_remove() {
    let tok = Arc::new(());
    let grow: u64 = if cfg!(miri) { 80 } else { 20_000 };
    let reads: u64 = if cfg!(miri) { 30 } else { 20_000 };
    {
        let m: LockFreeHashMap<u64, Val> = LockFreeHashMap::new();
        for k in 0..16 {
            put(&m, k, &tok);
        }
        let before = m.buckets();
        let done = std::sync::atomic::AtomicBool::new(false);
        // The last kept key the grower inserted (0: none yet).
        let last = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for k in 0..grow {
                    let k = CHURN + 16 + k;
                    m.insert(k, Val::new(k, &tok));
                    if k % 3 == 0 {
                        m.remove(&k).expect("present").assert_intact(k);
                    } else {
                        // Release: pairs with the reader's Acquire load, so
                        // the insert happens before the reader's `get`.
                        last.store(k, std::sync::atomic::Ordering::Release);
                    }
                }
                // Release: pairs with the reader's Acquire load (only ends
                // its loop; no data is handed over).
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            s.spawn(|| {
                for i in 0..grow {
                    let k = i % 16;
                    m.insert(k, Val::new(k, &tok))
                        .expect("present")
                        .assert_intact(k);
                }
            });
            let mut view = m.pin();
            let mut i = 0;
            // Reads for as long as the map grows (and at least `reads`).
            while i < reads || !done.load(std::sync::atomic::Ordering::Acquire) {
                let k = i % 16;
                i += 1;
                assert_eq!(
                    m.get_with(&k, |v| {
                        v.assert_intact(k);
                        v.key
                    }),
                    Some(k),
                    "a present key was missed"
                );
                view.get(&k).expect("present in the view").assert_intact(k);
                let kept = last.load(std::sync::atomic::Ordering::Acquire);
                if kept != 0 {
                    assert_eq!(
                        m.get_with(&kept, |v| v.key),
                        Some(kept),
                        "a key inserted before this read (during growth) was missed"
                    );
                    view.get(&kept)
                        .expect("kept key in the view")
                        .assert_intact(kept);
                }
                assert!(m.get_with(&(CHURN - 1 - k), |_| ()).is_none());
                assert!(view.get(&(CHURN - 1 - k)).is_none());
            }
        });
        assert!(m.buckets() > before, "the map grew during the reads");
    }
    assert_eq!(
        Arc::strong_count(&tok),
        1,
        "a value leaked or was dropped twice"
    );
}
