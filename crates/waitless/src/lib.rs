//! # waitless
//!
//! Lock-free and wait-free data structures with their own memory reclamation,
//! built to be checked (loom models, Miri, linearizability checking with
//! `waitless-check`) and measured (`waitless-bench`).
//!
//! | module | what | progress |
//! |---|---|---|
//! | [`epoch`] | epoch-based reclamation | lock-free |
//! | [`hazard`] | hazard pointers with asymmetric fences | lock-free (protect is wait-free per attempt) |
//! | [`stack`] | Treiber stack with elimination backoff | lock-free |
//! | [`map`] | hash map with lock-free growth | lock-free |
//! | [`queue`] | bounded MPMC queue (wCQ family) | wait-free |
//! | [`channel`] | ordering-parameterised channel, blocking handles, SPSC | blocking-free (not lock-free: a preempted producer between claim and publish delays consumers of that slot, as in crossbeam ArrayQueue) |
//! | [`rcu`] | read-copy-update cell | wait-free reads |
//! | [`btree`] | ordered map (copy-on-write B+tree), snapshot range scans | lock-free |
//!
//! Shared utilities: [`CachePadded`] and [`Backoff`].
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub(crate) mod sync;

mod utils;
pub use utils::{Backoff, CachePadded};

// One structure per module. Each line below is owned by the issue that adds
// the module; keep one blank line between them so parallel work merges.

// --- epoch (issue 3)
pub mod epoch;

// --- stack (issue 3)
pub mod stack;

// --- hazard (issue 4)
pub mod hazard;

// --- map (issue 4)
pub mod map;

// --- queue (issue 5)
pub mod queue;

// --- channel (issue 6)
pub mod channel;

// --- contention (issue 7)
pub mod contention;

// --- measurement plumbing shared with waitless-bench (issue 18)
#[doc(hidden)]
pub mod measure;

// --- rcu (issue 8)
pub mod rcu;

// --- btree (issue 16)
pub mod btree;

// --- numa (issue 17)
pub mod numa;

// --- proof reports (issue 19)
mod proof;
pub use proof::Proof;
