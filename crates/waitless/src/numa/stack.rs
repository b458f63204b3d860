//! [`NodeAwareStack`]: the Treiber stack of [`crate::stack`] with one
//! elimination array per NUMA node.
//!
//! The head CAS and the epoch reclamation are those of
//! [`LockFreeStack`](crate::stack::LockFreeStack) (same orderings, same
//! linearization points, same API). What changes is where a push and a pop
//! whose head CAS failed meet: in the elimination array of the node the
//! thread runs on ([`current_node`](super::current_node)), so an eliminated pair exchanges its
//! node through lines that stay on one socket, and threads of different
//! nodes never contend for the same exchange slots (Hendler, Shavit &
//! Yerushalmi, SPAA 2004, pick slots at random from one shared array; on a
//! NUMA machine a random slot is remote with probability `1 - 1/nodes`).
//! The node is looked up only on that contended path, so an uncontended
//! operation costs exactly what the plain stack's does.
//!
//! ```
//! use waitless::numa::NodeAwareStack;
//!
//! let stack = NodeAwareStack::new();
//! stack.push(1).unwrap();
//! stack.push(2).unwrap();
//! let guard = stack.enter();
//! assert_eq!(stack.pop(&guard), Some(2));
//! assert_eq!(stack.pop(&guard), Some(1));
//! assert_eq!(stack.pop(&guard), None);
//! ```
//!
//! # Slot protocol
//!
//! As in the plain stack: a slot holds `null` (empty), an offered node, or
//! `TAKEN` (a dangling, never-allocated address). Only the pusher that
//! offered a node moves the slot out of its node (withdrawing) or out of
//! `TAKEN`; a popper whose take CAS wins owns the node outright and frees it
//! at once (it was never reachable from the head).

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use super::topology::{node_hint, Topology};
use crate::epoch::{Collector, Guard};
use crate::stack::{StackError, StackStats};
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::sync::UnsafeCell;
use crate::CachePadded;

/// Slots per node's array.
#[cfg(not(loom))]
const SLOTS: usize = 4;
#[cfg(loom)]
const SLOTS: usize = 1;

/// Spin iterations a pusher waits for a popper.
#[cfg(not(loom))]
const WAIT_SPINS: usize = 128;
#[cfg(loom)]
const WAIT_SPINS: usize = 1;

/// Counter slots in the collector's per-thread records.
const PUSHES: usize = 0;
const POPS: usize = 1;
const RETRIES: usize = 2;

struct Node<T> {
    value: ManuallyDrop<T>,
    /// Written before the node is published, read-only afterwards.
    next: UnsafeCell<*mut Node<T>>,
}

fn alloc_node<T>(value: T) -> Result<*mut Node<T>, T> {
    let layout = Layout::new::<Node<T>>();
    // SAFETY: `Node<T>` holds a pointer, so the layout is not zero-sized.
    let p = unsafe { std::alloc::alloc(layout) }.cast::<Node<T>>();
    if p.is_null() {
        return Err(value);
    }
    // SAFETY: fresh allocation with `Node<T>`'s layout.
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

/// Frees a node without dropping its value.
///
/// # Safety
/// 1. `p` came from [`alloc_node`], its value was moved out, no thread
///    accesses it any more, and it is freed once.
unsafe fn dealloc_node<T>(p: *mut Node<T>) {
    // SAFETY: precondition 1; `ManuallyDrop` keeps the value's destructor
    // from running, only the cell is dropped.
    unsafe { ptr::drop_in_place(p) };
    // SAFETY: precondition 1: allocated with this layout.
    unsafe { std::alloc::dealloc(p.cast::<u8>(), Layout::new::<Node<T>>()) };
}

/// # Safety
/// 1. `p` is a `*mut Node<T>` meeting [`dealloc_node`]'s precondition.
unsafe fn dealloc_erased<T>(p: *mut u8) {
    // SAFETY: precondition 1.
    unsafe { dealloc_node(p.cast::<Node<T>>()) }
}

/// Memory to give back; no `T` inside (its value was moved out), so it may
/// be freed on any thread.
struct Erased {
    ptr: *mut u8,
    free: unsafe fn(*mut u8),
}

// SAFETY: only raw memory, freed through the global allocator, which any
// thread may do.
unsafe impl Send for Erased {}

#[inline]
fn taken<T>() -> *mut Node<T> {
    NonNull::dangling().as_ptr()
}

struct NodeArray<T> {
    slots: [CachePadded<AtomicPtr<Node<T>>>; SLOTS],
}

impl<T> NodeArray<T> {
    fn new() -> Self {
        NodeArray {
            slots: core::array::from_fn(|_| CachePadded::new(AtomicPtr::new(ptr::null_mut()))),
        }
    }

    /// Offers `node` in slot `i` and waits briefly; `true` if a popper
    /// took it.
    fn offer(&self, node: *mut Node<T>, i: usize) -> bool {
        let s = &self.slots[i % SLOTS];
        if !s.load(Ordering::Relaxed).is_null() {
            return false;
        }
        // Release pairs with the Acquire take CAS in `take`.
        if s.compare_exchange(ptr::null_mut(), node, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        for _ in 0..WAIT_SPINS {
            if s.load(Ordering::Relaxed) != node {
                break;
            }
            crate::sync::spin_loop();
        }
        // Relaxed: withdrawing publishes nothing; on failure a popper took
        // the node, which we never touch again.
        match s.compare_exchange(node, ptr::null_mut(), Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => false,
            Err(now) => {
                debug_assert_eq!(now, taken::<T>());
                // Relaxed: the next offerer publishes its own node.
                s.store(ptr::null_mut(), Ordering::Relaxed);
                true
            }
        }
    }

    /// Takes an offered node from slot `i`; the caller then owns it.
    fn take(&self, i: usize) -> Option<*mut Node<T>> {
        let s = &self.slots[i % SLOTS];
        let p = s.load(Ordering::Relaxed);
        if p.is_null() || p == taken::<T>() {
            return None;
        }
        // Acquire pairs with the Release offer CAS. The pointer returned is
        // the one the CAS read (it carries the right provenance if the
        // address was reused by a new offer).
        s.compare_exchange(p, taken::<T>(), Ordering::Acquire, Ordering::Relaxed)
            .ok()
    }

    fn is_idle(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.load(Ordering::Relaxed).is_null())
    }
}

/// A per-thread pseudo-random slot index.
#[inline]
fn slot_hint() -> usize {
    #[cfg(not(loom))]
    {
        std::thread_local! {
            static RNG: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
        }
        RNG.try_with(|r| {
            let mut x = r.get();
            if x == 0 {
                // Seed from the cell's address: distinct per thread.
                x = (r as *const _ as usize as u32) | 1;
            }
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            r.set(x);
            x as usize
        })
        .unwrap_or(0)
    }
    #[cfg(loom)]
    {
        0
    }
}

/// A lock-free LIFO stack with per-node elimination arrays. Same API as
/// [`LockFreeStack`](crate::stack::LockFreeStack); see the
/// [module docs](crate::numa).
pub struct NodeAwareStack<T> {
    head: CachePadded<AtomicPtr<Node<T>>>,
    arrays: Box<[NodeArray<T>]>,
    /// Declared last: dropped after the list is emptied.
    collector: Collector,
    _owns: PhantomData<T>,
}

// SAFETY: as for `LockFreeStack`: the stack owns its `T`s (moving it moves
// them: `T: Send`); through `&NodeAwareStack` values move between threads
// but no `&T` is handed out, so `T: Send` also suffices for `Sync`. Shared
// state is atomic and node contents are published Release/Acquire.
unsafe impl<T: Send> Send for NodeAwareStack<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Send> Sync for NodeAwareStack<T> {}

/// A pinned section on one [`NodeAwareStack`]; `!Send`.
///
/// ```compile_fail
/// let s = waitless::numa::NodeAwareStack::<u8>::new();
/// let g = s.enter();
/// std::thread::scope(|sc| {
///     sc.spawn(move || drop(g));
/// });
/// ```
#[must_use]
pub struct NodeStackGuard<'a, T> {
    guard: Guard<'a>,
    _stack: PhantomData<&'a NodeAwareStack<T>>,
}

impl<T> fmt::Debug for NodeStackGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStackGuard").finish_non_exhaustive()
    }
}

impl<T> NodeAwareStack<T> {
    /// An empty stack with one elimination array per node of
    /// [`Topology::current`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_nodes(Topology::current().num_nodes())
    }

    /// An empty stack with `nodes` elimination arrays (at least one); a
    /// thread uses array [`current_node`](super::current_node) modulo
    /// `nodes` (re-read from the OS every 64 contended operations).
    #[must_use]
    pub fn with_nodes(nodes: usize) -> Self {
        NodeAwareStack {
            head: CachePadded::new(AtomicPtr::new(ptr::null_mut())),
            arrays: (0..nodes.max(1)).map(|_| NodeArray::new()).collect(),
            collector: Collector::new(),
            _owns: PhantomData,
        }
    }

    /// The number of elimination arrays.
    #[must_use]
    pub fn nodes(&self) -> usize {
        self.arrays.len()
    }

    fn local_array(&self) -> &NodeArray<T> {
        &self.arrays[node_hint() % self.arrays.len()]
    }

    /// Pins the current thread on this stack (see
    /// [`LockFreeStack::enter`](crate::stack::LockFreeStack::enter)).
    #[inline]
    pub fn enter(&self) -> NodeStackGuard<'_, T> {
        NodeStackGuard {
            guard: self.collector.pin(),
            _stack: PhantomData,
        }
    }

    /// Pushes `value`; gives it back if no node can be allocated.
    pub fn push(&self, value: T) -> Result<(), StackError<T>> {
        let node = alloc_node(value).map_err(StackError::OutOfMemory)?;
        let mut retries = 0u64;
        // Relaxed: the pusher never dereferences the head it links to.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is unpublished (fresh or withdrawn), so this
            // thread has exclusive access.
            unsafe { (*node).next.with_mut(|n| *n = head) };
            // Release pairs with the Acquire head load in `pop`.
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => {
                    retries += 1;
                    if self.local_array().offer(node, slot_hint()) {
                        break;
                    }
                    head = now;
                }
            }
        }
        self.collector.with_local(|p| {
            p.count(PUSHES, 1);
            if retries > 0 {
                p.count(RETRIES, retries);
            }
        });
        Ok(())
    }

    /// Pops the most recently pushed value, or `None` if the stack is empty.
    ///
    /// # Panics
    /// If `guard` comes from another stack's [`enter`](Self::enter).
    pub fn pop(&self, guard: &NodeStackGuard<'_, T>) -> Option<T> {
        assert!(
            ptr::eq(guard.guard.collector(), &self.collector),
            "NodeAwareStack::pop: the guard was created by another stack's `enter()`"
        );
        let g = &guard.guard;
        let mut retries = 0u64;
        let result = loop {
            // Acquire pairs with the Release CAS in `push`.
            let head = self.head.load(Ordering::Acquire);
            if head.is_null() {
                break None;
            }
            // SAFETY: read from the stack while pinned: not freed before we
            // unpin; `next` is immutable once published.
            let next = unsafe { (*head).next.with(|n| *n) };
            // Relaxed: as in the plain stack (the value was acquired by the
            // load above; the CAS is an RMW in the head's release sequence).
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // SAFETY: the CAS unlinked `head`: we alone take its value.
                    let value = unsafe { ManuallyDrop::take(&mut (*head).value) };
                    let e = Erased {
                        ptr: head.cast::<u8>(),
                        free: dealloc_erased::<T>,
                    };
                    let f = move || {
                        let e = e;
                        // SAFETY: runs once no pinned thread can hold the
                        // node; its value was moved out.
                        unsafe { (e.free)(e.ptr) }
                    };
                    // SAFETY: `f` frees raw memory (sound on any thread) and
                    // borrows nothing.
                    unsafe { g.defer_unchecked(f) };
                    break Some(value);
                }
                Err(_) => {
                    retries += 1;
                    if let Some(node) = self.local_array().take(slot_hint()) {
                        // SAFETY: `take` gave us the offered node exclusively
                        // (value visible: Acquire take / Release offer).
                        let value = unsafe { ManuallyDrop::take(&mut (*node).value) };
                        // SAFETY: exclusive, never reachable from the head.
                        unsafe { dealloc_node(node) };
                        break Some(value);
                    }
                }
            }
        };
        let p = g.participant();
        if result.is_some() {
            p.count(POPS, 1);
        }
        if retries > 0 {
            p.count(RETRIES, retries);
        }
        result
    }

    /// Seals this thread's retired nodes, advances the epoch if it is safe
    /// and frees what became safe.
    pub fn advance_epoch(&self) {
        self.collector.flush();
    }

    /// The stack's counters (see [`StackStats`]).
    #[must_use]
    pub fn stats(&self) -> StackStats {
        let pushes = self.collector.sum_counter(PUSHES);
        let pops = self.collector.sum_counter(POPS);
        StackStats {
            active_nodes: pushes.saturating_sub(pops) as usize,
            retired_nodes: self.collector.pending(),
            current_epoch: self.collector.epoch(),
            successful_pops: pops,
            successful_pushes: pushes,
            retry_count: self.collector.sum_counter(RETRIES),
        }
    }
}

impl<T> Default for NodeAwareStack<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for NodeAwareStack<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeAwareStack")
            .field("nodes", &self.nodes())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T> Drop for NodeAwareStack<T> {
    fn drop(&mut self) {
        debug_assert!(self.arrays.iter().all(NodeArray::is_idle));
        // `&mut self`: exclusive.
        let head = self.head.load(Ordering::Relaxed);
        self.head.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: we own the whole list.
        unsafe { drop_list(head) };
    }
}

/// Drops every value from `cur` on and frees the nodes; a panicking value
/// destructor still lets the rest be dropped while unwinding.
///
/// # Safety
/// 1. The caller owns the whole list exclusively.
unsafe fn drop_list<T>(mut cur: *mut Node<T>) {
    struct Rest<T>(*mut Node<T>);
    impl<T> Drop for Rest<T> {
        fn drop(&mut self) {
            // SAFETY: the rest of the list is still exclusively ours.
            unsafe { drop_list(self.0) }
        }
    }
    while !cur.is_null() {
        // SAFETY: precondition 1.
        let next = unsafe { (*cur).next.with(|n| *n) };
        // SAFETY: precondition 1: we own the value and take it once.
        let value = unsafe { ManuallyDrop::take(&mut (*cur).value) };
        // SAFETY: value moved out; node exclusively ours.
        unsafe { dealloc_node(cur) };
        let rest = Rest(next);
        drop(value);
        core::mem::forget(rest);
        cur = next;
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The per-node exchange itself: an offer and a take race on one slot.

    use super::*;
    use crate::sync::Arc;
    use loom::thread;

    #[test]
    fn offer_and_take_exchange_exactly_once() {
        loom::model(|| {
            let a = Arc::new(NodeArray::<u32>::new());
            let node = alloc_node(7).unwrap_or_else(|_| panic!("allocation"));
            let taker = {
                let a = Arc::clone(&a);
                thread::spawn(move || {
                    a.take(0).map(|n| {
                        // SAFETY: `take` gave us the node exclusively.
                        let v = unsafe { ManuallyDrop::take(&mut (*n).value) };
                        // SAFETY: exclusive, value moved out.
                        unsafe { dealloc_node(n) };
                        v
                    })
                })
            };
            let given = a.offer(node, 0);
            let got = taker.join().unwrap();
            // Either the taker got the value and the offer reports it
            // taken, or neither: the node is still ours.
            assert_eq!(given, got == Some(7));
            if !given {
                // SAFETY: the offer was withdrawn: the node is ours again.
                unsafe {
                    ManuallyDrop::drop(&mut (*node).value);
                    dealloc_node(node);
                }
            }
            assert!(a.is_idle());
        });
    }
}
