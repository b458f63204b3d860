//! Signal handlers that pin while the interrupted code is in the middle of
//! a thread-local lookup (`local`, "Signal handlers").
//!
//! A signal that lands in a window of one or two instructions cannot be
//! aimed from outside, so the windows have test-only hooks (`hook::at`,
//! compiled in unit tests only): an armed hook raises `SIGUSR2` on the
//! calling thread there, and the handler, which runs before `raise`
//! returns, pins other collectors through the same paths. Under Miri, which
//! delivers no signals, the hook calls the handler's action directly (the
//! same thing happens on the thread at that point). loom cannot model
//! signals at all; the argument is in `local`'s docs.
//!
//! Each test checks that the interrupted pin got its own collector's record
//! and that the handler's pins got theirs. With the key and the record in
//! two thread-local cells (main up to wave 7), a handler that switched
//! collectors between the key compare and the record load made the
//! interrupted pin use the other collector's record, and one that pinned
//! the collector being cached between the key's store and the record's
//! read the old record under the new key.

use super::*;
use std::sync::atomic::{AtomicPtr, Ordering as O};

/// The test-only hook points in `local`.
pub(super) mod hook {
    use core::cell::Cell;

    /// Where in `local` an armed hook fires.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) enum Point {
        /// `participant`: after the key compare, before the record's load.
        Lookup,
        /// `slow_in`: in the middle of rewriting the pair (`seq` odd, the
        /// key null, the new record stored, the new key not yet).
        Install,
        /// `slow_in`'s prune: an entry of a dropped collector is about to
        /// be dropped (its token possibly freed).
        Prune,
        /// `default_hit`: between the record's load and the collector's.
        Default,
    }

    type Action = (*const (), unsafe fn(*const ()));

    std::thread_local! {
        /// The armed point and what runs there (once).
        static ARMED: Cell<Option<(Point, Action)>> = const { Cell::new(None) };
        /// The action a raised signal's handler runs.
        static PENDING: Cell<Option<Action>> = const { Cell::new(None) };
    }

    /// Runs the armed action if `point` is the armed point (once: the
    /// handler's own lookups pass the hooks unarmed).
    #[inline(never)]
    pub(crate) fn at(point: Point) {
        let Some((p, action)) = ARMED.with(Cell::get) else {
            return;
        };
        if p != point {
            return;
        }
        ARMED.with(|a| a.set(None));
        fire(action);
    }

    /// Arms `point` with `f`, which must outlive the firing (the tests
    /// disarm before `f` goes).
    pub(crate) fn arm<F: Fn()>(point: Point, f: &F) {
        /// # Safety
        /// `p` points at a live `F`.
        unsafe fn call<F: Fn()>(p: *const ()) {
            // SAFETY: `arm` stored a `&F` that outlives the firing.
            unsafe { (*p.cast::<F>())() }
        }
        let action: Action = ((f as *const F).cast(), call::<F>);
        ARMED.with(|a| a.set(Some((point, action))));
    }

    /// Whether the armed action has run (the hook was reached).
    pub(crate) fn fired() -> bool {
        ARMED.with(Cell::get).is_none()
    }

    pub(crate) fn disarm() {
        ARMED.with(|a| a.set(None));
    }

    #[cfg(all(target_os = "linux", not(miri)))]
    fn fire(action: Action) {
        extern "C" fn on_signal(_: libc::c_int) {
            if let Some((p, call)) = PENDING.with(Cell::take) {
                // SAFETY: `arm`'s contract: the action is alive.
                unsafe { call(p) };
            }
        }
        PENDING.with(|c| c.set(Some(action)));
        // SAFETY: installs a handler for SIGUSR2 that runs the action this
        // thread left in its `PENDING` (nothing else in the library's unit
        // tests uses SIGUSR2; the queue's tests use SIGUSR1), then raises
        // it on this thread: the handler runs before `raise` returns.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &sa, core::ptr::null_mut()),
                0
            );
            assert_eq!(libc::raise(libc::SIGUSR2), 0);
        }
        assert!(
            PENDING.with(Cell::get).is_none(),
            "the signal handler did not run"
        );
    }

    /// No signals (Miri, or not Linux): the handler's action runs here, on
    /// this thread at this point, as a handler would.
    #[cfg(not(all(target_os = "linux", not(miri))))]
    fn fire(action: Action) {
        let _ = &PENDING;
        // SAFETY: `arm`'s contract: the action is alive.
        unsafe { (action.1)(action.0) };
    }
}

use hook::Point;

/// This thread's record in `c`, through the cache (registering it if
/// needed).
fn record(c: &Collector) -> *const Participant {
    local::participant(c).expect("the cache is alive")
}

/// Pins `c` and returns the record the guard pinned (it is dropped before
/// this returns).
fn pinned_record(c: &Collector) -> *const Participant {
    let g = c.pin();
    let p: *const Participant = g.participant();
    assert!(g.participant().is_pinned());
    p
}

/// The records the handler's pins got, in order.
struct Seen(Vec<AtomicPtr<Participant>>);

impl Seen {
    fn new(n: usize) -> Self {
        Self(
            (0..n)
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
        )
    }
    fn get(&self, i: usize) -> *const Participant {
        self.0[i].load(O::Relaxed)
    }
}

/// The handler pins these collectors in order and records what it got.
fn pins_in_handler<'a>(cs: &'a [&'a Collector], seen: &'a Seen) -> impl Fn() + 'a {
    move || {
        for (i, c) in cs.iter().enumerate() {
            seen.0[i].store(pinned_record(c).cast_mut(), O::Relaxed);
        }
    }
}

/// A handler that pins another collector (and maybe comes back: K → K2 →
/// K) while the interrupted `Collector::pin` has compared the cached key
/// but not loaded the record: the interrupted pin still pins its own record.
#[test]
fn a_signal_handler_that_switches_collectors_mid_lookup() {
    let (a, b, c) = (Collector::new(), Collector::new(), Collector::new());
    // Register all three first: the handler's lookups then never allocate.
    let (pa, pb, pc) = (record(&a), record(&b), record(&c));
    assert!(pa != pb && pb != pc && pa != pc);
    let scripts: [&[&Collector]; 5] = [&[&b], &[&b, &a], &[&c, &b], &[&b, &a, &c], &[&a]];
    for script in scripts {
        let want: Vec<_> = script.iter().map(|c| record(c)).collect();
        record(&a); // the cache names `a`: the interrupted pin hits
        let seen = Seen::new(script.len());
        let action = pins_in_handler(script, &seen);
        hook::arm(Point::Lookup, &action);
        let got = pinned_record(&a);
        assert!(hook::fired(), "the lookup did not reach its hook");
        hook::disarm();
        assert_eq!(
            got,
            pa,
            "the interrupted pin of `a` used another collector's record \
             (handler pinned {} collectors)",
            script.len()
        );
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(seen.get(i), w, "the handler's pin {i} got a wrong record");
        }
        // And the cache is consistent afterwards.
        assert_eq!((record(&a), record(&b), record(&c)), (pa, pb, pc));
    }
}

/// A handler that pins while the interrupted pin is caching its collector
/// (a miss: `slow_in` is rewriting the cached pair): the
/// handler's pins get their own records, whether they pin the collector
/// being cached or another one, the interrupted pin gets its own, and the
/// cache is consistent afterwards.
#[test]
fn a_signal_handler_that_pins_while_a_collector_is_being_cached() {
    let (a, b, c) = (Collector::new(), Collector::new(), Collector::new());
    let (pa, pb, pc) = (record(&a), record(&b), record(&c));
    let scripts: [&[&Collector]; 5] = [&[&a], &[&b], &[&c], &[&a, &c], &[&c, &a, &b]];
    for script in scripts {
        let want: Vec<_> = script.iter().map(|c| record(c)).collect();
        record(&b); // the cache names `b`: pinning `a` misses
        let seen = Seen::new(script.len());
        let action = pins_in_handler(script, &seen);
        hook::arm(Point::Install, &action);
        let got = pinned_record(&a);
        assert!(hook::fired(), "the miss did not reach its hook");
        hook::disarm();
        assert_eq!(got, pa, "the interrupted pin of `a` got a wrong record");
        for (i, &w) in want.iter().enumerate() {
            assert_eq!(seen.get(i), w, "the handler's pin {i} got a wrong record");
        }
        assert_eq!((record(&a), record(&b), record(&c)), (pa, pb, pc));
        assert_eq!((pinned_record(&c), pinned_record(&a)), (pc, pa));
    }
}

/// A handler that pins the default collector and another one between the
/// default hit's two loads: the interrupted `epoch::pin()` gets the
/// default collector and this thread's record in it.
#[test]
fn a_signal_handler_that_pins_mid_default_pin() {
    let other = Collector::new();
    let d = default_collector();
    let pd = {
        let g = pin();
        assert!(core::ptr::eq(g.collector(), d));
        g.participant() as *const Participant
    };
    let po = record(&other);
    let script: [&Collector; 3] = [&other, d, &other];
    let seen = Seen::new(script.len());
    let action = pins_in_handler(&script, &seen);
    hook::arm(Point::Default, &action);
    let g = pin();
    assert!(hook::fired(), "the default pin did not reach its hook");
    hook::disarm();
    assert!(core::ptr::eq(g.collector(), d));
    assert_eq!(g.participant() as *const Participant, pd);
    drop(g);
    assert_eq!((seen.get(0), seen.get(1), seen.get(2)), (po, pd, po));
}

/// The cache names a collector that was then dropped; the next miss prunes
/// its entry, which may free its token, whose address a new collector may
/// then reuse. When that entry is about to go (where a signal handler could
/// run), the cached key no longer names the token, so no lookup can match
/// it (review finding of the lead, 23:37, on the first version of this
/// branch; the same window existed on main for handlers).
#[test]
fn a_pruned_collector_is_not_named_by_the_cached_key() {
    let d = Collector::new();
    record(&d); // the cache names `d`
    let dead_key = d.key;
    drop(d); // this thread's entry still holds the token
    assert_eq!(local::cached_key(), dead_key);
    let named = std::cell::Cell::new(true);
    let check = || named.set(local::cached_key() == dead_key);
    hook::arm(Point::Prune, &check);
    let c = Collector::new();
    let pc = pinned_record(&c); // a miss that registers: prunes `d`
    assert!(hook::fired(), "the miss did not prune");
    hook::disarm();
    assert!(!named.get(), "the cached key named a pruned collector");
    assert_eq!(record(&c), pc);
}
