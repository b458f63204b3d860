//! The lazy snapshot iterator behind `range` and `iter`.

use core::borrow::Borrow;
use core::fmt;
use core::iter::FusedIterator;
use core::ops::Bound;

use super::node::{prefetch_all, resolve, Inner, Leaf, Node};
use crate::epoch::Guard;
use crate::sync::atomic::AtomicU64;

/// An iterator over a key range of one snapshot of a
/// [`LockFreeBTree`](super::LockFreeBTree), ascending, yielding clones;
/// double-ended (`rev()`, `next_back`), both ends walking the same
/// snapshot, like `BTreeMap`'s `Range`.
///
/// It holds a guard of the map's collector: the version it walks stays
/// alive (and nodes retired meanwhile are not freed) until it is dropped.
/// Built by [`range`](super::LockFreeBTree::range) and
/// [`iter`](super::LockFreeBTree::iter).
///
/// ```
/// use waitless::btree::LockFreeBTree;
///
/// let m = LockFreeBTree::new();
/// for k in 0..10 {
///     m.insert(k, ());
/// }
/// let mut r = m.range(4..);
/// m.insert(100, ()); // not in the snapshot `r` walks
/// assert_eq!(r.next(), Some((4, ())));
/// assert_eq!(r.next_back(), Some((9, ())));
/// assert_eq!(r.count(), 4);
/// let down: Vec<u32> = m.range(..3).rev().map(|(k, _)| k).collect();
/// assert_eq!(down, [2, 1, 0]);
/// ```
pub struct Range<'a, K, V> {
    _guard: Guard<'a>,
    /// The map's clock (to stamp a pending version met on the way).
    clock: &'a AtomicU64,
    /// The snapshot: the clock value the scan loaded.
    s: u64,
    /// The inner nodes above `leaf` and the child taken in each.
    stack: Vec<(*const Inner<K, V>, usize)>,
    /// The current leaf; null once the iteration is over.
    leaf: *const Leaf<K, V>,
    idx: usize,
    /// The first position past the range; a null leaf means the end of the
    /// tree. `next_back` moves it back one element at a time; the
    /// iteration is over when the two positions meet.
    end_leaf: *const Leaf<K, V>,
    end_idx: usize,
    /// The inner nodes above `end_leaf` (empty while it is null).
    end_stack: Vec<(*const Inner<K, V>, usize)>,
    /// The snapshot's tree, from which `next_back` descends when the end
    /// position is the end of the tree.
    root: *const Node<K, V>,
}

impl<'a, K, V> Range<'a, K, V> {
    pub(super) fn empty(guard: Guard<'a>, clock: &'a AtomicU64) -> Self {
        Range {
            _guard: guard,
            clock,
            s: 0,
            stack: Vec::new(),
            leaf: core::ptr::null(),
            idx: 0,
            end_leaf: core::ptr::null(),
            end_idx: 0,
            end_stack: Vec::new(),
            root: core::ptr::null(),
        }
    }

    /// Whether the two positions met (nothing is left), and if so, parks
    /// both at the end so that neither end yields again.
    fn exhausted(&mut self) -> bool {
        if self.leaf == self.end_leaf && self.idx == self.end_idx {
            self.leaf = core::ptr::null();
            self.end_leaf = core::ptr::null();
            (self.idx, self.end_idx) = (0, 0);
            return true;
        }
        false
    }

    /// The iterator over positions from the first key at or after `lo` up
    /// to (excluding) the first key at or after `end` (`Unbounded`: to the
    /// end of the tree). `end` is given as a lower bound: `Included(h)`
    /// stops before `h`, `Excluded(h)` after it.
    ///
    /// # Safety
    /// `root` heads the tree of the newest root version stamped `<= s`,
    /// where `s` is the value of a clock load made under `guard` (see
    /// [`resolve`]), and the positions are in order (`lo` does not start
    /// after `end`).
    pub(super) unsafe fn new<Q>(
        guard: Guard<'a>,
        clock: &'a AtomicU64,
        s: u64,
        root: *const Node<K, V>,
        lo: Bound<&Q>,
        end: Bound<&Q>,
    ) -> Self
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut it = Range::empty(guard, clock);
        it.s = s;
        it.root = root;
        let at = (clock, s);
        // SAFETY: the precondition: the version is alive while `guard` is.
        let (leaf, idx) = unsafe { seek(at, root, lo, &mut it.stack) };
        (it.leaf, it.idx) = (leaf, idx);
        // SAFETY: as above.
        unsafe { normalize(at, &mut it.stack, &mut it.leaf, &mut it.idx) };
        if !matches!(end, Bound::Unbounded) {
            let mut stack = Vec::new();
            // SAFETY: as above.
            let (mut leaf, mut idx) = unsafe { seek(at, root, end, &mut stack) };
            // SAFETY: as above.
            unsafe { normalize(at, &mut stack, &mut leaf, &mut idx) };
            (it.end_leaf, it.end_idx, it.end_stack) = (leaf, idx, stack);
        }
        it
    }
}

/// Moves a position at the end of a leaf to the start of the next
/// non-empty leaf (or to the end: a null leaf).
///
/// # Safety
/// `leaf` and the nodes on `stack` are in the pinned snapshot `at` (the
/// map's clock and the snapshot's clock value, see [`resolve`]).
unsafe fn normalize<K, V>(
    at: (&AtomicU64, u64),
    stack: &mut Vec<(*const Inner<K, V>, usize)>,
    leaf: &mut *const Leaf<K, V>,
    idx: &mut usize,
) {
    // SAFETY: (for every deref below) nodes of the pinned version.
    while !leaf.is_null() && *idx == unsafe { (**leaf).len() } {
        *idx = 0;
        // Climb to the nearest ancestor with a child to the right.
        loop {
            let Some(top) = stack.last_mut() else {
                *leaf = core::ptr::null();
                return;
            };
            // SAFETY: see above.
            let n = unsafe { &*top.0 };
            if top.1 + 1 < n.kids.len() {
                top.1 += 1;
                *leaf = if n.bottom {
                    // SAFETY: see above.
                    unsafe { resolve(at.0, n.handle(top.1), at.1) }
                } else {
                    // SAFETY: see above.
                    unsafe { edge(at, n.kid(top.1), stack, Side::First) }
                };
                // The scan reads every entry of the new leaf: start loading
                // them all now.
                // SAFETY: `edge` returns a leaf of the pinned version.
                prefetch_all(unsafe { (**leaf).ents.entries() });
                break;
            }
            stack.pop();
        }
    }
}

/// Moves a position one element back: to the element before it in its
/// leaf, or to the last element of the previous non-empty leaf; a null
/// leaf (the end of the tree) moves to the tree's last element.
///
/// # Safety
/// `root`, `leaf` and the nodes on `stack` (the path to `leaf`, empty when
/// it is null) are in the pinned snapshot `at`, and the snapshot holds an
/// element before the position.
unsafe fn retreat<K, V>(
    at: (&AtomicU64, u64),
    root: *const Node<K, V>,
    stack: &mut Vec<(*const Inner<K, V>, usize)>,
    leaf: &mut *const Leaf<K, V>,
    idx: &mut usize,
) {
    if leaf.is_null() {
        stack.clear();
        // SAFETY: the precondition.
        *leaf = unsafe { edge(at, root, stack, Side::Last) };
        // SAFETY: a leaf of the pinned version.
        *idx = unsafe { (**leaf).len() };
    }
    while *idx == 0 {
        // Climb to the nearest ancestor with a child to the left; there is
        // one, since an element precedes the position.
        loop {
            let top = stack
                .last_mut()
                .expect("retreat from the first position of a snapshot");
            // SAFETY: nodes of the pinned version.
            let n = unsafe { &*top.0 };
            if top.1 > 0 {
                top.1 -= 1;
                *leaf = if n.bottom {
                    // SAFETY: as above.
                    unsafe { resolve(at.0, n.handle(top.1), at.1) }
                } else {
                    // SAFETY: as above.
                    unsafe { edge(at, n.kid(top.1), stack, Side::Last) }
                };
                // SAFETY: as above.
                *idx = unsafe { (**leaf).len() };
                break;
            }
            stack.pop();
        }
    }
    *idx -= 1;
}

/// Which child [`edge`] takes at every level.
#[derive(Clone, Copy)]
enum Side {
    First,
    Last,
}

/// Descends from inner node `p` always taking the first (or last) child,
/// pushing the path; returns the leftmost (or rightmost) leaf below `p`.
///
/// # Safety
/// `p` is in the pinned snapshot `at`.
unsafe fn edge<K, V>(
    at: (&AtomicU64, u64),
    mut p: *const Node<K, V>,
    stack: &mut Vec<(*const Inner<K, V>, usize)>,
    side: Side,
) -> *const Leaf<K, V> {
    loop {
        // SAFETY: the precondition (children of a pinned node are pinned).
        match unsafe { &*p } {
            Node::Leaf(_) => unreachable!("a tree holds inner nodes above its handles"),
            Node::Inner(n) => {
                let i = match side {
                    Side::First => 0,
                    Side::Last => n.kids.len() - 1,
                };
                stack.push((n, i));
                if n.bottom {
                    // SAFETY: the precondition.
                    return unsafe { resolve(at.0, n.handle(i), at.1) };
                }
                p = n.kid(i);
            }
        }
    }
}

/// A clone of entry `i` of leaf `l`.
///
/// # Safety
/// `l` is a leaf version of the pinned snapshot and `i` one of its slots.
unsafe fn cloned<K: Clone, V: Clone>(l: *const Leaf<K, V>, i: usize) -> (K, V) {
    // SAFETY: the precondition.
    let e = unsafe { &*l }.entry(i);
    // SAFETY: `e` is reached through a leaf slot of the pinned version.
    (e.key.clone(), unsafe { e.with_val(V::clone) })
}

/// The position of the first key at or after lower bound `b`, possibly
/// one past the end of its leaf; pushes the path onto `stack`.
///
/// # Safety
/// `p` is in the pinned snapshot `at`.
unsafe fn seek<K, V, Q>(
    at: (&AtomicU64, u64),
    mut p: *const Node<K, V>,
    b: Bound<&Q>,
    stack: &mut Vec<(*const Inner<K, V>, usize)>,
) -> (*const Leaf<K, V>, usize)
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    loop {
        // SAFETY: the precondition.
        match unsafe { &*p } {
            Node::Inner(n) => {
                // Every key at or after the bound is in this child or a
                // later one: earlier children hold keys below a separator
                // that is <= q.
                let i = match b {
                    Bound::Included(q) | Bound::Excluded(q) => n.route(q),
                    Bound::Unbounded => 0,
                };
                stack.push((n, i));
                if !n.bottom {
                    p = n.kid(i);
                    continue;
                }
                // SAFETY: the precondition.
                let l: &Leaf<K, V> = unsafe { resolve(at.0, n.handle(i), at.1) };
                // (Entries are read through `l`, a version of the pinned
                // snapshot.)
                let i = match b {
                    Bound::Included(q) => l.partition(q, false),
                    Bound::Excluded(q) => l.partition(q, true),
                    Bound::Unbounded => 0,
                };
                return (l, i);
            }
            Node::Leaf(_) => unreachable!("a tree holds inner nodes above its handles"),
        }
    }
}

impl<K: Clone, V: Clone> Iterator for Range<'_, K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        if self.exhausted() {
            return None;
        }
        // SAFETY: `leaf` is a node of the version `_guard` keeps alive, and
        // a normalized position is a valid slot.
        let item = unsafe { cloned(self.leaf, self.idx) };
        self.idx += 1;
        // SAFETY: as above.
        if self.idx == unsafe { &*self.leaf }.len() {
            // SAFETY: as above.
            unsafe {
                normalize(
                    (self.clock, self.s),
                    &mut self.stack,
                    &mut self.leaf,
                    &mut self.idx,
                )
            };
        }
        Some(item)
    }
}

impl<K: Clone, V: Clone> DoubleEndedIterator for Range<'_, K, V> {
    /// The last entry not yet yielded by either end, from the same
    /// snapshot.
    fn next_back(&mut self) -> Option<(K, V)> {
        if self.exhausted() {
            return None;
        }
        // SAFETY: the end position is in the version `_guard` keeps alive
        // (as `root` is), and the positions have not met, so an element of
        // the snapshot precedes it (the one `next` would yield last).
        unsafe {
            retreat(
                (self.clock, self.s),
                self.root,
                &mut self.end_stack,
                &mut self.end_leaf,
                &mut self.end_idx,
            )
        };
        // SAFETY: as above; `retreat` leaves a valid slot.
        Some(unsafe { cloned(self.end_leaf, self.end_idx) })
    }
}

impl<K: Clone, V: Clone> FusedIterator for Range<'_, K, V> {}

impl<K, V> fmt::Debug for Range<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Range")
            .field("done", &self.leaf.is_null())
            .finish_non_exhaustive()
    }
}
