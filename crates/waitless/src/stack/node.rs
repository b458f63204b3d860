//! Node allocation through `std::alloc`, so that a failed allocation is an
//! error the caller can handle instead of an abort.

use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::ptr;

use crate::sync::UnsafeCell;

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
    let layout = Layout::new::<Node<T>>();
    // SAFETY: `Node<T>` holds a pointer, so `layout` has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<Node<T>>();
    if p.is_null() {
        return Err(value);
    }
    // SAFETY: `p` is a fresh allocation with `Node<T>`'s layout.
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
    unsafe { std::alloc::dealloc(p.cast::<u8>(), Layout::new::<Node<T>>()) };
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
        /// 1. `p` is a `*mut Node<T>` meeting [`dealloc_node`]'s preconditions.
        unsafe fn free<T>(p: *mut u8) {
            // SAFETY: precondition 1.
            unsafe { dealloc_node(p.cast::<Node<T>>()) }
        }
        Self {
            ptr: p.cast::<u8>(),
            free: free::<T>,
        }
    }

    /// Gives the memory back.
    ///
    /// # Safety
    /// 1. No thread accesses the node any more, and this is called once.
    pub(crate) unsafe fn free(self) {
        // SAFETY: precondition 1 and `new`'s precondition 1.
        unsafe { (self.free)(self.ptr) };
    }
}
