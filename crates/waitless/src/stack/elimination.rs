//! The elimination array (Hendler, Shavit, Yerushalmi, *A scalable
//! lock-free stack algorithm*, SPAA 2004), in a simplified form.
//!
//! After a failed CAS on the head, a push may *offer* its node in a slot and
//! wait briefly; a pop that failed its CAS may *take* an offered node. The
//! pair then cancels out without touching the head: the push linearizes
//! immediately before the pop, at the pop's successful take CAS, while both
//! operations are in progress.
//!
//! # Slot protocol
//!
//! Each slot holds a node pointer, `null` (empty) or `TAKEN` (a dangling,
//! never-allocated address):
//!
//! ```text
//! null --pusher CAS--> node --popper CAS--> TAKEN --pusher store--> null
//!                      node --pusher CAS (withdraw)--> null
//! ```
//!
//! Only the pusher that offered `node` moves the slot out of `node` (by
//! withdrawing) or out of `TAKEN`, so while it waits the slot holds its node
//! or `TAKEN`: its withdraw CAS can never succeed on somebody else's node.
//! A popper that wins the take CAS owns the node outright: the pusher never
//! touches it again and other poppers only compare its address, never
//! dereference it, so the popper frees it immediately (no epoch needed).
//! A stale popper whose CAS succeeds because the address was reused for a
//! new offer simply takes that new, valid offer — through the pointer value
//! its CAS read from the slot, which carries the new node's provenance, not
//! through the stale pointer it compared with.

use core::ptr::{self, NonNull};

use super::node::Node;
use crate::contention::Site;
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::CachePadded;

static OFFER_SITE: Site = Site::new("stack.eliminate.offer");
static TAKE_SITE: Site = Site::new("stack.eliminate.take");

/// Slots in the array. Tuned on the benchmark (see docs/stack.md).
#[cfg(not(loom))]
pub(crate) const SLOTS: usize = 4;
#[cfg(loom)]
pub(crate) const SLOTS: usize = 1;

/// Spin iterations a pusher waits for a popper.
#[cfg(not(loom))]
const WAIT_SPINS: usize = 128;
#[cfg(loom)]
const WAIT_SPINS: usize = 1;

pub(crate) struct Elimination<T> {
    slots: [CachePadded<AtomicPtr<Node<T>>>; SLOTS],
}

#[inline]
fn taken<T>() -> *mut Node<T> {
    NonNull::dangling().as_ptr()
}

impl<T> Elimination<T> {
    pub(crate) fn new() -> Self {
        Self {
            slots: core::array::from_fn(|_| CachePadded::new(AtomicPtr::new(ptr::null_mut()))),
        }
    }

    /// Offers `node` in slot `i` and waits a little. Returns `true` if a
    /// popper took it (the push is then complete), `false` if the node is
    /// still the caller's.
    pub(crate) fn offer(&self, node: *mut Node<T>, i: usize) -> bool {
        let s = &self.slots[i % SLOTS];
        if !s.load(Ordering::Relaxed).is_null() {
            return false;
        }
        // Release pairs with the Acquire take CAS in `take`: the taker sees
        // the node's value.
        let ok = s
            .compare_exchange(ptr::null_mut(), node, Ordering::Release, Ordering::Relaxed)
            .is_ok();
        OFFER_SITE.record(ok);
        if !ok {
            return false;
        }
        for _ in 0..WAIT_SPINS {
            if s.load(Ordering::Relaxed) != node {
                break;
            }
            crate::sync::spin_loop();
        }
        // Relaxed: withdrawing publishes nothing, and on failure we only
        // learn that a popper took the node, which we never touch again.
        match s.compare_exchange(node, ptr::null_mut(), Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => false,
            Err(now) => {
                debug_assert_eq!(now, taken::<T>());
                // Relaxed: the slot carries no data from us to the next
                // offerer (who publishes its own node with Release).
                s.store(ptr::null_mut(), Ordering::Relaxed);
                true
            }
        }
    }

    /// Tries to take an offered node from slot `i`. The returned node is
    /// owned by the caller: it must read the value and free the node.
    pub(crate) fn take(&self, i: usize) -> Option<*mut Node<T>> {
        let s = &self.slots[i % SLOTS];
        let p = s.load(Ordering::Relaxed);
        if p.is_null() || p == taken::<T>() {
            return None;
        }
        // Acquire pairs with the Release offer CAS in `offer`.
        let r = s.compare_exchange(p, taken::<T>(), Ordering::Acquire, Ordering::Relaxed);
        TAKE_SITE.record(r.is_ok());
        // Use the pointer the CAS read, not `p`: if the slot was refilled
        // with a new node at a reused address, `p` still carries the
        // provenance of the freed node, and reading through it would be
        // undefined behaviour even though the address matches (Miri caught
        // exactly this). The value in the slot carries the new node's.
        r.ok()
    }

    /// `true` when no offer is in a slot (at quiescence it always is).
    pub(crate) fn is_idle(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.load(Ordering::Relaxed).is_null())
    }
}

/// A cheap per-thread pseudo-random slot index.
#[inline]
pub(crate) fn slot_hint() -> usize {
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
            // xorshift32
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
