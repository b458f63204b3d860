//! The channel's memory orderings, site by site, and its correctness report
//! (see `docs/channel.md`).
//!
//! * [`analyze_ordering_choices`] lists every atomic access site of
//!   [`OptimizedChannel`] under strategy `O`: the operation, the ordering `O`
//!   gives it, the weakest ordering the correctness argument needs, the
//!   access it pairs with, why that suffices, and the instruction it becomes
//!   on x86-64, ARMv8 and POWER. The strategy-controlled rows come from the
//!   table next to [`OrderingStrategy`] (`ordering.rs`), whose orderings are
//!   read from the same associated constants the code passes to its atomics,
//!   so the report cannot drift from the code; the instructions are derived
//!   from each ordering by one function (the standard C/C++11 mappings:
//!   Sewell et al., "C/C++11 mappings to processors"; ARMv8 with and without
//!   the LSE atomics). A row whose ordering is weaker than its argument
//!   needs is flagged, and the analysis is then not sound.
//! * [`prove_correctness`] returns a [`Proof`] of "no lost or duplicated
//!   message, no torn read, no use-after-free, linearizable" with evidence
//!   from a short run on a fresh channel of the same capacity and strategy:
//!   oversubscribed producers and consumers moving multi-word messages whose
//!   words are checked on receipt (a torn or stale read shows), each message
//!   counted exactly once, every message dropped exactly once in total; and,
//!   with feature `verify`, short recorded histories checked by
//!   `waitless-check` against a bounded FIFO model. The full argument is in
//!   `docs/channel.md`.
//!
//! ```
//! use waitless::channel::{memory_analysis, OptimizedChannel, SeqCstAll};
//!
//! let ch = OptimizedChannel::<u64>::new(8);
//! let a = memory_analysis::analyze_ordering_choices(&ch);
//! assert!(a.is_sound());
//! println!("{a}");
//!
//! let strong: OptimizedChannel<u64, SeqCstAll> = OptimizedChannel::with_strategy(8);
//! let p = memory_analysis::prove_correctness(&strong);
//! assert!(p.holds, "{p}");
//! ```

use std::fmt;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::error::ChannelError;
use super::mpmc::OptimizedChannel;
use super::ordering::{OrderingStrategy, Orderings, SITES};
use crate::proof::{check_fifo_histories, panic_message, FifoUnderTest, HistoryPlan, Proof};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What kind of atomic access a site is; decides what an ordering compiles to
/// and which orderings are stronger than which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessKind {
    /// An atomic load.
    Load,
    /// An atomic store.
    Store,
    /// A compare-and-swap that succeeds (a read-modify-write).
    CasSuccess,
    /// A compare-and-swap that fails (its load half).
    CasFailure,
    /// An unconditional swap (a read-modify-write).
    Swap,
    /// A standalone fence.
    Fence,
}

/// One atomic access site of the channel (a row of the analysis).
#[derive(Clone, Copy)]
pub(crate) struct AccessSite {
    /// The strategy constant that sets its ordering, or a short name for an
    /// ordering fixed in the code.
    pub(crate) site: &'static str,
    /// What the access is and where.
    pub(crate) operation: &'static str,
    /// The kind of access.
    pub(crate) kind: AccessKind,
    /// The ordering under a strategy (the constant's value).
    pub(crate) ordering: fn(&Orderings) -> Ordering,
    /// The weakest ordering the correctness argument needs here.
    pub(crate) required: Ordering,
    /// The access it synchronizes with, if any.
    pub(crate) pairs_with: &'static str,
    /// Why `required` suffices.
    pub(crate) why: &'static str,
}

/// Accesses whose ordering is fixed in `mpmc.rs` (the same under every
/// strategy), each with the code it is written as (a test checks the code
/// is still there).
pub(crate) const FIXED_SITES: &[(AccessSite, &str)] = &[
    (
        AccessSite {
            site: "fence (Full/None)",
            operation: "fence on the slow path of send and recv, between the own-index load and \
                        the opposite-index load",
            kind: AccessKind::Fence,
            ordering: |_| Ordering::SeqCst,
            required: Ordering::SeqCst,
            pairs_with: "the single total order S of SeqCst operations: it places the own-index \
                         load before the opposite-index load in S (blocking.rs may rely on it too)",
            why: "keeps the two index loads in order, so the pair read is one the channel had \
                  and a Full or None answer is linearizable (mpmc.rs); the argument relates loads \
                  of two different locations to one instant, which in the C++/Rust model only \
                  the single total order of SeqCst gives",
        },
        "fence(Ordering::SeqCst);",
    ),
    (
        AccessSite {
            site: "closed (send)",
            operation: "load of the closed flag at the start of send",
            kind: AccessKind::Load,
            ordering: |_| Ordering::Relaxed,
            required: Ordering::Relaxed,
            pairs_with: "nothing: the flag carries no data for a sender",
            why: "a send that starts after close() happened-before it sees true by coherence; a \
                  send racing with close may succeed, and its value is drained or dropped",
        },
        "self.closed.load(Ordering::Relaxed)",
    ),
    (
        AccessSite {
            site: "closed (close)",
            operation: "swap of the closed flag in close()",
            kind: AccessKind::Swap,
            ordering: |_| Ordering::AcqRel,
            required: Ordering::Release,
            pairs_with: "the Acquire load in is_closed()",
            why: "a thread that sees the flag also sees every send that happened-before close()",
        },
        "self.closed.swap(true, Ordering::AcqRel)",
    ),
    (
        AccessSite {
            site: "closed (is_closed)",
            operation: "load of the closed flag in is_closed()",
            kind: AccessKind::Load,
            ordering: |_| Ordering::Acquire,
            required: Ordering::Acquire,
            pairs_with: "the swap in close()",
            why: "see close(): the flag hands over what happened before closing",
        },
        "self.closed.load(Ordering::Acquire)",
    ),
    (
        AccessSite {
            site: "len",
            operation: "loads of tail, head, tail in len()",
            kind: AccessKind::Load,
            ordering: |_| Ordering::SeqCst,
            required: Ordering::SeqCst,
            pairs_with: "the other SeqCst loads of the same snapshot",
            why: "the loads form a snapshot in the SeqCst total order (tail re-read to detect a \
                  moving window), so the length is one the channel had",
        },
        "self.consumer.head.load(Ordering::SeqCst)",
    ),
    (
        AccessSite {
            site: "drop",
            operation: "loads of head and tail in Drop",
            kind: AccessKind::Load,
            ordering: |_| Ordering::Relaxed,
            required: Ordering::Relaxed,
            pairs_with: "nothing: `&mut self`",
            why: "exclusive access: whatever handed the channel to the dropping thread already \
                  synchronized with every operation",
        },
        "self.consumer.head.load(Ordering::Relaxed)",
    ),
];

/// What one ordering of one kind of access compiles to.
///
/// ```
/// use waitless::channel::{memory_analysis::analyze_ordering_choices, OptimizedChannel, SeqCstAll};
///
/// let ch: OptimizedChannel<u8, SeqCstAll> = OptimizedChannel::with_strategy(2);
/// let a = analyze_ordering_choices(&ch);
/// let store = a.rows.iter().find(|r| r.site == "STAMP_STORE").unwrap();
/// // A SeqCst store is an `xchg` on x86-64 and `stlr` on ARMv8.
/// assert!(store.instructions.x86_64.starts_with("xchg"));
/// assert_eq!(store.instructions.armv8, "stlr");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instructions {
    /// x86-64 (TSO).
    pub x86_64: &'static str,
    /// ARMv8-A (AArch64); `a / b` lists the form with the optional
    /// extension (LSE atomics, RCpc loads), then the base ARMv8.0 form (a
    /// load/store-exclusive loop for read-modify-writes).
    pub armv8: &'static str,
    /// POWER (64-bit).
    pub power: &'static str,
}

const fn ins(x86_64: &'static str, armv8: &'static str, power: &'static str) -> Instructions {
    Instructions {
        x86_64,
        armv8,
        power,
    }
}

/// The instruction sequence an access of `kind` with ordering `o` becomes,
/// by the standard C/C++11 mappings (the same for Rust, which shares C++'s
/// model). Orderings a kind cannot have (a `Release` load) map to
/// "invalid".
pub(crate) fn instructions(kind: AccessKind, o: Ordering) -> Instructions {
    use AccessKind::*;
    use Ordering::*;
    match (kind, o) {
        (Load, Relaxed) => ins("mov", "ldr", "ld"),
        (Load, Acquire) => ins("mov", "ldapr (v8.3 RCpc) / ldar", "ld; cmp; bc; isync"),
        (Load, SeqCst) => ins("mov", "ldar", "hwsync; ld; cmp; bc; isync"),
        (Store, Relaxed) => ins("mov", "str", "std"),
        (Store, Release) => ins("mov", "stlr", "lwsync; std"),
        (Store, SeqCst) => ins("xchg (or mov; mfence)", "stlr", "hwsync; std"),
        (CasSuccess, Relaxed) => ins("lock cmpxchg", "cas / ldxr..stxr", "ldarx..stdcx."),
        (CasSuccess, Acquire) => ins("lock cmpxchg", "casa / ldaxr..stxr", "ldarx..stdcx.; isync"),
        (CasSuccess, Release) => ins(
            "lock cmpxchg",
            "casl / ldxr..stlxr",
            "lwsync; ldarx..stdcx.",
        ),
        (CasSuccess, AcqRel) => ins(
            "lock cmpxchg",
            "casal / ldaxr..stlxr",
            "lwsync; ldarx..stdcx.; isync",
        ),
        (CasSuccess, SeqCst) => ins(
            "lock cmpxchg",
            "casal / ldaxr..stlxr",
            "hwsync; ldarx..stdcx.; isync",
        ),
        (CasFailure, Relaxed) => ins(
            "(same lock cmpxchg)",
            "(same cas / ldxr, no barrier)",
            "(same ldarx, no barrier)",
        ),
        (CasFailure, Acquire) => ins(
            "(same lock cmpxchg)",
            "(casa / ldaxr)",
            "(ldarx; isync on the failure path)",
        ),
        (CasFailure, SeqCst) => ins(
            "(same lock cmpxchg)",
            "(casal / ldaxr)",
            "(hwsync before; isync on the failure path)",
        ),
        (Swap, Relaxed) => ins("xchg", "swp / ldxr..stxr", "ldarx..stdcx."),
        (Swap, Acquire) => ins("xchg", "swpa / ldaxr..stxr", "ldarx..stdcx.; isync"),
        (Swap, Release) => ins("xchg", "swpl / ldxr..stlxr", "lwsync; ldarx..stdcx."),
        (Swap, AcqRel) => ins(
            "xchg",
            "swpal / ldaxr..stlxr",
            "lwsync; ldarx..stdcx.; isync",
        ),
        (Swap, SeqCst) => ins(
            "xchg",
            "swpal / ldaxr..stlxr",
            "hwsync; ldarx..stdcx.; isync",
        ),
        (Fence, Acquire) => ins("(none: compiler barrier)", "dmb ishld", "lwsync"),
        (Fence, Release | AcqRel) => ins("(none: compiler barrier)", "dmb ish", "lwsync"),
        (Fence, SeqCst) => ins("mfence", "dmb ish", "hwsync"),
        _ => ins("invalid", "invalid", "invalid"),
    }
}

fn has_acquire(o: Ordering) -> bool {
    matches!(o, Ordering::Acquire | Ordering::AcqRel | Ordering::SeqCst)
}

fn has_release(o: Ordering) -> bool {
    matches!(o, Ordering::Release | Ordering::AcqRel | Ordering::SeqCst)
}

/// Whether ordering `actual` gives at least what `required` gives.
pub(crate) fn at_least(actual: Ordering, required: Ordering) -> bool {
    (!has_acquire(required) || has_acquire(actual))
        && (!has_release(required) || has_release(actual))
        && (required != Ordering::SeqCst || actual == Ordering::SeqCst)
}

/// One access site under one strategy; a row of [`OrderingAnalysis`].
///
/// ```
/// use waitless::channel::{memory_analysis::analyze_ordering_choices, OptimizedChannel};
///
/// let a = analyze_ordering_choices(&OptimizedChannel::<u8>::new(2));
/// for row in &a.rows {
///     // Every row of the shipped strategies is backed by its argument.
///     assert!(row.sufficient, "{}: {:?} < {:?}", row.site, row.ordering, row.required);
///     assert!(!row.pairs_with.is_empty() && !row.why.is_empty());
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderingRow {
    /// The strategy constant that sets the ordering (e.g. `STAMP_STORE`),
    /// or a short name for an access whose ordering is fixed in the code.
    pub site: &'static str,
    /// `true` when the ordering is fixed in the code, the same under every
    /// strategy.
    pub fixed: bool,
    /// What the access is and where.
    pub operation: &'static str,
    /// The ordering the code uses under this strategy.
    pub ordering: Ordering,
    /// The weakest ordering the correctness argument needs.
    pub required: Ordering,
    /// `ordering` is at least `required`.
    pub sufficient: bool,
    /// The access it synchronizes with.
    pub pairs_with: &'static str,
    /// Why `required` suffices.
    pub why: &'static str,
    /// What `ordering` compiles to.
    pub instructions: Instructions,
}

/// Every atomic access site of [`OptimizedChannel`] under one strategy; see
/// [`analyze_ordering_choices`]. `Display` prints a readable report.
///
/// ```
/// use waitless::channel::{memory_analysis::analyze_ordering_choices, OptimizedChannel};
///
/// let a = analyze_ordering_choices(&OptimizedChannel::<u8>::new(2));
/// assert_eq!(a.strategy, "Optimized");
/// assert!(a.to_string().contains("STAMP_STORE"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderingAnalysis {
    /// The strategy's name ([`OrderingStrategy::NAME`]).
    pub strategy: &'static str,
    /// Strategy-controlled sites first (in the order of the trait's
    /// constants), then the sites whose ordering is fixed in the code.
    pub rows: Vec<OrderingRow>,
}

impl OrderingAnalysis {
    /// `true` if every site's ordering is at least what its argument needs.
    ///
    /// ```
    /// use waitless::channel::{memory_analysis::analyze_ordering_choices, AcquireRelease, OptimizedChannel};
    ///
    /// let ch: OptimizedChannel<u8, AcquireRelease> = OptimizedChannel::with_strategy(2);
    /// assert!(analyze_ordering_choices(&ch).is_sound());
    /// ```
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.rows.iter().all(|r| r.sufficient)
    }

    /// The sites whose ordering is weaker than their argument needs.
    ///
    /// ```
    /// use waitless::channel::{memory_analysis::analyze_ordering_choices, OptimizedChannel};
    ///
    /// let a = analyze_ordering_choices(&OptimizedChannel::<u8>::new(2));
    /// assert_eq!(a.insufficient().count(), 0);
    /// ```
    pub fn insufficient(&self) -> impl Iterator<Item = &OrderingRow> {
        self.rows.iter().filter(|r| !r.sufficient)
    }

    /// The rows whose ordering is stronger than needed (the price of the
    /// strategy over the minimal one).
    ///
    /// ```
    /// use waitless::channel::{memory_analysis::analyze_ordering_choices, OptimizedChannel, SeqCstAll};
    ///
    /// let minimal = analyze_ordering_choices(&OptimizedChannel::<u8>::new(2));
    /// let strict: OptimizedChannel<u8, SeqCstAll> = OptimizedChannel::with_strategy(2);
    /// let strict = analyze_ordering_choices(&strict);
    /// // SeqCst everywhere pays for more than the argument needs.
    /// assert!(strict.stronger_than_needed().count() > minimal.stronger_than_needed().count());
    /// ```
    pub fn stronger_than_needed(&self) -> impl Iterator<Item = &OrderingRow> {
        self.rows
            .iter()
            .filter(|r| r.sufficient && r.ordering != r.required)
    }
}

impl fmt::Display for OrderingAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strategy_rows = self.rows.iter().filter(|r| !r.fixed).count();
        writeln!(
            f,
            "Memory orderings of OptimizedChannel<_, {}>: {} strategy-controlled access sites, {} \
             fixed in the code.",
            self.strategy,
            strategy_rows,
            self.rows.len() - strategy_rows
        )?;
        if self.is_sound() {
            let extra = self.stronger_than_needed().count();
            writeln!(
                f,
                "Every site is at least as strong as its argument needs ({extra} stronger than \
                 needed)."
            )?;
        } else {
            writeln!(
                f,
                "NOT SOUND: {} site(s) weaker than their argument needs: {}.",
                self.insufficient().count(),
                self.insufficient()
                    .map(|r| r.site)
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        writeln!(
            f,
            "Instructions: the standard C/C++11 mappings; ARMv8 `a / b` = with the optional \
             extension (LSE atomics, RCpc loads) / base ARMv8.0."
        )?;
        for r in &self.rows {
            writeln!(f)?;
            let verdict = if !r.sufficient {
                " INSUFFICIENT"
            } else if r.ordering != r.required {
                " (stronger than needed)"
            } else {
                ""
            };
            writeln!(
                f,
                "{}{}: {:?}, needs {:?}{verdict}",
                r.site,
                if r.fixed { " [fixed]" } else { "" },
                r.ordering,
                r.required
            )?;
            writeln!(f, "  access:     {}", r.operation)?;
            writeln!(f, "  pairs with: {}", r.pairs_with)?;
            writeln!(f, "  why:        {}", r.why)?;
            writeln!(
                f,
                "  compiles to: x86-64 `{}` | ARMv8 `{}` | POWER `{}`",
                r.instructions.x86_64, r.instructions.armv8, r.instructions.power
            )?;
        }
        Ok(())
    }
}

fn row(site: &AccessSite, orderings: &Orderings, fixed: bool) -> OrderingRow {
    let ordering = (site.ordering)(orderings);
    OrderingRow {
        site: site.site,
        fixed,
        operation: site.operation,
        ordering,
        required: site.required,
        sufficient: at_least(ordering, site.required),
        pairs_with: site.pairs_with,
        why: site.why,
        instructions: instructions(site.kind, ordering),
    }
}

/// The analysis for a strategy given as its table of orderings (the real
/// strategies go through [`Orderings::of`]; tests hand-build broken ones).
pub(crate) fn analyze_orderings(orderings: &Orderings) -> OrderingAnalysis {
    let rows = SITES
        .iter()
        .map(|s| row(s, orderings, false))
        .chain(FIXED_SITES.iter().map(|(s, _)| row(s, orderings, true)))
        .collect();
    OrderingAnalysis {
        strategy: orderings.name,
        rows,
    }
}

/// One row per atomic access site of `channel`'s algorithm under its
/// strategy `O`: operation, ordering, the access it pairs with, why it
/// suffices, and what it compiles to on x86-64, ARMv8 and POWER. Generated
/// from the strategy's constants (the ones the code uses), so it cannot
/// drift from the code. The channel itself is not touched.
///
/// ```
/// use waitless::channel::{memory_analysis::analyze_ordering_choices, OptimizedChannel};
/// let a = analyze_ordering_choices(&OptimizedChannel::<u8>::new(4));
/// let stamp = a.rows.iter().find(|r| r.site == "STAMP_STORE").unwrap();
/// assert_eq!(stamp.ordering, std::sync::atomic::Ordering::Release);
/// assert_eq!(stamp.instructions.armv8, "stlr");
/// ```
pub fn analyze_ordering_choices<T, O: OrderingStrategy>(
    channel: &OptimizedChannel<T, O>,
) -> OrderingAnalysis {
    let _ = channel;
    analyze_orderings(&Orderings::of::<O>())
}

const CORRECTNESS: &str = "no lost or duplicated message, no torn read, no use-after-free, \
     and send/recv (Full and None included) are linearizable against a bounded FIFO queue";

const CORRECTNESS_ARGUMENT: &str = "\
Each position is claimed by exactly one producer and one consumer (a CAS on
the own index), and a slot's stamp says which position and which side may use
it next; the cell is touched only by the thread whose claim the stamp allowed.
The stamp store (Release) of the thread that finished with a cell pairs with
the stamp load (Acquire) of the next one, so every access to a cell
happens-before the next: no torn or stale read, no overwrite of a value not
yet moved out, each value moved out once (no loss, no duplication, no use
after free). Successful operations linearize at their claiming CAS; Full and
None are decided after a SeqCst fence between the two index loads, at an
instant when the channel was full or empty. Full argument: the module docs of
crates/waitless/src/channel/mpmc.rs and docs/channel.md (every ordering, and
why the Optimized set is the minimal one).";

/// Messages of the evidence run: three check words derived from the id, so
/// a torn or stale read of the cell shows; dropping one counts it.
struct Msg<'a> {
    id: u64,
    check: [u64; 3],
    drops: &'a AtomicUsize,
}

fn check_words(id: u64) -> [u64; 3] {
    [
        id ^ 0xA5A5_A5A5_A5A5_A5A5,
        id.rotate_left(29) ^ 0x0123_4567_89AB_CDEF,
        !id,
    ]
}

impl Drop for Msg<'_> {
    fn drop(&mut self) {
        // Relaxed: a counter read after every thread joined.
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the evidence run showed.
#[derive(Default)]
struct ChannelRun {
    producers: usize,
    consumers: usize,
    sent: u64,
    received: u64,
    full: u64,
    empty: u64,
    created: usize,
    dropped: usize,
    problem: Option<String>,
}

#[derive(Default)]
struct ConsumerLog {
    ids: Vec<u64>,
    empty: u64,
    problem: Option<String>,
}

/// Values are `producer << ID_BITS | sequence`.
const ID_BITS: u32 = 40;

fn channel_run<O: OrderingStrategy>(capacity: usize, budget: Duration) -> ChannelRun {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let (side, min_ops, max_ops) = if cfg!(miri) {
        (1, 6u64, 6u64)
    } else {
        ((2 * cpus).clamp(2, 4), 64, 1 << 20)
    };
    let mut run = ChannelRun {
        producers: side,
        consumers: side,
        ..ChannelRun::default()
    };
    let drops = AtomicUsize::new(0);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let ch: OptimizedChannel<Msg<'_>, O> = OptimizedChannel::with_strategy(capacity);
        let done = AtomicBool::new(false);
        let start = Barrier::new(2 * side);
        let deadline = Instant::now() + budget;
        let (sent, logs) = thread::scope(|s| {
            let producers: Vec<_> = (0..side)
                .map(|p| {
                    let (ch, start, drops) = (&ch, &start, &drops);
                    s.spawn(move || {
                        start.wait();
                        let (mut sent, mut full) = (0u64, 0u64);
                        let mut problem = None;
                        while sent < max_ops && (sent < min_ops || Instant::now() < deadline) {
                            let id = (p as u64) << ID_BITS | sent;
                            let mut m = Msg {
                                id,
                                check: check_words(id),
                                drops,
                            };
                            loop {
                                match ch.send(m) {
                                    Ok(()) => break,
                                    Err(ChannelError::Full(back)) => {
                                        full += 1;
                                        if back.id != id {
                                            problem.get_or_insert(format!(
                                                "send of message {id:#x} answered Full with \
                                                 message {:#x}",
                                                back.id
                                            ));
                                        }
                                        m = back;
                                        thread::yield_now();
                                    }
                                    Err(ChannelError::Disconnected(back)) => {
                                        problem.get_or_insert(
                                            "send answered Disconnected on an open channel"
                                                .to_string(),
                                        );
                                        drop(back);
                                        break;
                                    }
                                }
                            }
                            sent += 1;
                        }
                        (sent, full, problem)
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..side)
                .map(|_| {
                    let (ch, start, done) = (&ch, &start, &done);
                    s.spawn(move || {
                        start.wait();
                        let mut log = ConsumerLog::default();
                        let take = |m: Msg<'_>, log: &mut ConsumerLog| {
                            if m.check != check_words(m.id) {
                                log.problem.get_or_insert(format!(
                                    "torn or stale read: message {:#x} carried check words {:x?}",
                                    m.id, m.check
                                ));
                            }
                            log.ids.push(m.id);
                        };
                        loop {
                            if let Some(m) = ch.recv() {
                                take(m, &mut log);
                                continue;
                            }
                            log.empty += 1;
                            // Acquire: pairs with the Release store after
                            // every producer joined, so an empty answer
                            // after it means everything was received.
                            if done.load(Ordering::Acquire) {
                                match ch.recv() {
                                    Some(m) => take(m, &mut log),
                                    None => break,
                                }
                            } else {
                                thread::yield_now();
                            }
                        }
                        log
                    })
                })
                .collect();
            let mut sent = Vec::with_capacity(side);
            let mut first_panic = None;
            for h in producers {
                match h.join() {
                    Ok(x) => sent.push(x),
                    Err(p) => {
                        first_panic.get_or_insert(panic_message(&*p));
                        sent.push((0, 0, None));
                    }
                }
            }
            // Release: pairs with the consumers' Acquire load of `done`.
            done.store(true, Ordering::Release);
            let logs: Vec<_> = consumers
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|p| {
                        first_panic.get_or_insert(panic_message(&*p));
                        ConsumerLog::default()
                    })
                })
                .collect();
            if let Some(msg) = first_panic {
                std::panic::resume_unwind(Box::new(msg));
            }
            (sent, logs)
        });
        drop(ch);
        (sent, logs)
    }));
    let (sent, logs) = match outcome {
        Ok(x) => x,
        Err(p) => {
            run.problem = Some(format!("the evidence run panicked: {}", panic_message(&*p)));
            return run;
        }
    };
    run.sent = sent.iter().map(|s| s.0).sum();
    run.full = sent.iter().map(|s| s.1).sum();
    run.received = logs.iter().map(|l| l.ids.len() as u64).sum();
    run.empty = logs.iter().map(|l| l.empty).sum();
    run.created = run.sent as usize;
    // Relaxed: every thread has joined.
    run.dropped = drops.load(Ordering::Relaxed);
    run.problem = sent
        .iter()
        .find_map(|s| s.2.clone())
        .or_else(|| logs.iter().find_map(|l| l.problem.clone()))
        .or_else(|| exactly_once(&sent.iter().map(|s| s.0).collect::<Vec<_>>(), &logs))
        .or_else(|| {
            (run.dropped != run.created).then(|| {
                format!(
                    "{} messages were created but {} drops ran (a leak or a double drop)",
                    run.created, run.dropped
                )
            })
        });
    run
}

/// Every message sent was received exactly once, and each consumer saw each
/// producer's messages in order.
fn exactly_once(sent: &[u64], logs: &[ConsumerLog]) -> Option<String> {
    let mut got: Vec<Vec<u64>> = vec![Vec::new(); sent.len()];
    for log in logs {
        let mut last: Vec<Option<u64>> = vec![None; sent.len()];
        for &id in &log.ids {
            let (p, i) = ((id >> ID_BITS) as usize, id & ((1 << ID_BITS) - 1));
            if p >= sent.len() {
                return Some(format!("received message {id:#x}, which nobody sent"));
            }
            if last[p].is_some_and(|prev| prev >= i) {
                return Some(format!(
                    "FIFO violated: a consumer received message {i} of producer {p} after a later one"
                ));
            }
            last[p] = Some(i);
            got[p].push(i);
        }
    }
    for (p, ids) in got.iter_mut().enumerate() {
        ids.sort_unstable();
        for (want, &have) in (0..sent[p]).zip(ids.iter()) {
            if have != want {
                return Some(if have < want {
                    format!("message {have} of producer {p} was received twice")
                } else {
                    format!("message {want} of producer {p} was lost")
                });
            }
        }
        if ids.len() as u64 != sent[p] {
            return Some(format!(
                "producer {p} sent {} messages and {} were received",
                sent[p],
                ids.len()
            ));
        }
    }
    None
}

impl<O: OrderingStrategy> FifoUnderTest for OptimizedChannel<u64, O> {
    fn enqueue(&self, v: u64) -> bool {
        self.send(v).is_ok()
    }

    fn dequeue(&self) -> Option<u64> {
        self.recv()
    }
}

/// The correctness proof with the orderings given as a table (the real
/// strategies pass `Orderings::of::<O>()`; tests pass broken ones).
pub(crate) fn correctness_with<O: OrderingStrategy>(
    capacity: usize,
    orderings: &Orderings,
) -> Proof {
    let analysis = analyze_orderings(orderings);
    let mut evidence = String::new();
    let mut holds = true;
    if analysis.is_sound() {
        let _ = writeln!(
            evidence,
            "Orderings: all {} access sites under {} are at least as strong as the argument \
             needs (analyze_ordering_choices).",
            analysis.rows.len(),
            analysis.strategy
        );
    } else {
        holds = false;
        for r in analysis.insufficient() {
            let _ = writeln!(
                evidence,
                "CONTRADICTION: {} is {:?} under {}, but the argument needs {:?} ({}; pairs with \
                 {}).",
                r.site, r.ordering, analysis.strategy, r.required, r.why, r.pairs_with
            );
        }
    }
    let run = channel_run::<O>(capacity, Duration::from_millis(500));
    let _ = writeln!(
        evidence,
        "Run on a fresh OptimizedChannel<_, {}> of capacity {capacity} (the channel passed in was \
         not touched): {} producers and {} consumers on {} CPU(s), {} messages of four words \
         each sent and {} received, {} Full and {} empty answers.",
        O::NAME,
        run.producers,
        run.consumers,
        thread::available_parallelism().map_or(1, |n| n.get()),
        run.sent,
        run.received,
        run.full,
        run.empty
    );
    match &run.problem {
        None => {
            let _ = writeln!(
                evidence,
                "Every message was received exactly once, in per-producer order, with its check \
                 words intact (no torn or stale read), and exactly {} drops ran for {} messages \
                 (no leak, no double drop). A use after free that corrupts nothing visible is \
                 not observable this way; the loom models and Miri in CI check the cell \
                 hand-off for that.",
                run.dropped, run.created
            );
        }
        Some(p) => {
            holds = false;
            let _ = writeln!(evidence, "CONTRADICTION: {p}");
        }
    }
    let plan = HistoryPlan {
        capacity,
        threads: usize::MAX,
        budget: Duration::from_millis(if cfg!(miri) { 0 } else { 400 }),
        variants: "a fresh channel each",
    };
    match check_fifo_histories(&plan, |_| {
        OptimizedChannel::<u64, O>::with_strategy(capacity)
    }) {
        Ok(text) => evidence.push_str(&text),
        Err(text) => {
            holds = false;
            evidence.push_str(&text);
        }
    }
    Proof {
        property: CORRECTNESS,
        holds,
        bound: None,
        observed: None,
        argument: CORRECTNESS_ARGUMENT,
        evidence,
    }
}

/// A [`Proof`] that `channel`'s algorithm under strategy `O` loses and
/// duplicates no message, never reads a torn value, never uses a cell after
/// its value was moved out, and is linearizable; with evidence from a short
/// run on a fresh channel of the same capacity and strategy (see the
/// [module docs](self)). About a second; never panics; the channel itself
/// is not touched.
///
/// ```
/// use waitless::channel::{memory_analysis::prove_correctness, OptimizedChannel};
///
/// let proof = prove_correctness(&OptimizedChannel::<u64>::new(8));
/// assert!(proof.holds, "{proof}");
/// ```
pub fn prove_correctness<T, O: OrderingStrategy>(channel: &OptimizedChannel<T, O>) -> Proof {
    correctness_with::<O>(channel.capacity(), &Orderings::of::<O>())
}

#[cfg(test)]
mod tests;
