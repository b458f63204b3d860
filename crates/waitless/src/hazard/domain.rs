//! Hazard records, the per-thread record cache, retirement and scanning.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use super::fence::{self, FenceStrategy};
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use crate::sync::{Arc, UnsafeCell};

/// Hazard slots per record. A thread's record serves all its hazard pointers
/// in one domain; a thread holding more at once takes an extra record.
#[cfg(not(loom))]
pub(crate) const SLOTS: usize = 8;
#[cfg(loom)]
pub(crate) const SLOTS: usize = 4;

/// The domain-wide scan threshold, at least. The real threshold is
/// `max(MIN_THRESHOLD, 2 * H)` with `H` the hazard slots in the domain, and it
/// is compared with the domain-wide count of retired objects (not a
/// per-record one): a scan frees at least half of what it looks at (at most
/// `H` objects can be protected), so the amortized cost per retire is O(1),
/// and the unreclaimed objects of the whole domain are O(H) (see `BATCH`).
#[cfg(not(any(loom, miri)))]
const MIN_THRESHOLD: usize = 64;
#[cfg(all(miri, not(loom)))]
const MIN_THRESHOLD: usize = 4;

/// Retired objects a record collects privately before it hands them, as one
/// batch, to the domain-wide list. Fixed (not growing with the record
/// count) and at most `2 * SLOTS`, so the private lists of all `R` records
/// hold fewer than `2 * SLOTS * R = 2H` objects together. Before issue 14,
/// each record scanned only its own list at a per-record threshold that grew
/// with `R` (`max(64, 2H)`), so `R` records could hold `~2H * R = 16 R^2`.
#[cfg(not(any(loom, miri)))]
const BATCH: usize = 2 * SLOTS;
#[cfg(all(miri, not(loom)))]
const BATCH: usize = 2;
/// Under loom every retire hands its object over and scans, so the models
/// see the shared list on every path.
#[cfg(loom)]
const BATCH: usize = 1;

/// A hazard record: the slots one thread publishes into, and the objects
/// that thread retired and has not yet handed to the domain-wide list. Records live in a push-only lock-free list and are freed
/// only when the last reference to the domain's shared state goes away.
pub(crate) struct Local {
    /// Published hazards. Written by the owner, read by every scanner.
    pub(crate) slots: [AtomicPtr<u8>; SLOTS],
    /// Whether a thread owns this record. Acquired by CAS, released by store.
    in_use: AtomicBool,
    /// Next record; written once before the record is published, then immutable.
    next: *const Local,
    /// Bit i set: slot i is handed out to a live `HazardPointer`. Owner only.
    mask: UnsafeCell<u32>,
    /// Whether a thread's record cache holds this record. Owner only.
    cached: UnsafeCell<bool>,
    /// Objects retired through this record and not yet handed to the
    /// domain-wide list (normally fewer than `BATCH`). Owner only (or
    /// whoever holds `&mut Domain`).
    retired: UnsafeCell<Vec<Retired>>,
    /// `retired.len()`, readable by anyone: for `Domain::pending`, for the
    /// orphan count `release` adds and `acquire`/`adopt` take back, and for
    /// `adopt` to skip empty records. Never a safety input.
    pending: AtomicUsize,
    /// The shared state this record belongs to (records are freed only with
    /// it, so the pointer is valid as long as the record is). Immutable.
    shared: *const Shared,
}

/// A retired object and the function that frees it.
struct Retired {
    ptr: *mut u8,
    deleter: unsafe fn(*mut u8),
}

impl Local {
    fn new(shared: *const Shared) -> Self {
        Self {
            shared,
            slots: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            in_use: AtomicBool::new(true),
            next: ptr::null(),
            mask: UnsafeCell::new(0),
            cached: UnsafeCell::new(false),
            retired: UnsafeCell::new(Vec::new()),
            pending: AtomicUsize::new(0),
        }
    }

    /// Reserves a free slot, or `None` if all are handed out.
    ///
    /// # Safety
    /// 1. The calling thread owns this record (acquired it and has not released it).
    pub(crate) unsafe fn reserve(&self) -> Option<usize> {
        // SAFETY: precondition 1, only the owner touches `mask`.
        self.mask.with_mut(|m| unsafe {
            let free = !*m & ((1u64 << SLOTS) - 1) as u32;
            if free == 0 {
                None
            } else {
                let i = free.trailing_zeros() as usize;
                *m |= 1 << i;
                Some(i)
            }
        })
    }

    /// Reserves `N` free slots at once, or `None` if fewer are free.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    #[inline]
    pub(crate) unsafe fn reserve_n<const N: usize>(&self) -> Option<[usize; N]> {
        // SAFETY: precondition 1, only the owner touches `mask`.
        self.mask.with_mut(|m| unsafe {
            let mut free = !*m & ((1u64 << SLOTS) - 1) as u32;
            if (free.count_ones() as usize) < N {
                return None;
            }
            Some(core::array::from_fn(|_| {
                let i = free.trailing_zeros();
                free &= free - 1;
                *m |= 1 << i;
                i as usize
            }))
        })
    }

    /// Gives slot `i` back; releases the record if it is neither cached nor
    /// serving any other hazard pointer.
    ///
    /// # Safety
    /// 1. The calling thread owns this record and reserved slot `i`.
    pub(crate) unsafe fn unreserve(&self, i: usize) {
        // Release: pairs with the Acquire slot loads in `scan`, so everything
        // this thread did with the protected object happens before a scanner
        // that sees the slot empty frees it.
        self.slots[i].store(ptr::null_mut(), Ordering::Release);
        // SAFETY: precondition 1, only the owner touches `mask` and `cached`.
        let idle = unsafe {
            self.mask.with_mut(|m| {
                *m &= !(1 << i);
                *m == 0
            }) && !self.cached.with(|c| *c)
        };
        if idle {
            self.release();
        }
    }

    /// Gives the record up. Its private retired objects (fewer than
    /// `BATCH` unless deferred retires were never collected) stay in it and
    /// are counted as *orphaned* domain-wide: the next scan of any thread
    /// claims the free record (a CAS on `in_use`, like `Shared::acquire`)
    /// and adopts them; a thread that acquires the record takes them over
    /// instead. The `retired` list itself is not touched here (so it is not
    /// handed to the domain-wide list here either): `Domain::drop` may be
    /// draining it concurrently when a thread's thread-local destructor runs
    /// after the domain was dropped (a scoped thread is joined before its
    /// destructors run); ThreadSanitizer found that race in a first version
    /// that moved the list here.
    ///
    /// The caller owns the record (precondition of every call site).
    fn release(&self) {
        // Relaxed: `pending` mirrors the owner's own list length; the
        // orphan count is a trigger heuristic, taken back by whoever claims
        // the record next (`acquire` or `adopt`).
        let n = self.pending.load(Ordering::Relaxed);
        if n > 0 {
            // SAFETY: `shared` outlives every record (see the field).
            unsafe { (*self.shared).orphaned.fetch_add(n, Ordering::Relaxed) };
        }
        // Release: pairs with the Acquire CAS in `Shared::acquire` and in
        // `Shared::adopt`, handing `mask`, `cached` and `retired` to the next
        // owner.
        self.in_use.store(false, Ordering::Release);
    }
}

/// A batch of retired objects on the domain-wide list.
struct Batch {
    /// The next (older) batch; written before the batch is published by the
    /// push CAS, then read only by the thread that took the list.
    next: *mut Batch,
    items: Vec<Retired>,
}

/// State shared by a `Domain` and the thread caches that hold its records.
pub(crate) struct Shared {
    head: AtomicPtr<Local>,
    records: AtomicUsize,
    asymmetric: bool,
    /// The domain-wide list of retired objects: a stack of batches that
    /// records push (CAS) and a scan takes whole (swap), so no pop-one ABA.
    batches: AtomicPtr<Batch>,
    /// Objects on `batches`. Added before the push and subtracted after the
    /// take, so it never underflows (see `push_batch`). A trigger heuristic,
    /// never a safety input.
    retired: AtomicUsize,
    /// Retired objects left in released records (the other domain-wide part
    /// of the scan trigger). Approximate: a heuristic, never a safety input.
    orphaned: AtomicUsize,
    /// Scans that freed nothing because the heavy barrier failed.
    skipped_scans: AtomicUsize,
    /// Set when the `Domain` is dropped: from then on a thread's record
    /// cache may evict this domain's entry. A live domain's entry is never
    /// evicted: a frame of the thread (interrupted by a signal handler
    /// that fills the cache) may have read its record from `LAST` and be
    /// about to take its slots; a frame that holds `&Domain` keeps the
    /// domain from being dropped, so it cannot hold a dropped domain's.
    dropped: AtomicBool,
}

// SAFETY: `Shared` is a list of `Local`s and a stack of `Batch`es reached
// through atomics. Every field of a `Local` is either atomic or owner-only
// (guarded by the `in_use` acquire/release handshake); a `Batch` is touched
// only by its pusher before the Release push and by the one thread whose
// Acquire swap took it. The retired pointers both store were handed over by
// `retire`, whose contract requires their deleters to be callable from any
// thread. So sharing and sending `Shared` between threads is sound.
unsafe impl Send for Shared {}
// SAFETY: see `Send` above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Takes a free record or pushes a new one. The caller owns the result
    /// (and any retired objects a previous owner left in it).
    fn acquire(&self) -> NonNull<Local> {
        // Acquire: pairs with the Release head CAS below that published
        // each record, so the records we walk are fully initialised.
        let mut p = self.head.load(Ordering::Acquire).cast_const();
        while !p.is_null() {
            // SAFETY: records are never freed while `self` lives.
            let l = unsafe { &*p };
            // Acquire on success: pairs with `Local::release`, so the previous
            // owner's owner-only writes happen before ours.
            if !l.in_use.load(Ordering::Relaxed)
                && l.in_use
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: we now own `l`.
                l.cached.with_mut(|c| unsafe { *c = false });
                // The orphans `release` counted for this record are ours now:
                // take them off the domain-wide count (else it drifts up and
                // every retire would scan).
                let n = l.pending.load(Ordering::Relaxed);
                if n > 0 {
                    self.unorphan(n);
                }
                return NonNull::from(l);
            }
            p = l.next;
        }
        let new = Box::into_raw(Box::new(Local::new(self)));
        self.records.fetch_add(1, Ordering::Relaxed);
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `new` is ours until the CAS below publishes it.
            unsafe { (*new).next = head };
            // Release: publishes the initialised record (pairs with the
            // Acquire head loads in `acquire`, `adopt`, `scan`, `drain` and
            // `Domain::pending`).
            match self
                .head
                .compare_exchange(head, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        // SAFETY: `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(new) }
    }

    /// The domain-wide scan threshold: `max(MIN_THRESHOLD, 2 * H)`, `H` the
    /// hazard slots in the domain (folly's rule). Compared with the
    /// domain-wide retired count (`due`).
    fn threshold(&self) -> usize {
        #[cfg(loom)]
        {
            1
        }
        #[cfg(not(loom))]
        {
            MIN_THRESHOLD.max(2 * SLOTS * self.records.load(Ordering::Relaxed))
        }
    }

    /// Whether the domain-wide retired objects, plus `extra` the caller is
    /// about to hand over, reach the threshold.
    fn due(&self, extra: usize) -> bool {
        // Relaxed: both counts are trigger heuristics.
        self.retired.load(Ordering::Relaxed) + self.orphaned() + extra >= self.threshold()
    }

    /// Objects left in released records (Relaxed: a trigger heuristic).
    fn orphaned(&self) -> usize {
        self.orphaned.load(Ordering::Relaxed)
    }

    /// Takes `n` off the orphan count, saturating (`Domain::drop` resets it,
    /// and an approximate count must never wrap into "always due").
    fn unorphan(&self, n: usize) {
        // Relaxed: a trigger heuristic.
        let _ = self
            .orphaned
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_sub(n))
            });
    }

    /// Pushes `items` onto the domain-wide list as one batch. Lock-free: the
    /// CAS fails only when another batch was pushed or the list was taken.
    fn push_batch(&self, items: Vec<Retired>) {
        if items.is_empty() {
            return;
        }
        // Relaxed, and before the push: a scanner that takes this batch
        // synchronizes with our push (below), so this add happens before its
        // subtraction and precedes it in the counter's modification order:
        // the count never underflows.
        self.retired.fetch_add(items.len(), Ordering::Relaxed);
        let b = Box::into_raw(Box::new(Batch {
            next: ptr::null_mut(),
            items,
        }));
        let mut head = self.batches.load(Ordering::Relaxed);
        loop {
            // SAFETY: `b` is ours until the CAS below publishes it.
            unsafe { (*b).next = head };
            // Release: publishes the batch and its items (and, through
            // `next`, nothing new: older batches were published by their own
            // pushes, whose release sequences this RMW continues). Pairs with
            // the Acquire swap in `take_batches` and the Acquire load in
            // `drain`.
            match self
                .batches
                .compare_exchange_weak(head, b, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Takes the whole domain-wide list (one swap) and returns its objects.
    fn take_batches(&self) -> Vec<Retired> {
        // Acquire: pairs with the Release push CAS of every batch on the list
        // (each push heads a release sequence that the later pushes' CASes
        // and this swap continue), so the batches and their items are ours.
        let mut p = self.batches.swap(ptr::null_mut(), Ordering::Acquire);
        let mut all: Vec<Retired> = Vec::new();
        while !p.is_null() {
            // SAFETY: the swap made us the only owner of every batch on the
            // list; each came from `Box::into_raw` in `push_batch`.
            let mut b = unsafe { Box::from_raw(p) };
            p = b.next;
            if all.is_empty() {
                all = core::mem::take(&mut b.items);
            } else {
                all.append(&mut b.items);
            }
        }
        if !all.is_empty() {
            // Relaxed: see `push_batch` for why this never underflows.
            self.retired.fetch_sub(all.len(), Ordering::Relaxed);
        }
        all
    }

    /// Claims every free record (other than `local`) that still holds
    /// retired objects and moves them into `into`.
    fn adopt(&self, local: &Local, into: &mut Vec<Retired>) {
        if self.orphaned() == 0 {
            return;
        }
        // Acquire: pairs with the Release head CAS in `acquire`.
        let mut p = self.head.load(Ordering::Acquire).cast_const();
        while !p.is_null() {
            // SAFETY: records are never freed while `self` lives.
            let r = unsafe { &*p };
            // Acquire on success: pairs with `Local::release`: the previous
            // owner's writes to `retired` happen before our take below.
            if !core::ptr::eq(r, local)
                && r.pending.load(Ordering::Relaxed) > 0
                && !r.in_use.load(Ordering::Relaxed)
                && r.in_use
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // SAFETY: we own `r` now.
                let mut list = r.retired.with_mut(|l| unsafe { core::mem::take(&mut *l) });
                r.pending.store(0, Ordering::Relaxed);
                self.unorphan(list.len());
                // Release: hands the (now empty) record to its next owner.
                r.in_use.store(false, Ordering::Release);
                into.append(&mut list);
            }
            p = r.next;
        }
    }

    /// Frees every retired object of the domain that no slot protects: the
    /// domain-wide list, the orphans of released records and `local`'s own
    /// private list. What is still protected goes back onto the
    /// domain-wide list.
    ///
    /// # Safety
    /// 1. The calling thread owns `local`.
    unsafe fn scan(&self, local: &Local) {
        // SAFETY: precondition 1; no user code runs in the borrow.
        let own = local
            .retired
            .with_mut(|r| unsafe { take_keeping_room(&mut *r) });
        local.pending.store(0, Ordering::Relaxed);
        let mut list = self.take_batches();
        if list.is_empty() {
            list = own;
        } else {
            list.extend(own);
        }
        self.adopt(local, &mut list);
        if list.is_empty() {
            return;
        }
        if !fence::heavy(self.asymmetric) {
            // The barrier failed: a reader's hazard may be invisible to the
            // slot loads below, so free nothing this round (always safe).
            // Everything goes back to the domain-wide list for the next scan.
            self.skipped_scans.fetch_add(1, Ordering::Relaxed);
            self.push_batch(list);
            return;
        }
        let mut hazards: Vec<*mut u8> = Vec::new();
        // Acquire: pairs with the Release head CAS in `acquire`.
        let mut p = self.head.load(Ordering::Acquire).cast_const();
        while !p.is_null() {
            // SAFETY: records are never freed while `self` lives.
            let l = unsafe { &*p };
            for s in &l.slots {
                // Acquire: pairs with the Release stores in `publish` and
                // `unreserve`, so a reader's use of an object happens before
                // we free it once its slot moved on.
                let h = s.load(Ordering::Acquire);
                if !h.is_null() {
                    hazards.push(h);
                }
            }
            p = l.next;
        }
        hazards.sort_unstable();
        // Puts back what is still protected and, if a deleter panics,
        // everything not yet looked at, so nothing is leaked or lost.
        struct Putback<'a> {
            shared: &'a Shared,
            rest: std::vec::IntoIter<Retired>,
            keep: Vec<Retired>,
        }
        impl Drop for Putback<'_> {
            fn drop(&mut self) {
                let mut keep = core::mem::take(&mut self.keep);
                keep.extend(self.rest.by_ref());
                self.shared.push_batch(keep);
            }
        }
        let mut pb = Putback {
            shared: self,
            rest: list.into_iter(),
            keep: Vec::new(),
        };
        for r in pb.rest.by_ref() {
            if hazards.binary_search(&r.ptr).is_ok() {
                pb.keep.push(r);
            } else {
                // SAFETY: `r` was retired (unlinked, so no new protection can
                // start) and the heavy fence followed by reading every slot
                // showed no hazard on it; `retire`'s contract makes the
                // deleter callable now, once (it was taken off every list).
                unsafe { (r.deleter)(r.ptr) };
            }
        }
    }

    /// Frees every retired object: the domain-wide list and every record's.
    ///
    /// # Safety
    /// 1. No hazard pointer of this domain is alive and no thread retires
    ///    into it concurrently (the caller holds `&mut Domain`).
    unsafe fn drain(&self) {
        /// If a deleter panics, the rest is still freed while unwinding (a
        /// second panic then aborts, as for any destructor). Before, the
        /// objects after the panicking one, and every later record's, leaked
        /// (found by the soak test).
        struct Again<'a>(&'a Shared);
        impl Drop for Again<'_> {
            fn drop(&mut self) {
                // SAFETY: the precondition of the `drain` that armed us.
                unsafe { self.0.drain() }
            }
        }
        // The domain-wide list, one object at a time (so a panic loses
        // nothing: the rest stays on the list for `Again`).
        loop {
            // Acquire: pairs with the Release push CAS in `push_batch`.
            let b = self.batches.load(Ordering::Acquire);
            if b.is_null() {
                break;
            }
            // SAFETY: precondition 1 gives us exclusive access to the list;
            // `b` came from `Box::into_raw` in `push_batch`.
            let next = unsafe { (*b).items.pop() };
            let Some(r) = next else {
                // Relaxed: exclusive access (precondition 1).
                // SAFETY: as above; unlinked first, then freed once.
                self.batches.store(unsafe { (*b).next }, Ordering::Relaxed);
                // SAFETY: as above.
                drop(unsafe { Box::from_raw(b) });
                continue;
            };
            self.retired.fetch_sub(1, Ordering::Relaxed);
            let again = Again(self);
            // SAFETY: precondition 1: nothing can protect `r` any more;
            // it was popped, so its deleter runs once.
            unsafe { (r.deleter)(r.ptr) };
            core::mem::forget(again);
        }
        // Acquire: pairs with the Release head CAS in `acquire`, so every
        // record's initialised fields are visible to the walk.
        let mut p = self.head.load(Ordering::Acquire).cast_const();
        while !p.is_null() {
            // SAFETY: records are never freed while `self` lives.
            let l = unsafe { &*p };
            loop {
                // SAFETY: precondition 1 gives us exclusive access; the
                // borrow ends before the deleter runs (it may retire more).
                let next = l.retired.with_mut(|r| unsafe { (*r).pop() });
                let Some(r) = next else { break };
                let again = Again(self);
                // SAFETY: precondition 1: nothing can protect `r` any more;
                // it was popped, so its deleter runs once.
                unsafe { (r.deleter)(r.ptr) };
                core::mem::forget(again);
            }
            l.pending.store(0, Ordering::Relaxed);
            p = l.next;
        }
        self.orphaned.store(0, Ordering::Relaxed);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Batches: emptied by `Domain::drop`'s drain (nothing can be retired
        // without a live `Domain`); free any node left anyway.
        let mut b = self.batches.load(Ordering::Relaxed);
        while !b.is_null() {
            // SAFETY: `&mut self`: the last reference; every batch came from
            // `Box::into_raw` in `push_batch` and is freed once here.
            let batch = unsafe { Box::from_raw(b) };
            debug_assert!(batch.items.is_empty());
            b = batch.next;
        }
        let mut p = self.head.load(Ordering::Relaxed);
        while !p.is_null() {
            // SAFETY: `&mut self`: the last reference; every record was
            // created by `Box::into_raw` in `acquire` and is freed once here.
            let l = unsafe { Box::from_raw(p) };
            // Retired lists were drained by `Domain::drop`, except objects
            // retired through records after that, which cannot exist since
            // retiring needs a live `Domain`.
            // SAFETY: `&mut self`: no other access to the record.
            debug_assert!(l.retired.with(|r| unsafe { (*r).is_empty() }));
            p = l.next.cast_mut();
        }
    }
}

/// A hazard-pointer domain: a set of hazard records and the objects retired
/// into it. See the [module docs](super) for the algorithm.
///
/// Each data structure should own its own domain, so dropping the structure
/// frees everything it retired; [`Domain::global`] is there for code that
/// wants a process-wide one.
///
/// ```
/// use std::sync::atomic::{AtomicPtr, Ordering};
/// use waitless::hazard::Domain;
///
/// let domain = Domain::new();
/// let src = AtomicPtr::new(Box::into_raw(Box::new(String::from("old"))));
/// let old = src.swap(Box::into_raw(Box::new(String::from("new"))), Ordering::AcqRel);
/// // SAFETY: `old` is unlinked from `src` and retired once.
/// unsafe { domain.retire_box(old) };
/// domain.reclaim(); // no hazard protects it: freed now
/// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
/// ```
pub struct Domain {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for Domain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Domain")
            .field("strategy", &self.strategy())
            .field("records", &self.records())
            .field("pending", &self.pending())
            .finish()
    }
}

impl Default for Domain {
    fn default() -> Self {
        Self::new()
    }
}

impl Domain {
    /// A new domain using the asymmetric fence strategy where available.
    ///
    /// ```
    /// use waitless::hazard::Domain;
    ///
    /// let domain = Domain::new(); // owns what is retired into it
    /// drop(domain); // frees it all
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_strategy(FenceStrategy::Asymmetric)
    }

    /// A new domain with the given fence strategy (asymmetric falls back to
    /// symmetric where `membarrier` is unavailable; see
    /// [`strategy`](Self::strategy) for the one in effect).
    ///
    /// ```
    /// use waitless::hazard::{Domain, FenceStrategy};
    ///
    /// let d = Domain::with_strategy(FenceStrategy::Symmetric);
    /// assert_eq!(d.strategy(), FenceStrategy::Symmetric);
    /// ```
    #[must_use]
    pub fn with_strategy(strategy: FenceStrategy) -> Self {
        let asymmetric = strategy == FenceStrategy::Asymmetric && fence::asymmetric_available();
        Self {
            shared: Arc::new(Shared {
                head: AtomicPtr::new(ptr::null_mut()),
                records: AtomicUsize::new(0),
                asymmetric,
                batches: AtomicPtr::new(ptr::null_mut()),
                retired: AtomicUsize::new(0),
                orphaned: AtomicUsize::new(0),
                skipped_scans: AtomicUsize::new(0),
                dropped: AtomicBool::new(false),
            }),
        }
    }

    /// The process-wide domain. Objects retired into it are freed by later
    /// scans but, as a `static`, it is never dropped.
    ///
    /// ```
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let hp = HazardPointer::new_in(Domain::global()); // the same as HazardPointer::new()
    /// drop(hp);
    /// ```
    #[must_use]
    #[cfg(not(loom))]
    pub fn global() -> &'static Domain {
        static GLOBAL: std::sync::OnceLock<Domain> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(Domain::new)
    }

    /// The fence strategy in effect for this domain.
    ///
    /// ```
    /// use waitless::hazard::{Domain, FenceStrategy};
    ///
    /// let s = Domain::new().strategy();
    /// assert!(s == FenceStrategy::Asymmetric || s == FenceStrategy::Symmetric);
    /// ```
    #[must_use]
    pub fn strategy(&self) -> FenceStrategy {
        if self.shared.asymmetric {
            FenceStrategy::Asymmetric
        } else {
            FenceStrategy::Symmetric
        }
    }

    /// Hazard records allocated so far (each holds several slots).
    ///
    /// ```
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// assert_eq!(domain.records(), 0); // records are created on first use
    /// let hp = HazardPointer::new_in(&domain);
    /// assert_eq!(domain.records(), 1);
    /// drop(hp);
    /// let _again = HazardPointer::new_in(&domain);
    /// assert_eq!(domain.records(), 1, "this thread's record is reused");
    /// ```
    #[must_use]
    pub fn records(&self) -> usize {
        self.shared.records.load(Ordering::Relaxed)
    }

    /// Scans of this domain that freed nothing because the heavy barrier
    /// (`membarrier`) failed; each such scan kept everything for the next.
    ///
    /// ```
    /// use waitless::hazard::Domain;
    ///
    /// let domain = Domain::new();
    /// let old = Box::into_raw(Box::new(1u32));
    /// // SAFETY: never shared, retired once.
    /// unsafe { domain.retire_box(old) };
    /// domain.reclaim();
    /// assert_eq!(domain.skipped_scans(), 0); // membarrier works (or is not used) here
    /// assert_eq!(domain.pending(), 0);
    /// ```
    #[must_use]
    pub fn skipped_scans(&self) -> usize {
        // Relaxed: a statistic.
        self.shared.skipped_scans.load(Ordering::Relaxed)
    }

    /// Retired objects not yet freed: the domain-wide list plus every
    /// record's private list (those of exited threads included; a snapshot
    /// that may be stale by the time it returns).
    ///
    /// ```
    /// use std::sync::atomic::AtomicPtr;
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(7u64)));
    /// let mut hp = HazardPointer::new_in(&domain);
    /// let p = hp.protect(&src);
    /// src.store(std::ptr::null_mut(), std::sync::atomic::Ordering::Release);
    /// // SAFETY: unlinked above, retired once.
    /// unsafe { domain.retire_box(p) };
    /// domain.reclaim();
    /// assert_eq!(domain.pending(), 1, "still protected by `hp`");
    /// drop(hp);
    /// domain.reclaim();
    /// assert_eq!(domain.pending(), 0);
    /// ```
    #[must_use]
    pub fn pending(&self) -> usize {
        // Relaxed: a statistic.
        let mut n = self.shared.retired.load(Ordering::Relaxed);
        // Acquire: pairs with the Release head CAS in `acquire`, as in the
        // scan: the records we walk are fully initialised.
        let mut p = self.shared.head.load(Ordering::Acquire).cast_const();
        while !p.is_null() {
            // SAFETY: records are never freed while the domain lives.
            let l = unsafe { &*p };
            n += l.pending.load(Ordering::Relaxed);
            p = l.next;
        }
        n
    }

    #[inline]
    pub(crate) fn asymmetric(&self) -> bool {
        self.shared.asymmetric
    }

    /// The current scan threshold (for tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn threshold(&self) -> usize {
        self.shared.threshold()
    }

    /// The calling thread's record for this domain, owned by the caller:
    /// its cached one, or (thread-local storage torn down, or the cache full
    /// of busy records) a freshly acquired uncached one, which the caller
    /// releases when done with it (`cached` is `false` on it: every caller
    /// releases a record that is uncached and serves no hazard pointer).
    #[inline]
    pub(crate) fn local(&self) -> NonNull<Local> {
        cache::local(&self.shared)
    }

    /// The calling thread's cached record for this domain if it is the one
    /// the thread used last (one thread-local read, no fallback): the fast
    /// path of [`HazardSet`](super::HazardSet). `None` otherwise (and
    /// always under loom, which has no cache).
    #[inline(always)]
    pub(crate) fn cached_local(&self) -> Option<NonNull<Local>> {
        cache::last(&self.shared)
    }

    /// An extra record, owned by the caller, not cached.
    pub(crate) fn acquire_extra(&self) -> NonNull<Local> {
        self.shared.acquire()
    }

    /// Hands `ptr` to the domain; `deleter(ptr)` runs once no hazard pointer
    /// protects it (at the latest when the domain is dropped).
    ///
    /// # Safety
    /// 1. `ptr` is no longer reachable from any shared location, so no thread
    ///    can start protecting it anew (threads that already protect it may
    ///    go on using it).
    /// 2. `ptr` is retired once, into one domain.
    /// 3. `deleter(ptr)` is sound to call once, from any thread, at any time
    ///    up to and including this domain's drop.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::Domain;
    ///
    /// unsafe fn free_u64(p: *mut u64) {
    ///     // SAFETY: every pointer retired with this deleter came from Box::into_raw.
    ///     drop(unsafe { Box::from_raw(p) });
    /// }
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(1u64)));
    /// let old = src.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel);
    /// // SAFETY: unlinked, retired once, and `free_u64` matches the allocation.
    /// unsafe { domain.retire(old, free_u64) };
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    pub unsafe fn retire<T>(&self, ptr: *mut T, deleter: unsafe fn(*mut T)) {
        // SAFETY: our preconditions are `push`'s.
        unsafe { self.push(ptr, deleter, true) }
    }

    /// Like [`retire_box`](Self::retire_box) but never scans (so it never
    /// runs other objects' deleters, i.e. user code); a data structure calls
    /// it in the middle of a multi-step update and [`collect`](Self::collect)
    /// once its state is consistent again.
    ///
    /// # Safety
    /// As for [`retire_box`](Self::retire_box).
    pub(crate) unsafe fn retire_box_deferred<T>(&self, ptr: *mut T) {
        // SAFETY: our preconditions are `push`'s (with a Box deleter).
        unsafe { self.push(ptr, drop_box::<T>, false) }
    }

    /// Does what a [`retire`](Self::retire) would have done after the
    /// deferred retires: once the calling thread's private list holds a
    /// batch, hands it to the domain-wide list, or scans if that makes the
    /// domain-wide count reach the threshold.
    #[allow(dead_code)] // the map, its only caller, calls `collect_at` now
    pub(crate) fn collect(&self) {
        let local = self.local();
        // SAFETY: `local` is ours.
        let l = unsafe { local.as_ref() };
        // SAFETY: we own `l`.
        let len = l.retired.with(|r| unsafe { (*r).len() });
        if len >= BATCH {
            // SAFETY: we own `l`.
            unsafe { self.hand_over(l, len) };
        }
        // SAFETY: we own `l`.
        if !l.cached.with(|c| unsafe { *c }) && l.mask.with(|m| unsafe { *m }) == 0 {
            l.release();
        }
    }

    /// Hands `l`'s private list (`len` objects) to the domain-wide list, or
    /// scans the whole domain if the domain-wide count, with them, reaches
    /// the threshold.
    ///
    /// # Safety
    /// 1. The calling thread owns `l`.
    unsafe fn hand_over(&self, l: &Local, len: usize) {
        if self.shared.due(len) {
            // SAFETY: precondition 1.
            unsafe { self.shared.scan(l) };
        } else {
            // SAFETY: precondition 1; no user code runs in the borrow.
            let list = l
                .retired
                .with_mut(|r| unsafe { take_keeping_room(&mut *r) });
            l.pending.store(0, Ordering::Relaxed);
            self.shared.push_batch(list);
        }
    }

    /// # Safety
    /// As for [`retire`](Self::retire).
    unsafe fn push<T>(&self, ptr: *mut T, deleter: unsafe fn(*mut T), may_scan: bool) {
        let local = self.local();
        // SAFETY: `local` is ours (cached or just acquired).
        let l = unsafe { local.as_ref() };
        // SAFETY: we own `l`; the rest are our own preconditions.
        let len = unsafe { l.push_retired(ptr, deleter) };
        // The trigger is domain-wide (the shared list plus the orphans of
        // exited threads), so the garbage of all records together stays
        // O(hazard slots), and orphans are adopted by whichever thread
        // scans next, not only by a thread that reuses that record.
        if may_scan && len >= BATCH {
            // SAFETY: we own `l`.
            unsafe { self.hand_over(l, len) };
        }
        // SAFETY: we own `l`.
        if !l.cached.with(|c| unsafe { *c }) && l.mask.with(|m| unsafe { *m }) == 0 {
            l.release();
        }
    }

    /// Convenience for `Box`ed objects: retires `ptr` with `drop(Box::from_raw(ptr))`.
    ///
    /// # Safety
    /// 1. `ptr` came from `Box::into_raw` and is no longer reachable from any
    ///    shared location.
    /// 2. `ptr` is retired once, into one domain.
    /// 3. `T`'s destructor is sound to run on any thread (`T: Send` or
    ///    equivalent), at any time up to and including this domain's drop.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::Domain;
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(String::from("old"))));
    /// let old = src.swap(Box::into_raw(Box::new(String::from("new"))), Ordering::AcqRel);
    /// // SAFETY: `old` is unlinked from `src` and retired once.
    /// unsafe { domain.retire_box(old) };
    /// domain.reclaim(); // no hazard protects it: freed now
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    pub unsafe fn retire_box<T>(&self, ptr: *mut T) {
        // SAFETY: the preconditions of `retire` follow from ours.
        unsafe { self.retire(ptr, drop_box::<T>) }
    }

    /// Scans now: frees every object retired into this domain (by any
    /// thread, exited ones included) that no hazard protects.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::Domain;
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(String::from("old"))));
    /// let old = src.swap(Box::into_raw(Box::new(String::from("new"))), Ordering::AcqRel);
    /// // SAFETY: `old` is unlinked from `src` and retired once.
    /// unsafe { domain.retire_box(old) };
    /// domain.reclaim(); // no hazard protects it: freed now
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    pub fn reclaim(&self) {
        let local = self.local();
        // SAFETY: `local` is ours.
        let l = unsafe { local.as_ref() };
        // SAFETY: we own `l`.
        unsafe { self.shared.scan(l) };
        // SAFETY: we own `l`.
        if !l.cached.with(|c| unsafe { *c }) && l.mask.with(|m| unsafe { *m }) == 0 {
            l.release();
        }
    }
}

// ---- Deferred retire with a custom deleter, and runs of slots (the map) ----
// Additive only: the map retires nodes whose deleter releases a share (not a
// plain `Box` drop) and must not scan in the middle of an update.
impl Domain {
    /// Like [`retire`](Self::retire) but never scans (see
    /// [`retire_box_deferred`](Self::retire_box_deferred)).
    ///
    /// # Safety
    /// As for [`retire`](Self::retire).
    pub(crate) unsafe fn retire_deferred<T>(&self, ptr: *mut T, deleter: unsafe fn(*mut T)) {
        // SAFETY: our preconditions are `push`'s.
        unsafe { self.push(ptr, deleter, false) }
    }

    /// Like [`collect`](Self::collect), but hands over (or scans) only once
    /// the calling thread's private list holds `batch` objects. A structure
    /// that retires on most operations (the map: a box per replace) calls
    /// this with a large `batch` so that a scan, whose heavy fence is a
    /// `membarrier` system call with IPIs to the other CPUs, runs once per
    /// `batch` retires of a thread instead of once per `BATCH`; the
    /// unreclaimed objects stay bounded by `batch` per record.
    pub(crate) fn collect_at(&self, batch: usize) {
        let local = self.local();
        // SAFETY: `local` is ours.
        let l = unsafe { local.as_ref() };
        // SAFETY: we own `l`.
        let len = l.retired.with(|r| unsafe { (*r).len() });
        if len >= batch.max(BATCH) {
            // SAFETY: we own `l`.
            unsafe { self.hand_over(l, len) };
        }
        // SAFETY: we own `l`.
        if !l.cached.with(|c| unsafe { *c }) && l.mask.with(|m| unsafe { *m }) == 0 {
            l.release();
        }
    }
}

impl Local {
    /// Appends `ptr` to this record's private retired list (no hand-over,
    /// no scan); returns the list's new length.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    /// 2. `ptr` and `deleter` meet [`Domain::retire`]'s preconditions for
    ///    the domain this record belongs to.
    #[inline]
    pub(crate) unsafe fn push_retired<T>(&self, ptr: *mut T, deleter: unsafe fn(*mut T)) -> usize {
        // SAFETY: `*mut T` and `*mut u8` are ABI-compatible thin pointers
        // (T: Sized), so calling the transmuted function with a `*mut u8`
        // that came from a `*mut T` is calling the original.
        let deleter: unsafe fn(*mut u8) = unsafe { core::mem::transmute(deleter) };
        // SAFETY: precondition 1; the borrow is short and runs no user code.
        let len = self.retired.with_mut(|r| unsafe {
            (*r).push(Retired {
                ptr: ptr.cast(),
                deleter,
            });
            (*r).len()
        });
        // Relaxed: a mirror of the owner's list length (see `pending`).
        self.pending.store(len, Ordering::Relaxed);
        len
    }

    /// Reserves `n` adjacent free slots at once: `Some((first, mask))`, or
    /// `None` if no run of `n` slots is free.
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    #[inline]
    pub(crate) unsafe fn reserve_run(&self, n: usize) -> Option<(usize, u32)> {
        // SAFETY: precondition 1, only the owner touches `mask`.
        self.mask.with_mut(|m| unsafe {
            let free = !*m & ((1u64 << SLOTS) - 1) as u32;
            // Bit i of `runs`: slots i..i + n are all free.
            let runs = (1..n).fold(free, |r, k| r & (free >> k));
            if runs == 0 {
                return None;
            }
            let first = runs.trailing_zeros() as usize;
            let bits = ((1u32 << n) - 1) << first;
            *m |= bits;
            Some((first, bits))
        })
    }

    /// Reserves slots `0..n` if all of them are free: `Some(mask)`, or
    /// `None` (the cached hazard set's test-and-set; see
    /// [`HazardSet::new_in`](super::HazardSet)).
    ///
    /// # Safety
    /// 1. The calling thread owns this record.
    #[inline(always)]
    pub(crate) unsafe fn reserve_front(&self, n: usize) -> Option<u32> {
        let bits = (1u32 << n) - 1;
        // SAFETY: precondition 1, only the owner touches `mask`.
        self.mask.with_mut(|m| unsafe {
            if *m & bits != 0 {
                return None;
            }
            *m |= bits;
            Some(bits)
        })
    }

    /// Gives back the slots in `bits` at once (their hazards already
    /// cleared by the caller); releases the record if it is then neither
    /// cached nor serving any other hazard pointer (as `unreserve` does).
    ///
    /// # Safety
    /// 1. The calling thread owns this record and reserved every slot in
    ///    `bits`.
    #[inline(always)]
    pub(crate) unsafe fn unreserve_bits(&self, bits: u32) {
        // SAFETY: precondition 1, only the owner touches `mask` and `cached`.
        let idle = unsafe {
            self.mask.with_mut(|m| {
                *m &= !bits;
                *m == 0
            }) && !self.cached.with(|c| *c)
        };
        if idle {
            self.release_cold();
        }
    }

    /// Gives back the slots in `bits` of a record that stays cached
    /// (their hazards already cleared by the caller), so the record is not
    /// released: [`unreserve_bits`](Self::unreserve_bits) without the
    /// idle check.
    ///
    /// # Safety
    /// 1. The calling thread owns this record, reserved every slot in
    ///    `bits`, and the record is in the thread's cache.
    #[inline(always)]
    pub(crate) unsafe fn unreserve_cached(&self, bits: u32) {
        // SAFETY: precondition 1, only the owner touches `mask` and `cached`.
        unsafe {
            debug_assert!(self.cached.with(|c| *c), "an uncached record");
            self.mask.with_mut(|m| *m &= !bits);
        }
    }

    /// [`release`](Self::release), out of line (the caller's fast path
    /// keeps a cached record).
    #[cold]
    #[inline(never)]
    fn release_cold(&self) {
        self.release();
    }
}

/// Takes a record's private list and leaves an empty one with room for as
/// many objects (up to 1024): the list is taken at about the same length
/// every time (a batch), so the next retires push into one allocation
/// instead of regrowing it by doubling (4, 8, ... 512 for the map's batch).
fn take_keeping_room(r: &mut Vec<Retired>) -> Vec<Retired> {
    let room = r.len().min(1024);
    core::mem::replace(r, Vec::with_capacity(room))
}

/// Frees a `Box` given as a raw pointer.
///
/// # Safety
/// 1. `p` came from `Box::into_raw` and is freed once.
unsafe fn drop_box<T>(p: *mut T) {
    // SAFETY: precondition 1.
    drop(unsafe { Box::from_raw(p) });
}

impl Drop for Domain {
    fn drop(&mut self) {
        // Relaxed: a permission to evict, read by the thread caches; no
        // frame of any thread holds `&self` any more (`&mut self`), so no
        // value they read can let them evict a record in use.
        self.shared.dropped.store(true, Ordering::Relaxed);
        // SAFETY: `&mut self` proves no `HazardPointer` (which borrows the
        // domain) is alive and no `retire` is running.
        unsafe { self.shared.drain() };
    }
}

/// The per-thread record cache: one record per domain the thread uses, so a
/// hazard pointer costs a thread-local lookup, not a CAS on a shared list.
#[cfg(not(loom))]
mod cache {
    use super::*;
    use core::cell::{Cell, RefCell};

    /// Domains a thread keeps a record for at once; older idle entries are
    /// evicted (their records released, their `Arc` dropped).
    const MAX_ENTRIES: usize = 8;

    struct Entry {
        shared: Arc<Shared>,
        local: NonNull<Local>,
    }

    struct Cache {
        entries: Vec<Entry>,
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            let _ = LAST.try_with(|l| l.set((ptr::null(), ptr::null_mut())));
            for e in self.entries.drain(..) {
                uncache(e.local);
            }
        }
    }

    /// Marks `local` uncached and releases it unless hazard pointers still
    /// use it (then the last one releases it).
    fn uncache(local: NonNull<Local>) {
        // SAFETY: the cache owns its records; we are on the owning thread.
        let l = unsafe { local.as_ref() };
        // SAFETY: owner-only fields, owner thread.
        let busy = unsafe {
            l.cached.with_mut(|c| *c = false);
            l.mask.with(|m| *m) != 0
        };
        if !busy {
            l.release();
        }
    }

    crate::sync::thread_local! {
        static CACHE: RefCell<Cache> = const { RefCell::new(Cache { entries: Vec::new() }) };
        /// The most recently used entry of `CACHE` (a one-entry fast path
        /// without the `RefCell`). Valid while `CACHE` holds that entry: it
        /// is cleared when the entry is evicted and when `CACHE` is dropped,
        /// and the entry's `Arc` keeps the `Shared` alive meanwhile.
        static LAST: Cell<(*const Shared, *mut Local)> =
            const { Cell::new((ptr::null(), ptr::null_mut())) };
    }

    #[inline]
    pub(super) fn local(shared: &Arc<Shared>) -> NonNull<Local> {
        match last(shared) {
            Some(l) => l,
            None => slow(shared),
        }
    }

    /// The cached record for `shared` if it is `LAST`'s.
    #[inline(always)]
    pub(super) fn last(shared: &Arc<Shared>) -> Option<NonNull<Local>> {
        let want = Arc::as_ptr(shared);
        match LAST.try_with(Cell::get) {
            // SAFETY: `l` came from a live cache entry for `want` (see
            // LAST), so it is not null.
            Ok((s, l)) if s == want => Some(unsafe { NonNull::new_unchecked(l) }),
            _ => None,
        }
    }

    #[cold]
    fn slow(shared: &Arc<Shared>) -> NonNull<Local> {
        let want = Arc::as_ptr(shared);
        let set_last = |l: NonNull<Local>| {
            let _ = LAST.try_with(|c| c.set((want, l.as_ptr())));
        };
        let hit = CACHE.try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            if let Some(e) = c.entries.iter().find(|e| Arc::ptr_eq(&e.shared, shared)) {
                set_last(e.local);
                return Some(e.local);
            }
            let mut evicted = None;
            if c.entries.len() >= MAX_ENTRIES {
                // Only a dropped domain's entry (see `Shared::dropped`); with
                // none, this call uses an uncached record.
                let idle = c.entries.iter().position(|e| {
                    // Relaxed: see `Shared::dropped`.
                    e.shared.dropped.load(Ordering::Relaxed)
                        // SAFETY: the owner thread reads its records' owner-only masks.
                        && unsafe { e.local.as_ref().mask.with(|m| *m) == 0 }
                })?;
                let e = c.entries.remove(idle);
                let _ = LAST.try_with(|l| {
                    if l.get().0 == Arc::as_ptr(&e.shared) {
                        l.set((ptr::null(), ptr::null_mut()));
                    }
                });
                evicted = Some(e);
            }
            let local = shared.acquire();
            // SAFETY: just acquired; we own it.
            unsafe { local.as_ref().cached.with_mut(|c| *c = true) };
            c.entries.push(Entry {
                shared: Arc::clone(shared),
                local,
            });
            set_last(local);
            drop(c);
            if let Some(e) = evicted {
                uncache(e.local);
                // The `Arc` drops here, outside the borrow: if it was the
                // last one, `Shared::drop` runs no user code anyway.
                drop(e);
            }
            Some(local)
        });
        match hit {
            Ok(Some(l)) => l,
            // Thread-local storage torn down, re-entered, or full of busy
            // records: use an uncached record for this one call.
            _ => shared.acquire(),
        }
    }
}

/// Under loom there is no cache: every use acquires and releases a record,
/// which is also the path threads take during thread-local teardown.
#[cfg(loom)]
mod cache {
    use super::*;

    pub(super) fn local(shared: &Arc<Shared>) -> NonNull<Local> {
        shared.acquire()
    }

    pub(super) fn last(_: &Arc<Shared>) -> Option<NonNull<Local>> {
        None
    }
}

/// Marker making a type neither `Send` nor `Sync`.
pub(crate) type NotSendSync = PhantomData<*mut ()>;
