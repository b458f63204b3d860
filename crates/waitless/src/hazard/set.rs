//! A fixed set of hazard slots taken together (the map's per-operation set).
//!
//! [`HazardPointer::many_in`](super::HazardPointer::many_in) hands out `N`
//! independent hazard pointers, each of which gives its slot back on its own
//! drop (a store, a mask update and an idle check each). A data structure
//! that always uses the same few slots per operation (the map uses three)
//! takes them as one [`HazardSet`] instead: one thread-local lookup and one
//! mask update to take them, `N` stores and one mask update to give them
//! back. The slots are ordinary slots of the thread's (cached) record, so
//! scans, thread exit and domain drop treat them exactly as before.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use super::domain::{Local, NotSendSync};
use super::{fence, Domain};
use crate::sync::atomic::{compiler_fence, AtomicPtr, Ordering};

/// `N` hazard slots of one record, released together on drop. Not `Send`:
/// the slots belong to the creating thread's record.
pub(crate) struct HazardSet<'d, const N: usize> {
    local: NonNull<Local>,
    /// The set's slots are `base..base + N` of `local`.
    base: usize,
    /// The same slots as a mask, given back in one update.
    bits: u32,
    asymmetric: bool,
    _domain: PhantomData<&'d Domain>,
    _not_send: NotSendSync,
}

impl<'d, const N: usize> HazardSet<'d, N> {
    /// Takes `N` slots of this thread's record for `domain` (or of an extra
    /// record if the cached one has fewer than `N` free).
    ///
    /// The fast path is the *cached set*: slots `0..N` of the thread's
    /// cached record, reused by every set of the thread that is not nested
    /// in another: one thread-local read (the cache's last entry), one
    /// owner-only mask test-and-set, no record acquired or released. A
    /// nested set (a set taken while another is alive: a map operation in
    /// a closure of another, or in a signal handler that interrupted one)
    /// finds those slots taken and falls back to [`new_slow`](Self::new_slow).
    #[inline]
    pub(crate) fn new_in(domain: &'d Domain) -> Self {
        const { assert!(N >= 1 && N <= super::domain::SLOTS) };
        if let Some(local) = domain.cached_local() {
            // SAFETY: the cached record is owned by this thread.
            if let Some(bits) = unsafe { local.as_ref().reserve_front(N) } {
                return Self::of(domain, local, 0, bits);
            }
        }
        Self::new_slow(domain)
    }

    /// The per-call path: any run of `N` free slots of this thread's
    /// record (cached or acquired for this call), or of an extra record.
    #[cold]
    #[inline(never)]
    fn new_slow(domain: &'d Domain) -> Self {
        let mut local = domain.local();
        let (base, bits) = loop {
            // SAFETY: `local` is owned by this thread (cached, or acquired
            // for us by `local`/`acquire_extra`).
            if let Some(run) = unsafe { local.as_ref().reserve_run(N) } {
                break run;
            }
            // No run of `N` free slots in the cached record (nested sets or
            // many hazard pointers): an extra record has all its slots free,
            // so this loop runs at most twice.
            local = domain.acquire_extra();
        };
        Self::of(domain, local, base, bits)
    }

    #[inline(always)]
    fn of(domain: &'d Domain, local: NonNull<Local>, base: usize, bits: u32) -> Self {
        // SeqCst (a compiler fence only): the mask update above is done
        // before any of our slot stores, so a signal handler that runs a
        // nested operation in between sees these slots taken (and uses
        // others) instead of overwriting our hazards.
        compiler_fence(Ordering::SeqCst);
        HazardSet {
            local,
            base,
            bits,
            asymmetric: domain.asymmetric(),
            _domain: PhantomData,
            _not_send: PhantomData,
        }
    }

    #[inline]
    fn slot(&self, i: usize) -> &AtomicPtr<u8> {
        assert!(i < N, "hazard set member out of range");
        // SAFETY: the record outlives `'d` (records are freed only with the
        // domain's shared state) and we reserved slots `base..base + N`,
        // all below `SLOTS` (`reserve_front`/`reserve_run`), so the index
        // is in bounds for `i < N`.
        unsafe { self.local.as_ref().slots.get_unchecked(self.base + i) }
    }

    /// Publishes `ptr` in member `i` and issues the reader-side fence; the
    /// caller must re-validate (as in
    /// [`HazardPointer::publish`](super::HazardPointer::publish)).
    #[inline]
    pub(crate) fn publish<T>(&mut self, i: usize, ptr: *mut T) {
        // Release: pairs with the Acquire slot loads in the scan, as in
        // `HazardPointer::publish`.
        self.slot(i).store(ptr.cast(), Ordering::Release);
        fence::light(self.asymmetric);
    }

    /// Loads `src` and protects what it holds in member `i` (the
    /// load–publish–revalidate loop of
    /// [`HazardPointer::protect`](super::HazardPointer::protect)).
    #[inline]
    pub(crate) fn protect<T>(&mut self, i: usize, src: &AtomicPtr<T>) -> *mut T {
        let mut p = src.load(Ordering::Relaxed);
        loop {
            self.publish(i, p);
            // Acquire: pairs with the Release store that published the
            // object into `src`, so its contents are visible.
            let now = src.load(Ordering::Acquire);
            if now == p {
                return p;
            }
            p = now;
        }
    }
}

impl<const N: usize> HazardSet<'_, N> {
    /// The set's slots as a plain copyable handle, for a hot loop: the
    /// slot address and the fence strategy stay in registers instead of
    /// being re-read through `&mut self` after every store.
    #[inline(always)]
    pub(crate) fn members(&self) -> Members<'_, N> {
        Members {
            // SAFETY: as in `slot`: `base + N <= SLOTS`, so `base` is in
            // bounds (or one past the end only if N = 0, excluded by the
            // assertion in `new_in`).
            slots: unsafe { self.local.as_ref().slots.as_ptr().add(self.base) },
            asymmetric: self.asymmetric,
            _set: PhantomData,
        }
    }
}

/// The thread's cached hazard set for a domain: slots `0..N` of the
/// thread's cached record, taken by an owner-only test-and-set of their
/// mask bits and given back by clearing them, so nothing is acquired or
/// released and the slots are reused by every non-nested set of the
/// thread. One pointer (no base or mask to carry: both are constant).
///
/// [`try_new`](Self::try_new) is `None` when the domain is not the one
/// the thread used last, when thread-local storage is gone (thread exit),
/// under loom (no record cache), or when the slots are taken: by a live
/// set of this thread (a map operation inside a closure of another) or by
/// the set of an operation that a signal handler interrupted. The caller
/// then takes the per-call path ([`HazardSet::new_in`]). A panic drops the
/// set like any other value (its `Drop` gives the slots back); a thread's
/// exit releases the record through the record cache as before.
pub(crate) struct CachedSet<'d, const N: usize> {
    local: NonNull<Local>,
    asymmetric: bool,
    _domain: PhantomData<&'d Domain>,
    _not_send: NotSendSync,
}

impl<'d, const N: usize> CachedSet<'d, N> {
    const BITS: u32 = (1 << N) - 1;

    /// The cached set, if free (see the type's docs).
    #[inline(always)]
    pub(crate) fn try_new(domain: &'d Domain) -> Option<Self> {
        const { assert!(N >= 1 && N <= super::domain::SLOTS) };
        let local = domain.cached_local()?;
        // SAFETY: the cached record is owned by this thread.
        unsafe { local.as_ref().reserve_front(N) }?;
        // SeqCst (a compiler fence only): the mask update is done before
        // any of our slot stores, so a signal handler that runs a nested
        // operation in between sees these slots taken (and takes others)
        // instead of overwriting our hazards.
        compiler_fence(Ordering::SeqCst);
        Some(CachedSet {
            local,
            asymmetric: domain.asymmetric(),
            _domain: PhantomData,
            _not_send: PhantomData,
        })
    }

    /// Retires `ptr` into the set's record, the thread's cached record for
    /// the domain, without handing over or scanning (as
    /// [`Domain::retire_deferred`], minus its record lookup); returns how
    /// many objects the record's private list now holds, so that the
    /// caller can collect ([`Domain::collect_at`]) once the set is dropped.
    ///
    /// # Safety
    /// As for [`Domain::retire`], for the set's domain.
    #[inline(always)]
    pub(crate) unsafe fn retire_deferred<T>(
        &self,
        ptr: *mut T,
        deleter: unsafe fn(*mut T),
    ) -> usize {
        // SAFETY: the record outlives the set and this thread owns it (the
        // set is !Send and its record is the thread's cached one); the
        // rest are our own preconditions, and the record belongs to the
        // set's domain.
        unsafe { self.local.as_ref().push_retired(ptr, deleter) }
    }

    /// The set's slots (see [`HazardSet::members`]).
    #[inline(always)]
    pub(crate) fn members(&self) -> Members<'_, N> {
        Members {
            // SAFETY: the record outlives `'d`; slot 0 is in bounds.
            slots: unsafe { self.local.as_ref().slots.as_ptr() },
            asymmetric: self.asymmetric,
            _set: PhantomData,
        }
    }
}

impl<const N: usize> Drop for CachedSet<'_, N> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the record outlives the set.
        let l = unsafe { self.local.as_ref() };
        for slot in &l.slots[..N] {
            // Release: as in `Local::unreserve`: this thread's uses of the
            // protected object happen before a scanner that sees the slot
            // empty frees it.
            slot.store(ptr::null_mut(), Ordering::Release);
        }
        // SeqCst (a compiler fence only): as in `HazardSet::drop`.
        compiler_fence(Ordering::SeqCst);
        // SAFETY: this thread owns the record (the set is !Send) and
        // reserved exactly `BITS` in `try_new`. The record is still
        // cached (so giving the slots back never releases it): the cache
        // evicts only entries of dropped domains (this set borrows its
        // domain, so not this one; map12gr found that evicting any idle
        // entry let a signal handler that filled the cache release a record
        // between this thread's `LAST` read and its mask test-and-set), and
        // its own drop runs at thread exit, never inside an operation of
        // the same thread.
        unsafe { l.unreserve_cached(Self::BITS) };
    }
}

impl<const N: usize> core::fmt::Debug for CachedSet<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CachedSet").finish_non_exhaustive()
    }
}

/// A [`HazardSet`]'s slots, borrowed (see [`HazardSet::members`]). Same
/// `publish` as the set's.
#[derive(Clone, Copy)]
pub(crate) struct Members<'s, const N: usize> {
    /// Slot `base` of the set's record.
    pub(super) slots: *const AtomicPtr<u8>,
    asymmetric: bool,
    _set: PhantomData<&'s ()>,
}

impl<const N: usize> Members<'_, N> {
    /// Whether the domain uses asymmetric fences (see
    /// [`publish_as`](Self::publish_as)).
    #[inline(always)]
    pub(crate) fn asymmetric(self) -> bool {
        self.asymmetric
    }

    /// [`HazardSet::publish`] for a caller that branched on
    /// [`asymmetric`](Self::asymmetric) once, outside its loop (`ASYM`
    /// must equal it).
    #[inline(always)]
    pub(crate) fn publish_as<const ASYM: bool, T>(self, i: usize, ptr: *mut T) {
        debug_assert_eq!(ASYM, self.asymmetric);
        assert!(i < N, "hazard set member out of range");
        // SAFETY: `slots` points at the first of the set's `N` slots in a
        // record that outlives the borrow of the set, and `i < N`.
        let slot = unsafe { &*self.slots.add(i) };
        // Release: pairs with the Acquire slot loads in the scan, as in
        // `HazardPointer::publish`.
        slot.store(ptr.cast(), Ordering::Release);
        fence::light(ASYM);
    }

    /// [`HazardSet::protect`], with the fence of
    /// [`publish_as`](Self::publish_as).
    #[inline(always)]
    pub(crate) fn protect_as<const ASYM: bool, T>(self, i: usize, src: &AtomicPtr<T>) -> *mut T {
        let mut p = src.load(Ordering::Relaxed);
        loop {
            self.publish_as::<ASYM, T>(i, p);
            // Acquire: pairs with the Release store that published the
            // object into `src`, so its contents are visible.
            let now = src.load(Ordering::Acquire);
            if now == p {
                return p;
            }
            p = now;
        }
    }
}

impl<const N: usize> Drop for HazardSet<'_, N> {
    #[inline]
    fn drop(&mut self) {
        for i in 0..N {
            // Release: as in `Local::unreserve`: this thread's uses of the
            // protected object happen before a scanner that sees the slot
            // empty frees it.
            self.slot(i).store(ptr::null_mut(), Ordering::Release);
        }
        // SeqCst (a compiler fence only): the slots are cleared before the
        // mask gives them back, so a signal handler's nested set that takes
        // them cannot have its hazards overwritten by our clearing stores.
        compiler_fence(Ordering::SeqCst);
        // SAFETY: this thread owns the record (the set is !Send) and
        // reserved exactly `bits` in `new_in`.
        unsafe { self.local.as_ref().unreserve_bits(self.bits) };
    }
}

impl<const N: usize> core::fmt::Debug for HazardSet<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HazardSet")
            .field("slots", &(self.base..self.base + N))
            .finish_non_exhaustive()
    }
}
