//! Epoch-based memory reclamation.
//!
//! A lock-free structure unlinks a node while other threads may still be
//! reading it; the node can be freed only once none of them can. With
//! epoch-based reclamation (Fraser, *Practical lock-freedom*, 2004; the
//! scheme crossbeam-epoch made familiar to Rust users) every thread *pins*
//! itself before it touches shared nodes and unpins afterwards. Unlinked
//! nodes are *deferred*: retired into a bag together with the global epoch
//! current at the time. The global epoch advances only when every pinned
//! thread has observed the current one, so once it has moved two steps past
//! a bag's epoch no thread that pinned before the unlink can still be pinned,
//! and the bag's functions run.
//!
//! ```
//! use waitless::epoch::Collector;
//! use std::sync::atomic::{AtomicPtr, Ordering};
//!
//! let collector = Collector::new();
//! let shared = AtomicPtr::new(Box::into_raw(Box::new(1u64)));
//! {
//!     let guard = collector.pin();
//!     let old = shared.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel);
//!     // SAFETY: `old` came from `Box::into_raw` and is unlinked: no thread
//!     // can load it from `shared` any more.
//!     unsafe { guard.defer_destroy(old) };
//! }
//! assert_eq!(collector.pending(), 1);
//! drop(collector); // runs every deferred function it still holds
//! # unsafe { drop(Box::from_raw(shared.into_inner())) };
//! ```
//!
//! # Design
//!
//! - **Collectors.** A [`Collector`] is one reclamation domain. Structures
//!   in waitless own one each, so dropping the structure frees everything it
//!   retired; [`default_collector`] / [`pin`] give a process-wide one.
//! - **Participants.** Each thread gets a record per collector, taken from a
//!   lock-free push-only list (a free record is claimed with a CAS on its
//!   `in_use` flag, so records of exited threads are reused; they are freed
//!   when the collector is dropped). A small thread-local cache maps
//!   collector → record; the hit path is one comparison, and [`pin`] reads
//!   the thread's default record from it without any (see `local`).
//! - **Pinning** is re-entrant. The outermost pin stores the epoch in the
//!   thread's own record; nested pins touch only thread-owned state (no
//!   shared write, no fence). Where the process can use
//!   `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (Linux; not under Miri,
//!   loom or ThreadSanitizer) the pin issues only a compiler fence and the
//!   thread that advances the epoch issues the membarrier (the asymmetric
//!   scheme of liburcu's `memb` flavour and of [`crate::hazard`]); otherwise
//!   the pin issues one `SeqCst` fence. [`Collector::with_strategy`] picks
//!   one explicitly.
//! - **Bags.** Deferred functions go into the thread's bag (30 entries). A
//!   full bag is sealed with the global epoch and pushed on the collector's
//!   lock-free garbage list; it runs once the global epoch is two past the
//!   seal. A bag that is not full is sealed too when the collector holds no
//!   sealed garbage (nothing else would advance the epoch) and on the
//!   thread's every 128th pin, so a thread that defers rarely does not keep
//!   its garbage indefinitely. Every 128th pin, and whenever a bag is
//!   sealed, the thread collects and tries to advance. In the asymmetric
//!   mode an advance costs a membarrier, so a background attempt waits
//!   until 1024 functions were sealed since the last one, or (forced, so a
//!   little garbage does not wait forever) for a thread's 4096th pin, at
//!   most once per millisecond per collector; and every attempt first looks
//!   at the pin words without a barrier and gives up if a thread is visibly
//!   pinned at an older epoch. The walk over participants is skipped when
//!   there is no sealed garbage.
//! - **Thread exit** hands the thread's bag to the collector and frees its
//!   record for reuse (if a guard of the thread is still alive in another
//!   thread-local, the drop of its last guard does it). **Dropping a collector** runs every deferred function
//!   it still holds and frees every record.
//!
//! # Long-lived guards
//!
//! While any thread stays pinned the global epoch can advance at most once,
//! so garbage retired meanwhile accumulates without bound — the same
//! behaviour as every epoch scheme. It is not silent: [`Collector::pending`]
//! reports how many deferred functions are waiting. Keep guards short; a
//! guard leaked with `mem::forget` blocks reclamation in that collector for
//! good (memory is still freed when the collector is dropped).
//!
//! # Progress
//!
//! Pinning, deferring and collecting are lock-free (collection runs only
//! what is safe and never waits). Dropping a collector waits for threads
//! that are in the middle of exiting and handing their bag over (a bounded
//! amount of work each).
//!
//! Memory orderings are justified beside each atomic access and in
//! `docs/stack.md`.

mod deferred;
mod internal;
mod pool;

use core::fmt;
use core::marker::PhantomData;

use deferred::Deferred;
pub(crate) use internal::Participant;
use internal::{Global, COUNTERS};
pub(crate) use local::thread_free_bytes;
pub(crate) use pool::Link;
#[cfg(all(test, not(loom)))]
pub(crate) use pool::POOL_FREE_BYTES;

pub use crate::hazard::FenceStrategy;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Arc;

/// A collector's liveness word, shared with every thread that caches it.
///
/// ```text
/// bit 0     : LIVE, set until the collector starts dropping
/// bits 1..  : threads currently handing their record back (thread exit)
/// ```
struct Token {
    state: AtomicUsize,
}

const LIVE: usize = 1;
const USER: usize = 2;

/// A reclamation domain.
///
/// Each thread that pins gets its own participant record in the collector.
/// Dropping the collector runs every deferred function it still holds and
/// frees every record; a [`Guard`] borrows its collector, so no thread can be
/// pinned when that happens.
///
/// ```
/// use waitless::epoch::Collector;
/// let c = Collector::new();
/// let g = c.pin();
/// g.defer(|| println!("runs once no thread can see the garbage"));
/// drop(g);
/// assert_eq!(c.pending(), 1);
/// ```
pub struct Collector {
    global: GlobalBox,
    token: Arc<Token>,
    /// `Arc::as_ptr(&token)`, the thread-local cache's key, kept so that the
    /// pin's lookup compares without computing it.
    key: *const Token,
}

/// An owning pointer to the collector's `Global`, like a `Box` but without
/// `Box`'s uniqueness: exiting threads may still hold a `&Global` (under
/// the token's `USER` count, waited for in `Collector::drop`) while the
/// `Collector` value itself is moved, e.g. into `drop`. Moving a `Box`
/// asserts that nothing else points into it (Miri reported that as a data
/// race between an exiting thread's hand-over and the move).
struct GlobalBox(core::ptr::NonNull<Global>);

impl GlobalBox {
    fn new(g: Global) -> Self {
        Self(core::ptr::NonNull::from(Box::leak(Box::new(g))))
    }
}

impl core::ops::Deref for GlobalBox {
    type Target = Global;
    fn deref(&self) -> &Global {
        // SAFETY: allocated in `new`, freed only in `drop`.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for GlobalBox {
    fn drop(&mut self) {
        // SAFETY: from `Box::leak` in `new`; freed once. `Collector::drop`
        // (which runs before its fields drop) waited for every thread that
        // could still hold a reference.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: `Collector` owns a `Global` made of atomics and of participant
// records whose non-atomic parts are only touched by their owning thread
// (ownership handed over through `in_use` with Release/Acquire). Deferred
// functions it holds were required to be `Send` (or the caller of
// `defer_unchecked` promised it), so running them on whichever thread drops
// the collector or collects is sound. Sharing `&Collector` between threads is
// the intended use: every shared access is atomic.
unsafe impl Send for Collector {}
// SAFETY: see `Send` above: all shared state is accessed atomically.
unsafe impl Sync for Collector {}

impl Collector {
    /// A new, empty reclamation domain, with the fence-free pin where the
    /// process can use it ([`FenceStrategy::Asymmetric`]).
    ///
    /// ```
    /// use waitless::epoch::Collector;
    /// let c = Collector::new();
    /// assert_eq!(c.pending(), 0);
    /// drop(c.pin()); // every thread that pins gets a record in `c`
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_strategy(FenceStrategy::Asymmetric)
    }

    /// A new, empty reclamation domain with the given fence strategy.
    ///
    /// - [`FenceStrategy::Asymmetric`]: a pin issues only a compiler fence;
    ///   a thread that advances the epoch issues
    ///   `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (microseconds), so
    ///   background advances are batched (see the module docs). Falls back
    ///   to symmetric where membarrier is unavailable, under Miri, loom and
    ///   `cfg(waitless_sanitize_thread)`.
    /// - [`FenceStrategy::Symmetric`]: a pin issues a `SeqCst` fence and
    ///   advances are cheap; better for structures that retire on almost
    ///   every operation and pin little more often than they retire.
    ///
    /// ```
    /// use waitless::epoch::{Collector, FenceStrategy};
    /// let c = Collector::with_strategy(FenceStrategy::Symmetric);
    /// assert_eq!(c.strategy(), FenceStrategy::Symmetric);
    /// ```
    pub fn with_strategy(strategy: FenceStrategy) -> Self {
        Self::from_global(Global::new(strategy == FenceStrategy::Asymmetric))
    }

    fn from_global(global: Global) -> Self {
        let token = Arc::new(Token {
            state: AtomicUsize::new(LIVE),
        });
        Self {
            global: GlobalBox::new(global),
            key: Arc::as_ptr(&token),
            token,
        }
    }

    /// A new domain (fence-free pins, as [`Collector::new`]) whose
    /// records' pool free lists start at `POOL_FREE_BYTES` and may grow to
    /// `pool_max` bytes while the epoch is held back (`Pool::missed`): the
    /// stack's node cache.
    pub(crate) fn with_pool_max(pool_max: usize) -> Self {
        Self::from_global(Global::new(true).with_pool_max(pool_max))
    }

    /// The fence strategy in effect.
    ///
    /// ```
    /// use waitless::epoch::{Collector, FenceStrategy};
    /// let c = Collector::with_strategy(FenceStrategy::Symmetric);
    /// assert_eq!(c.strategy(), FenceStrategy::Symmetric);
    /// ```
    pub fn strategy(&self) -> FenceStrategy {
        if self.global.asymmetric() {
            FenceStrategy::Asymmetric
        } else {
            FenceStrategy::Symmetric
        }
    }

    /// Pins the current thread. Re-entrant: a nested pin is a few
    /// thread-local operations with no shared write.
    ///
    /// ```
    /// use waitless::epoch::Collector;
    /// let c = Collector::new();
    /// let outer = c.pin();
    /// let inner = c.pin(); // nested: still pinned until both are dropped
    /// drop(inner);
    /// outer.defer(|| ());
    /// drop(outer);
    /// assert_eq!(c.pending(), 1);
    /// ```
    #[inline(always)]
    pub fn pin(&self) -> Guard<'_> {
        match local::participant(self) {
            Some(p) => self.pin_with(p),
            None => {
                // The same guard, rebuilt here around `self` (its collector
                // already), so that an inlined caller sees that every path
                // yields a guard of `self`: the stack's check that a guard
                // is its own then folds away.
                let g = core::mem::ManuallyDrop::new(self.pin_ephemeral());
                Guard {
                    collector: self,
                    participant: g.participant,
                    _not_send: PhantomData,
                }
            }
        }
    }

    /// Pins `p`, this thread's record in this collector (as returned by
    /// `local::participant`: owned by this thread, alive while `self`).
    #[inline(always)]
    fn pin_with(&self, p: *const Participant) -> Guard<'_> {
        // SAFETY: `p` is this thread's record in this collector.
        let due = unsafe { self.global.pin(&*p) };
        let guard = Guard {
            collector: self,
            participant: p,
            _not_send: PhantomData,
        };
        if due {
            // After the guard exists: if a deferred function panics in
            // there, unwinding drops the guard and unpins. With the pin
            // withdrawn: a long collection must not hold the epoch back.
            // SAFETY: our record, just pinned by `guard` (`due` only for
            // an outermost pin), which has loaded nothing yet.
            unsafe { self.global.periodic_withdrawn(&*p) };
        }
        guard
    }

    /// Pinning while this thread's thread-locals are being destroyed: take a
    /// record for the guard's lifetime only.
    #[cold]
    fn pin_ephemeral(&self) -> Guard<'_> {
        let p = self.global.register();
        // SAFETY: `register` made this thread the owner of `p`.
        let due = unsafe { self.global.pin(&*p) };
        // SAFETY: as above. Marking it exited (after the pin, which counts
        // the guard) makes the drop of its last (only) guard release it.
        unsafe { (*p).local.with_mut(|l| (*l).nested |= internal::EXITED) };
        let guard = Guard {
            collector: self,
            participant: p,
            _not_send: PhantomData,
        };
        if due {
            // SAFETY: our record, just pinned by `guard` (which unpins and
            // releases it if this unwinds, and has loaded nothing yet).
            unsafe { self.global.periodic_withdrawn(&*p) };
        }
        guard
    }

    /// The global epoch (a counter; it wraps after `usize::MAX` advances).
    ///
    /// ```
    /// use waitless::epoch::Collector;
    /// let c = Collector::new();
    /// let e = c.epoch();
    /// c.try_advance(); // nobody is pinned: the epoch moves on
    /// assert!(c.epoch() > e);
    /// ```
    #[must_use]
    pub fn epoch(&self) -> usize {
        // Relaxed: a statistic; no data is read on the strength of it.
        self.global.epoch.load(Ordering::Relaxed)
    }

    /// Deferred functions not yet run: sealed bags plus every thread's
    /// current bag. Exact when no thread is deferring concurrently.
    ///
    /// ```
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// c.pin().defer(|| ());
    /// assert_eq!(c.pending(), 1);
    /// ```
    #[must_use]
    pub fn pending(&self) -> usize {
        self.global.pending()
    }

    /// Tries to advance the global epoch (it advances only when every pinned
    /// thread has observed the current one), then runs every sealed bag that
    /// has become safe. Returns the global epoch afterwards.
    ///
    /// Garbage still in some thread's unsealed bag is not affected; a thread
    /// can seal its own with [`Guard::flush`] or [`Collector::flush`].
    ///
    /// ```
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// let e = c.epoch();
    /// assert!(c.try_advance() >= e); // nobody is pinned: it advances
    /// ```
    pub fn try_advance(&self) -> usize {
        let e = self.global.try_advance();
        self.global.collect();
        e
    }

    /// Seals the calling thread's bag (if it has one in this collector),
    /// then tries to advance and collect, like [`Guard::flush`] but without
    /// pinning.
    ///
    /// ```
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// c.pin().defer(|| ());
    /// for _ in 0..4 {
    ///     c.flush(); // seal this thread's bag, advance, run what is safe
    /// }
    /// assert_eq!(c.pending(), 0);
    /// ```
    pub fn flush(&self) {
        match local::participant(self) {
            // SAFETY: this thread owns `p`, a record of this collector.
            Some(p) => unsafe { self.global.flush(&*p) },
            None => {
                self.global.try_advance();
                self.global.collect();
            }
        }
    }

    /// Waits for a grace period, then runs what it made safe.
    ///
    /// When it returns:
    /// - every guard of this collector that could still reach memory
    ///   unlinked before the call (a write that happens before the call) has
    ///   been dropped, and everything those guards did happens before the
    ///   return;
    /// - everything deferred into this collector whose deferral happens
    ///   before the call (this thread's bag included; other threads' bags
    ///   once they are sealed — a thread's unsealed bag is its own until it
    ///   fills, flushes, pins 128 times or exits) has run, unless another
    ///   thread's collection took it off the garbage lists at that moment and
    ///   is running it (then that thread finishes it).
    ///
    /// Blocks (spinning, then yielding) while such a guard stays alive —
    /// the one blocking call of the module, meant for RCU-style writers. A
    /// guard leaked with `mem::forget` makes it wait forever. At the end it
    /// also waits out the short window in which another thread's `defer`
    /// holds a limbo list (no user code runs there), and collects again if
    /// that thread put back an expired bag.
    ///
    /// # Panics
    /// If the calling thread is pinned in this collector (it would wait for
    /// itself forever).
    ///
    /// ```
    /// use waitless::epoch::Collector;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let c = Collector::new();
    /// let ran = std::sync::Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// c.pin().defer(move || r.store(true, Ordering::Relaxed));
    /// c.synchronize();
    /// assert!(ran.load(Ordering::Relaxed), "what was deferred before is run");
    /// ```
    pub fn synchronize(&self) {
        let mut sealed = None;
        if let Some(p) = local::participant(self) {
            // SAFETY: `p` is this thread's record in this collector.
            let pinned = unsafe { &*p }.is_pinned();
            assert!(
                !pinned,
                "Collector::synchronize called while this thread holds a Guard of the same \
                 collector: it would wait for itself forever"
            );
            // SAFETY: this thread owns `p`, a record of this collector.
            sealed = unsafe { self.global.seal_own(&*p) };
        }
        // An RMW read of the epoch (the seal lemma, docs/rcu.md §4): a
        // guard that can still reach memory unlinked before this point
        // pinned with an epoch <= `start`, so it blocks the advance from
        // `start + 1` to `start + 2` until it unpins.
        let start = self.global.read_epoch_rmw();
        // Our own bag may have been sealed one epoch later than `start`
        // (an advance in between); it runs once the epoch is two past it.
        let base = match sealed {
            Some(s) if internal::epoch_at_least(s, start) => s,
            _ => start,
        };
        let target = base.wrapping_add(2);
        let backoff = crate::Backoff::new();
        loop {
            let now = self.global.try_advance();
            // Run the expired bags of every limbo list, not only the one
            // `collect` looks at: another thread may have advanced past
            // epochs at which nobody collected. The last time, until no
            // bounded collection of another thread (which may put expired
            // bags back) overlapped the pass.
            if internal::epoch_at_least(now, target) {
                self.global.collect_all_settled();
                break;
            }
            self.global.collect_all();
            backoff.snooze();
        }
        if let Some(p) = local::participant(self) {
            // SAFETY: `p` is this thread's record in this collector.
            unsafe { self.global.expire_own_pool(&*p) };
        }
    }

    /// Runs `f` with this thread's record, registering one if needed.
    /// `None` when thread-locals are already destroyed.
    #[inline]
    pub(crate) fn with_local<R>(&self, f: impl FnOnce(&Participant) -> R) -> Option<R> {
        // SAFETY: the record is this thread's and lives as long as `self`.
        local::participant(self).map(|p| f(unsafe { &*p }))
    }

    /// This thread's record, registering one if needed; `None` when
    /// thread-locals are already destroyed.
    #[inline]
    pub(crate) fn local_participant(&self) -> Option<&Participant> {
        // SAFETY: the record is this thread's and lives as long as `self`.
        local::participant(self).map(|p| unsafe { &*p })
    }

    /// [`Guard::retire_block`] for a guard of this collector known by its
    /// record (so that a caller can pass the record by value, with no
    /// guard in memory).
    ///
    /// # Safety
    /// 1. `p` is the record of a `Guard` of `self` that the calling thread
    ///    holds (alive for the whole call).
    /// 2. As for [`Guard::retire_block`].
    #[inline]
    pub(crate) unsafe fn retire_block_pinned(
        &self,
        p: &Participant,
        b: *mut u8,
        layout: core::alloc::Layout,
    ) {
        // SAFETY: precondition 1: this thread owns `p`, which belongs to
        // this collector and is pinned; precondition 2.
        unsafe { self.global.retire_block(p, b, layout) }
    }

    /// Sums statistics counter `i` (`< COUNTERS`) over every record.
    pub(crate) fn sum_counter(&self, i: usize) -> u64 {
        debug_assert!(i < COUNTERS);
        self.global.sum_counter(i)
    }

    /// Blocks ever retired into the records' pools, summed over every
    /// record (a stack's pops that unlinked a node).
    pub(crate) fn sum_retired(&self) -> u64 {
        self.global.sum_retired()
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("epoch", &self.epoch())
            .field("pending", &self.pending())
            .finish()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // Acquire: pairs with the Release `fetch_sub` of an exiting thread
        // that already finished handing its record back, so its hand-over
        // happens before we free the records. No Release is needed: a thread
        // that sees LIVE cleared only backs off (it reads nothing we wrote).
        self.token.state.fetch_and(!LIVE, Ordering::Acquire);
        // Wait for threads that joined (CAS in `local::release`) before we
        // cleared LIVE. Acquire pairs with their Release `fetch_sub`, so
        // their hand-over happens before we free the records below.
        while self.token.state.load(Ordering::Acquire) != 0 {
            crate::sync::thread::yield_now();
        }
        // `global` drops after this: it runs every bag and frees records.
    }
}

/// A pinned section of one thread in one collector.
///
/// While a guard lives, nothing deferred in its collector after the guard
/// was created (by any thread) is run. Guards are re-entrant and `!Send`;
/// dropping the last one of a thread unpins it.
///
/// A guard cannot move to another thread:
///
/// ```compile_fail
/// let c = waitless::epoch::Collector::new();
/// let g = c.pin();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(g));
/// });
/// ```
#[must_use]
pub struct Guard<'a> {
    collector: &'a Collector,
    participant: *const Participant,
    // No other field: two words are returned in registers. (A `bool` here,
    // written as a byte and copied as a word, cost a store-forwarding stall
    // that was most of a fence-free pin's time.)
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Guard<'a> {
    /// The collector this guard pins.
    ///
    /// ```
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// let g = c.pin();
    /// assert!(core::ptr::eq(g.collector(), &c));
    /// ```
    pub fn collector(&self) -> &'a Collector {
        self.collector
    }

    #[inline]
    pub(crate) fn participant(&self) -> &'a Participant {
        // SAFETY: the record belongs to `collector`, which outlives `'a`,
        // and records are freed only when the collector drops.
        unsafe { &*self.participant }
    }

    /// Runs `f` once no thread that is pinned now can still be pinned, or
    /// when the collector is dropped, whichever is first.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use waitless::epoch::Collector;
    ///
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let c = Collector::new();
    /// let r = ran.clone();
    /// c.pin().defer(move || r.store(true, Ordering::Relaxed));
    /// drop(c); // dropping the collector runs what it still holds
    /// assert!(ran.load(Ordering::Relaxed));
    /// ```
    pub fn defer<F: FnOnce() + Send + 'static>(&self, f: F) {
        // SAFETY: `F: Send + 'static` meets both preconditions.
        unsafe { self.defer_unchecked(f) }
    }

    /// Like [`defer`](Self::defer) without the `Send + 'static` bounds.
    ///
    /// # Safety
    /// 1. Running `f` on another thread than the caller's is sound.
    /// 2. Everything `f` borrows stays valid until it runs: at the latest
    ///    until the collector is dropped.
    ///
    /// ```
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// let log = std::cell::Cell::new(0); // not Send: allowed here
    /// // SAFETY: `log` outlives the collector (dropped first, below), and the
    /// // closure runs on this thread because no other thread uses `c`.
    /// unsafe { c.pin().defer_unchecked(|| log.set(1)) };
    /// drop(c);
    /// assert_eq!(log.get(), 1);
    /// ```
    pub unsafe fn defer_unchecked<F: FnOnce()>(&self, f: F) {
        let d = Deferred::new(f);
        // SAFETY: this thread owns the record, which belongs to the
        // collector, and the guard keeps it pinned.
        unsafe { self.collector.global.defer(self.participant(), d, false) }
    }

    /// Like [`defer_unchecked`](Self::defer_unchecked), for a function
    /// whose captures fit in two words and which reads `hint` first: the
    /// collection that runs it starts loading `hint`'s line together with
    /// those of the other functions of its bag (a prefetch: `hint` is never
    /// dereferenced).
    ///
    /// # Safety
    /// As for [`defer_unchecked`](Self::defer_unchecked).
    pub(crate) unsafe fn defer_unchecked_hinted<F: FnOnce()>(&self, f: F, hint: *const u8) {
        let d = Deferred::hinted(f, hint);
        // SAFETY: as in `defer_unchecked`; `d` came from `Deferred::hinted`.
        unsafe { self.collector.global.defer(self.participant(), d, true) }
    }

    /// Drops the `Box<T>` behind `ptr` once no pinned thread can see it.
    ///
    /// # Safety
    /// 1. `ptr` came from `Box::into_raw` and is destroyed only here.
    /// 2. `ptr` is unlinked: no thread can obtain it from shared memory any
    ///    more (threads that already hold it are pinned, and that is fine).
    /// 3. Dropping the `T` on another thread is sound (`T: Send`, or the
    ///    caller guarantees it), and anything the `T` borrows outlives the
    ///    collector.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(1u64)));
    /// let g = c.pin();
    /// let old = src.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel);
    /// // SAFETY: `old` is a unique Box, unlinked by the swap, destroyed once.
    /// unsafe { g.defer_destroy(old) };
    /// # drop(g);
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    pub unsafe fn defer_destroy<T>(&self, ptr: *mut T) {
        struct SendPtr<T>(*mut T);
        // SAFETY: precondition 3: dropping the `T` elsewhere is sound.
        unsafe impl<T> Send for SendPtr<T> {}
        let p = SendPtr(ptr);
        let f = move || {
            let p = p;
            // SAFETY: preconditions 1 and 2: the box is unique and no pinned
            // thread can still see it when this runs.
            drop(unsafe { Box::from_raw(p.0) });
        };
        // SAFETY: preconditions 1-3 are ours; the closure frees the box once.
        unsafe { self.defer_unchecked(f) }
    }

    /// Retires `b`, an empty block of `layout` starting with an atomic link
    /// word, into this thread's pool in this collector: it becomes
    /// reusable by this thread ([`Participant::take_block`]) once its grace
    /// period has ended (see `pool.rs`).
    ///
    /// # Safety
    /// 1. `b` was allocated with `layout` by the global allocator, starts
    ///    with a `pool::Link`, holds no live value, and is unlinked: no
    ///    thread can reach it from shared memory any more.
    /// 2. Every block retired into this collector has the same layout.
    #[inline]
    pub(crate) unsafe fn retire_block(&self, b: *mut u8, layout: core::alloc::Layout) {
        // SAFETY: this thread owns the record, which the guard pins;
        // preconditions 1 and 2.
        unsafe {
            self.collector
                .global
                .retire_block(self.participant(), b, layout)
        }
    }

    /// Seals this thread's bag into the collector's garbage now (instead of
    /// when it fills), then tries to advance the epoch and collect.
    ///
    /// ```
    /// use waitless::epoch::Collector;
    ///
    /// let c = Collector::new();
    /// let g = c.pin();
    /// g.defer(|| ());
    /// g.flush(); // hand the bag to the collector now instead of when it is full
    /// ```
    pub fn flush(&self) {
        // SAFETY: this thread owns the record of this collector.
        unsafe { self.collector.global.flush(self.participant()) }
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        let p = self.participant();
        // SAFETY: this guard holds one pin on the thread's own record.
        let orphaned = unsafe { self.collector.global.unpin(p) };
        // `orphaned`: this was the last guard of a record that no
        // thread-local cache owns (an ephemeral record of a pin during
        // thread-local destruction, or the record of a thread whose cache
        // was destroyed while this guard lived).
        if orphaned {
            // SAFETY: the record is owned by this thread and has no guard
            // left.
            unsafe { self.collector.global.release(p) };
        }
    }
}

impl fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

/// The process-wide collector (never dropped: what it holds when the
/// process exits is not run).
///
/// ```
/// let g = waitless::epoch::default_collector().pin();
/// g.defer(|| ()); // runs once the process-wide epoch has moved on
/// ```
#[must_use]
#[cfg(not(loom))]
#[inline]
pub fn default_collector() -> &'static Collector {
    /// In a cache line of its own: every `pin()` reads the `OnceLock`'s
    /// state and the collector's pointers, and in a linked program the
    /// static otherwise shares a line with whatever statics the linker puts
    /// next to it (in the bench binary: other crates' globals), so writes
    /// to those slowed every default pin down.
    static DEFAULT: crate::CachePadded<std::sync::OnceLock<Collector>> =
        crate::CachePadded::new(std::sync::OnceLock::new());
    match DEFAULT.get() {
        Some(c) => c,
        None => init_default(&DEFAULT),
    }
}

/// The first call of [`default_collector`].
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn init_default(cell: &'static std::sync::OnceLock<Collector>) -> &'static Collector {
    cell.get_or_init(Collector::new)
}

/// Pins the current thread in the [`default_collector`].
///
/// ```
/// let g = waitless::epoch::pin();
/// g.defer(|| ());
/// ```
#[cfg(not(loom))]
#[inline]
pub fn pin() -> Guard<'static> {
    // The hit path reads the thread's cached default record and collector
    // (no `OnceLock` state test, no collector-key compare).
    match local::default_hit() {
        Some((c, p)) => c.pin_with(p),
        None => pin_default_slow(),
    }
}

/// [`pin`] without a cached default record: the first pin of a thread (it
/// caches it), or one during thread-local destruction.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn pin_default_slow() -> Guard<'static> {
    let c = default_collector();
    match local::cache_default(c) {
        Some(p) => c.pin_with(p),
        None => c.pin_ephemeral(),
    }
}

/// The thread-local map from collector to participant record.
///
/// Two thread-locals. `FAST` holds the hit path: the last collector looked
/// up (its key) and its record, under a sequence word, and the default
/// collector's record. It has a `const` initializer and no destructor, so
/// std stores it as a plain `#[thread_local]` static and reading it is an
/// `%fs`-relative load, with no lazy-initialization or destroyed-state
/// test. `LOCAL` owns the entries (it has the destructor that hands the
/// records back at thread exit) and is touched only on a miss. Its
/// destructor clears `FAST` first, so a pin from a later thread-local
/// destructor misses, finds `LOCAL` gone and takes an ephemeral record
/// (`Collector::pin_ephemeral`), as before.
///
/// # Signal handlers
///
/// A signal handler runs on the interrupted thread, between two of its
/// instructions, and may pin too: the hit paths must give the interrupted
/// lookup the right record whatever the handler looked up in between, and
/// a handler that interrupts a half-done update of `FAST` must not read a
/// torn one. (What is not async-signal-safe stays so: the miss path borrows
/// a `RefCell`, so a handler that interrupts this thread's own miss path
/// and misses too panics, and registering a collector allocates; a pin's
/// periodic work may run deferred functions and free memory.)
///
/// - Per collector: the key and the record are two words, guarded by a
///   sequence word `seq` (a seqlock between the thread and its handlers).
///   `slow_in` rewrites the pair as: `seq` odd, key null, record, key,
///   `seq` even (2 more than before). A lookup loads `seq`, compares the
///   key, loads the record and loads `seq` again; it hits only if `seq` did
///   not change. A handler runs to completion between two instructions of
///   the code it interrupts, so:
///   - if it interrupts a lookup and rewrites the pair (once, or several
///     times: K → K2 → K included), `seq` has grown by the second load, and
///     the lookup takes the slow path;
///   - if it interrupts a rewrite, it sees a key that is null (a miss) or
///     the new key after the new record: never a key with another
///     collector's record. It sees `seq` odd and does not rewrite (its own
///     miss path returns the record without caching it), since the
///     interrupted rewrite's remaining stores would mix with its own.
///
///   Until wave 7 the pair was two `Cell`s with no `seq`: a handler that
///   switched collectors between the interrupted lookup's key compare and
///   its record load made it pin the other collector's record, and one
///   that pinned between `slow_in`'s two stores read the new key with the
///   old record (tests in `epoch::signal_tests`). Re-reading the key alone
///   would miss K → K2 → K, and would not stop a handler's rewrite from
///   mixing with an interrupted one.
/// - The default record and collector are two words, but each is written
///   with one value only (the default collector's address; this thread's
///   only record in it) or null: `cache_default` stores the collector, then
///   (`Release`) the record; `Fast::clear` nulls the record, then
///   (`Release`) the collector; `default_hit` loads the record (`Acquire`),
///   then the collector. A handler sees a prefix of either update, so a
///   non-null record comes with the collector.
///
/// The words are atomics, not `Cell`s, so that these program orders are
/// real: `Relaxed`/`Acquire` loads and `Release` stores are plain `mov`s on
/// x86-64 and `ldr`/`ldar`-class instructions elsewhere, but the compiler
/// must keep their order (it reorders plain `Cell` accesses freely, and
/// `compiler_fence` orders only atomic accesses). The Release/Acquire pairs
/// and compiler fences are between the thread and its own signal handlers,
/// which is what `compiler_fence`/`atomic_signal_fence` is for; the
/// hardware sees one thread and keeps its program order. loom cannot deliver signals:
/// under loom the words are `Cell`s (there is no other thread to see them).
mod local {
    use core::cell::RefCell;
    use core::ptr;

    #[cfg(all(test, not(loom)))]
    use super::signal_tests::hook;
    use super::{Collector, Global, Participant, Token, LIVE, USER};
    use crate::sync::atomic::{compiler_fence, Ordering};
    use crate::sync::Arc;

    /// The words of `FAST`: atomics (see the module docs); under loom,
    /// which delivers no signals and has no `const` atomics, `Cell`s with
    /// the same methods.
    #[cfg(not(loom))]
    type PtrWord<T> = crate::sync::atomic::AtomicPtr<T>;
    #[cfg(not(loom))]
    type SeqWord = crate::sync::atomic::AtomicUsize;
    #[cfg(loom)]
    type PtrWord<T> = Word<*mut T>;
    #[cfg(loom)]
    type SeqWord = Word<usize>;

    #[cfg(loom)]
    struct Word<T: Copy>(core::cell::Cell<T>);

    #[cfg(loom)]
    impl<T: Copy> Word<T> {
        const fn new(v: T) -> Self {
            Self(core::cell::Cell::new(v))
        }
        fn load(&self, _: Ordering) -> T {
            self.0.get()
        }
        fn store(&self, v: T, _: Ordering) {
            self.0.set(v)
        }
    }

    struct Entry {
        /// Keeps the token's address unique while this entry exists.
        token: Arc<Token>,
        global: *const Global,
        participant: *const Participant,
    }

    /// The hit path (see the module docs). Every pointer in it is backed by
    /// an entry of `LOCAL` (which keeps the token alive, so a key is never
    /// stale) and is cleared before that entry goes.
    struct Fast {
        /// Even while the pair below is stable; odd while `slow_in`
        /// rewrites it. Every rewrite adds 2.
        seq: SeqWord,
        /// The last collector looked up (its token's address) and its
        /// record.
        key: PtrWord<Token>,
        participant: PtrWord<Participant>,
        /// This thread's record in the default collector, and the default
        /// collector; null until the first `epoch::pin()` and after `LOCAL`
        /// is destroyed.
        #[cfg(not(loom))]
        default_participant: PtrWord<Participant>,
        #[cfg(not(loom))]
        default_collector: PtrWord<Collector>,
    }

    impl Fast {
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: Fast = Fast {
            seq: SeqWord::new(0),
            key: PtrWord::new(ptr::null_mut()),
            participant: PtrWord::new(ptr::null_mut()),
            #[cfg(not(loom))]
            default_participant: PtrWord::new(ptr::null_mut()),
            #[cfg(not(loom))]
            default_collector: PtrWord::new(ptr::null_mut()),
        };

        fn clear(&self) {
            // A null key misses (module docs). Relaxed: ordered by the
            // Release store below.
            self.key.store(ptr::null_mut(), Ordering::Relaxed);
            #[cfg(not(loom))]
            {
                // The record before the collector (module docs): Relaxed,
                // then the Release store keeps it first.
                self.default_participant
                    .store(ptr::null_mut(), Ordering::Relaxed);
                // Release: orders the stores above before this one, for a
                // signal handler's `default_hit` (module docs).
                self.default_collector
                    .store(ptr::null_mut(), Ordering::Release);
            }
        }
    }

    struct Local {
        /// Every collector this thread registered with that may be alive.
        entries: RefCell<Vec<Entry>>,
    }

    impl Drop for Local {
        fn drop(&mut self) {
            // First: no hit may return a record released below.
            with_fast((), Fast::clear);
            for e in self.entries.get_mut().drain(..) {
                release(&e);
            }
        }
    }

    #[cfg(not(loom))]
    std::thread_local! {
        static FAST: Fast = const { Fast::EMPTY };
    }
    // loom's thread-locals have no `const` form (and are lazily created and
    // destroyed like `LOCAL`: `with_fast` tolerates a destroyed one).
    #[cfg(loom)]
    loom::thread_local! {
        static FAST: Fast = Fast::EMPTY;
    }

    crate::sync::thread_local! {
        static LOCAL: Local = Local {
            entries: RefCell::new(Vec::new()),
        };
    }

    /// Runs `f` on this thread's `FAST`. With std it cannot fail (no
    /// destructor, so never destroyed); a destroyed loom one counts as
    /// empty: `f` does not run and the result is `miss`.
    #[inline(always)]
    fn with_fast<R>(miss: R, f: impl FnOnce(&Fast) -> R) -> R {
        FAST.try_with(f).unwrap_or(miss)
    }

    /// This thread's record in `c`; `None` during thread-local destruction.
    #[inline(always)]
    pub(super) fn participant(c: &Collector) -> Option<*const Participant> {
        let key = c.key;
        let hit = with_fast(None, |f| {
            // Acquire: keeps the loads below after this one; pairs with the
            // Release store of the even `seq` in `slow_in`.
            let s = f.seq.load(Ordering::Acquire);
            // The key is never null, so an empty `FAST` misses. Relaxed
            // (both): ordered by the Acquire load above and the compiler
            // fence below.
            if f.key.load(Ordering::Relaxed).cast_const() != key {
                return None;
            }
            #[cfg(all(test, not(loom)))]
            hook::at(hook::Point::Lookup);
            let p = f.participant.load(Ordering::Relaxed);
            // The key and the record are read before `seq` again
            // (`atomic_signal_fence(Acquire)`; no instruction).
            compiler_fence(Ordering::Acquire);
            // Unchanged: no rewrite ran between the two loads of `seq` (a
            // handler's rewrite adds 2), so the key and the record are one
            // pair.
            if f.seq.load(Ordering::Relaxed) == s {
                Some(p.cast_const())
            } else {
                None
            }
        });
        match hit {
            Some(p) => Some(p),
            None => slow(c),
        }
    }

    /// The default collector and this thread's record in it, if cached.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(super) fn default_hit() -> Option<(&'static Collector, *const Participant)> {
        let (p, c) = with_fast((ptr::null_mut(), ptr::null_mut()), |f| {
            // Acquire: pairs with the Release store of the record in
            // `cache_default`, so the collector stored before it is seen
            // (and it keeps the collector's load after this one). A signal
            // handler that pins between the two loads cannot leave us with
            // a record and no collector (module docs). No instruction on
            // x86-64.
            let p = f.default_participant.load(Ordering::Acquire);
            #[cfg(test)]
            hook::at(hook::Point::Default);
            // Relaxed: ordered by the Acquire load above.
            (p, f.default_collector.load(Ordering::Relaxed))
        });
        if p.is_null() {
            None
        } else {
            // SAFETY: a non-null record is stored only by `cache_default`,
            // after (Release) the `&'static Collector` of
            // `default_collector`, and cleared before it (`Fast::clear`);
            // the Acquire load above sees the collector.
            Some((unsafe { &*c }, p))
        }
    }

    /// Caches `p`, this thread's record in the default collector `c`, for
    /// [`default_hit`]; `None` (nothing cached) during thread-local
    /// destruction.
    #[cfg(not(loom))]
    #[cold]
    pub(super) fn cache_default(c: &'static Collector) -> Option<*const Participant> {
        let p = participant(c)?;
        // `participant` returned `Some`: `LOCAL` is alive and holds the
        // entry of `c` (the default collector is never dropped, so the
        // entry is never pruned); its destructor clears this first.
        with_fast((), |f| {
            // The collector before the record (module docs). Relaxed: the
            // Release store below orders it.
            f.default_collector
                .store((c as *const Collector).cast_mut(), Ordering::Relaxed);
            // Release: pairs with the Acquire load in `default_hit`.
            f.default_participant.store(p.cast_mut(), Ordering::Release);
        });
        Some(p)
    }

    #[cold]
    fn slow(c: &Collector) -> Option<*const Participant> {
        LOCAL.try_with(|l| slow_in(l, c)).ok()
    }

    fn slow_in(l: &Local, c: &Collector) -> *const Participant {
        let key = Arc::as_ptr(&c.token);
        let mut entries = l.entries.borrow_mut();
        let p = match entries.iter().find(|e| Arc::as_ptr(&e.token) == key) {
            Some(e) => e.participant,
            None => {
                // Forget collectors that were dropped. Relaxed: only the
                // LIVE bit is looked at and nothing is read through it.
                // Dropping an entry may free its token, and a later
                // collector's token may reuse the address: if the fast key
                // names the token, it is nulled first (a signal handler
                // that looked up such a collector between here and the
                // rewrite below would otherwise hit with the dropped
                // collector's record). A null key misses; an interrupted
                // rewrite (`seq` odd) that has not nulled the key yet stores
                // its own key after this, whole. A lookup in progress below
                // us has compared its own, live, key, which is not this one.
                entries.retain(|e| {
                    let live = e.token.state.load(Ordering::Relaxed) & LIVE != 0;
                    if !live {
                        with_fast((), |f| {
                            if f.key.load(Ordering::Relaxed).cast_const() == Arc::as_ptr(&e.token) {
                                f.key.store(ptr::null_mut(), Ordering::Relaxed);
                                // Before the entry's drop (a call that the
                                // store is not moved past anyway).
                                compiler_fence(Ordering::SeqCst);
                            }
                        });
                        #[cfg(all(test, not(loom)))]
                        hook::at(hook::Point::Prune);
                    }
                    live
                });
                let p = c.global.register();
                entries.push(Entry {
                    token: Arc::clone(&c.token),
                    global: &*c.global,
                    participant: p,
                });
                p
            }
        };
        // The borrow ends before the rewrite, so a signal handler arriving
        // during the rewrite may take this path too.
        drop(entries);
        with_fast((), |f| {
            // Relaxed: this thread's own word, ordered by the fences below.
            let s = f.seq.load(Ordering::Relaxed);
            if s & 1 != 0 {
                // We interrupted a rewrite (we run in a signal handler):
                // caching would mix our stores with its remaining ones.
                // `p` is the right record anyway.
                return;
            }
            // Not a read-modify-write: a handler that runs between the
            // load above and this store and rewrites completely leaves
            // `seq` at `s + 2`; ours then stores `s + 1` and `s + 2` again
            // around our own complete rewrite. No lookup spans that window
            // (the interrupted code is this rewrite), and the pair we leave
            // is ours, whole.
            f.seq.store(s.wrapping_add(1), Ordering::Relaxed);
            // The odd `seq` before the stores below, for a handler that
            // interrupts them (`atomic_signal_fence(Release)`).
            compiler_fence(Ordering::Release);
            // The key first, null: a handler that reads in between misses.
            f.key.store(ptr::null_mut(), Ordering::Relaxed);
            compiler_fence(Ordering::Release);
            f.participant.store(p.cast_mut(), Ordering::Relaxed);
            #[cfg(all(test, not(loom)))]
            hook::at(hook::Point::Install);
            // Release: the record (and the null key) before the key.
            f.key.store(key.cast_mut(), Ordering::Release);
            // Release: pairs with the Acquire load in `participant`.
            f.seq.store(s.wrapping_add(2), Ordering::Release);
        });
        p
    }

    /// Bytes of recycled blocks on the pools' free lists of the calling
    /// thread's records, over every live collector it uses.
    pub(crate) fn thread_free_bytes() -> usize {
        LOCAL
            .try_with(|l| {
                let Ok(entries) = l.entries.try_borrow() else {
                    return 0;
                };
                let mut n = 0;
                for e in entries.iter() {
                    if !hold(&e.token) {
                        continue; // dropped or dropping: its records are gone
                    }
                    // SAFETY: our USER count keeps the collector, hence its
                    // records, alive; this thread owns the record.
                    n += unsafe { (*e.participant).cached_bytes() };
                    // Release pairs with the Acquire load in
                    // `Collector::drop` (as in `release`).
                    e.token.state.fetch_sub(USER, Ordering::Release);
                }
                n
            })
            .unwrap_or(0)
    }

    /// Counts this thread as a user of the collector behind `token` (its
    /// drop then waits for us) if it is still live. Returns `false` if not.
    fn hold(token: &Token) -> bool {
        let mut s = token.state.load(Ordering::Relaxed);
        loop {
            if s & LIVE == 0 {
                return false;
            }
            // Relaxed: as in `release`: while counted, the collector's drop
            // waits, and we touch only our own record.
            match token.state.compare_exchange_weak(
                s,
                s + USER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// The cached key (for tests of pruning).
    #[cfg(all(test, not(loom)))]
    pub(super) fn cached_key() -> *const Token {
        with_fast(ptr::null(), |f| f.key.load(Ordering::Relaxed).cast_const())
    }

    /// Number of cached collectors (for tests of pruning).
    #[cfg(all(test, not(loom)))]
    pub(super) fn entries_len() -> usize {
        LOCAL.with(|l| l.entries.borrow().len())
    }

    /// Thread exit: hands the record back if the collector is still alive.
    fn release(e: &Entry) {
        let mut s = e.token.state.load(Ordering::Relaxed);
        loop {
            if s & LIVE == 0 {
                // The collector is dropping or dropped; it runs our bag.
                return;
            }
            // Relaxed suffices: while our USER count is in the word the
            // collector's drop waits, so `global` stays alive; the data we
            // touch is our own record.
            match e.token.state.compare_exchange_weak(
                s,
                s + USER,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        // SAFETY: the collector cannot finish dropping while we are counted
        // in `state`, so `global` and the record are alive; this thread owns
        // the record.
        let (g, p) = unsafe { (&*e.global, &*e.participant) };
        let pinned = p.is_pinned();
        if pinned {
            // A guard still alive here (kept in another thread-local that is
            // destroyed later): its drop releases the record (see
            // `Guard::drop`). The guard borrows the collector, so the
            // collector is alive then.
            // SAFETY: owner-only state of our own record.
            p.local
                .with_mut(|l| unsafe { (*l).nested |= super::internal::EXITED });
        }
        if !pinned {
            // SAFETY: we own `p`, it belongs to `g`, and it is not pinned.
            unsafe { g.release(p) };
        }
        //
        // Release pairs with the Acquire load in `Collector::drop`: our
        // hand-over happens before the collector frees anything.
        e.token.state.fetch_sub(USER, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
pub(crate) mod tests;

#[cfg(all(test, not(loom)))]
mod review_w6_tests;

#[cfg(all(test, not(loom)))]
mod signal_tests;

#[cfg(all(test, loom))]
mod loom_tests;
