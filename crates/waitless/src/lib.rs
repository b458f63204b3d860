//! # waitless
//!
//! Lock-free and wait-free data structures with their own memory
//! reclamation — a stack, a hash map, an ordered map, a bounded queue,
//! channels and a read-copy-update cell, over epoch-based reclamation and
//! hazard pointers — built to be checked (loom models, Miri, linearizability
//! checking of recorded histories with `waitless-check`) and measured against
//! locks and the best crates.io peers (`waitless-bench`).
//!
//! ```toml
//! [dependencies]
//! waitless = "0.1"
//! ```
//!
//! The minimum supported Rust version is 1.80. The library has no required
//! dependencies beyond `libc` (for `membarrier` and `getcpu` on Linux) and
//! `portable-atomic`.
//!
//! # Which structure, and what it guarantees
//!
//! | module | structure | progress | use it when | prefer something else when |
//! |---|---|---|---|---|
//! | [`stack`] | Treiber stack with elimination backoff | lock-free | two or more busy threads push and pop (1.8–3.4× `Mutex<Vec>` at 2–16 threads) | one thread, or threads that rarely overlap: a `Mutex` is 2–3× faster uncontended |
//! | [`map`] | split-ordered hash map, lock-free growth | lock-free (growth included) | no operation may ever block, resizes included | throughput is all that matters: papaya, scc and dashmap are 2–5× faster today |
//! | [`btree`] | copy-on-write B+tree, snapshot range scans | lock-free; reads never retry | range scans must be linearizable snapshots while writers run | writes dominate: every update copies a leaf-to-root path |
//! | [`queue`] | bounded MPMC queue with announce-and-help | **wait-free** (proven step bound) | every operation needs a hard bound on its own steps | throughput first: crossbeam's `ArrayQueue` is 4–10× faster |
//! | [`channel`] | MPMC channel with blocking handles; SPSC ring | MPMC core blocking-free; SPSC wait-free | blocking `Sender`/`Receiver` or an SPSC hand-off (0.9–1.0× rtrb) | you need unbounded or rendezvous channels: use crossbeam-channel |
//! | [`rcu`] | read-copy-update cell | reads wait-free, writes lock-free | read-mostly configuration or snapshots (reads 1.8× arc-swap) | writes are frequent: each one allocates and copies |
//! | [`numa`] | topology, cohort lock, node replication, node-aware stack | see the module | several NUMA nodes share hot data | one socket: the plain structures are simpler |
//! | [`epoch`] | epoch-based reclamation | lock-free; pin is a thread-local write | you build your own structure and can tolerate a stalled reader holding memory | a reader may stall for long: hazard pointers bound the garbage |
//! | [`hazard`] | hazard pointers with asymmetric fences | lock-free; protect is wait-free per attempt | unreclaimed memory must stay bounded per thread | reads are very frequent and short: epochs cost less per read |
//!
//! "Lock-free" means some thread always completes an operation in a bounded
//! number of system-wide steps; "wait-free" means every thread does, in a
//! bound of its own steps; the channel's MPMC core is *blocking-free* but not
//! lock-free (a producer preempted between claiming a slot and publishing it
//! delays the consumer of that slot, exactly as in crossbeam's `ArrayQueue`).
//!
//! The numbers above are ratios measured on a 16-core Xeon (medians of 3);
//! the full tables and the deployment guidance are in the repository:
//! [docs/deployment.md](https://github.com/waitless-rs/waitless/blob/main/docs/deployment.md)
//! (when to choose lock-free) and
//! [docs/scaling-16-core.md](https://github.com/waitless-rs/waitless/blob/main/docs/scaling-16-core.md)
//! (the measured results). Run `cargo run --release -p waitless-bench` in a
//! clone to measure them on your own machine.
//!
//! # Quick start
//!
//! Every structure is `Send + Sync` when its element types are, so share it
//! by reference (`std::thread::scope`), in an `Arc`, or in a `static`.
//!
//! ## Stack
//! ```
//! use waitless::stack::LockFreeStack;
//!
//! let stack = LockFreeStack::new();
//! std::thread::scope(|s| {
//!     for t in 0..4 {
//!         let stack = &stack;
//!         s.spawn(move || stack.push(t).unwrap());
//!     }
//! });
//! let guard = stack.enter(); // pins the stack's epoch while popping
//! let mut got: Vec<i32> = std::iter::from_fn(|| stack.pop(&guard)).collect();
//! got.sort();
//! assert_eq!(got, [0, 1, 2, 3]);
//! ```
//!
//! ## Hash map
//! ```
//! use waitless::map::LockFreeHashMap;
//!
//! let map = LockFreeHashMap::new();
//! map.insert("apples", 3);
//! map.update("apples", |n| n + 1);                 // atomic read-modify-write
//! assert_eq!(map.get("apples"), Some(4));          // values are cloned out
//! assert_eq!(map.get_with("apples", |n| n * 2), Some(8)); // or read in place
//! assert_eq!(map.get_or_insert_with("pears", || 1), 1);
//! assert_eq!(map.len(), 2);
//! ```
//!
//! ## Ordered map with snapshot ranges
//! ```
//! use waitless::btree::LockFreeBTree;
//!
//! let tree = LockFreeBTree::new();
//! for k in 0..100u32 {
//!     tree.insert(k, k * k);
//! }
//! // A lazy, linearizable snapshot of the range, however writers race.
//! let squares: Vec<u32> = tree.range(10..13).map(|(_, v)| v).collect();
//! assert_eq!(squares, [100, 121, 144]);
//! assert_eq!(tree.first_key_value(), Some((0, 0)));
//! ```
//!
//! ## Wait-free queue
//! ```
//! use waitless::queue::{QueueError, WaitFreeQueue};
//!
//! let q = WaitFreeQueue::new(2); // capacity: a power of two
//! q.enqueue('a').unwrap();
//! q.enqueue('b').unwrap();
//! assert_eq!(q.enqueue('c'), Err(QueueError::Full('c'))); // the value comes back
//! assert_eq!(q.dequeue(), Some('a'));
//! ```
//!
//! ## Channels
//! ```
//! use waitless::channel::{bounded, spsc};
//!
//! // Blocking MPMC handles, shaped like std's and crossbeam's.
//! let (tx, rx) = bounded(16);
//! let producer = std::thread::spawn(move || {
//!     for i in 0..100u64 {
//!         tx.send(i).unwrap(); // parks while the channel is full
//!     }
//! }); // the sender is dropped here: the receiver drains, then stops
//! assert_eq!(rx.iter().sum::<u64>(), 4950);
//! producer.join().unwrap();
//!
//! // Single producer, single consumer: wait-free, no atomic RMW.
//! let (mut p, mut c) = spsc::bounded(8);
//! p.push("ping").unwrap();
//! assert_eq!(c.pop(), Some("ping"));
//! ```
//! Only bounded channels are offered: the MPMC core is a fixed ring (a slot
//! per value, allocated once), which is what keeps its fast path free of
//! allocation. An unbounded channel needs a linked list of blocks and a
//! rendezvous channel (`bounded(0)`) a hand-off protocol — different
//! algorithms; crossbeam-channel has both. The capacity must be a power of
//! two, so `bounded(0)` panics.
//!
//! ## Read-copy-update
//! ```
//! use waitless::rcu::Rcu;
//!
//! let config = Rcu::new(vec!["a".to_string()]);
//! let reader = config.read(); // wait-free; never blocks a writer
//! config.update(|old| {
//!     let mut new = old.clone();
//!     new.push("b".into());
//!     new
//! });
//! assert_eq!(reader.len(), 1); // a reader keeps the value it pinned
//! drop(reader);
//! assert_eq!(config.read().len(), 2);
//! ```
//!
//! ## NUMA
//! ```
//! use waitless::numa::{CohortLock, Topology};
//!
//! let topology = Topology::current(); // from /sys/devices/system/node
//! let lock = CohortLock::new(topology.num_nodes(), 0u64);
//! *lock.lock() += 1; // hands the lock to waiters on this node first
//! assert_eq!(lock.into_inner(), 1);
//! ```
//!
//! ## Epochs (for your own structures)
//! ```
//! use std::sync::atomic::{AtomicPtr, Ordering};
//! use waitless::epoch::Collector;
//!
//! let collector = Collector::new();
//! let shared = AtomicPtr::new(Box::into_raw(Box::new(1u64)));
//! let guard = collector.pin();
//! let old = shared.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel);
//! // SAFETY: `old` came from `Box::into_raw` and is unlinked; readers
//! // pinned now may still read it, so it is freed only after they unpin.
//! unsafe { guard.defer_destroy(old) };
//! drop(guard);
//! drop(collector); // frees everything still deferred
//! # unsafe { drop(Box::from_raw(shared.into_inner())) };
//! ```
//!
//! ## Hazard pointers (for your own structures)
//! ```
//! use std::sync::atomic::{AtomicPtr, Ordering};
//! use waitless::hazard::{Domain, HazardPointer};
//!
//! let domain = Domain::new();
//! let shared = AtomicPtr::new(Box::into_raw(Box::new(7u64)));
//! let mut hp = HazardPointer::new_in(&domain);
//! let p = hp.protect(&shared); // load, publish, re-check
//! let old = shared.swap(Box::into_raw(Box::new(8)), Ordering::AcqRel);
//! // SAFETY: `old` is unlinked and retired once.
//! unsafe { domain.retire_box(old) };
//! domain.reclaim();
//! // SAFETY: `p` is protected by `hp`, so the retired value is not freed.
//! assert_eq!(unsafe { *p }, 7);
//! drop(hp);
//! # unsafe { drop(Box::from_raw(shared.load(Ordering::Relaxed))) };
//! ```
//!
//! # Errors give the value back
//!
//! Every fallible call that takes a value returns it in its error
//! ([`queue::QueueError`], [`stack::StackError`], [`channel::SendError`], …),
//! and every such error prints without `T: Debug`, as `Type::Variant(..)`.
//!
//! # Features
//!
//! - `step-count`: counts the steps of every queue operation, so tests can
//!   assert the proven wait-freedom bound ([`queue::verification`]).
//! - `contention`: per-thread CAS attempt/failure counters at every retry
//!   loop ([`contention`]); the benchmark crate enables it on request.
//!
//! Shared utilities: [`CachePadded`] and [`Backoff`].
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub(crate) mod sync;

mod utils;
pub use utils::{Backoff, CachePadded};

// One module per structure and one per reclamation scheme.

pub mod epoch;

pub mod stack;

pub mod hazard;

pub mod map;

pub mod queue;

pub mod channel;

pub mod contention;

#[doc(hidden)]
pub mod measure;

pub mod rcu;

pub mod btree;

pub mod numa;

mod proof;
pub use proof::Proof;
