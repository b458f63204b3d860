//! The raw layer: the global state of a collector, participant records and
//! the garbage list. Everything here is crate-private; `mod.rs` wraps it in
//! the safe `Collector`/`Guard` API.
//!
//! # Epoch words
//!
//! The global epoch is a plain counter (`usize`, wrapping). A participant's
//! `epoch` word packs its pinned state:
//!
//! ```text
//! bit 0      : 1 = pinned, 0 = not pinned (then the whole word is 0)
//! bits 1..   : the global epoch the participant observed when it pinned,
//!              modulo 2^(usize::BITS - 1) (its top bit does not fit)
//! ```
//!
//! Comparisons of a pin word with the global epoch are therefore made modulo
//! 2^(usize::BITS - 1) ([`pinned_epoch_matches`]); comparing with the full
//! epoch stalled the collector for good once the epoch reached 2^31 on a
//! 32-bit target (2^63 on 64-bit).
//!
//! # Fences
//!
//! A pin publishes its word and then reads shared memory: a store-buffering
//! handshake with the advancer, which reads every pin word. With
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` available (Linux, not under
//! Miri, loom or ThreadSanitizer) the pin issues only a compiler fence and
//! the advancer pays the barrier (`crate::hazard::fence`, the same mechanism
//! the hazard domains use); otherwise both sides issue `SeqCst` fences.
//! `docs/rcu.md` §4 gives the full argument for both modes; the short form is
//! beside each access below.

use core::ptr;

use super::deferred::{Bag, Deferred};
use super::pool::{Pool, POOL_FREE_BYTES};
use crate::hazard::fence as barrier;
use crate::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use crate::CachePadded;

/// Number of per-participant statistics counters structures may use.
pub(crate) const COUNTERS: usize = 3;

/// Pins between two attempts to collect global garbage.
#[cfg(not(any(loom, miri)))]
const PINS_BETWEEN_COLLECT: usize = 128;
#[cfg(any(loom, miri))]
const PINS_BETWEEN_COLLECT: usize = 2;

/// In the asymmetric mode an advance attempt costs a `membarrier`
/// (microseconds for the caller, and an interrupt of every CPU running a
/// thread of the process). A background attempt is therefore made only once
/// this many deferred functions were sealed since the last background
/// attempt (a monotonic count, `sealed` − `advance_mark`: pacing on the
/// total still pending, as before, attempted one advance per sealed bag once
/// 1024 were pending, i.e. a membarrier per 31 retirements), or as a forced
/// attempt (see [`FORCED_ADVANCE_PERIOD_NS`]) while any garbage is sealed,
/// so that a little garbage does not wait forever.
#[cfg(not(any(loom, miri)))]
const ADVANCE_BATCH: usize = 1024;
#[cfg(any(loom, miri))]
const ADVANCE_BATCH: usize = 2;

/// The most expired bags a collection run from [`Global::defer`] (inside
/// the caller's critical section, so pinned) runs; the periodic collection
/// runs the rest with the pin withdrawn ([`Global::periodic_withdrawn`]).
/// Two: more than the one bag the same call sealed, so a thread that defers
/// steadily still frees its own garbage as fast as it makes it. Heavy bags
/// (a handed-off pool backlog: thousands of frees in one function, see
/// [`Global::hand_off_pool`]) are never run by such a bounded collection.
const DEFER_COLLECT_BAGS: usize = 2;

/// Sealed pool blocks count towards [`ADVANCE_BATCH`] by size: a block of
/// this many bytes or more counts as one (like a deferred function), a
/// smaller one as its share. So a collector of small blocks (the stack's
/// 16-byte nodes of a `u64`) pays a background advance attempt, a
/// `membarrier` that interrupts every CPU running one of its threads (1.5–2
/// µs with a running peer on the 2-core VM), once per 64 KiB sealed (4096
/// nodes) instead of once per 1024 nodes, and keeps about that many bytes
/// waiting out their grace period; larger blocks pace as before. Not under
/// loom and Miri (every block counts one there, as before).
const POOL_PACE_BYTES: usize = 64;

/// How many units of [`ADVANCE_BATCH`] sealing `n` pool blocks of `size`
/// bytes counts for (see [`POOL_PACE_BYTES`]): at least one when `n > 0`.
#[inline]
fn pool_pace_units(n: usize, size: usize) -> usize {
    if cfg!(any(loom, miri)) {
        return n;
    }
    (n * size.min(POOL_PACE_BYTES)).div_ceil(POOL_PACE_BYTES)
}

/// Every [`CHECKS_PER_FORCED_ADVANCE`]-th periodic check of a thread (one
/// per 4096 pins) may force an advance attempt while garbage is sealed: at
/// most one such attempt per collector per this many nanoseconds. (Forcing
/// on every thread's every 4096th pin, as before, issued a membarrier per
/// 4096 reads of *every* reader: 100k+ per second with a few readers, each
/// interrupting all the others — the collapse of `rcu/read-with-*-writer`.)
#[cfg(not(any(loom, miri)))]
const FORCED_ADVANCE_PERIOD_NS: u64 = 1_000_000;

/// See [`FORCED_ADVANCE_PERIOD_NS`].
#[cfg(not(any(loom, miri)))]
const CHECKS_PER_FORCED_ADVANCE: usize = 32;
#[cfg(any(loom, miri))]
const CHECKS_PER_FORCED_ADVANCE: usize = 1;

/// Nanoseconds since the first call in this process (monotonic).
#[cfg(not(any(loom, miri)))]
fn now_ns() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The flag in [`LocalState::nested`] marking a record that no thread-local
/// cache owns (see there). Far above any real guard count.
pub(crate) const EXITED: usize = 1 << (usize::BITS - 1);

/// Mask of the epoch bits a pin word can hold.
const WORD_EPOCH_MASK: usize = usize::MAX >> 1;

#[inline]
pub(crate) fn pinned_word(epoch: usize) -> usize {
    (epoch << 1) | 1
}

/// Whether the pin word `word` (pinned) shows the global epoch `global`.
/// Compared modulo 2^(usize::BITS - 1): the word drops the epoch's top bit.
#[inline]
pub(crate) fn pinned_epoch_matches(word: usize, global: usize) -> bool {
    (word >> 1) == (global & WORD_EPOCH_MASK)
}

/// `true` when epoch `a` is at least `b` (signed distance, so it survives
/// the counter wrapping around).
#[inline]
pub(crate) fn epoch_at_least(a: usize, b: usize) -> bool {
    (a.wrapping_sub(b) as isize) >= 0
}

/// One thread's record in one collector. Records live in a push-only list
/// and are freed only when the collector is dropped; a record whose thread
/// exited is reused by the next thread that registers.
#[repr(C, align(128))]
pub(crate) struct Participant {
    /// Packed pinned state (see the module docs). Written only by the owner.
    pub(crate) epoch: AtomicUsize,
    /// The collector's fence mode, copied here so that a pin reads only its
    /// own record's first cache line. Immutable.
    asymmetric: bool,
    /// Owner-only state (the owning thread is the only one that touches it
    /// while `in_use`; ownership changes hands through `in_use`). Its
    /// hot fields come first, so that a pin and an unpin touch one line
    /// (`repr(C)` on both structs keeps this order; with the compiler's
    /// order the mode flag and the exit flag sat behind the 1 KiB bag).
    pub(crate) local: UnsafeCell<LocalState>,
    /// Length of `local.bag`, mirrored for `Collector::pending` readers.
    pub(crate) bag_len: AtomicUsize,
    /// `local.pool`'s count of blocks ever retired (`Pool::retired_in`),
    /// mirrored for `Collector::pending` readers and, for a stack, as its
    /// count of pops (statistics with no store of their own on the pop
    /// path). Stored on every retirement.
    pub(crate) pool_in: AtomicUsize,
    /// `local.pool`'s count of blocks that left its retired set
    /// (`Pool::retired_out`), mirrored likewise; `pool_in - pool_out`
    /// blocks wait in the pool.
    pub(crate) pool_out: AtomicUsize,
    /// Statistics slots (owner-only writes, any-thread Relaxed reads).
    pub(crate) counters: [AtomicU64; COUNTERS],
    /// `true` while a thread owns this record.
    pub(crate) in_use: AtomicBool,
    /// Next record in the collector's list; immutable once published.
    next: AtomicPtr<Participant>,
}

/// State only the owning thread touches.
#[repr(C)]
pub(crate) struct LocalState {
    /// Whether a `Guard` of this thread on this collector is alive is bit 0
    /// of the record's pin word ([`Participant::is_pinned`]); the live
    /// guards number that bit + `nested & !EXITED`. A pin and an unpin that
    /// are not nested only test and overwrite words (no read-modify-write:
    /// a guard counter incremented and decremented on every pin made each
    /// pin wait for the previous unpin's store to be forwarded, twice per
    /// pin+unpin, the longest dependency chain of a loop of reads).
    ///
    /// Live guards beyond the first (nested pins), plus [`EXITED`] when no
    /// thread-local cache owns this record any more (its thread exited
    /// while one of its guards was still alive, kept in another
    /// thread-local, or it is an ephemeral record taken for one guard
    /// during thread-local destruction): the drop of the last guard then
    /// releases it. Zero on the common path, so the unpin tests one word.
    pub(crate) nested: usize,
    /// Pins left until the pin path's rare branch (`Global::pin_cold`):
    /// a decrement and a zero test. Asymmetric records count down from
    /// [`PINS_BETWEEN_COLLECT`] to the next periodic collection attempt;
    /// symmetric ones stay at 1 (every pin takes the branch, which issues
    /// the fence) and count the periodic attempts in `sym_pins_left`.
    pub(crate) pins_left: usize,
    /// A symmetric record's pins left until the next periodic collection
    /// attempt (unused by asymmetric records).
    pub(crate) sym_pins_left: usize,
    /// Periodic checks since the last forced advance attempt (asymmetric
    /// mode, see [`ADVANCE_BATCH`]).
    pub(crate) checks: usize,
    /// [`Global::sealed`] at this thread's last forced check on which it
    /// had sealed nothing of its own (asymmetric mode, see
    /// [`Global::periodic`]).
    pub(crate) seen_sealed: usize,
    /// Retired blocks and recycled ones (`super::pool`).
    pub(crate) pool: Pool,
    /// Deferred functions not yet sealed.
    pub(crate) bag: Bag,
}

impl Participant {
    fn new_owned(asymmetric: bool, pool_max: usize) -> Self {
        Self {
            epoch: AtomicUsize::new(0),
            in_use: AtomicBool::new(true),
            next: AtomicPtr::new(ptr::null_mut()),
            local: UnsafeCell::new(LocalState {
                nested: 0,
                pins_left: if asymmetric { PINS_BETWEEN_COLLECT } else { 1 },
                sym_pins_left: PINS_BETWEEN_COLLECT,
                bag: Bag::new(),
                checks: 0,
                seen_sealed: 0,
                pool: Pool::new(pool_max),
            }),
            bag_len: AtomicUsize::new(0),
            pool_in: AtomicUsize::new(0),
            pool_out: AtomicUsize::new(0),
            counters: core::array::from_fn(|_| AtomicU64::new(0)),
            asymmetric,
        }
    }

    /// Whether this record is pinned (a guard of its owner is alive).
    /// Meaningful only to the owning thread, the only writer of the word.
    #[inline(always)]
    pub(crate) fn is_pinned(&self) -> bool {
        // Relaxed: the owner reads its own last store (coherence); no data
        // is read on the strength of it.
        self.epoch.load(Ordering::Relaxed) & 1 == 1
    }

    /// Adds `n` to counter `i`. Only the owner writes, so a load and a store
    /// suffice (no locked read-modify-write on the hot path).
    #[inline]
    pub(crate) fn count(&self, i: usize, n: u64) {
        let c = &self.counters[i];
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Takes back `n` counted by [`count`](Self::count) on counter `i`.
    #[cold]
    pub(crate) fn uncount(&self, i: usize, n: u64) {
        let c = &self.counters[i];
        c.store(c.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
    }

    /// A recycled block from this record's pool, or null.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    #[inline]
    pub(crate) unsafe fn take_block(&self) -> *mut u8 {
        // SAFETY: precondition 1: owner-only state; no user code runs.
        self.local.with_mut(|l| unsafe { (*l).pool.take() })
    }

    /// Keeps `b` for reuse by this record's owner (or frees it).
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    /// 2. As for [`Pool::put_free`]: `b` was allocated with `layout`, is
    ///    empty, and no other thread can access it (it was never
    ///    published).
    #[inline]
    pub(crate) unsafe fn recycle_block(&self, b: *mut u8, layout: core::alloc::Layout) {
        // SAFETY: preconditions 1 and 2.
        self.local
            .with_mut(|l| unsafe { (*l).pool.put_free(b, layout) });
    }

    /// Bytes of recycled blocks in this record's pool.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    pub(crate) unsafe fn cached_bytes(&self) -> usize {
        // SAFETY: precondition 1.
        self.local.with(|l| unsafe { (*l).pool.free_bytes() })
    }

    /// Returns this record's recycled blocks to the allocator.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    pub(crate) unsafe fn free_cached_blocks(&self) {
        // SAFETY: precondition 1.
        self.local
            .with_mut(|l| unsafe { (*l).pool.free_all_free() });
    }

    /// Mirrors the pool's retirement counts for `pending` readers.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    unsafe fn mirror_pool(&self) {
        // SAFETY: precondition 1.
        let (i, o) = self
            .local
            .with(|l| unsafe { ((*l).pool.retired_in(), (*l).pool.retired_out()) });
        // Relaxed: statistics.
        self.pool_in.store(i, Ordering::Relaxed);
        self.pool_out.store(o, Ordering::Relaxed);
    }
}

/// A full bag sealed with the global epoch at the time it was sealed.
struct SealedBag {
    epoch: usize,
    bag: Bag,
    next: *mut SealedBag,
    /// One function that does much work (a handed-off pool backlog): left
    /// to unbounded collections (the periodic one, with the pin withdrawn,
    /// and the user's `flush`, `try_advance` and `synchronize`), never run
    /// by the bounded one that `defer` starts inside a critical section.
    heavy: bool,
}

/// A collector's shared state.
pub(crate) struct Global {
    /// The global epoch.
    pub(crate) epoch: CachePadded<AtomicUsize>,
    /// Sealed bags in three lists by `epoch % 3` (Fraser's limbo lists):
    /// when the global epoch is `G`, list `(G + 1) % 3` holds the bags
    /// sealed at `G - 2` (and possibly late-pushed older ones, also expired,
    /// or bags sealed at `G + 1` by a thread that saw a newer epoch, which
    /// are checked and put back). Collecting thus touches only bags that are
    /// almost all expired instead of walking everything pending. Each list
    /// is a Treiber list that is only pushed to or taken whole (`swap`), so
    /// it has no ABA problem.
    garbage: [CachePadded<AtomicPtr<SealedBag>>; 3],
    /// Deferred functions in sealed bags (for `pending` and for skipping
    /// the participant walk when there is nothing to free).
    garbage_count: AtomicUsize,
    /// Bounded collections started and finished, and those that put an
    /// expired bag back (see [`Global::collect_all_settled`]): while one
    /// runs it holds a limbo list privately and may put expired bags back
    /// instead of running them.
    bounded_started: AtomicUsize,
    bounded_finished: AtomicUsize,
    bounded_requeued: AtomicUsize,
    /// Deferred functions ever sealed (monotonic, wrapping): paces the
    /// background advances with `advance_mark` (see [`ADVANCE_BATCH`]).
    sealed: AtomicUsize,
    /// `sealed` at the last batch-triggered background advance attempt.
    advance_mark: AtomicUsize,
    /// When the next forced background attempt may be made
    /// ([`FORCED_ADVANCE_PERIOD_NS`]; not under loom and Miri).
    #[cfg(not(any(loom, miri)))]
    next_forced: AtomicU64,
    /// Head of the push-only participant list.
    participants: AtomicPtr<Participant>,
    /// Whether pins use a compiler fence and advances a `membarrier`
    /// (fixed at construction; see the module docs).
    asymmetric: bool,
    /// The byte bound each record's pool free list may grow to
    /// (`Pool::new`); [`POOL_FREE_BYTES`] (no growth) unless set with
    /// [`Global::with_pool_max`].
    pool_max: usize,
}

impl Global {
    /// A collector state; `asymmetric` only if the process registered for
    /// `membarrier` (see [`barrier::asymmetric_available`]).
    pub(crate) fn new(asymmetric: bool) -> Self {
        Self {
            epoch: CachePadded::new(AtomicUsize::new(0)),
            garbage: core::array::from_fn(|_| CachePadded::new(AtomicPtr::new(ptr::null_mut()))),
            garbage_count: AtomicUsize::new(0),
            bounded_started: AtomicUsize::new(0),
            bounded_finished: AtomicUsize::new(0),
            bounded_requeued: AtomicUsize::new(0),
            sealed: AtomicUsize::new(0),
            advance_mark: AtomicUsize::new(0),
            #[cfg(not(any(loom, miri)))]
            next_forced: AtomicU64::new(0),
            participants: AtomicPtr::new(ptr::null_mut()),
            asymmetric: asymmetric && barrier::asymmetric_available(),
            pool_max: POOL_FREE_BYTES,
        }
    }

    /// Lets every record's pool free list grow to `bytes` (see
    /// `Pool::missed`). Only before the first record registers.
    pub(crate) fn with_pool_max(mut self, bytes: usize) -> Self {
        self.pool_max = bytes;
        self
    }

    /// Whether this collector uses the asymmetric (fence-free pin) mode.
    pub(crate) fn asymmetric(&self) -> bool {
        self.asymmetric
    }

    /// Iterates over every participant record ever created.
    fn for_each_participant(&self, mut f: impl FnMut(&Participant) -> bool) {
        // Acquire pairs with the Release CAS in `register` that published
        // the record, so its fields (and `next`) are initialized here.
        let mut p = self.participants.load(Ordering::Acquire);
        while !p.is_null() {
            // SAFETY: records are freed only in `Global::drop`, which has
            // exclusive access; while `&self` exists every record is alive.
            let r = unsafe { &*p };
            if !f(r) {
                return;
            }
            // Relaxed: `next` was written before the record was published
            // and never changes; the Acquire above (or the one that loaded
            // an earlier record, transitively through the publishing CAS
            // chain on `participants`) already made it visible.
            p = r.next.load(Ordering::Relaxed);
        }
    }

    /// Claims a free record or allocates a new one. The calling thread owns
    /// the returned record until it calls [`Global::release`].
    pub(crate) fn register(&self) -> *const Participant {
        let mut found: *const Participant = ptr::null();
        self.for_each_participant(|p| {
            // Acquire (on success) pairs with the Release store in
            // `release`: the previous owner's writes to `local` happen
            // before ours.
            if !p.in_use.load(Ordering::Relaxed)
                && p.in_use
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                found = p;
                return false;
            }
            true
        });
        if !found.is_null() {
            return found;
        }
        let new = Box::into_raw(Box::new(Participant::new_owned(
            self.asymmetric,
            self.pool_max,
        )));
        let mut head = self.participants.load(Ordering::Relaxed);
        loop {
            // SAFETY: `new` is ours alone until the CAS below publishes it.
            unsafe { (*new).next.store(head, Ordering::Relaxed) };
            // Release pairs with the Acquire load in `for_each_participant`:
            // walkers see the initialized record.
            match self.participants.compare_exchange_weak(
                head,
                new,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return new,
                Err(h) => head = h,
            }
        }
    }

    /// Gives `p` up: its unsealed garbage goes to the global list and the
    /// record becomes free for another thread.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` (it registered it and has not released
    ///    it) and `p` belongs to `self`.
    /// 2. The thread holds no guard on `p`.
    pub(crate) unsafe fn release(&self, p: &Participant) {
        // SAFETY: precondition 1: we own `p`, so we may touch `local`.
        let bag = p.local.with_mut(|l| unsafe {
            debug_assert!((*l).nested & !EXITED == 0);
            (*l).nested = 0;
            core::mem::replace(&mut (*l).bag, Bag::new())
        });
        p.bag_len.store(0, Ordering::Relaxed);
        if !bag.is_empty() {
            self.push_bag(bag);
        }
        // The pool: recycled blocks go back to the allocator (so a record
        // of an exited thread holds none), retired ones to the garbage list,
        // to be freed after their grace period like any deferred function.
        // SAFETY: precondition 1: owner-only state; no user code runs.
        p.local.with_mut(|l| unsafe { (*l).pool.free_all_free() });
        // SAFETY: precondition 1.
        unsafe { self.hand_off_pool(p) };
        // Release pairs with the Acquire CAS in `register`: the next owner
        // sees our last writes to `local`.
        p.in_use.store(false, Ordering::Release);
    }

    /// Pins `p` if it is not pinned yet. Returns `true` when a periodic
    /// collection is due: the caller runs [`Global::periodic`] *after* it
    /// has built the guard, so that a panicking destructor run there unwinds
    /// through the guard's drop and unpins (running it here, before the guard
    /// existed, left the thread pinned forever: issue 14, defect 1).
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, and `p` belongs to `self`.
    #[inline(always)]
    pub(crate) unsafe fn pin(&self, p: &Participant) -> bool {
        // Not `guards += 1; guards == 1`: see `LocalState::nested`.
        if p.is_pinned() {
            // SAFETY: precondition 1.
            unsafe { Self::pin_nested(p) };
            return false;
        }
        // Acquire: pairs with the release sequence of every sealing RMW in
        // `push_bag` (all later writes to the epoch are RMWs: the advance
        // CASes). If this load reads an epoch newer than the one a bag was
        // sealed with, the sealer's unlinks happen before our critical
        // section, which therefore cannot reach that garbage ("seal lemma",
        // docs/rcu.md §4).
        let global = self.epoch.load(Ordering::Acquire);
        // Release: pairs with the advancer's Acquire (fence, or loads under
        // TSan): every earlier critical section of this thread happens before
        // an advance that reads this word. (A Relaxed store here left a gap
        // in the C++20 model: the earlier unpin's release sequence does not
        // continue through a later plain store of the same thread.) Free on
        // x86 (a plain `mov`).
        p.epoch.store(pinned_word(global), Ordering::Release);
        // The store must be visible to an advancer before the critical
        // section's loads read anything it freed: the store-buffering
        // handshake with `try_advance`'s `barrier::heavy`. In the asymmetric
        // mode only the compiler is stopped here and the advancer's
        // membarrier runs the CPU barrier on this thread; otherwise a SeqCst
        // fence pairing with the advancer's, issued by `pin_cold`: a
        // symmetric record's countdown stays at 1, so every pin takes that
        // branch, and the asymmetric hot path has one test (the countdown)
        // instead of two (the mode, then the countdown). loom has no
        // compiler fence (the shim makes it a SeqCst fence), so there the
        // barrier is issued here, as `barrier::light` always did.
        #[cfg(not(loom))]
        crate::sync::atomic::compiler_fence(Ordering::SeqCst);
        #[cfg(loom)]
        barrier::light(p.asymmetric);

        // SAFETY: precondition 1: owner-only state.
        let cold = p.local.with_mut(|l| unsafe {
            (*l).pins_left = (*l).pins_left.wrapping_sub(1);
            (*l).pins_left == 0
        });
        // SAFETY: precondition 1.
        cold && unsafe { self.pin_cold(p) }
    }

    /// A nested pin: counts the guard, touches nothing shared.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`.
    #[cold]
    #[inline(never)]
    unsafe fn pin_nested(p: &Participant) {
        // SAFETY: precondition 1: owner-only state.
        p.local.with_mut(|l| unsafe { (*l).nested += 1 });
    }

    /// The rare branch of [`pin`](Self::pin): the countdown reached zero.
    /// Asymmetric: a periodic collection is due. Symmetric (every pin): the
    /// pin's `SeqCst` fence, then the periodic countdown. Returns whether a
    /// periodic collection is due.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, and `p` belongs to `self`; `pin`
    ///    has just stored `p`'s pin word.
    #[cold]
    #[inline(never)]
    unsafe fn pin_cold(&self, p: &Participant) -> bool {
        if p.asymmetric {
            // SAFETY: precondition 1: owner-only state.
            p.local
                .with_mut(|l| unsafe { (*l).pins_left = PINS_BETWEEN_COLLECT });
            return true;
        }
        // SeqCst fence: `barrier::light`'s symmetric half, pairing with
        // the advancer's (see `pin`); after the pin word's store, before
        // any load of the critical section (this runs inside `pin`).
        #[cfg(not(loom))]
        barrier::light(false);
        // SAFETY: precondition 1: owner-only state.
        p.local.with_mut(|l| unsafe {
            (*l).pins_left = 1;
            (*l).sym_pins_left -= 1;
            if (*l).sym_pins_left == 0 {
                (*l).sym_pins_left = PINS_BETWEEN_COLLECT;
                true
            } else {
                false
            }
        })
    }

    /// [`periodic`](Self::periodic) for the outermost guard that
    /// [`pin`](Self::pin) has just built, before its critical section
    /// begins: the pin is withdrawn while the work runs and published again
    /// afterwards, at the epoch of that moment.
    ///
    /// The work runs deferred functions, and one of them can take long (a
    /// pool backlog handed to the garbage list frees thousands of blocks,
    /// each `free` contending for the arena lock of the thread that
    /// allocated it). Pinned, that stalled every advance for as long: with
    /// 4–8 writers of a B-tree on 2 CPUs, single operations took up to 1.4 s,
    /// the epoch stood still, the writers' pools ran dry and the process grew
    /// to 1 GB (docs/epoch.md, "Collecting with the pin withdrawn").
    /// Nothing has been read under the guard yet, so withdrawing the pin
    /// protects nothing less.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, `p` belongs to `self`, and `pin` has
    ///    just pinned `p` for a guard that is the thread's only one on `p`
    ///    (not nested), that unpins it if this unwinds, and through which
    ///    nothing has been loaded yet.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn periodic_withdrawn(&self, p: &Participant) {
        /// Ends the withdrawal, also when the work unwinds.
        struct Republish<'a> {
            global: &'a Global,
            p: &'a Participant,
            completed: bool,
        }
        impl Drop for Republish<'_> {
            fn drop(&mut self) {
                if self.p.is_pinned() {
                    // A guard that a deferred function took in there (a
                    // real pin: the word showed unpinned) is still alive,
                    // kept in a thread-local, say. Its word stays (an epoch
                    // no newer than the one we would publish, so it protects
                    // the caller's guard too), and the caller's guard counts
                    // as nested on it: whichever is dropped last unpins.
                    // SAFETY: precondition 1 of `periodic_withdrawn`:
                    // owner-only state; no user code runs.
                    self.p.local.with_mut(|l| unsafe { (*l).nested += 1 });
                } else if self.completed {
                    // SAFETY: precondition 1; the word is unpinned and the
                    // caller's critical section begins after this.
                    unsafe { self.global.republish_pin(self.p) };
                }
                // Unwinding with the word unpinned: the caller's guard is
                // dropped next and unpins (stores the unpinned word again).
            }
        }
        // Release: as in `unpin` (what this thread did before, its earlier
        // critical sections, happens before an advance that reads this
        // word). The guard's own critical section has not begun.
        p.epoch.store(0, Ordering::Release);
        let mut end = Republish {
            global: self,
            p,
            completed: false,
        };
        // SAFETY: precondition 1. A deferred function run in there may pin
        // and unpin `p` itself (a real pin: the word shows unpinned), and
        // may keep such a guard past this call (`Republish` handles it); a
        // panic unwinds through `end` and then the caller's guard.
        unsafe { self.periodic(p) };
        end.completed = true;
    }

    /// Publishes `p`'s pin again after
    /// [`periodic_withdrawn`](Self::periodic_withdrawn), exactly as
    /// [`pin`](Self::pin) does (the
    /// same Acquire load, Release store and store-buffering barrier), but
    /// without touching the guard count or the countdown.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, `p` belongs to `self`, `p`'s word is
    ///    unpinned and a guard of this thread on `p` is about to begin its
    ///    critical section.
    #[inline]
    unsafe fn republish_pin(&self, p: &Participant) {
        // Acquire: as in `pin` (the seal lemma: pairs with the release
        // sequence of the sealing RMWs).
        let global = self.epoch.load(Ordering::Acquire);
        // Release: as in `pin` (pairs with the advancer's Acquire fence).
        p.epoch.store(pinned_word(global), Ordering::Release);
        // The store-buffering handshake with `try_advance`'s
        // `barrier::heavy`, as in `pin` and `pin_cold`: a compiler fence in
        // the asymmetric mode (the advancer's membarrier is the CPU
        // barrier), a SeqCst fence otherwise; loom's shim always fences.
        #[cfg(not(loom))]
        {
            crate::sync::atomic::compiler_fence(Ordering::SeqCst);
            if !p.asymmetric {
                barrier::light(false);
            }
        }
        #[cfg(loom)]
        barrier::light(p.asymmetric);
    }

    /// The periodic background work of every [`PINS_BETWEEN_COLLECT`]-th
    /// pin: seal this thread's bag if it holds anything (so garbage of a
    /// thread that defers rarely does not wait for the bag to fill), then
    /// advance (paced in the asymmetric mode) and collect.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, `p` belongs to `self`, and a guard
    ///    of this thread on `p` unpins it if this unwinds (`p` may be
    ///    pinned or, in [`periodic_withdrawn`](Self::periodic_withdrawn),
    ///    withdrawn).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn periodic(&self, p: &Participant) {
        // SAFETY: precondition 1: owner-only state; no user code runs while
        // the `&mut` is live.
        let (bag, force) = p.local.with_mut(|l| unsafe {
            (*l).checks = (*l).checks.wrapping_add(1);
            let force = (*l).checks % CHECKS_PER_FORCED_ADVANCE == 0;
            let bag = if (*l).bag.is_empty() {
                None
            } else {
                Some(core::mem::replace(&mut (*l).bag, Bag::new()))
            };
            (bag, force)
        });
        let own = bag.is_some();
        if let Some(bag) = bag {
            p.bag_len.store(0, Ordering::Relaxed);
            self.push_bag(bag);
        }
        // SAFETY: precondition 1.
        let pooled = unsafe { self.tend_pool(p) };
        // A thread with no garbage of its own (a pure reader, e.g. of an
        // `Rcu`) helps advance and collect only while the threads that seal
        // garbage are idle: on its forced checks, and only if nothing was
        // sealed since its previous one. Producers collect their own garbage
        // whenever they seal a bag (`defer`), and a reader that pins 30× as
        // often would otherwise win every race to the expired bags and run
        // the writer's destructors (15 % of an `Rcu` reader's time with a
        // continuous writer, in `perf`). Skipping is always safe; once
        // producers stop sealing, readers take over within two forced
        // checks, so a rarely written cell still drops its old values.
        // Asymmetric mode only (loom, Miri and TSan keep exploring the
        // symmetric executions as before).
        if !own && !pooled && self.asymmetric {
            if !force {
                return;
            }
            // Relaxed: a pacing hint, like `background_advance`'s.
            let sealed = self.sealed.load(Ordering::Relaxed);
            // SAFETY: precondition 1: owner-only state.
            let busy = p.local.with_mut(|l| unsafe {
                let busy = (*l).seen_sealed != sealed;
                (*l).seen_sealed = sealed;
                busy
            });
            if busy {
                return;
            }
        }
        // Relaxed: a hint; skipping the walk when there is nothing sealed.
        if pooled || self.garbage_count.load(Ordering::Relaxed) > 0 {
            self.background_advance(force);
            self.collect();
        }
    }

    /// Seals `p`'s open pool list if it holds anything and expires what the
    /// current epoch allows. Returns whether retired blocks remain.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    unsafe fn tend_pool(&self, p: &Participant) -> bool {
        // SAFETY: precondition 1: owner-only state.
        let (open, retired) = p
            .local
            .with(|l| unsafe { ((*l).pool.open_len(), (*l).pool.retired()) });
        if retired == 0 {
            return false;
        }
        if open > 0 {
            // SAFETY: precondition 1.
            unsafe { self.seal_pool(p) };
        }
        // Acquire: pairs with the AcqRel advance CAS (release sequence on
        // the epoch), as in `collect`: the critical sections that ended
        // before the advance happen before the reuse.
        let global = self.epoch.load(Ordering::Acquire);
        // SAFETY: precondition 1; `global` loaded with Acquire here.
        p.local.with_mut(|l| unsafe { (*l).pool.expire(global) });
        // SAFETY: precondition 1.
        unsafe { p.mirror_pool() };
        // SAFETY: precondition 1.
        p.local.with(|l| unsafe { (*l).pool.retired() }) > 0
    }

    /// Retires `b` into `p`'s pool (see `super::pool`); seals the open
    /// list every `POOL_BATCH` retirements.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, `p` belongs to `self` and is pinned.
    /// 2. `b` meets [`Pool::retire`]'s precondition.
    #[inline]
    pub(crate) unsafe fn retire_block(
        &self,
        p: &Participant,
        b: *mut u8,
        layout: core::alloc::Layout,
    ) {
        // SAFETY: preconditions 1 and 2; no user code runs.
        let (due, n) = p.local.with_mut(|l| unsafe {
            let due = (*l).pool.retire(b, layout);
            (due, (*l).pool.retired_in())
        });
        // Relaxed: a statistic for `pending` and the stack's pop count (a
        // plain `mov`).
        p.pool_in.store(n, Ordering::Relaxed);
        if due {
            // SAFETY: precondition 1.
            unsafe { self.seal_pool(p) };
        }
    }

    /// Seals `p`'s open pool list with an RMW read of the epoch (the seal
    /// lemma: every retirement in it, an unlink sequenced before, is visible
    /// to any pin that reads a newer epoch), expiring what that epoch
    /// allows; then paces an advance as for sealed bags. Returns the seal
    /// epoch.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn seal_pool(&self, p: &Participant) -> usize {
        let epoch = self.read_epoch_rmw();
        // SAFETY: precondition 1: owner-only state; `epoch` was read by an
        // RMW after every retirement in the open list.
        let (n, over, size) = p.local.with_mut(|l| unsafe {
            let n = (*l).pool.seal(epoch);
            (n, (*l).pool.over_retained(), (*l).pool.block_size())
        });
        // SAFETY: precondition 1.
        unsafe { p.mirror_pool() };
        self.note_sealed(pool_pace_units(n, size));
        if over {
            // The epoch has not moved far enough for this thread's own seals
            // to expire its backlog (it pops without pushing, or others stay
            // pinned): hand the backlog to the garbage list, where any
            // thread's collection reaches it, so a thread that then stops
            // popping holds at most one cap's worth, plus the open list it
            // retires into next (fewer than `pool_batch` blocks).
            // SAFETY: precondition 1.
            unsafe { self.hand_off_pool(p) };
        }
        self.background_advance(false);
        epoch
    }

    /// Hands every retired block of `p`'s pool (open and sealed) to the
    /// garbage list as one deferred free, so that any thread's collection
    /// frees it after its grace period instead of waiting for `p`'s owner to
    /// seal, pin or exit again.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    unsafe fn hand_off_pool(&self, p: &Participant) {
        // SAFETY: precondition 1: owner-only state; no user code runs.
        let retired = p.local.with_mut(|l| unsafe { (*l).pool.take_retired() });
        // SAFETY: precondition 1.
        unsafe { p.mirror_pool() };
        if let Some((chain, n)) = retired {
            let mut bag = Bag::new();
            let d = Deferred::new(move || {
                // SAFETY: a deferred function runs after the grace period
                // of its bag's seal, which follows every retirement in the
                // chain (this thread retired them all before this call), so
                // no thread can access the blocks; it runs once.
                unsafe { chain.free() }
            });
            if bag.try_push(d).is_err() {
                unreachable!("a fresh bag has room");
            }
            // Heavy: thousands of frees, each against the arena lock of the
            // thread that allocated the block. Run inside a critical
            // section (a bounded collection from `defer`), that held the
            // epoch back for up to seconds with 8 writers on 2 CPUs; only
            // unbounded collections (with the pin withdrawn, or unpinned)
            // run it.
            self.push_bag_as(bag, true);
            // `push_bag` counted one function; the pacing counts blocks.
            self.note_sealed(n.saturating_sub(1));
        }
    }

    /// An advance attempt not asked for by the user. In the symmetric mode
    /// always; in the asymmetric mode only when [`ADVANCE_BATCH`] deferred
    /// functions were sealed since the last such attempt, or when `force`d
    /// and the collector's forced period has passed.
    fn background_advance(&self, force: bool) {
        if !self.asymmetric {
            self.try_advance();
            return;
        }
        // Relaxed: heuristics; no data is read on the strength of them. The
        // CAS only elects one thread per batch to pay the membarrier.
        let sealed = self.sealed.load(Ordering::Relaxed);
        let mark = self.advance_mark.load(Ordering::Relaxed);
        if sealed.wrapping_sub(mark) >= ADVANCE_BATCH {
            // While a thread is visibly pinned at an older epoch, keep the
            // batch due (a cheap walk per seal, no barrier) instead of
            // spending it: the advance then follows as soon as that thread
            // moves on, not another batch later. Relaxed: a hint only.
            if self.visibly_blocked(self.epoch.load(Ordering::Relaxed)) {
                return;
            }
            if self
                .advance_mark
                .compare_exchange(mark, sealed, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.try_advance();
            }
            return;
        }
        if force && self.forced_attempt_due() {
            self.try_advance();
        }
    }

    /// Whether a forced background attempt may be made now (at most one
    /// per [`FORCED_ADVANCE_PERIOD_NS`] per collector; always under loom
    /// and Miri, which have no useful clock).
    #[cfg(not(any(loom, miri)))]
    fn forced_attempt_due(&self) -> bool {
        let now = now_ns();
        // Relaxed: a rate limit; the CAS elects one thread per period.
        let next = self.next_forced.load(Ordering::Relaxed);
        now >= next
            && self
                .next_forced
                .compare_exchange(
                    next,
                    now + FORCED_ADVANCE_PERIOD_NS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    #[cfg(any(loom, miri))]
    fn forced_attempt_due(&self) -> bool {
        true
    }

    /// Counts `n` newly sealed deferred functions (see [`ADVANCE_BATCH`]).
    #[inline]
    fn note_sealed(&self, n: usize) {
        // Relaxed: a pacing statistic.
        self.sealed.fetch_add(n, Ordering::Relaxed);
    }

    /// Drops one pin of `p`; unpins when it was the last. Returns `true`
    /// when the record must now be released by the caller: its thread
    /// exited while this guard was alive (see `LocalState::nested`).
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, and holds a pin on it taken with
    ///    [`Global::pin`].
    #[inline]
    pub(crate) unsafe fn unpin(&self, p: &Participant) -> bool {
        // SAFETY: precondition 1: owner-only state.
        let nested = p.local.with(|l| unsafe { (*l).nested });
        if nested != 0 {
            // SAFETY: precondition 1.
            return unsafe { Self::unpin_nested(p, nested) };
        }
        // Release pairs with the advancer's Acquire fence (Acquire loads
        // under TSan) in `try_advance`: every access of the critical section
        // happens before an advance that reads this store, and so before any
        // free that advance allows.
        p.epoch.store(0, Ordering::Release);
        false
    }

    /// [`unpin`](Self::unpin) when `nested` (the record's `nested` word)
    /// is not zero: drops a nested guard, or the last guard of an orphaned
    /// record (then unpins it and returns `true`).
    ///
    /// # Safety
    /// 1. As for [`unpin`](Self::unpin).
    #[cold]
    #[inline(never)]
    unsafe fn unpin_nested(p: &Participant, nested: usize) -> bool {
        if nested & !EXITED != 0 {
            // SAFETY: precondition 1: owner-only state.
            p.local.with_mut(|l| unsafe { (*l).nested = nested - 1 });
            return false;
        }
        debug_assert_eq!(nested, EXITED);
        // Release: as in `unpin`.
        p.epoch.store(0, Ordering::Release);
        true
    }

    /// Adds `d` to `p`'s bag, sealing the bag into the global list when full.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, `p` belongs to `self`, and `p` is pinned.
    /// 2. If `hinted`, `d` came from [`Deferred::hinted`].
    pub(crate) unsafe fn defer(&self, p: &Participant, d: Deferred, hinted: bool) {
        // Relaxed: a heuristic. With no sealed garbage in the collector
        // nothing advances the epoch, so a bag that is not full would wait
        // (possibly for ever, for a thread that defers rarely: an `Rcu`
        // updated once an hour kept up to 30 old values alive). Then the bag
        // is sealed at once; a busy collector (sealed garbage pending) lets
        // bags fill as before.
        let idle = self.garbage_count.load(Ordering::Relaxed) == 0;
        // SAFETY: precondition 1: owner-only state. No user code runs while
        // the `&mut` is live (moving a `Deferred` runs nothing). Precondition
        // 2 is `try_push_hinted`'s.
        let full = p.local.with_mut(|l| unsafe {
            match (*l).bag.try_push_hinted(d, hinted) {
                Ok(()) if idle => {
                    p.bag_len.store(0, Ordering::Relaxed);
                    Some(core::mem::replace(&mut (*l).bag, Bag::new()))
                }
                Ok(()) => {
                    p.bag_len.store((*l).bag.len(), Ordering::Relaxed);
                    None
                }
                Err(d) => {
                    let full = core::mem::replace(&mut (*l).bag, Bag::new());
                    if (*l).bag.try_push_hinted(d, hinted).is_err() {
                        unreachable!("a fresh bag has room");
                    }
                    p.bag_len.store(1, Ordering::Relaxed);
                    Some(full)
                }
            }
        });
        if let Some(full) = full {
            self.push_bag(full);
            self.background_advance(false);
            // Bounded: this runs inside the caller's critical section, so
            // whatever it runs holds the epoch back (see
            // `DEFER_COLLECT_BAGS`); the periodic collection, with the pin
            // withdrawn, runs the rest.
            self.collect_bounded(DEFER_COLLECT_BAGS);
        }
    }

    /// Seals `p`'s bag into the global list now.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    pub(crate) unsafe fn flush(&self, p: &Participant) {
        // SAFETY: precondition 1.
        unsafe { self.seal_own(p) };
        self.try_advance();
        self.collect();
        // SAFETY: precondition 1.
        unsafe { self.expire_own_pool(p) };
    }

    /// Expires what the current epoch allows in `p`'s pool.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    pub(crate) unsafe fn expire_own_pool(&self, p: &Participant) {
        // Acquire: as in `tend_pool`.
        let global = self.epoch.load(Ordering::Acquire);
        // SAFETY: precondition 1; `global` loaded with Acquire here.
        p.local.with_mut(|l| unsafe { (*l).pool.expire(global) });
        // SAFETY: precondition 1.
        unsafe { p.mirror_pool() };
    }

    /// Seals `p`'s bag (if non-empty) and returns the epoch it was sealed
    /// with.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    pub(crate) unsafe fn seal_own(&self, p: &Participant) -> Option<usize> {
        // SAFETY: precondition 1: owner-only state.
        let bag = p
            .local
            .with_mut(|l| unsafe { core::mem::replace(&mut (*l).bag, Bag::new()) });
        p.bag_len.store(0, Ordering::Relaxed);
        let bag_epoch = if bag.is_empty() {
            None
        } else {
            Some(self.push_bag(bag))
        };
        // SAFETY: precondition 1.
        let open = p.local.with(|l| unsafe { (*l).pool.open_len() });
        if open == 0 {
            return bag_epoch;
        }
        // SAFETY: precondition 1.
        let pool_epoch = unsafe { self.seal_pool(p) };
        // Both read by RMWs on the epoch, the pool's later.
        Some(pool_epoch)
    }

    /// Seals `bag` with the current epoch and pushes it on the garbage list;
    /// returns the seal epoch.
    fn push_bag(&self, bag: Bag) -> usize {
        self.push_bag_as(bag, false)
    }

    /// [`push_bag`](Self::push_bag), marking the bag heavy or not (see
    /// [`SealedBag::heavy`]).
    fn push_bag_as(&self, bag: Bag, heavy: bool) -> usize {
        let n = bag.len();
        let epoch = self.read_epoch_rmw();
        let node = Box::into_raw(Box::new(SealedBag {
            epoch,
            bag,
            next: ptr::null_mut(),
            heavy,
        }));
        self.garbage_count.fetch_add(n, Ordering::Relaxed);
        self.note_sealed(n);
        self.push_sealed(epoch % 3, node, node);
        epoch
    }

    /// Reads the global epoch with a read-modify-write (`fetch_add(0)`).
    ///
    /// The seal lemma (docs/rcu.md §4): every unlink sequenced before this
    /// call is visible to any pin that reads an epoch newer than the value
    /// returned. This RMW is a release that heads a release sequence; every
    /// later write to the epoch is an RMW (the advance CAS), so a pin's
    /// Acquire load of a newer epoch synchronizes with it. No fence is needed
    /// on the pinning side for this half, which is what lets the pin drop its
    /// fence in the asymmetric mode. (The fence + load this replaces relied
    /// on the pinner's SeqCst fence.)
    pub(crate) fn read_epoch_rmw(&self) -> usize {
        // SeqCst: AcqRel would do for the release-sequence argument; SeqCst
        // keeps the RMW in S as well (free: it is a locked instruction on
        // x86 either way).
        self.epoch.fetch_add(0, Ordering::SeqCst)
    }

    /// Pushes the chain `first..=last` (linked through `next`) on list `i`.
    fn push_sealed(&self, i: usize, first: *mut SealedBag, last: *mut SealedBag) {
        let list = &self.garbage[i];
        let mut head = list.load(Ordering::Relaxed);
        loop {
            // SAFETY: the chain is ours until the CAS publishes it.
            unsafe { (*last).next = head };
            // Release pairs with the AcqRel swap in `collect_list`: the taker
            // sees the bag's contents.
            match list.compare_exchange_weak(head, first, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Advances the global epoch if every pinned participant has observed
    /// it; returns the global epoch after the attempt.
    ///
    /// If the asymmetric barrier fails (see `barrier::heavy`) the attempt
    /// is skipped: no advance, so nothing is freed on the strength of it.
    pub(crate) fn try_advance(&self) -> usize {
        // Acquire: pairs with the release sequence of the sealing RMWs (see
        // `read_epoch_rmw`): the unlinks of every bag sealed before the epoch
        // reached `global` happen before this load, hence before the barrier
        // below. That is what makes a pin that this walk misses see them.
        let global = self.epoch.load(Ordering::Acquire);
        // A cheap look first: if some participant is visibly pinned at an
        // older epoch the advance fails anyway, so do not pay the barrier
        // (in the asymmetric mode a membarrier that interrupts every CPU
        // running one of our threads). Skipping an advance is always safe;
        // a word seen here that is already stale (its thread unpinned) only
        // delays the advance to a later attempt. This is what keeps a
        // preempted pinned thread from turning every later attempt into a
        // wasted membarrier (`stack/push-pop-pairs` and `rcu/*` at 4 and 8
        // threads on 2 CPUs). Only in the asymmetric mode: the symmetric
        // barrier is a fence, cheaper than the walk, and loom, Miri and TSan
        // (always symmetric) keep exploring the same executions as before.
        if self.asymmetric && self.visibly_blocked(global) {
            return global;
        }
        // The reclaimer's side of the store-buffering handshake with `pin`
        // (`barrier::light`). Symmetric: a SeqCst fence; either a pinner's
        // fence precedes it in S (then the loads below see its pin word) or
        // follows it (then its critical section sees every unlink ordered
        // before this point). Asymmetric: fence, membarrier, fence; the
        // kernel runs a full barrier on every CPU running one of our threads
        // while the call is in progress: that barrier acts as the pinner's
        // fence, wherever the pinner was in its program. If it came after the
        // pin's store we see the store; if before, the pinner's later loads
        // (the epoch load and the critical section) see everything before
        // our first fence.
        if !barrier::heavy(self.asymmetric) {
            return global;
        }
        let mut blocked = false;
        self.for_each_participant(|p| {
            // Relaxed, then the Acquire fence below (the pairing with the
            // Release stores in `pin`/`unpin`). Under ThreadSanitizer, which
            // does not model fences, the load itself is Acquire so that it
            // sees the same happens-before edge.
            #[cfg(not(waitless_sanitize_thread))]
            let e = p.epoch.load(Ordering::Relaxed);
            #[cfg(waitless_sanitize_thread)]
            let e = p.epoch.load(Ordering::Acquire);
            if e & 1 == 1 && !pinned_epoch_matches(e, global) {
                blocked = true;
                return false;
            }
            true
        });
        if blocked {
            return global;
        }
        // Acquire fence: pairs with the Release stores in `unpin` and `pin`,
        // so every critical section we saw as ended happens before the
        // advance.
        fence(Ordering::Acquire);
        // AcqRel (success): the release half carries the fence above to
        // whoever reads the new epoch (`collect`); an RMW, so it continues
        // the release sequences of the sealing RMWs. Acquire on failure: we
        // return the value and callers compare with it.
        match self.epoch.compare_exchange(
            global,
            global.wrapping_add(1),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => global.wrapping_add(1),
            Err(now) => now,
        }
    }

    /// Whether a participant is seen pinned at an epoch other than
    /// `global`, without any barrier (see the pre-check in
    /// [`try_advance`](Self::try_advance)).
    fn visibly_blocked(&self, global: usize) -> bool {
        let mut blocked = false;
        self.for_each_participant(|p| {
            // Relaxed: a hint only; nothing is freed on the strength of it
            // (a `true` skips the advance; a `false` is re-checked after the
            // barrier).
            let e = p.epoch.load(Ordering::Relaxed);
            if e & 1 == 1 && !pinned_epoch_matches(e, global) {
                blocked = true;
                return false;
            }
            true
        });
        blocked
    }

    /// Runs the sealed bags whose epoch is at least two behind the global
    /// one, from the list where they gather (see `garbage`).
    pub(crate) fn collect(&self) {
        // Acquire pairs with the AcqRel CAS in `try_advance`: everything the
        // advancer ordered before the advance (the ended critical sections)
        // happens before the frees below.
        let global = self.epoch.load(Ordering::Acquire);
        self.collect_list(global.wrapping_add(1) % 3, global, None);
    }

    /// [`collect`](Self::collect) from inside a critical section: runs at
    /// most `max` expired bags, the oldest first, and no heavy one; the
    /// others stay on their list for a later collection.
    pub(crate) fn collect_bounded(&self, max: usize) {
        // Acquire: as in `collect`.
        let global = self.epoch.load(Ordering::Acquire);
        self.collect_list(global.wrapping_add(1) % 3, global, Some(max));
    }

    /// Like [`collect`](Self::collect) but examines all three limbo lists,
    /// so every sealed bag that is expired at `global` and not being run by
    /// another thread right now runs.
    pub(crate) fn collect_all(&self) {
        // Acquire: as in `collect`.
        let global = self.epoch.load(Ordering::Acquire);
        for i in 0..3 {
            self.collect_list(i, global, None);
        }
    }

    /// [`collect_all`](Self::collect_all), repeated while a bounded
    /// collection put back an expired bag that the pass may have missed, so
    /// that a bag which was expired and on a list when the call began has
    /// been taken to run (here, or by another thread's collection) when it
    /// returns.
    ///
    /// A bounded collection holds a list privately between its swap and its
    /// put-back. After a pass, this waits until every bounded collection
    /// counted as started has finished (a short window: no user code runs
    /// in it), then compares the count of those that put an expired bag
    /// back with the one read before the pass. One that took a list before
    /// this pass did is counted as started: its Relaxed `started` increment
    /// is sequenced before its AcqRel swap, and this pass read that list
    /// (its swap or its Acquire empty check) from the swap's release
    /// sequence (every write to a list is an RMW). Its `requeued`
    /// increment is sequenced before its Release `finished` increment,
    /// which the wait reads with Acquire. One whose `requeued` increment
    /// (Release, after its put-back) was already counted in `r0` put its
    /// bags back before the pass read the lists.
    /// Only a collection that actually put an expired bag back makes the
    /// pass repeat, and this pass runs every expired bag it finds (heavy
    /// ones too), so steady deferring elsewhere does not keep it looping.
    pub(crate) fn collect_all_settled(&self) {
        let backoff = crate::Backoff::new();
        loop {
            // Acquire: pairs with the Release `requeued` increment, which
            // follows its collection's put-back: a count read here has its
            // bags on the lists for the pass below.
            let r0 = self.bounded_requeued.load(Ordering::Acquire);
            self.collect_all();
            // Acquire: see above.
            let started = self.bounded_started.load(Ordering::Acquire);
            // Wrapping counters: "finished has reached started".
            while (self
                .bounded_finished
                .load(Ordering::Acquire)
                .wrapping_sub(started) as isize)
                < 0
            {
                backoff.snooze();
            }
            // Acquire: as above.
            if self.bounded_requeued.load(Ordering::Acquire) == r0 {
                return;
            }
        }
    }

    /// Runs the expired bags of list `i` as of epoch `global` (which the
    /// caller loaded with Acquire) and puts the others back; with a `bound`,
    /// at most that many, the oldest first, and no heavy one.
    fn collect_list(&self, i: usize, global: usize, bound: Option<usize>) {
        let list = &self.garbage[i];
        // Acquire: reading null from another collection's swap (or a later
        // write of the list's release sequence) synchronizes with it, so
        // that `collect_all_settled` sees that collection as started.
        if list.load(Ordering::Acquire).is_null() {
            return;
        }
        if bound.is_some() {
            // Relaxed: ordered before the swap below by its release half
            // (see `collect_all_settled`).
            self.bounded_started.fetch_add(1, Ordering::Relaxed);
        }
        // AcqRel: the Acquire half pairs with the Release CAS in
        // `push_sealed` (we see the bags' contents) and with other takers'
        // swaps; the Release half heads a release sequence on the list (all
        // its writes are RMWs) that carries our `bounded_started` increment
        // to the next taker (`collect_all_settled`).
        let chain = list.swap(ptr::null_mut(), Ordering::AcqRel);
        // Signed distance: a bag sealed *after* our load of the global
        // epoch (its sealer saw `global + 1`) is one step in the future,
        // not `usize::MAX` steps in the past. (Treating that difference as
        // unsigned freed such bags at once — Miri caught it as a
        // use-after-free in the 8-thread stack test.)
        let runnable = |b: *mut SealedBag| {
            // SAFETY: the swap made the whole chain ours.
            let (epoch, heavy) = unsafe { ((*b).epoch, (*b).heavy) };
            debug_assert_eq!(epoch % 3, i, "a bag on the wrong list");
            epoch_at_least(global, epoch.wrapping_add(2)) && !(heavy && bound.is_some())
        };
        // The chain runs from the newest bag to the oldest. With a bound,
        // the newest runnable ones beyond it go back: count them first.
        let mut skip = 0;
        if let Some(max) = bound {
            let mut cur = chain;
            while !cur.is_null() {
                skip += usize::from(runnable(cur));
                // SAFETY: ours, as above.
                cur = unsafe { (*cur).next };
            }
            skip = skip.saturating_sub(max);
        }
        // Put back in the same order (newest first, so that the next
        // bounded pass also finds the oldest last); run the rest oldest
        // first (prepending reverses).
        let mut run: *mut SealedBag = ptr::null_mut();
        let (mut kept, mut kept_last): (*mut SealedBag, *mut SealedBag) =
            (ptr::null_mut(), ptr::null_mut());
        // Whether an expired bag goes back (over the bound, or heavy).
        let mut requeued = false;
        let mut cur = chain;
        while !cur.is_null() {
            // SAFETY: ours, as above.
            let next = unsafe { (*cur).next };
            let go = runnable(cur) && {
                let over = skip > 0;
                skip = skip.saturating_sub(1);
                !over
            };
            if go {
                // SAFETY: ours; the node moves to the run chain.
                unsafe { (*cur).next = run };
                run = cur;
            } else {
                // SAFETY: ours, as above.
                requeued |= epoch_at_least(global, unsafe { (*cur).epoch }.wrapping_add(2));
                // No user code runs here, so a panic cannot lose the chain.
                // SAFETY: ours; the node moves to the end of the kept chain.
                unsafe { (*cur).next = ptr::null_mut() };
                if kept_last.is_null() {
                    kept = cur;
                } else {
                    // SAFETY: ours.
                    unsafe { (*kept_last).next = cur };
                }
                kept_last = cur;
            }
            cur = next;
        }
        if !kept.is_null() {
            self.push_sealed(i, kept, kept_last);
        }
        if bound.is_some() {
            if requeued {
                // Release: the put-back happens before a `collect_all_settled`
                // that reads this count before its pass (its `r0`): that pass
                // then finds the bags. (Relaxed let such a pass read the
                // count and miss the bags, then compare equal and return:
                // loom, `a_settled_collection_runs_what_a_bounded_one_put_back`.)
                self.bounded_requeued.fetch_add(1, Ordering::Release);
            }
            // Release: our put-back (and the `requeued` count) happens
            // before whoever reads this count (`collect_all_settled`).
            self.bounded_finished.fetch_add(1, Ordering::Release);
        }
        free_chain(run, &self.garbage_count);
    }
}

/// Runs and frees a private chain of sealed bags. If a deferred function
/// panics, the rest of the chain is still run and freed while unwinding.
fn free_chain(mut cur: *mut SealedBag, count: &AtomicUsize) {
    struct Rest<'a>(*mut SealedBag, &'a AtomicUsize);
    impl Drop for Rest<'_> {
        fn drop(&mut self) {
            free_chain(self.0, self.1);
        }
    }
    while !cur.is_null() {
        // SAFETY: the chain is private to this thread and every node came
        // from `Box::into_raw` in `push_bag`; each is freed once.
        let b = unsafe { Box::from_raw(cur) };
        cur = b.next;
        count.fetch_sub(b.bag.len(), Ordering::Relaxed);
        let rest = Rest(cur, count);
        // Dropping the bag runs its functions.
        drop(b);
        core::mem::forget(rest);
    }
}

impl Global {
    /// Pending deferred functions: sealed ones plus every thread's bag.
    pub(crate) fn pending(&self) -> usize {
        let mut n = self.garbage_count.load(Ordering::Relaxed);
        self.for_each_participant(|p| {
            // Relaxed: statistics. The two counts are monotonic (wrapping)
            // and read without stopping the owner: a difference that looks
            // negative (a newer `pool_out` than `pool_in`) counts as 0.
            let out = p.pool_out.load(Ordering::Relaxed);
            let waiting = p.pool_in.load(Ordering::Relaxed).wrapping_sub(out);
            let waiting = if waiting > isize::MAX as usize {
                0
            } else {
                waiting
            };
            n += p.bag_len.load(Ordering::Relaxed) + waiting;
            true
        });
        n
    }

    /// Blocks ever retired into the records' pools (a stack's pops that
    /// unlinked a node), summed over every participant (wrapping).
    pub(crate) fn sum_retired(&self) -> u64 {
        let mut n = 0u64;
        self.for_each_participant(|p| {
            // Relaxed: a statistic.
            n = n.wrapping_add(p.pool_in.load(Ordering::Relaxed) as u64);
            true
        });
        n
    }

    /// Sums statistics counter `i` over every participant.
    pub(crate) fn sum_counter(&self, i: usize) -> u64 {
        let mut n = 0u64;
        self.for_each_participant(|p| {
            n = n.wrapping_add(p.counters[i].load(Ordering::Relaxed));
            true
        });
        n
    }
}

impl Drop for Global {
    fn drop(&mut self) {
        // `&mut self`: no guard, no pin and no thread exit touches this
        // collector any more (see `Collector::drop`), so every bag may run.
        let mut p = self.participants.load(Ordering::Relaxed);
        let mut records: Vec<*mut Participant> = Vec::new();
        while !p.is_null() {
            records.push(p);
            // SAFETY: records are alive until freed below.
            p = unsafe { (*p).next.load(Ordering::Relaxed) };
        }
        /// Frees the records (running their bags), panic-safely.
        struct Free(Vec<*mut Participant>);
        impl Drop for Free {
            fn drop(&mut self) {
                while let Some(p) = self.0.pop() {
                    // SAFETY: every record came from `Box::into_raw` in
                    // `register` and is popped, so freed, once. Dropping it
                    // drops its bag, which runs the bag's functions.
                    drop(unsafe { Box::from_raw(p) });
                }
            }
        }
        let free = Free(records);
        // One chain of all three lists, run by one `free_chain` (which keeps
        // going if a function panics). Running the lists one by one lost
        // the lists after a panicking one (found by the soak test).
        let mut all: *mut SealedBag = ptr::null_mut();
        for list in &self.garbage {
            let mut cur = list.swap(ptr::null_mut(), Ordering::Relaxed);
            while !cur.is_null() {
                // SAFETY: `&mut self`: the chains are ours alone.
                let next = unsafe { (*cur).next };
                // SAFETY: as above.
                unsafe { (*cur).next = all };
                all = cur;
                cur = next;
            }
        }
        free_chain(all, &self.garbage_count);
        drop(free);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdUsize;
    use std::sync::Arc;

    /// A sealed bag, the one block the collector allocates per bag, is a
    /// small-bin request for glibc (at most 1000 bytes: a chunk below
    /// 1024), so allocating one never triggers `malloc_consolidate`
    /// (`deferred::BAG_CAP`).
    #[test]
    fn a_sealed_bag_is_a_small_bin_request() {
        if super::super::deferred::BAG_CAP >= 30 {
            let size = core::mem::size_of::<SealedBag>();
            assert!(size <= 1000, "a sealed bag takes {size} bytes");
        }
    }

    /// A bag sealed by a thread that already saw the next epoch must not
    /// be run by a collector that loaded the previous one (regression: an
    /// unsigned epoch difference made it look `usize::MAX` epochs old).
    #[test]
    fn a_bag_from_the_next_epoch_is_not_expired() {
        let g = Global::new(false);
        let ran = Arc::new(StdUsize::new(0));
        let mut bag = Bag::new();
        let r = Arc::clone(&ran);
        assert!(bag
            .try_push(Deferred::new(move || {
                r.fetch_add(1, Ordering::Relaxed);
            }))
            .is_ok());
        g.garbage_count.fetch_add(1, Ordering::Relaxed);
        // Sealed at epoch 1 while the global epoch is still 0: it sits in
        // list 1, exactly the list `collect` examines at epoch 0.
        let node = Box::into_raw(Box::new(SealedBag {
            epoch: 1,
            bag,
            next: ptr::null_mut(),
            heavy: false,
        }));
        g.push_sealed(1, node, node);
        g.collect();
        assert_eq!(ran.load(Ordering::Relaxed), 0, "ran a bag from the future");
        assert_eq!(g.pending(), 1);
        // Epochs 1 → 3: now it is two behind and runs.
        g.epoch.store(3, Ordering::Relaxed);
        g.collect();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        assert_eq!(g.pending(), 0);
    }

    /// A bounded collection (the one `defer` starts inside a critical
    /// section) runs at most its bound of expired bags, the oldest first,
    /// and keeps the rest (and the unexpired ones) for later.
    #[test]
    fn a_bounded_collection_runs_the_oldest_expired_bags_and_keeps_the_rest() {
        let g = Global::new(false);
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Bags 0..5 sealed at epoch 0 (oldest first), bag 5 at epoch 3.
        for (k, epoch) in [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 3)] {
            let mut bag = Bag::new();
            let r = Arc::clone(&ran);
            assert!(bag
                .try_push(Deferred::new(move || r.lock().unwrap().push(k)))
                .is_ok());
            g.garbage_count.fetch_add(1, Ordering::Relaxed);
            let node = Box::into_raw(Box::new(SealedBag {
                epoch,
                bag,
                next: ptr::null_mut(),
                heavy: false,
            }));
            g.push_sealed(epoch % 3, node, node);
        }
        // At epoch 2 the five bags of epoch 0 have expired; bag 5 sits in
        // the same list (3 ≡ 0 mod 3) and has not.
        g.epoch.store(2, Ordering::Relaxed);
        g.collect_bounded(2);
        assert_eq!(*ran.lock().unwrap(), [0, 1]);
        assert_eq!(g.pending(), 4);
        // The put-back kept the order: the next bounded pass takes the
        // oldest again.
        g.collect_bounded(1);
        assert_eq!(*ran.lock().unwrap(), [0, 1, 2]);
        g.collect_bounded(0);
        assert_eq!(ran.lock().unwrap().len(), 3, "a bound of 0 ran a bag");
        g.collect_bounded(1);
        assert_eq!(*ran.lock().unwrap(), [0, 1, 2, 3]);
        g.collect();
        assert_eq!(*ran.lock().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(g.pending(), 1, "an unexpired bag ran, or one was lost");
        assert_eq!(
            g.bounded_started.load(Ordering::Relaxed),
            g.bounded_finished.load(Ordering::Relaxed)
        );
        // The passes that put expired bags back (bounds 2, 1, 0, 1 with
        // 5, 3, 2, 2 expired) counted themselves for `synchronize`.
        assert_eq!(g.bounded_requeued.load(Ordering::Relaxed), 4);
        g.epoch.store(5, Ordering::Relaxed);
        g.collect_bounded(1);
        assert_eq!(*ran.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(g.pending(), 0);
    }

    /// A pool backlog handed to the garbage list is one heavy bag: a
    /// bounded collection (inside a critical section) leaves it, expired or
    /// not, and an unbounded one runs it; every block is freed once (Miri
    /// checks the frees).
    #[test]
    fn a_handed_off_backlog_waits_for_an_unbounded_collection() {
        let g = Global::new(false);
        // SAFETY: `register` returns a live record owned by this thread.
        let p = unsafe { &*g.register() };
        let layout = core::alloc::Layout::from_size_align(64, 8).unwrap();
        // SAFETY: this thread owns `p`, a record of `g`.
        unsafe { g.pin(p) };
        for _ in 0..40 {
            // SAFETY: a fresh block of `layout`, large enough for a link.
            let b = unsafe { std::alloc::alloc(layout) };
            assert!(!b.is_null());
            // SAFETY: as above.
            unsafe {
                b.cast::<super::super::pool::Link>()
                    .write(super::super::pool::Link {
                        next: AtomicPtr::new(ptr::null_mut()),
                    })
            };
            // SAFETY: our pinned record; a block nobody else can reach.
            unsafe { g.retire_block(p, b, layout) };
        }
        // SAFETY: as above; balances the pin.
        unsafe { g.unpin(p) };
        let before = g.garbage_count.load(Ordering::Relaxed);
        // SAFETY: our record.
        unsafe { g.hand_off_pool(p) };
        assert_eq!(
            g.garbage_count.load(Ordering::Relaxed),
            before + 1,
            "one bag"
        );
        g.epoch.fetch_add(3, Ordering::Relaxed);
        for i in 0..3 {
            g.collect_list(i, g.epoch.load(Ordering::Relaxed), Some(8));
        }
        assert_eq!(
            g.garbage_count.load(Ordering::Relaxed),
            before + 1,
            "a bounded collection ran the heavy bag"
        );
        g.collect_all();
        assert_eq!(g.garbage_count.load(Ordering::Relaxed), 0);
        // SAFETY: owned by this thread, not pinned.
        unsafe { g.release(p) };
    }

    /// Defect 4: a pin word keeps the epoch without its top bit. Comparing
    /// it with the full epoch stalled the collector for good after 2^31
    /// advances on 32-bit targets (2^63 here): the counter is started just
    /// below that point, and a participant pinned at the current epoch must
    /// not block an advance on either side of it.
    #[test]
    fn the_epoch_advances_across_the_pin_words_top_bit() {
        for strategy in [false, true] {
            let g = Global::new(strategy);
            // SAFETY: `register` returns a live record owned by this thread.
            let p = unsafe { &*g.register() };
            g.epoch.store(WORD_EPOCH_MASK - 1, Ordering::Relaxed);
            for _ in 0..4 {
                let before = g.epoch.load(Ordering::Relaxed);
                // SAFETY: this thread owns `p`, a record of `g`.
                unsafe { g.pin(p) };
                let after = g.try_advance();
                // SAFETY: as above; balances the pin.
                unsafe { g.unpin(p) };
                assert_eq!(
                    after,
                    before.wrapping_add(1),
                    "a thread pinned at the current epoch {before:#x} blocked the advance"
                );
            }
            assert!(g.epoch.load(Ordering::Relaxed) > WORD_EPOCH_MASK);
            // SAFETY: owned by this thread, not pinned.
            unsafe { g.release(p) };
        }
    }

    /// The epoch counter itself wraps around `usize::MAX`: garbage sealed
    /// just before the wrap expires exactly two advances later.
    #[test]
    fn garbage_expires_two_advances_after_its_seal_across_the_wrap() {
        let g = Global::new(false);
        g.epoch.store(usize::MAX - 1, Ordering::Relaxed);
        let ran = Arc::new(StdUsize::new(0));
        let mut bag = Bag::new();
        let r = Arc::clone(&ran);
        assert!(bag
            .try_push(Deferred::new(move || {
                r.fetch_add(1, Ordering::Relaxed);
            }))
            .is_ok());
        assert_eq!(g.push_bag(bag), usize::MAX - 1);
        g.try_advance(); // usize::MAX
        g.collect_all();
        assert_eq!(
            ran.load(Ordering::Relaxed),
            0,
            "ran one advance after the seal"
        );
        g.try_advance(); // 0: wrapped
        assert_eq!(g.epoch.load(Ordering::Relaxed), 0);
        g.collect_all();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    }

    /// Pool blocks pace background advances by size: smaller than
    /// `POOL_PACE_BYTES` counts as its share (rounded up, at least one per
    /// non-empty seal), larger as one each; loom and Miri count blocks.
    #[test]
    fn pool_blocks_pace_advances_by_size() {
        assert_eq!(pool_pace_units(0, 16), 0);
        if cfg!(miri) {
            assert_eq!(pool_pace_units(128, 16), 128);
            return;
        }
        assert_eq!(pool_pace_units(128, 16), 32);
        assert_eq!(pool_pace_units(1, 16), 1);
        assert_eq!(pool_pace_units(5, 16), 2);
        assert_eq!(pool_pace_units(128, 64), 128);
        assert_eq!(pool_pace_units(128, 4096), 128);
        // 16-byte nodes: one advance attempt per 64 KiB sealed.
        assert_eq!(ADVANCE_BATCH * POOL_PACE_BYTES / 16, 4096);
    }
}

/// loom model of `collect_all_settled` (what `synchronize` ends with)
/// racing a bounded collection that holds the list and puts expired bags
/// back.
#[cfg(all(test, loom))]
mod loom_settle {
    use super::*;
    use crate::sync::Arc;
    use loom::thread;

    /// Three expired bags on one list; another thread's bounded collection
    /// (bound 1) takes the list, runs the oldest and puts the other two
    /// back. Whatever the interleaving, when the settled collection returns
    /// those two have run (the oldest may still be running on the other
    /// thread: "taken to run"). A plain `collect_all` fails this: it can
    /// find the list empty while the other thread holds it.
    #[test]
    fn a_settled_collection_runs_what_a_bounded_one_put_back() {
        loom::model(|| {
            let g = Arc::new(Global::new(false));
            let flags: Arc<[AtomicBool; 3]> =
                Arc::new(core::array::from_fn(|_| AtomicBool::new(false)));
            for k in 0..3 {
                let mut bag = Bag::new();
                let f = Arc::clone(&flags);
                // Release: pairs with the Acquire loads below.
                let d = Deferred::new(move || f[k].store(true, Ordering::Release));
                assert!(bag.try_push(d).is_ok());
                g.garbage_count.fetch_add(1, Ordering::Relaxed);
                let node = Box::into_raw(Box::new(SealedBag {
                    epoch: 0,
                    bag,
                    next: ptr::null_mut(),
                    heavy: false,
                }));
                g.push_sealed(0, node, node);
            }
            g.epoch.store(2, Ordering::Relaxed);
            let other = {
                let g = Arc::clone(&g);
                thread::spawn(move || g.collect_bounded(1))
            };
            g.collect_all_settled();
            // Acquire: pairs with the deferred functions' Release stores.
            let done = [1, 2].map(|k| flags[k].load(Ordering::Acquire));
            assert_eq!(done, [true, true], "a put-back bag was missed");
            other.join().unwrap();
        });
    }
}
