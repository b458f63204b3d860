use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize as StdUsize, Ordering as O};
use std::sync::Arc as StdArc;

fn counter_closure(c: &StdArc<StdUsize>) -> impl FnOnce() + Send + 'static {
    let c = StdArc::clone(c);
    move || {
        c.fetch_add(1, O::Relaxed);
    }
}

#[test]
fn pin_is_reentrant_and_unpins_on_last_drop() {
    let c = Collector::new();
    let g1 = c.pin();
    let g2 = c.pin();
    let p = g1.participant();
    assert_eq!(p.epoch.load(O::Relaxed) & 1, 1);
    drop(g1);
    assert_eq!(p.epoch.load(O::Relaxed) & 1, 1, "still pinned by g2");
    drop(g2);
    let g3 = c.pin();
    assert_eq!(g3.participant().epoch.load(O::Relaxed) & 1, 1);
    drop(g3);
}

#[test]
fn deferred_runs_only_after_two_advances() {
    let c = Collector::new();
    let ran = StdArc::new(StdUsize::new(0));
    let e0 = c.epoch();
    {
        let g = c.pin();
        g.defer(counter_closure(&ran));
    }
    assert_eq!(c.pending(), 1);
    c.flush();
    assert_eq!(ran.load(O::Relaxed), 0, "not run before two advances");
    // Advance until collected: must take at least two advances past the seal.
    let mut steps = 0;
    while ran.load(O::Relaxed) == 0 {
        c.try_advance();
        steps += 1;
        assert!(steps < 10, "garbage never collected");
    }
    assert!(c.epoch().wrapping_sub(e0) >= 2);
    assert_eq!(c.pending(), 0);
}

#[test]
fn a_pinned_thread_blocks_reclamation() {
    let c = Collector::new();
    let ran = StdArc::new(StdUsize::new(0));
    let pinned = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _g = c.pin();
            pinned.store(true, O::Release);
            while !release.load(O::Acquire) {
                std::thread::yield_now();
            }
        });
        while !pinned.load(O::Acquire) {
            std::thread::yield_now();
        }
        {
            let g = c.pin();
            g.defer(counter_closure(&ran));
            g.flush();
        }
        for _ in 0..10 {
            c.try_advance();
        }
        assert_eq!(ran.load(O::Relaxed), 0, "freed while a thread was pinned");
        assert_eq!(c.pending(), 1);
        release.store(true, O::Release);
    });
    for _ in 0..3 {
        c.try_advance();
    }
    assert_eq!(ran.load(O::Relaxed), 1);
}

#[test]
fn dropping_the_collector_runs_everything() {
    let ran = StdArc::new(StdUsize::new(0));
    let n = 3 * deferred::BAG_CAP + 1;
    {
        let c = Collector::new();
        let g = c.pin();
        for _ in 0..n {
            g.defer(counter_closure(&ran));
        }
        drop(g);
        assert!(c.pending() <= n);
    }
    assert_eq!(ran.load(O::Relaxed), n);
    assert_eq!(StdArc::strong_count(&ran), 1);
}

#[test]
fn exiting_thread_hands_its_bag_over_and_its_record_is_reused() {
    let c = Collector::new();
    let ran = StdArc::new(StdUsize::new(0));
    let first = std::thread::scope(|s| {
        s.spawn(|| {
            let g = c.pin();
            g.defer(counter_closure(&ran));
            g.participant() as *const Participant as usize
        })
        .join()
        .unwrap()
    });
    // The exited thread's garbage was sealed into the global list.
    assert_eq!(c.pending(), 1);
    let second = std::thread::scope(|s| {
        s.spawn(|| c.pin().participant() as *const Participant as usize)
            .join()
            .unwrap()
    });
    assert_eq!(first, second, "the record of the exited thread is reused");
    for _ in 0..4 {
        c.try_advance();
    }
    assert_eq!(ran.load(O::Relaxed), 1);
}

#[test]
fn collector_dropped_while_a_thread_caches_it() {
    // This thread caches many collectors that are dropped; a new collector
    // (possibly at a reused address) must get its own record.
    for _ in 0..50 {
        let c = Collector::new();
        let g = c.pin();
        g.defer(|| ());
        drop(g);
        drop(c);
    }
    let c = Collector::new();
    let g = c.pin();
    assert_eq!(c.pending(), 0);
    assert_ne!(g.participant().epoch.load(O::Relaxed), 0, "pinned");
    drop(g);
    // The cache was pruned: it does not grow with dropped collectors.
    let len = local_entries_len();
    assert!(len <= 2, "thread-local cache kept {len} entries");
}

fn local_entries_len() -> usize {
    local::entries_len()
}

#[test]
fn many_threads_defer_and_everything_runs_exactly_once() {
    let ran = StdArc::new(StdUsize::new(0));
    let threads = 4;
    let per = if cfg!(miri) { 20 } else { 5000 };
    {
        let c = Collector::new();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for i in 0..per {
                        let g = c.pin();
                        g.defer(counter_closure(&ran));
                        if i % 7 == 0 {
                            drop(g);
                            c.try_advance();
                        }
                    }
                });
            }
        });
        assert!(c.pending() <= threads * per);
    }
    assert_eq!(ran.load(O::Relaxed), threads * per);
}

#[test]
fn defer_destroy_frees_boxes() {
    struct D(StdArc<StdUsize>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.fetch_add(1, O::Relaxed);
        }
    }
    let drops = StdArc::new(StdUsize::new(0));
    {
        let c = Collector::new();
        let g = c.pin();
        for _ in 0..10 {
            let p = Box::into_raw(Box::new(D(StdArc::clone(&drops))));
            // SAFETY: fresh box, never shared, `D: Send`.
            unsafe { g.defer_destroy(p) };
        }
    }
    assert_eq!(drops.load(O::Relaxed), 10);
}

#[test]
fn default_collector_pins() {
    let g = pin();
    let g2 = pin();
    assert!(core::ptr::eq(g.collector(), default_collector()));
    drop(g2);
    drop(g);
}

#[test]
fn pin_from_a_thread_local_destructor_is_sound() {
    struct PinOnDrop(&'static Collector, StdArc<StdUsize>);
    impl Drop for PinOnDrop {
        fn drop(&mut self) {
            let g = self.0.pin();
            g.defer(counter_closure(&self.1));
        }
    }
    std::thread_local! {
        static LATE: core::cell::RefCell<Option<PinOnDrop>> = const { core::cell::RefCell::new(None) };
    }
    // A `'static` collector of this test only (a static, so Miri's leak
    // check sees it as reachable).
    static C: std::sync::OnceLock<Collector> = std::sync::OnceLock::new();
    let c: &'static Collector = C.get_or_init(Collector::new);
    let ran = StdArc::new(StdUsize::new(0));
    let r2 = StdArc::clone(&ran);
    std::thread::spawn(move || {
        let _ = c.pin();
        LATE.with(|l| *l.borrow_mut() = Some(PinOnDrop(c, r2)));
    })
    .join()
    .unwrap();
    for _ in 0..4 {
        c.try_advance();
    }
    // Whichever destructor ran first, the deferred function is not lost.
    assert!(c.pending() + ran.load(O::Relaxed) == 1);
}
