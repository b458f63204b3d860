//! The type-independent core of the queue: the announce/help protocol on
//! plain 64-bit words.
//!
//! Nothing here touches a `T`. Values live in *cells* owned by
//! [`super::WaitFreeQueue`]; this module moves cell *indices* between ring
//! slots and per-thread records, and decides every operation's outcome.
//!
//! See `docs/wait-free-queue.md` for the proof; the comments here name the
//! lemma each piece relies on.
//!
//! # Words and their bit layouts
//!
//! * `state` (one per queue): `version << 12 | installer`. `version` (52
//!   bits, wrapping) counts applied operations; `installer` (12 bits) is the
//!   record whose descriptor buffer `version & 1` describes the queue after
//!   that version's operation.
//! * descriptor (two buffers per record, three words each):
//!   - `head`: the dequeue ticket counter (`u64`, wrapping);
//!   - `info`: `len << 36 | result << 34 | tid << 22 | cell` (len ≤ 2^20,
//!     result 2 bits, tid 12 bits, cell 22 bits);
//!   - `seqc`: `cursor << 40 | seq`: the sequence number (40 bits) of the
//!     applied request and the *turn cursor* (12 bits): the record whose
//!     pending request the next version must apply.
//! * `req` (one per record): `seq << 24 | kind << 23 | cell` — the request
//!   the record's current owner made last (kind 0 = enqueue, 1 = dequeue;
//!   `cell` is the owner's spare cell, holding the value for an enqueue).
//! * `resp` (one per record): `seq << 24 | ok << 23 | cell` — the answer to
//!   request `seq`; `cell` is the owner's new spare (for a dequeue, the cell
//!   holding the value). Request `seq` of a record is *pending* exactly
//!   while `seq(req) = seq(resp) + 1 (mod 2^40)`. Between operations
//!   `seq(req) = seq(resp)`: the fast path writes `req` after its answer, so
//!   an old request can never look pending again, however many operations
//!   the record runs (the sequence numbers wrap freely).
//! * `slot` (one per ring position): `stamp << 22 | cell`. For ticket `x`
//!   with lap `x >> log2(capacity)`, stamp `2·lap` means "empty, ready for the
//!   enqueue of `x`" and `2·lap + 1` means "full, ready for the dequeue of
//!   `x`". Stamps are kept modulo 2^42, which is consistent with tickets
//!   wrapping modulo 2^64 (2^(65 − log2 capacity) is a multiple of 2^42).
//!
//! # Records
//!
//! Records are held *per operation*: an operation claims a free record with
//! one CAS (starting at a per-thread hint, usually the record it used last),
//! and releases it when it returns. When all `K` records are taken the
//! claimer adds a chunk of `K` more (records come in chunks of doubling
//! size, `K` only grows when more than `K` threads are inside the queue at
//! once, so `K < 2·T` for `T` the most threads ever inside at once, or `K`
//! is the initial record count). A chunk is allocated at most once per
//! doubling; the steady per-operation path never allocates.

use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use crate::utils::CachePadded;

use super::verification::Steps;
use crate::contention::Site;

/// The help loop's `state` CAS (bounded by theorem 1, reported anyway).
static INSTALL: Site = Site::new("queue.install");

/// Largest supported capacity (cells are 22-bit indices; the lengths fit
/// in the descriptor's 21-bit `len` field).
pub(crate) const MAX_CAPACITY: usize = 1 << 20;
/// Largest number of thread records (tids are 12 bits).
pub(crate) const MAX_RECORDS: usize = 1 << TID_BITS;
const TID_BITS: u32 = 12;
const TID_MASK: u64 = (1 << TID_BITS) - 1;
const VER_MASK: u64 = (1 << (64 - TID_BITS)) - 1;
const CELL_BITS: u32 = 22;
const CELL_MASK: u64 = (1 << CELL_BITS) - 1;
const SEQ_BITS: u32 = 40;
pub(crate) const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const STAMP_MASK: u64 = (1 << (64 - CELL_BITS)) - 1;

const KIND_ENQ: u64 = 0;
const KIND_DEQ: u64 = 1;

/// Descriptor results.
const R_NONE: u64 = 0;
const R_ENQ_OK: u64 = 1;
const R_DEQ_OK: u64 = 2;
const R_FAIL: u64 = 3;

/// What an operation asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Enqueue,
    Dequeue,
}

/// The answer to one request.
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
    /// The first ticket (head of the empty queue).
    pub(crate) head: u64,
    /// The initial `state` version.
    pub(crate) version: u64,
}

#[inline]
fn pack_req(seq: u64, kind: u64, cell: u64) -> u64 {
    (seq & SEQ_MASK) << 24 | kind << 23 | cell
}
#[inline]
fn word_seq(w: u64) -> u64 {
    w >> 24
}
#[inline]
fn word_flag(w: u64) -> u64 {
    (w >> 23) & 1
}
#[inline]
fn word_cell(w: u64) -> u64 {
    w & CELL_MASK
}
#[inline]
fn pack_slot(stamp: u64, cell: u64) -> u64 {
    (stamp & STAMP_MASK) << CELL_BITS | cell
}
#[inline]
fn slot_stamp(w: u64) -> u64 {
    w >> CELL_BITS
}
#[inline]
fn pack_state(version: u64, installer: usize) -> u64 {
    (version & VER_MASK) << TID_BITS | installer as u64
}
#[inline]
fn state_parts(st: u64) -> (u64, usize) {
    (st >> TID_BITS, (st & TID_MASK) as usize)
}

/// A decoded descriptor: the queue after one applied operation, that
/// operation, and the turn cursor for the next version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Desc {
    head: u64,
    len: u64,
    result: u64,
    tid: u64,
    cell: u64,
    seq: u64,
    cursor: u64,
}

impl Desc {
    fn info(&self) -> u64 {
        self.len << 36 | self.result << 34 | self.tid << 22 | self.cell
    }
    fn seqc(&self) -> u64 {
        self.cursor << SEQ_BITS | self.seq
    }
    fn from_words(head: u64, info: u64, seqc: u64) -> Self {
        Self {
            head,
            len: info >> 36,
            result: (info >> 34) & 3,
            tid: (info >> 22) & TID_MASK,
            cell: info & CELL_MASK,
            seq: seqc & SEQ_MASK,
            cursor: (seqc >> SEQ_BITS) & TID_MASK,
        }
    }
}

/// One descriptor buffer. Written only by its record's current owner, and
/// only while it is not the current descriptor (lemma "buffer stability"
/// in the docs: the owner writes buffer `v & 1` only after reading a state
/// of version `v - 1`, so the buffer it overwrites holds version `v - 2` or
/// older, which is no longer current).
#[derive(Default)]
struct DescBuf {
    head: AtomicU64,
    info: AtomicU64,
    seqc: AtomicU64,
}

impl DescBuf {
    fn write(&self, d: &Desc) {
        // Release: pairs with the Acquire loads in `read`; a reader that sees
        // any of these words then sees this writer's earlier SeqCst load of
        // `state`, which is what makes the state re-read in `apply` a valid
        // consistency check (docs, lemma "validation").
        self.head.store(d.head, Release);
        self.info.store(d.info(), Release);
        self.seqc.store(d.seqc(), Release);
    }
    fn read(&self) -> Desc {
        // Acquire: pairs with the Release stores in `write`.
        let head = self.head.load(Acquire);
        let info = self.info.load(Acquire);
        let seqc = self.seqc.load(Acquire);
        Desc::from_words(head, info, seqc)
    }
}

/// One thread record: announcement, answer, two descriptor buffers and the
/// owner's private state. Padded so records do not share cache lines.
pub(crate) struct Record {
    req: AtomicU64,
    resp: AtomicU64,
    desc: [DescBuf; 2],
    /// Held by the operation using this record (claimed with a CAS, released
    /// when the operation returns).
    owner: AtomicBool,
    /// The owner's spare cell. Written and read only by the owner (the
    /// `owner` flag's Acquire claim / Release release hands it over), so
    /// Relaxed suffices.
    spare: AtomicU64,
    #[cfg(feature = "step-count")]
    pub(crate) max_enq_steps: AtomicU64,
    #[cfg(feature = "step-count")]
    pub(crate) max_deq_steps: AtomicU64,
}

type Chunk = CachePadded<Record>;

/// The protocol state of one queue.
pub(crate) struct Core {
    state: CachePadded<AtomicU64>,
    slots: Box<[CachePadded<AtomicU64>]>,
    /// Record chunk `j` (null until added). Chunk 0 has `2^base_log2`
    /// records, chunk `j ≥ 1` has `2^(base_log2 + j − 1)`; record `r` is
    /// found with `locate`. A chunk pointer is written once (null → chunk)
    /// and freed only by `Drop`.
    chunks: Box<[AtomicPtr<Chunk>]>,
    /// Chunk 0, made with the queue (`chunks[0]` stays null).
    first: Box<[Chunk]>,
    /// The number of usable records `K` (a prefix of whole chunks; only
    /// grows).
    allocated: CachePadded<AtomicUsize>,
    capacity: u64,
    log2_cap: u32,
    base_log2: u32,
    start_seq: u64,
    /// Test knob (feature `step-count`): yield at the protocol's hook points
    /// so that oversubscribed stress tests preempt operations mid-flight.
    #[cfg(feature = "step-count")]
    pub(crate) yield_hooks: bool,
    /// Test knob: operations on records `r < slow_below` skip the fast path,
    /// so they announce themselves and go through the help loop (0: every
    /// record takes the fast path; `usize::MAX`: none does). Loom models
    /// use a value in between to race a fast operation against a slow one.
    pub(crate) slow_below: usize,
}

/// The outcome of one claim attempt.
pub(crate) enum Claim {
    /// Record `r` is ours until `release`.
    Got(usize),
    /// Every record in the scanned range was taken: chunk `j ≥ 1` must
    /// exist (see `Core::add_chunk`) and then be scanned; `j = 0`: every
    /// chunk exists, start over.
    Grow(usize),
}

impl Core {
    /// A queue core with `capacity` slots and an initial chunk of
    /// `2^base_log2` records, its counters starting at `start`. Cells
    /// `0..capacity` start in the slots, cell `capacity + r` is record `r`'s
    /// spare.
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
                CachePadded::new(AtomicU64::new(pack_slot(
                    (x >> log2_cap).wrapping_mul(2),
                    i as u64,
                )))
            })
            .collect();
        let n_chunks = (TID_BITS - base_log2) as usize + 1;
        let mut core = Self {
            state: CachePadded::new(AtomicU64::new(pack_state(start.version, 0))),
            slots,
            chunks: (0..n_chunks)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            first: Box::new([]),
            allocated: CachePadded::new(AtomicUsize::new(1 << base_log2)),
            capacity: cap,
            log2_cap,
            base_log2,
            start_seq: start.seq & SEQ_MASK,
            #[cfg(feature = "step-count")]
            yield_hooks: false,
            slow_below: 0,
        };
        core.first = core.make_chunk(0);
        // The initial state (version `start.version`, installer 0) reads
        // record 0's buffer `start.version & 1`: the empty queue at
        // `start.head`, cursor 0.
        let d = Desc {
            head: start.head,
            len: 0,
            result: R_NONE,
            tid: 0,
            cell: 0,
            seq: 0,
            cursor: 0,
        };
        // The all-zero buffers already describe it when `start.head` is 0.
        if d.head != 0 {
            let mut steps = Steps::default();
            core.rec(0, &mut steps).desc[(start.version & 1) as usize].write(&d);
        }
        core
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
                let idle = pack_req(self.start_seq, 0, 0);
                CachePadded::new(Record {
                    req: AtomicU64::new(idle),
                    resp: AtomicU64::new(idle),
                    desc: [DescBuf::default(), DescBuf::default()],
                    owner: AtomicBool::new(false),
                    spare: AtomicU64::new(self.capacity + r as u64),
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
    /// `r` came from a load of `allocated`, a validated descriptor or an
    /// owner, each of which happens after the chunk was published.
    #[inline]
    fn rec(&self, r: usize, steps: &mut Steps) -> &Record {
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

    /// The owner's spare cell (owner only).
    pub(crate) fn spare(&self, r: usize, steps: &mut Steps) -> usize {
        let s = self.rec(r, steps).spare.load(Relaxed) as usize;
        steps.tick(1);
        s
    }

    #[inline]
    fn hook(&self) {
        #[cfg(feature = "step-count")]
        if self.yield_hooks {
            crate::sync::thread::yield_now();
        }
    }

    /// Runs one operation for the owner of record `p` and returns its
    /// answer. For an enqueue the value must already be in `p`'s spare cell.
    ///
    /// Wait-free: one fast-path attempt, then at most `K + 2` rounds of the
    /// loop end without returning (docs, theorem 1; the `steps.tick` calls
    /// count every shared-memory access where it happens).
    pub(crate) fn apply(&self, p: usize, kind: Kind, steps: &mut Steps) -> Answer {
        let me = self.rec(p, steps);
        let spare = me.spare.load(Relaxed);
        // Relaxed: only owners write `req`, and `resp` of an idle record is
        // not written by helpers (nothing of it is pending); the previous
        // owner's last answer reached us through the `owner` hand-off.
        let seq = (word_seq(me.resp.load(Relaxed)) + 1) & SEQ_MASK;
        let kind_bits = match kind {
            Kind::Enqueue => KIND_ENQ,
            Kind::Dequeue => KIND_DEQ,
        };
        let my_req = pack_req(seq, kind_bits, spare);
        steps.tick(2);
        if p >= self.slow_below {
            if let Some(a) = self.try_fast(p, me, my_req, steps) {
                return a;
            }
        }
        // SeqCst: the announcement must precede, in the single total order
        // of SeqCst operations, every `state` load of a later installer, so
        // that each installer of a version ≥ (our first read) + 2 sees it
        // (docs, lemma "turn"). Also publishes the value written into the
        // spare cell to whoever reads the request.
        me.req.store(my_req, SeqCst);
        steps.tick(1);
        self.hook();
        loop {
            // SeqCst: pairs with the resp CAS in `complete` (total order
            // with the `state` operations, lemma "answers before versions").
            let r = me.resp.load(SeqCst);
            steps.tick(1);
            if word_seq(r) == seq {
                let a = Answer {
                    ok: word_flag(r) == 1,
                    cell: word_cell(r) as usize,
                };
                me.spare.store(a.cell as u64, Relaxed);
                steps.tick(1);
                return a;
            }
            let Some((st, d)) = self.current(steps) else {
                continue;
            };
            self.complete(&d, steps);
            // Our request may have been applied at a version ≤ `ver`; then
            // its answer is visible now (lemma "answers before versions").
            // SeqCst: as above.
            let done = word_seq(me.resp.load(SeqCst)) == seq;
            steps.tick(1);
            if done {
                continue;
            }
            let mut chosen = (p, my_req);
            let turn = d.cursor as usize;
            if turn != p {
                if let Some(rq) = self.pending(turn, steps) {
                    chosen = (turn, rq);
                }
            }
            let nd = self.next_desc(&d, chosen.0 as u64, chosen.1, steps);
            self.install(st, &nd, p, me, steps);
        }
    }

    /// Loads `state` and the descriptor it names, validated by a second
    /// `state` load (lemma "validation"). `None`: `state` changed in
    /// between (a version was installed).
    #[inline]
    fn current(&self, steps: &mut Steps) -> Option<(u64, Desc)> {
        // SeqCst: the total order of versions (docs, lemma "turn").
        let st = self.state.load(SeqCst);
        steps.tick(1);
        let (ver, inst) = state_parts(st);
        let d = self.rec(inst, steps).desc[(ver & 1) as usize].read();
        steps.tick(3);
        self.hook();
        // SeqCst: validation. If `state` still reads `st`, the installer
        // cannot have overwritten the buffer we read (lemma "validation").
        let st2 = self.state.load(SeqCst);
        steps.tick(1);
        (st2 == st).then_some((st, d))
    }

    /// Writes `nd` into `p`'s buffer for the next version and tries to
    /// install it over `st`; on success completes it. Returns whether it
    /// won.
    #[inline]
    fn install(&self, st: u64, nd: &Desc, p: usize, me: &Record, steps: &mut Steps) -> bool {
        let nv = (state_parts(st).0 + 1) & VER_MASK;
        me.desc[(nv & 1) as usize].write(nd);
        steps.tick(3);
        self.hook();
        // SeqCst: installs version `nv`; the total order of versions. On
        // success, release-publishes the descriptor just written and
        // everything this thread completed before.
        let won = self
            .state
            .compare_exchange(st, pack_state(nv, p), SeqCst, SeqCst)
            .is_ok();
        INSTALL.record(won);
        steps.tick(1);
        if won {
            self.complete(nd, steps);
        }
        won
    }

    /// Record `r`'s announced request if it is pending: `seq(req) =
    /// seq(resp) + 1 (mod 2^40)`. Between operations `seq(req) = seq(resp)`
    /// (an answer is written before the owner's next `req`, and the fast
    /// path writes `req` after its answer), so the test does not depend on
    /// how far the numbers have run or wrapped.
    #[inline]
    fn pending(&self, r: usize, steps: &mut Steps) -> Option<u64> {
        let t = self.rec(r, steps);
        // SeqCst: an announcement of `r` that precedes our `state` load in
        // the total order is seen here (lemma "turn"); a stale answer cannot
        // hide one (lemma "answers before versions").
        let rq = t.req.load(SeqCst);
        let rs = t.resp.load(SeqCst);
        steps.tick(2);
        (word_seq(rq) == (word_seq(rs) + 1) & SEQ_MASK).then_some(rq)
    }

    /// The fast path: one attempt to install our own request *without
    /// announcing it*, allowed only when the next version's turn does not
    /// belong to another record's pending request (so every installed
    /// version still obeys the turn rule, lemma "turn"). `None`: nothing of
    /// ours was installed; announce and take the help loop.
    fn try_fast(&self, p: usize, me: &Record, my_req: u64, steps: &mut Steps) -> Option<Answer> {
        let (st, d) = self.current(steps)?;
        self.complete(&d, steps);
        let turn = d.cursor as usize;
        if turn != p && self.pending(turn, steps).is_some() {
            return None;
        }
        let nd = self.next_desc(&d, p as u64, my_req, steps);
        if !self.install(st, &nd, p, me, steps) {
            return None;
        }
        // SeqCst: `complete` of our own version wrote the answer, or saw it
        // written before the slot swap (lemma "answers before versions").
        let r = me.resp.load(SeqCst);
        assert_eq!(
            word_seq(r),
            word_seq(my_req),
            "waitless queue invariant violated: fast-path answer missing"
        );
        // Release: `req` catches up with the answer, so this request can
        // never look pending (defect "stale request replay"). A helper that
        // reads this `req` (SeqCst load, acquire) then happens-after our
        // load of the answer above, so its `resp` load sees the answer too.
        me.req.store(my_req, Release);
        let a = Answer {
            ok: word_flag(r) == 1,
            cell: word_cell(r) as usize,
        };
        me.spare.store(a.cell as u64, Relaxed);
        steps.tick(3);
        Some(a)
    }

    /// The descriptor after applying request `req` of record `tid` to the
    /// queue described by `d`, with the turn cursor moved on by one over the
    /// records that exist now (at most one step: `allocated`, read only
    /// when the cursor leaves chunk 0, whose records always exist).
    fn next_desc(&self, d: &Desc, tid: u64, req: u64, steps: &mut Steps) -> Desc {
        let step = d.cursor + 1;
        let cursor = if step < self.base() as u64 {
            step
        } else {
            // SeqCst: read after our `state` load in the total order, so it
            // counts every record whose owner announced before that load
            // (lemma "turn").
            let k = self.allocated.load(SeqCst) as u64;
            steps.tick(1);
            if step < k {
                step
            } else {
                0
            }
        };
        let mut n = Desc {
            head: d.head,
            len: d.len,
            result: R_FAIL,
            tid,
            cell: word_cell(req),
            seq: word_seq(req),
            cursor,
        };
        if word_flag(req) == KIND_ENQ {
            if d.len < self.capacity {
                n.result = R_ENQ_OK;
                n.len += 1;
            }
        } else if d.len > 0 {
            n.result = R_DEQ_OK;
            n.head = n.head.wrapping_add(1);
            n.len -= 1;
        }
        n
    }

    /// Performs the side effects of the operation `d` describes, idempotently:
    /// answer the owner first, then swap the ring slot. Every thread does
    /// this for the current descriptor before installing the next version,
    /// so all versions before the current one are complete. A stale `d` does
    /// nothing: its answer CAS expects the previous sequence number and its
    /// slot CAS expects the stamp of a ticket already served.
    fn complete(&self, d: &Desc, steps: &mut Steps) {
        if d.result == R_NONE {
            return;
        }
        let rec = self.rec(d.tid as usize, steps);
        let prev_seq = d.seq.wrapping_sub(1) & SEQ_MASK;
        if d.result == R_FAIL {
            // SeqCst: lemma "answers before versions".
            let cur = rec.resp.load(SeqCst);
            steps.tick(1);
            if word_seq(cur) == prev_seq {
                let ans = pack_req(d.seq, 0, d.cell);
                // SeqCst: as above; also the answer's publication to
                // the owner.
                let _ = rec.resp.compare_exchange(cur, ans, SeqCst, SeqCst);
                steps.tick(1);
            }
            return;
        }
        let (x, before) = if d.result == R_ENQ_OK {
            let x = d.head.wrapping_add(d.len).wrapping_sub(1);
            (x, (x >> self.log2_cap).wrapping_mul(2))
        } else {
            let x = d.head.wrapping_sub(1);
            (x, (x >> self.log2_cap).wrapping_mul(2) | 1)
        };
        let slot = &self.slots[(x & (self.capacity - 1)) as usize];
        // Acquire: pairs with the slot CAS below (of this or an
        // earlier ticket), so the answer written before that swap is
        // visible, and the cell hand-off chain stays ordered.
        let w = slot.load(Acquire);
        steps.tick(1);
        if slot_stamp(w) != before & STAMP_MASK {
            // Already swapped (the answer was written before the
            // swap), or `d` is stale.
            return;
        }
        let old = word_cell(w);
        // SeqCst: lemma "answers before versions".
        let cur = rec.resp.load(SeqCst);
        steps.tick(1);
        if word_seq(cur) == prev_seq {
            let ans = pack_req(d.seq, 1, old);
            // SeqCst: as above.
            let _ = rec.resp.compare_exchange(cur, ans, SeqCst, SeqCst);
            steps.tick(1);
        }
        self.hook();
        // AcqRel: Release publishes the answer (and, through the
        // descriptor chain, the enqueued value's cell contents) to
        // later readers of the slot; Acquire pairs with the previous
        // swap of this slot.
        let _ = slot.compare_exchange(
            w,
            pack_slot(before.wrapping_add(1), d.cell),
            AcqRel,
            Acquire,
        );
        steps.tick(1);
    }

    /// The current descriptor, completed. Needs exclusive access (used by
    /// `Drop`), so no validation is needed.
    fn quiescent(&self) -> Desc {
        let mut steps = Steps::default();
        let st = self.state.load(SeqCst);
        let (ver, inst) = state_parts(st);
        let d = self.rec(inst, &mut steps).desc[(ver & 1) as usize].read();
        self.complete(&d, &mut steps);
        d
    }

    /// The cells holding values, oldest first, for `Drop` (exclusive access).
    pub(crate) fn quiescent_cells(&self) -> impl Iterator<Item = usize> + '_ {
        let d = self.quiescent();
        (0..d.len).map(move |i| {
            let x = d.head.wrapping_add(i);
            word_cell(self.slots[(x & (self.capacity - 1)) as usize].load(Relaxed)) as usize
        })
    }

    /// The queue length at some moment during the call when the read
    /// validates (up to three tries), else the length of a recent
    /// descriptor. Always in `0..=capacity`.
    pub(crate) fn len(&self) -> usize {
        let mut len = 0;
        let mut steps = Steps::default();
        for _ in 0..3 {
            // SeqCst: same validation as in `apply`.
            let st = self.state.load(SeqCst);
            let (ver, inst) = state_parts(st);
            let d = self.rec(inst, &mut steps).desc[(ver & 1) as usize].read();
            len = d.len.min(self.capacity);
            if self.state.load(SeqCst) == st {
                break;
            }
        }
        len as usize
    }
}

#[cfg(all(test, not(loom)))]
impl Core {
    /// Test check (quiescent queue): every record has `seq(req) =
    /// seq(resp)`, so no finished request can look pending again — the
    /// invariant that rules out stale-request replay.
    pub(crate) fn idle_records_agree(&self) -> bool {
        let mut steps = Steps::default();
        (0..self.records()).all(|r| {
            let rec = self.rec(r, &mut steps);
            word_seq(rec.req.load(SeqCst)) == word_seq(rec.resp.load(SeqCst))
                && self.pending(r, &mut steps).is_none()
        })
    }
}

impl Drop for Core {
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
