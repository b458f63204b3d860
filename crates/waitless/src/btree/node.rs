//! Immutable tree nodes, the fixed-capacity arrays they are made of, and
//! the entries they point to.
//!
//! A node is built privately by one writer, published by the root CAS, and
//! never written again: every later change builds a new copy. So nothing in
//! a node is atomic. Keys and values are not stored in nodes: each lives in
//! its own [`Entry`], allocated once by the `insert` that brought it and
//! never moved, and nodes hold pointers to entries (leaf slots) and to
//! entries whose keys serve as separators (inner nodes). A path copy
//! therefore copies pointers, never keys or values, which is why writers
//! need no `Clone`. An inner node's children are raw pointers it does *not*
//! own: subtrees are shared between versions of the tree, and which version
//! frees a node is decided by the writer that unlinks it (see `mod.rs`,
//! "Memory").

use core::mem::{ManuallyDrop, MaybeUninit};

use crate::epoch::Guard;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::UnsafeCell;

/// Fan-out: the most keys in a leaf and the most children of an inner node.
/// Shrunk under loom and Miri so a handful of inserts splits nodes.
pub(super) const B: usize = if cfg!(any(loom, miri)) { 4 } else { 32 };

/// A vector with inline capacity `N`, used only to build nodes.
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

impl<T: Clone, const N: usize> InlineVec<T, N> {
    /// Pushes clones of every element of `s`.
    ///
    /// # Panics
    /// If they do not fit (checked once, before cloning).
    #[inline]
    pub(super) fn extend_cloned(&mut self, s: &[T]) {
        let len = self.len;
        assert!(s.len() <= N - len, "InlineVec overflow");
        // One capacity check above instead of one per element lets the
        // loop compile to a plain copy for `Copy`-like types (this is the
        // inner loop of every path copy). `len` grows per element so a
        // panicking `clone` leaves only initialized slots counted.
        for (slot, x) in self.buf[len..len + s.len()].iter_mut().zip(s) {
            slot.write(x.clone());
            self.len += 1;
        }
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

/// A pointer to a published (or about to be published) node.
pub(super) type NodePtr<K, V> = *mut Node<K, V>;

/// A tree node: a leaf of sorted entries or an inner node of separators.
///
/// Every node is boxed on its own, so the variants' size difference costs
/// at most the difference in one allocation (and for `K = V = u64` the two
/// are nearly the same size); clippy only sees the generic lower bound.
#[allow(clippy::large_enum_variant)]
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
    /// A new entry with its leaf reference counted.
    pub(super) fn alloc(key: K, val: V) -> EntryPtr<K, V> {
        Box::into_raw(Box::new(Entry {
            refs: AtomicUsize::new(1),
            key,
            val: UnsafeCell::new(ManuallyDrop::new(val)),
        }))
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
    /// `p` came from [`Entry::alloc`] and no other thread has seen it.
    pub(super) unsafe fn unalloc(p: EntryPtr<K, V>) -> (K, V) {
        // SAFETY: the precondition: `p` is a unique box.
        let e = unsafe { Box::from_raw(p) };
        let Entry { key, val, .. } = *e;
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
/// leaf reference.
pub(super) unsafe fn release_now<K, V>(e: EntryPtr<K, V>, leaf: bool) {
    if leaf {
        // SAFETY: the precondition: nobody reads the value any more (only
        // leaf slots lead to it); other threads may read the key, a
        // different field, through separators.
        unsafe { (*e).val.with_mut(|p| ManuallyDrop::drop(&mut *p)) };
    }
    // AcqRel: the last releaser's Acquire sees every other releaser's
    // accesses (Release) before freeing, as for `Arc`.
    // SAFETY: the entry is alive: our reference is still counted.
    if unsafe { (*e).refs.fetch_sub(1, Ordering::AcqRel) } == 1 {
        // SAFETY: the count reached zero: no version references the entry
        // and every release (each after its grace period) has run, so no
        // thread can reach it; it came from `Entry::alloc`.
        let b = unsafe { Box::from_raw(e) };
        // The value was dropped by the leaf release (ManuallyDrop); this
        // drops the key.
        drop(b);
    }
}

/// Defers [`release_now`] past every thread pinned now.
///
/// # Safety
/// As for [`release_now`], except that threads pinned now may still reach
/// `e` through the reference (it is unlinked from the current version), and
/// running the release on another thread is sound (`K, V: Send` when the
/// map is shared).
pub(super) unsafe fn release<K, V>(guard: &Guard<'_>, e: EntryPtr<K, V>, leaf: bool) {
    struct SendPtr<K, V>(EntryPtr<K, V>);
    // SAFETY: the precondition: releasing on another thread is sound.
    unsafe impl<K, V> Send for SendPtr<K, V> {}
    let p = SendPtr(e);
    let f = move || {
        let p = p;
        // SAFETY: the grace period has passed: the precondition of
        // `release_now` holds now.
        unsafe { release_now(p.0, leaf) }
    };
    // SAFETY: the closure runs once, and `release_now` is sound on any
    // thread (precondition); it borrows nothing.
    unsafe { guard.defer_unchecked(f) }
}

/// Pointers to the sorted entries of a leaf.
pub(super) struct Leaf<K, V> {
    pub(super) ents: InlineVec<EntryPtr<K, V>, B>,
}

/// `kids.len()` children and `kids.len() - 1` separators: child `i` holds
/// the keys `k` with `keys[i - 1] <= k < keys[i]` (missing bounds are
/// unbounded), where a separator's key is that of the entry it points to.
/// A separator is the entry that was the first of the right half when a
/// leaf split; the key may since have left the map (the entry lives on,
/// counted, while it is a separator).
pub(super) struct Inner<K, V> {
    /// Number of entries in the subtree (so `len` is read from the root of
    /// one snapshot, linearizable like everything else).
    pub(super) count: usize,
    pub(super) keys: InlineVec<EntryPtr<K, V>, B>,
    pub(super) kids: InlineVec<NodePtr<K, V>, B>,
}

impl<K, V> Leaf<K, V> {
    pub(super) fn new() -> Self {
        Leaf {
            ents: InlineVec::new(),
        }
    }
}

impl<K, V> Inner<K, V> {
    pub(super) fn new() -> Self {
        Inner {
            count: 0,
            keys: InlineVec::new(),
            kids: InlineVec::new(),
        }
    }

    /// Index of the child whose key range contains `q`.
    #[inline]
    pub(super) fn route<Q>(&self, q: &Q) -> usize
    where
        K: core::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let keys = self.keys.as_slice();
        prefetch_all(keys);
        // SAFETY: `s` is read from `self`, borrowed here.
        keys.partition_point(|&s| unsafe { key_of(s) }.borrow() <= q)
    }

    #[inline]
    pub(super) fn kid(&self, i: usize) -> NodePtr<K, V> {
        self.kids.as_slice()[i]
    }
}

impl<K, V> Node<K, V> {
    /// Entries in the subtree.
    #[inline]
    pub(super) fn count(&self) -> usize {
        match self {
            Node::Leaf(l) => l.ents.len(),
            Node::Inner(i) => i.count,
        }
    }

    pub(super) fn into_ptr(self) -> NodePtr<K, V> {
        Box::into_raw(Box::new(self))
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
        let ents = self.ents.as_slice();
        prefetch_all(ents);
        // SAFETY: `e` is read from `self`, borrowed here.
        ents.binary_search_by(|&e| unsafe { key_of(e) }.borrow().cmp(q))
    }

    /// Entry `i` (while `self` is borrowed, see [`key_of`]).
    #[inline]
    pub(super) fn entry(&self, i: usize) -> &Entry<K, V> {
        // SAFETY: a node's entries are alive while it is (see `key_of`).
        unsafe { &*self.ents.as_slice()[i] }
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
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    for &e in ents {
        // SAFETY: a prefetch is only a hint: it never faults and has no
        // effect on the program's semantics, whatever the address.
        unsafe {
            core::arch::x86_64::_mm_prefetch(
                e.cast_const().cast::<i8>(),
                core::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = ents;
}
