//! Memory-ordering strategies for [`OptimizedChannel`](super::OptimizedChannel).
//!
//! A strategy is a zero-sized type implementing the sealed trait
//! [`OrderingStrategy`]. Its associated constants name the ordering of every
//! atomic access the channel's algorithm makes, so one algorithm is compiled
//! three times:
//!
//! | access | [`SeqCstAll`] | [`AcquireRelease`] | [`Optimized`] |
//! |---|---|---|---|
//! | own index, first load ([`INDEX_LOAD`](OrderingStrategy::INDEX_LOAD)) | SeqCst | Acquire | Relaxed |
//! | own index, claiming CAS (success / failure) | SeqCst / SeqCst | AcqRel / Acquire | Relaxed / Relaxed |
//! | slot stamp, load ([`STAMP_LOAD`](OrderingStrategy::STAMP_LOAD)) | SeqCst | Acquire | Acquire |
//! | slot stamp, store ([`STAMP_STORE`](OrderingStrategy::STAMP_STORE)) | SeqCst | Release | Release |
//! | opposite index, load when the stamp says full/empty ([`OTHER_INDEX_LOAD`](OrderingStrategy::OTHER_INDEX_LOAD)) | SeqCst | Acquire | Relaxed |
//!
//! Every strategy is correct: the two accesses that carry the hand-off of a
//! value (the stamp store `Release` in the thread that finished with a slot,
//! the stamp load `Acquire` in the thread that takes the slot over) are at
//! least `Release`/`Acquire` in all three, and the slow path that decides a
//! linearizable `Full` or `None` answer issues a `SeqCst` fence in all three
//! (it is off the fast path, so it does not change what is being compared).
//!
//! The blocking handles ([`bounded`](super::bounded)) run the core with a
//! fourth, crate-private strategy, `Blocking`: `Optimized` except that the
//! claiming CAS succeeds with `SeqCst`, because the parking protocol puts it
//! in the single total order S with the waiter count (`blocking.rs`).
//! `docs/channel.md` proves why `Optimized` is the minimal correct set and
//! what each strategy compiles to on x86, ARM and POWER.

use crate::sync::atomic::Ordering;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::SeqCstAll {}
    impl Sealed for super::AcquireRelease {}
    impl Sealed for super::Optimized {}
    impl Sealed for super::Blocking {}
}

/// The orderings one strategy uses for each access of the channel algorithm.
///
/// Sealed: only [`SeqCstAll`], [`AcquireRelease`] and [`Optimized`] implement
/// it, because the channel's safety depends on the stamp orderings being at
/// least `Acquire`/`Release`.
pub trait OrderingStrategy: sealed::Sealed + Send + Sync + 'static {
    /// Human-readable name used in reports.
    const NAME: &'static str;
    /// First load of the caller's own index (`tail` in `send`, `head` in `recv`).
    const INDEX_LOAD: Ordering;
    /// Success ordering of the CAS that claims a position.
    const CLAIM_SUCCESS: Ordering;
    /// Failure ordering of the CAS that claims a position.
    const CLAIM_FAILURE: Ordering;
    /// Load of a slot's stamp before claiming it.
    const STAMP_LOAD: Ordering;
    /// Store of a slot's stamp after writing (send) or reading (recv) it.
    const STAMP_STORE: Ordering;
    /// Load of the opposite index (`head` in `send`, `tail` in `recv`), made
    /// only when the slot's stamp says full/empty, after a `SeqCst` fence.
    const OTHER_INDEX_LOAD: Ordering;
}

/// `SeqCst` on every access: the textbook default and the baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeqCstAll;

/// `Acquire` on every load, `Release` on every store, `AcqRel` on every CAS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AcquireRelease;

/// The minimal set: only the slot stamps synchronize (`Acquire`/`Release`);
/// index loads and claiming CASes are `Relaxed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Optimized;

impl OrderingStrategy for SeqCstAll {
    const NAME: &'static str = "SeqCstAll";
    const INDEX_LOAD: Ordering = Ordering::SeqCst;
    const CLAIM_SUCCESS: Ordering = Ordering::SeqCst;
    const CLAIM_FAILURE: Ordering = Ordering::SeqCst;
    const STAMP_LOAD: Ordering = Ordering::SeqCst;
    const STAMP_STORE: Ordering = Ordering::SeqCst;
    const OTHER_INDEX_LOAD: Ordering = Ordering::SeqCst;
}

impl OrderingStrategy for AcquireRelease {
    const NAME: &'static str = "AcquireRelease";
    const INDEX_LOAD: Ordering = Ordering::Acquire;
    const CLAIM_SUCCESS: Ordering = Ordering::AcqRel;
    const CLAIM_FAILURE: Ordering = Ordering::Acquire;
    const STAMP_LOAD: Ordering = Ordering::Acquire;
    const STAMP_STORE: Ordering = Ordering::Release;
    const OTHER_INDEX_LOAD: Ordering = Ordering::Acquire;
}

impl OrderingStrategy for Optimized {
    const NAME: &'static str = "Optimized";
    // Relaxed: the value is only a guess that the claiming CAS validates.
    const INDEX_LOAD: Ordering = Ordering::Relaxed;
    // Relaxed: claiming a position transfers no data; the slot's stamp does.
    const CLAIM_SUCCESS: Ordering = Ordering::Relaxed;
    const CLAIM_FAILURE: Ordering = Ordering::Relaxed;
    // Acquire: pairs with the STAMP_STORE Release of the thread that last
    // finished with the slot (the producer's write of the value, or the
    // consumer's read of the previous lap's value).
    const STAMP_LOAD: Ordering = Ordering::Acquire;
    // Release: pairs with the STAMP_LOAD Acquire of the next owner.
    const STAMP_STORE: Ordering = Ordering::Release;
    // Relaxed after a SeqCst fence: the fence orders it after the own-index
    // load (see `mpmc.rs`, "Full and None are linearizable").
    const OTHER_INDEX_LOAD: Ordering = Ordering::Relaxed;
}

/// The strategy of the blocking handles (crate-private): [`Optimized`], except
/// that a successful claiming CAS is `SeqCst`.
///
/// The parking protocol (`blocking.rs`) needs the claim of a notifier ordered
/// in the single total order S before its `SeqCst` load of the waiter count,
/// against the waiter's `SeqCst` registration and fence. A `SeqCst` CAS does
/// that without the separate `fence(SeqCst)` per operation the handles paid
/// before; on x86 every CAS is a `lock cmpxchg` whatever its ordering, so the
/// fast path costs the same as `Optimized`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Blocking;

impl OrderingStrategy for Blocking {
    const NAME: &'static str = "Blocking";
    // Relaxed: a guess the claiming CAS validates.
    const INDEX_LOAD: Ordering = Ordering::Relaxed;
    // SeqCst: in S before the notifier's SeqCst load of the opposite side's
    // waiter count, paired with a waiter's SeqCst registration + fence
    // (`blocking.rs`, "Parking protocol"); also orders the claim before the
    // load of the receivers-gone flag (`blocking.rs`, "Dropping the last
    // receiver").
    const CLAIM_SUCCESS: Ordering = Ordering::SeqCst;
    // Relaxed: a failed claim is not a notification and carries no data.
    const CLAIM_FAILURE: Ordering = Ordering::Relaxed;
    // Acquire/Release: the slot hand-off, as in `Optimized`.
    const STAMP_LOAD: Ordering = Ordering::Acquire;
    const STAMP_STORE: Ordering = Ordering::Release;
    // Relaxed after the SeqCst fence, as in `Optimized`.
    const OTHER_INDEX_LOAD: Ordering = Ordering::Relaxed;
}
