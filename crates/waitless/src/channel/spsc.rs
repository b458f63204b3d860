//! The single-producer single-consumer fast path: [`bounded`] returns a
//! [`Producer`] and a [`Consumer`].
//!
//! # Algorithm
//!
//! A Lamport ring buffer with cached indices (the design rtrb and folly's
//! `ProducerConsumerQueue` use). The shared state is two indices on separate
//! cache lines: `tail` (written only by the producer) and `head` (written
//! only by the consumer). Each handle keeps its own index and a cached copy
//! of the other side's index *inside the handle*, so the fast path touches
//! no line the other side writes except the slot itself:
//!
//! - `push`: if `tail - head_cache == capacity`, refresh `head_cache` from
//!   `head` (`Acquire`); if still full → `PushError`. Write the slot, then
//!   store `tail + 1` (`Release`).
//! - `pop`: if `head == tail_cache`, refresh `tail_cache` from `tail`
//!   (`Acquire`); if still equal → `None`. Read the slot, then store
//!   `head + 1` (`Release`).
//!
//! No read-modify-write instruction anywhere: one plain load (only when the
//! cache says full/empty) and one plain store per operation; on x86 both
//! are ordinary `mov`s.
//!
//! Batches: [`Producer::write_chunk`] reserves up to `n` slots and
//! [`Consumer::read_chunk`] takes up to `n` ready values. A chunk loads the
//! other side's index (`Acquire`) only when the cached copy shows fewer
//! than `n` slots/values, does a plain write/read per value, and publishes
//! its own index once, with one `Release` store, when it is dropped: one
//! `Acquire`/`Release` pair per batch at most, no atomic work per value.
//! [`Producer::push_iter`] and [`Consumer::pop_batch`] are built on them.
//!
//! Orderings: the `Release` store of `tail` pairs with the consumer's
//! `Acquire` load of `tail`, so the value written into a slot is visible
//! before the consumer reads it; the `Release` store of `head` pairs with the
//! producer's `Acquire` load of `head`, so the consumer's read of a slot
//! happens-before the producer overwrites it (no torn read, no overwrite of
//! a value still being moved out). Full proof in `docs/channel.md`.
//!
//! Progress: wait-free (every call is a bounded number of steps).

use core::fmt;
use core::mem::MaybeUninit;

use super::error::PushError;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Arc, UnsafeCell};
use crate::CachePadded;

struct Ring<T> {
    /// Next position to read; written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next position to write; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    buffer: Slots<T>,
    mask: usize,
    /// Set (`Release`) by the first handle dropped, after its last index
    /// store; read (`Acquire`) by `is_abandoned`, so a handle that sees it
    /// also sees every value pushed (or slot freed) before that drop.
    abandoned: AtomicBool,
}

/// Alignment (and size granule) of the slot array: a cache-line pair, as
/// for [`CachePadded`]. With the allocator's 16-byte alignment a batch of
/// 32 `u64`s spanned five lines instead of four, and the line at each end
/// was shared with the neighbouring batch (written by the producer while
/// the consumer read the one before) or with another heap object.
const SLOTS_ALIGN: usize = 128;

/// The ring's cells: `capacity` cells in an allocation aligned to (and a
/// multiple of) [`SLOTS_ALIGN`] bytes, so no cache line holds a cell and
/// anything else, and chunks of whole lines start on a line.
struct Slots<T> {
    ptr: core::ptr::NonNull<Cell<T>>,
    len: usize,
}

impl<T> Slots<T> {
    /// The layout of `len` cells (`len > 0`).
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<Cell<T>>(len)
            .and_then(|l| l.align_to(SLOTS_ALIGN))
            .map(|l| l.pad_to_align())
            .expect("spsc capacity overflows the address space")
    }

    /// `len` empty cells.
    fn new(len: usize) -> Self {
        let layout = Self::layout(len);
        let ptr = if layout.size() == 0 {
            // Zero-sized cells (`T` zero-sized, outside loom): nothing to
            // allocate; any aligned non-null pointer is valid for them.
            core::ptr::NonNull::<Cell<T>>::dangling()
        } else {
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { std::alloc::alloc(layout) }.cast::<Cell<T>>();
            let Some(ptr) = core::ptr::NonNull::new(raw) else {
                std::alloc::handle_alloc_error(layout)
            };
            ptr
        };
        for i in 0..len {
            // SAFETY: `i < len`: inside the allocation (or a zero-sized
            // write); each cell is initialized once, before any use.
            unsafe {
                ptr.as_ptr()
                    .add(i)
                    .write(UnsafeCell::new(MaybeUninit::uninit()))
            };
        }
        Self { ptr, len }
    }

    /// The first cell.
    fn as_ptr(&self) -> *const Cell<T> {
        self.ptr.as_ptr()
    }

    /// Cell `i` (`i < len`).
    fn get(&self, i: usize) -> &Cell<T> {
        assert!(i < self.len);
        // SAFETY: `i < len`; the cells live as long as `self`.
        unsafe { &*self.ptr.as_ptr().add(i) }
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // The values still in the ring were dropped by `Ring::drop`; this
        // drops the (empty) cells themselves and frees the memory.
        for i in 0..self.len {
            // SAFETY: cell `i` was initialized in `new` and is dropped once.
            unsafe { core::ptr::drop_in_place(self.ptr.as_ptr().add(i)) };
        }
        let layout = Self::layout(self.len);
        if layout.size() != 0 {
            // SAFETY: allocated in `new` with this same layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

// SAFETY: the ring owns the values between push and pop; moving the ring to
// another thread moves them, so `T: Send` suffices.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: the two handles sharing the ring each move `T`s in or out from
// their own thread; slots are accessed exclusively per the index protocol
// (module docs), no `&T` is shared, so `T: Send` suffices.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both handles are gone (`Arc` dropped its last reference, which
        // synchronizes with every earlier release of it), and each handle
        // published its index on drop, so [head, tail) is exactly the set
        // of values written and not read.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut pos = head;
        while pos != tail {
            // SAFETY: positions in [head, tail) hold initialized values that
            // were never read; we have exclusive access; each is dropped once.
            self.buffer
                .get(pos & self.mask)
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
            pos = pos.wrapping_add(1);
        }
    }
}

/// Creates an SPSC ring holding at most `capacity` values.
///
/// # Panics
/// If `capacity` is not a power of two (zero included) or exceeds
/// `2^(usize::BITS - 2)`.
///
/// # Examples
///
/// ```
/// use waitless::channel::spsc;
///
/// let (mut tx, mut rx) = spsc::bounded(4);
/// std::thread::scope(|s| {
///     s.spawn(move || {
///         for i in 0..100u32 {
///             let mut v = i;
///             while let Err(e) = tx.push(v) {
///                 v = e.into_inner();
///                 std::hint::spin_loop();
///             }
///         }
///     });
///     let mut next = 0;
///     while next < 100 {
///         if let Some(v) = rx.pop() {
///             assert_eq!(v, next);
///             next += 1;
///         }
///     }
/// });
/// ```
#[must_use]
pub fn bounded<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(
        capacity.is_power_of_two(),
        "spsc capacity must be a power of two, got {capacity}"
    );
    assert!(
        capacity <= super::mpmc::MAX_CAPACITY,
        "spsc capacity {capacity} exceeds the maximum {}",
        super::mpmc::MAX_CAPACITY
    );
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        buffer: Slots::new(capacity),
        mask: capacity - 1,
        abandoned: AtomicBool::new(false),
    });
    let buf = ring.buffer.as_ptr();
    let mask = ring.mask;
    (
        Producer {
            ring: ring.clone(),
            buf,
            mask,
            tail: 0,
            head_cache: 0,
        },
        Consumer {
            ring,
            buf,
            mask,
            head: 0,
            tail_cache: 0,
        },
    )
}

/// A ring cell.
type Cell<T> = UnsafeCell<MaybeUninit<T>>;

/// The cell of position `pos`.
///
/// # Safety
/// 1. `buf` and `mask` come from a ring the caller keeps alive (its `Arc`).
#[inline]
unsafe fn cell<'a, T>(buf: *const Cell<T>, mask: usize, pos: usize) -> &'a Cell<T> {
    // SAFETY: `pos & mask < capacity`, the buffer's length; the buffer
    // lives as long as the ring (precondition 1).
    unsafe { &*buf.add(pos & mask) }
}

/// The writing end of an SPSC ring.
///
/// ```
/// use waitless::channel::spsc;
///
/// let (mut producer, mut consumer) = spsc::bounded(4);
/// let t = std::thread::spawn(move || {
///     for i in 0..100 {
///         while producer.push(i).is_err() {
///             std::hint::spin_loop(); // full: the consumer is behind
///         }
///     }
/// });
/// let mut got = 0;
/// while got < 100 {
///     if let Some(v) = consumer.pop() {
///         assert_eq!(v, got);
///         got += 1;
///     }
/// }
/// t.join().unwrap();
/// ```
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// `ring.buffer`'s cells and `ring.mask`, copied into the handle so an
    /// operation reaches a slot without a bounds check or a load through
    /// the `Arc`.
    buf: *const Cell<T>,
    mask: usize,
    /// Our position; equal to `ring.tail` except inside a batch.
    tail: usize,
    /// A value `ring.head` had (never ahead of it).
    head_cache: usize,
}

/// The reading end of an SPSC ring.
///
/// ```
/// use waitless::channel::spsc;
///
/// let (mut p, mut c) = spsc::bounded(2);
/// p.push('x').unwrap();
/// assert_eq!(c.len(), 1);
/// assert_eq!(c.pop(), Some('x'));
/// ```
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    /// As in [`Producer`].
    buf: *const Cell<T>,
    mask: usize,
    /// Our position; equal to `ring.head` except inside a batch.
    head: usize,
    /// A value `ring.tail` had (never ahead of it).
    tail_cache: usize,
}

// SAFETY: a handle moves `T`s into or out of the ring from whatever thread
// holds it; the raw `buf` points into the ring its `Arc` keeps alive, and
// the index protocol gives each side exclusive access to its slots (module
// docs). So `T: Send` suffices, as for the `Arc<Ring<T>>` alone.
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: `&Producer` gives access to nothing but the capacity and `Debug`;
// every operation on the ring takes `&mut self`.
unsafe impl<T: Send> Sync for Producer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Send> Send for Consumer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Send> Sync for Consumer<T> {}

// Unwind safety: no operation runs user code while a slot is half-written
// (a panicking `push_iter` iterator leaves only published or unpublished
// whole values, and `Drop` publishes the latter), so the handles are
// unwind-safe whenever the values are.
impl<T: std::panic::UnwindSafe> std::panic::UnwindSafe for Producer<T> {}
impl<T: std::panic::UnwindSafe> std::panic::RefUnwindSafe for Producer<T> {}
impl<T: std::panic::UnwindSafe> std::panic::UnwindSafe for Consumer<T> {}
impl<T: std::panic::UnwindSafe> std::panic::RefUnwindSafe for Consumer<T> {}

impl<T> Producer<T> {
    /// The most values the ring holds.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (p, c) = spsc::bounded::<u8>(8);
    /// assert_eq!((p.capacity(), c.capacity()), (8, 8));
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Free slots right now (refreshes the cached consumer position).
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, _c) = spsc::bounded(4);
    /// p.push(1).unwrap();
    /// assert_eq!(p.slots(), 3);
    /// ```
    #[must_use]
    pub fn slots(&mut self) -> usize {
        self.refresh();
        self.capacity() - self.tail.wrapping_sub(self.head_cache)
    }

    #[inline]
    fn refresh(&mut self) {
        // Acquire: pairs with the consumer's Release store of `head`, so its
        // reads of the slots it freed happen-before our overwrites.
        self.head_cache = self.ring.head.load(Ordering::Acquire);
    }

    /// Pushes `value`, or gives it back if the ring is full.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, mut c) = spsc::bounded(1);
    /// assert!(p.push(1).is_ok());
    /// assert_eq!(p.push(2).unwrap_err().into_inner(), 2);
    /// assert_eq!(c.pop(), Some(1));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        let cap = self.capacity();
        if self.tail.wrapping_sub(self.head_cache) == cap {
            self.refresh();
            if self.tail.wrapping_sub(self.head_cache) == cap {
                return Err(PushError(value));
            }
        }
        // SAFETY: `tail - head_cache < cap` and `head_cache <= head`, so slot
        // `tail` is not readable by the consumer (it reads only below the
        // published tail) and was freed by it (its read happened-before the
        // Acquire refresh); we are the only producer; `self.ring` keeps the
        // buffer alive.
        unsafe { cell(self.buf, self.mask, self.tail) }.with_mut(|p| unsafe { (*p).write(value) });
        self.tail = self.tail.wrapping_add(1);
        // Release: pairs with the consumer's Acquire load of `tail`,
        // publishing the value written above.
        self.ring.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Pushes values from `iter` until the ring is full or `iter` ends;
    /// returns how many were pushed. Takes from `iter` only values that fit,
    /// and publishes them with one store.
    ///
    /// ```
    /// let (mut tx, mut rx) = waitless::channel::spsc::bounded(4);
    /// let mut src = 0..10;
    /// assert_eq!(tx.push_iter(&mut src), 4);
    /// assert_eq!(src.next(), Some(4)); // nothing lost
    /// let mut out = Vec::new();
    /// assert_eq!(rx.pop_batch(&mut out, 8), 4);
    /// assert_eq!(out, [0, 1, 2, 3]);
    /// ```
    pub fn push_iter<I: Iterator<Item = T>>(&mut self, iter: &mut I) -> usize {
        // Refresh the consumer's position only when the cached one shows
        // less room than the iterator promises (at least one value).
        let cap = self.capacity();
        let want = iter.size_hint().0.clamp(1, cap);
        if cap - self.tail.wrapping_sub(self.head_cache) < want {
            self.refresh();
        }
        let free = cap - self.tail.wrapping_sub(self.head_cache);
        self.chunk(free).fill_from_iter(iter)
    }

    /// Reserves up to `max` free slots for one batch of writes: the slots
    /// are filled with plain writes ([`WriteChunk::push`],
    /// [`WriteChunk::fill_from_iter`]) and published together with one
    /// `Release` store when the chunk is dropped. The consumer's position
    /// is loaded (`Acquire`) only when the cached one shows fewer than `max`
    /// free slots; so a batch costs at most one `Acquire` load and one
    /// `Release` store, and no atomic work per value.
    ///
    /// The chunk may be shorter than `max` (zero when the ring is full).
    ///
    /// ```
    /// let (mut tx, mut rx) = waitless::channel::spsc::bounded(4);
    /// let mut chunk = tx.write_chunk(3);
    /// assert_eq!(chunk.len(), 3);
    /// chunk.push('a').unwrap();
    /// chunk.push('b').unwrap();
    /// drop(chunk); // publishes 'a' and 'b' with one store
    /// assert_eq!(tx.write_chunk(8).len(), 2); // two slots left
    /// let got: Vec<char> = rx.read_chunk(8).collect();
    /// assert_eq!(got, ['a', 'b']);
    /// ```
    #[inline]
    pub fn write_chunk(&mut self, max: usize) -> WriteChunk<'_, T> {
        let cap = self.capacity();
        if cap - self.tail.wrapping_sub(self.head_cache) < max {
            self.refresh();
        }
        let free = cap - self.tail.wrapping_sub(self.head_cache);
        self.chunk(free.min(max))
    }

    /// A chunk of the next `len` slots, which the caller checked are free.
    #[inline]
    fn chunk(&mut self, len: usize) -> WriteChunk<'_, T> {
        let start = self.tail;
        WriteChunk {
            buf: self.buf,
            mask: self.mask,
            start,
            pos: start,
            end: start.wrapping_add(len),
            producer: self,
        }
    }
}

/// A batch of reserved slots from [`Producer::write_chunk`].
///
/// Each value is written with a plain store; everything written is
/// published with one `Release` store of the producer's position when the
/// chunk is dropped (also on a panic). A leaked chunk (`mem::forget`)
/// publishes nothing: its values are leaked and its slots written again.
///
/// ```
/// let (mut tx, mut rx) = waitless::channel::spsc::bounded(8);
/// let mut chunk = tx.write_chunk(3);
/// for v in [1, 2, 3] {
///     chunk.push(v).unwrap();
/// }
/// assert_eq!(rx.len(), 0); // nothing published yet
/// drop(chunk);
/// assert_eq!(rx.len(), 3); // one store published all three
/// ```
pub struct WriteChunk<'a, T> {
    producer: &'a mut Producer<T>,
    /// The producer's cells and mask, copied so the write loop keeps
    /// everything it needs in registers.
    buf: *const Cell<T>,
    mask: usize,
    /// The producer's position when the chunk was made.
    start: usize,
    /// The next slot to write; `[start, pos)` is written.
    pos: usize,
    /// One past the last reserved slot.
    end: usize,
}

impl<T> WriteChunk<'_, T> {
    /// Reserved slots not written yet.
    ///
    /// ```
    /// let (mut tx, _rx) = waitless::channel::spsc::bounded::<u8>(2);
    /// let mut chunk = tx.write_chunk(8);
    /// assert_eq!(chunk.len(), 2);
    /// chunk.push(1).unwrap();
    /// assert_eq!(chunk.len(), 1);
    /// ```
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.end.wrapping_sub(self.pos)
    }

    /// `true` if no reserved slot is left.
    ///
    /// ```
    /// let (mut tx, _rx) = waitless::channel::spsc::bounded::<u8>(1);
    /// tx.push(1).unwrap();
    /// assert!(tx.write_chunk(4).is_empty()); // full
    /// ```
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Writes `value` into the next reserved slot (published when the
    /// chunk is dropped), or gives it back if none is left.
    ///
    /// ```
    /// let (mut tx, mut rx) = waitless::channel::spsc::bounded(1);
    /// let mut chunk = tx.write_chunk(1);
    /// chunk.push(1).unwrap();
    /// assert_eq!(chunk.push(2).unwrap_err().into_inner(), 2);
    /// drop(chunk);
    /// assert_eq!(rx.pop(), Some(1));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.pos == self.end {
            return Err(PushError(value));
        }
        self.write(value);
        Ok(())
    }

    /// Writes `value` at `pos`, which is below `end`.
    #[inline]
    fn write(&mut self, value: T) {
        // SAFETY: `pos` is one of the slots `write_chunk` reserved: below
        // `head_cache + cap`, so the consumer freed it (its read
        // happened-before our Acquire refresh) and cannot read it before we
        // publish a tail past it; we are the only producer (`&mut`);
        // `producer.ring` keeps the buffer alive.
        unsafe { cell(self.buf, self.mask, self.pos) }.with_mut(|c| unsafe { (*c).write(value) });
        self.pos = self.pos.wrapping_add(1);
    }

    /// Writes values from `iter` into the reserved slots until they are
    /// used up or `iter` ends, publishes them, and returns how many. Takes
    /// from `iter` only values that fit.
    ///
    /// ```
    /// let (mut tx, mut rx) = waitless::channel::spsc::bounded(4);
    /// let mut src = 10..;
    /// assert_eq!(tx.write_chunk(3).fill_from_iter(&mut src), 3);
    /// assert_eq!(src.next(), Some(13)); // nothing lost
    /// assert_eq!(rx.read_chunk(4).sum::<i32>(), 10 + 11 + 12);
    /// ```
    #[inline]
    pub fn fill_from_iter<I: Iterator<Item = T>>(mut self, iter: &mut I) -> usize {
        let first = self.pos;
        // At most two contiguous runs of cells (before and after the wrap),
        // each filled by an index loop without masking.
        while self.pos != self.end {
            let idx = self.pos & self.mask;
            let run = self.end.wrapping_sub(self.pos).min(self.mask + 1 - idx);
            for k in 0..run {
                // If `iter.next()` panics, `Drop` publishes what was written.
                let Some(value) = iter.next() else {
                    return self.pos.wrapping_sub(first);
                };
                // SAFETY: `idx + k < capacity` (the run ends at the buffer's
                // end at the latest) and is the cell of position `pos`, one
                // of the reserved slots: as in `write`.
                unsafe { &*self.buf.add(idx + k) }.with_mut(|c| unsafe { (*c).write(value) });
                self.pos = self.pos.wrapping_add(1);
            }
        }
        self.pos.wrapping_sub(first)
    }
}

impl<T> Drop for WriteChunk<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.pos != self.start {
            let p = &mut *self.producer;
            p.tail = self.pos;
            // Release: pairs with the consumer's Acquire load of `tail`,
            // publishing every value the chunk wrote.
            p.ring.tail.store(self.pos, Ordering::Release);
        }
    }
}

impl<T> fmt::Debug for WriteChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunk")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T> Consumer<T> {
    /// The most values the ring holds.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (p, c) = spsc::bounded::<u8>(8);
    /// assert_eq!((p.capacity(), c.capacity()), (8, 8));
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Values ready right now. Takes `&self` (it reads the producer's
    /// position without updating the consumer's cached copy), so it can be
    /// called through a shared reference, e.g. from a monitoring thread that
    /// borrows the consumer.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, c) = spsc::bounded(4);
    /// p.push(1).unwrap();
    /// p.push(2).unwrap();
    /// let c = &c; // a shared reference is enough
    /// assert_eq!(c.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        // Acquire: as in `refresh`, pairs with the producer's Release store
        // of `tail`. `self.head` equals `ring.head` outside a batch, and no
        // batch is in progress while `&self` is borrowed.
        self.ring
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head)
    }

    /// `true` if nothing is ready right now.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, mut c) = spsc::bounded(2);
    /// assert!(c.is_empty());
    /// p.push(1).unwrap();
    /// assert!(!c.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn refresh(&mut self) {
        // Acquire: pairs with the producer's Release store of `tail`, so the
        // values it wrote below that tail are visible to our reads.
        self.tail_cache = self.ring.tail.load(Ordering::Acquire);
    }

    /// Pops the oldest value, or `None` if the ring is empty.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, mut c) = spsc::bounded(4);
    /// std::thread::spawn(move || p.push("hi").unwrap()).join().unwrap();
    /// assert_eq!(c.pop(), Some("hi"));
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_cache {
            self.refresh();
            if self.head == self.tail_cache {
                return None;
            }
        }
        // SAFETY: `head < tail_cache <= tail`: the producer wrote this slot
        // and published it (our Acquire refresh made the write visible); it
        // will not overwrite it before we publish a head past it; `self.ring`
        // keeps the buffer alive.
        let value = unsafe { cell(self.buf, self.mask, self.head) }
            .with(|p| unsafe { (*p).assume_init_read() });
        self.head = self.head.wrapping_add(1);
        // Release: pairs with the producer's Acquire load of `head`, so our
        // read above happens-before its overwrite of the slot.
        self.ring.head.store(self.head, Ordering::Release);
        Some(value)
    }

    /// Pops up to `max` values into `out` with one index publication;
    /// returns how many.
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, mut c) = spsc::bounded(8);
    /// for i in 0..6 {
    ///     p.push(i).unwrap();
    /// }
    /// let mut out = Vec::new();
    /// assert_eq!(c.pop_batch(&mut out, 4), 4);
    /// assert_eq!(out, [0, 1, 2, 3]);
    /// ```
    pub fn pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let chunk = self.read_chunk(max);
        let n = chunk.len();
        // Reserve first: no reallocation between taking values out of the
        // ring and owning them in `out`.
        out.reserve(n);
        chunk.for_each(|v| out.push(v));
        n
    }

    /// Takes up to `max` ready values as one batch: an iterator that moves
    /// them out with plain reads, and publishes the consumer's position once,
    /// with one `Release` store, when it is dropped (only the values taken
    /// are consumed; the rest stay in the ring). The producer's position is
    /// loaded (`Acquire`) only when the cached one shows fewer than `max`
    /// ready values; so a batch costs at most one `Acquire` load and one
    /// `Release` store, and no atomic work per value.
    ///
    /// The chunk may be shorter than `max` (empty when the ring is).
    ///
    /// ```
    /// let (mut tx, mut rx) = waitless::channel::spsc::bounded(8);
    /// tx.write_chunk(5).fill_from_iter(&mut (1..=5));
    /// let mut chunk = rx.read_chunk(4);
    /// assert_eq!(chunk.len(), 4);
    /// assert_eq!(chunk.next(), Some(1));
    /// assert_eq!(chunk.next(), Some(2));
    /// drop(chunk); // consumes 1 and 2 only
    /// assert_eq!(rx.read_chunk(8).collect::<Vec<_>>(), [3, 4, 5]);
    /// ```
    #[inline]
    pub fn read_chunk(&mut self, max: usize) -> ReadChunk<'_, T> {
        if self.tail_cache.wrapping_sub(self.head) < max {
            self.refresh();
        }
        let ready = self.tail_cache.wrapping_sub(self.head);
        let start = self.head;
        let end = start.wrapping_add(ready.min(max));
        // Claimed at once: if the chunk is leaked, the values it did not
        // hand out are leaked too (never read twice).
        self.head = end;
        ReadChunk {
            buf: self.buf,
            mask: self.mask,
            start,
            pos: start,
            end,
            consumer: self,
        }
    }
}

/// A batch of ready values from [`Consumer::read_chunk`]; an iterator that
/// moves them out.
///
/// Each value is read with a plain load; the values taken are consumed
/// with one `Release` store of the consumer's position when the chunk is
/// dropped (also on a panic). Values not taken stay in the ring. A leaked
/// chunk (`mem::forget`) consumes all its values: those not taken are
/// leaked.
///
/// ```
/// let (mut tx, mut rx) = waitless::channel::spsc::bounded(8);
/// tx.write_chunk(4).fill_from_iter(&mut (1..=4));
/// let chunk = rx.read_chunk(8);
/// assert_eq!(chunk.len(), 4);
/// assert_eq!(chunk.sum::<u32>(), 10); // reads all four, one store
/// assert!(rx.is_empty());
/// ```
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    /// The consumer's cells and mask, copied so the read loop keeps
    /// everything it needs in registers.
    buf: *const Cell<T>,
    mask: usize,
    /// The consumer's position when the chunk was made.
    start: usize,
    /// The next value to take; `[start, pos)` is taken.
    pos: usize,
    /// One past the last ready value of the chunk.
    end: usize,
}

impl<T> Iterator for ReadChunk<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.pos == self.end {
            return None;
        }
        // SAFETY: `pos` is below the tail `read_chunk` acquired: the
        // producer wrote and published the slot (our Acquire made the write
        // visible) and will not overwrite it before we publish a head past
        // it. The consumer's own position already excludes `[pos, end)`
        // and `pos` advances before the value is returned, so it is read
        // once; `consumer.ring` keeps the buffer alive.
        let value = unsafe { cell(self.buf, self.mask, self.pos) }
            .with(|p| unsafe { (*p).assume_init_read() });
        self.pos = self.pos.wrapping_add(1);
        Some(value)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.wrapping_sub(self.pos);
        (left, Some(left))
    }

    /// Visits at most two contiguous runs of cells (before and after the
    /// wrap) with index loops without masking; `sum`, `count`, `for_each`
    /// and the other consuming adaptors go through it.
    #[inline]
    fn fold<B, F: FnMut(B, T) -> B>(mut self, init: B, mut f: F) -> B {
        let mut acc = init;
        while self.pos != self.end {
            let idx = self.pos & self.mask;
            let run = self.end.wrapping_sub(self.pos).min(self.mask + 1 - idx);
            for k in 0..run {
                // SAFETY: `idx + k < capacity` and is the cell of position
                // `pos`, below the acquired tail: as in `next`.
                let value =
                    unsafe { &*self.buf.add(idx + k) }.with(|p| unsafe { (*p).assume_init_read() });
                // Taken before `f` runs: if `f` panics, the value is its.
                self.pos = self.pos.wrapping_add(1);
                acc = f(acc, value);
            }
        }
        acc
    }
}

impl<T> ExactSizeIterator for ReadChunk<'_, T> {}

impl<T> core::iter::FusedIterator for ReadChunk<'_, T> {}

impl<T> Drop for ReadChunk<'_, T> {
    #[inline]
    fn drop(&mut self) {
        let c = &mut *self.consumer;
        // The values not taken go back to the ring.
        c.head = self.pos;
        if self.pos != self.start {
            // Release: pairs with the producer's Acquire load of `head`, so
            // our reads of the slots happen-before it overwrites them.
            c.ring.head.store(self.pos, Ordering::Release);
        }
    }
}

impl<T> fmt::Debug for ReadChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunk")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Release: publishes the position past the values a leaked
        // `ReadChunk` claimed, so the ring's drop does not drop them again.
        self.ring.head.store(self.head, Ordering::Release);
        // Release: pairs with the `Acquire` load in
        // `Producer::is_abandoned` (after the store above).
        self.ring.abandoned.store(true, Ordering::Release);
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Release: pairs with the `Acquire` load in
        // `Consumer::is_abandoned`, so a consumer that sees the producer
        // gone also sees every value it published (each `Release` store of
        // `tail` is sequenced before this store).
        self.ring.abandoned.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> Producer<T> {
    /// `true` once the [`Consumer`] has been dropped: nothing pushed from
    /// now on will be received (pushes still succeed while there is room,
    /// and the values are dropped with the ring).
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (p, c) = spsc::bounded::<u8>(2);
    /// assert!(!p.is_abandoned());
    /// drop(c);
    /// assert!(p.is_abandoned());
    /// ```
    #[must_use]
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the `Release` store in `Consumer::drop`. Once
        // true it stays true. (`Arc::strong_count` is a `Relaxed` load: it
        // said "gone" without synchronizing with the drop.)
        self.ring.abandoned.load(Ordering::Acquire)
    }
}

impl<T> Consumer<T> {
    /// `true` once the [`Producer`] has been dropped: what is in the ring
    /// is all there will ever be (it can still be popped).
    ///
    /// ```
    /// use waitless::channel::spsc;
    ///
    /// let (mut p, mut c) = spsc::bounded(2);
    /// p.push(1).unwrap();
    /// drop(p);
    /// assert!(c.is_abandoned());
    /// assert_eq!(c.pop(), Some(1)); // still delivered
    /// ```
    #[must_use]
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the `Release` store in `Producer::drop`, so
        // the values pushed before the drop are visible to the next `pop`
        // (rtrb's `no_race_with_is_abandoned` checks the same).
        self.ring.abandoned.load(Ordering::Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc as StdArc;

    #[test]
    fn slots_are_cache_line_aligned_and_sized() {
        for cap in [1usize, 2, 16, 1024] {
            let (p, _c) = bounded::<u64>(cap);
            let addr = p.ring.buffer.as_ptr() as usize;
            assert_eq!(addr % SLOTS_ALIGN, 0, "capacity {cap}: slots at {addr:#x}");
            assert_eq!(p.buf as usize, addr);
            let size = Slots::<u64>::layout(cap).size();
            assert_eq!(size % SLOTS_ALIGN, 0, "capacity {cap}: {size} bytes");
            assert!(size >= cap * core::mem::size_of::<Cell<u64>>());
        }
    }

    #[test]
    fn zero_sized_values_and_over_aligned_values() {
        let (mut tx, mut rx) = bounded::<()>(4);
        for _ in 0..4 {
            tx.push(()).unwrap();
        }
        assert!(tx.push(()).is_err());
        assert_eq!(rx.read_chunk(8).count(), 4);
        assert_eq!(rx.pop(), None);

        #[derive(Debug, PartialEq)]
        #[repr(align(256))]
        struct Big(u8);
        let (mut tx, mut rx) = bounded::<Big>(4);
        assert_eq!(tx.ring.buffer.as_ptr() as usize % 256, 0);
        for i in 0..6 {
            tx.push(Big(i)).unwrap();
            assert_eq!(rx.pop(), Some(Big(i)));
        }
    }

    #[test]
    fn fifo_full_empty_wraparound() {
        let (mut tx, mut rx) = bounded::<u32>(2);
        for round in 0..5 {
            tx.push(round * 2).unwrap();
            tx.push(round * 2 + 1).unwrap();
            assert_eq!(tx.push(99).unwrap_err().into_inner(), 99);
            assert_eq!(tx.slots(), 0);
            assert_eq!(rx.len(), 2);
            assert_eq!(rx.pop(), Some(round * 2));
            assert_eq!(rx.pop(), Some(round * 2 + 1));
            assert_eq!(rx.pop(), None);
            assert!(rx.is_empty());
        }
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn bad_capacity_panics() {
        let _ = bounded::<u8>(6);
    }

    struct Counted(StdArc<StdAtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn drop_frees_unread_values_once() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let (mut tx, mut rx) = bounded::<Counted>(8);
        for _ in 0..5 {
            tx.push(Counted(drops.clone())).unwrap();
        }
        drop(rx.pop());
        drop(tx);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1);
        drop(rx.pop());
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 2);
        drop(rx);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 5);
    }

    #[test]
    fn panicking_iterator_leaks_nothing() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let (mut tx, rx) = bounded::<Counted>(8);
        let d = drops.clone();
        let mut produced = 0;
        let mut iter = std::iter::from_fn(move || {
            produced += 1;
            assert!(produced <= 3, "iterator failure");
            Some(Counted(d.clone()))
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.push_iter(&mut iter)));
        assert!(r.is_err());
        drop(iter);
        drop(tx);
        drop(rx);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[test]
    fn chunks_partial_and_leaked_drop_each_value_once() {
        // Leaked values own no heap memory (Miri reports leaked allocations).
        static DROPS: StdAtomicUsize = StdAtomicUsize::new(0);
        struct Tick;
        impl Drop for Tick {
            fn drop(&mut self) {
                DROPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let count = || DROPS.load(std::sync::atomic::Ordering::Relaxed);
        let (mut tx, mut rx) = bounded::<Tick>(4);
        let mut chunk = tx.write_chunk(8);
        assert_eq!(chunk.len(), 4);
        for _ in 0..3 {
            chunk.push(Tick).unwrap();
        }
        drop(chunk);
        assert_eq!(tx.write_chunk(8).len(), 1);
        // A leaked write chunk publishes nothing: its value is leaked and
        // its slot stays free.
        let mut chunk = tx.write_chunk(1);
        chunk.push(Tick).unwrap();
        std::mem::forget(chunk);
        assert_eq!(tx.write_chunk(1).len(), 1);
        assert_eq!(rx.read_chunk(8).len(), 3);
        // Take one value and drop the chunk: only that one is consumed.
        let mut chunk = rx.read_chunk(8);
        drop(chunk.next());
        drop(chunk);
        assert_eq!(count(), 1);
        assert_eq!(rx.len(), 2);
        // A leaked read chunk consumes its values: the one taken is dropped
        // by us, the one not taken is leaked; none is read or dropped again.
        let mut chunk = rx.read_chunk(2);
        drop(chunk.next());
        std::mem::forget(chunk);
        assert_eq!(count(), 2);
        assert_eq!(rx.read_chunk(8).len(), 0);
        tx.push(Tick).unwrap();
        drop(tx);
        drop(rx); // drops the one value published after the leak
        assert_eq!(count(), 3);
    }

    #[test]
    fn chunks_refresh_only_when_the_cache_is_short() {
        let (mut tx, mut rx) = bounded::<u32>(8);
        assert_eq!(tx.write_chunk(3).fill_from_iter(&mut (0..)), 3);
        // The consumer's cache says 0 ready: a chunk of 2 refreshes and sees 3.
        let mut chunk = rx.read_chunk(2);
        assert_eq!(chunk.len(), 2);
        assert_eq!(
            (chunk.next(), chunk.next(), chunk.next()),
            (Some(0), Some(1), None)
        );
        drop(chunk);
        // One value left by the cache: a chunk of 1 does not need the tail.
        assert_eq!(rx.read_chunk(1).collect::<Vec<_>>(), [2]);
        // The producer's cache says 5 free: a chunk of 8 refreshes (8 free).
        assert_eq!(tx.write_chunk(8).len(), 8);
        assert_eq!(tx.write_chunk(0).len(), 0);
    }

    #[test]
    fn threaded_chunks_exactly_once_in_order() {
        let n: u64 = if cfg!(miri) { 300 } else { 300_000 };
        let (mut tx, mut rx) = bounded::<u64>(if cfg!(miri) { 4 } else { 64 });
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut src = 0..n;
                let mut size = 1;
                while !src.is_empty() {
                    if tx.write_chunk(size).fill_from_iter(&mut src) == 0 {
                        std::thread::yield_now();
                    }
                    size = size % 7 + 1;
                }
            });
            let mut expect = 0;
            let mut size = 1;
            while expect < n {
                let mut chunk = rx.read_chunk(size);
                if chunk.len() == 0 {
                    std::thread::yield_now();
                }
                // Take all but (sometimes) the last one.
                let take = chunk.len() - usize::from(size % 3 == 0 && chunk.len() > 1);
                for v in chunk.by_ref().take(take) {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                drop(chunk);
                size = size % 5 + 1;
            }
            assert_eq!(rx.pop(), None);
        });
    }

    #[test]
    fn threaded_batches_exactly_once_in_order() {
        let n: u64 = if cfg!(miri) { 200 } else { 200_000 };
        let (mut tx, mut rx) = bounded::<u64>(if cfg!(miri) { 4 } else { 64 });
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut src = 0..n;
                let mut next = src.next();
                while let Some(v) = next {
                    if v % 3 == 0 {
                        match tx.push(v) {
                            Ok(()) => next = src.next(),
                            Err(e) => {
                                assert_eq!(e.into_inner(), v);
                                std::thread::yield_now();
                            }
                        }
                    } else {
                        let mut it = std::iter::once(v).chain(src.by_ref().take(5));
                        let mut pushed = tx.push_iter(&mut it);
                        // Whatever did not fit goes through push one by one.
                        for rest in it {
                            let mut r = rest;
                            while let Err(e) = tx.push(r) {
                                r = e.into_inner();
                                std::thread::yield_now();
                            }
                            pushed += 1;
                        }
                        let _ = pushed;
                        next = src.next();
                    }
                }
            });
            let mut expect = 0;
            let mut buf = Vec::new();
            while expect < n {
                buf.clear();
                if rx.pop_batch(&mut buf, 7) == 0 {
                    match rx.pop() {
                        Some(v) => {
                            assert_eq!(v, expect);
                            expect += 1;
                        }
                        None => std::thread::yield_now(),
                    }
                }
                for &v in &buf {
                    assert_eq!(v, expect);
                    expect += 1;
                }
            }
            assert_eq!(rx.pop(), None);
        });
    }
}
