//! # waitless-check
//!
//! Records concurrent histories, defines sequential models, and checks
//! histories for *linearizability*: whether every operation can be given a
//! single instant between its call and its return such that, in the order
//! of those instants, the answers are those of the sequential object.
//!
//! ```
//! use std::collections::VecDeque;
//! use std::sync::Mutex;
//! use waitless_check::{assert_linearizable, check, QueueModel, QueueOp, QueueRet, Recorder};
//!
//! // A bounded queue behind a lock: linearizable by construction.
//! let q = Mutex::new(VecDeque::new());
//! let rec: Recorder<QueueOp<u64>, QueueRet<u64>> = Recorder::new();
//! std::thread::scope(|s| {
//!     for t in 0..4u64 {
//!         let (q, rec) = (&q, &rec);
//!         s.spawn(move || {
//!             let mut log = rec.thread(); // per-thread buffer
//!             for i in 0..200 {
//!                 let v = t << 32 | i; // unique values keep the search cheap
//!                 log.op(QueueOp::Enqueue(v), || {
//!                     let mut q = q.lock().unwrap();
//!                     if q.len() == 4 {
//!                         QueueRet::Full
//!                     } else {
//!                         q.push_back(v);
//!                         QueueRet::Enqueued
//!                     }
//!                 });
//!                 log.op(QueueOp::Dequeue, || QueueRet::Dequeued(q.lock().unwrap().pop_front()));
//!             }
//!         }); // the log is dropped here: its buffer goes to the recorder
//!     }
//! });
//! let history = rec.into_history();
//! assert_linearizable(&QueueModel::bounded(4), &history);
//! assert!(check(&QueueModel::bounded(4), &history).is_ok());
//! ```
//!
//! ## Recording
//!
//! A [`Recorder`] hands each thread a [`ThreadLog`]. A log timestamps the
//! call (before the operation runs) and the return (after it finished) with
//! one monotonic clock ([`std::time::Instant`] read against the recorder's
//! start), and pushes to a private buffer: recording an operation writes no
//! shared memory, so it perturbs the interleavings under test as little as
//! possible. A dropped log hands its buffer over under a lock, once per
//! thread; [`Recorder::into_history`] merges them. An operation whose return
//! was never recorded is *pending*: it may take effect at any point after
//! its call, or not at all. Operation `a` precedes `b` in real time only if
//! `a.ret < b.call`; equal timestamps count as concurrent.
//!
//! ## Models
//!
//! A [`Model`] is a sequential specification: an initial state and a step
//! function that says whether an operation may give a certain answer in a
//! state, and what state follows. This crate provides [`StackModel`],
//! [`QueueModel`] (bounded: `Full` and empty answers are checked too),
//! [`MapModel`], [`SetModel`] and [`RegisterModel`], and an ordered map
//! with range scans, [`OrderedMapModel`].
//!
//! ## The algorithm
//!
//! The checker is the Wing–Gong search (Wing & Gong, "Testing and verifying
//! concurrent objects", JPDC 1993) with Lowe's memoization (Lowe, "Testing
//! for linearizability", Concurrency and Computation 2017), the same design
//! as the Go checker porcupine:
//!
//! 1. The history becomes a doubly linked list of call and return events in
//!    time order.
//! 2. Scanning from the head, each call event is a candidate to linearize
//!    next. If the model accepts it from the current state, the operation's
//!    call and return are unlinked (O(1), "dancing links"), pushed on a
//!    stack with the previous state, and the scan restarts at the head.
//! 3. Reaching a return event means that operation should already have been
//!    linearized: pop the last choice, relink it, and try the next call
//!    after it (backtracking).
//! 4. Lowe's cache: a (set of linearized operations, state) pair that was
//!    already explored is never explored again, because the rest of the
//!    search depends only on that pair. The set is a bitset; since
//!    operations are numbered by call time and the search linearizes
//!    roughly in call order, the cache key is "the first `low` words are
//!    full" plus the few words above them, so keys stay small.
//! 5. The search succeeds when every completed operation is linearized
//!    (pending ones may be left out); it fails when it must backtrack past
//!    the start.
//!
//! **P-compositionality** (Horn & Kroening, "Faster linearizability
//! checking via P-compositionality", FORTE 2015): a map is linearizable iff
//! its restriction to each key is, so [`MapModel`] and [`SetModel`] split the
//! history by key ([`Model::partition`]) and each part is searched alone.
//!
//! On failure the checker returns [`NonLinearizable`]: the failing
//! partition, the longest prefix that has a linearization, the state after
//! it, and the operations that could come next, each with why it cannot.
//!
//! ## Complexity
//!
//! Linearizability checking is NP-complete in general (Gibbons & Korach
//! 1997), and the search is exponential in the worst case: in the number of
//! mutually concurrent operations whose answers the model cannot tell
//! apart. With unique values (each enqueued or pushed value distinct) almost
//! every choice is forced, and the search is close to linear: about
//! O(n · w) steps for n operations and concurrency width w, each step one
//! model step plus one hash of (O(w)-word key, state). Memory is one cache
//! entry (key + state clone) per explored step, so keep states small
//! (bounded queues, per-key partitions).
//!
//! Queues and stacks are the expensive case even with unique values: when
//! two enqueues overlap, the search guesses their order and only learns it
//! guessed wrong when one of the values reaches the front, so the work per
//! operation grows with concurrency × the number of elements held. Keep
//! capacities small (the `check_time` benchmark uses 8) and checks to a few
//! thousand operations; the bench shows a 100k-operation queue history with
//! about four operations always open taking seconds where the same-size
//! map history takes tens of milliseconds. Lowe's just-in-time
//! linearization would cut this; it is not implemented. [`check_with_limit`] bounds the
//! search; [`assert_linearizable`] uses [`ASSERT_STEP_LIMIT`] so a test can
//! never hang on a pathological history.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checker;
mod drops;
pub mod generate;
mod history;
mod model;
mod models;
mod ordered;
mod report;
mod timeout;

pub use checker::{assert_linearizable, check, check_with_limit, ASSERT_STEP_LIMIT};
pub use drops::{DropLedger, Tracked};
pub use history::{History, OpId, Operation, Recorder, ThreadLog};
pub use model::{partition_by_key, Model, Partition};
pub use models::{
    MapModel, MapOp, MapRet, QueueModel, QueueOp, QueueRet, RegisterModel, RegisterOp, RegisterRet,
    SetModel, SetOp, SetRet, StackModel, StackOp, StackRet,
};
pub use ordered::{OrderedMapModel, OrderedOp, OrderedRet};
pub use report::{CheckOutcome, NonLinearizable, OpReport};
pub use timeout::within;
