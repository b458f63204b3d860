use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize as StdUsize, Ordering as O};
use std::sync::Arc as StdArc;

/// Tracks which values were dropped: every id at most once.
struct Ledger {
    created: StdUsize,
    dropped: Vec<AtomicBool>,
}

impl Ledger {
    fn new(cap: usize) -> StdArc<Self> {
        StdArc::new(Self {
            created: StdUsize::new(0),
            dropped: (0..cap).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    fn value(self: &StdArc<Self>, n: u64) -> Tracked {
        let id = self.created.fetch_add(1, O::Relaxed);
        assert!(id < self.dropped.len(), "ledger too small");
        Tracked {
            id,
            n,
            check: !n,
            ledger: StdArc::clone(self),
        }
    }

    fn dropped(&self, id: usize) -> bool {
        self.dropped[id].load(O::Acquire)
    }

    fn dropped_count(&self) -> usize {
        self.dropped.iter().filter(|d| d.load(O::Acquire)).count()
    }

    fn created(&self) -> usize {
        self.created.load(O::Relaxed)
    }
}

struct Tracked {
    id: usize,
    n: u64,
    /// Always `!n` while alive; a torn or freed value breaks it.
    check: u64,
    ledger: StdArc<Ledger>,
}

impl Tracked {
    fn assert_intact(&self) {
        assert_eq!(self.check, !self.n, "torn or freed value");
        assert!(!self.ledger.dropped(self.id), "value used after drop");
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.assert_intact();
        self.check = 0;
        let was = self.ledger.dropped[self.id].swap(true, O::AcqRel);
        assert!(!was, "value {} dropped twice", self.id);
    }
}

#[test]
fn read_replace_update_roundtrip() {
    let r = Rcu::new(1u64);
    assert_eq!(*r.read(), 1);
    r.replace(2);
    assert_eq!(*r.read(), 2);
    r.update(|v| v * 10);
    assert_eq!(*r.read(), 20);
    assert_eq!(format!("{:?}", r.read()), "20");
    assert_eq!(format!("{}", r.read()), "20");
    assert!(format!("{r:?}").contains("value: 20"));
    let d: Rcu<u64> = Rcu::default();
    assert_eq!(*d.read(), 0);
    let f = Rcu::from(String::from("x"));
    assert_eq!(&*f.read(), "x");
}

#[test]
fn every_value_dropped_exactly_once_when_the_cell_drops() {
    let n = if cfg!(miri) { 20 } else { 1000 };
    let ledger = Ledger::new(n + 1);
    {
        let r = Rcu::new(ledger.value(0));
        for i in 1..=n as u64 {
            if i % 2 == 0 {
                r.replace(ledger.value(i));
            } else {
                r.update(|v| {
                    v.assert_intact();
                    ledger.value(v.n + 1)
                });
            }
        }
        assert_eq!(r.read().n, n as u64);
        assert!(!ledger.dropped(n), "the current value is alive");
    }
    assert_eq!(ledger.created(), n + 1);
    assert_eq!(ledger.dropped_count(), n + 1, "leak");
}

#[test]
fn synchronize_drops_what_this_thread_replaced() {
    let ledger = Ledger::new(4);
    let r = Rcu::new(ledger.value(0));
    r.replace(ledger.value(1));
    r.replace(ledger.value(2));
    // The writes' own background work may already have run a grace period
    // (it does under Miri, where it runs every second pin).
    assert_eq!(r.pending() + ledger.dropped_count(), 2);
    assert!(!ledger.dropped(1) || ledger.dropped(0));
    // No other thread collects here, so this thread's synchronize runs them.
    r.synchronize();
    assert_eq!(r.pending(), 0);
    assert!(ledger.dropped(0) && ledger.dropped(1) && !ledger.dropped(2));
    drop(r);
    assert_eq!(ledger.dropped_count(), 3);
}

#[test]
fn a_guard_keeps_its_value_alive_across_replacements() {
    let n = if cfg!(miri) { 12 } else { 300 };
    let ledger = Ledger::new(n + 1);
    let r = Rcu::new(ledger.value(0));
    let g = r.read();
    for i in 1..=n as u64 {
        r.replace(ledger.value(i));
        // Nested pins on this thread are fine.
        assert_eq!(r.read().n, i);
    }
    r.collector.flush();
    for _ in 0..4 {
        r.collector.try_advance();
    }
    g.assert_intact();
    assert_eq!(g.n, 0);
    assert!(!ledger.dropped(0), "freed while a guard held it");
    assert_eq!(ledger.dropped_count(), 0, "nothing dropped while pinned");
    assert_eq!(r.pending(), n);
    drop(g);
    r.synchronize();
    assert_eq!(
        ledger.dropped_count(),
        n,
        "all old values dropped after synchronize"
    );
    drop(r);
    assert_eq!(ledger.dropped_count(), n + 1);
}

#[test]
#[should_panic(expected = "it would wait for itself forever")]
fn synchronize_while_holding_a_guard_panics() {
    let r = Rcu::new(0u8);
    let _g = r.read();
    r.synchronize();
}

#[test]
#[should_panic(expected = "it would wait for itself forever")]
fn synchronize_inside_update_panics() {
    let r = Rcu::new(0u8);
    r.update(|v| {
        r.synchronize();
        *v
    });
}

#[test]
fn synchronize_waits_for_a_reader_of_an_old_value() {
    let r = Rcu::new(0u64);
    let pinned = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    let reader_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let g = r.read();
            pinned.store(true, O::Release);
            while !release.load(O::Acquire) {
                std::thread::yield_now();
            }
            assert_eq!(*g, 0);
            reader_done.store(true, O::Release);
            drop(g);
        });
        while !pinned.load(O::Acquire) {
            std::thread::yield_now();
        }
        r.replace(1);
        s.spawn(|| {
            r.synchronize();
            assert!(
                reader_done.load(O::Acquire),
                "synchronize returned while a reader of the old value was pinned"
            );
        });
        // Let the synchronizer spin for a while first (not needed for the
        // assertion, which holds whatever the schedule).
        for _ in 0..100 {
            std::thread::yield_now();
        }
        release.store(true, O::Release);
    });
    assert_eq!(*r.read(), 1);
}

#[test]
fn concurrent_updates_lose_nothing() {
    let threads = 4;
    let per = if cfg!(miri) { 10 } else { 2000 };
    let r = Rcu::new(0u64);
    let calls = StdUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    r.update(|v| {
                        calls.fetch_add(1, O::Relaxed);
                        v + 1
                    });
                }
            });
        }
    });
    assert_eq!(*r.read(), (threads * per) as u64);
    assert!(calls.load(O::Relaxed) >= threads * per);
}

#[test]
fn a_panicking_update_closure_publishes_nothing_and_leaks_nothing() {
    let ledger = Ledger::new(2);
    {
        let r = Rcu::new(ledger.value(7));
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.update(|_| panic!("closure failed"));
        }));
        assert!(res.is_err());
        assert_eq!(r.read().n, 7);
        // The thread's pin was released by unwinding: synchronize works.
        r.synchronize();
    }
    assert_eq!(ledger.dropped_count(), 1);
}

#[test]
fn values_may_borrow_from_the_stack() {
    let text = String::from("borrowed");
    let r: Rcu<&str> = Rcu::new(&text[..3]);
    r.update(|s| &text[..s.len() + 1]);
    assert_eq!(*r.read(), "borr");
}

#[test]
fn the_cell_can_move_to_another_thread() {
    let ledger = Ledger::new(3);
    let r = Rcu::new(ledger.value(0));
    r.replace(ledger.value(1));
    let l2 = StdArc::clone(&ledger);
    std::thread::spawn(move || {
        r.replace(l2.value(2));
        assert_eq!(r.read().n, 2);
    })
    .join()
    .unwrap();
    assert_eq!(ledger.dropped_count(), 3);
}

#[test]
fn readers_and_writers_on_threads_see_intact_values() {
    let writes = if cfg!(miri) { 8 } else { 2000 };
    // `update` may run its closure again after a lost race, and every run
    // creates a value. A writer's CAS fails only after the other writer's
    // CAS succeeded since its read, so each writer runs its closure at most
    // `writes` (own successes) + `writes` (the other's successes) times.
    let ledger = Ledger::new(2 * 2 * writes + 1);
    let r = Rcu::new(ledger.value(0));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut last = 0;
                // Under Miri a reader stops after a few reads, so that the
                // spinning readers do not starve the interpreted writers.
                let mut budget = if cfg!(miri) { 30 } else { usize::MAX };
                while !stop.load(O::Acquire) && budget > 0 {
                    budget -= 1;
                    let g = r.read();
                    g.assert_intact();
                    assert!(g.n >= last, "went back in time: {} after {last}", g.n);
                    last = g.n;
                }
            });
        }
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..writes {
                        r.update(|v| ledger.value(v.n + 1));
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, O::Release);
    });
    assert_eq!(r.read().n, 2 * writes as u64);
    drop(r);
    assert_eq!(ledger.dropped_count(), ledger.created());
}

#[test]
fn send_sync_bounds() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Rcu<u64>>();
    send_sync::<Rcu<String>>();
    send::<Rcu<std::cell::Cell<u8>>>();
}

// ---------------------------------------------------------------------
// Regression tests of issue 14 (each failed on the code before the fix).
// ---------------------------------------------------------------------

struct PanicOnDrop(u32);
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if self.0 == 0 {
            panic!("T::drop panics");
        }
    }
}

/// Defect 1 with the input: an `Rcu<T>` whose `T::drop` panics
/// (for the first value only), replaced (40 times, so that a bag fills even
/// on the old code, which sealed only full bags), then reads until a read's
/// background collection drops the old value and panics. The reading thread
/// must not stay pinned: `synchronize` on another thread finishes.
#[test]
fn a_panicking_drop_run_by_a_read_does_not_pin_the_reader_forever() {
    let r = StdArc::new(Rcu::new(PanicOnDrop(0)));
    let mut panicked = false;
    for i in 1..=40 {
        // In the symmetric mode (Miri, TSan) a write's own collection may
        // run the panicking drop already.
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.replace(PanicOnDrop(i))));
        panicked |= res.is_err();
    }
    // Forced background advances are paced by time (at most one per
    // millisecond per collector), so the bound is generous; the loop ends as
    // soon as the value is dropped (a few milliseconds).
    for _ in 0..if cfg!(miri) { 64 } else { 200_000_000 } {
        if panicked {
            break;
        }
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(r.read()))).is_err() {
            panicked = true;
        }
    }
    assert!(panicked, "the old value's drop never ran");
    let r2 = StdArc::clone(&r);
    crate::epoch::tests::within(60, "Rcu::synchronize after a panicking drop", move || {
        r2.synchronize();
    });
}

/// Defect 6: an `Rcu` written rarely must not keep old values alive until
/// a bag of 30 fills: a single replacement is dropped once readers have
/// moved on (here by this thread's own reads).
#[test]
fn a_rarely_written_rcu_drops_its_old_value() {
    let ledger = Ledger::new(2);
    let r = Rcu::new(ledger.value(0));
    r.replace(ledger.value(1));
    // Forced background advances are paced by time (at most one per
    // millisecond per collector), so the bound is generous; the loop ends as
    // soon as the value is dropped (a few milliseconds).
    for _ in 0..if cfg!(miri) { 64 } else { 200_000_000 } {
        drop(r.read());
        if ledger.dropped(0) {
            break;
        }
    }
    assert!(
        ledger.dropped(0),
        "the replaced value is still alive after many reads (pending: {})",
        r.pending()
    );
}

/// Hostile input: an `update` closure that panics on a later attempt (after
/// losing a race) leaks nothing and publishes nothing; the cell keeps
/// working.
#[test]
fn a_panicking_update_under_contention_leaks_nothing() {
    let n = if cfg!(miri) { 10 } else { 500 };
    let ledger = Ledger::new(4 * n + 2);
    {
        let r = Rcu::new(ledger.value(0));
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..n {
                    r.update(|v| ledger.value(v.n + 1));
                }
            });
            s.spawn(|| {
                for i in 0..n {
                    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        r.update(|v| {
                            if i % 3 == 0 {
                                panic!("closure fails");
                            }
                            ledger.value(v.n + 1)
                        })
                    }));
                    assert_eq!(res.is_err(), i % 3 == 0);
                }
            });
        });
        r.read().assert_intact();
        r.synchronize();
    }
    assert_eq!(ledger.dropped_count(), ledger.created(), "leak");
}
