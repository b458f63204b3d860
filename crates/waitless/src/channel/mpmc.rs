//! The non-blocking bounded MPMC core: [`OptimizedChannel`].
//!
//! # Algorithm
//!
//! A ring of `capacity` slots (a power of two), each a value cell plus a
//! *stamp* (Vyukov's bounded MPMC queue, 2010; crossbeam's `ArrayQueue` is
//! the same family). Positions are unbounded `usize` counters (wrapping);
//! position `p` lives in slot `p & mask`. A slot's stamp is a packed word
//! that says what the slot is ready for:
//!
//! ```text
//! stamp = (p << 1) | full      (bit 0: full flag; bits 1..: position p,
//!                               whose top bit is dropped)
//! (p << 1)           free: the producer of position p may write it
//! (p << 1) | 1       full: position p's value is written, its consumer may read
//! ((p + cap) << 1)   after the consumer of p read it: free for p + capacity
//! ```
//!
//! The flag bit keeps "full with p" and "free for p + 1" apart even when
//! `capacity == 1` (a plain `p + 1` stamp would confuse them and let a
//! producer overwrite a value its consumer is still moving out).
//!
//! Producer state (`tail`, the next position to write) lives on one cache
//! line, consumer state (`head`) on another. A producer, *stamp first*:
//!
//! 1. loads `tail` = t, then the stamp of slot `t & mask`;
//! 2. if the stamp is free for t, CASes `tail` from t to t + 1; on success it
//!    writes the value and stores the full stamp of t (`Release`); on failure
//!    it goes straight back to step 1 with the tail the CAS returned;
//! 3. if the stamp is from an earlier lap than t (it still holds the value
//!    of position `t - capacity`, or is still free for `t - capacity`
//!    because that position's producer was preempted between its claim and
//!    its stamp store), the channel *may* be full: `SeqCst` fence, load
//!    `head` = h; if `t - h >= capacity` → `Full(value)`; otherwise a peer
//!    is between its claim and its stamp store: spin, reload `tail`, go
//!    to 1;
//! 4. any other stamp (a later lap) means `t` is stale (another producer
//!    claimed it): reload `tail`, go to 1.
//!
//! A consumer mirrors it with `head`: full stamp of h → claim → read → store
//! the free stamp of `h + capacity`; a stamp from an earlier lap than "full
//! for h" (still free for h, or still holding `h - capacity`'s value while
//! that lap's consumer is mid-read) means *maybe empty*: fence, load
//! `tail`, `None` if `tail == h`. So a `send` facing a full ring and a
//! `recv` facing an empty one answer at once even while a peer is
//! preempted inside its claim-to-stamp window (before this, the earlier-lap
//! stamps other than "full for `t - capacity`" / "free for h" were treated
//! as stale and re-read in a loop until that peer ran again).
//!
//! So the fast path reads and writes exactly the slot (value + stamp) and
//! the owning index (`tail` or `head`); the opposite index is read only when
//! the stamp says full/empty, and nothing else is ever written. The core
//! never parks (that is the blocking layer's business). Waiting for a peer
//! between its claim and its stamp store spins, doubling, for about 127
//! spin-loop hints; a wait that outlasts that means the peer is not running
//! (preempted inside its window), and each later wait yields the CPU so
//! that the peer can run, instead of burning the rest of a time slice on a
//! stamp that cannot change (`wait_for_peer`; `docs/channel.md` §8.4).
//!
//! # Full and None are linearizable
//!
//! Linearize a successful send at its `tail` CAS and a successful recv at its
//! `head` CAS; the abstract queue then holds positions `[head, tail)`.
//! Invariant: `head <= tail <= head + capacity` at every moment (a producer
//! claims t only after seeing the free stamp of t, which the consumer of `t - capacity`
//! stores after claiming it, so `head > t - capacity` then; symmetrically a
//! consumer claims h only after the full stamp of h, stored after tail passed h).
//!
//! `Full` is returned after reading `tail` = t, then a `SeqCst` fence, then
//! `head` = h with `t - h >= capacity`. The fence keeps the two loads in that
//! order. When `head` was read, `tail` was at least t (monotonic), and by the
//! invariant at most `h + capacity <= t`; so at that instant tail == t and
//! `tail - head == capacity`: the queue was full, and `Full` linearizes there.
//! `None` is the mirror image (`head` = h, fence, `tail` = t with `t <= h`;
//! at that instant `head <= tail == h` forces `head == tail`).
//!
//! A slot whose stamp says "a lap behind" (send) or "not written yet" (recv)
//! while the opposite index says "not full/empty" belongs to a peer between
//! its claiming CAS and its stamp store. The caller spins and looks again:
//! it never reports a non-linearizable answer.
//!
//! # Progress
//!
//! `send` and `recv` never block on a lock, but the core is not strictly
//! lock-free: a thread preempted between claiming a position and storing
//! its stamp delays the one peer that needs that exact slot (a lap later for
//! producers, immediately for the consumer of that position). Every other
//! thread keeps making progress. This is the trade-off of every stamped
//! array queue (crossbeam `ArrayQueue` included); the wait-free alternative
//! is `waitless::queue`.
//!
//! Positions are `usize` counters; on 32-bit targets a thread stalled for
//! 2^32 operations could see its claiming CAS succeed on a wrapped index
//! (the classic ABA window of every counter-based ring).

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use super::error::ChannelError;
use super::ordering::{Optimized, OrderingStrategy};
use crate::contention::Site;
use crate::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use crate::{Backoff, CachePadded};

static SEND_SITE: Site = Site::new("channel.send");
static RECV_SITE: Site = Site::new("channel.recv");

/// The largest accepted capacity: keeps every index difference well inside
/// `isize`, so signed comparisons of wrapped positions are exact.
pub(crate) const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);

/// How many snapshots [`OptimizedChannel::len`] tries before it settles for
/// an estimate.
const LEN_ATTEMPTS: usize = 8;

/// Waiting for a peer between its claim and its stamp store (it owns the
/// slot we need; its stamp store is a few instructions away).
///
/// A running peer finishes within nanoseconds, so the first waits spin,
/// doubling: `2^0 .. 2^SPIN_LIMIT` spin-loop hints (`Backoff::snooze`'s
/// spin phase, about 127 hints, a few microseconds in all). A wait that
/// outlasts that means the peer is not running (preempted inside its
/// window); every later wait yields the CPU, so that on an oversubscribed
/// machine the preempted peer (or another thread with work) runs instead of
/// this thread burning the rest of its time slice on a stamp that cannot
/// change until the peer is scheduled again. crossbeam-channel
/// (`crossbeam-channel/src/flavors/array.rs`, `start_send`/`start_recv`)
/// waits the same way (`Backoff::snooze`: spin, then `yield_now`) where
/// the stamp belongs to neither the expected position nor the one a lap
/// behind; where the stamp is a lap behind and the other index says "not
/// full/empty" it only spins (`Backoff::spin`), without ever yielding, so
/// there it can burn a whole slice as our core did before (docs/channel.md
/// §8.4). The counter is this call's own: a lost claiming CAS never
/// advances it. Under loom, one yield per call instead:
/// loom needs a scheduling point to let the peer finish, and the spin phase
/// would only multiply the explored interleavings.
#[inline]
fn wait_for_peer(backoff: &Backoff) {
    #[cfg(not(loom))]
    backoff.snooze();
    #[cfg(loom)]
    {
        let _ = backoff;
        crate::sync::thread::yield_now();
    }
}

/// Before re-reading an index that was stale: nothing (the fresh value is
/// one load away). Under loom a yield, so that a model in which the load
/// keeps returning the same value lets the writer run.
#[inline]
fn stale_retry() {
    #[cfg(loom)]
    crate::sync::thread::yield_now();
}

/// The stamp of a slot free for the producer of position `pos`.
#[inline]
fn free_stamp(pos: usize) -> usize {
    pos << 1
}

/// The stamp of a slot holding position `pos`'s value.
#[inline]
fn full_stamp(pos: usize) -> usize {
    (pos << 1) | 1
}

/// One ring slot: the stamp (see the module docs for its values) and the value.
struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// State written by producers: one cache line.
struct ProducerSide {
    /// Next position to claim. Written only by a successful claiming CAS.
    tail: AtomicUsize,
}

/// State written by consumers: another cache line.
struct ConsumerSide {
    /// Next position to take. Written only by a successful claiming CAS.
    head: AtomicUsize,
}

/// A bounded multi-producer multi-consumer channel whose `send` and `recv`
/// never block, generic over the memory-ordering strategy `O`.
///
/// See the [module documentation](crate::channel) for the algorithm and why `Full` and
/// `None` answers are exact (linearizable), and `docs/channel.md` for the
/// proof of every ordering.
///
/// # Examples
///
/// ```
/// use waitless::channel::{ChannelError, OptimizedChannel};
///
/// let ch = OptimizedChannel::<u32>::new(2);
/// ch.send(1).unwrap();
/// ch.send(2).unwrap();
/// assert!(matches!(ch.send(3), Err(ChannelError::Full(3))));
/// assert_eq!(ch.recv(), Some(1));
/// assert_eq!(ch.recv(), Some(2));
/// assert_eq!(ch.recv(), None);
/// ```
///
/// Values must be `Send` for the channel to cross threads:
///
/// ```compile_fail
/// use std::rc::Rc;
/// use waitless::channel::OptimizedChannel;
///
/// let ch = OptimizedChannel::<Rc<u8>>::new(2);
/// std::thread::scope(|s| {
///     s.spawn(|| ch.send(Rc::new(1))); // Rc is not Send: rejected
/// });
/// ```
///
/// The same algorithm compiled with `SeqCst` everywhere:
///
/// ```
/// use waitless::channel::{OptimizedChannel, SeqCstAll};
///
/// let ch: OptimizedChannel<&str, SeqCstAll> = OptimizedChannel::with_strategy(4);
/// ch.send("hi").unwrap();
/// assert_eq!(ch.recv(), Some("hi"));
/// ```
pub struct OptimizedChannel<T, O = Optimized> {
    producer: CachePadded<ProducerSide>,
    consumer: CachePadded<ConsumerSide>,
    /// Set once by [`close`](Self::close); read-mostly, so its own line.
    closed: CachePadded<AtomicBool>,
    buffer: Box<[Slot<T>]>,
    mask: usize,
    _strategy: PhantomData<O>,
}

// SAFETY: the channel owns its values (a `T` moves in through `send` and out
// through `recv` or `Drop`), so sending the channel to another thread sends
// the values: `T: Send` suffices.
unsafe impl<T: Send, O> Send for OptimizedChannel<T, O> {}
// SAFETY: shared access lets any thread move a `T` in or out, so `T: Send` is
// needed and suffices; no `&T` is ever handed out, so `T: Sync` is not.
// Every slot access is exclusive by the stamp protocol (module docs).
unsafe impl<T: Send, O> Sync for OptimizedChannel<T, O> {}

// Unwind safety: no operation runs user code between claiming a slot and
// publishing its stamp, and values move in and out whole, so a panic
// between operations leaves the channel consistent; unwind-safe whenever
// the values are.
impl<T: std::panic::UnwindSafe, O> std::panic::UnwindSafe for OptimizedChannel<T, O> {}
impl<T: std::panic::UnwindSafe, O> std::panic::RefUnwindSafe for OptimizedChannel<T, O> {}

impl<T> OptimizedChannel<T> {
    /// A channel holding at most `capacity` values, with the
    /// [`Optimized`] ordering strategy.
    ///
    /// # Panics
    /// If `capacity` is not a power of two (zero included) or exceeds
    /// `2^(usize::BITS - 2)`.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch: OptimizedChannel<u32> = OptimizedChannel::new(64);
    /// assert_eq!(ch.capacity(), 64);
    /// ```
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::with_strategy(capacity)
    }
}

impl<T, O: OrderingStrategy> OptimizedChannel<T, O> {
    /// A channel holding at most `capacity` values, with strategy `O`.
    ///
    /// # Panics
    /// If `capacity` is not a power of two (zero included) or exceeds
    /// `2^(usize::BITS - 2)`.
    ///
    /// ```
    /// use waitless::channel::{OptimizedChannel, SeqCstAll};
    ///
    /// let ch = OptimizedChannel::<u32, SeqCstAll>::with_strategy(8);
    /// assert_eq!(ch.strategy_name(), "SeqCstAll");
    /// ```
    #[must_use]
    pub fn with_strategy(capacity: usize) -> Self {
        assert!(
            capacity.is_power_of_two(),
            "OptimizedChannel capacity must be a power of two, got {capacity}"
        );
        assert!(
            capacity <= MAX_CAPACITY,
            "OptimizedChannel capacity {capacity} exceeds the maximum {MAX_CAPACITY}"
        );
        let buffer = (0..capacity)
            .map(|i| Slot {
                stamp: AtomicUsize::new(free_stamp(i)),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            producer: CachePadded::new(ProducerSide {
                tail: AtomicUsize::new(0),
            }),
            consumer: CachePadded::new(ConsumerSide {
                head: AtomicUsize::new(0),
            }),
            closed: CachePadded::new(AtomicBool::new(false)),
            buffer,
            mask: capacity - 1,
            _strategy: PhantomData,
        }
    }

    /// The name of the ordering strategy (`"Optimized"`, `"AcquireRelease"`,
    /// `"SeqCstAll"`).
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// assert_eq!(OptimizedChannel::<u8>::new(2).strategy_name(), "Optimized");
    /// ```
    #[must_use]
    pub fn strategy_name(&self) -> &'static str {
        O::NAME
    }

    /// The most values the channel holds.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// assert_eq!(OptimizedChannel::<u8>::new(16).capacity(), 16);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Sends `value` without blocking.
    ///
    /// Returns `Full(value)` if the channel held `capacity` values at a
    /// moment during the call, and `Disconnected(value)` once the channel is
    /// [closed](Self::close). A send racing with `close` may still succeed;
    /// its value is then received by a draining `recv` or dropped with the
    /// channel.
    ///
    /// ```
    /// use waitless::channel::{ChannelError, OptimizedChannel};
    ///
    /// let ch = OptimizedChannel::new(1);
    /// assert_eq!(ch.send('a'), Ok(()));
    /// assert_eq!(ch.send('b'), Err(ChannelError::Full('b')));
    /// ch.close();
    /// assert_eq!(ch.send('c'), Err(ChannelError::Disconnected('c')));
    /// ```
    pub fn send(&self, value: T) -> Result<(), ChannelError<T>> {
        self.send_inner(value, true)
    }

    /// A send for a blocked sender's spin phase (`blocking.rs`): as
    /// [`send`](Self::send), except that where `send` would fence and read
    /// `head` to decide between `Full` and a peer in its window, it answers
    /// `Full` at once. That `Full` is a hint, not linearizable: the caller
    /// spins and retries, and decides to park only after an exact
    /// [`send`](Self::send). A success is exactly a `send`'s success.
    #[inline]
    pub(crate) fn send_spinning(&self, value: T) -> Result<(), ChannelError<T>> {
        self.send_inner(value, false)
    }

    /// `send` (`exact`) or `send_spinning` (not `exact`).
    #[inline(always)]
    fn send_inner(&self, value: T, exact: bool) -> Result<(), ChannelError<T>> {
        // Relaxed: the flag carries no data for a sender; a send that starts
        // after `close` happened-before it sees `true` by coherence.
        if self.closed.load(Ordering::Relaxed) {
            return Err(ChannelError::Disconnected(value));
        }
        let cap = self.capacity();
        let backoff = Backoff::new();
        // INDEX_LOAD: a guess validated by the claiming CAS.
        let mut tail = self.producer.tail.load(O::INDEX_LOAD);
        loop {
            let slot = self.slot(tail);
            // STAMP_LOAD (Acquire in every strategy): pairs with the
            // STAMP_STORE Release of the consumer that emptied this slot a
            // lap earlier, so its read of the old value happens-before our
            // write of the new one.
            let stamp = slot.stamp.load(O::STAMP_LOAD);
            if stamp == free_stamp(tail) {
                match self.producer.tail.compare_exchange_weak(
                    tail,
                    tail.wrapping_add(1),
                    O::CLAIM_SUCCESS,
                    O::CLAIM_FAILURE,
                ) {
                    Ok(_) => {
                        SEND_SITE.record(true);
                        // SAFETY: our CAS claimed position `tail` and the
                        // stamp said the slot is free for it, so no other
                        // thread accesses this cell until we store the
                        // stamp below (producers of `tail` lost the CAS,
                        // consumers wait for the full stamp of `tail`).
                        slot.value.with_mut(|p| unsafe { (*p).write(value) });
                        // STAMP_STORE (Release in every strategy): pairs with
                        // the consumer's STAMP_LOAD Acquire, publishing the
                        // value written just above.
                        slot.stamp.store(full_stamp(tail), O::STAMP_STORE);
                        return Ok(());
                    }
                    Err(current) => {
                        // Another producer claimed `tail`: straight back to
                        // the stamp of the position the CAS returned.
                        SEND_SITE.record(false);
                        tail = current;
                        continue;
                    }
                }
            }
            if (stamp.wrapping_sub(free_stamp(tail)) as isize) < 0 {
                // The slot is still in an earlier lap: it holds the value of
                // `tail - cap` (full, unless that lap's consumer is
                // mid-read), or that value is not even written yet (its
                // producer is preempted between its claim and its stamp
                // store, so `head <= tail - cap`: full). Either way check
                // the indices rather than spin on the stamp, so a `send`
                // facing a full ring answers `Full` instead of waiting for
                // a preempted peer. (In a spin phase, not `exact`: answer
                // `Full` as a hint without the fence and the read of the
                // consumers' line.) SeqCst fence:
                // orders the `tail` load above before the `head` load below
                // (linearizable Full, module docs); in the SeqCst total
                // order it also pairs with a parked receiver's registration
                // (see `blocking.rs`).
                if !exact {
                    return Err(ChannelError::Full(value));
                }
                fence(Ordering::SeqCst);
                // OTHER_INDEX_LOAD: ordered by the fence above.
                let head = self.consumer.head.load(O::OTHER_INDEX_LOAD);
                if tail.wrapping_sub(head) as isize >= cap as isize {
                    return Err(ChannelError::Full(value));
                }
                // Not full: the consumer of `tail - cap` claimed the slot
                // and has not stored its stamp yet (or the stamp moved on
                // since we read it): wait a little, then look again.
                wait_for_peer(&backoff);
            }
            // Otherwise `tail` was stale (another producer claimed it and
            // maybe filled the slot): look at the current tail.
            stale_retry();
            tail = self.producer.tail.load(O::INDEX_LOAD);
        }
    }

    /// The slot of position `pos`.
    #[inline]
    fn slot(&self, pos: usize) -> &Slot<T> {
        // SAFETY: `pos & mask < capacity == buffer.len()`.
        unsafe { self.buffer.get_unchecked(pos & self.mask) }
    }

    /// Receives a value without blocking; `None` if the channel was empty at
    /// a moment during the call.
    ///
    /// After [`close`](Self::close) the values still in the channel are
    /// returned, then `None`.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(2);
    /// assert_eq!(ch.recv(), None::<u8>);
    /// ch.send(1).unwrap();
    /// assert_eq!(ch.recv(), Some(1));
    /// ```
    pub fn recv(&self) -> Option<T> {
        self.recv_inner(true)
    }

    /// A receive for a blocked receiver's spin phase (`blocking.rs`): as
    /// [`recv`](Self::recv), except that where `recv` would fence and read
    /// `tail` to decide between `None` and a producer in its window, it
    /// answers `None` at once. That `None` is a hint, not linearizable: the
    /// caller spins and retries, and reports empty, disconnected or parks
    /// only after an exact [`recv`](Self::recv). A value is exactly a
    /// `recv`'s value. Skipping the read of `tail` matters to the producer:
    /// a waiting receiver that read it would share the line the producer's
    /// next claiming CAS must then take back, one more cross-CPU transfer
    /// on every blocking hand-off.
    #[inline]
    pub(crate) fn recv_spinning(&self) -> Option<T> {
        self.recv_inner(false)
    }

    /// `recv` (`exact`) or `recv_spinning` (not `exact`).
    #[inline(always)]
    fn recv_inner(&self, exact: bool) -> Option<T> {
        let cap = self.capacity();
        let backoff = Backoff::new();
        // INDEX_LOAD: a guess validated by the claiming CAS.
        let mut head = self.consumer.head.load(O::INDEX_LOAD);
        loop {
            let slot = self.slot(head);
            // STAMP_LOAD (Acquire): pairs with the producer's STAMP_STORE
            // Release, so the value it wrote is visible to our read.
            let stamp = slot.stamp.load(O::STAMP_LOAD);
            if stamp == full_stamp(head) {
                match self.consumer.head.compare_exchange_weak(
                    head,
                    head.wrapping_add(1),
                    O::CLAIM_SUCCESS,
                    O::CLAIM_FAILURE,
                ) {
                    Ok(_) => {
                        RECV_SITE.record(true);
                        // SAFETY: the stamp said position `head`'s value is
                        // written (and its Acquire made the write visible);
                        // our CAS claimed the position, so we are its only
                        // reader, and no producer touches the slot before we
                        // store the free stamp of `head + cap` below. Reading moves the
                        // value out; the slot is logically uninitialized again.
                        let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
                        // STAMP_STORE (Release): pairs with the STAMP_LOAD
                        // Acquire of the producer of `head + cap`, so our
                        // read happens-before its overwrite.
                        slot.stamp
                            .store(free_stamp(head.wrapping_add(cap)), O::STAMP_STORE);
                        return Some(value);
                    }
                    Err(current) => {
                        // Another consumer claimed `head`: straight back to
                        // the stamp of the position the CAS returned.
                        RECV_SITE.record(false);
                        head = current;
                        continue;
                    }
                }
            }
            if (stamp.wrapping_sub(full_stamp(head)) as isize) < 0 {
                // The slot is still in an earlier lap: position `head` is
                // not written yet (empty, unless its producer is
                // mid-write), or the slot still holds the value of
                // `head - cap` because that lap's consumer is mid-read (so
                // `head`'s producer cannot have written; empty if nobody
                // claimed `head`). Either way check the indices rather than
                // spin on the stamp. SeqCst fence: orders the `head`
                // load above before the `tail` load below (linearizable
                // None, module docs); in the SeqCst total order it pairs
                // with a parked sender's registration (see `blocking.rs`).
                // In a spin phase (not `exact`): `None` as a hint, without
                // the fence and the read of the producers' line.
                if !exact {
                    return None;
                }
                fence(Ordering::SeqCst);
                // OTHER_INDEX_LOAD: ordered by the fence above.
                let tail = self.producer.tail.load(O::OTHER_INDEX_LOAD);
                if tail.wrapping_sub(head) as isize <= 0 {
                    return None;
                }
                // Not empty: the producer of `head` claimed it and has not
                // stored its stamp yet (or the stamp moved on since we read
                // it): wait a little, then look again.
                wait_for_peer(&backoff);
            }
            // Otherwise `head` was stale: look at the current head.
            stale_retry();
            head = self.consumer.head.load(O::INDEX_LOAD);
        }
    }

    /// Receives up to `max` values without blocking, appending them to `out`;
    /// returns how many were received. Stops at the first empty answer.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(8);
    /// for i in 0..5 {
    ///     ch.send(i).unwrap();
    /// }
    /// let mut out = Vec::new();
    /// assert_eq!(ch.recv_batch(&mut out, 3), 3);
    /// assert_eq!(out, [0, 1, 2]);
    /// ```
    pub fn recv_batch(&self, out: &mut Vec<T>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.recv() {
                Some(v) => {
                    out.push(v);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Closes the channel: later `send`s return `Disconnected`, `recv` drains
    /// what is left. Returns `true` if this call closed it.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(2);
    /// ch.send(1).unwrap();
    /// assert!(ch.close());
    /// assert!(ch.is_closed() && !ch.close()); // only the first call closes it
    /// assert_eq!(ch.recv(), Some(1)); // what was sent is still received
    /// ```
    pub fn close(&self) -> bool {
        // AcqRel. The Release half pairs with the Acquire in `is_closed`, so
        // a receiver that sees the flag also sees every send that
        // happened-before `close`. The Acquire half pairs with the Release
        // half of an earlier `close` (the swap that returned `false` to
        // its caller): a second closer also sees what happened before the
        // first one. Nothing in this file needs the second pairing; Release
        // alone would do for the first.
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// `true` once [`close`](Self::close) was called.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(2);
    /// ch.send(1).unwrap();
    /// assert!(ch.close());
    /// assert!(ch.is_closed() && !ch.close()); // only the first call closes it
    /// assert_eq!(ch.recv(), Some(1)); // what was sent is still received
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        // Acquire: pairs with the swap in `close` (see there).
        self.closed.load(Ordering::Acquire)
    }

    /// A hint for a receiver that spins before parking: `false` while the
    /// slot at the current `head` still says "not written yet" and the
    /// channel is open, i.e. while a `recv` would most likely answer `None`.
    /// One or two plain loads of lines a spinning receiver already shares;
    /// no fence, no write. Never decides anything: the caller retries the
    /// real `recv` when it turns `true`.
    #[inline]
    pub(crate) fn recv_may_succeed(&self) -> bool {
        // Relaxed (all three): a hint only; the `recv` that follows makes
        // every ordered access itself.
        let head = self.consumer.head.load(Ordering::Relaxed);
        self.slot(head).stamp.load(Ordering::Relaxed) != free_stamp(head)
            || self.closed.load(Ordering::Relaxed)
    }

    /// The mirror of [`recv_may_succeed`](Self::recv_may_succeed) for a
    /// sender: `false` while the slot at the current `tail` still holds the
    /// previous lap's value and the channel is open.
    #[inline]
    pub(crate) fn send_may_succeed(&self) -> bool {
        // Relaxed (all three): a hint only, as in `recv_may_succeed`.
        let tail = self.producer.tail.load(Ordering::Relaxed);
        self.slot(tail).stamp.load(Ordering::Relaxed)
            != full_stamp(tail.wrapping_sub(self.capacity()))
            || self.closed.load(Ordering::Relaxed)
    }

    /// The number of values in the channel, between 0 and `capacity`.
    ///
    /// Exact at a moment during the call when the indices hold still for one
    /// of a few attempts; under a constant stream of operations it gives up
    /// after a few (8) tries (it never loops without bound) and
    /// returns a value the channel held at most one operation apart.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(4);
    /// assert!(ch.is_empty());
    /// ch.send(1).unwrap();
    /// assert_eq!(ch.len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        let clamp = |tail: usize, head: usize| {
            (tail.wrapping_sub(head) as isize).clamp(0, self.capacity() as isize) as usize
        };
        let mut tail = self.producer.tail.load(Ordering::SeqCst);
        for _ in 0..LEN_ATTEMPTS {
            // SeqCst: the three loads form a snapshot in the SeqCst total
            // order (tail re-read to detect a moving window).
            let head = self.consumer.head.load(Ordering::SeqCst);
            let again = self.producer.tail.load(Ordering::SeqCst);
            if again == tail {
                return clamp(tail, head);
            }
            tail = again;
        }
        // SeqCst: as above; the answer is a recent, clamped estimate.
        clamp(tail, self.consumer.head.load(Ordering::SeqCst))
    }

    /// `true` if the channel was empty at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(4);
    /// assert!(ch.is_empty());
    /// ch.send(1).unwrap();
    /// assert_eq!(ch.len(), 1);
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if the channel was full at some moment during the call.
    ///
    /// ```
    /// use waitless::channel::OptimizedChannel;
    ///
    /// let ch = OptimizedChannel::new(1);
    /// ch.send(()).unwrap();
    /// assert!(ch.is_full());
    /// ```
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

impl<T, O> Drop for OptimizedChannel<T, O> {
    fn drop(&mut self) {
        // `&mut self`: no operation is in flight, so every claimed position
        // in [head, tail) has its value written (a send cannot stop between
        // its CAS and its write: moving the value does not panic).
        let head = self.consumer.head.load(Ordering::Relaxed);
        let tail = self.producer.tail.load(Ordering::Relaxed);
        let mut pos = head;
        while pos != tail {
            let slot = &self.buffer[pos & self.mask];
            // SAFETY: positions in [head, tail) hold initialized values that
            // no `recv` took (module docs); `&mut self` excludes every other
            // access, and each position is dropped once.
            slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            pos = pos.wrapping_add(1);
        }
    }
}

impl<T, O: OrderingStrategy> fmt::Debug for OptimizedChannel<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptimizedChannel")
            .field("strategy", &O::NAME)
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::channel::{AcquireRelease, SeqCstAll};
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc as StdArc;

    fn fifo_roundtrip<O: OrderingStrategy>() {
        for cap in [1usize, 2, 8] {
            let ch: OptimizedChannel<usize, O> = OptimizedChannel::with_strategy(cap);
            for lap in 0..3 {
                for i in 0..cap {
                    ch.send(lap * 100 + i).unwrap();
                }
                assert!(ch.is_full());
                match ch.send(999) {
                    Err(ChannelError::Full(999)) => {}
                    other => panic!("expected Full(999), got {other:?}"),
                }
                for i in 0..cap {
                    assert_eq!(ch.recv(), Some(lap * 100 + i));
                }
                assert_eq!(ch.recv(), None);
                assert!(ch.is_empty());
            }
        }
    }

    /// A producer preempted between its claim and its stamp store, made
    /// by hand: claims the next position of `ch` and writes nothing.
    fn claim_without_writing<T>(ch: &OptimizedChannel<T>) -> usize {
        let t = ch.producer.tail.load(Ordering::Relaxed);
        ch.producer
            .tail
            .compare_exchange(t, t + 1, Ordering::Relaxed, Ordering::Relaxed)
            .expect("no other producer");
        t
    }

    #[test]
    fn send_answers_full_while_the_previous_laps_producer_is_preempted() {
        // Position 0 is claimed and never written (its producer is
        // "preempted"); position 1 fills the ring. The next send's slot is
        // still free for position 0, a lap behind: the ring is full
        // (tail 2, head 0), and `send` must say so at once. Before, it took
        // that stamp for a stale tail and re-read it until the producer of
        // position 0 ran again: here, forever.
        crate::channel::test_support::within(60, "send facing a preempted producer", || {
            let ch = OptimizedChannel::<u32>::new(2);
            let p0 = claim_without_writing(&ch);
            ch.send(1).unwrap();
            assert_eq!(ch.send(2), Err(ChannelError::Full(2)));
            // The preempted producer finishes; everything flows again.
            // SAFETY: position `p0` is ours (claimed above) and its slot
            // holds no value.
            ch.slot(p0).value.with_mut(|p| unsafe { (*p).write(0) });
            ch.slot(p0).stamp.store(full_stamp(p0), Ordering::Release);
            assert_eq!(ch.recv(), Some(0));
            ch.send(2).unwrap();
            assert_eq!((ch.recv(), ch.recv(), ch.recv()), (Some(1), Some(2), None));
        });
    }

    #[test]
    fn recv_answers_none_while_the_previous_laps_consumer_is_preempted() {
        // Position 0's value is claimed by a consumer that has not read it
        // yet ("preempted"); position 1 is received. The next recv's slot
        // still holds position 0's value, a lap behind position 2, and
        // nobody claimed position 2: the ring is empty (head == tail == 2),
        // and `recv` must say so at once instead of re-reading the stamp.
        crate::channel::test_support::within(60, "recv facing a preempted consumer", || {
            let ch = OptimizedChannel::<u32>::new(2);
            ch.send(10).unwrap();
            ch.send(11).unwrap();
            let h0 = ch.consumer.head.load(Ordering::Relaxed);
            ch.consumer
                .head
                .compare_exchange(h0, h0 + 1, Ordering::Relaxed, Ordering::Relaxed)
                .expect("no other consumer");
            assert_eq!(ch.recv(), Some(11));
            assert_eq!(ch.recv(), None);
            // The preempted consumer finishes.
            // SAFETY: position `h0` is ours (claimed above) and its value
            // was written and published by the send of 10.
            let v = ch
                .slot(h0)
                .value
                .with(|p| unsafe { (*p).assume_init_read() });
            assert_eq!(v, 10);
            ch.slot(h0)
                .stamp
                .store(free_stamp(h0 + 2), Ordering::Release);
            ch.send(12).unwrap();
            assert_eq!((ch.recv(), ch.recv()), (Some(12), None));
        });
    }

    #[test]
    fn spinning_calls_answer_at_once_where_exact_ones_wait_for_the_peer() {
        // Position 0 claimed and not written (its producer "preempted"):
        // an exact `recv` would wait for that producer (the channel is not
        // empty: tail 1, head 0); the spin-phase `recv_spinning` answers
        // `None` at once, reading neither the fence nor `tail`.
        crate::channel::test_support::within(60, "spinning calls facing a preempted peer", || {
            let ch = OptimizedChannel::<u32>::new(2);
            let p0 = claim_without_writing(&ch);
            assert_eq!(ch.recv_spinning(), None);
            ch.send(1).unwrap();
            // Full ring (tail 2, head 0): the hint and the exact answer agree.
            assert_eq!(ch.send_spinning(2), Err(ChannelError::Full(2)));
            assert_eq!(ch.send(2), Err(ChannelError::Full(2)));
            // SAFETY: position `p0` is ours (claimed above) and its slot
            // holds no value.
            ch.slot(p0).value.with_mut(|p| unsafe { (*p).write(0) });
            ch.slot(p0).stamp.store(full_stamp(p0), Ordering::Release);
            // Successes are exactly the exact calls' successes, in order.
            assert_eq!(ch.recv_spinning(), Some(0));
            ch.send_spinning(2).unwrap();
            assert_eq!(ch.send_spinning(3), Err(ChannelError::Full(3)));
            assert_eq!(ch.recv_spinning(), Some(1));
            assert_eq!(ch.recv(), Some(2));
            assert_eq!((ch.recv_spinning(), ch.recv()), (None, None));
            ch.close();
            assert_eq!(ch.send_spinning(4), Err(ChannelError::Disconnected(4)));
        });
    }

    #[test]
    fn a_recv_waiting_for_a_preempted_producer_finishes_when_it_runs() {
        // The wait in `wait_for_peer` (spin, then yield) on the real
        // scheduler: a receiver facing a claimed, unwritten position keeps
        // waiting (no `None`: the channel is not empty) and takes the value
        // once the producer stores it, however long that takes.
        crate::channel::test_support::within(60, "recv waiting for a producer", || {
            let ch = OptimizedChannel::<u32>::new(4);
            let p0 = claim_without_writing(&ch);
            std::thread::scope(|s| {
                let r = s.spawn(|| ch.recv());
                // Let the receiver reach its wait (not needed for the
                // outcome, only to exercise the yield phase).
                for _ in 0..100 {
                    std::thread::yield_now();
                }
                // SAFETY: position `p0` is ours (claimed above) and its
                // slot holds no value.
                ch.slot(p0).value.with_mut(|p| unsafe { (*p).write(9) });
                ch.slot(p0).stamp.store(full_stamp(p0), Ordering::Release);
                assert_eq!(r.join().unwrap(), Some(9));
            });
            assert_eq!(ch.recv(), None);
        });
    }

    #[test]
    fn fifo_full_and_empty_for_every_strategy() {
        fifo_roundtrip::<Optimized>();
        fifo_roundtrip::<AcquireRelease>();
        fifo_roundtrip::<SeqCstAll>();
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn non_power_of_two_capacity_panics() {
        let _ = OptimizedChannel::<u8>::new(3);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn zero_capacity_panics() {
        let _ = OptimizedChannel::<u8>::new(0);
    }

    #[test]
    fn close_rejects_sends_and_drains() {
        let ch = OptimizedChannel::<String>::new(4);
        ch.send("a".into()).unwrap();
        assert!(ch.close());
        assert!(!ch.close());
        match ch.send("b".into()) {
            Err(ChannelError::Disconnected(v)) => assert_eq!(v, "b"),
            other => panic!("expected Disconnected, got {other:?}"),
        }
        assert_eq!(ch.recv().as_deref(), Some("a"));
        assert_eq!(ch.recv(), None);
    }

    #[test]
    fn indices_wrap_around_usize() {
        let ch = OptimizedChannel::<usize>::new(4);
        let start = usize::MAX - 5;
        ch.producer.tail.store(start, Ordering::Relaxed);
        ch.consumer.head.store(start, Ordering::Relaxed);
        for (k, slot) in ch.buffer.iter().enumerate() {
            // The stamp a slot holds when free for the first position
            // mapping to it at or after `start`.
            let pos = (0..4)
                .map(|d| start.wrapping_add(d))
                .find(|p| p & 3 == k)
                .unwrap();
            slot.stamp.store(free_stamp(pos), Ordering::Relaxed);
        }
        for round in 0..5 {
            for i in 0..4 {
                ch.send(round * 10 + i).unwrap();
            }
            assert!(ch.send(0).is_err());
            assert_eq!(ch.len(), 4);
            for i in 0..4 {
                assert_eq!(ch.recv(), Some(round * 10 + i));
            }
            assert_eq!(ch.recv(), None);
        }
    }

    struct Counted(StdArc<StdAtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn drop_frees_what_is_left_exactly_once() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        {
            let ch = OptimizedChannel::<Counted>::new(8);
            for _ in 0..6 {
                ch.send(Counted(drops.clone())).unwrap();
            }
            drop(ch.recv());
            drop(ch.recv());
            assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 2);
        }
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 6);
    }

    #[test]
    fn concurrent_exactly_once() {
        let per = if cfg!(miri) { 50 } else { 20_000 };
        let (producers, consumers) = (3, 3);
        let ch = OptimizedChannel::<usize>::new(if cfg!(miri) { 2 } else { 16 });
        let seen: Vec<StdAtomicUsize> = (0..producers * per)
            .map(|_| StdAtomicUsize::new(0))
            .collect();
        let received = StdAtomicUsize::new(0);
        std::thread::scope(|s| {
            for p in 0..producers {
                let ch = &ch;
                s.spawn(move || {
                    for i in 0..per {
                        let mut v = p * per + i;
                        while let Err(e) = ch.send(v) {
                            v = e.into_inner();
                            std::thread::yield_now();
                        }
                    }
                });
            }
            for _ in 0..consumers {
                s.spawn(|| {
                    while received.load(std::sync::atomic::Ordering::Relaxed) < producers * per {
                        match ch.recv() {
                            Some(v) => {
                                seen[v].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            None => std::thread::yield_now(),
                        }
                    }
                });
            }
        });
        assert!(seen
            .iter()
            .all(|c| c.load(std::sync::atomic::Ordering::Relaxed) == 1));
        assert_eq!(ch.recv(), None);
    }

    #[test]
    fn recv_batch_stops_at_empty() {
        let ch = OptimizedChannel::<u32>::new(8);
        for i in 0..5 {
            ch.send(i).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(ch.recv_batch(&mut out, 3), 3);
        assert_eq!(ch.recv_batch(&mut out, 10), 2);
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }
}

/// loom models of the spin-phase calls (`send_spinning`, `recv_spinning`)
/// that the blocking layer uses while it spins (under loom the blocking
/// layer itself never spins, so `tests/loom_channel.rs` does not reach
/// them). Their successes must be exactly the exact calls' successes:
/// every value received once, in order, never torn or overwritten.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// One slot: a spin-phase send into the empty channel succeeds, and a
    /// consumer that tries a spin-phase recv, then an exact one (which
    /// waits for a producer in its window), gets the value or leaves it.
    #[test]
    fn spinning_calls_one_slot_exactly_once() {
        loom::model(|| {
            let ch = Arc::new(OptimizedChannel::<u32>::new(1));
            let c = ch.clone();
            let consumer = thread::spawn(move || c.recv_spinning().or_else(|| c.recv()));
            assert_eq!(ch.send_spinning(7), Ok(()));
            let got = consumer.join().unwrap();
            let left = ch.recv();
            match (got, left) {
                (Some(7), None) | (None, Some(7)) => {}
                other => panic!("value lost or duplicated: {other:?}"),
            }
        });
    }

    /// One slot, two laps: the second value goes in through a spin-phase
    /// send only after the consumer's read of the first (the slot's stamp
    /// Acquire/Release), so nothing is overwritten; a spin-phase `Full`
    /// leaves the value with the caller.
    #[test]
    fn spinning_calls_second_lap_never_overwrites() {
        loom::model(|| {
            let ch = Arc::new(OptimizedChannel::<u32>::new(1));
            let c = ch.clone();
            let consumer = thread::spawn(move || c.recv_spinning());
            ch.send(1).unwrap();
            let second = ch.send_spinning(2);
            let first = consumer.join().unwrap();
            let mut rest = Vec::new();
            while let Some(v) = ch.recv() {
                rest.push(v);
            }
            let mut all: Vec<u32> = first.into_iter().chain(rest).collect();
            match second {
                Ok(()) => {}
                Err(ChannelError::Full(2)) => all.push(2),
                Err(e) => panic!("unexpected {e:?}"),
            }
            assert_eq!(all, [1, 2], "every value exactly once, in order");
        });
    }
}
