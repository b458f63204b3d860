//! Immutable tree nodes and the fixed-capacity arrays they are made of.
//!
//! A node is built privately by one writer, published by the root CAS, and
//! never written again: every later change builds a new copy. So nothing
//! here is atomic. A node owns its keys and values (clones of those in the
//! node it was copied from); an inner node's children are raw pointers it
//! does *not* own: subtrees are shared between versions of the tree, and
//! which version frees a node is decided by the writer that unlinks it
//! (see `mod.rs`, "Memory").

use core::mem::MaybeUninit;

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

    /// Removes and returns the element at `i`, shifting the rest left.
    pub(super) fn remove(&mut self, i: usize) -> T {
        assert!(i < self.len, "InlineVec::remove out of bounds");
        // SAFETY: slot `i < len` is initialized; after the read it is
        // logically moved out and overwritten by the shift below.
        let v = unsafe { self.buf[i].assume_init_read() };
        let base = self.buf.as_mut_ptr();
        // SAFETY: both ranges lie within the first `len` slots of `buf`;
        // `ptr::copy` allows overlap.
        unsafe { core::ptr::copy(base.add(i + 1), base.add(i), self.len - i - 1) };
        self.len -= 1;
        v
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

/// Sorted keys with their values; `keys.len() == vals.len()`.
pub(super) struct Leaf<K, V> {
    pub(super) keys: InlineVec<K, B>,
    pub(super) vals: InlineVec<V, B>,
}

/// `kids.len()` children and `kids.len() - 1` separators: child `i` holds
/// the keys `k` with `keys[i - 1] <= k < keys[i]` (missing bounds are
/// unbounded). Separators are copies of keys that were the first key of the
/// right half when a node split; the key itself may since have been removed.
pub(super) struct Inner<K, V> {
    /// Number of entries in the subtree (so `len` is read from the root of
    /// one snapshot, linearizable like everything else).
    pub(super) count: usize,
    pub(super) keys: InlineVec<K, B>,
    pub(super) kids: InlineVec<NodePtr<K, V>, B>,
}

impl<K, V> Leaf<K, V> {
    pub(super) fn new() -> Self {
        Leaf {
            keys: InlineVec::new(),
            vals: InlineVec::new(),
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
        self.keys.as_slice().partition_point(|s| s.borrow() <= q)
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
            Node::Leaf(l) => l.keys.len(),
            Node::Inner(i) => i.count,
        }
    }

    pub(super) fn into_ptr(self) -> NodePtr<K, V> {
        Box::into_raw(Box::new(self))
    }
}
