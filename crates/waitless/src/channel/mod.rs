//! Channels: an ordering-parameterised non-blocking MPMC core, blocking
//! handles on top of it, and an SPSC fast path.
//!
//! | item | what | progress |
//! |---|---|---|
//! | [`OptimizedChannel<T, O>`] | bounded MPMC; `send`/`recv` never block | never parks; waits only for a peer mid-operation on the same slot |
//! | [`bounded`] → [`Sender`], [`Receiver`] | std/crossbeam-shaped blocking handles | park after a short bounded backoff |
//! | [`spsc::bounded`] → [`spsc::Producer`], [`spsc::Consumer`] | single producer, single consumer | wait-free, no RMW |
//!
//! The core is a stamped ring (Vyukov's bounded MPMC queue) with producer
//! and consumer state on separate cache lines. An operation reads its slot's
//! stamp first and touches the opposite index only when the stamp says
//! full/empty, so a `send` or `recv` that finds room reads and writes only
//! its slot and its own index. The memory-ordering strategy is a type
//! parameter ([`SeqCstAll`], [`AcquireRelease`], [`Optimized`], the
//! default), so one algorithm compiles three ways and
//! [`OptimizedChannel::benchmark_orderings`] measures them side by side.
//!
//! # Consistency
//!
//! `send` and `recv` of the core are linearizable, `Full` and `None`
//! included (proof in [`OptimizedChannel`]'s module and `docs/channel.md`):
//! values come out in the order their sends claimed positions, exactly once.
//!
//! # Examples
//!
//! ```
//! use waitless::channel::{self, OptimizedChannel};
//!
//! // Non-blocking core.
//! let ch = OptimizedChannel::<u32>::new(8);
//! ch.send(1).unwrap();
//! assert_eq!(ch.recv(), Some(1));
//!
//! // Blocking handles.
//! let (tx, rx) = channel::bounded(8);
//! let tx2 = tx.clone();
//! std::thread::spawn(move || tx2.send("hello").unwrap());
//! assert_eq!(rx.recv(), Ok("hello"));
//!
//! // SPSC.
//! let (mut p, mut c) = channel::spsc::bounded(8);
//! p.push(5).unwrap();
//! assert_eq!(c.pop(), Some(5));
//! ```

#[cfg(not(loom))]
mod bench;
mod blocking;
mod error;
mod mpmc;
mod ordering;
pub mod spsc;
// --- proof reports (issue 19)
#[cfg(not(loom))]
pub mod memory_analysis;

#[cfg(not(loom))]
pub use bench::{
    BenchmarkResults, OrderingPoint, OrderingReport, StrategyReport, DEFAULT_POINT_DURATION, POINTS,
};
pub use blocking::{bounded, Iter, Receiver, Sender, TryIter};
pub use error::{
    ChannelError, PushError, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    TryRecvError, TrySendError,
};
pub use mpmc::OptimizedChannel;
pub use ordering::{AcquireRelease, Optimized, OrderingStrategy, SeqCstAll};

// --- owned receiver iterator (issue 15)
mod ext;
pub use ext::IntoIter;

/// Test support: a hung channel test fails with a message instead of
/// hanging the suite.
#[cfg(all(test, not(loom)))]
pub(crate) mod test_support {
    /// Runs `f` and fails with a message instead of hanging the suite.
    pub(crate) use waitless_check::within;
}
