//! Immutable tree nodes, the fixed-capacity arrays they are made of, and
//! the entries they point to.
//!
//! A node is built privately by one writer, published by a CAS (a leaf
//! version by its handle's, inner nodes by the root's), and never written
//! again apart from a leaf version's timestamp (`ts`, stamped once): every
//! later change builds a new copy. Keys and values are not stored in nodes: each lives in
//! its own [`Entry`], allocated once by the `insert` that brought it and
//! never moved, and nodes hold pointers to entries (leaf slots) and to
//! entries whose keys serve as separators (inner nodes). A path copy
//! therefore copies pointers, never keys or values, which is why writers
//! need no `Clone`. An inner node's children are raw pointers it does *not*
//! own: subtrees are shared between versions of the tree, and which version
//! frees a node is decided by the writer that unlinks it (see `mod.rs`,
//! "Memory").

use core::mem::{ManuallyDrop, MaybeUninit};

use core::alloc::Layout;
use core::marker::PhantomData;

use super::blocks::{self, Depot};
use core::ptr;

use crate::epoch::{Guard, Link, Participant};
use crate::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;

/// Fan-out: the most keys in a leaf and the most children of an inner node.
/// Shrunk under loom and Miri so a handful of inserts splits nodes.
pub(super) const B: usize = if cfg!(any(loom, miri)) { 4 } else { 32 };

/// Key images per group: a search binary-searches one group, picked by the
/// group tops of the node's header ([`Slots::partition_images`]). Eight
/// `u64`s are one cache line; 2 under loom and Miri so that their small
/// nodes have groups too.
pub(super) const GROUP: usize = if B >= 32 { 8 } else { 2 };

/// Group tops per node: one per group after the first.
const TOPS: usize = (B - 1) / GROUP;

/// A vector with inline capacity `N`, used only to build nodes.
///
/// `repr(C)`: the length comes first, so that a node's lengths lie in its
/// header line, next to the fields a search reads before its first probe
/// (left to itself, rustc places the 8-byte `len` after the 512-byte
/// array of a node's slots: one more cache line per node visited).
#[repr(C)]
pub(super) struct InlineVec<T, const N: usize> {
    len: usize,
    buf: [MaybeUninit<T>; N],
}

impl<T, const N: usize> InlineVec<T, N> {
    pub(super) fn new() -> Self {
        Self {
            len: 0,
            buf: [const { MaybeUninit::uninit() }; N],
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(super) fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` slots are initialized (invariant kept by
        // `push` and `remove`), and `MaybeUninit<T>` has `T`'s layout.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<T>(), self.len) }
    }

    /// Removes and returns the last element.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialized and is no longer counted, so
        // it is read out exactly once.
        Some(unsafe { self.buf[self.len].assume_init_read() })
    }

    /// Drops every element.
    #[inline]
    pub(super) fn clear(&mut self) {
        while self.pop().is_some() {}
    }

    /// Appends `v`.
    ///
    /// # Panics
    /// If the vector is full (a bug in the caller: nodes are split before).
    #[inline]
    pub(super) fn push(&mut self, v: T) {
        assert!(self.len < N, "InlineVec overflow");
        self.buf[self.len].write(v);
        self.len += 1;
    }
}

impl<T: Copy, const N: usize> InlineVec<T, N> {
    /// Appends a copy of every element of `s`.
    ///
    /// # Panics
    /// If they do not fit (checked before copying anything).
    #[inline]
    pub(super) fn extend_cloned(&mut self, s: &[T]) {
        let len = self.len;
        assert!(s.len() <= N - len, "InlineVec overflow");
        // One bulk copy (a `memcpy` of pointers: the inner loop of every
        // path copy); `T: Copy`, so nothing can panic half-way.
        // SAFETY: the assertion above: slots `len..len + s.len()` exist;
        // `s` cannot overlap them (we hold `&mut self`), and `MaybeUninit<T>`
        // has `T`'s layout.
        unsafe {
            core::ptr::copy_nonoverlapping(
                s.as_ptr(),
                self.buf.as_mut_ptr().add(len).cast::<T>(),
                s.len(),
            );
        }
        self.len = len + s.len();
    }
}

impl<T, const N: usize> Drop for InlineVec<T, N> {
    fn drop(&mut self) {
        let len = self.len;
        // Leave the vector empty first so a panicking element destructor
        // cannot make us drop a slot twice.
        self.len = 0;
        // SAFETY: the first `len` slots were initialized and are dropped
        // exactly once here.
        unsafe {
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(
                self.buf.as_mut_ptr().cast::<T>(),
                len,
            ))
        };
    }
}

/// A pointer to a published (or about to be published) node. It points
/// into a [`Block`]: nodes are allocated, retired and recycled as blocks of
/// the map's epoch pool (one layout per map, see [`alloc_node`]).
pub(super) type NodePtr<K, V> = *mut Node<K, V>;

/// Most levels a path can have. A node made by a split holds at least
/// `B / 2` children (entries), and nodes are created only by splits (and
/// the two of a root split), so a tree of height `h` has seen at least
/// `(B / 2)^(h - 1)` inserts: 64 levels are out of reach of any `u64`
/// count of operations (`(B / 2)^63` with `B / 2 >= 2`). A deeper path
/// panics (in `InlineVec::push`) before publishing anything.
pub(super) const MAX_HEIGHT: usize = 64;

/// A node's heap block: the pool's link word, then the node. The link word
/// is written by the epoch pool when the block is retired or recycled;
/// readers of the node never read it.
///
/// Aligned to a cache line, so that the block's first line holds the link
/// word, the node's discriminant and its header fields (a leaf version's
/// `ts`, `prev` and length; an inner node's `bottom` and separator count),
/// which every visit reads before its binary search: one line instead of
/// three (see `docs/btree.md`, "Nodes" and "Session 10").
#[repr(C, align(64))]
pub(super) struct Block<K, V> {
    link: Link,
    node: Node<K, V>,
}

/// The layout of every node block of a map.
#[inline]
fn block_layout<K, V>() -> Layout {
    Layout::new::<Block<K, V>>()
}

/// The block that node `p` lives in.
#[inline]
fn block_of<K, V>(p: NodePtr<K, V>) -> *mut Block<K, V> {
    // The node is the field at `offset_of!(Block, node)`; `p` was derived
    // from the block pointer (`alloc_node`), so stepping back stays in its
    // allocation with its provenance.
    p.cast::<u8>()
        .wrapping_sub(core::mem::offset_of!(Block<K, V>, node))
        .cast::<Block<K, V>>()
}

/// Places `node` in a block: a recycled one from this thread's pool in the
/// map's collector when `rec` is given and has one, else a fresh
/// allocation.
///
/// # Safety
/// `rec`, if given, is the calling thread's record in the map's collector,
/// whose pool holds only node blocks of this map (`Block<K, V>`'s layout).
#[inline]
pub(super) unsafe fn alloc_node<K, V>(
    rec: Option<&Participant>,
    node: Node<K, V>,
) -> NodePtr<K, V> {
    let mut b: *mut Block<K, V> = match rec {
        // SAFETY: the precondition: our record, whose recycled blocks all
        // have `Block<K, V>`'s layout and hold no live value.
        Some(r) => unsafe { r.take_block() }.cast(),
        None => ptr::null_mut(),
    };
    if b.is_null() {
        let layout = block_layout::<K, V>();
        // SAFETY: `Block` is not zero-sized (it holds a link word).
        b = unsafe { std::alloc::alloc(layout) }.cast();
        if b.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
    }
    // SAFETY: `b` is a block of `Block`'s layout that only we can reach (a
    // fresh allocation, or a recycled block whose grace period ended).
    unsafe {
        ptr::write(
            ptr::addr_of_mut!((*b).link),
            Link {
                next: AtomicPtr::new(ptr::null_mut()),
            },
        );
        let p = ptr::addr_of_mut!((*b).node);
        ptr::write(p, node);
        p
    }
}

/// Gives back a node that no other thread has seen (a failed attempt's),
/// for reuse by this thread.
///
/// # Safety
/// `p` came from [`alloc_node`] with the same `rec` (the calling thread's
/// record), was never published, and is not used again.
#[inline]
pub(super) unsafe fn free_unpublished<K, V>(rec: &Participant, p: NodePtr<K, V>) {
    // Nodes hold only pointers and counts: nothing to drop (and a node's
    // `InlineVec`s drop nothing that owns memory).
    // SAFETY: the precondition: a block of this map's layout, with no
    // other live value, reachable by no other thread.
    unsafe { rec.recycle_block(block_of(p).cast::<u8>(), block_layout::<K, V>()) };
}

/// Retires node `p`, unlinked by the caller's CAS, into the map's pool: it
/// is reused once every thread pinned now has unpinned.
///
/// # Safety
/// `p` came from [`alloc_node`] for this map, is no longer reachable from
/// the current version, is retired once, and `guard` belongs to the map's
/// collector.
#[inline]
pub(super) unsafe fn retire_node<K, V>(guard: &Guard<'_>, p: NodePtr<K, V>) {
    // The node is not dropped: it owns nothing (pointers and counts), and
    // stale readers pinned before our CAS may still read it; only the link
    // word, which they never read, is written until they unpin.
    // SAFETY: the precondition; every block retired into the map's
    // collector is a node block of this layout.
    unsafe { guard.retire_block(block_of(p).cast::<u8>(), block_layout::<K, V>()) };
}

/// Frees node `p` now (the map is being dropped).
///
/// # Safety
/// `p` came from [`alloc_node`], no thread can reach it any more, and it is
/// freed once.
pub(super) unsafe fn free_node_now<K, V>(p: NodePtr<K, V>) {
    // SAFETY: the precondition; the node owns nothing to drop.
    unsafe { std::alloc::dealloc(block_of(p).cast::<u8>(), block_layout::<K, V>()) };
}

/// A tree node: a leaf of sorted entries or an inner node of separators.
///
/// Every node sits alone in a pool block of one layout (the larger
/// variant's), and nodes hold only thin pointers and counts, so the
/// variants' size difference does not depend on `K` or `V`; clippy only
/// sees the generic lower bound.
///
/// `repr(C)`: the discriminant is the node's first word, in the block's
/// first line (left to itself, rustc stores it in the niche of
/// `Inner::bottom`, which it places at the end of the largest variant,
/// 784 bytes in: a line of its own that every visit, leaf or inner, loads).
#[allow(clippy::large_enum_variant)]
#[repr(C)]
pub(super) enum Node<K, V> {
    Leaf(Leaf<K, V>),
    Inner(Inner<K, V>),
}

/// An entry of the map: one key and its value, at a fixed address from its
/// `insert` until it is freed.
///
/// `refs` counts the references to it from the *current* version of the
/// tree (1 for the leaf slot while the key is in the map, plus one per inner
/// node that uses its key as a separator), plus speculative increments of
/// writers whose attempt has not yet been published or abandoned. Dropping
/// a reference is always deferred through the epoch collector ([`release`])
/// past every reader that could still reach the entry through it; the
/// release of the leaf reference drops the value, the last release frees
/// the entry (and drops the key). So the value goes as soon as the key
/// leaves the map (after a grace period), while the key may live on as a
/// separator.
pub(super) struct Entry<K, V> {
    pub(super) refs: AtomicUsize,
    pub(super) key: K,
    /// Dropped in place by the release of the leaf reference (in a cell:
    /// readers of the key hold `&Entry` meanwhile).
    val: UnsafeCell<ManuallyDrop<V>>,
}

/// A pointer to an entry.
pub(super) type EntryPtr<K, V> = *mut Entry<K, V>;

impl<K, V> Entry<K, V> {
    /// A new entry with its leaf reference counted, in a block from this
    /// thread's cache or the map's `depot` when they have one.
    pub(super) fn alloc(key: K, val: V, depot: &Depot) -> EntryPtr<K, V> {
        let p = blocks::alloc(Layout::new::<Self>(), depot).cast::<Self>();
        // SAFETY: `blocks::alloc` returns a fresh block (never null) of
        // `Self`'s size and alignment.
        unsafe {
            p.write(Entry {
                refs: AtomicUsize::new(1),
                key,
                val: UnsafeCell::new(ManuallyDrop::new(val)),
            })
        };
        p
    }

    /// Gives the block of an entry whose fields are dropped or moved out
    /// back to this thread's cache.
    ///
    /// # Safety
    /// 1. `p` came from [`Entry::alloc`], its key and value are dropped or
    ///    moved out, and no thread can access it any more.
    /// 2. `depot` is the map's (made for entries of this type).
    unsafe fn free_block(p: EntryPtr<K, V>, depot: &Depot) {
        // SAFETY: preconditions 1 and 2; allocated with this layout.
        unsafe { blocks::free(p.cast(), Layout::new::<Self>(), depot) }
    }

    /// Runs `f` on the value.
    ///
    /// # Safety
    /// The caller reached this entry through a leaf slot of a version that
    /// a pinned guard keeps alive (so the leaf reference is not yet
    /// released and the value not dropped).
    #[inline]
    pub(super) unsafe fn with_val<R>(&self, f: impl FnOnce(&V) -> R) -> R {
        // SAFETY: the precondition: the value is alive, and it is written
        // (dropped) only by the release of the leaf reference, which the
        // epoch orders after this read.
        self.val.with(|p| f(unsafe { &*p }))
    }

    /// Takes key and value back out of an entry that was never published.
    ///
    /// # Safety
    /// `p` came from [`Entry::alloc`] and no other thread has seen it;
    /// `depot` is the map's.
    pub(super) unsafe fn unalloc(p: EntryPtr<K, V>, depot: &Depot) -> (K, V) {
        // SAFETY: the precondition: `p` is initialized and ours alone; it
        // is read once, and its block freed right after.
        let Entry { key, val, .. } = unsafe { p.read() };
        // SAFETY: the fields were moved out; nobody else has seen `p`; the
        // map's depot.
        unsafe { Self::free_block(p, depot) };
        (key, ManuallyDrop::into_inner(val.into_inner()))
    }
}

/// Drops one counted reference to `e` now: the leaf reference (`leaf`)
/// also drops the value; the last reference frees the entry.
///
/// # Safety
/// The reference being dropped was counted in `e.refs` and is dropped once;
/// no thread can still reach `e` through it (it was unlinked and a grace
/// period has passed, or the map is being dropped); for `leaf`, it is the
/// leaf reference. `depot` is the map's.
pub(super) unsafe fn release_now<K, V>(e: EntryPtr<K, V>, leaf: bool, depot: &Depot) {
    /// Drops the counted reference when it goes out of scope, so that a
    /// value destructor that unwinds does not leak the entry and its key.
    struct Unref<'d, K, V>(EntryPtr<K, V>, &'d Depot);
    impl<K, V> Drop for Unref<'_, K, V> {
        fn drop(&mut self) {
            // AcqRel: the last releaser's Acquire sees every other
            // releaser's accesses (Release) before freeing, as for `Arc`.
            // SAFETY: `release_now`'s precondition: the entry is alive, our
            // reference is still counted, and it is dropped once, here.
            if unsafe { (*self.0).refs.fetch_sub(1, Ordering::AcqRel) } == 1 {
                // SAFETY: the count reached zero: no version references the
                // entry and every release (each after its grace period) has
                // run, so no thread can reach it; it came from
                // `Entry::alloc`. It is read out once, and its block freed
                // before the key's destructor runs (which may unwind).
                let e = unsafe { self.0.read() };
                // SAFETY: moved out just now; unreachable, as above; the
                // map's depot (precondition).
                unsafe { Entry::free_block(self.0, self.1) };
                // The value was dropped by the leaf release (ManuallyDrop);
                // this drops the key.
                drop(e);
            }
        }
    }
    let unref = Unref(e, depot);
    if leaf {
        // SAFETY: the precondition: nobody reads the value any more (only
        // leaf slots lead to it); other threads may read the key, a
        // different field, through separators.
        unsafe { (*e).val.with_mut(|p| ManuallyDrop::drop(&mut *p)) };
    }
    drop(unref);
}

/// Defers [`release_now`] past every thread pinned now.
///
/// # Safety
/// As for [`release_now`], except that threads pinned now may still reach
/// `e` through the reference (it is unlinked from the current version), and
/// running the release on another thread is sound (`K, V: Send` when the
/// map is shared); `depot` is the map's, and lives until the map's
/// collector has dropped (it is in the map's arena, which drops after it).
pub(super) unsafe fn release<K, V>(
    guard: &Guard<'_>,
    e: EntryPtr<K, V>,
    leaf: bool,
    depot: &Depot,
) {
    /// The entry with `leaf` in its low bit (entries are at least
    /// 2-aligned: they hold an `AtomicUsize`; asserted below), and the depot: two words, so the function can carry a
    /// hint.
    struct Args<K, V>(*mut u8, *const Depot, PhantomData<EntryPtr<K, V>>);
    // SAFETY: the precondition: releasing on another thread is sound, and
    // the depot is `Sync` (a mutex and an atomic).
    unsafe impl<K, V> Send for Args<K, V> {}
    const { assert!(core::mem::align_of::<Entry<K, V>>() >= 2) };
    let args = Args::<K, V>(
        e.cast::<u8>().wrapping_add(usize::from(leaf)),
        depot,
        PhantomData,
    );
    let f = move || {
        let args = args;
        let leaf = (args.0 as usize) & 1 == 1;
        let e = args.0.wrapping_sub(usize::from(leaf)).cast::<Entry<K, V>>();
        // SAFETY: the grace period has passed: the precondition of
        // `release_now` holds now; the depot is alive (precondition).
        unsafe { release_now(e, leaf, &*args.1) }
    };
    // SAFETY: the closure runs once, and `release_now` is sound on any
    // thread (precondition); it borrows nothing. Its first accesses are to
    // the entry (the value, then `refs`): the hint (a grace period later
    // the entry is cold, and a bag's releases would otherwise miss one
    // after another).
    unsafe { guard.defer_unchecked_hinted(f, e.cast_const().cast()) }
}

/// A node's reference to an entry: the pointer, and the *image* of the
/// entry's key — an order-preserving `u64` — when the key type is a
/// primitive integer, `char` or `bool` ([`Kind`]); `0` otherwise.
///
/// With an image, searching a node compares the `u64`s stored in the node
/// itself, contiguous and branch-free, instead of following one pointer per
/// probe to an out-of-line entry: a lookup touches the lines of the nodes
/// on its path and one entry (the value). The image is computed once, when
/// the entry is first put in a node (by the writer that owns it, or from a
/// separator it holds), and copied with the pointer by every path copy.
/// Nodes store their slots split in two arrays ([`Slots`]); a `Slot` is
/// one of them taken out, to build a node.
pub(super) struct Slot<K, V> {
    pub(super) e: EntryPtr<K, V>,
    pub(super) h: u64,
}

impl<K, V> Clone for Slot<K, V> {
    #[inline]
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Slot<K, V> {}

impl<K, V> Slot<K, V> {
    /// The slot for entry `e`, with its key's image.
    ///
    /// # Safety
    /// `e` is alive (as for [`key_of`]) while this runs.
    #[inline]
    pub(super) unsafe fn of(e: EntryPtr<K, V>) -> Self {
        let kind = Kind::of::<K>();
        let h = if kind == Kind::Other {
            0
        } else {
            // SAFETY: the precondition; `kind` is `K`'s own kind.
            unsafe { kind.image(key_of(e)) }
        };
        Slot { e, h }
    }
}

/// A node's sorted slots (at most [`B`]), stored as two arrays: the key
/// images, then the entry pointers (structure of arrays).
///
/// A search reads only images until it has its index, so they are packed
/// eight to a cache line (one group) instead of four `{e, h}` pairs: with
/// the group tops it reads one line of images, and a lookup then reads one
/// entry pointer (in the line of its group, only when the key is found).
/// `repr(C)`: the length and the tops come first, in the node's header
/// line ([`Block`]).
#[repr(C)]
pub(super) struct Slots<K, V> {
    len: usize,
    /// `tops[j]` is a copy of image `GROUP * (j + 1)` (the first of group
    /// `j + 1`) while that slot exists, else `u64::MAX`: the
    /// search reads these, in the header line, to pick the one group of
    /// images it binary-searches ([`Slots::partition_images`]).
    tops: [u64; TOPS],
    /// Initialized below `len`. Starts a cache line when the node's
    /// header is one line (`B = 32`: the test
    /// `a_node_header_is_the_first_line_of_its_block`), so each group of
    /// [`GROUP`] images is one line.
    hs: [MaybeUninit<u64>; B],
    /// Initialized below `len`.
    es: [MaybeUninit<EntryPtr<K, V>>; B],
}

impl<K, V> Slots<K, V> {
    pub(super) fn new() -> Self {
        Slots {
            len: 0,
            tops: [u64::MAX; TOPS],
            hs: [const { MaybeUninit::uninit() }; B],
            es: [const { MaybeUninit::uninit() }; B],
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The key images, in order.
    #[inline]
    pub(super) fn images(&self) -> &[u64] {
        // SAFETY: the first `len` images are initialized (kept by every
        // method that raises `len`), and `MaybeUninit<u64>` has `u64`'s
        // layout.
        unsafe { core::slice::from_raw_parts(self.hs.as_ptr().cast::<u64>(), self.len) }
    }

    /// The entry pointers, in order.
    #[inline]
    pub(super) fn entries(&self) -> &[EntryPtr<K, V>] {
        // SAFETY: as for `images`.
        unsafe { core::slice::from_raw_parts(self.es.as_ptr().cast::<EntryPtr<K, V>>(), self.len) }
    }

    /// Slot `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    #[inline]
    pub(super) fn get(&self, i: usize) -> Slot<K, V> {
        Slot {
            e: self.entries()[i],
            h: self.images()[i],
        }
    }

    /// The slots, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = Slot<K, V>> + '_ {
        self.entries()
            .iter()
            .zip(self.images())
            .map(|(&e, &h)| Slot { e, h })
    }

    /// Appends `s`.
    ///
    /// # Panics
    /// If the node is full (a bug in the caller: nodes are split before).
    #[inline]
    pub(super) fn push(&mut self, s: Slot<K, V>) {
        assert!(self.len < B, "Slots overflow");
        self.hs[self.len].write(s.h);
        self.es[self.len].write(s.e);
        self.note_top(self.len, s.h);
        self.len += 1;
    }

    /// Keeps `tops` in step with image `i` (just written as `h`).
    #[inline(always)]
    fn note_top(&mut self, i: usize, h: u64) {
        if i % GROUP == 0 && i > 0 {
            self.tops[i / GROUP - 1] = h;
        }
    }

    /// Appends a copy of slots `r` of `src`.
    ///
    /// # Panics
    /// If `r` is out of `src`'s bounds or the slots do not fit (checked
    /// before copying anything).
    #[inline]
    pub(super) fn extend_from(&mut self, src: &Slots<K, V>, r: core::ops::Range<usize>) {
        let (hs, es) = (&src.images()[r.clone()], &src.entries()[r]);
        let len = self.len;
        assert!(hs.len() <= B - len, "Slots overflow");
        // Two bulk copies (the inner loop of every leaf copy); the data is
        // `Copy`, so nothing can panic half-way.
        // SAFETY: the assertion above: slots `len..len + hs.len()` exist in
        // both arrays; `src` cannot overlap `self` (we hold `&mut self`);
        // `MaybeUninit<T>` has `T`'s layout.
        unsafe {
            ptr::copy_nonoverlapping(
                hs.as_ptr(),
                self.hs.as_mut_ptr().add(len).cast::<u64>(),
                hs.len(),
            );
            ptr::copy_nonoverlapping(
                es.as_ptr(),
                self.es.as_mut_ptr().add(len).cast::<EntryPtr<K, V>>(),
                es.len(),
            );
        }
        // The group starts among the copied slots get their tops.
        let mut i = len.next_multiple_of(GROUP).max(GROUP);
        while i < len + hs.len() {
            self.tops[i / GROUP - 1] = hs[i - len];
            i += GROUP;
        }
        self.len = len + hs.len();
    }

    /// The number of leading slots whose image satisfies `pred`, which
    /// must hold for a prefix of the (sorted) images: `pred` is `x < h` or
    /// `x <= h`.
    ///
    /// Two levels, so that a search touches one line of images: `pred` on
    /// the group tops (in the header line) gives the group `g` that holds
    /// the boundary (the first `g` tops satisfy it, so the boundary is past
    /// slot `GROUP * g`; top `g` does not, so it is at most `GROUP * (g +
    /// 1)`), then a branch-free binary search of that group's images.
    #[inline(always)]
    pub(super) fn partition_images(
        &self,
        pred: impl Fn(u64) -> bool,
        ahead: impl FnOnce(usize),
    ) -> usize {
        let len = self.len;
        // Tops `0..valid` exist (top `j` is image `GROUP * (j + 1)`); the
        // others are `u64::MAX`, so the tops are sorted and `pred` holds
        // for a prefix of them. It can hold for a missing top only when it
        // holds for every existing one (`x <= u64::MAX`): the `min`.
        let valid = len.saturating_sub(1) / GROUP;
        let mut g = 0;
        for &t in &self.tops {
            g += usize::from(pred(t));
        }
        let start = g.min(valid) * GROUP;
        // `start < len` when `len > 0` (`valid * GROUP <= len - 1`), and
        // `start = 0` when `len = 0`.
        let n = (len - start).min(GROUP);
        ahead(start);
        // SAFETY: `start + n <= len`: images `start..start + n` are
        // initialized (`images`).
        let group =
            unsafe { core::slice::from_raw_parts(self.hs.as_ptr().add(start).cast::<u64>(), n) };
        start + image_partition(group, pred)
    }

    /// Appends a copy of every slot of `src`.
    ///
    /// # Panics
    /// If they do not fit (checked before copying anything).
    #[inline]
    pub(super) fn extend_slots(&mut self, src: &[Slot<K, V>]) {
        assert!(src.len() <= B - self.len, "Slots overflow");
        for &s in src {
            self.push(s);
        }
    }
}

/// The key types whose order is that of an injective `u64` image (see
/// [`Slot`]). Found by type identity, so a type that merely looks like an
/// integer (a newtype, a `Cell<u64>`, an atomic) is `Other` and takes the
/// generic path through `Ord`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    U8,
    U16,
    U32,
    U64,
    Usize,
    I8,
    I16,
    I32,
    I64,
    Isize,
    Char,
    Bool,
    Other,
}

/// `TypeId` of any type, `'static` or not (lifetimes are erased: `&'a u8`
/// and `&'static u8` get the same id, which is all [`Kind`] needs, since
/// every kind it names has no lifetime).
fn type_id<T: ?Sized>() -> core::any::TypeId {
    trait Named {
        fn id(&self) -> core::any::TypeId
        where
            Self: 'static;
    }
    impl<T: ?Sized> Named for core::marker::PhantomData<T> {
        fn id(&self) -> core::any::TypeId
        where
            Self: 'static,
        {
            core::any::TypeId::of::<T>()
        }
    }
    let marker = core::marker::PhantomData::<T>;
    let named: &dyn Named = &marker;
    // SAFETY: only the trait object's lifetime bound changes (same layout,
    // same vtable). `id` reads nothing through `self` (a zero-sized
    // marker): it returns the compile-time id of `T` with its lifetimes
    // erased, so no value of a shorter lifetime is used past its end.
    let named: &(dyn Named + 'static) = unsafe { core::mem::transmute(named) };
    named.id()
}

impl Kind {
    /// `T`'s kind (folded to a constant by the optimizer).
    #[inline(always)]
    pub(super) fn of<T: ?Sized>() -> Kind {
        use core::any::TypeId;
        let id = type_id::<T>();
        if id == TypeId::of::<u64>() {
            Kind::U64
        } else if id == TypeId::of::<u32>() {
            Kind::U32
        } else if id == TypeId::of::<usize>() {
            Kind::Usize
        } else if id == TypeId::of::<i64>() {
            Kind::I64
        } else if id == TypeId::of::<i32>() {
            Kind::I32
        } else if id == TypeId::of::<u16>() {
            Kind::U16
        } else if id == TypeId::of::<u8>() {
            Kind::U8
        } else if id == TypeId::of::<isize>() {
            Kind::Isize
        } else if id == TypeId::of::<i16>() {
            Kind::I16
        } else if id == TypeId::of::<i8>() {
            Kind::I8
        } else if id == TypeId::of::<char>() {
            Kind::Char
        } else if id == TypeId::of::<bool>() {
            Kind::Bool
        } else {
            Kind::Other
        }
    }

    /// The image of `*k`: `a < b` exactly when `image(a) < image(b)`, and
    /// equal images mean equal keys (signed values are offset by flipping
    /// the sign bit of their 64-bit extension).
    ///
    /// # Safety
    /// `self` is `Kind::of::<T>()` and is not `Other`.
    #[inline(always)]
    pub(super) unsafe fn image<T: ?Sized>(self, k: &T) -> u64 {
        const SIGN: u64 = 1 << 63;
        let p = (k as *const T).cast::<u8>();
        // SAFETY: the precondition: `T` is the type the kind names, so `p`
        // points to a valid, aligned value of it.
        unsafe {
            match self {
                Kind::U8 => u64::from(*p),
                Kind::U16 => u64::from(*p.cast::<u16>()),
                Kind::U32 => u64::from(*p.cast::<u32>()),
                Kind::U64 => *p.cast::<u64>(),
                Kind::Usize => *p.cast::<usize>() as u64,
                Kind::I8 => i64::from(*p.cast::<i8>()) as u64 ^ SIGN,
                Kind::I16 => i64::from(*p.cast::<i16>()) as u64 ^ SIGN,
                Kind::I32 => i64::from(*p.cast::<i32>()) as u64 ^ SIGN,
                Kind::I64 => *p.cast::<i64>() as u64 ^ SIGN,
                Kind::Isize => *p.cast::<isize>() as i64 as u64 ^ SIGN,
                Kind::Char => u64::from(*p.cast::<char>()),
                Kind::Bool => u64::from(*p.cast::<bool>()),
                Kind::Other => unreachable!("no image for other key types"),
            }
        }
    }
}

/// The image of a query `q` against keys of type `K`, if nodes of a map
/// with keys `K` carry images and `Q` is `K` itself (a `Q` that `K` merely
/// borrows as may order differently from the image: generic path).
#[inline(always)]
pub(super) fn query_image<K, Q: ?Sized>(q: &Q) -> Option<u64> {
    let kind = Kind::of::<K>();
    if kind == Kind::Other || Kind::of::<Q>() != kind {
        return None;
    }
    // SAFETY: `Q` is the type `kind` names (the kinds are type identities).
    Some(unsafe { kind.image(q) })
}

/// The number of leading slots whose image satisfies `pred` (which must be
/// true on a prefix and false after it): a binary search with a fixed
/// number of steps for a given length and no data-dependent branch.
///
/// Each step moves `base` with a conditional move. Written as a plain
/// `if`, LLVM turns that select back into a branch (its x86 heuristic
/// prefers a branch when the condition compares a loaded value), and a
/// lookup then mispredicts about half of its ~18 probes: measured in
/// session 12, a `get` took ~200 ns with the branch and ~150 ns with
/// `cmov` on this host (`docs/btree.md`, "Session 12").
#[inline(always)]
fn image_partition(s: &[u64], pred: impl Fn(u64) -> bool) -> usize {
    let mut n = s.len();
    if n == 0 {
        return 0;
    }
    // Invariant: every slot before `base` satisfies `pred`; the answer is
    // in `base..=base + n`.
    let mut base = 0usize;
    while n > 1 {
        let half = n / 2;
        let mid = base + half;
        // SAFETY: `mid < base + n <= s.len()`.
        let h = *unsafe { s.get_unchecked(mid) };
        base = select(pred(h), mid, base);
        n -= half;
    }
    // SAFETY: `base < s.len()` (n was 1: `base + 1 <= s.len()`).
    base + usize::from(pred(*unsafe { s.get_unchecked(base) }))
}

/// `if c { a } else { b }`, computed without a branch.
#[inline(always)]
fn select(c: bool, a: usize, b: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let mut r = b;
        // SAFETY: register-only arithmetic: `test` and `cmovnz` read and
        // write the named registers and the flags, nothing else.
        unsafe {
            core::arch::asm!(
                "test {c}, {c}",
                "cmovnz {r}, {a}",
                c = in(reg) usize::from(c),
                a = in(reg) a,
                r = inout(reg) r,
                options(pure, nomem, nostack),
            );
        }
        r
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        if c {
            a
        } else {
            b
        }
    }
}

/// The timestamp of a leaf version (or root version) not yet stamped.
pub(super) const PENDING: u64 = 0;

/// A *leaf version*: pointers to the sorted entries of a leaf, immutable
/// once published apart from its timestamp `ts`, which is [`PENDING`] until
/// the first `stamp` (by its writer or any thread that meets it) sets it to
/// the value of one clock increment (see `mod.rs`, "Consistency and
/// linearization points", and `docs/btree.md`). `prev` is the version this
/// one replaced in its [`Handle`], followed only by scans whose snapshot is
/// older than `ts`.
///
/// `repr(C)`: `ts`, `prev` and the length of `ents` lie in the block's
/// first line, in this order ([`Block`]).
#[repr(C)]
pub(super) struct Leaf<K, V> {
    pub(super) ts: AtomicU64,
    pub(super) prev: NodePtr<K, V>,
    pub(super) ents: Slots<K, V>,
}

/// A leaf handle: the one mutable word of a leaf, pointing to its current
/// version; the low bit of `cur` is the *frozen* mark (the version is the
/// handle's last: a shape change replaces the handle). Inner nodes of the
/// bottom level point to handles, so a leaf update CASes `cur` and copies
/// nothing above the leaf. Handles live packed in the map's
/// [`HandleArena`](super::handles::HandleArena) and go back to its free
/// list a grace period after a shape change replaces them.
pub(super) struct Handle<K, V> {
    pub(super) cur: AtomicPtr<Node<K, V>>,
}

/// A handle pointer (stored in a bottom inner node's `kids`, cast).
pub(super) type HandlePtr<K, V> = *mut Handle<K, V>;

/// Whether a handle's `cur` carries the frozen mark.
#[inline]
pub(super) fn is_frozen<K, V>(p: NodePtr<K, V>) -> bool {
    (p as usize) & 1 == 1
}

/// `p` with the frozen mark (provenance kept: a byte offset of one).
#[inline]
pub(super) fn frozen<K, V>(p: NodePtr<K, V>) -> NodePtr<K, V> {
    p.cast::<u8>().wrapping_add(1).cast()
}

/// The version a handle's `cur` points to, without the mark.
#[inline]
pub(super) fn unmarked<K, V>(p: NodePtr<K, V>) -> NodePtr<K, V> {
    if is_frozen(p) {
        p.cast::<u8>().wrapping_sub(1).cast()
    } else {
        p
    }
}

/// `kids.len()` children and `kids.len() - 1` separators: child `i` holds
/// the keys `k` with `keys[i - 1] <= k < keys[i]` (missing bounds are
/// unbounded), where a separator's key is that of the entry it points to.
/// A separator is the entry that was the first of the right half when a
/// leaf split; the key may since have left the map (the entry lives on,
/// counted, while it is a separator).
///
/// `repr(C)`: `bottom` and the length of `keys` lie in the block's first
/// line ([`Block`]).
#[repr(C)]
pub(super) struct Inner<K, V> {
    /// The children are leaf [`Handle`]s (cast to `NodePtr`), not nodes.
    pub(super) bottom: bool,
    /// Places `keys` at the offset of a leaf's `ents`, so that the images
    /// of both kinds of node start a cache line ([`Slots`]).
    _pad: u64,
    pub(super) keys: Slots<K, V>,
    pub(super) kids: InlineVec<NodePtr<K, V>, B>,
}

impl<K, V> Leaf<K, V> {
    /// A pending version that replaces `prev`.
    pub(super) fn new(prev: NodePtr<K, V>) -> Self {
        Leaf {
            ts: AtomicU64::new(PENDING),
            prev,
            ents: Slots::new(),
        }
    }

    /// A version born stamped 1 (a new handle's first: visible to every
    /// snapshot that can reach the handle).
    pub(super) fn first() -> Self {
        Leaf {
            ts: AtomicU64::new(1),
            prev: ptr::null_mut(),
            ents: Slots::new(),
        }
    }
}

impl<K, V> Inner<K, V> {
    pub(super) fn new(bottom: bool) -> Self {
        Inner {
            bottom,
            _pad: 0,
            keys: Slots::new(),
            kids: InlineVec::new(),
        }
    }

    /// Child `i` of a bottom node: a leaf handle.
    #[inline]
    pub(super) fn handle(&self, i: usize) -> HandlePtr<K, V> {
        debug_assert!(self.bottom);
        self.kids.as_slice()[i].cast()
    }

    /// Index of the child whose key range contains `q`.
    #[inline]
    pub(super) fn route<Q>(&self, q: &Q) -> usize
    where
        K: core::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(h) = query_image::<K, Q>(q) {
            return self.keys.partition_images(
                |x| x <= h,
                |start| {
                    // The child is one of `start..=start + GROUP`: two lines.
                    let k = self.kids.as_slice().as_ptr().wrapping_add(start);
                    prefetch(k);
                    prefetch(k.wrapping_add(GROUP));
                },
            );
        }
        let keys = self.keys.entries();
        prefetch_all(keys);
        // SAFETY: `e` is read from `self`, borrowed here.
        keys.partition_point(|&e| unsafe { key_of(e) }.borrow() <= q)
    }

    #[inline]
    pub(super) fn kid(&self, i: usize) -> NodePtr<K, V> {
        self.kids.as_slice()[i]
    }
}

/// The key of entry `e`, borrowed for as long as the node holding `e` is.
///
/// # Safety
/// `e` is a pointer read from a node that the caller borrows for `'a`.
/// Every entry a node points to is alive while the node is (it is counted
/// while it is in the current version, and released only a grace period
/// after it was unlinked from it), and a key is never written while its
/// entry is alive.
#[inline]
pub(super) unsafe fn key_of<'a, K, V>(e: EntryPtr<K, V>) -> &'a K {
    // SAFETY: the precondition.
    unsafe { &(*e).key }
}

impl<K, V> Leaf<K, V> {
    /// Index of `q` among the leaf's keys, or where it would go.
    #[inline]
    pub(super) fn search<Q>(&self, q: &Q) -> Result<usize, usize>
    where
        K: core::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(h) = query_image::<K, Q>(q) {
            let i = self.ents.partition_images(
                |x| x < h,
                // A found key's entry pointer is one of the group's, in one
                // line.
                |start| prefetch(self.ents.es.as_ptr().wrapping_add(start)),
            );
            // Images are injective: an equal image is the key.
            return match self.ents.images().get(i) {
                Some(&x) if x == h => Ok(i),
                _ => Err(i),
            };
        }
        let ents = self.ents.entries();
        prefetch_all(ents);
        // SAFETY: `e` is read from `self`, borrowed here.
        ents.binary_search_by(|&e| unsafe { key_of(e) }.borrow().cmp(q))
    }

    /// The number of leading entries whose key is `< q` (`inclusive`:
    /// `<= q`).
    #[inline]
    pub(super) fn partition<Q>(&self, q: &Q, inclusive: bool) -> usize
    where
        K: core::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(h) = query_image::<K, Q>(q) {
            return if inclusive {
                self.ents.partition_images(|x| x <= h, |_| ())
            } else {
                self.ents.partition_images(|x| x < h, |_| ())
            };
        }
        let ents = self.ents.entries();
        prefetch_all(ents);
        ents.partition_point(|&e| {
            // SAFETY: `e` is read from `self`, borrowed here.
            let k = unsafe { key_of(e) }.borrow();
            if inclusive {
                k <= q
            } else {
                k < q
            }
        })
    }

    /// Entry `i` (while `self` is borrowed, see [`key_of`]).
    #[inline]
    pub(super) fn entry(&self, i: usize) -> &Entry<K, V> {
        // SAFETY: a node's entries are alive while it is (see `key_of`).
        unsafe { &*self.ents.entries()[i] }
    }

    /// The number of entries.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.ents.len()
    }
}

/// Starts loading every entry a node points to, so that the probes of the
/// binary search that follows wait for about one memory latency in all
/// instead of one each (the entries of a node are scattered in the heap).
#[inline(always)]
pub(super) fn prefetch_all<K, V>(ents: &[EntryPtr<K, V>]) {
    for &e in ents {
        prefetch(e);
    }
}

/// Starts loading the lines of node `p`'s key images (it need not have
/// arrived: a hint only), so that they come in with its header line and
/// the search's one group does not wait for a miss of its own after it.
#[inline(always)]
pub(super) fn prefetch_images<K, V>(p: NodePtr<K, V>) {
    // At `B = 32` the images are lines `1..=IMAGE_LINES` of the block (the
    // test `a_node_header_is_the_first_line_of_its_block`); under loom and
    // Miri (`B = 4`) the loop is empty.
    const IMAGE_LINES: usize = B * 8 / 64;
    let block = block_of(p).cast::<u8>().cast_const();
    for i in 1..=IMAGE_LINES {
        prefetch(block.wrapping_add(64 * i));
    }
}

pub(super) use crate::utils::prefetch;

/// Stamps the version timestamp `ts` if it is still [`PENDING`], and
/// returns its stamp. Writers advance the clock (bundled references,
/// Nelson et al. PPoPP '22): a stamp is the value written by one
/// `clock.fetch_add(1)`, followed by one CAS try on `ts`; if the CAS fails,
/// another thread stamped it first, and its stamp stands.
///
/// The *defining bump* of a version is the clock increment of the stamp
/// that succeeded; an update is linearized there (see `mod.rs`,
/// "Consistency and linearization points", and `docs/btree.md`). Readers
/// call this only on a version they found pending: that one bump and CAS
/// is the only shared write of a lookup or a scan (helping, which
/// lock-freedom needs: the reader cannot tell whether the pending
/// version's writer has made its defining bump already).
#[inline]
pub(super) fn stamp(clock: &AtomicU64, ts: &AtomicU64) -> u64 {
    // SeqCst (a plain load on x86): Acquire would do (it pairs with the
    // stamping CAS below, for the stamp's value only); SeqCst keeps every
    // stamp access in one total order, as in the loom models.
    let t = ts.load(Ordering::SeqCst);
    if t != PENDING {
        return t;
    }
    stamp_slow(clock, ts)
}

#[cold]
#[inline(never)]
fn stamp_slow(clock: &AtomicU64, ts: &AtomicU64) -> u64 {
    // SeqCst RMW (AcqRel is what the argument uses): the snapshot argument
    // is a release sequence. The version was installed (our handle or root
    // CAS) or read (a helper's SeqCst load of the handle) before this bump;
    // a scan whose Acquire clock load returns `s >= now` reads this bump or
    // a later one of the clock's RMW chain, so it synchronizes with it and
    // its later handle load finds this version or a newer one
    // (`snapshot_clock` in `mod.rs`). A scan that read an older value reads
    // before this bump in the clock's modification order: it sees the
    // version stamped `> s` and skips it. No fence is needed on either
    // side. The bump returns the old value; the stamp is the new one.
    let now = clock.fetch_add(1, Ordering::SeqCst) + 1;
    // SeqCst: the stamp is read by scans and lookups with SeqCst loads; on
    // failure another thread's stamp is returned (its CAS is in `ts`'s
    // modification order before ours), and our bump is simply spent.
    match ts.compare_exchange(PENDING, now, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => now,
        Err(t) => t,
    }
}

/// The leaf version at `p` (a handle's `cur`, unmarked).
///
/// # Safety
/// `p` is a leaf version that a pinned guard keeps alive for `'a`.
#[inline]
pub(super) unsafe fn leaf_at<'a, K, V>(p: NodePtr<K, V>) -> &'a Leaf<K, V> {
    // SAFETY: the precondition.
    match unsafe { &*p } {
        Node::Leaf(l) => l,
        Node::Inner(_) => unreachable!("a handle points to a leaf version"),
    }
}

/// The version of handle `h` in the snapshot taken at clock value `s`: the
/// newest version stamped `<= s` (stamping a pending head first).
///
/// # Safety
/// `h` was reached from a root version stamped `<= s` under a guard pinned
/// before the scan's clock load that returned `s`, and that guard is still
/// pinned for `'a`. (Then every version walked is alive: one reached
/// through `prev` was replaced by a version stamped `> s`, whose defining
/// increment comes after our load in the clock's modification order and
/// is ordered before the retire of its predecessor, so our pin holds it.)
#[inline]
pub(super) unsafe fn resolve<'a, K, V>(
    clock: &AtomicU64,
    h: HandlePtr<K, V>,
    s: u64,
) -> &'a Leaf<K, V> {
    // SeqCst (Acquire would do): the scan's Acquire clock load synchronized
    // with the defining increment of every version stamped `<= s`, so this
    // load finds that version or a newer one (see `stamp_slow`).
    // SAFETY: the precondition: `h` is alive, and so is its head version.
    let mut v = unsafe { leaf_at(unmarked((*h).cur.load(Ordering::SeqCst))) };
    while stamp(clock, &v.ts) > s {
        // SAFETY: the precondition (the `prev` argument above).
        v = unsafe { leaf_at(v.prev) };
    }
    v
}

#[cfg(all(test, not(loom)))]
mod layout_tests {
    use super::*;

    /// Where `x` lies, in bytes from the start of `p`'s block, checked to
    /// be a whole word of the block's first cache line.
    fn in_header<K, V, T>(p: NodePtr<K, V>, x: *const T) -> usize {
        let at = (x as usize) - (block_of(p) as usize);
        assert!(
            at + core::mem::size_of::<T>() <= 64,
            "a field read before every search lies {at} bytes into the block"
        );
        at
    }

    /// The block layout of "Nodes" in `docs/btree.md`: a visit reads the
    /// discriminant and its node's header (a leaf version's `ts` and
    /// length, an inner node's `bottom` and separator count) from the
    /// block's first line, which starts the block; the key images follow,
    /// packed, then the entry pointers.
    #[test]
    fn a_node_header_is_the_first_line_of_its_block() {
        assert_eq!(core::mem::align_of::<Block<u64, u64>>(), 64);
        // SAFETY: no pool; the nodes are freed below, never published.
        let leaf: NodePtr<u64, u64> = unsafe { alloc_node(None, Node::Leaf(Leaf::first())) };
        // SAFETY: as above.
        let inner: NodePtr<u64, u64> = unsafe { alloc_node(None, Node::Inner(Inner::new(true))) };
        for p in [leaf, inner] {
            assert_eq!(block_of(p) as usize % 64, 0, "block not line-aligned");
            // The discriminant is the node's first word (`repr(C)`), so the
            // first field of either variant lies one word further.
            assert_eq!(in_header(p, p.cast::<u64>()), 8);
        }
        // SAFETY: `leaf` is a leaf node we own.
        let Node::Leaf(l) = (unsafe { &*leaf }) else {
            unreachable!()
        };
        assert_eq!(in_header(leaf, &l.ts), 16);
        in_header(leaf, &l.prev);
        in_header(leaf, &l.ents.len);
        in_header(leaf, &l.ents.tops);
        // The images start the next line, eight to a line (one group each),
        // and the entry pointers follow the images (`Slots`).
        // (Under Miri's `B = 4` the three header words of tops shrink to
        // one and the images follow it.)
        let images_at = if B >= 32 { 64 } else { 48 };
        if B == 32 {
            // `docs/btree.md`'s drawing: 14 lines (the inner node's 840
            // bytes, rounded up to a line).
            assert_eq!(core::mem::size_of::<Block<u64, u64>>(), 896);
        }
        let block = block_of(leaf) as usize;
        assert_eq!(l.ents.hs.as_ptr() as usize - block, images_at);
        assert_eq!(
            l.ents.es.as_ptr() as usize - l.ents.hs.as_ptr() as usize,
            8 * B
        );
        // SAFETY: `inner` is an inner node we own.
        let Node::Inner(n) = (unsafe { &*inner }) else {
            unreachable!()
        };
        assert_eq!(in_header(inner, &n.bottom), 16);
        in_header(inner, &n.keys.len);
        in_header(inner, &n.keys.tops);
        assert_eq!(
            n.keys.hs.as_ptr() as usize - block_of(inner) as usize,
            images_at
        );
        // SAFETY: allocated above by `alloc_node`, never published.
        unsafe {
            free_node_now(leaf);
            free_node_now(inner);
        }
    }

    /// The group tops stay right however a node is filled (pushes, then
    /// bulk copies of any range at any offset), and the two-level search
    /// agrees with a plain one, up to the largest image (`u64::MAX`, where
    /// `x <= h` holds for the missing tops too).
    #[test]
    fn group_tops_follow_every_way_of_filling_a_node() {
        for n in 0..=B {
            let ks: Vec<u64> = (0..n as u64)
                .map(|i| u64::MAX - 3 * (n as u64 - 1 - i))
                .collect();
            let depot = Depot::new(Layout::new::<Entry<u64, ()>>());
            let es: Vec<EntryPtr<u64, ()>> =
                ks.iter().map(|&k| Entry::alloc(k, (), &depot)).collect();
            let mut src = Slots::new();
            for &e in &es {
                // SAFETY: `e` is alive until the end of this iteration of `n`.
                src.push(unsafe { Slot::of(e) });
            }
            let mut qs = vec![0, 1, u64::MAX];
            qs.extend(ks.iter().flat_map(|&k| [k - 1, k, k.saturating_add(1)]));
            for a in 0..=n {
                for c in 0..=a {
                    let mut s = Slots::new();
                    for i in 0..c {
                        s.push(src.get(i));
                    }
                    s.extend_from(&src, c..a);
                    s.extend_from(&src, a..n);
                    assert_eq!(s.images(), &ks[..]);
                    for (j, &t) in s.tops.iter().enumerate() {
                        let i = GROUP * (j + 1);
                        let want = if i < n { ks[i] } else { u64::MAX };
                        assert_eq!(t, want, "n {n} a {a} c {c} top {j}");
                    }
                    for &q in &qs {
                        let le = s.partition_images(|x| x <= q, |_| ());
                        let lt = s.partition_images(|x| x < q, |_| ());
                        assert_eq!(le, ks.partition_point(|&k| k <= q), "n {n} q {q}");
                        assert_eq!(lt, ks.partition_point(|&k| k < q), "n {n} q {q}");
                    }
                }
            }
            for e in es {
                // SAFETY: allocated above; the slot arrays are not used again.
                let _ = unsafe { Entry::unalloc(e, &depot) };
            }
        }
    }

    /// A key type without an image: searches take the `Ord` path.
    #[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Opaque(u64);

    /// Every size of leaf (0..=B entries) and inner node (1..=B children),
    /// every query position (before, at and between the keys, after the
    /// last): `search`, `partition` and `route` agree with the slice
    /// searches over the keys, for image keys (`u64`) and `Ord` keys.
    fn searches_agree<K, Q>(key: impl Fn(u64) -> K, query: impl Fn(u64) -> Q)
    where
        K: Ord + core::borrow::Borrow<Q>,
        Q: Ord,
    {
        for n in 0..=B {
            let ks: Vec<u64> = (1..=n as u64).map(|i| 10 * i).collect();
            let depot = Depot::new(Layout::new::<Entry<K, ()>>());
            let es: Vec<EntryPtr<K, ()>> = ks
                .iter()
                .map(|&k| Entry::alloc(key(k), (), &depot))
                .collect();
            let mut leaf = Leaf::<K, ()>::first();
            // An inner node with `n` children routes on the first `n - 1`.
            let mut inner = Inner::<K, ()>::new(false);
            for (i, &e) in es.iter().enumerate() {
                // SAFETY: `e` is alive until the end of this iteration.
                let s = unsafe { Slot::of(e) };
                leaf.ents.push(s);
                if i + 1 < n {
                    inner.keys.push(s);
                }
                inner.kids.push(ptr::null_mut());
            }
            for q in 0..=10 * n as u64 + 10 {
                let qq = query(q);
                let lt = ks.partition_point(|&k| k < q);
                let le = ks.partition_point(|&k| k <= q);
                assert_eq!(leaf.search(&qq), ks.binary_search(&q), "n {n} q {q}");
                assert_eq!(leaf.partition(&qq, false), lt, "n {n} q {q}");
                assert_eq!(leaf.partition(&qq, true), le, "n {n} q {q}");
                if n > 0 {
                    let route = ks[..n - 1].partition_point(|&k| k <= q);
                    assert_eq!(inner.route(&qq), route, "n {n} q {q}");
                }
            }
            for e in es {
                // SAFETY: allocated above, reachable only from the two
                // local nodes, which are not used again.
                drop(unsafe { Entry::unalloc(e, &depot) });
            }
        }
    }

    #[test]
    fn node_searches_agree_with_slice_searches_at_every_size() {
        searches_agree(|k| k, |q| q);
        searches_agree(|k| k as i32 - 100, |q| q as i32 - 100);
        searches_agree(Opaque, Opaque);
        searches_agree(|k| format!("{k:05}"), |q| format!("{q:05}"));
    }
}
