//! A per-thread cache of small blocks for the map's entries.
//!
//! Every `insert` of a new key allocates an entry and every removal frees
//! one, a grace period later, on whichever thread collects the bag that
//! holds the release: usually not the thread that will allocate next. glibc
//! keeps only seven blocks of a size in a thread's cache, so a bag of 30
//! releases overflows the collector's cache into the arena's bins, and the
//! inserting threads refill from there (`_int_malloc`, `unlink_chunk`,
//! `malloc_consolidate`: 8–11 % of a four-thread insert mix, `perf`,
//! `docs/btree.md` "Session 14"). This cache keeps up to
//! [`CACHE_BYTES`] of freed blocks per size class and thread, so a thread's
//! frees feed its own next allocations.
//!
//! # Why this is as sound as the allocator
//!
//! A block enters the cache only where the map would otherwise have handed
//! it to `dealloc`: an entry whose last counted reference was released (a
//! grace period after it left every version, so no thread can reach it), or
//! one that was never published. The cache is private to its thread (a
//! thread-local, touched by no code that can call back into the cache), so a
//! block in it is accessed by nobody until `alloc` returns it, exactly as
//! with a block inside the allocator. Reuse of an address therefore creates
//! no ABA that `free` + `malloc` could not create, and the map's CASes never
//! compare an entry address that a thread may hold across a reuse (entries
//! are reached only under a pin that keeps them alive).
//!
//! # Size classes and memory
//!
//! Layouts of at most 56 bytes and alignment at most 8 are served from four
//! classes (8, 24, 40 and 56 bytes: glibc chunks of 32, 32, 48 and 64, so a
//! block costs what a `Box` of the entry would; each block is allocated
//! with the class's size and an alignment of 8, so any block of a class
//! serves any layout of it). Other layouts go straight to the allocator.
//! Each class keeps at most [`CACHE_BYTES`] per thread, in two magazines of
//! half that (Bonwick and Adams' magazine layer, USENIX 2001); when both are
//! full, the older goes to the map's [`Depot`] (at most [`DEPOT_MAGS`]
//! magazines), or back to the allocator when the depot is full or busy. A
//! thread whose magazines are both empty takes a full one from the depot.
//! So a thread holds at most 4 × 16 KiB of free blocks, and a map's depot
//! at most 64 KiB. A thread's blocks go back to the allocator when it exits
//! (the thread-local's destructor), a depot's when its map drops; a block
//! freed after the thread-local is gone, from a later thread-local
//! destructor, goes straight to the allocator. Under loom every block goes to the allocator (loom's
//! threads share the OS thread's thread-locals).

use core::alloc::Layout;
#[cfg(not(loom))]
use core::ptr;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::cell::UnsafeCell;

/// Bytes of free blocks each size class keeps per thread.
pub(super) const CACHE_BYTES: usize = 16 * 1024;

/// Size classes: the bytes each class's blocks are allocated with. Each is
/// 8 less than a multiple of 16, the most that fits one glibc chunk size
/// (a request of `n` bytes takes a chunk of `n + 8` rounded up to 16, at
/// least 32): a block costs what `Box` would cost for the same entry.
const CLASS_SIZES: [usize; CLASSES] = [8, 24, 40, 56];
const CLASSES: usize = 4;
/// Every cached block's alignment (what `Box` asks for any entry of at
/// most 56 bytes whose fields are at most 8-aligned).
const CLASS_ALIGN: usize = 8;

/// The class serving `layout`, if any.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size == 0 || layout.align() > CLASS_ALIGN {
        return None;
    }
    CLASS_SIZES.iter().position(|&c| size <= c)
}

/// The layout every block of class `c` is allocated and freed with.
#[inline]
fn class_layout(c: usize) -> Layout {
    // A positive size and alignment 8: always valid.
    match Layout::from_size_align(CLASS_SIZES[c], CLASS_ALIGN) {
        Ok(l) => l,
        Err(_) => unreachable!("class layouts are valid"),
    }
}

/// The most blocks class `c` keeps per thread (two magazines).
#[cfg(all(test, not(loom)))]
fn class_cap(c: usize) -> usize {
    CACHE_BYTES / CLASS_SIZES[c]
}

/// A free block, linked through its first word.
#[cfg(not(loom))]
struct Free {
    next: *mut Free,
}

/// A list of free blocks of one class: at most [`mag_len`] of them.
#[cfg(not(loom))]
struct Magazine {
    head: *mut Free,
    len: usize,
}

#[cfg(not(loom))]
impl Magazine {
    const EMPTY: Self = Magazine {
        head: ptr::null_mut(),
        len: 0,
    };

    /// Pushes `b`.
    ///
    /// # Safety
    /// 1. `b` is a free block of this magazine's class, ours alone.
    #[inline]
    unsafe fn push(&mut self, b: *mut u8) {
        let b = b.cast::<Free>();
        // SAFETY: precondition 1: at least 8 bytes, 8-aligned: a `Free`
        // fits.
        unsafe { b.write(Free { next: self.head }) };
        self.head = b;
        self.len += 1;
    }

    /// Pops a block, or null.
    #[inline]
    fn pop(&mut self) -> *mut u8 {
        let b = self.head;
        if !b.is_null() {
            // SAFETY: blocks on the list hold a `Free` and are ours alone.
            self.head = unsafe { (*b).next };
            self.len -= 1;
            // The next pop reads that block's link: start loading it (the
            // blocks were freed long ago, by a collection).
            crate::utils::prefetch(self.head);
        }
        b.cast()
    }

    /// Gives every block back to the allocator.
    ///
    /// # Safety
    /// 1. The blocks are of class `c` and ours alone.
    unsafe fn free_all(&mut self, c: usize) {
        loop {
            let b = self.pop();
            if b.is_null() {
                break;
            }
            // SAFETY: precondition 1: allocated with `class_layout(c)`.
            unsafe { std::alloc::dealloc(b, class_layout(c)) };
        }
    }
}

/// Blocks per magazine in class `c`: half the class's per-thread bytes.
#[cfg(not(loom))]
#[inline]
fn mag_len(c: usize) -> usize {
    CACHE_BYTES / 2 / CLASS_SIZES[c]
}

/// Full magazines a map's depot keeps: at most `DEPOT_MAGS * CACHE_BYTES / 2`
/// bytes (64 KiB) per map.
pub(super) const DEPOT_MAGS: usize = 8;

/// A map's shared store of full magazines of its entry blocks. The threads
/// that run collections free more entries than they insert, and the others
/// the reverse; through the depot the first hand full magazines to the
/// second instead of to the allocator. Per map, not per process: dropping
/// the map gives everything in it back to the allocator.
///
/// The mutex is only ever *tried*: a thread that finds it taken goes to the
/// allocator (or frees to it) instead of waiting, so no operation of the
/// map waits for another thread here.
pub(super) struct Depot {
    /// The class of the map's entries (`None`: not cached).
    class: Option<usize>,
    /// Magazines held: a hint, written under the mutex and read without,
    /// so that a thread finding the depot empty does not take the mutex.
    #[cfg(not(loom))]
    full: AtomicUsize,
    #[cfg(not(loom))]
    mags: std::sync::Mutex<DepotMags>,
}

#[cfg(not(loom))]
struct DepotMags {
    mags: [Magazine; DEPOT_MAGS],
    len: usize,
}

// SAFETY: the blocks are free memory (no values), owned by whoever holds
// the mutex; moving them between threads moves that ownership.
#[cfg(not(loom))]
unsafe impl Send for DepotMags {}

impl Depot {
    /// An empty depot for blocks of `layout`.
    pub(super) fn new(layout: Layout) -> Self {
        Depot {
            class: class_of(layout),
            #[cfg(not(loom))]
            full: AtomicUsize::new(0),
            #[cfg(not(loom))]
            mags: std::sync::Mutex::new(DepotMags {
                mags: [Magazine::EMPTY; DEPOT_MAGS],
                len: 0,
            }),
        }
    }

    /// Takes a full magazine if one is here and the depot is free now.
    #[cfg(not(loom))]
    fn take(&self) -> Option<Magazine> {
        // Relaxed: the hint (see `full`); the mutex orders the magazines.
        if self.full.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut d = self.mags.try_lock().ok()?;
        if d.len == 0 {
            return None;
        }
        d.len -= 1;
        // Relaxed: the hint.
        self.full.store(d.len, Ordering::Relaxed);
        let i = d.len;
        Some(core::mem::replace(&mut d.mags[i], Magazine::EMPTY))
    }

    /// Leaves `m` here if there is room and the depot is free now, or gives
    /// it back.
    #[cfg(not(loom))]
    fn give(&self, m: Magazine) -> Result<(), Magazine> {
        let Ok(mut d) = self.mags.try_lock() else {
            return Err(m);
        };
        if d.len == DEPOT_MAGS {
            return Err(m);
        }
        let i = d.len;
        d.mags[i] = m;
        d.len += 1;
        // Relaxed: the hint.
        self.full.store(d.len, Ordering::Relaxed);
        Ok(())
    }

    /// Full magazines held (tests).
    #[cfg(all(test, not(loom)))]
    fn len(&self) -> usize {
        self.mags.lock().unwrap().len
    }
}

#[cfg(not(loom))]
impl Drop for Depot {
    fn drop(&mut self) {
        let d = self.mags.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = self.class {
            for m in &mut d.mags[..d.len] {
                // SAFETY: the depot's blocks are its own, of its class.
                unsafe { m.free_all(c) };
            }
        }
        d.len = 0;
    }
}

/// One thread's blocks: per class a magazine in use and a full or empty
/// spare.
#[cfg(not(loom))]
struct Cache {
    cur: [Magazine; CLASSES],
    spare: [Magazine; CLASSES],
}

#[cfg(not(loom))]
impl Cache {
    #[inline]
    fn alloc(&mut self, c: usize, depot: &Depot) -> *mut u8 {
        let b = self.cur[c].pop();
        if !b.is_null() {
            return b;
        }
        self.refill(c, depot)
    }

    /// `cur` is empty: the spare, or a full magazine from the depot,
    /// becomes `cur`.
    #[cold]
    fn refill(&mut self, c: usize, depot: &Depot) -> *mut u8 {
        if self.spare[c].len > 0 {
            core::mem::swap(&mut self.cur[c], &mut self.spare[c]);
        } else if let Some(m) = depot.take() {
            // `cur` is empty: nothing is lost by replacing it.
            self.cur[c] = m;
        }
        self.cur[c].pop()
    }

    /// Keeps `b`; returns the magazine the cache sheds (usually empty),
    /// for the caller to give to the depot or the allocator once it no
    /// longer borrows the cache.
    ///
    /// # Safety
    /// 1. `b` is a free block of class `c`, ours alone.
    #[inline]
    unsafe fn free(&mut self, c: usize, b: *mut u8) -> Magazine {
        let spill = if self.cur[c].len == mag_len(c) {
            self.rotate(c)
        } else {
            Magazine::EMPTY
        };
        // SAFETY: precondition 1.
        unsafe { self.cur[c].push(b) };
        spill
    }

    /// `cur` is full: it becomes the spare, and the old spare is returned
    /// (for the depot, or the allocator).
    #[cold]
    fn rotate(&mut self, c: usize) -> Magazine {
        let cur = core::mem::replace(&mut self.cur[c], Magazine::EMPTY);
        core::mem::replace(&mut self.spare[c], cur)
    }
}

#[cfg(not(loom))]
impl Drop for Cache {
    fn drop(&mut self) {
        for c in 0..CLASSES {
            for m in [&mut self.cur[c], &mut self.spare[c]] {
                // SAFETY: blocks of our lists are ours, of class `c`.
                unsafe { m.free_all(c) };
            }
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static CACHE: UnsafeCell<Cache> = const {
        UnsafeCell::new(Cache {
            cur: [Magazine::EMPTY; CLASSES],
            spare: [Magazine::EMPTY; CLASSES],
        })
    };
}

/// A block for `layout` (recycled if this thread or `depot` has one), never
/// null: allocation failure calls [`std::alloc::handle_alloc_error`], as
/// `Box` does.
///
/// # Panics
/// If `layout` has size zero (entries never do).
#[inline]
pub(super) fn alloc(layout: Layout, depot: &Depot) -> *mut u8 {
    assert!(layout.size() != 0, "blocks::alloc of a zero-sized layout");
    let (class, real) = match class_of(layout) {
        Some(c) => (Some(c), class_layout(c)),
        None => (None, layout),
    };
    #[cfg(not(loom))]
    if let Some(c) = class {
        // SAFETY: the cache is this thread's, and nothing borrows it across
        // a call that could re-enter it: its methods call no user code and
        // no allocator (blocks that go back to the allocator are freed
        // after the borrow, see `free`).
        let got = CACHE.try_with(|cache| unsafe { (*cache.get()).alloc(c, depot) });
        if let Ok(p) = got {
            if !p.is_null() {
                return p;
            }
        }
    }
    #[cfg(loom)]
    let _ = (class, depot);
    // SAFETY: `real` has a non-zero size (asserted; a class layout is at
    // least 8 bytes).
    let p = unsafe { std::alloc::alloc(real) };
    if p.is_null() {
        std::alloc::handle_alloc_error(real);
    }
    p
}

/// Gives back a block from [`alloc`] with the same `layout`; a full
/// magazine that this thread's cache sheds goes to `depot` if it has room.
///
/// # Safety
/// 1. `p` came from [`alloc`] with `layout`, holds no live value, and no
///    thread can access it any more (as for `dealloc`).
/// 2. `depot` was made for `layout`.
#[inline]
pub(super) unsafe fn free(p: *mut u8, layout: Layout, depot: &Depot) {
    debug_assert_eq!(depot.class, class_of(layout), "a depot of another layout");
    let Some(c) = class_of(layout) else {
        // SAFETY: precondition 1: allocated by the allocator with `layout`
        // (not a class layout, so `alloc` passed it through).
        unsafe { std::alloc::dealloc(p, layout) };
        return;
    };
    #[cfg(not(loom))]
    {
        // SAFETY: as in `alloc`; precondition 1 makes the block ours.
        let kept = CACHE.try_with(|cache| unsafe { (*cache.get()).free(c, p) });
        if let Ok(spill) = kept {
            if spill.len > 0 {
                if let Err(mut m) = depot.give(spill) {
                    // SAFETY: the spilled blocks were ours, of class `c`;
                    // the cache is no longer borrowed, so an allocator that
                    // re-enters the map is harmless.
                    unsafe { m.free_all(c) };
                }
            }
            return;
        }
    }
    // SAFETY: precondition 1: allocated with the class layout of `layout`.
    unsafe { std::alloc::dealloc(p, class_layout(c)) };
}

/// Blocks this thread's cache holds in class `c` (tests).
#[cfg(all(test, not(loom)))]
pub(super) fn cached(layout: Layout) -> usize {
    class_of(layout).map_or(0, |c| {
        // SAFETY: as in `alloc`.
        CACHE.with(|cache| unsafe { (*cache.get()).cur[c].len + (*cache.get()).spare[c].len })
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_small_layouts_and_pass_large_ones_through() {
        let l = |s, a| Layout::from_size_align(s, a).unwrap();
        assert_eq!(class_of(l(1, 1)), Some(0));
        assert_eq!(class_of(l(8, 8)), Some(0));
        assert_eq!(class_of(l(9, 8)), Some(1));
        assert_eq!(class_of(l(24, 8)), Some(1));
        assert_eq!(class_of(l(25, 4)), Some(2));
        assert_eq!(class_of(l(56, 8)), Some(3));
        assert_eq!(class_of(l(57, 8)), None);
        assert_eq!(class_of(l(16, 16)), None);
        assert_eq!(class_of(l(32, 32)), None);
        // The map's own entries.
        assert_eq!(
            class_of(Layout::new::<super::super::node::Entry<u64, u64>>()),
            Some(1)
        );
        for c in 0..CLASSES {
            assert!(class_layout(c).size() >= core::mem::size_of::<Free>());
            assert_eq!(class_layout(c).size() % 16, 8);
            assert_eq!(class_layout(c).align(), CLASS_ALIGN);
        }
    }

    #[test]
    fn a_freed_block_is_reused_by_this_thread_up_to_the_cap() {
        // Class 2 (40 bytes) on a fresh thread: its cache starts empty.
        let layout = Layout::new::<[u8; 40]>();
        let cap = class_cap(class_of(layout).unwrap());
        let depot = Depot::new(layout);
        std::thread::scope(|s| {
            s.spawn(|| {
                let n = if cfg!(miri) { 12 } else { cap + 10 };
                let blocks: Vec<*mut u8> = (0..n).map(|_| alloc(layout, &depot)).collect();
                for &b in &blocks {
                    assert_eq!(b as usize % CLASS_ALIGN, 0);
                    // The whole block is writable.
                    // SAFETY: fresh, `layout.size()` bytes.
                    unsafe { ptr::write_bytes(b, 0xAB, layout.size()) };
                }
                // SAFETY: each from `alloc(layout)`, freed once.
                blocks
                    .iter()
                    .for_each(|&b| unsafe { free(b, layout, &depot) });
                let held = cached(layout);
                assert!(held <= cap, "held {held} > cap {cap}");
                assert!(held >= n.min(mag_len(2)), "held {held} of {n}");
                // The last block freed comes back first.
                let again = alloc(layout, &depot);
                assert_eq!(again, *blocks.last().unwrap());
                assert_eq!(cached(layout), held - 1);
                // SAFETY: from `alloc`, freed once.
                unsafe { free(again, layout, &depot) };
            });
        });
    }

    #[test]
    fn full_magazines_move_through_the_depot_to_other_threads() {
        // Class 3 (56 bytes): its magazines are the shortest (146 blocks),
        // which keeps the test cheap under Miri. Threads start with empty
        // caches, so other tests' blocks of the class never mix in.
        let layout = Layout::new::<[u8; 56]>();
        let m = mag_len(3);
        let depot = Depot::new(layout);
        let freed: Vec<usize> = std::thread::scope(|s| {
            s.spawn(|| {
                let blocks: Vec<*mut u8> = (0..3 * m).map(|_| alloc(layout, &depot)).collect();
                // SAFETY: each from `alloc(layout)`, freed once.
                blocks
                    .iter()
                    .for_each(|&b| unsafe { free(b, layout, &depot) });
                blocks.iter().map(|&b| b as usize).collect()
            })
            .join()
            .unwrap()
        });
        // The third magazine pushed the first out of the thread's spare
        // slot into the depot; the thread's exit gave the rest back to the
        // allocator.
        assert_eq!(depot.len(), 1);
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(cached(layout), 0);
                let b = alloc(layout, &depot);
                assert!(freed.contains(&(b as usize)), "not from the depot");
                // The rest of that magazine is now this thread's.
                assert_eq!(cached(layout), m - 1);
                assert_eq!(depot.len(), 0);
                // SAFETY: from `alloc`, freed once.
                unsafe { free(b, layout, &depot) };
            });
        });
    }

    #[test]
    fn a_depot_keeps_a_bounded_number_of_magazines_and_frees_them_on_drop() {
        let layout = Layout::new::<[u8; 56]>();
        let m = mag_len(3);
        let depot = Depot::new(layout);
        let n = (DEPOT_MAGS + 3) * m;
        std::thread::scope(|s| {
            s.spawn(|| {
                let blocks: Vec<*mut u8> = (0..n).map(|_| alloc(layout, &depot)).collect();
                // SAFETY: each from `alloc(layout)`, freed once.
                blocks
                    .iter()
                    .for_each(|&b| unsafe { free(b, layout, &depot) });
            });
        });
        assert_eq!(depot.len(), DEPOT_MAGS);
        // Dropping it frees them (Miri's leak check and
        // `tests/btree_alloc.rs`'s counting allocator see it otherwise).
        drop(depot);
    }

    #[test]
    fn large_layouts_and_exiting_threads_go_to_the_allocator() {
        let big = Layout::new::<[u64; 16]>();
        let depot = Depot::new(big);
        let p = alloc(big, &depot);
        // SAFETY: from `alloc(big)`, freed once.
        unsafe { free(p, big, &depot) };
        assert_eq!(cached(big), 0);
        // A partial magazine of a thread that exits goes back to the
        // allocator (Miri's leak check would report it otherwise).
        let layout = Layout::new::<[u8; 56]>();
        let depot = Depot::new(layout);
        std::thread::scope(|s| {
            s.spawn(|| {
                let q = alloc(layout, &depot);
                // SAFETY: from `alloc(layout)`, freed once.
                unsafe { free(q, layout, &depot) };
                assert_eq!(cached(layout), 1);
            });
        });
        assert_eq!(depot.len(), 0);
    }
}
