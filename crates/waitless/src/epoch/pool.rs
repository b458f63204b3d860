//! Intrusive retire lists and a free list of recycled blocks, per
//! participant record: the stack's node cache.
//!
//! A structure whose retired objects are all blocks of one layout, each
//! starting with an `AtomicPtr` link word ([`Link`]), can retire them here
//! instead of deferring a closure per object. A retired block is pushed on
//! the record's *open* list (a few instructions, no allocation); every
//! [`POOL_BATCH`] retirements the open list is *sealed* with the global
//! epoch read by an RMW (the seal lemma, `docs/rcu.md` §4, exactly as for a
//! bag), and a sealed batch whose epoch is two behind the global one is
//! *expired*: spliced onto the record's free list, from which the owner's
//! next allocations take blocks. No closure, no bag, no garbage-list CAS and
//! no allocator call in the steady state.
//!
//! # Why reuse cannot cause ABA
//!
//! A block reaches the free list only
//! - after its grace period: it was unlinked before the RMW that sealed its
//!   batch at epoch `e`, and the owner saw the global epoch at `e + 2` or
//!   later with an Acquire load (or the RMW itself); every thread pinned at
//!   the unlink has unpinned since, and its accesses happen before the reuse
//!   (the same argument as for a sealed bag's functions); or
//! - through [`Pool::put_free`], for a block that was never published (an
//!   elimination exchange), whose address no other thread ever read.
//!
//! Linking a retired block writes its link word while a stale reader (pinned
//! before the unlink) may still load it: the word is atomic, so that is no
//! data race. A stale popper uses the value only in a CAS on the head that
//! fails (the head no longer holds the block, and cannot again before the
//! block is reused, i.e. before the stale reader unpinned). The one walker,
//! the stack's node count with statistics off, may follow a retired block's
//! link into its retire chain; that stays memory-safe because a retired
//! block links only to blocks that expire no earlier than itself (its own
//! batch, a same-epoch batch merged into it, or a chain handed to the
//! garbage list as a whole), and the count is then too high, which the
//! statistics already allow while operations are in flight.
//!
//! A record whose sealed backlog exceeds the free list's cap (its owner
//! pops without pushing, or the epoch is held back) hands the whole backlog
//! to the garbage list as one deferred free, where any thread's collection
//! reaches it: a thread that stops popping keeps at most one cap's worth
//! sealed plus its open list (fewer than [`pool_batch`] blocks, at most 2
//! KiB or 32 blocks, which only its owner seals: on its next retirements,
//! periodic pin, flush or exit).
//!
//! # Memory
//!
//! The free list holds at most [`POOL_FREE_BYTES`] bytes (and at least
//! [`POOL_FREE_MIN`] blocks) per record, or, in a pool allowed to grow
//! ([`Pool::new`]'s `max_bytes`, the stack's), the largest retired backlog
//! that an empty free list found waiting, up to `max_bytes` (see
//! [`Pool::missed`]); the rest goes back to the allocator. Retired blocks wait as long as any garbage does (an epoch
//! scheme cannot bound that while a thread stays pinned). A thread that
//! exits frees its free list and hands its retired blocks to the collector's
//! garbage list; dropping the collector frees everything.

use core::alloc::Layout;
use core::ptr;

use crate::sync::atomic::{AtomicPtr, Ordering};

use super::internal::epoch_at_least;

/// The most retirements between two seals of the open list: a pool of
/// small blocks seals every [`POOL_BATCH_BYTES`] (128 blocks of 16 bytes),
/// one of blocks of 64 bytes or more every [`POOL_BATCH_MIN`] blocks (see
/// [`pool_batch`]).
#[cfg(not(any(loom, miri)))]
pub(crate) const POOL_BATCH: usize = 128;
#[cfg(any(loom, miri))]
pub(crate) const POOL_BATCH: usize = 2;

/// The fewest retirements between two seals (blocks of 64 bytes or more).
#[cfg(not(any(loom, miri)))]
const POOL_BATCH_MIN: usize = 32;

/// The bytes of blocks that make an open list due (within
/// [`POOL_BATCH_MIN`]..=[`POOL_BATCH`] blocks).
#[cfg(not(any(loom, miri)))]
const POOL_BATCH_BYTES: usize = 2048;

/// Retirements between two seals for blocks of `size` bytes: at most 2 KiB
/// of blocks, 32 to 128 of them. Fewer seals mean fewer RMWs on the global
/// epoch's line; the open list is what a thread that stops popping keeps
/// unsealed (only its owner seals it), so it stays small in bytes. loom and
/// Miri: [`POOL_BATCH`] (2).
pub(crate) fn pool_batch(size: usize) -> usize {
    #[cfg(not(any(loom, miri)))]
    {
        (POOL_BATCH_BYTES / size.max(1)).clamp(POOL_BATCH_MIN, POOL_BATCH)
    }
    #[cfg(any(loom, miri))]
    {
        let _ = size;
        POOL_BATCH
    }
}

/// Bytes of recycled blocks a record's free list keeps at most (the
/// starting bound of a pool that may grow, see [`Pool::new`]).
pub(crate) const POOL_FREE_BYTES: usize = 64 * 1024;

/// Blocks a record's free list may keep whatever their size.
pub(crate) const POOL_FREE_MIN: usize = 16;

/// The first word of every pooled block.
#[repr(C)]
pub(crate) struct Link {
    pub(crate) next: AtomicPtr<Link>,
}

/// A chain of retired blocks, linked through [`Link::next`].
#[derive(Clone, Copy)]
struct Batch {
    head: *mut Link,
    tail: *mut Link,
    len: usize,
    /// The epoch it was sealed with (meaningless for the open list).
    epoch: usize,
}

impl Batch {
    const EMPTY: Batch = Batch {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
        epoch: 0,
    };
}

/// One record's pool. Owner-only (it lives in the record's `LocalState`).
pub(crate) struct Pool {
    /// The layout of every block (set by the first block that enters).
    layout: Option<Layout>,
    free: *mut Link,
    free_len: usize,
    /// The most blocks `free` keeps now (from `layout`): starts at
    /// `cap_min`, grows towards `cap_max` (see [`Pool::missed`]).
    free_cap: usize,
    /// `free_cap`'s starting value ([`POOL_FREE_BYTES`], at least
    /// [`POOL_FREE_MIN`] blocks).
    cap_min: usize,
    /// `free_cap`'s bound (`max_bytes`, at least `cap_min` blocks).
    cap_max: usize,
    /// The byte bound `cap_max` is computed from once the layout is known.
    max_bytes: usize,
    /// `layout`'s size (0 before the first block).
    block_size: usize,
    /// Blocks ever retired here (wrapping). Monotonic, so that its mirror
    /// doubles as a count of the owner's retirements (the stack's pops,
    /// `Participant::retired_in`) at no cost beyond the mirror store the
    /// retirement already made.
    retired_in: usize,
    /// Blocks that left the retired set (expired or handed off; wrapping).
    /// `retired_in - retired_out` blocks are retired, open and sealed.
    retired_out: usize,
    /// The open list. Its `len` is not kept up to date on the hot path:
    /// the open list's length is `retired_in - (seal_at - POOL_BATCH)`
    /// (one counter per retirement instead of two; see
    /// [`Pool::take_open`]).
    open: Batch,
    /// `retired_in` at which the open list is due to be sealed: its value
    /// when the open list was last emptied, plus `batch`. A retirement
    /// compares the two (no length to count).
    seal_at: usize,
    /// Retirements between two seals ([`pool_batch`] of the block size;
    /// [`POOL_BATCH`] until the first block sets the layout).
    batch: usize,
    /// Sealed batches, oldest first; at most two are ever unexpired (see
    /// [`Pool::seal`]).
    sealed: [Batch; 2],
}

impl Pool {
    /// An empty pool whose free list keeps at most [`POOL_FREE_BYTES`] and
    /// may grow to `max_bytes` (no growth when `max_bytes` is at most
    /// [`POOL_FREE_BYTES`]).
    pub(crate) const fn new(max_bytes: usize) -> Self {
        Self {
            layout: None,
            free: ptr::null_mut(),
            free_len: 0,
            free_cap: 0,
            cap_min: 0,
            cap_max: 0,
            max_bytes,
            block_size: 0,
            retired_in: 0,
            retired_out: 0,
            open: Batch::EMPTY,
            seal_at: POOL_BATCH,
            batch: POOL_BATCH,
            sealed: [Batch::EMPTY; 2],
        }
    }

    #[inline]
    fn set_layout(&mut self, layout: Layout) {
        if self.layout.is_none() {
            self.layout = Some(layout);
            self.block_size = layout.size();
            self.cap_min = (POOL_FREE_BYTES / layout.size().max(1)).max(POOL_FREE_MIN);
            self.cap_max = (self.max_bytes / layout.size().max(1)).max(self.cap_min);
            self.free_cap = self.cap_min;
            // No block was retired before the layout was set: the open list
            // is empty and counts from here.
            debug_assert_eq!(self.open_len(), 0);
            self.batch = pool_batch(layout.size());
            self.seal_at = self.retired_in.wrapping_add(self.batch);
        }
        debug_assert_eq!(self.layout, Some(layout), "one layout per pool");
    }

    /// The size of this pool's blocks (0 before the first block).
    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes of recycled blocks on the free list.
    pub(crate) fn free_bytes(&self) -> usize {
        self.free_len * self.block_size
    }

    /// Retired blocks not sealed yet.
    pub(crate) fn open_len(&self) -> usize {
        self.retired_in
            .wrapping_sub(self.seal_at)
            .wrapping_add(self.batch)
    }

    /// Takes the open list out (with its length), leaving it empty.
    fn take_open(&mut self) -> Batch {
        let mut open = core::mem::replace(&mut self.open, Batch::EMPTY);
        open.len = self.open_len();
        self.seal_at = self.retired_in.wrapping_add(self.batch);
        open
    }

    /// Retired blocks not yet expired (open and sealed).
    #[inline]
    pub(crate) fn retired(&self) -> usize {
        let n = self.retired_in.wrapping_sub(self.retired_out);
        debug_assert_eq!(n, self.open_len() + self.sealed[0].len + self.sealed[1].len);
        n
    }

    /// Blocks ever retired into this pool (wrapping).
    #[inline]
    pub(crate) fn retired_in(&self) -> usize {
        self.retired_in
    }

    /// Blocks that ever left this pool's retired set (wrapping).
    pub(crate) fn retired_out(&self) -> usize {
        self.retired_out
    }

    /// A recycled block (its [`Link`] is initialized; the rest holds no
    /// value), or null.
    #[inline]
    pub(crate) fn take(&mut self) -> *mut u8 {
        let b = self.free;
        if b.is_null() {
            self.missed();
            return ptr::null_mut();
        }
        // SAFETY: blocks on the free list are this record's alone (module
        // docs) and start with a `Link`.
        // Relaxed: the block is private; no other thread accesses it.
        let next = unsafe { (*b).next.load(Ordering::Relaxed) };
        self.free = next;
        self.free_len -= 1;
        // Start loading the next block, whose link the next take reads.
        // The working set of a pool (free list plus the blocks waiting out
        // their grace period) is a few thousand blocks, larger than L1:
        // without this the link load of every take missed L1 (5 % of a
        // one-thread push+pop pair in `perf annotate`).
        crate::utils::prefetch(next);
        b.cast()
    }

    /// A take found the free list empty, so the caller goes to the
    /// allocator. If blocks of this pool are still waiting out their grace
    /// period (the epoch is held back, typically by a thread descheduled
    /// while pinned), the free list was too small to bridge that wait:
    /// raise its bound to the waiting backlog (up to `cap_max`), so that
    /// when the backlog expires it is kept for the next wait instead of
    /// being handed back to the allocator (and the owner's pushes to the
    /// allocator again). The bound only grows, to the largest backlog this
    /// record has seen, until [`Pool::free_all_free`] (thread exit, stack
    /// drop) resets it; those blocks were allocated and held anyway while
    /// they waited.
    #[cold]
    #[inline(never)]
    fn missed(&mut self) {
        let retired = self.retired();
        if retired > 0 && self.free_cap < self.cap_max {
            self.free_cap = (retired + self.batch).clamp(self.free_cap, self.cap_max);
        }
    }

    /// The free list's current bound, in blocks.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn free_cap(&self) -> usize {
        self.free_cap
    }

    /// Keeps `b`, a block nobody else can access (never published, or past
    /// its grace period), for reuse, or frees it when the free list is full.
    ///
    /// # Safety
    /// 1. `b` was allocated with `layout` by the global allocator, starts
    ///    with an initialized [`Link`], holds no other live value, and no
    ///    other thread can access it any more.
    pub(crate) unsafe fn put_free(&mut self, b: *mut u8, layout: Layout) {
        self.set_layout(layout);
        if self.free_len < self.free_cap {
            let l = b.cast::<Link>();
            // SAFETY: precondition 1: the block is ours and starts with an
            // initialized `Link`. Relaxed: private block.
            unsafe { (*l).next.store(self.free, Ordering::Relaxed) };
            self.free = l;
            self.free_len += 1;
        } else {
            // SAFETY: precondition 1.
            unsafe { std::alloc::dealloc(b, layout) };
        }
    }

    /// Retires `b`; returns `true` when the open list is due to be sealed.
    ///
    /// # Safety
    /// 1. `b` was allocated with `layout`, starts with a `Link`, its value
    ///    was moved out, and it is unlinked: no thread can reach it from
    ///    shared memory any more (pinned threads that already hold it may
    ///    still load its link word).
    #[inline]
    pub(crate) unsafe fn retire(&mut self, b: *mut u8, layout: Layout) -> bool {
        let l = b.cast::<Link>();
        // SAFETY: precondition 1: the block is alive until its grace period
        // ends. Relaxed: the link is read only by this thread (a stale
        // reader's value is only used in a CAS that fails, module docs).
        unsafe { (*l).next.store(self.open.head, Ordering::Relaxed) };
        if self.open.head.is_null() {
            self.open.tail = l;
            self.set_layout(layout);
        }
        self.open.head = l;
        self.retired_in = self.retired_in.wrapping_add(1);
        // The open list holds `batch` blocks exactly here: it grows
        // by one per retirement, and whoever gets `true` seals it
        // (`Global::retire_block`), which empties it.
        self.retired_in == self.seal_at
    }

    /// Seals the open list with `epoch`, which the caller read from the
    /// global epoch with an RMW after every retirement in it; first expires
    /// what `epoch` allows. Returns the number of blocks sealed.
    ///
    /// Invariant: the sealed batches have increasing epochs, all read by
    /// RMWs on the global epoch (so at most `epoch`). After expiring those
    /// at or below `epoch - 2`, at most one with `epoch - 1` and one with
    /// `epoch` remain, and a new batch with `epoch` merges into the latter:
    /// two slots always suffice.
    pub(crate) fn seal(&mut self, epoch: usize) -> usize {
        // SAFETY: `epoch` came from an RMW on the global epoch, which
        // synchronizes with the advance that produced it (see `expire`).
        unsafe { self.expire(epoch) };
        let n = self.open_len();
        if n == 0 {
            return 0;
        }
        let mut open = self.take_open();
        open.epoch = epoch;
        let slot = if self.sealed[1].len > 0 {
            1
        } else if self.sealed[0].len > 0 {
            0
        } else {
            self.sealed[0] = open;
            return n;
        };
        if self.sealed[slot].epoch == epoch {
            // Merge: the open chain goes in front of the batch.
            let b = &mut self.sealed[slot];
            // SAFETY: `open.tail` is a retired block of ours; Relaxed as in
            // `retire`.
            unsafe { (*open.tail).next.store(b.head, Ordering::Relaxed) };
            b.head = open.head;
            b.len += open.len;
        } else if slot == 0 {
            self.sealed[1] = open;
        } else {
            debug_assert!(false, "three unexpired epochs in a pool");
            // Unreachable by the invariant; stay safe anyway: merge into the
            // newest batch under the newer (later-expiring) epoch.
            let b = &mut self.sealed[1];
            // SAFETY: as above.
            unsafe { (*open.tail).next.store(b.head, Ordering::Relaxed) };
            b.head = open.head;
            b.len += open.len;
            b.epoch = epoch;
        }
        n
    }

    /// Moves every sealed batch whose epoch is two or more behind `global`
    /// to the free list (or the allocator).
    ///
    /// # Safety
    /// 1. `global` was read from the global epoch with Acquire (or an RMW)
    ///    by this thread, so every advance up to it happens before this call.
    pub(crate) unsafe fn expire(&mut self, global: usize) {
        for i in 0..2 {
            let b = self.sealed[i];
            if b.len > 0 && epoch_at_least(global, b.epoch.wrapping_add(2)) {
                self.sealed[i] = Batch::EMPTY;
                self.retired_out = self.retired_out.wrapping_add(b.len);
                // SAFETY: precondition 1 and the module docs: the batch's
                // grace period has ended.
                unsafe { self.recycle_chain(b) };
            }
        }
        if self.sealed[0].len == 0 && self.sealed[1].len > 0 {
            self.sealed[0] = core::mem::replace(&mut self.sealed[1], Batch::EMPTY);
        }
    }

    /// Splices `b` onto the free list up to its capacity; frees the rest.
    ///
    /// # Safety
    /// 1. No other thread can access any block of `b` any more.
    unsafe fn recycle_chain(&mut self, b: Batch) {
        let Some(layout) = self.layout else {
            return;
        };
        if self.free_len + b.len <= self.free_cap {
            // SAFETY: precondition 1; `b.tail` is the chain's last block.
            // Relaxed: private blocks.
            unsafe { (*b.tail).next.store(self.free, Ordering::Relaxed) };
            self.free = b.head;
            self.free_len += b.len;
            return;
        }
        let mut cur = b.head;
        for _ in 0..b.len {
            // SAFETY: precondition 1: a private block of the chain.
            let next = unsafe { (*cur).next.load(Ordering::Relaxed) };
            // SAFETY: precondition 1; allocated with `layout`, empty.
            unsafe { self.put_free(cur.cast(), layout) };
            cur = next;
        }
    }

    /// Whether more blocks wait in sealed batches than the free list may
    /// hold: the owner then hands them to the collector's garbage list (see
    /// `Global::seal_pool`), which bounds what one thread keeps private.
    pub(crate) fn over_retained(&self) -> bool {
        self.retired() > self.free_cap.max(POOL_FREE_MIN)
    }

    /// Takes every retired block (open and sealed) out as one chain, for
    /// the collector's garbage list. `None` if there is none.
    pub(crate) fn take_retired(&mut self) -> Option<(RetiredChain, usize)> {
        let layout = self.layout?;
        let mut chain = RetiredChain {
            head: ptr::null_mut(),
            layout,
        };
        let mut len = 0;
        self.retired_out = self.retired_in;
        for b in [
            self.take_open(),
            core::mem::replace(&mut self.sealed[0], Batch::EMPTY),
            core::mem::replace(&mut self.sealed[1], Batch::EMPTY),
        ] {
            if b.len > 0 {
                // SAFETY: `b.tail` is a retired block of ours. Relaxed as
                // in `retire`.
                unsafe { (*b.tail).next.store(chain.head, Ordering::Relaxed) };
                chain.head = b.head;
                len += b.len;
            }
        }
        (len > 0).then_some((chain, len))
    }

    /// Returns the free list to the allocator and its bound to the
    /// starting one.
    pub(crate) fn free_all_free(&mut self) {
        let Some(layout) = self.layout else {
            return;
        };
        self.free_cap = self.cap_min;
        let chain = RetiredChain {
            head: core::mem::replace(&mut self.free, ptr::null_mut()),
            layout,
        };
        self.free_len = 0;
        // SAFETY: free-list blocks are private and empty.
        unsafe { chain.free() };
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Only dropped with its record, when the collector is dropped: no
        // thread is pinned, so retired blocks are past any grace period.
        if let Some((chain, _)) = self.take_retired() {
            // SAFETY: as above: nobody can access them.
            unsafe { chain.free() };
        }
        let Some(layout) = self.layout else {
            return;
        };
        let chain = RetiredChain {
            head: core::mem::replace(&mut self.free, ptr::null_mut()),
            layout,
        };
        self.free_len = 0;
        // SAFETY: private, empty blocks.
        unsafe { chain.free() };
    }
}

/// A null-terminated chain of empty blocks of one layout, to be freed once
/// safe. Three words, so a closure owning it is stored inline in a bag.
pub(crate) struct RetiredChain {
    head: *mut Link,
    layout: Layout,
}

impl RetiredChain {
    /// Frees every block.
    ///
    /// # Safety
    /// 1. No thread can access any block of the chain any more, and the
    ///    chain is freed once.
    pub(crate) unsafe fn free(self) {
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: precondition 1. Relaxed: private blocks.
            let next = unsafe { (*cur).next.load(Ordering::Relaxed) };
            // SAFETY: precondition 1; every block was allocated with
            // `layout` (one layout per pool).
            unsafe { std::alloc::dealloc(cur.cast(), self.layout) };
            cur = next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn block(layout: Layout) -> *mut u8 {
        // SAFETY: `layout` has a non-zero size.
        let b = unsafe { std::alloc::alloc(layout) };
        assert!(!b.is_null());
        // SAFETY: fresh block, large enough for a `Link`.
        unsafe {
            b.cast::<Link>().write(Link {
                next: AtomicPtr::new(ptr::null_mut()),
            })
        };
        b
    }

    /// Retires `n` blocks with a take miss before each (as the stack's
    /// pushes do while the epoch is held back), seals them at epoch 0 and
    /// expires them at epoch 2; returns the free list's length after that.
    fn held_epoch_round(p: &mut Pool, layout: Layout, n: usize) -> usize {
        for _ in 0..n {
            let b = p.take();
            let b = if b.is_null() { block(layout) } else { b };
            // SAFETY: a block of `layout` that no other thread can reach.
            unsafe { p.retire(b, layout) };
        }
        p.seal(0);
        // SAFETY: a test: no other thread, so every grace period is over.
        unsafe { p.expire(2) };
        p.free_len
    }

    /// The open list is due to be sealed exactly at every `POOL_BATCH`-th
    /// retirement after it was last emptied, also across the wrap of the
    /// retirement counter, and its derived length is right throughout
    /// (sealed early, taken out, or counted).
    #[test]
    fn the_open_list_is_due_every_batch_across_the_counter_wrap() {
        let layout = Layout::new::<[u64; 2]>();
        let mut p = Pool::new(POOL_FREE_BYTES);
        // Start just below the wrap.
        p.retired_in = usize::MAX - POOL_BATCH - 1;
        p.retired_out = p.retired_in;
        p.seal_at = p.retired_in.wrapping_add(POOL_BATCH);
        let mut epoch = 0;
        for round in 0..4 {
            for i in 1..=POOL_BATCH {
                // SAFETY: a fresh block of `layout` that no other thread
                // can reach.
                let due = unsafe { p.retire(block(layout), layout) };
                assert_eq!(due, i == POOL_BATCH, "round {round}, retirement {i}");
                assert_eq!(p.open_len(), i);
            }
            assert_eq!(p.seal(epoch), POOL_BATCH);
            assert_eq!(p.open_len(), 0);
            epoch += 1;
        }
        // A seal before the batch is full empties the open list too, and the
        // next batch counts from there.
        // SAFETY: as above.
        assert!(!unsafe { p.retire(block(layout), layout) });
        assert_eq!(p.seal(epoch), 1);
        for i in 1..=POOL_BATCH {
            // SAFETY: as above.
            let due = unsafe { p.retire(block(layout), layout) };
            assert_eq!(due, i == POOL_BATCH);
        }
        assert_eq!(
            p.retired(),
            p.open_len() + p.sealed[0].len + p.sealed[1].len
        );
        // Waiting now: the batch sealed at epoch 3, the one block sealed at
        // 4 (the seals at 2, 3 and 4 expired the batches of 0, 1 and 2 onto
        // the free list) and the full open list.
        assert_eq!(p.retired(), 2 * POOL_BATCH + 1);
        assert_eq!(p.free_len, 3 * POOL_BATCH);
        let (chain, n) = p.take_retired().expect("retired blocks");
        assert_eq!(n, 2 * POOL_BATCH + 1);
        assert_eq!(p.open_len(), 0);
        assert_eq!(p.retired(), 0);
        // SAFETY: a test: no other thread.
        unsafe { chain.free() };
    }

    /// Small blocks seal every 2 KiB (up to 128 of them), blocks of 64
    /// bytes or more every 32 (as every pool did before); loom and Miri 2.
    #[test]
    fn the_seal_batch_is_two_kib_of_blocks_between_32_and_128() {
        if cfg!(miri) {
            assert_eq!(pool_batch(16), 2);
            return;
        }
        assert_eq!(pool_batch(8), 128);
        assert_eq!(pool_batch(16), 128);
        assert_eq!(pool_batch(32), 64);
        assert_eq!(pool_batch(64), 32);
        assert_eq!(pool_batch(552), 32);
        // A pool takes its batch from its first block.
        let layout = Layout::new::<[u64; 8]>();
        let mut p = Pool::new(POOL_FREE_BYTES);
        for i in 1..=32 {
            // SAFETY: a fresh block of `layout` that no other thread can
            // reach.
            let due = unsafe { p.retire(block(layout), layout) };
            assert_eq!(due, i == 32);
        }
        assert_eq!(p.seal(0), 32);
    }

    /// A pool that may grow keeps a backlog larger than its starting bound
    /// after its grace period (up to its own bound); one that may not
    /// returns the excess to the allocator; `free_all_free` resets the
    /// bound.
    #[test]
    fn the_free_list_grows_to_the_waiting_backlog_and_resets() {
        let layout = Layout::new::<[u64; 2]>();
        let start = POOL_FREE_BYTES / layout.size();
        let n = if cfg!(miri) { start + 100 } else { 3 * start };
        let mut fixed = Pool::new(POOL_FREE_BYTES);
        assert_eq!(held_epoch_round(&mut fixed, layout, n), start);
        let mut growing = Pool::new(2 * start * layout.size());
        // The first round grows the bound to the backlog, up to twice the
        // starting bound.
        assert_eq!(held_epoch_round(&mut growing, layout, n), n.min(2 * start));
        assert_eq!(growing.free_cap(), (n - 1 + POOL_BATCH).min(2 * start));
        growing.free_all_free();
        assert_eq!(growing.free_cap(), start);
        assert_eq!(growing.free_len, 0);
    }
}
