//! A per-thread cache of freed value blocks.
//!
//! Every replace allocates a box for the new value and retires the old one;
//! the retired boxes are freed in bulk by a hazard scan, often on another
//! thread than the one that allocated them. Straight through the global
//! allocator that is one allocation and one free per replace, and with
//! glibc the bulk frees overflow its small per-thread cache (so both go the
//! slow way) and frees of another thread's blocks contend on its arena lock
//! (measured: a third of `map/insert-heavy`'s time at two threads went to
//! `malloc`/`free` and that lock). Here the scan's deleter keeps the freed
//! block in the scanning thread's cache and the next value box of the same
//! size on that thread reuses it.
//!
//! Blocks are exactly the global allocator's `Layout::new::<Al<V>>()`
//! blocks: a cached block is only ever reused for a value of the same size
//! and alignment 8 (one class per size, 8 to 64 bytes), so any code may
//! still free a value box with `Box::from_raw` (the map's drop does). Values
//! with a larger alignment, of size 0 or over 64 bytes bypass the cache.
//! The cache is bounded (`CAP` blocks a class) and freed when its thread
//! exits; a deleter that runs after that frees to the global allocator.

use super::table::Al;

/// Boxes `v` as an [`Al<V>`], reusing a cached block if there is one.
#[inline]
pub(super) fn boxed<V>(v: V) -> *mut Al<V> {
    #[cfg(not(loom))]
    if let Some(c) = imp::class::<V>() {
        if let Some(p) = imp::take(c) {
            let p = p.cast::<Al<V>>();
            // SAFETY: a block of `Al<V>`'s exact layout (the class is its
            // size, the alignment 8), owned by us since `take`.
            unsafe { p.write(Al(v)) };
            return p;
        }
    }
    Box::into_raw(Box::new(Al(v)))
}

/// Drops the boxed value at `p` and caches or frees its block (the
/// deleter of a retired value box). The block is released even if
/// `V::drop` panics.
///
/// # Safety
/// 1. `p` came from [`boxed`] or `Box::into_raw(Box::new(Al(..)))`, is
///    live, and nothing uses it afterwards.
pub(super) unsafe fn free<V>(p: *mut Al<V>) {
    struct Release<V>(*mut Al<V>);
    impl<V> Drop for Release<V> {
        fn drop(&mut self) {
            // SAFETY: `free`'s precondition 1; the value was dropped (or its
            // drop unwound) just before, so only the block is left.
            unsafe { release_block(self.0) };
        }
    }
    let _release = Release(p);
    // SAFETY: precondition 1: live, dropped once here.
    unsafe { core::ptr::drop_in_place(p) };
}

/// Caches or frees the block of a boxed `Al<V>` whose value is already
/// dropped.
///
/// # Safety
/// 1. `p` is such a block, owned by the caller and not used again.
unsafe fn release_block<V>(p: *mut Al<V>) {
    #[cfg(not(loom))]
    if let Some(c) = imp::class::<V>() {
        if imp::put(c, p.cast()) {
            return;
        }
    }
    // SAFETY: precondition 1: the block of a `Box<Al<V>>` (same layout as
    // `MaybeUninit<Al<V>>`, whose drop does nothing).
    drop(unsafe { Box::from_raw(p.cast::<core::mem::MaybeUninit<Al<V>>>()) });
}

#[cfg(not(loom))]
mod imp {
    use core::cell::RefCell;
    use std::alloc::{dealloc, Layout};

    use super::Al;

    /// Size classes: 8, 16, …, 64 bytes.
    const CLASSES: usize = 8;
    /// Blocks kept per class (a scan frees up to the map's scan batch at
    /// once; more than this go back to the allocator).
    const CAP: usize = if cfg!(miri) { 4 } else { 1024 };

    struct Cache {
        free: [Vec<*mut u8>; CLASSES],
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            for (c, blocks) in self.free.iter_mut().enumerate() {
                for p in blocks.drain(..) {
                    // SAFETY: a block of class `c` (size `(c + 1) * 8`,
                    // alignment 8) from the global allocator, owned by the
                    // cache.
                    unsafe { dealloc(p, layout(c)) };
                }
            }
        }
    }

    std::thread_local! {
        static CACHE: RefCell<Cache> = const {
            RefCell::new(Cache { free: [const { Vec::new() }; CLASSES] })
        };
    }

    fn layout(c: usize) -> Layout {
        // `(c + 1) * 8 <= 64` with alignment 8 is always a valid layout.
        Layout::from_size_align((c + 1) * 8, 8).unwrap_or_else(|_| unreachable!())
    }

    /// The class of `Al<V>`'s layout, if it has one.
    #[inline]
    pub(super) fn class<V>() -> Option<usize> {
        let l = Layout::new::<Al<V>>();
        // `Al` is 8-aligned, so its size is a multiple of 8.
        (l.align() == 8 && l.size() != 0 && l.size() <= CLASSES * 8).then(|| l.size() / 8 - 1)
    }

    /// A cached block of class `c`, owned by the caller.
    #[inline]
    pub(super) fn take(c: usize) -> Option<*mut u8> {
        CACHE
            .try_with(|cache| cache.try_borrow_mut().ok()?.free[c].pop())
            .ok()
            .flatten()
    }

    /// Caches block `p` of class `c`; `false` (nothing done) if the cache is
    /// full, torn down or busy.
    #[inline]
    pub(super) fn put(c: usize, p: *mut u8) -> bool {
        CACHE
            .try_with(|cache| {
                let Ok(mut cache) = cache.try_borrow_mut() else {
                    return false;
                };
                let v = &mut cache.free[c];
                if v.len() >= CAP {
                    return false;
                }
                v.push(p);
                true
            })
            .unwrap_or(false)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_freed_block_is_reused_and_every_value_dropped_once() {
        let token = Arc::new(());
        let a = boxed(Arc::clone(&token));
        // SAFETY: from `boxed`, live, not used again.
        unsafe { free(a) };
        assert_eq!(Arc::strong_count(&token), 1, "the value was dropped");
        let b = boxed(Arc::clone(&token));
        assert_eq!(
            b.cast::<u8>(),
            a.cast::<u8>(),
            "the cached block was reused"
        );
        // Other value types of the same size share the class.
        let c = boxed(7u64);
        // SAFETY: both from `boxed`, live, not used again; one goes back
        // through the cache, one straight to the allocator.
        unsafe {
            free(b);
            drop(Box::from_raw(c));
        }
        assert_eq!(Arc::strong_count(&token), 1);
    }

    #[test]
    fn a_panicking_drop_still_releases_its_block() {
        struct Bomb(#[allow(dead_code)] Arc<()>);
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("value drop panics");
            }
        }
        let token = Arc::new(());
        let p = boxed(Bomb(Arc::clone(&token)));
        // SAFETY: from `boxed`, live, not used again.
        let r = std::panic::catch_unwind(|| unsafe { free(p) });
        assert!(r.is_err());
        // The field's drop ran during the unwind; the block is cached (Miri
        // reports a leak or a double free otherwise).
        assert_eq!(Arc::strong_count(&token), 1);
        let q = boxed(Arc::clone(&token));
        // SAFETY: from `boxed`, live, not used again.
        unsafe { free(q) };
        assert_eq!(Arc::strong_count(&token), 1);
    }

    #[test]
    fn values_without_a_class_bypass_the_cache() {
        #[repr(align(16))]
        struct Wide(u64);
        let p = boxed(Wide(1));
        let big = boxed([0u64; 9]);
        let zst = boxed(());
        // SAFETY: from `boxed`, live, not used again.
        unsafe {
            assert_eq!((*p).0 .0, 1);
            free(p);
            free(big);
            free(zst);
        }
    }
}
