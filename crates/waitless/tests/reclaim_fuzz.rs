//! Property-based fuzzing of the reclamation APIs (`proptest`; cargo-fuzz
//! needs a nightly libFuzzer build that takes longer than this machine's
//! budget allows, and these targets drive the same API surface).
//!
//! - Sequential: random operation sequences on `Rcu`, `Collector` and
//!   `Domain`, each checked step by step against a std model (the current
//!   value; the set of deferred/retired objects not yet run), with every
//!   object's drop counted: run exactly once, never while protected, all
//!   of them by the time the structure drops.
//! - Concurrent: 2–4 threads run random `Rcu` operation lists; the recorded
//!   history must be linearizable (`waitless-check`, register model). And
//!   2–4 threads share a hazard `Domain` (retire, protect, reclaim, exit
//!   with garbage left): each object dropped once, never while protected,
//!   the unreclaimed count within the O(H) bound, all freed by one
//!   `reclaim` after the threads exit.
//!
//! More cases: `PROPTEST_CASES=5000 cargo test --release -p waitless --test reclaim_fuzz`.
// The std runtime drives these threads; loom's atomics panic outside a model.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::Arc;

use proptest::prelude::*;
use waitless::epoch::{Collector, FenceStrategy};
use waitless::hazard::{Domain, HazardPointer};
use waitless::rcu::Rcu;

/// Cases per target: `PROPTEST_CASES` if set, else `default` (the CI run).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// A value that counts its drops.
struct Counted(u64, Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Relaxed);
    }
}

#[derive(Debug, Clone)]
enum RcuOp {
    Replace(u64),
    Update(u64),
    Read,
    ReadNested,
    Synchronize,
}

fn rcu_op() -> impl Strategy<Value = RcuOp> {
    prop_oneof![
        any::<u64>().prop_map(RcuOp::Replace),
        any::<u64>().prop_map(RcuOp::Update),
        Just(RcuOp::Read),
        Just(RcuOp::ReadNested),
        Just(RcuOp::Synchronize),
    ]
}

#[derive(Debug, Clone)]
enum EpochOp {
    Defer,
    DeferNested,
    Flush,
    TryAdvance,
    Synchronize,
    PinMany(u16),
}

fn epoch_op() -> impl Strategy<Value = EpochOp> {
    prop_oneof![
        Just(EpochOp::Defer),
        Just(EpochOp::DeferNested),
        Just(EpochOp::Flush),
        Just(EpochOp::TryAdvance),
        Just(EpochOp::Synchronize),
        (1u16..300).prop_map(EpochOp::PinMany),
    ]
}

#[derive(Debug, Clone)]
enum HazardOp {
    /// Swap a new object into slot `i` and retire the old one.
    Replace(u8),
    /// Protect slot `i` with hazard pointer `h` (keeping the pointer).
    Protect(u8, u8),
    /// Drop hazard pointer `h`.
    Release(u8),
    Reclaim,
}

fn hazard_op() -> impl Strategy<Value = HazardOp> {
    prop_oneof![
        (0u8..4).prop_map(HazardOp::Replace),
        (0u8..4, 0u8..3).prop_map(|(i, h)| HazardOp::Protect(i, h)),
        (0u8..3).prop_map(HazardOp::Release),
        Just(HazardOp::Reclaim),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn rcu_matches_a_model(ops in proptest::collection::vec(rcu_op(), 1..200)) {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut made = 1usize;
        {
            let r = Rcu::new(Counted(0, drops.clone()));
            let mut model = 0u64;
            for op in ops {
                match op {
                    RcuOp::Replace(v) => {
                        r.replace(Counted(v, drops.clone()));
                        made += 1;
                        model = v;
                    }
                    RcuOp::Update(v) => {
                        r.update(|old| {
                            made += 1;
                            Counted(old.0 ^ v, drops.clone())
                        });
                        model ^= v;
                    }
                    RcuOp::Read => prop_assert_eq!(r.read().0, model),
                    RcuOp::ReadNested => {
                        let a = r.read();
                        let b = r.read();
                        prop_assert_eq!(a.0, b.0);
                        prop_assert_eq!(a.0, model);
                    }
                    RcuOp::Synchronize => {
                        r.synchronize();
                        // Single thread: every replaced value is dropped.
                        prop_assert_eq!(drops.load(Relaxed), made - 1);
                        prop_assert_eq!(r.pending(), 0);
                    }
                }
                prop_assert!(drops.load(Relaxed) < made, "the current value was dropped");
            }
        }
        prop_assert_eq!(drops.load(Relaxed), made);
    }

    #[test]
    fn collector_matches_a_model(
        ops in proptest::collection::vec(epoch_op(), 1..150),
        symmetric in any::<bool>(),
    ) {
        let ran = Arc::new(AtomicUsize::new(0));
        let mut deferred = 0usize;
        {
            let c = Collector::with_strategy(if symmetric {
                FenceStrategy::Symmetric
            } else {
                FenceStrategy::Asymmetric
            });
            for op in ops {
                let before = ran.load(Relaxed);
                match op {
                    EpochOp::Defer => {
                        let r = ran.clone();
                        c.pin().defer(move || { r.fetch_add(1, Relaxed); });
                        deferred += 1;
                    }
                    EpochOp::DeferNested => {
                        let g1 = c.pin();
                        let g2 = c.pin();
                        let r = ran.clone();
                        g2.defer(move || { r.fetch_add(1, Relaxed); });
                        deferred += 1;
                        drop(g1);
                        // Still pinned by g2: nothing deferred now may run.
                        let e = c.epoch();
                        c.try_advance();
                        c.try_advance();
                        prop_assert!(c.epoch().wrapping_sub(e) <= 1, "advanced twice while pinned");
                        drop(g2);
                    }
                    EpochOp::Flush => c.flush(),
                    EpochOp::TryAdvance => { c.try_advance(); }
                    EpochOp::Synchronize => {
                        c.synchronize();
                        prop_assert_eq!(ran.load(Relaxed), deferred, "synchronize left work");
                        prop_assert_eq!(c.pending(), 0);
                    }
                    EpochOp::PinMany(n) => {
                        for _ in 0..n { drop(c.pin()); }
                    }
                }
                prop_assert!(ran.load(Relaxed) >= before);
                prop_assert!(ran.load(Relaxed) <= deferred, "ran more than deferred");
                prop_assert_eq!(ran.load(Relaxed) + c.pending(), deferred);
            }
        }
        prop_assert_eq!(ran.load(Relaxed), deferred, "lost at drop");
    }

    #[test]
    fn domain_matches_a_model(ops in proptest::collection::vec(hazard_op(), 1..200)) {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut made = 4usize;
        {
            let domain = Domain::new();
            let slots: Vec<AtomicPtr<Counted>> = (0..4)
                .map(|i| AtomicPtr::new(Box::into_raw(Box::new(Counted(i, drops.clone())))))
                .collect();
            let mut hps: Vec<Option<(HazardPointer<'_>, *mut Counted, u64)>> =
                (0..3).map(|_| None).collect();
            let mut next = 100u64;
            for op in ops {
                match op {
                    HazardOp::Replace(i) => {
                        next += 1;
                        made += 1;
                        let new = Box::into_raw(Box::new(Counted(next, drops.clone())));
                        let old = slots[i as usize].swap(new, AcqRel);
                        // SAFETY: unlinked by the swap, retired once.
                        unsafe { domain.retire_box(old) };
                    }
                    HazardOp::Protect(i, h) => {
                        let mut hp = match hps[h as usize].take() {
                            Some((hp, _, _)) => hp,
                            None => HazardPointer::new_in(&domain),
                        };
                        let p = hp.protect(&slots[i as usize]);
                        // SAFETY: protected.
                        let v = unsafe { (*p).0 };
                        hps[h as usize] = Some((hp, p, v));
                    }
                    HazardOp::Release(h) => hps[h as usize] = None,
                    HazardOp::Reclaim => domain.reclaim(),
                }
                // Every protected object is still alive with its value.
                for (_, p, v) in hps.iter().flatten() {
                    // SAFETY: protected by the hazard pointer beside it.
                    prop_assert_eq!(unsafe { (**p).0 }, *v, "protected object freed");
                }
                prop_assert!(drops.load(Relaxed) + 4 <= made);
            }
            drop(hps);
            domain.reclaim();
            // Single thread, nothing protected: every retired object is freed.
            prop_assert_eq!(domain.pending(), 0);
            prop_assert_eq!(drops.load(Relaxed), made - 4);
            for s in &slots {
                // SAFETY: the current objects are ours.
                unsafe { drop(Box::from_raw(s.load(Relaxed))) };
            }
        }
        prop_assert_eq!(drops.load(Relaxed), made);
    }
}

/// An object that checks, when dropped, that it is dropped once.
struct Canary {
    value: u64,
    alive: std::sync::atomic::AtomicBool,
    drops: Arc<AtomicUsize>,
}

impl Canary {
    fn boxed(value: u64, drops: &Arc<AtomicUsize>) -> *mut Canary {
        Box::into_raw(Box::new(Canary {
            value,
            alive: std::sync::atomic::AtomicBool::new(true),
            drops: drops.clone(),
        }))
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        assert!(self.alive.swap(false, Relaxed), "dropped twice");
        self.drops.fetch_add(1, Relaxed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(16), ..ProptestConfig::default() })]

    /// 2–4 threads share one hazard domain and four slots, running random
    /// lists of replace-and-retire / protect / release / reclaim; a thread
    /// that ends leaves its private garbage in its released record (an
    /// orphan). Every protected object keeps its value and stays alive;
    /// each object is dropped once; once the threads have exited, the
    /// unreclaimed objects are within the domain's O(H) bound and one
    /// `reclaim` frees all of them.
    #[test]
    fn concurrent_domain_frees_each_object_once(
        lists in proptest::collection::vec(proptest::collection::vec(hazard_op(), 1..80), 2..=4),
    ) {
        let drops = Arc::new(AtomicUsize::new(0));
        let made = AtomicUsize::new(4);
        let domain = Domain::new();
        let slots: Vec<AtomicPtr<Canary>> =
            (0..4).map(|i| AtomicPtr::new(Canary::boxed(i, &drops))).collect();
        std::thread::scope(|s| {
            let hs: Vec<_> = lists
                .iter()
                .enumerate()
                .map(|(t, list)| {
                    let (domain, slots, drops, made) = (&domain, &slots, &drops, &made);
                    s.spawn(move || -> Result<(), TestCaseError> {
                        let mut hps: Vec<Option<(HazardPointer<'_>, *mut Canary, u64)>> =
                            (0..3).map(|_| None).collect();
                        for (i, op) in list.iter().enumerate() {
                            match *op {
                                HazardOp::Replace(k) => {
                                    made.fetch_add(1, Relaxed);
                                    let v = ((t as u64 + 1) << 32) | i as u64;
                                    let old = slots[k as usize].swap(Canary::boxed(v, drops), AcqRel);
                                    // SAFETY: unlinked by the swap (only we got it), retired once.
                                    unsafe { domain.retire_box(old) };
                                }
                                HazardOp::Protect(k, h) => {
                                    let mut hp = match hps[h as usize].take() {
                                        Some((hp, _, _)) => hp,
                                        None => HazardPointer::new_in(domain),
                                    };
                                    let p = hp.protect(&slots[k as usize]);
                                    // SAFETY: protected.
                                    let v = unsafe { (*p).value };
                                    hps[h as usize] = Some((hp, p, v));
                                }
                                HazardOp::Release(h) => hps[h as usize] = None,
                                HazardOp::Reclaim => domain.reclaim(),
                            }
                            for (_, p, v) in hps.iter().flatten() {
                                // SAFETY: protected by the hazard pointer beside it.
                                let (now, alive) = unsafe { ((**p).value, (**p).alive.load(Relaxed)) };
                                prop_assert!(alive, "a protected object was dropped");
                                prop_assert_eq!(now, *v, "a protected object changed");
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            // Explicit joins: the threads have exited (records released,
            // thread-local destructors included) before we measure.
            for h in hs {
                h.join().unwrap()?;
            }
            Ok::<(), TestCaseError>(())
        })?;
        let retired = made.load(Relaxed) - 4;
        let h = 8 * domain.records();
        prop_assert_eq!(drops.load(Relaxed) + domain.pending(), retired);
        prop_assert!(
            domain.pending() <= 64.max(2 * h) + 4 * h,
            "{} unreclaimed with {} hazard slots", domain.pending(), h
        );
        domain.reclaim();
        prop_assert_eq!(domain.pending(), 0);
        prop_assert_eq!(drops.load(Relaxed), retired, "reclaim after the threads exited left garbage");
        for s in &slots {
            // SAFETY: the current objects are ours.
            unsafe { drop(Box::from_raw(s.load(Relaxed))) };
        }
        drop(domain);
        prop_assert_eq!(drops.load(Relaxed), made.load(Relaxed));
    }

    /// 2–4 threads, random operation lists on one `Rcu`; the history is
    /// linearizable as a register.
    #[test]
    fn concurrent_rcu_histories_are_linearizable(
        lists in proptest::collection::vec(proptest::collection::vec(0u8..4, 1..60), 2..=4),
    ) {
        use waitless_check::{check, Recorder, RegisterModel, RegisterOp, RegisterRet};
        let r = Rcu::new(0u64);
        let rec: Recorder<RegisterOp<u64>, RegisterRet<u64>> = Recorder::new();
        std::thread::scope(|s| {
            for (t, list) in lists.iter().enumerate() {
                let (r, rec) = (&r, &rec);
                s.spawn(move || {
                    let mut log = rec.thread();
                    for (i, op) in list.iter().enumerate() {
                        let v = ((t as u64 + 1) << 32) | i as u64;
                        match op {
                            0 => {
                                log.op(RegisterOp::Write(v), || {
                                    r.replace(v);
                                    RegisterRet::Written
                                });
                            }
                            1 => {
                                log.op(RegisterOp::Write(v), || {
                                    r.update(|_| v);
                                    RegisterRet::Written
                                });
                            }
                            2 => r.synchronize(),
                            _ => {
                                log.op(RegisterOp::Read, || RegisterRet::Read(*r.read()));
                            }
                        }
                    }
                });
            }
        });
        prop_assert!(check(&RegisterModel::new(0u64), &rec.into_history()).is_ok());
    }
}
