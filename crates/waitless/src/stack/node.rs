//! Node allocation through `std::alloc`, so that a failed allocation is an
//! error the caller can handle instead of an abort, and the per-thread node
//! cache.
//!
//! # The node cache
//!
//! Every push needs a node and every pop gives one back after its grace
//! period; through the global allocator that is a `malloc`/`free` pair per
//! push+pop. Instead, each thread keeps a *magazine*: per size class, a
//! bounded list of node blocks whose grace period has ended. A node's block
//! is rounded up to a multiple of [`GRAIN`] bytes and allocated with
//! alignment `GRAIN`, so a block can be reused for any node of its class,
//! whatever `T` and whichever stack.
//!
//! A block enters a magazine only
//! - from the deferred function of a popped node, which the epoch collector
//!   runs after the node's grace period: every thread that was pinned when
//!   the node was unlinked has unpinned, so no thread holds its address; or
//! - from an elimination exchange, whose node was never published to the
//!   head, so no other thread ever read its address.
//!
//! So a recycled block is never reachable by a thread that read it before
//! its grace period ended: reusing it cannot cause ABA (loom model
//! `node_cache_reuse_after_grace_period`).
//!
//! Memory held: at most [`CLASS_BYTES`] bytes per size class per thread
//! (`CLASSES` classes, so at most `CLASSES * CLASS_BYTES` = 64 KiB per
//! thread, in practice one class). A thread's magazine is returned to the
//! allocator when the thread exits, and the thread that drops a stack
//! returns its own magazine then ([`flush_thread_cache`]).
//! [`cached_bytes`] reports the calling thread's holding.

use core::alloc::Layout;
use core::cell::RefCell;
use core::mem::ManuallyDrop;
use core::ptr;

use crate::sync::UnsafeCell;

/// Block size granularity and alignment of cached nodes.
pub(crate) const GRAIN: usize = 16;
/// Size classes: blocks of `GRAIN`, `2 * GRAIN`, …, `CLASSES * GRAIN` bytes.
/// Larger or more aligned nodes bypass the cache.
pub(crate) const CLASSES: usize = 16;
/// The most bytes of blocks a thread keeps per size class.
pub(crate) const CLASS_BYTES: usize = 4096;

/// The size class of `Node<T>`, if it has one.
#[inline]
fn class_of<T>() -> Option<usize> {
    let l = Layout::new::<Node<T>>();
    if l.align() <= GRAIN && l.size() <= GRAIN * CLASSES {
        Some(l.size().div_ceil(GRAIN) - 1)
    } else {
        None
    }
}

/// The layout of the blocks of size class `class`.
#[inline]
fn block_layout(class: usize) -> Layout {
    // `(class + 1) * GRAIN` is a small multiple of the power-of-two `GRAIN`.
    match Layout::from_size_align((class + 1) * GRAIN, GRAIN) {
        Ok(l) => l,
        Err(_) => unreachable!("size classes are small multiples of GRAIN"),
    }
}

/// The layout every `Node<T>` is allocated with.
#[inline]
fn node_layout<T>() -> Layout {
    match class_of::<T>() {
        Some(c) => block_layout(c),
        None => Layout::new::<Node<T>>(),
    }
}

/// One thread's cached blocks, by size class.
struct Magazine {
    blocks: [Vec<*mut u8>; CLASSES],
}

impl Magazine {
    const fn new() -> Self {
        Self {
            blocks: [const { Vec::new() }; CLASSES],
        }
    }

    /// Returns every block to the allocator.
    fn flush(&mut self) {
        for (class, blocks) in self.blocks.iter_mut().enumerate() {
            for p in blocks.drain(..) {
                // SAFETY: every block in class `class` was allocated with
                // `block_layout(class)` and is owned by this magazine only.
                unsafe { std::alloc::dealloc(p, block_layout(class)) };
            }
            *blocks = Vec::new();
        }
    }
}

impl Drop for Magazine {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static MAGAZINE: RefCell<Magazine> = const { RefCell::new(Magazine::new()) };
}

#[cfg(loom)]
loom::thread_local! {
    static MAGAZINE: RefCell<Magazine> = RefCell::new(Magazine::new());
}

/// Blocks kept per size class: `CLASS_BYTES` divided by the block size.
const CLASS_CAPACITY: [usize; CLASSES] = {
    let mut caps = [0; CLASSES];
    let mut c = 0;
    while c < CLASSES {
        caps[c] = CLASS_BYTES / ((c + 1) * GRAIN);
        c += 1;
    }
    caps
};

/// A cached block for a `Node<T>`, if this thread has one.
#[inline]
fn take_cached<T>() -> Option<*mut u8> {
    let class = class_of::<T>()?;
    MAGAZINE
        .try_with(|m| m.try_borrow_mut().ok()?.blocks[class].pop())
        .ok()
        .flatten()
}

/// Keeps `p`, a block of size class `class`, in this thread's magazine if
/// there is room; gives it to the allocator otherwise.
///
/// # Safety
/// 1. `p` was allocated with `block_layout(class)`, holds no live value, and
///    no thread accesses it any more.
unsafe fn cache_or_free(p: *mut u8, class: usize) {
    let cap = CLASS_CAPACITY[class];
    let kept = MAGAZINE
        .try_with(|m| {
            let Ok(mut m) = m.try_borrow_mut() else {
                return false;
            };
            let list = &mut m.blocks[class];
            if list.len() < cap {
                if list.capacity() == 0 {
                    list.reserve_exact(cap);
                }
                list.push(p);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: precondition 1.
        unsafe { std::alloc::dealloc(p, block_layout(class)) };
    }
}

/// Returns the calling thread's cached blocks to the allocator.
pub(crate) fn flush_thread_cache() {
    let _ = MAGAZINE.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            m.flush();
        }
    });
}

/// Bytes of node blocks the calling thread keeps for reuse.
pub(crate) fn cached_bytes() -> usize {
    MAGAZINE
        .try_with(|m| {
            m.try_borrow().map_or(0, |m| {
                m.blocks
                    .iter()
                    .enumerate()
                    .map(|(c, b)| b.len() * block_layout(c).size())
                    .sum()
            })
        })
        .unwrap_or(0)
}

/// A stack node. `next` is written only before the node is published (by
/// the push CAS or the elimination offer) and is read-only afterwards.
pub(crate) struct Node<T> {
    pub(crate) value: ManuallyDrop<T>,
    pub(crate) next: UnsafeCell<*mut Node<T>>,
}

#[cfg(all(test, not(loom)))]
std::thread_local! {
    /// Test hook: the number of upcoming node allocations on this thread
    /// that fail as if the allocator returned null.
    pub(crate) static FAIL_NEXT_ALLOCS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Allocates a node holding `value`; gives `value` back if the allocator
/// fails.
pub(crate) fn alloc_node<T>(value: T) -> Result<*mut Node<T>, T> {
    #[cfg(all(test, not(loom)))]
    {
        let fail = FAIL_NEXT_ALLOCS.with(|f| {
            let n = f.get();
            if n > 0 {
                f.set(n - 1);
            }
            n > 0
        });
        if fail {
            return Err(value);
        }
    }
    let p = match take_cached::<T>() {
        Some(p) => p.cast::<Node<T>>(),
        None => {
            // SAFETY: `Node<T>` holds a pointer, so the layout has a
            // non-zero size.
            let p = unsafe { std::alloc::alloc(node_layout::<T>()) }.cast::<Node<T>>();
            if p.is_null() {
                return Err(value);
            }
            p
        }
    };
    // SAFETY: `p` is a fresh allocation, or a cached block of `Node<T>`'s
    // class that nobody accesses any more (module docs), with room and
    // alignment for a `Node<T>`.
    unsafe {
        ptr::write(
            p,
            Node {
                value: ManuallyDrop::new(value),
                next: UnsafeCell::new(ptr::null_mut()),
            },
        )
    };
    Ok(p)
}

/// Frees a node's memory without dropping its value.
///
/// # Safety
/// 1. `p` came from [`alloc_node`] and is freed only here, once.
/// 2. The value was moved out or is intentionally not dropped, and no
///    thread accesses `p` any more.
pub(crate) unsafe fn dealloc_node<T>(p: *mut Node<T>) {
    // SAFETY: precondition 2: no one accesses the node; dropping the `Node`
    // runs no value destructor (`ManuallyDrop`) and only drops the cell.
    unsafe { ptr::drop_in_place(p) };
    // SAFETY: precondition 1: allocated with this very layout.
    unsafe { std::alloc::dealloc(p.cast::<u8>(), node_layout::<T>()) };
}

/// Gives a node's memory back for reuse: to this thread's magazine if its
/// size class has room, to the allocator otherwise. Does not drop the value.
///
/// # Safety
/// 1. As for [`dealloc_node`].
/// 2. No thread that read `p`'s address from the stack before the node
///    was unlinked can still use it: its grace period has ended, or it was
///    never published to the head (module docs).
pub(crate) unsafe fn recycle_node<T>(p: *mut Node<T>) {
    match class_of::<T>() {
        Some(class) => {
            // SAFETY: precondition 1: no one accesses the node; dropping the
            // `Node` runs no value destructor and only drops the cell.
            unsafe { ptr::drop_in_place(p) };
            // SAFETY: allocated with `block_layout(class)` (`node_layout`),
            // emptied above; preconditions 1 and 2.
            unsafe { cache_or_free(p.cast::<u8>(), class) };
        }
        // SAFETY: precondition 1.
        None => unsafe { dealloc_node(p) },
    }
}

/// A type-erased node allocation, so deferred frees do not depend on `T`
/// (the stack's `T` need not be `'static` or `Send`).
pub(crate) struct RawNode {
    ptr: *mut u8,
    free: unsafe fn(*mut u8),
}

// SAFETY: a `RawNode` is only memory to give back to the global allocator,
// which may be done from any thread; no `T` is dropped through it (the
// value was moved out before the node was retired).
unsafe impl Send for RawNode {}

impl RawNode {
    /// Erases `p`'s type.
    ///
    /// # Safety
    /// 1. `p` came from [`alloc_node`] and its value was moved out.
    pub(crate) unsafe fn new<T>(p: *mut Node<T>) -> Self {
        /// # Safety
        /// 1. `p` is a `*mut Node<T>` meeting [`recycle_node`]'s preconditions.
        unsafe fn free<T>(p: *mut u8) {
            // SAFETY: precondition 1.
            unsafe { recycle_node(p.cast::<Node<T>>()) }
        }
        Self {
            ptr: p.cast::<u8>(),
            free: free::<T>,
        }
    }

    /// Gives the memory back for reuse ([`recycle_node`]).
    ///
    /// # Safety
    /// 1. No thread accesses the node any more (its grace period ended), and
    ///    this is called once.
    pub(crate) unsafe fn free(self) {
        // SAFETY: precondition 1 and `new`'s precondition 1.
        unsafe { (self.free)(self.ptr) };
    }
}
