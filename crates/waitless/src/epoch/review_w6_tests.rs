//! Review tests of the wave-6 pin path (issue 13): the pin word's bit 0 as
//! the pinned state, the `nested` count with its `EXITED` flag, the
//! symmetric records' countdown that routes every pin through the fence,
//! the thread-local cache keys, and `Guard`'s auto traits.

use super::*;
use std::sync::atomic::{AtomicUsize as StdUsize, Ordering as O};
use std::sync::Arc as StdArc;

fn counter_closure(c: &StdArc<StdUsize>) -> impl FnOnce() + Send + 'static {
    let c = StdArc::clone(c);
    move || {
        c.fetch_add(1, O::Relaxed);
    }
}

/// `nested` and `pins_left` of `p` (owner-only state: call on the owner).
fn local_of(p: &Participant) -> (usize, usize) {
    // SAFETY: the calling thread owns `p` (the tests below only pass their
    // own guard's record) and holds no reference into `local`.
    p.local.with(|l| unsafe { ((*l).nested, (*l).pins_left) })
}

// `Guard` is neither `Send` nor `Sync`: a `&Guard` shared with another
// thread would let it defer into the owner's bag (owner-only state). Each
// assertion below stops compiling if the trait is implemented (the two
// blanket impls become ambiguous).
const _: () = {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    trait AmbiguousIfSync<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
    let _ = <Guard<'static> as AmbiguousIfSend<_>>::some_item;
    let _ = <Guard<'static> as AmbiguousIfSync<_>>::some_item;
};

/// A symmetric record relies on its countdown staying at 1 for the pin's
/// `SeqCst` fence (`pin_cold` issues it, and only a countdown that reaches
/// zero gets there). After every kind of pin and unpin — outer, nested,
/// out of order, the periodic one, on a record handed back and claimed by
/// another thread — the next outer pin must take that branch.
#[test]
fn every_symmetric_pin_reaches_the_fence() {
    let c = Collector::with_strategy(FenceStrategy::Symmetric);
    let rounds = if cfg!(miri) { 40 } else { 1000 };
    let addr = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..rounds {
                let g = c.pin();
                let p = g.participant();
                assert!(p.is_pinned());
                assert_eq!(local_of(p), (0, 1), "pin {i}: the next pin skips the fence");
                let n = c.pin();
                assert_eq!(local_of(p), (1, 1), "a nested pin touched the countdown");
                if i % 2 == 0 {
                    drop(g); // out of order
                    assert!(
                        p.is_pinned(),
                        "dropping the outer guard unpinned a nested one"
                    );
                    drop(n);
                } else {
                    drop(n);
                    drop(g);
                }
                assert!(!p.is_pinned());
                assert_eq!(local_of(p), (0, 1));
            }
            c.pin().participant() as *const Participant as usize
        })
        .join()
        .unwrap()
    });
    // The record of the exited thread, claimed by another one.
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = c.pin();
            let p = g.participant();
            assert_eq!(p as *const Participant as usize, addr, "record not reused");
            assert_eq!(local_of(p), (0, 1), "a reused record skips the fence");
        });
    });
}

/// A panic with nested guards alive unwinds through both drops and leaves
/// the thread unpinned: `synchronize` (which panics on a pinned thread)
/// then works on the same thread, and what was deferred runs.
#[test]
fn a_panic_with_nested_guards_leaves_the_thread_unpinned() {
    for strategy in [FenceStrategy::Asymmetric, FenceStrategy::Symmetric] {
        let c = Collector::with_strategy(strategy);
        let ran = StdArc::new(StdUsize::new(0));
        let r = StdArc::clone(&ran);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let outer = c.pin();
            let inner = c.pin();
            inner.defer(counter_closure(&r));
            let _keep = (outer, inner);
            panic!("while pinned twice");
        }));
        assert!(caught.is_err());
        let p = local::participant(&c).expect("the cache is alive");
        // SAFETY: `p` is this thread's record in `c`.
        let p = unsafe { &*p };
        assert!(!p.is_pinned(), "the unwinding left the thread pinned");
        assert_eq!(local_of(p).0, 0, "a nested count survived the unwinding");
        c.synchronize();
        assert_eq!(ran.load(O::Relaxed), 1, "{strategy:?}");
    }
}

/// An outer and a nested guard kept in a thread-local destroyed after the
/// collector's cache (the record is orphaned with `nested == 1 | EXITED`),
/// dropped outer first: the record stays pinned until the last guard, is
/// released exactly then, and the next thread reuses it.
#[test]
fn orphaned_nested_guards_release_the_record_at_the_last_drop() {
    static C: std::sync::OnceLock<Collector> = std::sync::OnceLock::new();
    let c: &'static Collector = C.get_or_init(Collector::new);
    struct Hold(
        Option<Guard<'static>>,
        Option<Guard<'static>>,
        StdArc<StdUsize>,
    );
    impl Drop for Hold {
        fn drop(&mut self) {
            // No panic in a thread-local destructor (it aborts): each
            // check that holds sets a bit, the test asserts them all.
            let outer = self.0.take().unwrap();
            let p = outer.participant();
            let mut ok = 0;
            if local_of(p).0 == 1 | internal::EXITED {
                ok |= 1;
            }
            drop(outer);
            // The nested guard still protects: the record is pinned and
            // still owned (not handed back).
            if p.is_pinned() {
                ok |= 2;
            }
            if p.in_use.load(O::Relaxed) {
                ok |= 4;
            }
            drop(self.1.take());
            if !p.is_pinned() {
                ok |= 8;
            }
            self.2.store(ok | 16, O::Relaxed);
        }
    }
    std::thread_local! {
        static HOLDER: core::cell::RefCell<Option<Hold>> = const { core::cell::RefCell::new(None) };
    }
    let dropped = StdArc::new(StdUsize::new(0));
    let d = StdArc::clone(&dropped);
    let first = std::thread::spawn(move || {
        // Registered before the cache: destroyed after it.
        HOLDER.with(|h| assert!(h.borrow().is_none()));
        let outer = c.pin();
        let nested = c.pin();
        let addr = outer.participant() as *const Participant as usize;
        HOLDER.with(|h| *h.borrow_mut() = Some(Hold(Some(outer), Some(nested), d)));
        addr
    })
    .join()
    .unwrap();
    // 16: the destructor ran; 1: the record was orphaned with one nested
    // guard; 2 and 4: the outer drop left it pinned and owned; 8: the last
    // drop unpinned it.
    assert_eq!(dropped.load(O::Relaxed), 31, "see the bits above");
    let second = std::thread::spawn(move || c.pin().participant() as *const Participant as usize)
        .join()
        .unwrap();
    assert_eq!(first, second, "the orphaned record was not handed back");
}

/// Collectors created and dropped in a churn, so that a new collector's
/// token (the cache key) is often allocated where a dropped one's was: a
/// pin must always reach a record of its own collector (a stale cache hit
/// would defer into a freed record: the deferred function is lost, and
/// Miri reports the use after free).
#[test]
fn recycled_collector_addresses_never_hit_a_stale_cache_entry() {
    let rounds = if cfg!(miri) { 12 } else { 300 };
    // (collector, its deferred count, how many it must run)
    let mut keep: Option<(Collector, StdArc<StdUsize>, usize)> = None;
    for i in 0..rounds {
        let c = Collector::new();
        let ran = StdArc::new(StdUsize::new(0));
        c.pin().defer(counter_closure(&ran));
        // Pin an older live collector in between (moves the fast key), then
        // `c` again (the found-entry path points the fast key back at it).
        if let Some((k, k_ran, k_n)) = &mut keep {
            k.pin().defer(counter_closure(k_ran));
            *k_n += 1;
        }
        c.pin().defer(counter_closure(&ran));
        if i % 3 == 0 {
            // `c` is kept for a few rounds; the previously kept one drops.
            if let Some((old, old_ran, n)) = keep.replace((c, ran, 2)) {
                drop(old);
                assert_eq!(old_ran.load(O::Relaxed), n, "round {i}: kept collector");
            }
        } else {
            drop(c);
            assert_eq!(
                ran.load(O::Relaxed),
                2,
                "round {i}: a pin used a stale record"
            );
        }
    }
    if let Some((k, k_ran, n)) = keep.take() {
        drop(k);
        assert_eq!(k_ran.load(O::Relaxed), n);
    }
    assert!(
        local::entries_len() <= 3,
        "dropped collectors were not pruned"
    );
}

/// The sharpest form of the churn above: the fast key names collector `a`
/// (pinned twice: the second pin hits the found-entry path), `a` drops, the
/// next miss (`b`) prunes `a`'s entry and so frees its token, and `c`'s
/// token is then typically allocated at that very address. `c`'s pin must
/// miss (the miss that pruned `a` replaced the fast key) and use a record
/// of `c`.
#[test]
fn a_key_freed_by_pruning_is_never_left_in_the_fast_cache() {
    let rounds = if cfg!(miri) { 6 } else { 200 };
    for i in 0..rounds {
        let a = Collector::new();
        drop(a.pin());
        drop(a.pin());
        drop(a);
        let b = Collector::new();
        let b_ran = StdArc::new(StdUsize::new(0));
        b.pin().defer(counter_closure(&b_ran));
        let c = Collector::new();
        let c_ran = StdArc::new(StdUsize::new(0));
        {
            let g = c.pin();
            g.defer(counter_closure(&c_ran));
            assert!(
                core::ptr::eq(g.collector(), &c) && g.participant().in_use.load(O::Relaxed),
                "round {i}"
            );
        }
        drop(c);
        assert_eq!(
            c_ran.load(O::Relaxed),
            1,
            "round {i}: c's pin used a stale record"
        );
        drop(b);
        assert_eq!(b_ran.load(O::Relaxed), 1, "round {i}");
    }
}
