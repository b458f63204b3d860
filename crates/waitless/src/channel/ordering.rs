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
///
/// The constants can be read to see what a strategy compiles to:
///
/// ```
/// use std::sync::atomic::Ordering;
/// use waitless::channel::{Optimized, OrderingStrategy, SeqCstAll};
///
/// assert_eq!(Optimized::STAMP_STORE, Ordering::Release);
/// assert_eq!(Optimized::CLAIM_SUCCESS, Ordering::Relaxed);
/// assert_eq!(SeqCstAll::NAME, "SeqCstAll");
/// ```
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
///
/// ```
/// use waitless::channel::{OptimizedChannel, SeqCstAll};
///
/// let ch: OptimizedChannel<u8, SeqCstAll> = OptimizedChannel::with_strategy(2);
/// ch.send(7).unwrap();
/// assert_eq!(ch.recv(), Some(7));
/// assert_eq!(ch.strategy_name(), "SeqCstAll");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SeqCstAll;

/// `Acquire` on every load, `Release` on every store, `AcqRel` on every CAS.
///
/// ```
/// use waitless::channel::{AcquireRelease, OptimizedChannel};
///
/// let ch: OptimizedChannel<&str, AcquireRelease> = OptimizedChannel::with_strategy(1);
/// ch.send("a").unwrap();
/// assert!(ch.send("b").is_err(), "capacity 1: the second send is Full");
/// assert_eq!(ch.recv(), Some("a"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AcquireRelease;

/// The minimal set: only the slot stamps synchronize (`Acquire`/`Release`);
/// index loads and claiming CASes are `Relaxed`.
///
/// It is the default strategy of [`OptimizedChannel`](super::OptimizedChannel):
///
/// ```
/// use waitless::channel::{Optimized, OptimizedChannel};
///
/// let ch: OptimizedChannel<u32, Optimized> = OptimizedChannel::new(4);
/// assert_eq!(ch.strategy_name(), "Optimized");
/// ```
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

// --- access-site table (issue 19) -----------------------------------------
// One row per strategy-controlled atomic access of the channel core: the
// single source of truth that `memory_analysis::analyze_ordering_choices`
// prints. Each row reads its ordering from the strategy's associated
// constant (the one the code passes to the atomic), and states the weakest
// ordering the correctness argument needs; the instructions are derived from
// the ordering by `memory_analysis::instructions`. A test in
// `memory_analysis` checks that every constant of the trait has a row and
// every row's constant is used by `mpmc.rs`.

#[cfg(not(loom))]
use super::memory_analysis::{AccessKind, AccessSite};

/// The orderings of one strategy, one field per associated constant of
/// [`OrderingStrategy`] (so a hand-built value can describe a strategy that
/// the sealed trait does not allow, for tests of the analysis).
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Orderings {
    pub(crate) name: &'static str,
    pub(crate) index_load: Ordering,
    pub(crate) claim_success: Ordering,
    pub(crate) claim_failure: Ordering,
    pub(crate) stamp_load: Ordering,
    pub(crate) stamp_store: Ordering,
    pub(crate) other_index_load: Ordering,
}

#[cfg(not(loom))]
impl Orderings {
    /// The orderings strategy `O` gives the code.
    pub(crate) fn of<O: OrderingStrategy>() -> Self {
        Orderings {
            name: O::NAME,
            index_load: O::INDEX_LOAD,
            claim_success: O::CLAIM_SUCCESS,
            claim_failure: O::CLAIM_FAILURE,
            stamp_load: O::STAMP_LOAD,
            stamp_store: O::STAMP_STORE,
            other_index_load: O::OTHER_INDEX_LOAD,
        }
    }
}

/// Every strategy-controlled access site of `mpmc.rs`, in the order of the
/// trait's constants.
#[cfg(not(loom))]
pub(crate) const SITES: &[AccessSite] = &[
    AccessSite {
        site: "INDEX_LOAD",
        operation: "first load (and reload) of the caller's own index (`tail` in send, `head` \
                    in recv)",
        kind: AccessKind::Load,
        ordering: |o| o.index_load,
        required: Ordering::Relaxed,
        pairs_with:
            "nothing: the value is a guess that the claiming CAS on the same index validates",
        why: "a stale index only makes the stamp comparison or the claiming CAS fail \
              (the CAS compares against the index's current value); no data is read through it",
    },
    AccessSite {
        site: "CLAIM_SUCCESS",
        operation:
            "successful compare_exchange_weak of the own index t -> t + 1, claiming position t",
        kind: AccessKind::CasSuccess,
        ordering: |o| o.claim_success,
        required: Ordering::Relaxed,
        pairs_with: "nothing: the slot's stamp carries the hand-off (STAMP_LOAD / STAMP_STORE)",
        why: "atomicity alone (one modification order per index) gives each position to exactly \
              one thread; the claimer's right to the cell was established by its Acquire stamp \
              load, and it publishes its own cell access with the stamp store, not the index",
    },
    AccessSite {
        site: "CLAIM_FAILURE",
        operation: "failed claiming CAS: reads the current index to retry with",
        kind: AccessKind::CasFailure,
        ordering: |o| o.claim_failure,
        required: Ordering::Relaxed,
        pairs_with: "nothing: as INDEX_LOAD, the value read is only the next guess",
        why: "the retry re-reads the slot's stamp (Acquire) before touching the cell",
    },
    AccessSite {
        site: "STAMP_LOAD",
        operation: "load of the slot's stamp, made first, before claiming it (free for t in \
                    send, full with h in recv)",
        kind: AccessKind::Load,
        ordering: |o| o.stamp_load,
        required: Ordering::Acquire,
        pairs_with: "STAMP_STORE (Release) of the slot's previous owner: the producer that wrote \
                     position h (recv), or the consumer that emptied position t - capacity (send)",
        why: "makes the previous owner's access to the value cell happen-before ours: a consumer \
              reads the whole value its producer wrote (no torn or stale read), a producer \
              overwrites the cell only after the previous value was moved out (no use after \
              free); anything weaker is a data race on the cell",
    },
    AccessSite {
        site: "STAMP_STORE",
        operation: "store of the slot's next stamp after writing the value (full with t, send) \
                    or moving it out (free for h + capacity, recv)",
        kind: AccessKind::Store,
        ordering: |o| o.stamp_store,
        required: Ordering::Release,
        pairs_with: "STAMP_LOAD (Acquire) of the slot's next owner",
        why: "publishes the cell access sequenced before it; with STAMP_LOAD it is the only \
              happens-before edge between two owners of a cell, so both halves are needed",
    },
    AccessSite {
        site: "OTHER_INDEX_LOAD",
        operation: "load of the opposite index (`head` in send, `tail` in recv), made only when \
                    the slot's stamp says full/empty, after the SeqCst fence",
        kind: AccessKind::Load,
        ordering: |o| o.other_index_load,
        required: Ordering::Relaxed,
        pairs_with: "the SeqCst fence just before it, which orders it after the own-index load",
        why: "Full/None is linearizable because the fence keeps the two index loads in order \
              (mpmc.rs, \"Full and None are linearizable\"); the value carries no data, so it \
              needs no Acquire",
    },
];
