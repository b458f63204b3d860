//! Node allocation through `std::alloc`, so that a failed allocation is an
//! error the caller can handle instead of an abort, and reuse of popped
//! nodes.
//!
//! # The node cache
//!
//! Every push needs a node and every pop gives one up; through the global
//! allocator and a deferred closure per node that was a `malloc`, a closure
//! in a bag, a sealed-bag allocation per 30 pops and a `free` per pair. A
//! popped node is instead *retired* into the calling thread's record in the
//! stack's collector (`epoch/pool.rs`): linked through its first word (the
//! node's atomic `next` link), sealed with the global epoch every 2 KiB of nodes (32 to 128 pops),
//! and once two epochs have passed spliced onto the record's free list,
//! where this thread's next pushes find it. A node's block is reused only
//! - after its grace period: every thread that was pinned when the node was
//!   unlinked has unpinned, so no thread holds its address; or
//! - after an elimination exchange, whose node was never published to the
//!   head, so no other thread ever read its address.
//!
//! So a recycled block is never reachable by a thread that read it before
//! its grace period ended: reusing it cannot cause ABA (loom model
//! `node_cache_reuse_after_grace_period`; `epoch/pool.rs` has the argument,
//! including why linking a retired node through its `next` word while a
//! stale popper may still load that word is harmless).
//!
//! Memory held: each record's free list keeps at most 64 KiB, or the
//! largest backlog of retired nodes its pushes found waiting on a held
//! epoch, up to [`crate::stack::NODE_CACHE_BYTES`] (the rest goes back to
//! the allocator; see `Pool::missed`). A thread that exits returns its free lists to the allocator
//! and hands its retired nodes to the collector; dropping the stack frees
//! everything.

use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::ptr;

use crate::epoch::Link;
use crate::sync::atomic::{AtomicPtr, Ordering};

/// A stack node. `link.next` (a `*mut Node<T>` stored as a `*mut Link`) is
/// written only before the node is published (by the push CAS or the
/// elimination offer) and is read-only while it is in the stack; once
/// popped, the owner of the node may relink it (`epoch/pool.rs`). The link
/// is the first field, so the pool can link nodes of any `T`.
#[repr(C)]
pub(crate) struct Node<T> {
    pub(crate) link: Link,
    pub(crate) value: ManuallyDrop<T>,
}

/// The next node of `p` (Relaxed: ordered by the caller's Acquire load of
/// the pointer to this node, see `pop`). A free function on a raw pointer:
/// a `&Node<T>` would also cover `value`, which the winning popper may be
/// moving out at that moment (Miri reports that reference as a race).
///
/// # Safety
/// 1. `p` is live (fresh, owned, or protected by a pin).
#[inline]
pub(crate) unsafe fn next<T>(p: *const Node<T>) -> *mut Node<T> {
    // SAFETY: precondition 1; the reference covers the atomic link only.
    let link = unsafe { &*ptr::addr_of!((*p).link) };
    link.next.load(Ordering::Relaxed).cast()
}

/// Sets the next node of `p`; only while the node is unpublished.
///
/// # Safety
/// 1. `p` is live and not published (owned by the caller).
#[inline]
pub(crate) unsafe fn set_next<T>(p: *const Node<T>, next: *mut Node<T>) {
    // SAFETY: precondition 1; the reference covers the atomic link only.
    let link = unsafe { &*ptr::addr_of!((*p).link) };
    // Relaxed: published later by the Release push CAS or offer.
    link.next.store(next.cast(), Ordering::Relaxed);
}

/// The layout every `Node<T>` is allocated with.
#[inline]
pub(crate) fn node_layout<T>() -> Layout {
    Layout::new::<Node<T>>()
}

#[cfg(all(test, not(loom)))]
std::thread_local! {
    /// Test hook: the number of upcoming node allocations on this thread
    /// that fail as if the allocator returned null.
    pub(crate) static FAIL_NEXT_ALLOCS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Allocates a node holding `value` in `block` (a recycled block from the
/// pool, or null for a fresh allocation); gives `value` back if the
/// allocator fails. The caller sets the node's `next` before publishing it
/// (a recycled block's link holds a stale pointer).
///
/// # Safety
/// 1. `block` is null, or a block of `node_layout::<T>()` returned by the
///    pool's `take` (its link initialized, nothing else live, private).
#[inline]
pub(crate) unsafe fn alloc_node<T>(value: T, block: *mut u8) -> Result<*mut Node<T>, T> {
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
            if !block.is_null() {
                // SAFETY: precondition 1: an empty block of this layout,
                // with an initialized link.
                unsafe { dealloc_node(block.cast::<Node<T>>()) };
            }
            return Err(value);
        }
    }
    if !block.is_null() {
        let p = block.cast::<Node<T>>();
        // SAFETY: precondition 1: the block is private, has the node's
        // layout and an initialized link; the value field is empty.
        // (The link is left as it is: the push sets it before publishing.)
        unsafe { ptr::write(ptr::addr_of_mut!((*p).value), ManuallyDrop::new(value)) };
        return Ok(p);
    }
    // SAFETY: `Node<T>` holds a pointer, so the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc(node_layout::<T>()) }.cast::<Node<T>>();
    if p.is_null() {
        return Err(value);
    }
    // SAFETY: `p` is a fresh allocation with room and alignment for a node.
    unsafe {
        ptr::write(
            p,
            Node {
                link: Link {
                    next: AtomicPtr::new(ptr::null_mut()),
                },
                value: ManuallyDrop::new(value),
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
    // runs no value destructor (`ManuallyDrop`) and only drops the link.
    unsafe { ptr::drop_in_place(p) };
    // SAFETY: precondition 1: allocated with this very layout.
    unsafe { std::alloc::dealloc(p.cast::<u8>(), node_layout::<T>()) };
}
