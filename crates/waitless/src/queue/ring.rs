//! The type-independent engine of the queue: a ring of slot words that fast
//! (unannounced) and slow (announced, helped) operations change with the
//! same single-word CAS.
//!
//! Nothing here touches a `T`. Values live in *cells* owned by
//! [`super::WaitFreeQueue`]; this module moves cell *indices* between ring
//! slots and per-operation records, and decides every operation's outcome.
//! The proof is in `docs/wait-free-queue.md`; comments name its lemmas.
//!
//! # Words and their bit layouts
//!
//! * `tail`, `head`: ticket hints (`u64`, wrapping): every enqueue /
//!   dequeue ticket below the counter is done, and fewer than `WINDOW` past
//!   it are (round 5: the counters are hints; fast attempts scan the slots
//!   from them). Advanced only by CAS, to a ticket below which every slot
//!   was seen done: no fetch-and-add, so no ticket is ever burned.
//! * `slot[i]` (one per ring position, eight per cache line):
//!   `stamp(30) << 34 | u << 33 | tid(12) << 21 | cell(21)`. For ticket `x`
//!   with lap `ℓ = x >> log2(capacity)`, stamp `2ℓ` (mod 2^30) means
//!   "empty, waiting for the enqueue of `x`" and `2ℓ + 1` "full, waiting for
//!   the dequeue of `x`". `u = 0`: `cell` is the slot's cell. `u = 1`: a
//!   slow operation of record `tid` has filled the slot *for good* (the word
//!   already has its new stamp) and `cell` is the slot's *previous* cell,
//!   which becomes `tid`'s new spare; any thread *finalizes* the word from
//!   the word alone: it writes `tid`'s answer, then clears `u` and puts
//!   `tid`'s request cell in the slot. Nobody advances a ticket past, fills,
//!   or decides `Full`/`None` from a `u = 1` word.
//! * `req` (per record): `seq(40) << 24 | kind << 23 | cell(21)`: the last
//!   request announced on the record (kind 0 enqueue, 1 dequeue; `cell` is
//!   the owner's spare, holding the value for an enqueue).
//! * `resp` (per record): `seq(40) << 24 | state(2) << 22 | payload(22)`:
//!   `state` OK/FAIL with payload = the owner's new spare cell (the answer
//!   to request `seq`), or CLAIM with payload = `ticket mod 2^22`: request
//!   `seq` is still pending and its helpers fill only that ticket. Request
//!   `s` is pending while `resp` is `ANS(s − 1, ·)` or `CLAIM(s, ·)`. Fast
//!   operations write neither word, so between operations `resp` answers
//!   `seq(req)` and no old request can look pending again.
//! * `pending` (one per queue): the number of announced requests not yet
//!   finished. A fast operation that reads it non-zero helps every pending
//!   request to its answer before it starts its own.
//!
//! # Records
//!
//! A thread keeps one chunk-0 record of the queue it uses across its
//! operations ([`Held`], a thread-local): those operations neither claim
//! nor release. Any other operation claims a free record with one CAS
//! (starting at a per-thread hint, usually the record it used last) and
//! then keeps it or releases it when it returns. A kept record is given
//! back when its thread exits or moves to another queue. When all `K`
//! records are taken (kept ones count as taken) the claimer adds a chunk
//! of `K` more; a chunk is allocated at most once per doubling, and the
//! steady per-operation path never allocates.

use crate::sync::atomic::{
    compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*,
};
use crate::utils::CachePadded;
use std::cell::Cell;
// `std`'s `Arc` also under loom: its count synchronizes nothing the models
// check (a held record is handed back through `Record::owner`, which loom
// sees), and loom's `Arc` has no `From<Box<[T]>>`.
use std::sync::Arc;

use super::verification::Steps;
use crate::contention::Site;

/// The fast path's slot CAS (reported by the contention counters).
static FAST_FILL: Site = Site::new("queue.fast_fill");

/// Largest supported capacity (cells are 21-bit indices: `capacity + K ≤
/// 2^20 + 2^12` cells).
pub(crate) const MAX_CAPACITY: usize = 1 << 20;
/// Largest number of thread records (tids are 12 bits).
pub(crate) const MAX_RECORDS: usize = 1 << TID_BITS;
/// Fast-path attempts before an operation announces itself (the patience
/// `P` of the bound).
pub(crate) const PATIENCE: usize = if cfg!(loom) { 2 } else { 8 };

/// How far the ticket counters may lag the done tickets (docs, lemma
/// "tickets"): a fast attempt scans at most this many slots from the counter
/// it read, and moves the counter once per line of this many tickets. A
/// power of two; eight slot words fill a cache line. Under loom 2, so that
/// the small models reach a lagging counter and a full window.
pub(crate) const WINDOW: u64 = if cfg!(loom) { 2 } else { 8 };
const TID_BITS: u32 = 12;
const TID_MASK: u64 = (1 << TID_BITS) - 1;
const CELL_BITS: u32 = 21;
const CELL_MASK: u64 = (1 << CELL_BITS) - 1;
const U_BIT: u64 = 1 << (CELL_BITS + TID_BITS);
const STAMP_SHIFT: u32 = CELL_BITS + TID_BITS + 1;
const STAMP_MASK: u64 = (1 << (64 - STAMP_SHIFT)) - 1;
const SEQ_BITS: u32 = 40;
pub(crate) const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const PAYLOAD_MASK: u64 = (1 << 22) - 1;

const KIND_ENQ: u64 = 0;
const KIND_DEQ: u64 = 1;

/// `resp` states.
const ST_OK: u64 = 0;
const ST_FAIL: u64 = 1;
const ST_CLAIM: u64 = 2;

/// What an operation asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Enqueue,
    Dequeue,
}

/// The answer to one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The operation succeeded (enqueued / dequeued a value).
    pub(crate) ok: bool,
    /// The owner's new spare cell; after a successful dequeue it holds the
    /// value.
    pub(crate) cell: usize,
}

/// Where the counters start. `Start::default()` is the normal queue; tests
/// start them next to their wrap points.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Start {
    /// The sequence number of every record's last answer.
    pub(crate) seq: u64,
    /// The first ticket (`head` and `tail` of the empty queue).
    pub(crate) head: u64,
}

#[inline]
fn pack_req(seq: u64, kind: u64, cell: u64) -> u64 {
    (seq & SEQ_MASK) << 24 | kind << 23 | cell
}
#[inline]
fn pack_resp(seq: u64, state: u64, payload: u64) -> u64 {
    (seq & SEQ_MASK) << 24 | state << 22 | (payload & PAYLOAD_MASK)
}
#[inline]
fn word_seq(w: u64) -> u64 {
    w >> 24
}
#[inline]
fn req_kind(w: u64) -> u64 {
    (w >> 23) & 1
}
#[inline]
fn req_cell(w: u64) -> u64 {
    w & CELL_MASK
}
#[inline]
fn resp_state(w: u64) -> u64 {
    (w >> 22) & 3
}
#[inline]
fn resp_payload(w: u64) -> u64 {
    w & PAYLOAD_MASK
}
/// Request `seq(rq)` is answered in `rs`.
#[inline]
fn answered(rq: u64, rs: u64) -> bool {
    word_seq(rs) == word_seq(rq) && resp_state(rs) != ST_CLAIM
}
/// Request `seq(rq)` is pending: `rs` answers the request before it, or
/// holds a claim for it.
#[inline]
fn is_pending(rq: u64, rs: u64) -> bool {
    let s = word_seq(rq);
    if resp_state(rs) == ST_CLAIM {
        word_seq(rs) == s
    } else {
        word_seq(rs) == s.wrapping_sub(1) & SEQ_MASK
    }
}
#[inline]
fn pack_slot(stamp: u64, u: bool, tid: u64, cell: u64) -> u64 {
    (stamp & STAMP_MASK) << STAMP_SHIFT
        | (u as u64) << (CELL_BITS + TID_BITS)
        | tid << CELL_BITS
        | cell
}
#[inline]
fn slot_stamp(w: u64) -> u64 {
    w >> STAMP_SHIFT
}
#[inline]
fn slot_u(w: u64) -> bool {
    w & U_BIT != 0
}
#[inline]
fn slot_tid(w: u64) -> usize {
    ((w >> CELL_BITS) & TID_MASK) as usize
}

/// Whether a stamp difference `d` (mod 2^30) is positive: the slot is past
/// the stamp it was compared with.
#[inline]
fn ahead(d: u64) -> bool {
    d != 0 && d <= STAMP_MASK >> 1
}

#[inline]
fn slot_cell(w: u64) -> u64 {
    w & CELL_MASK
}

/// `bw = pack_slot(b, false, 0, 0)` (stamp `b`, `u = 0`, `tid = 0`).
/// Whether `w` is `u = 0` with stamp `b`, i.e. the word a fill for `b`
/// replaces: one compare of the bits above `cell`, because every `u = 0`
/// word is written with `tid = 0` (`pack_slot(_, false, 0, _)` everywhere:
/// the initial slots, fast fills, `finalize` and `clear_own`).
#[inline(always)]
fn fillable(w: u64, bw: u64) -> bool {
    let yes = w & !CELL_MASK == bw;
    debug_assert_eq!(yes, !slot_u(w) && slot_stamp(w) == slot_stamp(bw));
    yes
}

/// One thread record: announcement, answer and the owner's private state.
/// Padded so records do not share cache lines.
pub(crate) struct Record {
    req: AtomicU64,
    resp: AtomicU64,
    /// Held by the operation using this record (claimed with a CAS, released
    /// when the operation returns).
    owner: AtomicBool,
    /// The owner's spare cell. Written and read only by the owner (the
    /// `owner` flag's Acquire claim / Release release hands it over), so
    /// Relaxed suffices.
    spare: AtomicU64,
    /// Per side (0: enqueue / `tail`, 1: dequeue / `head`), the ticket after
    /// this record's last fast fill: every ticket below it is done (at that
    /// fill's CAS, lemma "tickets", and for good). A fast attempt scans from
    /// it instead of from the counter when it lies less than `WINDOW`
    /// tickets past the counter. Owner-only, like `spare`.
    hint: [AtomicU64; 2],
    /// The pacing level of the operations on this record (`pace`): how
    /// many fast operations in a row found another thread's work at their
    /// hint. Owner-only, like `spare` (Relaxed); local waiting only, so
    /// not a step. Unused under loom (pacing is off there).
    #[cfg_attr(loom, allow(dead_code))]
    pace: AtomicU32,
    #[cfg(feature = "step-count")]
    pub(crate) max_enq_steps: AtomicU64,
    #[cfg(feature = "step-count")]
    pub(crate) max_deq_steps: AtomicU64,
}

type Chunk = CachePadded<Record>;

impl Record {
    /// The owner's spare cell (owner only; one step).
    #[inline(always)]
    pub(crate) fn spare(&self, steps: &mut Steps) -> u64 {
        // Relaxed: owner-only (see the field).
        let s = self.spare.load(Relaxed);
        steps.tick(1);
        s
    }
}

/// The protocol state of one queue.
pub(crate) struct Ring {
    /// The next enqueue ticket.
    tail: CachePadded<AtomicU64>,
    /// The next dequeue ticket.
    head: CachePadded<AtomicU64>,
    /// Announced requests not yet finished (see the module docs).
    pending: CachePadded<AtomicUsize>,
    slots: Box<[AtomicU64]>,
    /// Record chunk `j` (null until added). Chunk 0 has `2^base_log2`
    /// records, chunk `j ≥ 1` has `2^(base_log2 + j − 1)`; record `r` is
    /// found with `locate`. A chunk pointer is written once (null → chunk)
    /// and freed only by `Drop`.
    chunks: Box<[AtomicPtr<Chunk>]>,
    /// Chunk 0, made with the queue (`chunks[0]` stays null). Shared with
    /// the threads that keep one of its records across operations
    /// ([`Held`]), so that a thread may give its record back after the
    /// queue is gone.
    first: Arc<[Chunk]>,
    /// `first`'s address: a [`Held`] keeps a record of this queue when its
    /// key lies in `first_key .. first_key + first_bytes` (never 0 or
    /// `BUSY`), kept here so the fast path tests it with two loads.
    first_key: usize,
    /// The size of `first` in bytes.
    first_bytes: usize,
    /// The number of usable records `K` (a prefix of whole chunks; only
    /// grows).
    allocated: CachePadded<AtomicUsize>,
    capacity: u64,
    mask: u64,
    /// `2^(STAMP_SHIFT + 1 − log2(capacity))`: `(x & !mask) · lap_scale` is
    /// ticket `x`'s lap shifted to the stamp field, times 2 (`attempt`).
    lap_scale: u64,
    log2_cap: u32,
    base_log2: u32,
    start_seq: u64,
    /// The first ticket (`Start::head`).
    start_ticket: u64,
    /// Test knob (feature `step-count`): yield at the protocol's hook points
    /// so that oversubscribed stress tests preempt operations mid-flight.
    #[cfg(feature = "step-count")]
    pub(crate) yield_hooks: bool,
    /// Test knob: operations on records `r < slow_below` skip the fast path,
    /// so they announce themselves and are finished by helping (0: every
    /// record takes the fast path; `usize::MAX`: none does). Loom models
    /// use a value in between to race a fast operation against a slow one.
    pub(crate) slow_below: usize,
}

/// The outcome of one claim attempt.
pub(crate) enum Claim {
    /// Record `r` is ours until `release`.
    Got(usize),
    /// Every record in the scanned range was taken: chunk `j ≥ 1` must
    /// exist (see `Ring::add_chunk`) and then be scanned; `j = 0`: every
    /// chunk exists, start over.
    Grow(usize),
}

/// The most doublings of the spin after a lost slot CAS: a loser waits at
/// most `2^BACKOFF_LIMIT` spin-loop hints before its next slot load.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const BACKOFF_LIMIT: u32 = 6;

/// Local waiting after a fill CAS lost to another operation (docs §1,
/// "Backing off"): `2^n` spin-loop hints after the operation's `n`-th lost
/// CAS (`n` capped at `BACKOFF_LIMIT`). It touches no shared memory, so it
/// adds no step; it lets the winner finish its next operations while it
/// keeps the slot line, instead of the two threads passing the line back
/// and forth on every operation. Off under loom (a spin is no scheduling
/// point there and would only slow the models).
#[derive(Clone, Copy)]
pub(crate) struct Backoff {
    #[cfg_attr(loom, allow(dead_code))]
    step: u32,
}

impl Backoff {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self { step: 0 }
    }

    /// Called after a lost fill CAS; returns the number of spin-loop hints
    /// it waited (0 under loom).
    #[inline(always)]
    fn lost(&mut self) -> u32 {
        #[cfg(not(loom))]
        {
            let n = 1u32 << self.step;
            for _ in 0..n {
                std::hint::spin_loop();
            }
            if self.step < BACKOFF_LIMIT {
                self.step += 1;
            }
            n
        }
        #[cfg(loom)]
        0
    }
}

/// The most doublings of the pause after a contended fast operation: a
/// thread whose fast operations keep finding other threads' work at their
/// hint waits at most `2^PACE_LIMIT` spin-loop hints after each.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const PACE_LIMIT: u32 = 6;

/// A fast attempt decided its operation (docs §1, "Pacing"). `clean`: it
/// decided at the record's own hint, i.e. no other operation changed a slot
/// on this side since our last one there: the record's pacing `level` goes
/// back to 0. Otherwise another thread is working on the same lines: wait
/// `2^level` spin-loop hints (local work, no step) and raise the level
/// (capped at `PACE_LIMIT`), so that one of two interleaving threads runs
/// on for a while with the lines in its cache instead of the two passing
/// them back and forth on every operation. Returns the hints waited (0
/// under loom, where pacing is off).
///
/// `level` is `Record::pace` of the record the operation runs on: owner-only
/// (a thread keeps its record across its operations, so it is this
/// thread's level), one store on the clean path, no step.
#[inline(always)]
pub(crate) fn pace(level: &AtomicU32, clean: bool) -> u32 {
    #[cfg(not(loom))]
    {
        if clean {
            // Relaxed: owner-only (see `Record::pace`).
            level.store(0, Relaxed);
            0
        } else {
            pace_contended(level)
        }
    }
    #[cfg(loom)]
    {
        let _ = (level, clean);
        0
    }
}

/// `pace(level, false)`, out of line: the uncontended path stays small.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn pace_contended(level: &AtomicU32) -> u32 {
    // Relaxed: owner-only (see `Record::pace`).
    let l = level.load(Relaxed);
    level.store(if l < PACE_LIMIT { l + 1 } else { l }, Relaxed);
    let n = 1u32 << l;
    for _ in 0..n {
        std::hint::spin_loop();
    }
    n
}

/// One fast-path attempt's outcome.
enum Attempt {
    Done(Answer),
    Retry,
}

/// Operations on other queues after which a thread gives its held record
/// back (to hold one of the queue it now uses instead).
#[cfg_attr(loom, allow(dead_code))]
const GIVE_BACK_AFTER: u32 = 64;

/// A record of one queue that a thread keeps across its operations on that
/// queue (docs §1, "Records"): its operations skip the claim CAS and the
/// release. Only chunk-0 records are kept, and only when chunk 0 is at
/// most half of the record space, so at most `base` records of a queue are
/// held by idle threads and a claim always finds `MAX_RECORDS / 2` records
/// that are never held. The record is given back (one `Release` store of
/// its `owner` flag, as `Ring::release` does) when the thread exits (the
/// destructor of the guard thread-local `queue::GiveBackAtExit`, which owns
/// the [`Keeper`]; `Held` itself has no destructor), or when the thread
/// made `GIVE_BACK_AFTER` operations in a row on other queues and keeps a
/// record of one of those instead. The `Keeper`'s `Arc` keeps the records
/// alive until then, even if the queue was dropped.
///
/// While an operation runs on the held record, `key` is [`BUSY`]: an
/// operation that starts on this thread before it returns (a signal
/// handler's, or one the allocator runs from inside `keep`) then claims
/// another record instead of sharing this one, and never changes `Held`. A
/// record whose operation never returned (a panic) is not given back.
#[cfg_attr(loom, allow(dead_code))] // loom: used by the models only
pub(crate) struct Held {
    /// The address of the held record (`&chunk0[rec]` of the held queue;
    /// 0: nothing held; `BUSY`: in use or being changed). It names the
    /// queue too: a record address lies in exactly one queue's chunk 0
    /// while it is held (the `Keeper` keeps that allocation alive).
    key: Cell<usize>,
    /// The held record (null while nothing is held): `key`'s value while
    /// `key` is not `BUSY`. Changed only while `key` is `BUSY`, so an
    /// operation reads it after its own `BUSY` mark (`Ring::enter_held`)
    /// and finds it right even when a signal handler changed `Held` just
    /// before that mark; valid while the `Keeper` keeps the chunk alive.
    ptr: Cell<*const Record>,
    /// Operations on other queues since the last one on the held queue.
    misses: Cell<u32>,
}

/// What a [`Held`] needs kept alive, owned apart from it: chunk 0 of the
/// held queue (keeps `Held::ptr` valid) and the held record's index. `Held`
/// has no drop glue (so the fast path reaches its thread-local with no
/// registration check) and may be freed at thread exit without notice (a
/// `const` thread-local on a target without native thread-locals, e.g.
/// Android, OpenBSD, windows-gnu, is boxed behind an OS key and freed by
/// that key's destructor, in an order of keys the platform picks): the
/// hand-back therefore needs nothing from `Held` but its `BUSY` mark, if it
/// is still there (`Keeper::give_back`).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) struct Keeper {
    chunk: Cell<Option<Arc<[Chunk]>>>,
    rec: Cell<usize>,
}

#[cfg_attr(loom, allow(dead_code))]
impl Keeper {
    /// Nothing kept.
    pub(crate) const fn new() -> Self {
        Self {
            chunk: Cell::new(None),
            rec: Cell::new(0),
        }
    }

    /// Gives the kept record back, if any, after clearing `held` (the
    /// `Held` this keeper was filled with, if it still exists), so that
    /// nothing uses the record afterwards. A record whose last operation
    /// never returned (`held`'s key still `BUSY`) stays taken, as a claimed
    /// record does when its operation panics.
    pub(crate) fn give_back(&self, held: Option<&Held>) {
        let busy = held.is_some_and(|h| {
            let busy = h.key.replace(0) == BUSY;
            h.ptr.set(std::ptr::null());
            busy
        });
        if let Some(chunk) = self.chunk.take() {
            if !busy {
                // Release: pairs with the Acquire claim CAS in `Ring::claim`
                // / `Ring::try_claim_first`, handing the record's `spare`
                // and its finished request to the next owner (as in
                // `Ring::release`).
                chunk[self.rec.get()].owner.store(false, Release);
            }
        }
    }
}

#[cfg_attr(loom, allow(dead_code))]
impl Held {
    /// Nothing held.
    pub(crate) const fn new() -> Self {
        Self {
            key: Cell::new(0),
            ptr: Cell::new(std::ptr::null()),
            misses: Cell::new(0),
        }
    }

    /// Marks the held record in use for one operation; returns the key to
    /// restore with `leave`.
    #[inline(always)]
    pub(crate) fn enter(&self) -> usize {
        let key = self.key.replace(BUSY);
        // SeqCst: a compiler fence only (no other thread reads `Held`):
        // `BUSY` is written before any step of the operation, for a signal
        // handler on this thread (the total order it needs is this thread's
        // program order).
        compiler_fence(SeqCst);
        key
    }

    /// The operation on the held record returned: restore its `key`.
    #[inline(always)]
    pub(crate) fn leave(&self, key: usize) {
        // SeqCst: as in `enter`, after every step of the operation.
        compiler_fence(SeqCst);
        self.key.set(key);
    }
}

// `Held` must have no drop glue (see `Keeper`): the thread-local is then
// reached without a registration check.
const _: () = assert!(!std::mem::needs_drop::<Held>());

/// `Held::key` while the held record is in use or `Held` is being changed
/// (never a chunk address: chunks are cache-line aligned).
#[cfg_attr(loom, allow(dead_code))]
const BUSY: usize = 1;

impl Ring {
    /// A ring with `capacity` slots and an initial chunk of `2^base_log2`
    /// records, its counters starting at `start`. Cells `0..capacity` start
    /// in the slots, cell `capacity + r` is record `r`'s spare.
    pub(crate) fn new(capacity: usize, base_log2: u32, start: Start) -> Self {
        assert!(capacity.is_power_of_two() && capacity <= MAX_CAPACITY);
        assert!(base_log2 <= TID_BITS);
        let log2_cap = capacity.trailing_zeros();
        let cap = capacity as u64;
        // Slot `i` waits for its first ticket at or after `start.head`.
        let slots = (0..capacity)
            .map(|i| {
                let x = start
                    .head
                    .wrapping_add((i as u64).wrapping_sub(start.head) & (cap - 1));
                AtomicU64::new(pack_slot(
                    (x >> log2_cap).wrapping_mul(2),
                    false,
                    0,
                    i as u64,
                ))
            })
            .collect();
        let n_chunks = (TID_BITS - base_log2) as usize + 1;
        let mut ring = Self {
            tail: CachePadded::new(AtomicU64::new(start.head)),
            head: CachePadded::new(AtomicU64::new(start.head)),
            pending: CachePadded::new(AtomicUsize::new(0)),
            slots,
            chunks: (0..n_chunks)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            first: Arc::from(Vec::new()),
            first_key: 0,
            first_bytes: 0,
            allocated: CachePadded::new(AtomicUsize::new(1 << base_log2)),
            capacity: cap,
            mask: cap - 1,
            lap_scale: 1 << (STAMP_SHIFT + 1 - log2_cap),
            log2_cap,
            base_log2,
            start_seq: start.seq & SEQ_MASK,
            start_ticket: start.head,
            #[cfg(feature = "step-count")]
            yield_hooks: false,
            slow_below: 0,
        };
        ring.first = Arc::from(ring.make_chunk(0));
        ring.first_key = ring.first.as_ptr() as usize;
        ring.first_bytes = std::mem::size_of_val(&*ring.first);
        ring
    }

    /// The records of chunk `j`: `(first record, count)`.
    #[inline]
    fn chunk_range(&self, j: usize) -> (usize, usize) {
        let b = self.base_log2 as usize;
        if j == 0 {
            (0, 1 << b)
        } else {
            (1 << (b + j - 1), 1 << (b + j - 1))
        }
    }

    /// The number of record chunks this queue can have.
    pub(crate) fn max_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The initial record count.
    pub(crate) fn base(&self) -> usize {
        1 << self.base_log2
    }

    /// A fresh chunk `j` (records idle, spares `capacity + r`).
    fn make_chunk(&self, j: usize) -> Box<[Chunk]> {
        let (first, n) = self.chunk_range(j);
        let recs: Box<[Chunk]> = (first..first + n)
            .map(|r| {
                CachePadded::new(Record {
                    req: AtomicU64::new(pack_req(self.start_seq, KIND_ENQ, 0)),
                    resp: AtomicU64::new(pack_resp(self.start_seq, ST_OK, 0)),
                    owner: AtomicBool::new(false),
                    spare: AtomicU64::new(self.capacity + r as u64),
                    // The first ticket: nothing below it to skip.
                    hint: [
                        AtomicU64::new(self.start_ticket),
                        AtomicU64::new(self.start_ticket),
                    ],
                    pace: AtomicU32::new(0),
                    #[cfg(feature = "step-count")]
                    max_enq_steps: AtomicU64::new(0),
                    #[cfg(feature = "step-count")]
                    max_deq_steps: AtomicU64::new(0),
                })
            })
            .collect();
        recs
    }

    /// Chunk `j` and the index of record `r` in it.
    #[inline]
    pub(crate) fn locate(&self, r: usize) -> (usize, usize) {
        let b = self.base_log2;
        if r >> b == 0 {
            (0, r)
        } else {
            let j = (usize::BITS - 1 - (r >> b).leading_zeros()) as usize + 1;
            (j, r - (1 << (b as usize + j - 1)))
        }
    }

    /// Record `r` (one step: the chunk pointer). The record must exist:
    /// `r` came from a load of `allocated`, a slot word or an
    /// owner, each of which happens after the chunk was published.
    #[inline]
    pub(crate) fn rec(&self, r: usize, steps: &mut Steps) -> &Record {
        let (j, i) = self.locate(r);
        if j == 0 {
            // Counted like a chunk pointer load, to keep one bound.
            steps.tick(1);
            return &self.first[i];
        }
        // Acquire: pairs with the Release CAS in `add_chunk` (or the
        // constructor), so the chunk's initialised records are visible.
        let c = self.chunks[j].load(Acquire);
        steps.tick(1);
        assert!(
            !c.is_null(),
            "waitless queue: record {r} used before its chunk"
        );
        // SAFETY: a non-null chunk pointer came from `make_chunk(j)` with
        // `chunk_range(j).1 > i` records, lives until `Drop` (which has
        // `&mut self`, so no `&Record` borrowed from `&self` outlives it), and
        // is only accessed through shared references (its fields are atomics).
        unsafe { &*c.add(i) }
    }

    /// The number of records `K` (for `observed_steps` and the docs).
    pub(crate) fn records(&self) -> usize {
        self.allocated.load(SeqCst)
    }

    /// Record `r` for the step-count report (`r < records()`).
    #[cfg(feature = "step-count")]
    pub(crate) fn record(&self, r: usize) -> &Record {
        self.rec(r, &mut Steps::default())
    }

    /// Tries to claim record `hint` directly when it is in chunk 0 (which
    /// always exists): the common case, one CAS on a line this thread
    /// normally owns already (2 steps, counted like a scan's try).
    #[inline]
    pub(crate) fn try_claim_first(&self, hint: usize, steps: &mut Steps) -> bool {
        let Some(rec) = self.first.get(hint) else {
            return false;
        };
        // Acquire: as in `claim`.
        let got = rec
            .owner
            .compare_exchange(false, true, Acquire, Relaxed)
            .is_ok();
        steps.tick(2);
        got
    }

    /// Tries to claim a record. `from = None`: scans the `K` records that
    /// exist, starting at `hint`. `from = Some(j)`: scans chunk `j` only
    /// (after `add_chunk(j)`). Each record is tried with one CAS.
    pub(crate) fn claim(&self, hint: usize, from: Option<usize>, steps: &mut Steps) -> Claim {
        let (lo, n, next) = match from {
            None => {
                // Acquire: pairs with the SeqCst `fetch_max` in `add_chunk`.
                // That RMW then happens before our announcement, so it
                // precedes it in the SeqCst order and every helper's later
                // SeqCst load of `allocated` sees our record (lemma "turn").
                let k = self.allocated.load(Acquire);
                steps.tick(1);
                (0, k, self.chunk_of_total(k))
            }
            Some(j) => {
                let (lo, n) = self.chunk_range(j);
                (lo, n, j + 1)
            }
        };
        let off = hint.wrapping_sub(lo);
        let mut i = if off < n { off } else { off % n };
        for _ in 0..n {
            let r = lo + i;
            let rec = self.rec(r, steps);
            // Acquire: pairs with the Release in `release`, handing over the
            // previous owner's `spare` and its finished request.
            let got = rec
                .owner
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok();
            steps.tick(1);
            if got {
                return Claim::Got(r);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        // All taken: the next chunk (or, with every chunk in use by
        // `MAX_RECORDS` threads, the first one again).
        Claim::Grow(if next < self.chunks.len() { next } else { 0 })
    }

    /// The chunk that starts right after the first `k` records.
    fn chunk_of_total(&self, k: usize) -> usize {
        (k >> self.base_log2).trailing_zeros() as usize + 1
    }

    /// Makes chunk `j` exist and usable: if it is missing, allocates it and
    /// publishes it with one CAS (freeing ours if another thread won); then
    /// raises `allocated` to cover it. Runs only when every existing record
    /// was taken, i.e. when more threads are inside the queue than ever
    /// before (at most `MAX_CHUNKS` times per queue). `make_cells` is called
    /// first so the cells of the new records exist before the records do.
    pub(crate) fn add_chunk(&self, j: usize, make_cells: impl FnOnce(), steps: &mut Steps) {
        // Acquire: as in `rec`.
        if self.chunks[j].load(Acquire).is_null() {
            make_cells();
            steps.tick(2);
            let mine = Box::into_raw(self.make_chunk(j)) as *mut Chunk;
            // Release: publishes the initialised records to `rec`'s Acquire
            // load; AcqRel on failure is not needed (we free ours and read
            // the winner's through `rec`).
            if self.chunks[j]
                .compare_exchange(std::ptr::null_mut(), mine, Release, Relaxed)
                .is_err()
            {
                // SAFETY: `mine` came from `make_chunk(j)` just above and
                // was never published, so we own it.
                unsafe { drop(self.chunk_box(j, mine)) };
            }
            steps.tick(1);
        }
        steps.tick(1);
        let (lo, n) = self.chunk_range(j);
        // SeqCst: joins the total order the helpers' `allocated` loads read
        // from (lemma "turn"); `fetch_max` keeps it monotone.
        self.allocated.fetch_max(lo + n, SeqCst);
        steps.tick(1);
    }

    /// Rebuilds the box of chunk `j` from its raw pointer.
    ///
    /// # Safety
    ///
    /// `p` came from `make_chunk(j)` through `Box::into_raw`, and the caller owns it (it was never
    /// published, or the queue is being dropped).
    unsafe fn chunk_box(&self, j: usize, p: *mut Chunk) -> Box<[Chunk]> {
        let n = self.chunk_range(j).1;
        // SAFETY: by the caller's contract, `p` is the start of a boxed slice
        // of exactly `n` records that nobody else owns.
        unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) }
    }

    /// Gives record `r` back. The caller owns it and has no request pending.
    pub(crate) fn release(&self, r: usize) {
        let rec = self.rec(r, &mut Steps::default());
        // Release: pairs with the Acquire claim in `claim`.
        rec.owner.store(false, Release);
    }

    /// The index of the chunk-0 record at address `key`, if `key` is one
    /// of this queue's chunk-0 record addresses (0 and `BUSY` are not).
    #[inline(always)]
    #[cfg_attr(loom, allow(dead_code))]
    fn held_index(&self, key: usize) -> Option<usize> {
        let off = key.wrapping_sub(self.first_key);
        if off < self.first_bytes {
            Some(off / std::mem::size_of::<Chunk>())
        } else {
            None
        }
    }

    /// The record `held` keeps of this queue, if any and not in use
    /// (thread-local only: no shared-memory step). The caller is `held`'s
    /// thread, which owns the record until it gives it back. (The fast
    /// path uses `enter_held`; this is its test without the mark.)
    #[cfg(test)]
    pub(crate) fn held_record(&self, held: &Held) -> Option<usize> {
        let r = self.held_index(held.key.get());
        if r.is_some() {
            held.misses.set(0);
        } else {
            held.misses.set(held.misses.get().saturating_add(1));
        }
        r
    }

    /// The record `held` keeps of this queue, if any, marked in use
    /// (`Held::enter`) until `leave_held`: one read-and-mark of `key`,
    /// then `ptr` (stable once marked) names the record and its queue.
    /// `None` (nothing marked) when `held` keeps no record of this queue or
    /// its record is in use (we are a signal handler inside an operation of
    /// this thread: `key` was `BUSY`).
    #[inline(always)]
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn enter_held(&self, held: &Held) -> Option<(usize, *const Record)> {
        if held.enter() == BUSY {
            // In use by the operation this one interrupted: leave it so.
            return None;
        }
        // `Held` is stable now: a signal handler that ran before the mark
        // left it whole (`key` = `ptr`), and one that runs after it finds
        // `BUSY` and does not change it. So `ptr` is the held record,
        // whatever `key` was tested as.
        let p = held.ptr.get();
        match self.held_index(p as usize) {
            Some(r) => {
                held.misses.set(0);
                debug_assert!(std::ptr::eq(p, &*self.first[r]));
                // A raw pointer (no `Option` niche test on it): it lies in
                // this queue's chunk 0 at a record boundary, see `begin`.
                Some((r, p))
            }
            None => {
                held.misses.set(held.misses.get().saturating_add(1));
                held.leave(p as usize);
                None
            }
        }
    }

    /// The operation on the record `me` that `enter_held` returned has
    /// returned: unmark it (`key` back to its address).
    #[inline(always)]
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn leave_held(&self, held: &Held, me: &Record) {
        held.leave(me as *const Record as usize);
    }

    /// After an operation on record `r`, claimed by `held`'s thread: keep
    /// `r` in `held` (and its chunk in `keeper`) instead of releasing it, if `r` is in chunk 0, chunk 0
    /// is at most half of the record space, and `held` keeps nothing or a
    /// record of another queue not used for `GIVE_BACK_AFTER` operations
    /// (given back first). Returns whether `r` is kept (then the caller must
    /// not release it).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn keep(&self, held: &Held, keeper: &Keeper, r: usize) -> bool {
        if r >= self.first.len() || self.first.len() > MAX_RECORDS / 2 {
            return false;
        }
        let key = held.key.get();
        if key == BUSY || key != 0 && held.misses.get() < GIVE_BACK_AFTER {
            return false;
        }
        // `BUSY` while `Held` changes, and the old record (whatever is held
        // now, even if a signal handler changed it since the read above)
        // is given back only once `Held` is whole again: a signal handler,
        // or the allocator freeing the old chunk, may run an operation on
        // this thread at any point here.
        // The old record is the keeper's: `held` may have been freed and
        // made afresh meanwhile (see `Keeper`), never the keeper.
        let old = held.enter();
        let old_chunk = keeper.chunk.replace(Some(Arc::clone(&self.first)));
        let old_rec = keeper.rec.replace(r);
        let p: *const Record = &*self.first[r];
        held.ptr.set(p);
        held.misses.set(0);
        held.leave(p as usize);
        if let Some(chunk) = old_chunk {
            debug_assert!(old != BUSY);
            // Release: as in `Keeper::give_back`.
            chunk[old_rec].owner.store(false, Release);
        }
        true
    }

    /// The owner's spare cell (owner only; test helper).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn spare(&self, r: usize, steps: &mut Steps) -> usize {
        self.rec(r, steps).spare(steps) as usize
    }

    #[inline]
    fn hook(&self) {
        #[cfg(feature = "step-count")]
        if self.yield_hooks {
            crate::sync::thread::yield_now();
        }
    }

    /// The stamp meaning "empty, waiting for the enqueue of ticket `x`";
    /// `+ 1` is "full for `x`", `− 1` "full for `x − capacity`" (all mod
    /// 2^30, consistent with tickets wrapping mod 2^64).
    #[inline]
    fn empty_stamp(&self, x: u64) -> u64 {
        (x >> self.log2_cap).wrapping_mul(2) & STAMP_MASK
    }

    #[inline]
    fn slot(&self, x: u64) -> &AtomicU64 {
        let i = (x & self.mask) as usize;
        debug_assert!(i < self.slots.len());
        // SAFETY: `slots` has `capacity` words and `mask = capacity − 1`
        // (a power of two), so `i < capacity`.
        unsafe { self.slots.get_unchecked(i) }
    }

    /// Runs one operation for the owner of record `p` (`me`, whose spare
    /// cell `spare` the caller read) and returns its answer. For an enqueue
    /// the value must already be in the spare cell.
    ///
    /// Wait-free: if requests are pending, help each to its answer; then at
    /// most `PATIENCE` fast attempts; then announce and help our own
    /// request to its answer (docs, theorem 1; the `steps.tick` calls count
    /// every shared-memory access where it happens).
    ///
    /// The common case is inlined into the caller: nothing pending and the
    /// first fast attempt decides. Everything else (helping, the other
    /// `PATIENCE − 1` attempts, the slow path) is `apply_rest`, out of line,
    /// so the fast path keeps few registers live.
    #[inline(always)]
    pub(crate) fn apply(
        &self,
        p: usize,
        me: &Record,
        spare: u64,
        kind: Kind,
        steps: &mut Steps,
    ) -> Answer {
        // SeqCst: an announcement whose `pending` increment precedes this
        // load in the total order is helped before we act (lemma "window").
        let busy = self.pending.load(SeqCst) != 0;
        steps.tick(1);
        let mut backoff = Backoff::new();
        if !busy && self.fast_allowed(p) {
            let a = match kind {
                Kind::Enqueue => self.attempt(&self.tail, 0, spare, me, &mut backoff, steps),
                Kind::Dequeue => self.attempt(&self.head, 1, spare, me, &mut backoff, steps),
            };
            if let Attempt::Done(a) = a {
                return self.answered_fast(me, spare, a, steps);
            }
            return self.apply_rest(p, me, kind, spare, 1, backoff, steps);
        }
        if busy {
            self.help_all(steps);
        }
        self.apply_rest(p, me, kind, spare, 0, backoff, steps)
    }

    /// Whether record `p` may take the fast path (the test knob
    /// `slow_below`; always, in a build without tests, loom or the feature
    /// `step-count`, where nothing can set the knob).
    #[inline(always)]
    fn fast_allowed(&self, p: usize) -> bool {
        #[cfg(any(test, loom, feature = "step-count"))]
        {
            p >= self.slow_below
        }
        #[cfg(not(any(test, loom, feature = "step-count")))]
        {
            let _ = p;
            true
        }
    }

    /// A fast attempt decided `a`: take the new spare.
    #[inline(always)]
    fn answered_fast(&self, me: &Record, spare: u64, a: Answer, steps: &mut Steps) -> Answer {
        // A fast fill returns the slot's previous cell, never our spare (we
        // own it, so no slot holds it); `Full`/`None` returns our spare.
        debug_assert_eq!(a.ok, a.cell as u64 != spare);
        if a.ok {
            me.spare.store(a.cell as u64, Relaxed);
            steps.tick(1);
        }
        a
    }

    /// `apply` after `tried` fast attempts (and, if requests were pending,
    /// after helping them): the remaining `PATIENCE − tried` attempts,
    /// then the slow path.
    #[inline(never)]
    // The inlined fast path hands its whole state over; a struct would be
    // rebuilt on the hot path. (`allow`, not `expect`: the MSRV is 1.80.)
    #[allow(clippy::too_many_arguments)]
    fn apply_rest(
        &self,
        p: usize,
        me: &Record,
        kind: Kind,
        spare: u64,
        tried: usize,
        // By value: the inlined first attempt keeps its copy in a register.
        mut backoff: Backoff,
        steps: &mut Steps,
    ) -> Answer {
        if self.fast_allowed(p) {
            for _ in tried..PATIENCE {
                let a = match kind {
                    Kind::Enqueue => self.attempt(&self.tail, 0, spare, me, &mut backoff, steps),
                    Kind::Dequeue => self.attempt(&self.head, 1, spare, me, &mut backoff, steps),
                };
                if let Attempt::Done(a) = a {
                    return self.answered_fast(me, spare, a, steps);
                }
            }
        }
        self.slow(p, me, kind, spare, steps)
    }

    /// One fast attempt of an enqueue (`ctr = tail`, `before = 0`, `c` our
    /// spare cell holding the value) or a dequeue (`ctr = head`, `before =
    /// 1`, `c` our empty spare cell). An enqueue fills the slot of a ticket
    /// `y` from "empty for `y`" to "full for `y`"; a dequeue takes it from
    /// "full for `y`" to "empty for `y + capacity`". Both leave `c` in the
    /// slot and get the slot's previous cell as their new spare.
    ///
    /// The counter is a hint (docs, lemma "tickets"): every ticket below it
    /// is done and at most `WINDOW` tickets past it are. The attempt reads
    /// it once and scans the slots from there for the first ticket not done
    /// yet, within `WINDOW` tickets; it moves the counter only when its fill
    /// ends a line of `WINDOW` tickets, or when every ticket of the window
    /// was done. A fill that loses its CAS moves on to the next slot without
    /// reading the counter again.
    #[inline(always)]
    fn attempt(
        &self,
        ctr: &AtomicU64,
        before: u64,
        c: u64,
        me: &Record,
        backoff: &mut Backoff,
        steps: &mut Steps,
    ) -> Attempt {
        let hint = &me.hint[before as usize];
        // SeqCst (tickets, slots, requests and answers): one total order,
        // which the linearization points of the docs (§4) are stated in.
        let t = ctr.load(SeqCst);
        // Relaxed: owner-only, like the spare.
        let h = hint.load(Relaxed);
        steps.tick(2);
        let end = t.wrapping_add(WINDOW);
        // Every ticket below `t` is done, and below `h` too (our own last
        // fill): start at `h` when it lies in the window.
        let mut y = if h.wrapping_sub(t) < WINDOW { h } else { t };
        // `y` starts in `t .. end`: the first slot is always read (a
        // do-while loop, no test on entry).
        loop {
            let slot = self.slot(y);
            // The stamp this side changes for ticket `y`: "empty for `y`"
            // (enqueue) or "full for `y`" (dequeue).
            // As a word: `pack_slot(b, false, 0, 0)` (the shift drops the
            // bits above the stamp's 30, i.e. takes it mod 2^30).
            // Computed as `(lap · capacity) · 2^(STAMP_SHIFT + 1 − log2)`:
            // an `and` and a multiply instead of two shifts by a variable.
            // Before the slot's load: the compiler does not reuse plain loads
            // of `self` across an atomic one.
            let bw = (y & !self.mask).wrapping_mul(self.lap_scale) | before << STAMP_SHIFT;
            debug_assert_eq!(bw, (((y >> self.log2_cap) << 1) + before) << STAMP_SHIFT);
            let b = bw >> STAMP_SHIFT;
            let mut w = slot.load(SeqCst);
            steps.tick(1);
            self.hook();
            if fillable(w, bw) {
                // Ours for `y`: every ticket below `y` is done (below `t`
                // by the hint, from `t` on by this scan), so `y` is the
                // first ticket not done at the CAS; one CAS changes the
                // slot for good.
                // `pack_slot(b + 1, false, 0, c)`.
                let fw = bw.wrapping_add(1 << STAMP_SHIFT) | c;
                debug_assert_eq!(fw, pack_slot(b + 1, false, 0, c));
                match slot.compare_exchange(w, fw, SeqCst, SeqCst) {
                    Ok(_) => {
                        FAST_FILL.record(true);
                        steps.tick(1);
                        if y.wrapping_add(1) & (WINDOW - 1) == 0 {
                            // Our fill ends a line: move the hint past it.
                            let _ = ctr.compare_exchange(t, y.wrapping_add(1), SeqCst, SeqCst);
                            steps.tick(1);
                        }
                        hint.store(y.wrapping_add(1), Relaxed);
                        steps.tick(1);
                        // Decided for good and the hint stored: pace (local waiting
                        // only; nothing anyone waits for is pending).
                        let _ = pace(&me.pace, y == h);
                        return Attempt::Done(Answer {
                            ok: true,
                            cell: slot_cell(w) as usize,
                        });
                    }
                    Err(now) => {
                        // Another operation changed the slot for `y` (its
                        // words never return to `w`): judge the new word.
                        FAST_FILL.record(false);
                        steps.tick(1);
                        w = now;
                        let _ = backoff.lost();
                    }
                }
            }
            if slot_u(w) {
                // A slow fill: finish it first; never fill over, pass or
                // decide from a `u = 1` word.
                self.finalize(slot, w, steps);
                return Attempt::Retry;
            }
            // The slot's stamp relative to `b`: 1 or more, ticket `y` is done
            // (for a capacity below `WINDOW` the slot may be laps ahead);
            // −1, full for `y − capacity` (enqueue) / empty for `y`
            // (dequeue).
            let d = slot_stamp(w).wrapping_sub(b) & STAMP_MASK;
            if d == STAMP_MASK {
                // Full for `y − capacity` (enqueue): every ticket below `y`
                // is filled, `y` is not and `y − capacity` is not consumed,
                // so `capacity` elements are in the queue at this load:
                // `Full`. Empty for `y` (dequeue): every ticket below `y` is
                // consumed and `y` is not filled, so the queue is empty at
                // this load: `None` (lemma "full and empty").
                let _ = pace(&me.pace, y == h);
                return Attempt::Done(Answer {
                    ok: false,
                    cell: c as usize,
                });
            }
            if !ahead(d) {
                // Cannot happen (every ticket below `y` is done); be safe.
                return Attempt::Retry;
            }
            y = y.wrapping_add(1);
            if y == end {
                break;
            }
        }
        // Every ticket of the window is done: move the hint past them.
        let _ = ctr.compare_exchange(t, end, SeqCst, SeqCst);
        steps.tick(1);
        Attempt::Retry
    }

    /// Finalizes the `u = 1` word `w` of `slot` from the word alone (docs,
    /// lemma "finalize"): commit the answer of record `tid(w)`'s pending
    /// request (`CLAIM → OK` with the slot's previous cell), then clear `u`
    /// and put that request's cell in the slot. Idempotent; returns once
    /// `w` is no longer in the slot.
    fn finalize(&self, slot: &AtomicU64, w: u64, steps: &mut Steps) {
        let rec = self.rec(slot_tid(w), steps);
        // SeqCst: `req` does not change while `w` is in the slot (its owner
        // clears `w` before it announces again, lemma "finalize"), so if the
        // slot still holds `w` after these loads, `rq` is the request that
        // filled it.
        let rq = rec.req.load(SeqCst);
        let rs = rec.resp.load(SeqCst);
        let still = slot.load(SeqCst) == w;
        steps.tick(3);
        if !still {
            return;
        }
        let s = word_seq(rq);
        if resp_state(rs) == ST_CLAIM && word_seq(rs) == s {
            self.hook();
            // SeqCst: the commit; the owner's `resp` load reads it.
            let _ =
                rec.resp
                    .compare_exchange(rs, pack_resp(s, ST_OK, slot_cell(w)), SeqCst, SeqCst);
            steps.tick(1);
        }
        debug_assert!(
            {
                let now = rec.resp.load(SeqCst);
                slot.load(SeqCst) != w || now == pack_resp(s, ST_OK, slot_cell(w))
            },
            "waitless queue: a u = 1 slot whose request is not committed to it"
        );
        let _ = slot.compare_exchange(
            w,
            pack_slot(slot_stamp(w), false, 0, req_cell(rq)),
            SeqCst,
            SeqCst,
        );
        steps.tick(1);
    }

    /// The slow path of the owner of record `p`: announce, help our own
    /// request to its answer, withdraw, and clear our slot word if it is
    /// still `u = 1` (so that `req` never changes under a `u = 1` word).
    #[cold]
    fn slow(&self, p: usize, me: &Record, kind: Kind, spare: u64, steps: &mut Steps) -> Answer {
        let rq = self.announce(me, kind, spare, steps);
        self.finish_slow(p, me, kind, rq, steps)
    }

    /// Announces the owner's request (`kind`, cell `spare`) on record `me`;
    /// returns the request word.
    fn announce(&self, me: &Record, kind: Kind, spare: u64, steps: &mut Steps) -> u64 {
        // Relaxed: only this owner's requests are answered in `resp`, and
        // none is pending now; the previous owner's last answer reached us
        // through the `owner` hand-off.
        let seq = (word_seq(me.resp.load(Relaxed)) + 1) & SEQ_MASK;
        let kind_bits = match kind {
            Kind::Enqueue => KIND_ENQ,
            Kind::Dequeue => KIND_DEQ,
        };
        let rq = pack_req(seq, kind_bits, spare);
        // SeqCst: the increment precedes the announcement, so every operation
        // that starts after the announcement reads `pending ≠ 0` and helps
        // us before its own work (lemma "window").
        self.pending.fetch_add(1, SeqCst);
        // SeqCst: the announcement; also publishes the value in the spare
        // cell to every helper that reads it.
        me.req.store(rq, SeqCst);
        steps.tick(3);
        self.hook();
        rq
    }

    /// Helps our announced request `rq` to its answer, withdraws it and
    /// clears our `u = 1` word if it is still there.
    fn finish_slow(&self, p: usize, me: &Record, kind: Kind, rq: u64, steps: &mut Steps) -> Answer {
        let rs = self.help_one(p, rq, steps);
        // SeqCst: with the increment in `announce`.
        self.pending.fetch_sub(1, SeqCst);
        steps.tick(1);
        let a = Answer {
            ok: resp_state(rs) == ST_OK,
            cell: resp_payload(rs) as usize,
        };
        if a.ok {
            self.clear_own(p, kind, req_cell(rq), steps);
        }
        if a.cell as u64 != req_cell(rq) {
            me.spare.store(a.cell as u64, Relaxed);
            steps.tick(1);
        }
        a
    }

    /// After our slow request was committed: if our `u = 1` word is still at
    /// the ticket counter's slot, clear it (it is the only `u = 1` word of
    /// its side, and it holds the counter there until cleared), and move the
    /// counter past it. The counters are hints that may lag the done tickets
    /// (round 5), but a `u = 1` word is only ever filled at the ticket its
    /// helper read from the counter, and the counter cannot pass it, so
    /// while our word is there the counter names it (lemma "finalize").
    fn clear_own(&self, p: usize, kind: Kind, cell: u64, steps: &mut Steps) {
        let (ctr, full_for) = match kind {
            Kind::Enqueue => (&self.tail, 1),
            Kind::Dequeue => (&self.head, 2),
        };
        let x = ctr.load(SeqCst);
        let slot = self.slot(x);
        let w = slot.load(SeqCst);
        steps.tick(2);
        let done = (self.empty_stamp(x) + full_for) & STAMP_MASK;
        // 0: our word's ticket (still `u = 1`, or cleared); 1: consumed
        // already (the counter lags); else the counter moved on.
        let d = slot_stamp(w).wrapping_sub(done) & STAMP_MASK;
        if d > 1 {
            return;
        }
        if d == 0 && slot_u(w) {
            if slot_tid(w) != p {
                return;
            }
            let _ = slot.compare_exchange(w, pack_slot(done, false, 0, cell), SeqCst, SeqCst);
            steps.tick(1);
        }
        let _ = ctr.compare_exchange(x, x.wrapping_add(1), SeqCst, SeqCst);
        steps.tick(1);
    }

    /// Helps every pending request to its answer, in record order.
    #[cold]
    fn help_all(&self, steps: &mut Steps) {
        // SeqCst: counts every record claimed before our `pending` load.
        let k = self.allocated.load(SeqCst);
        steps.tick(1);
        for r in 0..k {
            let rec = self.rec(r, steps);
            // SeqCst: an announcement that precedes our `pending` load is
            // seen (lemma "window").
            let rq = rec.req.load(SeqCst);
            let rs = rec.resp.load(SeqCst);
            steps.tick(2);
            if is_pending(rq, rs) {
                self.help_one(r, rq, steps);
            }
        }
    }

    /// Helps request `rq` of record `r` until it is answered; returns the
    /// answer. At most `4K + 4` rounds (docs, lemma "rounds").
    fn help_one(&self, r: usize, rq: u64, steps: &mut Steps) -> u64 {
        let rec = self.rec(r, steps);
        let enqueue = req_kind(rq) == KIND_ENQ;
        loop {
            // SeqCst: the total order of the lemmas.
            let rs = rec.resp.load(SeqCst);
            steps.tick(1);
            if answered(rq, rs) {
                return rs;
            }
            if !is_pending(rq, rs) {
                // `r` finished `rq` and moved on (we are a stale helper).
                return rs;
            }
            self.help_round(r, rec, rq, rs, enqueue, steps);
        }
    }

    /// One round of helping request `rq` (pending, `resp = rs`) of record
    /// `r`: read the ticket counter of its side and that slot, and act.
    fn help_round(
        &self,
        r: usize,
        rec: &Record,
        rq: u64,
        rs: u64,
        enqueue: bool,
        steps: &mut Steps,
    ) {
        let ctr = if enqueue { &self.tail } else { &self.head };
        // SeqCst: as in the fast path.
        let x = ctr.load(SeqCst);
        let slot = self.slot(x);
        let w = slot.load(SeqCst);
        steps.tick(2);
        self.hook();
        // `before`: the stamp this side fills (empty for `x` / full for `x`).
        let before = (self.empty_stamp(x) + u64::from(!enqueue)) & STAMP_MASK;
        let after = (before + 1) & STAMP_MASK;
        // As in the fast attempts: 0 fillable, ahead: done (the counter
        // lags), −1 FAIL; `u = 1`: finalize first.
        let d = slot_stamp(w).wrapping_sub(before) & STAMP_MASK;
        if slot_u(w) {
            self.finalize(slot, w, steps);
            return;
        }
        let seq = word_seq(rq);
        if ahead(d) {
            // Ticket `x` is done (for a capacity below `WINDOW` the slot may
            // be laps ahead of a lagging counter): move the counter on.
            let _ = ctr.compare_exchange(x, x.wrapping_add(1), SeqCst, SeqCst);
            steps.tick(1);
        } else if d == STAMP_MASK {
            // Full (enqueue) / empty (dequeue) at this load: the answer is
            // FAIL, unless the request was claimed or answered meanwhile.
            let _ = rec.resp.compare_exchange(
                rs,
                pack_resp(seq, ST_FAIL, req_cell(rq)),
                SeqCst,
                SeqCst,
            );
            steps.tick(1);
        } else if d == 0 {
            // Claim ticket `x` for this request: from now on its helpers
            // fill only `x`, and nobody decides FAIL while `x` is empty
            // (lemma "claim"). The CAS runs even when `rs` already is this
            // claim word: it checks that `resp` still holds `rs`, i.e. that
            // the request was pending throughout our counter load. A claim
            // keeps only `x mod 2^22`, so a helper that read `CLAIM(s, x)`,
            // stalled while `s` was answered and the counter ran on by 2^22,
            // would otherwise fill `x + 2^22` for an idle record.
            let claim = pack_resp(seq, ST_CLAIM, x);
            let ok = rec.resp.compare_exchange(rs, claim, SeqCst, SeqCst).is_ok();
            steps.tick(1);
            if !ok {
                return;
            }
            self.hook();
            let fw = pack_slot(after, true, r as u64, slot_cell(w));
            let ok = slot.compare_exchange(w, fw, SeqCst, SeqCst).is_ok();
            steps.tick(1);
            if ok {
                self.finalize(slot, fw, steps);
            }
        }
        // Anything else cannot happen (every ticket below the counter is
        // done).
    }

    /// The first ticket at or after `ctr` whose slot is not done for its
    /// side (`full_for` 1: filled, tail; 2: consumed, head), looking at most
    /// `WINDOW` tickets past the counter (every ticket below the counter is
    /// done, and at most `WINDOW` past it are: lemma "tickets"). Exact when
    /// quiescent. Not an operation's step: used by `len` and `Drop`.
    fn frontier(&self, ctr: &AtomicU64, full_for: u64) -> u64 {
        // SeqCst: the order of the loads, as in the operations.
        let mut y = ctr.load(SeqCst);
        for _ in 0..WINDOW {
            let w = self.slot(y).load(SeqCst);
            let done = (self.empty_stamp(y) + full_for) & STAMP_MASK;
            let d = slot_stamp(w).wrapping_sub(done) & STAMP_MASK;
            if d != 0 && !ahead(d) {
                break;
            }
            y = y.wrapping_add(1);
        }
        y
    }

    /// The cells holding values, oldest first, for `Drop` (exclusive
    /// access: every operation returned, so no `u = 1` word is left and the
    /// full slots are exactly the tickets from the first one not consumed,
    /// which is less than `WINDOW` past `head`).
    pub(crate) fn quiescent_cells(&self) -> impl Iterator<Item = usize> + '_ {
        let h = self.frontier(&self.head, 2);
        (0..self.capacity)
            .map(move |i| {
                let x = h.wrapping_add(i);
                (x, self.slot(x).load(Relaxed))
            })
            .take_while(move |&(x, w)| slot_stamp(w) == (self.empty_stamp(x) + 1) & STAMP_MASK)
            .map(|(_, w)| slot_cell(w) as usize)
    }

    /// The queue length: filled minus consumed tickets, each found from its
    /// counter by `frontier`, from a read of the tail side, the head side,
    /// the tail side in which the tail side did not move (up to three
    /// tries), clamped to `0..=capacity`. Exact when quiescent.
    pub(crate) fn len(&self) -> usize {
        let mut len = 0;
        for _ in 0..3 {
            let t = self.frontier(&self.tail, 1);
            let h = self.frontier(&self.head, 2);
            len = (t.wrapping_sub(h) as i64).clamp(0, self.capacity as i64);
            if self.frontier(&self.tail, 1) == t {
                break;
            }
        }
        len as usize
    }
}

#[cfg(test)]
impl Ring {
    /// Test check (quiescent queue): every cell is in exactly one place —
    /// one slot (no `u = 1` word left) or one record's spare. A commit with
    /// the wrong word, a lost or a doubled cell breaks it.
    pub(crate) fn cells_partition(&self) -> bool {
        let k = self.records();
        let mut seen = vec![0u32; self.capacity as usize + k];
        let mut steps = Steps::default();
        for s in self.slots.iter() {
            let w = s.load(SeqCst);
            if slot_u(w) {
                return false;
            }
            match seen.get_mut(slot_cell(w) as usize) {
                Some(n) => *n += 1,
                None => return false,
            }
        }
        for r in 0..k {
            let c = self.rec(r, &mut steps).spare.load(Relaxed) as usize;
            match seen.get_mut(c) {
                Some(n) => *n += 1,
                None => return false,
            }
        }
        seen.iter().all(|&n| n == 1)
    }
}

#[cfg(all(test, not(loom)))]
impl Ring {
    /// Test hook: announce a request on record `p` (claimed by the caller)
    /// and stop, as if its thread stalled right after announcing.
    pub(crate) fn test_announce(&self, p: usize, kind: Kind) -> u64 {
        let mut steps = Steps::default();
        let me = self.rec(p, &mut steps);
        let spare = me.spare.load(Relaxed);
        self.announce(me, kind, spare, &mut steps)
    }

    /// Test hook: the stalled owner of `p` resumes its announced `rq`.
    pub(crate) fn test_finish(&self, p: usize, kind: Kind, rq: u64) -> Answer {
        let mut steps = Steps::default();
        let me = self.rec(p, &mut steps);
        self.finish_slow(p, me, kind, rq, &mut steps)
    }

    /// Test hook: whether request `rq` of record `p` is answered.
    pub(crate) fn test_answered(&self, p: usize, rq: u64) -> bool {
        let rec = self.rec(p, &mut Steps::default());
        answered(rq, rec.resp.load(SeqCst))
    }

    /// Test hook (quiescent queue, enqueue `rq` of `p` announced, a free
    /// slot at `tail`): a helper claims the ticket, fills the slot with `u =
    /// 1` and commits the answer, then stalls before clearing `u`; the owner
    /// reads its answer and withdraws from `pending`, then stalls too (the
    /// one moment a `u = 1` word can be met with `pending = 0`).
    pub(crate) fn test_commit_and_stall(&self, p: usize, rq: u64) -> Answer {
        let rec = self.rec(p, &mut Steps::default());
        let seq = word_seq(rq);
        // `tail` may lag the filled tickets (lemma "tickets"): move it to
        // the first one not filled, as helpers do one ticket at a time.
        let x = self.frontier(&self.tail, 1);
        let t = self.tail.load(SeqCst);
        let _ = self.tail.compare_exchange(t, x, SeqCst, SeqCst);
        let slot = self.slot(x);
        let w = slot.load(SeqCst);
        assert_eq!(slot_stamp(w), self.empty_stamp(x), "no free slot at tail");
        let claim = pack_resp(seq, ST_CLAIM, x);
        let rs = rec.resp.load(SeqCst);
        assert!(rec.resp.compare_exchange(rs, claim, SeqCst, SeqCst).is_ok());
        let fw = pack_slot(self.empty_stamp(x) + 1, true, p as u64, slot_cell(w));
        assert!(slot.compare_exchange(w, fw, SeqCst, SeqCst).is_ok());
        let ans = pack_resp(seq, ST_OK, slot_cell(w));
        assert!(rec
            .resp
            .compare_exchange(claim, ans, SeqCst, SeqCst)
            .is_ok());
        self.pending.fetch_sub(1, SeqCst);
        Answer {
            ok: true,
            cell: slot_cell(w) as usize,
        }
    }

    /// Test hook: the owner stalled by `test_commit_and_stall` resumes:
    /// clears its `u = 1` word if it is still there and takes its new spare.
    pub(crate) fn test_resume(&self, p: usize, kind: Kind, rq: u64, a: Answer) {
        let mut steps = Steps::default();
        if a.ok {
            self.clear_own(p, kind, req_cell(rq), &mut steps);
        }
        self.rec(p, &mut steps).spare.store(a.cell as u64, Relaxed);
    }

    /// Test hook: a helper of request `rq` of record `p` (announced, a free
    /// slot at its counter) reads `resp`, the counter `x` and slot `x`, and
    /// claims ticket `x` for the request, then stalls before its fill.
    /// Returns the claim word, i.e. what any later helper reads in `resp`.
    pub(crate) fn test_claim(&self, p: usize, rq: u64) -> u64 {
        let rec = self.rec(p, &mut Steps::default());
        let ctr = if req_kind(rq) == KIND_ENQ {
            &self.tail
        } else {
            &self.head
        };
        let rs = rec.resp.load(SeqCst);
        assert!(is_pending(rq, rs) && resp_state(rs) != ST_CLAIM);
        let x = ctr.load(SeqCst);
        let claim = pack_resp(word_seq(rq), ST_CLAIM, x);
        assert!(rec.resp.compare_exchange(rs, claim, SeqCst, SeqCst).is_ok());
        claim
    }

    /// Test hook: a helper that read `resp[p] = rs` while request `rq` was
    /// pending resumes with one help round (as in `help_one`).
    pub(crate) fn test_help_round(&self, p: usize, rq: u64, rs: u64) {
        let mut steps = Steps::default();
        let rec = self.rec(p, &mut steps);
        let enqueue = req_kind(rq) == KIND_ENQ;
        self.help_round(p, rec, rq, rs, enqueue, &mut steps);
    }

    /// The number of tickets after which a claim word's ticket repeats.
    pub(crate) const TEST_CLAIM_PERIOD: u64 = PAYLOAD_MASK + 1;

    /// Test hook: whether some slot holds a `u = 1` word.
    pub(crate) fn test_has_u1(&self) -> bool {
        self.slots.iter().any(|w| slot_u(w.load(SeqCst)))
    }

    /// Test check (quiescent queue): no record has a pending request, so no
    /// finished request can look pending again, and `pending` is zero.
    pub(crate) fn idle_records_agree(&self) -> bool {
        let mut steps = Steps::default();
        self.pending.load(SeqCst) == 0
            && (0..self.records()).all(|r| {
                let rec = self.rec(r, &mut steps);
                let (rq, rs) = (rec.req.load(SeqCst), rec.resp.load(SeqCst));
                answered(rq, rs) && !is_pending(rq, rs)
            })
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        for j in 1..self.chunks.len() {
            let p = self.chunks[j].load(Relaxed);
            if !p.is_null() {
                // SAFETY: `&mut self`: no operation is running and no
                // `&Record` is alive; `p` was published from `make_chunk(j)`
                // and is freed exactly once, here.
                unsafe { drop(self.chunk_box(j, p)) };
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod backoff_tests {
    use super::{pace, AtomicU32, Backoff, BACKOFF_LIMIT, PACE_LIMIT, PATIENCE, WINDOW};

    /// Pacing: each contended decision in a row waits twice as long as the
    /// one before, up to `2^PACE_LIMIT` spin-loop hints; one clean decision
    /// waits nothing and starts the doubling over (docs §1, "Pacing").
    #[test]
    fn pacing_doubles_is_capped_and_resets_on_a_clean_decision() {
        let level = AtomicU32::new(0);
        assert_eq!(pace(&level, true), 0);
        let spins: Vec<u32> = (0..PACE_LIMIT + 3).map(|_| pace(&level, false)).collect();
        for (i, &n) in spins.iter().enumerate() {
            assert_eq!(n, 1 << (i as u32).min(PACE_LIMIT), "contended decision {i}");
        }
        assert_eq!(pace(&level, true), 0);
        assert_eq!(pace(&level, false), 1);
        assert_eq!(pace(&level, false), 2);
        assert_eq!(pace(&level, true), 0);
        // Per record: another record starts at level 0.
        let other = AtomicU32::new(0);
        assert_eq!(pace(&other, false), 1);
        assert_eq!(pace(&level, false), 1);
    }

    /// The spin after a lost CAS doubles up to `2^BACKOFF_LIMIT` and stays
    /// there, so one operation (at most `PATIENCE · WINDOW` lost fill CASes)
    /// waits at most `PATIENCE · WINDOW · 2^BACKOFF_LIMIT` spin-loop hints
    /// (docs, theorem 1: local work, not steps).
    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut b = Backoff::new();
        let lost = PATIENCE as u32 * WINDOW as u32;
        let spins: Vec<u32> = (0..lost).map(|_| b.lost()).collect();
        for (i, &n) in spins.iter().enumerate() {
            assert_eq!(n, 1 << (i as u32).min(BACKOFF_LIMIT), "lost CAS {i}");
        }
        let total: u32 = spins.iter().sum();
        assert!(total <= lost << BACKOFF_LIMIT);
        assert_eq!(b.lost(), 1 << BACKOFF_LIMIT);
    }
}
