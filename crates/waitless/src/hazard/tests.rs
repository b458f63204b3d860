use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Arc;

/// An object that counts its drops and poisons itself when dropped.
struct Tracked {
    value: u64,
    alive: AtomicBool,
    drops: Arc<AtomicUsize>,
}

impl Tracked {
    fn boxed(value: u64, drops: &Arc<AtomicUsize>) -> *mut Tracked {
        Box::into_raw(Box::new(Tracked {
            value,
            alive: AtomicBool::new(true),
            drops: Arc::clone(drops),
        }))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(self.alive.swap(false, Relaxed), "double drop");
        self.drops.fetch_add(1, Relaxed);
    }
}

fn strategies() -> [FenceStrategy; 2] {
    [FenceStrategy::Asymmetric, FenceStrategy::Symmetric]
}

#[test]
fn symmetric_is_honoured_and_asymmetric_is_reported() {
    assert_eq!(
        Domain::with_strategy(FenceStrategy::Symmetric).strategy(),
        FenceStrategy::Symmetric
    );
    let asym = Domain::with_strategy(FenceStrategy::Asymmetric).strategy();
    if cfg!(any(miri, not(target_os = "linux"))) {
        assert_eq!(asym, FenceStrategy::Symmetric);
    }
}

#[test]
fn protected_object_survives_scans_and_is_freed_after_release() {
    for s in strategies() {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::with_strategy(s);
        let src = std::sync::atomic::AtomicPtr::new(Tracked::boxed(1, &drops));
        let mut hp = HazardPointer::new_in(&domain);
        let p = hp.protect(&src);
        let old = src.swap(Tracked::boxed(2, &drops), AcqRel);
        assert_eq!(old, p);
        // SAFETY: unlinked by the swap, retired once.
        unsafe { domain.retire_box(old) };
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 0, "protected object was freed");
        // SAFETY: still protected by `hp`.
        assert_eq!(unsafe { (*p).value }, 1);
        // SAFETY: still protected by `hp`.
        assert!(unsafe { (*p).alive.load(Relaxed) });
        drop(hp);
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 1);
        assert_eq!(domain.pending(), 0);
        // SAFETY: never shared beyond this test.
        unsafe { drop(Box::from_raw(src.load(Relaxed))) };
        assert_eq!(drops.load(Relaxed), 2);
    }
}

#[test]
fn dropping_the_domain_frees_everything_retired() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let n = 10;
    std::thread::scope(|s| {
        for t in 0..2 {
            let (domain, drops) = (&domain, &drops);
            s.spawn(move || {
                for i in 0..n {
                    // SAFETY: fresh box, never shared, retired once.
                    unsafe { domain.retire_box(Tracked::boxed(t * 100 + i, drops)) };
                }
            });
        }
    });
    // Fewer than the threshold: nothing scanned yet (threshold >= 2*slots).
    assert!(drops.load(Relaxed) + domain.pending() == 2 * n as usize);
    drop(domain);
    assert_eq!(drops.load(Relaxed), 2 * n as usize);
}

#[test]
fn unreclaimed_objects_stay_bounded() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let n = if cfg!(miri) { 100 } else { 10_000 };
    let mut max_pending = 0;
    for i in 0..n {
        // SAFETY: fresh box, never shared, retired once.
        unsafe { domain.retire_box(Tracked::boxed(i, &drops)) };
        max_pending = max_pending.max(domain.pending());
    }
    let bound = 64.max(2 * 8 * domain.records()) + 8;
    assert!(max_pending <= bound, "{max_pending} > {bound}");
    assert!(drops.load(Relaxed) >= n as usize - bound);
    drop(domain);
    assert_eq!(drops.load(Relaxed), n as usize);
}

#[test]
fn more_hazard_pointers_than_slots_take_extra_records() {
    let domain = Domain::new();
    let values: Vec<_> = (0..20u64)
        .map(|i| std::sync::atomic::AtomicPtr::new(Box::into_raw(Box::new(i))))
        .collect();
    {
        let mut hps: Vec<_> = (0..20).map(|_| HazardPointer::new_in(&domain)).collect();
        assert!(domain.records() >= 3, "20 slots need 3 records of 8");
        let ps: Vec<_> = hps
            .iter_mut()
            .zip(&values)
            .map(|(h, v)| h.protect(v))
            .collect();
        for (i, p) in ps.into_iter().enumerate() {
            let old = values[i].swap(core::ptr::null_mut(), AcqRel);
            assert_eq!(old, p);
            // SAFETY: unlinked, retired once.
            unsafe { domain.retire_box(old) };
        }
        domain.reclaim();
        assert_eq!(domain.pending(), 20, "all 20 are protected");
    }
    domain.reclaim();
    assert_eq!(domain.pending(), 0);
    // Records are reused, not multiplied.
    let before = domain.records();
    for _ in 0..100 {
        let _hps: Vec<_> = (0..20).map(|_| HazardPointer::new_in(&domain)).collect();
    }
    assert_eq!(domain.records(), before);
}

#[test]
fn a_panicking_deleter_loses_nothing_else() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    unsafe fn boom(p: *mut Tracked) {
        // SAFETY: from Box::into_raw in this test.
        drop(unsafe { Box::from_raw(p) });
        panic!("deleter panics");
    }
    // SAFETY: fresh box, retired once; `boom` frees it.
    unsafe { domain.retire(Tracked::boxed(0, &drops), boom) };
    for i in 1..5 {
        // SAFETY: fresh boxes, retired once.
        unsafe { domain.retire_box(Tracked::boxed(i, &drops)) };
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| domain.reclaim()));
    assert!(r.is_err());
    domain.reclaim();
    drop(domain);
    assert_eq!(drops.load(Relaxed), 5);
}

#[test]
fn records_are_released_and_reused_when_threads_exit() {
    let domain = Domain::new();
    for _ in 0..4 {
        std::thread::scope(|s| {
            // An explicit join waits for the OS thread to exit, after its
            // thread-local destructors (the scope's implicit join does not).
            s.spawn(|| {
                let mut hp = HazardPointer::new_in(&domain);
                hp.publish(&domain as *const Domain as *mut Domain);
            })
            .join()
            .unwrap();
        });
    }
    assert_eq!(
        domain.records(),
        1,
        "each exiting thread released its record"
    );
}

/// Readers protect and read while writers swap and retire; every object is
/// dropped exactly once and no reader ever sees a dropped one.
fn stress(strategy: FenceStrategy) {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::with_strategy(strategy);
    let src = std::sync::atomic::AtomicPtr::new(Tracked::boxed(0, &drops));
    let iters = if cfg!(miri) { 50 } else { 20_000 };
    let created = AtomicUsize::new(1);
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (domain, src, drops, created) = (&domain, &src, &drops, &created);
            s.spawn(move || {
                for i in 0..iters {
                    let new = Tracked::boxed(w << 32 | i, drops);
                    created.fetch_add(1, Relaxed);
                    let old = src.swap(new, AcqRel);
                    // SAFETY: unlinked by the swap (only this thread got it), retired once.
                    unsafe { domain.retire_box(old) };
                }
            });
        }
        for _ in 0..2 {
            let (domain, src) = (&domain, &src);
            s.spawn(move || {
                let mut hp = HazardPointer::new_in(domain);
                for _ in 0..iters {
                    let p = hp.protect(src);
                    // SAFETY: protected.
                    assert!(unsafe { (*p).alive.load(Relaxed) }, "use after free");
                }
            });
        }
    });
    // SAFETY: all threads joined; the last object is still linked.
    unsafe { drop(Box::from_raw(src.load(Relaxed))) };
    drop(domain);
    assert_eq!(drops.load(Relaxed), created.load(Relaxed));
}

#[test]
fn stress_asymmetric() {
    stress(FenceStrategy::Asymmetric);
}

#[test]
fn stress_symmetric() {
    stress(FenceStrategy::Symmetric);
}

#[test]
fn global_domain_works() {
    let v = std::sync::atomic::AtomicPtr::new(Box::into_raw(Box::new(5u32)));
    let mut hp = HazardPointer::new();
    // SAFETY: protected; freed below by us only.
    assert_eq!(unsafe { *hp.protect(&v) }, 5);
    hp.reset_protection();
    // SAFETY: unlinked below, retired once.
    unsafe { Domain::global().retire_box(v.swap(core::ptr::null_mut(), AcqRel)) };
}

// ---------------------------------------------------------------------
// Regression tests of issue 14 (each failed on the code before the fix).
// ---------------------------------------------------------------------

/// Defect 2: objects retired by threads that exited must be freed by the
/// next scan of any thread (they used to stay in the released record until
/// a thread reused that very record).
#[test]
fn garbage_of_exited_threads_is_adopted_by_the_next_scan() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let threads = 6;
    let per = 5;
    let ready = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (domain, drops, ready) = (&domain, &drops, &ready);
                s.spawn(move || {
                    // All alive at once: each takes its own record.
                    ready.wait();
                    for i in 0..per {
                        // SAFETY: fresh box, never shared, retired once.
                        unsafe { domain.retire_box(Tracked::boxed((t * 100 + i) as u64, drops)) };
                    }
                    ready.wait();
                })
            })
            .collect();
        // Explicit joins wait for the threads' exit, thread-local
        // destructors included (the scope's implicit join does not).
        for h in hs {
            h.join().unwrap();
        }
    });
    // Below every threshold: nothing freed yet; the threads have exited.
    assert_eq!(drops.load(Relaxed), 0);
    assert_eq!(domain.pending(), threads * per);
    domain.reclaim();
    assert_eq!(
        drops.load(Relaxed),
        threads * per,
        "garbage left by exited threads was not reclaimed by the next scan"
    );
    assert_eq!(domain.pending(), 0);
}

/// Defect 2, the trigger: a thread that keeps retiring scans (and adopts
/// the orphans) once its own list plus the domain-wide orphan count reach
/// the threshold, so orphaned garbage does not wait for an explicit
/// `reclaim` or for a thread that reuses that very record.
#[test]
fn orphans_count_towards_the_scan_trigger() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let exited = std::sync::Barrier::new(2);
    let (go, gone) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        // Two threads alive at once: two records. The first retires fewer
        // objects than the threshold and exits; the second then retires
        // until its list plus the orphans reach the threshold.
        let first = s.spawn(|| {
            let _hp = HazardPointer::new_in(&domain); // takes our record
            go.wait();
            let t = domain.threshold();
            for i in 0..t - 1 {
                // SAFETY: fresh box, never shared, retired once.
                unsafe { domain.retire_box(Tracked::boxed(i as u64, &drops)) };
            }
            t - 1
        });
        let second = s.spawn(|| {
            let _hp = HazardPointer::new_in(&domain); // takes our record
            go.wait();
            gone.wait();
            exited.wait();
            // Fewer than the threshold: the old code never scanned here.
            let t = domain.threshold();
            for i in 0..t - 1 {
                // SAFETY: fresh box, retired once.
                unsafe { domain.retire_box(Tracked::boxed(1000 + i as u64, &drops)) };
            }
            t - 1
        });
        gone.wait();
        let n1 = first.join().unwrap(); // exited, destructors included
        assert_eq!(drops.load(Relaxed), 0);
        exited.wait();
        let n2 = second.join().unwrap();
        assert!(
            drops.load(Relaxed) >= n1,
            "the exited thread's {n1} objects were not adopted by the other thread's \
             retires ({} freed after {n2} retires)",
            drops.load(Relaxed)
        );
    });
    drop(domain);
}

/// Defect 2, the bound: with `R` threads alive at once, each retiring, the
/// objects not yet freed in the whole domain stay O(H), `H` the domain's
/// hazard slots: at most the threshold `max(64, 2H)`, plus fewer than `2H`
/// in the records' private lists, plus at most `2H` handed over by threads
/// racing past the trigger. Before, each record scanned only its own list
/// at a per-record threshold of `max(64, 2H)`, so `R` live records held up
/// to `R * (2H - 1)`, about `16 R^2` objects: here 4,080 for 16 threads
/// against a bound of 768.
#[test]
fn unreclaimed_objects_are_bounded_by_the_hazard_slots_not_the_records_squared() {
    let threads = if cfg!(miri) { 4 } else { 16 };
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let slots = super::domain::SLOTS;
    // One fewer than the old per-record threshold (2 * slots * R for these
    // R): the old code never scanned.
    let per = 2 * slots * threads - 1;
    let (ready, done, measured) = (
        std::sync::Barrier::new(threads + 1),
        std::sync::Barrier::new(threads + 1),
        std::sync::Barrier::new(threads + 1),
    );
    std::thread::scope(|s| {
        for t in 0..threads {
            let (domain, drops) = (&domain, &drops);
            let (ready, done, measured) = (&ready, &done, &measured);
            s.spawn(move || {
                let _hp = HazardPointer::new_in(domain); // our own record
                ready.wait(); // all records exist before anyone retires
                for i in 0..per {
                    // SAFETY: fresh box, never shared, retired once.
                    unsafe { domain.retire_box(Tracked::boxed((t * 10_000 + i) as u64, drops)) };
                }
                done.wait();
                measured.wait(); // stay alive (and keep the record) until measured
            });
        }
        ready.wait();
        done.wait();
        let (records, unreclaimed, pending) = (
            domain.records(),
            threads * per - drops.load(Relaxed),
            domain.pending(),
        );
        // Let the threads go before asserting (a failed assertion here must
        // not leave them waiting, or the scope would never end).
        measured.wait();
        assert_eq!(records, threads, "one record per live thread");
        let h = slots * records;
        let bound = 64.max(2 * h) + 4 * h;
        assert_eq!(unreclaimed, pending);
        assert!(
            unreclaimed <= bound,
            "{unreclaimed} objects unreclaimed with {records} live records \
             ({h} hazard slots): more than the O(H) bound {bound}"
        );
    });
    drop(domain);
    assert_eq!(drops.load(Relaxed), threads * per);
}

/// Defect 3: when `membarrier` fails after registration, a scan must free
/// nothing that round and count it — not panic (it used to panic from a
/// `HazardPointer` drop or a map operation, after the operation took effect).
#[test]
fn a_failing_membarrier_skips_freeing_instead_of_panicking() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    if domain.strategy() != FenceStrategy::Asymmetric {
        return; // no membarrier here (Miri, non-Linux, TSan build)
    }
    let before = membarrier_failures();
    // SAFETY: fresh box, retired once.
    unsafe { domain.retire_box(Tracked::boxed(1, &drops)) };
    fence::INJECT_FAILURES.with(|n| n.set(1));
    domain.reclaim();
    assert_eq!(drops.load(Relaxed), 0, "freed without a working barrier");
    assert_eq!(domain.skipped_scans(), 1);
    assert!(membarrier_failures() > before);
    domain.reclaim();
    assert_eq!(drops.load(Relaxed), 1, "the next scan frees it");
}

/// Same for the epoch collector: an advance whose barrier failed is
/// skipped, and nothing is freed on its strength.
#[test]
fn a_failing_membarrier_skips_the_epoch_advance() {
    let c = crate::epoch::Collector::new();
    if c.strategy() != FenceStrategy::Asymmetric {
        return;
    }
    let e = c.epoch();
    fence::INJECT_FAILURES.with(|n| n.set(1));
    assert_eq!(c.try_advance(), e, "advanced without a working barrier");
    assert_eq!(c.try_advance(), e + 1);
}

/// Found by the soak test: dropping a domain whose retired lists hold a
/// panicking deleter must still free everything else.
#[test]
fn dropping_a_domain_with_a_panicking_deleter_frees_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    unsafe fn boom(p: *mut Tracked) {
        // SAFETY: from Box::into_raw in this test.
        drop(unsafe { Box::from_raw(p) });
        panic!("deleter panics at drop");
    }
    // SAFETY: fresh box, retired once.
    unsafe { domain.retire_box(Tracked::boxed(1, &drops)) };
    // SAFETY: fresh box, retired once; `boom` frees it.
    unsafe { domain.retire(Tracked::boxed(2, &drops), boom) };
    // SAFETY: fresh box, retired once.
    unsafe { domain.retire_box(Tracked::boxed(3, &drops)) };
    std::thread::scope(|s| {
        s.spawn(|| {
            let _hp = HazardPointer::new_in(&domain); // another record
                                                      // SAFETY: fresh box, retired once.
            unsafe { domain.retire_box(Tracked::boxed(4, &drops)) };
        })
        .join()
        .unwrap();
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(domain)));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(
        drops.load(Relaxed),
        4,
        "objects after the panicking one leaked"
    );
}

/// Makes `domain`'s record this thread's cached, last-used one (so that
/// `CachedSet::try_new` finds it).
fn use_domain(domain: &Domain) {
    drop(HazardPointer::new_in(domain));
}

#[test]
fn a_cached_set_protects_and_gives_its_slots_back() {
    for s in strategies() {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::with_strategy(s);
        use_domain(&domain);
        let src = std::sync::atomic::AtomicPtr::new(Tracked::boxed(1, &drops));
        let set = CachedSet::<4>::try_new(&domain).expect("the cached set is free");
        let m = set.members();
        let first = m.slots;
        let p = if m.asymmetric() {
            m.protect_as::<true, _>(1, &src)
        } else {
            m.protect_as::<false, _>(1, &src)
        };
        let old = src.swap(Tracked::boxed(2, &drops), AcqRel);
        assert_eq!(old, p);
        // SAFETY: unlinked by the swap, retired once.
        unsafe { domain.retire_box(old) };
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 0, "protected object was freed");
        // SAFETY: still protected by member 1 of `set`.
        assert!(unsafe { (*p).alive.load(Relaxed) });
        drop(set);
        domain.reclaim();
        assert_eq!(drops.load(Relaxed), 1, "the set's drop cleared its slots");
        // The same slots again, with no new record.
        let records = domain.records();
        let again = CachedSet::<4>::try_new(&domain).expect("given back");
        assert_eq!(again.members().slots, first);
        drop(again);
        assert_eq!(domain.records(), records);
        // SAFETY: never shared beyond this test.
        unsafe { drop(Box::from_raw(src.load(Relaxed))) };
    }
}

#[test]
fn a_nested_cached_set_falls_back_to_the_per_call_path() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    use_domain(&domain);
    let a = std::sync::atomic::AtomicPtr::new(Tracked::boxed(1, &drops));
    let b = std::sync::atomic::AtomicPtr::new(Tracked::boxed(2, &drops));
    let outer = CachedSet::<4>::try_new(&domain).expect("free");
    let om = outer.members();
    let pa = if om.asymmetric() {
        om.protect_as::<true, _>(0, &a)
    } else {
        om.protect_as::<false, _>(0, &a)
    };
    // A nested operation (or a signal handler's) finds the slots taken ...
    assert!(CachedSet::<4>::try_new(&domain).is_none());
    // ... and takes other slots, leaving the outer hazard in place.
    let mut inner = HazardSet::<4>::new_in(&domain);
    let pb = inner.protect(0, &b);
    assert_ne!(inner.members().slots, om.slots);
    for (src, v) in [(&a, 10), (&b, 20)] {
        let old = src.swap(Tracked::boxed(v, &drops), AcqRel);
        // SAFETY: unlinked by the swap, retired once.
        unsafe { domain.retire_box(old) };
    }
    domain.reclaim();
    assert_eq!(drops.load(Relaxed), 0, "both protected");
    // SAFETY: protected by `outer` and `inner`.
    assert!(unsafe { (*pa).alive.load(Relaxed) && (*pb).alive.load(Relaxed) });
    drop(inner);
    domain.reclaim();
    assert_eq!(drops.load(Relaxed), 1, "only the inner one freed");
    // SAFETY: still protected by `outer`.
    assert!(unsafe { (*pa).alive.load(Relaxed) });
    drop(outer);
    domain.reclaim();
    assert_eq!(drops.load(Relaxed), 2);
    assert!(CachedSet::<4>::try_new(&domain).is_some(), "free again");
    for src in [&a, &b] {
        // SAFETY: never shared beyond this test.
        unsafe { drop(Box::from_raw(src.load(Relaxed))) };
    }
}

#[test]
fn a_panic_gives_the_cached_set_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    use_domain(&domain);
    let src = std::sync::atomic::AtomicPtr::new(Tracked::boxed(1, &drops));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let set = CachedSet::<4>::try_new(&domain).expect("free");
        let m = set.members();
        let _ = if m.asymmetric() {
            m.protect_as::<true, _>(3, &src)
        } else {
            m.protect_as::<false, _>(3, &src)
        };
        panic!("in an operation");
    }));
    assert!(r.is_err());
    let old = src.swap(Tracked::boxed(2, &drops), AcqRel);
    // SAFETY: unlinked by the swap, retired once.
    unsafe { domain.retire_box(old) };
    domain.reclaim();
    assert_eq!(
        drops.load(Relaxed),
        1,
        "the unwound set's hazard was cleared"
    );
    assert!(CachedSet::<4>::try_new(&domain).is_some(), "given back");
    // SAFETY: never shared beyond this test.
    unsafe { drop(Box::from_raw(src.load(Relaxed))) };
}

#[test]
fn exiting_threads_give_their_cached_sets_back() {
    let domain = Domain::new();
    for _ in 0..8 {
        std::thread::scope(|s| {
            s.spawn(|| {
                use_domain(&domain);
                let set = CachedSet::<4>::try_new(&domain).expect("free");
                drop(set);
                let _held = CachedSet::<4>::try_new(&domain).expect("free again");
                // The thread exits holding nothing else; its record goes
                // back to the domain with its cache.
            });
        });
    }
    assert!(
        domain.records() <= 2,
        "records reused: {}",
        domain.records()
    );
}
