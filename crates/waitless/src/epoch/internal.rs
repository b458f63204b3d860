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
//! bits 1..   : the global epoch the participant observed when it pinned
//! ```

use core::ptr;

use super::deferred::{Bag, Deferred};
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

#[inline]
fn pinned_word(epoch: usize) -> usize {
    (epoch << 1) | 1
}

/// One thread's record in one collector. Records live in a push-only list
/// and are freed only when the collector is dropped; a record whose thread
/// exited is reused by the next thread that registers.
#[repr(align(128))]
pub(crate) struct Participant {
    /// Packed pinned state (see the module docs). Written only by the owner.
    pub(crate) epoch: AtomicUsize,
    /// `true` while a thread owns this record.
    pub(crate) in_use: AtomicBool,
    /// Next record in the collector's list; immutable once published.
    next: AtomicPtr<Participant>,
    /// Owner-only state (the owning thread is the only one that touches it
    /// while `in_use`; ownership changes hands through `in_use`).
    pub(crate) local: UnsafeCell<LocalState>,
    /// Length of `local.bag`, mirrored for `Collector::pending` readers.
    pub(crate) bag_len: AtomicUsize,
    /// Statistics slots (owner-only writes, any-thread Relaxed reads).
    pub(crate) counters: [AtomicU64; COUNTERS],
}

/// State only the owning thread touches.
pub(crate) struct LocalState {
    /// Number of live `Guard`s of this thread on this collector.
    pub(crate) guards: usize,
    /// Pins since the last collection attempt.
    pub(crate) pins: usize,
    /// Deferred functions not yet sealed.
    pub(crate) bag: Bag,
}

impl Participant {
    fn new_owned() -> Self {
        Self {
            epoch: AtomicUsize::new(0),
            in_use: AtomicBool::new(true),
            next: AtomicPtr::new(ptr::null_mut()),
            local: UnsafeCell::new(LocalState {
                guards: 0,
                pins: 0,
                bag: Bag::new(),
            }),
            bag_len: AtomicUsize::new(0),
            counters: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Adds `n` to counter `i`. Only the owner writes, so a load and a store
    /// suffice (no locked read-modify-write on the hot path).
    #[inline]
    pub(crate) fn count(&self, i: usize, n: u64) {
        let c = &self.counters[i];
        c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

/// A full bag sealed with the global epoch at the time it was sealed.
struct SealedBag {
    epoch: usize,
    bag: Bag,
    next: *mut SealedBag,
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
    /// Head of the push-only participant list.
    participants: AtomicPtr<Participant>,
}

impl Global {
    pub(crate) fn new() -> Self {
        Self {
            epoch: CachePadded::new(AtomicUsize::new(0)),
            garbage: core::array::from_fn(|_| CachePadded::new(AtomicPtr::new(ptr::null_mut()))),
            garbage_count: AtomicUsize::new(0),
            participants: AtomicPtr::new(ptr::null_mut()),
        }
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
        let new = Box::into_raw(Box::new(Participant::new_owned()));
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
            debug_assert_eq!((*l).guards, 0);
            core::mem::replace(&mut (*l).bag, Bag::new())
        });
        p.bag_len.store(0, Ordering::Relaxed);
        if !bag.is_empty() {
            self.push_bag(bag);
        }
        // Release pairs with the Acquire CAS in `register`: the next owner
        // sees our last writes to `local`.
        p.in_use.store(false, Ordering::Release);
    }

    /// Pins `p` if it is not pinned yet; returns `true` if this was the
    /// outermost pin.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, and `p` belongs to `self`.
    #[inline]
    pub(crate) unsafe fn pin(&self, p: &Participant) -> bool {
        // SAFETY: precondition 1: owner-only state.
        let outer = p.local.with_mut(|l| unsafe {
            (*l).guards += 1;
            (*l).guards == 1
        });
        if outer {
            // SeqCst: this load is in the single total order S together
            // with the SeqCst epoch CAS in `try_advance` and the SeqCst
            // loads in `push_bag`; docs/stack.md ("Why the epoch loads are
            // SeqCst") shows that this makes the sealed epoch of any garbage
            // this thread could still reach at least the epoch we pin with.
            let global = self.epoch.load(Ordering::SeqCst);
            p.epoch.store(pinned_word(global), Ordering::Relaxed);
            // SeqCst fence: store-load barrier between publishing the pin
            // and every load of the critical section. Pairs with the SeqCst
            // fence in `try_advance` (an advancer that misses this pin is
            // ordered before it in S, so our loads see every unlink it saw)
            // and with the one in `push_bag`.
            fence(Ordering::SeqCst);

            // SAFETY: precondition 1: owner-only state.
            let collect = p.local.with_mut(|l| unsafe {
                (*l).pins = (*l).pins.wrapping_add(1);
                (*l).pins % PINS_BETWEEN_COLLECT == 0
            });
            // Skip the participant walk entirely when there is no garbage.
            if collect && self.garbage_count.load(Ordering::Relaxed) > 0 {
                self.try_advance();
                self.collect();
            }
        }
        outer
    }

    /// Drops one pin of `p`; unpins when it was the last.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, and holds a pin on it taken with
    ///    [`Global::pin`].
    #[inline]
    pub(crate) unsafe fn unpin(&self, p: &Participant) {
        // SAFETY: precondition 1: owner-only state.
        let last = p.local.with_mut(|l| unsafe {
            (*l).guards -= 1;
            (*l).guards == 0
        });
        if last {
            // Release pairs with the Acquire fence in `try_advance`: every
            // access of the critical section happens before an advance that
            // reads this store, and so before any free that advance allows.
            p.epoch.store(0, Ordering::Release);
        }
    }

    /// Adds `d` to `p`'s bag, sealing the bag into the global list when full.
    ///
    /// # Safety
    /// 1. The calling thread owns `p`, `p` belongs to `self`, and `p` is pinned.
    pub(crate) unsafe fn defer(&self, p: &Participant, d: Deferred) {
        // SAFETY: precondition 1: owner-only state. No user code runs while
        // the `&mut` is live (moving a `Deferred` runs nothing).
        let full = p.local.with_mut(|l| unsafe {
            match (*l).bag.try_push(d) {
                Ok(()) => {
                    p.bag_len.store((*l).bag.len(), Ordering::Relaxed);
                    None
                }
                Err(d) => {
                    let full = core::mem::replace(&mut (*l).bag, Bag::new());
                    if (*l).bag.try_push(d).is_err() {
                        unreachable!("a fresh bag has room");
                    }
                    p.bag_len.store(1, Ordering::Relaxed);
                    Some(full)
                }
            }
        });
        if let Some(full) = full {
            self.push_bag(full);
            self.try_advance();
            self.collect();
        }
    }

    /// Seals `p`'s bag into the global list now.
    ///
    /// # Safety
    /// 1. The calling thread owns `p` and `p` belongs to `self`.
    pub(crate) unsafe fn flush(&self, p: &Participant) {
        // SAFETY: precondition 1: owner-only state.
        let bag = p
            .local
            .with_mut(|l| unsafe { core::mem::replace(&mut (*l).bag, Bag::new()) });
        p.bag_len.store(0, Ordering::Relaxed);
        if !bag.is_empty() {
            self.push_bag(bag);
        }
        self.try_advance();
        self.collect();
    }

    /// Seals `bag` with the current epoch and pushes it on the garbage list.
    fn push_bag(&self, bag: Bag) {
        let n = bag.len();
        // SeqCst fence: orders every unlink of the garbage in `bag` (which
        // happened before this call) before the epoch load below in S; pairs
        // with the SeqCst fence in `pin`. A thread whose pin fence comes
        // later in S sees the unlinks and cannot reach the garbage.
        fence(Ordering::SeqCst);
        // SeqCst: see `pin` — the sealed epoch must be at least the epoch of
        // every thread that pinned before the fence above.
        let epoch = self.epoch.load(Ordering::SeqCst);
        let node = Box::into_raw(Box::new(SealedBag {
            epoch,
            bag,
            next: ptr::null_mut(),
        }));
        self.garbage_count.fetch_add(n, Ordering::Relaxed);
        self.push_sealed(epoch % 3, node, node);
    }

    /// Pushes the chain `first..=last` (linked through `next`) on list `i`.
    fn push_sealed(&self, i: usize, first: *mut SealedBag, last: *mut SealedBag) {
        let list = &self.garbage[i];
        let mut head = list.load(Ordering::Relaxed);
        loop {
            // SAFETY: the chain is ours until the CAS publishes it.
            unsafe { (*last).next = head };
            // Release pairs with the Acquire swap in `collect`: the taker
            // sees the bag's contents.
            match list.compare_exchange_weak(head, first, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Advances the global epoch if every pinned participant has observed
    /// it; returns the global epoch after the attempt.
    pub(crate) fn try_advance(&self) -> usize {
        // SeqCst: part of S (see `pin`).
        let global = self.epoch.load(Ordering::SeqCst);
        // SeqCst fence: pairs with the fence in `pin`. Either a pinner's
        // fence precedes this one in S (then the loads below see its pin
        // word) or it follows (then its critical section sees every unlink
        // made before this fence).
        fence(Ordering::SeqCst);
        let mut blocked = false;
        self.for_each_participant(|p| {
            let e = p.epoch.load(Ordering::Relaxed);
            if e & 1 == 1 && (e >> 1) != global {
                blocked = true;
                return false;
            }
            true
        });
        if blocked {
            return global;
        }
        // Acquire fence: pairs with the Release store in `unpin`, so every
        // critical section we saw as ended happens before the advance.
        fence(Ordering::Acquire);
        // SeqCst (success): publishes the advance (release half, carrying
        // the fence above to whoever reads the new epoch) and is in S.
        match self.epoch.compare_exchange(
            global,
            global.wrapping_add(1),
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => global.wrapping_add(1),
            Err(now) => now,
        }
    }

    /// Runs the sealed bags whose epoch is at least two behind the global
    /// one, from the list where they gather (see `garbage`).
    pub(crate) fn collect(&self) {
        // Acquire pairs with the SeqCst (release) CAS in `try_advance`:
        // everything the advancer ordered before the advance (the ended
        // critical sections) happens before the frees below.
        let global = self.epoch.load(Ordering::Acquire);
        let list = &self.garbage[global.wrapping_add(1) % 3];
        if list.load(Ordering::Relaxed).is_null() {
            return;
        }
        // Acquire pairs with the Release CAS in `push_sealed`.
        let mut cur = list.swap(ptr::null_mut(), Ordering::Acquire);
        let mut expired: *mut SealedBag = ptr::null_mut();
        while !cur.is_null() {
            // SAFETY: the swap made the whole chain ours.
            let (next, epoch) = unsafe { ((*cur).next, (*cur).epoch) };
            // Signed distance: a bag sealed *after* our load of the global
            // epoch (its sealer saw `global + 1`) is one step in the future,
            // not `usize::MAX` steps in the past. (Treating that difference
            // as unsigned freed such bags at once — Miri caught it as a
            // use-after-free in the 8-thread stack test.)
            if (global.wrapping_sub(epoch) as isize) >= 2 {
                // SAFETY: as above.
                unsafe { (*cur).next = expired };
                expired = cur;
            } else {
                // Sealed at `global + 1` (its sealer saw a newer epoch than
                // our load): not expired, put it back. Rare.
                // SAFETY: as above; the node leaves our chain here.
                unsafe { (*cur).next = ptr::null_mut() };
                self.push_sealed(epoch % 3, cur, cur);
            }
            cur = next;
        }
        free_chain(expired, &self.garbage_count);
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
            n += p.bag_len.load(Ordering::Relaxed);
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
        for list in &self.garbage {
            let garbage = list.swap(ptr::null_mut(), Ordering::Relaxed);
            free_chain(garbage, &self.garbage_count);
        }
        drop(free);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdUsize;
    use std::sync::Arc;

    /// A bag sealed by a thread that already saw the next epoch must not
    /// be run by a collector that loaded the previous one (regression: an
    /// unsigned epoch difference made it look `usize::MAX` epochs old).
    #[test]
    fn a_bag_from_the_next_epoch_is_not_expired() {
        let g = Global::new();
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
}
