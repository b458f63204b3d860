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
//! * `state` (one per queue): `version << 8 | installer`. `version` (56 bits)
//!   counts applied operations and never wraps in practice; `installer`
//!   (8 bits) is the record whose descriptor buffer `version & 1` describes
//!   the queue after that version's operation.
//! * descriptor (two buffers per record, three words each):
//!   - `head`: the dequeue ticket counter (`u64`, never wraps in practice);
//!   - `info`: `len << 32 | result << 30 | tid << 22 | cell` (len ≤ 2^20,
//!     result 2 bits, tid 8 bits, cell 22 bits);
//!   - `seq`: the sequence number (40 bits) of the applied request.
//! * `req` (one per record): `seq << 24 | kind << 23 | cell` — the request
//!   the record's owner announced (kind 0 = enqueue, 1 = dequeue; `cell` is
//!   the owner's spare cell, holding the value for an enqueue).
//! * `resp` (one per record): `seq << 24 | ok << 23 | cell` — the answer to
//!   request `seq`; `cell` is the owner's new spare (for a dequeue, the cell
//!   holding the value). The owner's request `seq` is pending exactly while
//!   `seq(req) != seq(resp)`.
//! * `slot` (one per ring position): `stamp << 22 | cell`. For ticket `x`
//!   with lap `x >> log2(capacity)`, stamp `2·lap` means "empty, ready for the
//!   enqueue of `x`" and `2·lap + 1` means "full, ready for the dequeue of
//!   `x`". Stamps are kept modulo 2^42.

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use crate::utils::CachePadded;

use super::verification::Steps;
use crate::contention::Site;

/// The help loop's `state` CAS (bounded by theorem 1, reported anyway).
static INSTALL: Site = Site::new("queue.install");

/// Largest supported capacity (cells are 22-bit indices; the lengths fit
/// in the descriptor's 32-bit `len` field).
pub(crate) const MAX_CAPACITY: usize = 1 << 20;
/// Largest number of thread records (tids are 8 bits).
pub(crate) const MAX_RECORDS: usize = 255;

const CELL_BITS: u32 = 22;
const CELL_MASK: u64 = (1 << CELL_BITS) - 1;
const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
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

/// A decoded descriptor: the queue after one applied operation, and that
/// operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Desc {
    head: u64,
    len: u64,
    result: u64,
    tid: u64,
    cell: u64,
    seq: u64,
}

impl Desc {
    fn info(&self) -> u64 {
        self.len << 32 | self.result << 30 | self.tid << 22 | self.cell
    }
    fn from_words(head: u64, info: u64, seq: u64) -> Self {
        Self {
            head,
            len: info >> 32,
            result: (info >> 30) & 3,
            tid: (info >> 22) & 0xff,
            cell: info & CELL_MASK,
            seq,
        }
    }
}

/// One descriptor buffer. Written only by its record's owner, and only
/// while it is not the current descriptor (lemma "buffer stability" in the
/// docs: the owner writes buffer `v & 1` only after reading a state of
/// version `v - 1`, so the buffer it overwrites holds version `v - 2` or
/// older, which is no longer current).
#[derive(Default)]
struct DescBuf {
    head: AtomicU64,
    info: AtomicU64,
    seq: AtomicU64,
}

impl DescBuf {
    fn write(&self, d: &Desc) {
        // Release: pairs with the Acquire loads in `read`; a reader that sees
        // any of these words then sees this writer's earlier SeqCst load of
        // `state`, which is what makes the state re-read in `apply` a valid
        // consistency check (docs, lemma "validation").
        self.head.store(d.head, Release);
        self.info.store(d.info(), Release);
        self.seq.store(d.seq, Release);
    }
    fn read(&self) -> Desc {
        // Acquire: pairs with the Release stores in `write`.
        let head = self.head.load(Acquire);
        let info = self.info.load(Acquire);
        let seq = self.seq.load(Acquire);
        Desc::from_words(head, info, seq)
    }
}

/// One thread record: announcement, answer, two descriptor buffers and the
/// owner's private state. Padded so records do not share cache lines.
pub(crate) struct Record {
    req: AtomicU64,
    resp: AtomicU64,
    desc: [DescBuf; 2],
    /// Held by the thread using this record (claimed with a CAS).
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

/// The protocol state of one queue.
pub(crate) struct Core {
    state: CachePadded<AtomicU64>,
    slots: Box<[CachePadded<AtomicU64>]>,
    records: Box<[CachePadded<Record>]>,
    capacity: u64,
    log2_cap: u32,
    /// Test knob (feature `step-count`): yield at the protocol's hook points
    /// so that oversubscribed stress tests preempt operations mid-flight.
    #[cfg(feature = "step-count")]
    pub(crate) yield_hooks: bool,
    /// Test knob: `false` skips the fast path, so every operation announces
    /// itself and goes through the help loop (loom models, step tests).
    pub(crate) fast_path: bool,
}

impl Core {
    /// A queue core with `capacity` slots and `records` thread records.
    /// Cells `0..capacity` start in the slots, cell `capacity + r` is record
    /// `r`'s spare.
    pub(crate) fn new(capacity: usize, records: usize) -> Self {
        assert!(capacity.is_power_of_two() && capacity <= MAX_CAPACITY);
        assert!((1..=MAX_RECORDS).contains(&records));
        let slots = (0..capacity)
            .map(|i| CachePadded::new(AtomicU64::new(pack_slot(0, i as u64))))
            .collect();
        let records = (0..records)
            .map(|r| {
                CachePadded::new(Record {
                    req: AtomicU64::new(0),
                    resp: AtomicU64::new(0),
                    desc: [DescBuf::default(), DescBuf::default()],
                    owner: AtomicBool::new(false),
                    spare: AtomicU64::new((capacity + r) as u64),
                    #[cfg(feature = "step-count")]
                    max_enq_steps: AtomicU64::new(0),
                    #[cfg(feature = "step-count")]
                    max_deq_steps: AtomicU64::new(0),
                })
            })
            .collect();
        // The initial state (version 0, installer 0) reads record 0's
        // buffer 0, which `DescBuf::default()` left as head 0, len 0,
        // result NONE: the empty queue.
        Self {
            state: CachePadded::new(AtomicU64::new(0)),
            slots,
            records,
            capacity: capacity as u64,
            log2_cap: capacity.trailing_zeros(),
            #[cfg(feature = "step-count")]
            yield_hooks: false,
            fast_path: true,
        }
    }

    pub(crate) fn records(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn record(&self, r: usize) -> &Record {
        &self.records[r]
    }

    /// Claims a free record: at most `records()` CAS attempts, one per
    /// record, so it is bounded. `None` when every record is taken.
    pub(crate) fn claim(&self, steps: &mut Steps) -> Option<usize> {
        for (i, r) in self.records.iter().enumerate() {
            steps.tick(1);
            // Acquire: pairs with the Release in `release`, handing over the
            // previous owner's `spare` (and its completed request).
            if r.owner
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok()
            {
                return Some(i);
            }
        }
        None
    }

    /// Gives record `r` back. The caller owns it and has no request pending.
    pub(crate) fn release(&self, r: usize) {
        // Release: pairs with the Acquire claim in `claim`.
        self.records[r].owner.store(false, Release);
    }

    /// The owner's spare cell (owner only).
    pub(crate) fn spare(&self, r: usize) -> usize {
        self.records[r].spare.load(Relaxed) as usize
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
    /// Wait-free: one fast-path attempt (at most 21 steps), then at most
    /// `records() + 2` rounds of the loop end without returning, each at
    /// most 21 steps (docs, theorem 1; the `steps.tick`
    /// calls below count every shared-memory access).
    pub(crate) fn apply(&self, p: usize, kind: Kind, steps: &mut Steps) -> Answer {
        let me = &self.records[p];
        let spare = me.spare.load(Relaxed);
        // Relaxed: only the owner writes `resp`'s sequence number forward
        // through requests it made itself; the previous answer was read
        // with SeqCst before that request returned.
        let seq = (word_seq(me.resp.load(Relaxed)) + 1) & SEQ_MASK;
        let kind_bits = match kind {
            Kind::Enqueue => KIND_ENQ,
            Kind::Dequeue => KIND_DEQ,
        };
        let my_req = pack_req(seq, kind_bits, spare);
        steps.tick(2);
        if self.fast_path {
            if let Some(a) = self.try_fast(p, my_req, steps) {
                return a;
            }
        }
        // SeqCst: the announcement must precede, in the single total order
        // of SeqCst operations, every `state` load of a later installer, so
        // that each installer of a version ≥ (our first read) + 2 sees it
        // (docs, lemma "announcement visibility"). Also publishes the value
        // written into the spare cell to whoever reads the request.
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
            // SeqCst: the total order of versions (docs, lemma
            // "announcement visibility").
            let st = self.state.load(SeqCst);
            let (ver, inst) = (st >> 8, (st & 0xff) as usize);
            let d = self.records[inst].desc[(ver & 1) as usize].read();
            self.hook();
            // SeqCst: validation. If `state` still reads `st`, the installer
            // cannot have overwritten the buffer we read (lemma "validation").
            let st2 = self.state.load(SeqCst);
            steps.tick(5);
            if st2 != st {
                continue;
            }
            self.complete(&d, steps);
            // Our request may have been applied at a version ≤ `ver`; then
            // its answer is visible now (lemma "answers before versions").
            // SeqCst: as above.
            let done = word_seq(me.resp.load(SeqCst)) == seq;
            steps.tick(1);
            if done {
                continue;
            }
            let nv = ver + 1;
            let turn = self.turn(nv);
            let mut chosen = (p, my_req);
            if turn != p {
                steps.tick(2);
                if let Some(rq) = self.pending(turn) {
                    chosen = (turn, rq);
                }
            }
            let nd = self.next_desc(&d, chosen.0 as u64, chosen.1);
            me.desc[(nv & 1) as usize].write(&nd);
            self.hook();
            // SeqCst: installs version `nv`; the total order of versions.
            // On success, release-publishes the descriptor just written and
            // everything this thread completed before.
            let won = self
                .state
                .compare_exchange(st, nv << 8 | p as u64, SeqCst, SeqCst)
                .is_ok();
            INSTALL.record(won);
            steps.tick(4);
            if won {
                self.complete(&nd, steps);
            }
        }
    }

    /// The record whose pending request version `v` must apply.
    #[inline]
    fn turn(&self, v: u64) -> usize {
        let k = self.records.len() as u64;
        (if k.is_power_of_two() {
            v & (k - 1)
        } else {
            v % k
        }) as usize
    }

    /// Record `r`'s announced request if it is pending. A request is
    /// pending iff `seq(req) = seq(resp) + 1`: a fast-path operation is
    /// answered without being announced, which leaves `req` one behind.
    #[inline]
    fn pending(&self, r: usize) -> Option<u64> {
        let t = &self.records[r];
        // SeqCst: an announcement of `r` that precedes our `state` load in
        // the total order is seen here (lemma "turn"); a stale answer cannot
        // hide one (lemma "answers before versions").
        let rq = t.req.load(SeqCst);
        let rs = t.resp.load(SeqCst);
        (word_seq(rq) == (word_seq(rs) + 1) & SEQ_MASK).then_some(rq)
    }

    /// The fast path: one attempt to install our own request *without
    /// announcing it*, allowed only when the next version's turn does not
    /// belong to another record's pending request (so every installed
    /// version still obeys the turn rule, lemma "turn"). `None`: nothing of
    /// ours was installed; announce and take the help loop.
    fn try_fast(&self, p: usize, my_req: u64, steps: &mut Steps) -> Option<Answer> {
        // SeqCst: as in the help loop.
        let st = self.state.load(SeqCst);
        let (ver, inst) = (st >> 8, (st & 0xff) as usize);
        let d = self.records[inst].desc[(ver & 1) as usize].read();
        // SeqCst: validation (lemma "validation").
        let st2 = self.state.load(SeqCst);
        steps.tick(5);
        if st2 != st {
            return None;
        }
        self.complete(&d, steps);
        let nv = ver + 1;
        let turn = self.turn(nv);
        if turn != p {
            steps.tick(2);
            if self.pending(turn).is_some() {
                return None;
            }
        }
        let nd = self.next_desc(&d, p as u64, my_req);
        let me = &self.records[p];
        me.desc[(nv & 1) as usize].write(&nd);
        self.hook();
        // SeqCst: installs version `nv` (total order of versions); releases
        // the value written into our spare cell and the descriptor.
        let won = self
            .state
            .compare_exchange(st, nv << 8 | p as u64, SeqCst, SeqCst)
            .is_ok();
        INSTALL.record(won);
        steps.tick(4);
        if !won {
            return None;
        }
        self.complete(&nd, steps);
        // SeqCst: `complete` of our own version wrote the answer, or saw it
        // written before the slot swap (lemma "answers before versions").
        let r = me.resp.load(SeqCst);
        assert_eq!(
            word_seq(r),
            word_seq(my_req),
            "waitless queue invariant violated: fast-path answer missing"
        );
        let a = Answer {
            ok: word_flag(r) == 1,
            cell: word_cell(r) as usize,
        };
        me.spare.store(a.cell as u64, Relaxed);
        steps.tick(2);
        Some(a)
    }

    /// The descriptor after applying request `req` of record `tid` to the
    /// queue described by `d`.
    fn next_desc(&self, d: &Desc, tid: u64, req: u64) -> Desc {
        let mut n = Desc {
            head: d.head,
            len: d.len,
            result: R_FAIL,
            tid,
            cell: word_cell(req),
            seq: word_seq(req),
        };
        if word_flag(req) == KIND_ENQ {
            if d.len < self.capacity {
                n.result = R_ENQ_OK;
                n.len += 1;
            }
        } else if d.len > 0 {
            n.result = R_DEQ_OK;
            n.head += 1;
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
        let rec = &self.records[d.tid as usize];
        let prev_seq = d.seq.wrapping_sub(1) & SEQ_MASK;
        match d.result {
            R_NONE => {}
            R_FAIL => {
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
            }
            _ => {
                let (x, before) = if d.result == R_ENQ_OK {
                    let x = d.head + d.len - 1;
                    (x, 2 * (x >> self.log2_cap))
                } else {
                    let x = d.head - 1;
                    (x, 2 * (x >> self.log2_cap) + 1)
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
                let _ = slot.compare_exchange(w, pack_slot(before + 1, d.cell), AcqRel, Acquire);
                steps.tick(1);
            }
        }
    }

    /// The current descriptor, completed. Needs exclusive access (used by
    /// `Drop`), so no validation is needed.
    fn quiescent(&self) -> Desc {
        let st = self.state.load(SeqCst);
        let d = self.records[(st & 0xff) as usize].desc[((st >> 8) & 1) as usize].read();
        self.complete(&d, &mut Steps::default());
        d
    }

    /// The cells holding values, oldest first, for `Drop` (exclusive access).
    pub(crate) fn quiescent_cells(&self) -> impl Iterator<Item = usize> + '_ {
        let d = self.quiescent();
        (d.head..d.head + d.len).map(move |x| {
            word_cell(self.slots[(x & (self.capacity - 1)) as usize].load(Relaxed)) as usize
        })
    }

    /// The queue length at some moment during the call when the read
    /// validates (up to three tries), else the length of a recent
    /// descriptor. Always in `0..=capacity`.
    pub(crate) fn len(&self) -> usize {
        let mut len = 0;
        for _ in 0..3 {
            // SeqCst: same validation as in `apply`.
            let st = self.state.load(SeqCst);
            let d = self.records[(st & 0xff) as usize].desc[((st >> 8) & 1) as usize].read();
            len = d.len.min(self.capacity);
            if self.state.load(SeqCst) == st {
                break;
            }
        }
        len as usize
    }
}
