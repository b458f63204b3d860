//! The map's leaf handles, packed in chunks and recycled through a free
//! list.
//!
//! A lookup loads one handle between its bottom inner node and the leaf
//! version (`docs/btree.md`, "Nodes"). Handles used to be 8-byte boxes
//! that `malloc` scattered among the entries (about 800 pages for 100k
//! `u64` entries), so that load missed the cache and the TLB; packed here,
//! the handles of a 100k-key map fill about nine pages (`docs/btree.md`,
//! "Session 12: a binary search without branches", "Handles packed in an
//! arena").
//!
//! Chunks are never freed before the arena (the map) is, so a handle's
//! memory stays valid for the arena's life: a stale pointer to a free
//! handle reads a link word, never freed memory. A handle goes back to the
//! free list only through [`HandleArena::retire`], a grace period of the
//! map's collector after it was unlinked (or, unpublished, abandoned), and
//! every [`HandleArena::alloc`] runs pinned in that collector. That grace
//! period is what makes the list's pop free of ABA: a pop that read `h` at
//! the head and `n` as its link can see `h` at the head again only if `h`
//! was popped and pushed back meanwhile, and that push waits for the pin
//! the pop runs under; while `h` stays at the head, its link stays `n` and
//! `n` stays free (only the head is popped).

use core::ptr::{self, NonNull};

use core::alloc::Layout;

use super::blocks::Depot;
use super::node::{Entry, Handle, HandlePtr, Node};
use crate::epoch::Guard;
use crate::sync::atomic::{AtomicPtr, Ordering};

/// Handles per chunk: 1 KiB chunks with the link word (a few under loom,
/// whose atomics are heavy and whose models make few handles, and under
/// Miri, whose small maps would otherwise never fill a second chunk).
const CHUNK: usize = if cfg!(any(loom, miri)) { 4 } else { 127 };

/// A block of handles, linked to the arena's other chunks for the drop.
#[repr(C, align(64))]
struct Chunk<K, V> {
    next: *mut Chunk<K, V>,
    hs: [Handle<K, V>; CHUNK],
}

/// Where a map's leaf handles live (see the module documentation).
pub(super) struct HandleArena<K, V> {
    /// Free handles: a Treiber stack linked through their `cur` words
    /// (a link is a `HandlePtr` cast to the word's pointer type).
    free: AtomicPtr<Handle<K, V>>,
    /// Every chunk, linked through `Chunk::next`; freed by the drop.
    chunks: AtomicPtr<Chunk<K, V>>,
    /// The map's depot of entry blocks (`btree/blocks.rs`). Here because
    /// the deferred entry releases reach it by address, like the
    /// `retire`s reach the arena, and it must outlive the collector.
    pub(super) depot: Depot,
}

/// The map's owning pointer to its arena. Not a `Box` field: the deferred
/// `retire` functions reach the arena through raw pointers made before the
/// map may have moved, and moving a `Box` asserts that it is unique (Miri's
/// Stacked Borrows would then reject those pointers; the collector's
/// `GlobalBox` is the same). Declared after the map's `collector`, whose
/// drop runs the pending `retire`s first.
pub(super) struct ArenaBox<K, V>(NonNull<HandleArena<K, V>>);

impl<K, V> ArenaBox<K, V> {
    pub(super) fn new() -> Self {
        ArenaBox(NonNull::from(Box::leak(Box::new(HandleArena::new()))))
    }
}

impl<K, V> core::ops::Deref for ArenaBox<K, V> {
    type Target = HandleArena<K, V>;
    fn deref(&self) -> &HandleArena<K, V> {
        // SAFETY: allocated in `new`, freed only in `drop`.
        unsafe { self.0.as_ref() }
    }
}

impl<K, V> Drop for ArenaBox<K, V> {
    fn drop(&mut self) {
        // SAFETY: from `Box::leak` in `new`, freed once; the map's
        // collector, which held the only other pointers (in pending
        // `retire`s), has dropped.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl<K, V> HandleArena<K, V> {
    pub(super) fn new() -> Self {
        HandleArena {
            free: AtomicPtr::new(ptr::null_mut()),
            chunks: AtomicPtr::new(ptr::null_mut()),
            depot: Depot::new(Layout::new::<Entry<K, V>>()),
        }
    }

    /// A handle whose current version is `v`, not yet reachable by any
    /// other thread.
    ///
    /// # Safety
    /// The caller is pinned in the map's collector (the one that
    /// [`retire`](Self::retire) defers through), and stays pinned until
    /// this returns; or no other thread can reach the arena.
    pub(super) unsafe fn alloc(&self, v: *mut Node<K, V>) -> HandlePtr<K, V> {
        // Acquire: pairs with the Release CAS of the push that put `h` at
        // the head (`push_chain`), so its link word is visible.
        let mut h = self.free.load(Ordering::Acquire);
        loop {
            if h.is_null() {
                return self.grow(v);
            }
            // SAFETY: `h` is a handle of one of our chunks, which live as
            // long as `self`. If another thread popped it since our load,
            // this reads whatever it stored, and the CAS below fails (see
            // the module documentation: `h` cannot be back at the head
            // while we are pinned).
            let next = unsafe { &*h }
                .cur
                .load(Ordering::Relaxed)
                .cast::<Handle<K, V>>();
            // Acquire on failure: as the load above, for the new head.
            match self
                .free
                .compare_exchange_weak(h, next, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: popped: ours alone until published (by a CAS
                    // with Release, which orders this store before it).
                    unsafe { &*h }.cur.store(v, Ordering::Relaxed);
                    return h;
                }
                Err(cur) => h = cur,
            }
        }
    }

    /// Returns `h` to the free list a grace period from now.
    ///
    /// # Safety
    /// `h` came from [`alloc`](Self::alloc) of this arena and is retired
    /// once; it is unlinked (no thread can load it from the map any more;
    /// pinned ones that hold it are fine) or was never published. `guard`
    /// is pinned in the map's collector, which drops before the arena.
    pub(super) unsafe fn retire(&self, guard: &Guard<'_>, h: HandlePtr<K, V>) {
        struct Send2<K, V>(*const HandleArena<K, V>, HandlePtr<K, V>);
        // SAFETY: pushing onto the arena's free list is atomic and sound
        // from any thread.
        unsafe impl<K, V> Send for Send2<K, V> {}
        let p = Send2(self, h);
        let f = move || {
            let p = p;
            // SAFETY: the arena outlives the collector's deferred
            // functions (the precondition); `h` is ours and, a grace period
            // after its unlinking, no thread can read it as a handle.
            unsafe { (*p.0).push_chain(p.1, p.1) };
        };
        // SAFETY: the closure runs once, on any thread (see `Send2`), and
        // borrows the arena, which outlives the collector.
        unsafe { guard.defer_unchecked(f) }
    }

    /// Pushes the chain `first ..= last` (linked through `cur`) onto the
    /// free list.
    ///
    /// # Safety
    /// The chain's handles are this arena's and no thread reads them as
    /// handles (nor will until they are popped again).
    unsafe fn push_chain(&self, first: HandlePtr<K, V>, last: HandlePtr<K, V>) {
        let mut head = self.free.load(Ordering::Relaxed);
        loop {
            // SAFETY: the precondition: `last` is ours.
            unsafe { &*last }.cur.store(head.cast(), Ordering::Relaxed);
            // Release: publishes the chain's link words to the pop that
            // reads `first` at the head (pairs with the Acquire loads in
            // `alloc`).
            match self
                .free
                .compare_exchange_weak(head, first, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => head = cur,
            }
        }
    }

    /// A fresh chunk: its first handle is returned (current version `v`),
    /// the others go onto the free list.
    #[cold]
    fn grow(&self, v: *mut Node<K, V>) -> HandlePtr<K, V> {
        let c = Box::into_raw(Box::new(Chunk {
            next: ptr::null_mut(),
            hs: core::array::from_fn(|_| Handle {
                cur: AtomicPtr::new(ptr::null_mut()),
            }),
        }));
        // SAFETY: `c` is fresh and ours; its handles are derived from it
        // (provenance over the whole chunk).
        let h = move |i: usize| unsafe { ptr::addr_of_mut!((*c).hs[i]) };
        for i in 1..CHUNK - 1 {
            // SAFETY: ours, not shared yet.
            unsafe { &*h(i) }
                .cur
                .store(h(i + 1).cast(), Ordering::Relaxed);
        }
        if CHUNK > 1 {
            // SAFETY: handles 1..CHUNK are linked above and unshared.
            unsafe { self.push_chain(h(1), h(CHUNK - 1)) };
        }
        let mut head = self.chunks.load(Ordering::Relaxed);
        loop {
            // SAFETY: ours; the list is read only by the drop.
            unsafe { (*c).next = head };
            // Relaxed: the chunk list is read only by `Drop`, which has
            // `&mut self` (every thread that used the arena is ordered
            // before it by whatever handed over the exclusive access).
            match self
                .chunks
                .compare_exchange_weak(head, c, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(cur) => head = cur,
            }
        }
        // SAFETY: handle 0 is ours: not on the free list.
        unsafe { &*h(0) }.cur.store(v, Ordering::Relaxed);
        h(0)
    }

    /// The number of chunks (tests: the free list recycles handles).
    /// Only while no other thread grows the arena (the list is Relaxed).
    #[cfg(all(test, not(loom)))]
    pub(super) fn chunks(&self) -> usize {
        let mut n = 0;
        let mut c = self.chunks.load(Ordering::Relaxed);
        while !c.is_null() {
            n += 1;
            // SAFETY: chunks live as long as `self`; the tests call this
            // with no other thread using the arena (their writes were
            // ordered before it by a join, or made by this thread).
            c = unsafe { (*c).next };
        }
        n
    }
}

impl<K, V> Drop for HandleArena<K, V> {
    fn drop(&mut self) {
        // `&mut self`: every handle is dead (the map tore its tree down and
        // its collector, which ran the pending `retire`s, dropped first).
        let mut c = self.chunks.load(Ordering::Relaxed);
        while !c.is_null() {
            // SAFETY: each chunk came from `Box::into_raw` in `grow` and is
            // on the list once.
            let b = unsafe { Box::from_raw(c) };
            c = b.next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::btree::LockFreeBTree;
    use crate::epoch::Collector;

    #[test]
    fn a_retired_handle_comes_back_after_a_grace_period_only() {
        // The arena first: locals drop in reverse, so the collector (and
        // the retirements it holds) goes first even if an assertion fails.
        let a = HandleArena::<u64, u64>::new();
        let c = Collector::new();
        let v = ptr::null_mut();
        let g = c.pin();
        // SAFETY: pinned in `c`, which the arena's retirements go through.
        let (x, y) = unsafe { (a.alloc(v), a.alloc(v)) };
        assert_ne!(x, y);
        assert_eq!(a.chunks(), 1);
        // SAFETY: never published; `c` drops before `a`.
        unsafe { a.retire(&g, x) };
        // Still pinned: `x` cannot be free yet.
        let mut taken = Vec::new();
        for _ in 0..2 * CHUNK {
            // SAFETY: as above.
            let h = unsafe { a.alloc(v) };
            assert_ne!(h, x, "a handle came back inside its grace period");
            taken.push(h);
        }
        drop(g);
        c.synchronize();
        let g = c.pin();
        let mut seen = false;
        for _ in 0..CHUNK {
            // SAFETY: as above.
            seen |= unsafe { a.alloc(v) } == x;
        }
        assert!(seen, "a retired handle was never reused");
        drop(g);
        drop(c);
    }

    /// Splits and merges under churn retire and make handles; recycled,
    /// the chunk count stays at the first round's peak instead of growing
    /// with every round.
    #[test]
    fn churn_recycles_handles() {
        let n: u64 = if cfg!(miri) { 64 } else { 20_000 };
        let rounds = if cfg!(miri) { 3 } else { 8 };
        let m = LockFreeBTree::new();
        let mut first = 0;
        for round in 0..rounds {
            for k in 0..n {
                m.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15) % (4 * n), k);
            }
            for k in 0..4 * n {
                m.remove(&k);
            }
            m.collector().synchronize();
            if round == 0 {
                first = m.handles.chunks();
            }
        }
        let last = m.handles.chunks();
        assert!(
            last <= 2 * first,
            "{last} chunks after {rounds} rounds, {first} after the first"
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::epoch::Collector;
    use crate::sync::Arc;
    use loom::thread;

    fn marker(i: u64) -> *mut Node<u64, u64> {
        Box::into_raw(Box::new(i)).cast()
    }

    /// The ABA case of a Treiber free list: the main thread's pop reads
    /// `h` at the head and `n` as its link, while another thread pops `h`
    /// and `n` and retires `h`. If `h` could come back at once, the main
    /// thread's CAS would succeed and put `n`, owned by the other thread,
    /// back at the head: its next pop would take `n` a second time (the
    /// owner's mark in `n` would be overwritten). Retiring through the
    /// collector makes `h` wait for the main thread's pin.
    #[test]
    fn a_pop_never_takes_a_handle_another_thread_holds() {
        loom::model(|| {
            let c = Arc::new(Collector::new());
            let a = Arc::new(HandleArena::<u64, u64>::new());
            let (m1, m2, m3) = (marker(1), marker(2), marker(3));
            {
                let _g = c.pin();
                // The first chunk: one handle taken, CHUNK - 1 free.
                // SAFETY: pinned in `c`.
                let _ = unsafe { a.alloc(m1) };
            }
            let other = {
                let (c, a) = (Arc::clone(&c), Arc::clone(&a));
                let (m2, m3) = (m2 as usize, m3 as usize);
                thread::spawn(move || {
                    let (m2, m3) = (m2 as *mut Node<u64, u64>, m3 as *mut Node<u64, u64>);
                    let g = c.pin();
                    // SAFETY: pinned in `c`.
                    let h = unsafe { a.alloc(m2) };
                    // SAFETY: as above.
                    let n = unsafe { a.alloc(m3) };
                    // SAFETY: never published; `c` drops before `a`.
                    unsafe { a.retire(&g, h) };
                    g.flush();
                    drop(g);
                    for _ in 0..3 {
                        c.try_advance();
                    }
                    // SAFETY: `n` is ours: nobody else may have written it.
                    let mark = unsafe { &*n }.cur.load(Ordering::Relaxed);
                    assert_eq!(mark, m3, "another pop took a handle we hold");
                })
            };
            {
                let _g = c.pin();
                // SAFETY: pinned in `c`.
                let x = unsafe { a.alloc(m1) };
                // SAFETY: as above.
                let y = unsafe { a.alloc(m1) };
                assert_ne!(x, y);
            }
            other.join().unwrap();
            drop(c);
            drop(a);
            for m in [m1, m2, m3] {
                // SAFETY: made by `marker`, freed once.
                drop(unsafe { Box::from_raw(m.cast::<u64>()) });
            }
        });
    }
}
