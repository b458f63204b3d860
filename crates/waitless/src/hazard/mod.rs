//! Hazard pointers with asymmetric fences.
//!
//! A reader that wants to dereference a pointer loaded from shared memory
//! first *publishes* it in a hazard slot, then re-reads the source to check
//! that the pointer is still there (Michael, "Hazard Pointers: Safe Memory
//! Reclamation for Lock-Free Objects", IEEE TPDS 2004). A writer that unlinks
//! an object *retires* it; a retired object is freed only by a *scan* that
//! finds no slot holding it. Because the reader re-validated after
//! publishing, and the writer unlinked before scanning, either the reader saw
//! the unlink (and retries with the new pointer) or the scanner sees the
//! hazard (and keeps the object): no use after free.
//!
//! # Pieces
//! - [`Domain`]: a push-only lock-free list of hazard records, and a
//!   domain-wide list of retired objects. A record has several slots and a
//!   small private list of the objects its thread retired. Threads take a record by
//!   CAS on its `in_use` flag and give it back by a store; records are reused
//!   and never freed while the domain lives. Each thread caches its record
//!   per domain (up to 8 domains), so creating a hazard pointer costs a
//!   thread-local lookup, not a shared write.
//! - [`HazardPointer`]: one slot, released when dropped. [`HazardPointer::protect`]
//!   is the load–publish–revalidate loop.
//! - [`Domain::retire`]: pushes onto the caller's record; every 16 objects
//!   (twice the slots of a record) the record hands them, as one batch, to
//!   the domain-wide list (a lock-free stack of batches: push by CAS, taken
//!   whole by a swap). When the domain-wide count of retired objects reaches
//!   `max(64, 2 × H)`, `H` the hazard slots in the domain, the retiring
//!   thread scans instead: it takes the whole list, adopts the orphans
//!   (below), issues one heavy fence, reads every slot into a sorted vector,
//!   frees every object not found by binary search and pushes the rest
//!   back. At least half of a scanned list is freed (at most `H` objects
//!   are protected), so the amortized cost per retire is O(1), and the
//!   unreclaimed objects of the whole domain are O(H): fewer than `2H` in
//!   the private lists plus the threshold and the batches racing past it.
//!   (Before, each record scanned only its own list at a threshold of
//!   `max(64, 2H)`, so `R` records could hold ~`16 R²` objects.)
//! - Fences: see [`FenceStrategy`]. By default readers pay a compiler fence
//!   only and the scanner issues `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`;
//!   without membarrier both sides use `SeqCst` fences.
//!
//! # Progress
//! `protect` is lock-free (it retries only when the source changed, i.e. when
//! another thread made progress) and each attempt is wait-free; creating a
//! hazard pointer is wait-free after the thread's first use of a domain;
//! `retire` is wait-free apart from the hand-over of a batch (a CAS loop,
//! lock-free: it retries only when another batch was pushed or the list was
//! taken) and the scan, which is bounded by the number of records and
//! retired objects.
//!
//! # Reclamation on drop and on thread exit
//! Dropping a [`Domain`] frees everything still retired into it. Objects a
//! thread retired stay in its record's private list until it hands them
//! over (fewer than 16); a thread that exits (or drops the last hazard
//! pointer of an extra record) leaves them in the released record and adds
//! their number to a domain-wide orphan count. Every scan first claims such free records
//! (a CAS on their `in_use` flag) and adopts their objects, and the scan
//! trigger counts the orphans (a hand-over scans when the domain-wide list
//! plus the orphans reach the threshold), so garbage of exited threads is
//! freed by whichever thread scans or calls [`Domain::reclaim`] next, also
//! in the never-dropped [`Domain::global`].
//!
//! # When the barrier fails
//! If `membarrier` fails after a successful registration (the kernel
//! documents no such case; a seccomp filter installed later could cause
//! it), the scan frees nothing that round and keeps everything for the next
//! one; [`Domain::skipped_scans`] and [`membarrier_failures`] count it. It
//! never panics (it used to, from a `HazardPointer`'s or a map operation's
//! drop, after the operation had taken effect).
//!
//! # Example
//! ```
//! use std::sync::atomic::{AtomicPtr, Ordering};
//! use waitless::hazard::{Domain, HazardPointer};
//!
//! let domain = Domain::new();
//! let shared = AtomicPtr::new(Box::into_raw(Box::new(7u64)));
//!
//! let mut hp = HazardPointer::new_in(&domain);
//! let p = hp.protect(&shared);
//! // SAFETY: protected, so not freed while `hp` holds it.
//! assert_eq!(unsafe { *p }, 7);
//!
//! // A writer swaps in a new value and retires the old one.
//! let old = shared.swap(Box::into_raw(Box::new(8u64)), Ordering::AcqRel);
//! // SAFETY: `old` is unlinked and retired once; dropping a Box<u64> is fine anywhere.
//! unsafe { domain.retire_box(old) };
//! domain.reclaim();
//! assert_eq!(unsafe { *p }, 7, "still protected, so not freed");
//! drop(hp);
//! domain.reclaim(); // now it is freed
//! # unsafe { drop(Box::from_raw(shared.load(Ordering::Relaxed))) };
//! ```

mod domain;
pub(crate) mod fence;
mod set; // the map's fast path: one record lookup per operation

pub use domain::Domain;
pub use fence::{membarrier_failures, FenceStrategy};
pub(crate) use set::{CachedSet, HazardSet, Members};

use core::ptr::{self, NonNull};

use crate::sync::atomic::{AtomicPtr, Ordering};
use domain::{Local, NotSendSync};

/// One hazard slot, protecting at most one pointer at a time. Released when
/// dropped. Not `Send`: the slot belongs to the creating thread's record.
///
/// ```
/// use std::sync::atomic::{AtomicPtr, Ordering};
/// use waitless::hazard::{Domain, HazardPointer};
///
/// let domain = Domain::new();
/// let src = AtomicPtr::new(Box::into_raw(Box::new(5u32)));
/// let mut hp = HazardPointer::new_in(&domain);
/// let p = hp.protect(&src);
/// // SAFETY: protected by `hp` and retired only through `domain`.
/// assert_eq!(unsafe { *p }, 5);
/// drop(hp);
/// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
/// ```
#[must_use]
pub struct HazardPointer<'d> {
    local: NonNull<Local>,
    slot: usize,
    asymmetric: bool,
    _domain: core::marker::PhantomData<&'d Domain>,
    _not_send: NotSendSync,
}

impl core::fmt::Debug for HazardPointer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HazardPointer")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
impl HazardPointer<'static> {
    /// A hazard pointer in the [global domain](Domain::global).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::HazardPointer;
    ///
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(1u8)));
    /// let mut hp = HazardPointer::new(); // in Domain::global()
    /// let p = hp.protect(&src);
    /// assert_eq!(p, src.load(Ordering::Relaxed));
    /// drop(hp);
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    pub fn new() -> Self {
        Self::new_in(Domain::global())
    }
}

#[cfg(not(loom))]
impl Default for HazardPointer<'static> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'d> HazardPointer<'d> {
    /// A hazard pointer in `domain`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(5u32)));
    /// let mut hp = HazardPointer::new_in(&domain);
    /// let p = hp.protect(&src);
    /// // SAFETY: protected by `hp` and retired only through `domain`.
    /// assert_eq!(unsafe { *p }, 5);
    /// drop(hp);
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    pub fn new_in(domain: &'d Domain) -> Self {
        let [hp] = Self::many_in::<1>(domain);
        hp
    }

    /// `N` hazard pointers in `domain`, with one thread-local lookup.
    ///
    /// ```
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let [prev, cur] = HazardPointer::many_in::<2>(&domain); // e.g. a list walk
    /// drop((prev, cur));
    /// ```
    pub fn many_in<const N: usize>(domain: &'d Domain) -> [Self; N] {
        let mut local = domain.local();
        let asymmetric = domain.asymmetric();
        // SAFETY: `local` is owned by this thread.
        if let Some(slots) = unsafe { local.as_ref().reserve_n::<N>() } {
            return slots.map(|slot| HazardPointer {
                local,
                slot,
                asymmetric,
                _domain: core::marker::PhantomData,
                _not_send: core::marker::PhantomData,
            });
        }
        core::array::from_fn(|_| loop {
            // SAFETY: `local` is owned by this thread (from the cache or
            // acquired for us).
            if let Some(slot) = unsafe { local.as_ref().reserve() } {
                return HazardPointer {
                    local,
                    slot,
                    asymmetric,
                    _domain: core::marker::PhantomData,
                    _not_send: core::marker::PhantomData,
                };
            }
            // Every slot of this record is in use: take an extra record,
            // released when its last hazard pointer drops.
            local = domain.acquire_extra();
        })
    }

    #[inline]
    fn slot(&self) -> &AtomicPtr<u8> {
        // SAFETY: the record outlives `'d` (records are freed only with the
        // domain's shared state) and we reserved `self.slot` in it.
        unsafe { &self.local.as_ref().slots[self.slot] }
    }

    /// Loads `src` and protects the pointer it holds, retrying until the
    /// published pointer is still the one in `src`. The result may be
    /// dereferenced until this hazard pointer is dropped, reset or reused,
    /// provided the object is retired only through this hazard pointer's
    /// domain and only after being unlinked from `src`.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(5u32)));
    /// let mut hp = HazardPointer::new_in(&domain);
    /// let p = hp.protect(&src);
    /// // SAFETY: protected by `hp` and retired only through `domain`.
    /// assert_eq!(unsafe { *p }, 5);
    /// drop(hp);
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    #[inline]
    pub fn protect<T>(&mut self, src: &AtomicPtr<T>) -> *mut T {
        let mut p = src.load(Ordering::Relaxed);
        loop {
            match self.try_protect(p, src) {
                Ok(p) => return p,
                Err(now) => p = now,
            }
        }
    }

    /// One attempt: publishes `ptr`, then checks that `src` still holds it.
    /// `Ok(ptr)` means it is protected; `Err(current)` gives what `src` holds
    /// now (no longer `ptr`, which is left published but unprotected).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(1u32)));
    /// let mut hp = HazardPointer::new_in(&domain);
    /// let seen = src.load(Ordering::Relaxed);
    /// assert_eq!(hp.try_protect(seen, &src), Ok(seen)); // still there: protected
    /// # drop(hp);
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    #[inline]
    pub fn try_protect<T>(&mut self, ptr: *mut T, src: &AtomicPtr<T>) -> Result<*mut T, *mut T> {
        self.publish(ptr);
        // Acquire: pairs with the Release store that published the object
        // into `src`, so its contents are visible.
        let now = src.load(Ordering::Acquire);
        if now == ptr {
            Ok(ptr)
        } else {
            Err(now)
        }
    }

    /// Publishes `ptr` and issues the reader-side fence. The caller must then
    /// re-validate that `ptr` is still reachable (as [`try_protect`]
    /// does) before dereferencing it.
    ///
    /// [`try_protect`]: Self::try_protect
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(1u32)));
    /// let mut hp = HazardPointer::new_in(&domain);
    /// let p = src.load(Ordering::Relaxed);
    /// hp.publish(p);
    /// // Re-validate before dereferencing: only now is `p` protected.
    /// assert_eq!(src.load(Ordering::Acquire), p);
    /// # drop(hp);
    /// # unsafe { drop(Box::from_raw(p)) };
    /// ```
    #[inline]
    pub fn publish<T>(&mut self, ptr: *mut T) {
        // Release: pairs with the Acquire slot loads in the scan, so this
        // thread's use of the object it protected before is visible before a
        // scanner that reads the new value frees that object.
        self.slot().store(ptr.cast(), Ordering::Release);
        fence::light(self.asymmetric);
    }

    /// Stops protecting anything.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    /// use waitless::hazard::{Domain, HazardPointer};
    ///
    /// let domain = Domain::new();
    /// let src = AtomicPtr::new(Box::into_raw(Box::new(1u32)));
    /// let mut hp = HazardPointer::new_in(&domain);
    /// let _p = hp.protect(&src);
    /// hp.reset_protection(); // `_p` may be freed from now on; `hp` can be reused
    /// # drop(hp);
    /// # unsafe { drop(Box::from_raw(src.load(Ordering::Relaxed))) };
    /// ```
    #[inline]
    pub fn reset_protection(&mut self) {
        // Release: as in `publish`.
        self.slot().store(ptr::null_mut(), Ordering::Release);
    }
}

impl Drop for HazardPointer<'_> {
    fn drop(&mut self) {
        // SAFETY: this thread owns the record (hazard pointers are !Send) and
        // reserved `self.slot` in `many_in`.
        unsafe { self.local.as_ref().unreserve(self.slot) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod review_map12gr;
