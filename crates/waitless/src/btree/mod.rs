//! A lock-free ordered map with linearizable range queries: a copy-on-write
//! B+tree whose published nodes are immutable.
//!
//! ```
//! use waitless::btree::LockFreeBTree;
//!
//! let m: LockFreeBTree<String, u32> = LockFreeBTree::new();
//! m.insert("b".to_string(), 2);
//! m.insert("a".to_string(), 1);
//! m.insert("c".to_string(), 3);
//! assert_eq!(m.get("b"), Some(2)); // `&str` lookups through `Borrow<str>`
//! use std::ops::Bound::{Excluded, Included};
//! let got: Vec<_> = m.range::<str, _>((Included("a"), Excluded("c"))).collect();
//! assert_eq!(got, [("a".to_string(), 1), ("b".to_string(), 2)]);
//! // A reversed range yields nothing (std's `BTreeMap::range` panics).
//! let (lo, hi) = ("c", "a");
//! assert_eq!(m.range::<str, _>((Included(lo), Excluded(hi))).count(), 0);
//! ```
//!
//! # Design
//!
//! The map is one atomic pointer to the root of a B+tree (fan-out 32:
//! leaves hold up to 32 pointers to entries in key order, inner nodes up to
//! 32 children and 31 separators). Each key and its value live in one
//! entry, allocated by the `insert` that brought them and never moved, so
//! copying a node copies pointers and no key or value is ever cloned by the
//! map. A node is never changed once another thread can see it. A writer
//!
//! 1. pins, loads the root, and descends to the leaf, remembering the path;
//! 2. builds a new copy of that leaf with its change (splitting it in two
//!    if it overflows, dropping it if it becomes empty) and new copies of
//!    every inner node on the path (splitting or shrinking them as needed);
//!    everything off the path is shared with the old version;
//! 3. publishes the new root with one CAS on the root pointer. If the CAS
//!    fails another writer got in first: it frees its private copies and
//!    starts again from the new root;
//! 4. retires the replaced path through the map's own epoch collector.
//!
//! This is path copying (the functional B-tree of persistent data
//! structures) with a CAS on the root, as in a lock-free "atom" of an
//! immutable tree; the design and its trade-offs against LLX/SCX
//! (a,b)-trees, OCC-ABtree, the Bw-tree, vCAS and bundled references are
//! argued in `docs/btree.md`.
//!
//! # Consistency and linearization points
//!
//! Every version of the tree reachable from a root is immutable, so one
//! load of the root is a consistent snapshot of the whole map.
//!
//! - `insert` and a `remove` that finds its key take effect at their
//!   successful root CAS.
//! - `get`, `get_with`, `contains_key`, `len`, `first_key_value`,
//!   `last_key_value` and a `remove` that finds nothing take effect at their
//!   root load.
//! - `range` and `iter` take effect at the root load in the call: the
//!   iterator then walks that immutable version lazily, so it yields exactly
//!   the map's contents in the range at that instant, however writers race
//!   with it, and `range(lo..).take(64)` costs O(log n + 64).
//!
//! # Progress
//!
//! Every operation is lock-free: a reader never waits and never retries; a
//! writer retries only when another writer's CAS on the root succeeded in
//! between, i.e. when the system made progress. Reads write no shared
//! memory (pinning writes only the thread's own epoch record).
//!
//! The price is paid by writers: each update allocates and copies a path of
//! about log₃₂ n nodes (arrays of pointers), and all writers serialize on
//! one CAS, so concurrent writers to *different* keys conflict. Searches
//! pay for the entries being out of line: each probe of a binary search
//! reads its entry's key through a pointer (a node's entries are prefetched
//! together before its search). The measurements are in `docs/btree.md`.
//!
//! # Memory
//!
//! Nodes own neither their children (subtrees are shared between versions)
//! nor their entries. A writer whose CAS succeeded retires exactly the nodes
//! of the old path (each is reachable from old roots only); one whose CAS
//! failed frees its private nodes at once.
//!
//! An entry counts its references from the current version: 1 for its leaf
//! slot while its key is in the map, plus 1 per inner node whose separator
//! it is (a leaf split makes the first entry of its right half a
//! separator, counted *before* the CAS, so the count never falls below the
//! current version's references; a failed attempt takes that count back). The writer whose CAS drops a
//! reference releases it through the collector, after every reader pinned
//! at that moment: releasing the leaf reference drops the value, the last
//! release frees the entry and drops the key. So a removed key may outlive
//! its value while it still routes searches as a separator, and every key
//! and value object is dropped exactly once (dropping the map releases the
//! current version's references, then its collector runs the rest).
//!
//! A long-lived [`Range`] holds a guard of the map's collector: while it
//! lives, nodes retired by writers are not freed (see
//! [`epoch`](crate::epoch), "Long-lived guards").
//!
//! # Bounds
//!
//! Keys need `Ord` and never `Clone` to be stored or removed: `Clone` is
//! needed only where an operation returns a clone — `V: Clone` for `get`,
//! `insert` and `remove` (the old value: readers of older versions may
//! still be reading it, so it cannot be moved out), `K: Clone, V: Clone`
//! for `range`, `iter` and `first/last_key_value`. Replacing the value of
//! an existing key stores the key object given to `insert` (an equal key)
//! and drops the old one with the old value.

mod iter;
mod node;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(test)]
mod leaf_protocol;

use core::borrow::Borrow;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Bound, RangeBounds};

pub use iter::Range;
use node::{
    alloc_node, free_node_now, free_unpublished, key_of, release, release_now, retire_node, Entry,
    EntryPtr, InlineVec, Inner, Leaf, Node, NodePtr, Slot, B, MAX_HEIGHT,
};

use crate::contention::Site;
use crate::epoch::{Collector, Guard, Participant};
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::Backoff;

static INSERT_SITE: Site = Site::new("btree.insert");

static REMOVE_SITE: Site = Site::new("btree.remove");

/// The most bytes of recycled node blocks each thread's pool in the map's
/// collector may keep (it starts at the pool's default and grows to the
/// largest backlog of retired blocks the thread has waited on, see
/// `epoch/pool.rs`, `Pool::missed`): without it most of the blocks a
/// writer retires (several per update) overflow the default 64 KiB free
/// list and go back to the allocator.
pub(super) const NODE_POOL_BYTES: usize = 4 << 20;

/// A lock-free ordered map (copy-on-write B+tree) whose range scans are
/// linearizable snapshots. See the [module documentation](self).
///
/// ```
/// use waitless::btree::LockFreeBTree;
///
/// let m = LockFreeBTree::new();
/// m.insert(2, "b");
/// m.insert(1, "a");
/// assert_eq!(m.iter().collect::<Vec<_>>(), [(1, "a"), (2, "b")]);
/// ```
pub struct LockFreeBTree<K, V> {
    root: AtomicPtr<Node<K, V>>,
    collector: Collector,
    _owns: PhantomData<(K, V)>,
}

// SAFETY: the map owns its keys and values (through raw node pointers, which
// hide them from the auto traits). Moving the map to another thread moves
// them, so it needs `K: Send, V: Send`.
unsafe impl<K: Send, V: Send> Send for LockFreeBTree<K, V> {}
// SAFETY: through `&LockFreeBTree` several threads read the same keys and
// values (`K: Sync, V: Sync`), clone them, and entries are dropped by
// whichever thread runs their last release (`K: Send, V: Send`). All shared
// mutation is the atomic root pointer and the entries' atomic counts (and a
// value's drop, after its grace period); nodes are immutable once published.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for LockFreeBTree<K, V> {}

/// What a rebuilt subtree became, reported to the level above.
enum Up<K, V> {
    /// One node replaces the old child.
    One(NodePtr<K, V>),
    /// The child split: left, separator (the first entry of the right
    /// half, counted), right.
    Two(NodePtr<K, V>, Slot<K, V>, NodePtr<K, V>),
    /// The child became empty and is dropped from its parent.
    Gone,
}

/// The path from the root to a leaf: each inner node and the child taken
/// (on the stack: no allocation per update).
type Path<K, V> = InlineVec<(NodePtr<K, V>, usize), MAX_HEIGHT>;

impl<K, V> LockFreeBTree<K, V> {
    /// An empty map.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m: LockFreeBTree<u32, String> = LockFreeBTree::new();
    /// assert!(m.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            // SAFETY: no record given: a fresh block of the map's layout.
            root: AtomicPtr::new(unsafe { alloc_node(None, Node::Leaf(Leaf::new())) }),
            collector: Collector::with_pool_max(NODE_POOL_BYTES),
            _owns: PhantomData,
        }
    }

    /// The map's reclamation domain (for statistics such as
    /// [`Collector::pending`]).
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// m.insert(1, 1);
    /// m.insert(1, 2); // the replaced leaf is retired into the collector
    /// let _waiting = m.collector().pending();
    /// ```
    #[must_use]
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Loads the current root; the guard keeps the version it heads alive.
    #[inline]
    fn snapshot<'g>(&self, _guard: &'g Guard<'_>) -> &'g Node<K, V> {
        // Acquire pairs with the AcqRel root CAS in `commit` (and the
        // initial store happens before any `&self` use): the nodes of the
        // version we load were fully built before it was published.
        let p = self.root.load(Ordering::Acquire);
        // SAFETY: a root is never null; it is retired only after being
        // replaced, and our guard was pinned before this load, so it is not
        // freed while `'g` lasts.
        unsafe { &*p }
    }

    /// Descends from `node` to the leaf whose range contains `q`.
    #[inline]
    fn leaf_for<'g, Q>(mut node: &'g Node<K, V>, q: &Q) -> &'g Leaf<K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        loop {
            match node {
                Node::Leaf(l) => return l,
                Node::Inner(n) => {
                    // SAFETY: children of a node of a pinned version belong
                    // to that version (see `snapshot`).
                    node = unsafe { &*n.kid(n.route(q)) };
                }
            }
        }
    }

    /// Runs `f` on the key and value stored for `q`, if any, in one
    /// snapshot.
    #[inline]
    fn find<Q, R>(&self, q: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let guard = self.collector.pin();
        let leaf = Self::leaf_for(self.snapshot(&guard), q);
        let e = leaf.entry(leaf.search(q).ok()?);
        // SAFETY: `e` is reached through a leaf slot of the version `guard`
        // keeps alive.
        Some(unsafe { e.with_val(|v| f(&e.key, v)) })
    }

    /// A clone of the value for `key`.
    ///
    /// ```
    /// let m = waitless::btree::LockFreeBTree::new();
    /// m.insert(1, "one");
    /// assert_eq!(m.get(&1), Some("one"));
    /// assert_eq!(m.get(&2), None);
    /// ```
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        V: Clone,
    {
        self.find(key, |_, v| v.clone())
    }

    /// Applies `f` to the value for `key` without cloning it.
    ///
    /// ```
    /// let m = waitless::btree::LockFreeBTree::new();
    /// m.insert(1, vec![1, 2, 3]);
    /// assert_eq!(m.get_with(&1, |v| v.len()), Some(3));
    /// ```
    #[must_use]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key, |_, v| f(v))
    }

    /// Whether the map holds `key`.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// m.insert(String::from("k"), 1);
    /// assert!(m.contains_key("k"));
    /// assert!(!m.contains_key("x"));
    /// ```
    #[must_use]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key, |_, _| ()).is_some()
    }

    /// The number of entries (exact, read from one snapshot's root).
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// m.insert(1, ());
    /// m.insert(2, ());
    /// m.insert(1, ());
    /// assert_eq!(m.len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        let guard = self.collector.pin();
        self.snapshot(&guard).count()
    }

    /// Whether the map is empty.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// assert!(m.is_empty());
    /// m.insert(1, 1);
    /// assert!(!m.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The smallest key and its value.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// assert_eq!(m.first_key_value(), None::<(u8, char)>);
    /// m.insert(5, 'e');
    /// m.insert(3, 'c');
    /// assert_eq!(m.first_key_value(), Some((3, 'c')));
    /// ```
    #[must_use]
    pub fn first_key_value(&self) -> Option<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.edge(|_| 0)
    }

    /// The largest key and its value.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// m.insert(5, 'e');
    /// m.insert(3, 'c');
    /// assert_eq!(m.last_key_value(), Some((5, 'e')));
    /// ```
    #[must_use]
    pub fn last_key_value(&self) -> Option<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.edge(|n| n - 1)
    }

    /// The entry found by always taking child (and leaf slot) `pick(len)`.
    fn edge(&self, pick: impl Fn(usize) -> usize) -> Option<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        let guard = self.collector.pin();
        let mut node = self.snapshot(&guard);
        loop {
            match node {
                Node::Inner(n) => {
                    // SAFETY: as in `leaf_for`.
                    node = unsafe { &*n.kid(pick(n.kids.len())) };
                }
                Node::Leaf(l) => {
                    // Only the root can be an empty leaf (empty nodes are
                    // dropped from their parent), so this is the empty map.
                    if l.len() == 0 {
                        return None;
                    }
                    let e = l.entry(pick(l.len()));
                    // SAFETY: reached through a leaf slot of the pinned
                    // version.
                    return Some((e.key.clone(), unsafe { e.with_val(V::clone) }));
                }
            }
        }
    }

    /// The entries with keys in `range`, ascending, as they were at one
    /// instant during this call (a linearizable snapshot). Lazy: each step
    /// clones one entry. A reversed range (start after end, or equal bounds
    /// with one excluded) yields nothing.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    /// let m = LockFreeBTree::new();
    /// for i in 0..100u32 {
    ///     m.insert(i, i * 10);
    /// }
    /// let v: Vec<_> = m.range(10..13).collect();
    /// assert_eq!(v, [(10, 100), (11, 110), (12, 120)]);
    /// assert_eq!(m.range(90..).take(3).count(), 3);
    /// assert_eq!(m.range(13..10).count(), 0);
    /// ```
    #[must_use]
    pub fn range<Q, R>(&self, range: R) -> Range<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        R: RangeBounds<Q>,
    {
        let guard = self.collector.pin();
        let root: *const Node<K, V> = self.snapshot(&guard);
        let (lo, hi) = (range.start_bound(), range.end_bound());
        let empty = match (lo, hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        };
        if empty {
            return Range::empty(guard);
        }
        // The end cursor is the position of the first key past the range.
        let end = match hi {
            Bound::Included(h) => Bound::Excluded(h),
            Bound::Excluded(h) => Bound::Included(h),
            Bound::Unbounded => Bound::Unbounded,
        };
        // SAFETY: `root` heads the version pinned by `guard`, which the
        // iterator keeps.
        unsafe { Range::new(guard, root, lo, end) }
    }

    /// Every entry, ascending, as a linearizable snapshot (see
    /// [`range`](Self::range)).
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// for k in [3, 1, 2] {
    ///     m.insert(k, k * 10);
    /// }
    /// let keys: Vec<i32> = m.iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, [1, 2, 3]);
    /// ```
    #[must_use]
    pub fn iter(&self) -> Range<'_, K, V>
    where
        K: Ord,
    {
        self.range::<K, _>(..)
    }
}

impl<K: Ord, V: Clone> LockFreeBTree<K, V> {
    /// Inserts `key → value`; returns the previous value (a clone), like
    /// [`std::collections::BTreeMap::insert`]. For an existing key the
    /// entry is replaced by the one given: the map then holds the new key
    /// object (equal to the old one), and the old key is dropped with the
    /// old value. Only `V: Clone` is needed (to return the old value): keys
    /// are never cloned.
    ///
    /// ```
    /// let m = waitless::btree::LockFreeBTree::new();
    /// assert_eq!(m.insert(7, 'a'), None);
    /// assert_eq!(m.insert(7, 'b'), Some('a'));
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let guard = self.collector.pin();
        // Our entry: private until a CAS publishes it, reused by retries;
        // freed (key and value dropped) by `at`'s drop if a comparison
        // panics first. `commit` disarms that right at its successful CAS,
        // before anything that can run user code (collections in `defer`
        // run deferred destructors, which may panic).
        let e = Entry::alloc(key, value);
        let mut at = Attempt::new(&guard);
        at.unpublished = Some(e);
        // SAFETY: `e` is ours and alive for this call.
        let k = unsafe { key_of(e) };
        let mut path: Path<K, V> = InlineVec::new();
        let backoff = Backoff::new();
        loop {
            path.clear();
            let root = self.root.load(Ordering::Acquire);
            // SAFETY: `root` was loaded (Acquire, pairing with the root CAS
            // in `commit`) while `guard` is pinned.
            let (leaf_node, leaf) = unsafe { descend(root, k, &mut path) };
            let (up, replaced) = match leaf.search(k) {
                Ok(i) => {
                    let old = leaf.ents.as_slice()[i].e;
                    let p = leaf_replace(leaf, i, e, &mut at);
                    at.drops.push((old, true));
                    (Up::One(p), Some(old))
                }
                Err(i) => (leaf_insert(leaf, i, e, &mut at), None),
            };
            // SAFETY: `root`, `path` and `leaf_node` come from one descent
            // under `guard`; `at` holds this attempt's nodes and counts.
            if unsafe { self.commit(&guard, root, &path, leaf_node, up, &mut at) } {
                INSERT_SITE.record(true);
                // SAFETY: `old` was in a leaf of the version we replaced;
                // its leaf reference is released only after `guard` unpins.
                return replaced.map(|old| unsafe { (*old).with_val(V::clone) });
            }
            INSERT_SITE.record(false);
            at.abandon();
            // Another writer's CAS won: back off a little so the two of us
            // stop rebuilding the same path in lockstep.
            backoff.spin();
        }
    }

    /// Removes `key`; returns its value (a clone of the one the map held).
    ///
    /// ```
    /// let m = waitless::btree::LockFreeBTree::new();
    /// m.insert("k".to_string(), 1);
    /// assert_eq!(m.remove("k"), Some(1));
    /// assert_eq!(m.remove("k"), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let guard = self.collector.pin();
        let mut path: Path<K, V> = InlineVec::new();
        let mut at = Attempt::new(&guard);
        let backoff = Backoff::new();
        loop {
            path.clear();
            let root = self.root.load(Ordering::Acquire);
            // SAFETY: as in `insert`.
            let (leaf_node, leaf) = unsafe { descend(root, key, &mut path) };
            let i = leaf.search(key).ok()?;
            let old = leaf.ents.as_slice()[i].e;
            at.drops.push((old, true));
            let up = leaf_remove(leaf, i, &mut at);
            // SAFETY: as in `insert`.
            if unsafe { self.commit(&guard, root, &path, leaf_node, up, &mut at) } {
                REMOVE_SITE.record(true);
                // SAFETY: as in `insert`: released only after we unpin.
                return Some(unsafe { (*old).with_val(V::clone) });
            }
            REMOVE_SITE.record(false);
            at.abandon();
            backoff.spin();
        }
    }
}

impl<K, V> LockFreeBTree<K, V> {
    /// Builds the new path above a changed leaf and tries to publish it.
    /// On success retires the old path, releases the entry references the
    /// new version dropped (`at.drops`), and returns `true`; on failure
    /// returns `false` with every new node in `at.fresh` (the caller
    /// abandons the attempt).
    ///
    /// # Safety
    /// 1. `guard` is pinned in `self.collector` and was pinned before
    ///    `root` was loaded from `self.root`.
    /// 2. `path` and `leaf` are the nodes visited descending from `root`.
    /// 3. `up` and `at.fresh` hold only nodes built by this call's caller
    ///    (not published), `up`'s nodes among `at.fresh`; `at.spec` and
    ///    `at.drops` describe how the new version's entry references differ
    ///    from `root`'s.
    unsafe fn commit(
        &self,
        guard: &Guard<'_>,
        root: NodePtr<K, V>,
        path: &Path<K, V>,
        leaf: NodePtr<K, V>,
        up: Up<K, V>,
        at: &mut Attempt<K, V>,
    ) -> bool {
        // SAFETY: precondition 2: `leaf` is in the pinned version.
        let mut old_count = unsafe { (*leaf).count() };
        let mut up = up;
        for &(p, idx) in path.as_slice().iter().rev() {
            // SAFETY: `p` is an inner node of the pinned version (2).
            let Node::Inner(n) = (unsafe { &*p }) else {
                unreachable!("the path holds inner nodes")
            };
            // SAFETY: `n`'s children are in the pinned version; `up` holds
            // our nodes (3).
            up = unsafe { rebuild_inner(n, idx, up, old_count, at) };
            old_count = n.count;
        }
        let new_root = match up {
            Up::One(p) => {
                // SAFETY: `p` is ours (3), fully built.
                match unsafe { &*p } {
                    // A root with one child (and no separator) is replaced
                    // by the child; the shell we built for it (the last
                    // node built) is freed.
                    Node::Inner(n) if n.kids.len() == 1 => {
                        let kid = n.kid(0);
                        debug_assert_eq!(at.fresh.as_slice().last(), Some(&p));
                        at.fresh.pop();
                        // SAFETY: `p` is ours (from `at.rec`) and
                        // unpublished; an inner node owns neither its child
                        // nor its entries.
                        unsafe { free_unpublished(at.rec, p) };
                        kid
                    }
                    _ => p,
                }
            }
            Up::Two(l, sep, r) => {
                let mut n = Inner::new();
                // SAFETY: `l` and `r` are ours (3).
                n.count = unsafe { (*l).count() + (*r).count() };
                n.keys.push(sep);
                n.kids.push(l);
                n.kids.push(r);
                at.alloc(Node::Inner(n))
            }
            Up::Gone => at.alloc(Node::Leaf(Leaf::new())),
        };
        // AcqRel: Release publishes every node (and new entry) we built
        // (pairs with the Acquire root loads of readers and writers);
        // Acquire on success keeps the retires and releases below after the
        // CAS that unlinked what they free. Failure: Relaxed, we reload.
        match self
            .root
            .compare_exchange(root, new_root, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => {
                // First, before anything below can unwind (a `defer` may
                // collect and run a panicking destructor): our nodes and our
                // entry are published now, so `at`'s drop must not free them.
                at.fresh.clear();
                at.unpublished = None;
                at.published = true;
                // The speculative separator reference is now a real one.
                at.spec = None;
                for &(p, _) in path.as_slice() {
                    // SAFETY: the old path is unlinked by our CAS: the new
                    // root does not reach it (every node on it was copied),
                    // and nodes of older versions were already retired by
                    // the writers that replaced them, so each node is
                    // retired once, by the writer whose CAS unlinked it.
                    // A retired node is never dropped (it owns nothing and
                    // touches no entry): after the grace period its block
                    // is reused from, or freed by, the map's collector's
                    // pool, which holds only node blocks of this layout.
                    unsafe { retire_node(guard, p) };
                }
                // SAFETY: as for the path.
                unsafe { retire_node(guard, leaf) };
                while let Some((e, is_leaf)) = at.drops.pop() {
                    // SAFETY: our CAS unlinked exactly these references
                    // from the current version (precondition 3), each
                    // counted and dropped once here; readers pinned now may
                    // still use them, so the release waits for them.
                    unsafe { release(guard, e, is_leaf) };
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl<K, V> Default for LockFreeBTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for LockFreeBTree<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFreeBTree")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> Drop for LockFreeBTree<K, V> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can reach the map. Free the current
        // version and release its entry references; retired nodes and the
        // releases still deferred run when `collector` drops after us, and
        // the last release of each entry frees it.
        let mut walk = Teardown {
            work: vec![Work::Node(self.root.load(Ordering::Relaxed))],
        };
        walk.run();
    }
}

/// One step of tearing down the current version.
enum Work<K, V> {
    /// Free this node after queueing its children and entry references.
    Node(NodePtr<K, V>),
    /// Release this entry reference (`true`: the leaf reference).
    Release(EntryPtr<K, V>, bool),
}

/// The work list of `Drop for LockFreeBTree`. If a key's or value's
/// destructor panics, unwinding drops the `Teardown`, which runs the rest
/// of the list (a second panic then aborts, as in std's collections)
/// instead of leaking the rest of the map.
struct Teardown<K, V> {
    work: Vec<Work<K, V>>,
}

impl<K, V> Teardown<K, V> {
    fn run(&mut self) {
        // Entry releases are queued after a node's children, so they run
        // first: the list holds at most about `2 * B` items per level.
        while let Some(w) = self.work.pop() {
            match w {
                Work::Node(p) => {
                    // SAFETY: every node of the current version is reachable
                    // once from the root (a tree) and owned by it; retired
                    // nodes are not reachable from it. Freed below, after
                    // this use.
                    match unsafe { &*p } {
                        Node::Inner(n) => {
                            self.work
                                .extend(n.kids.as_slice().iter().map(|&c| Work::Node(c)));
                            self.work.extend(
                                n.keys.as_slice().iter().map(|s| Work::Release(s.e, false)),
                            );
                        }
                        Node::Leaf(l) => {
                            self.work
                                .extend(l.ents.as_slice().iter().map(|s| Work::Release(s.e, true)));
                        }
                    }
                    // SAFETY: as above: `p` is reached once, and no
                    // reference to it is used after this (its pointers were
                    // copied into the list).
                    unsafe { free_node_now(p) };
                }
                // SAFETY: a reference of the current version (a separator
                // of an inner node, or a leaf slot), counted, queued once
                // with the node it belongs to and released once (popped
                // first); no other thread exists.
                Work::Release(e, is_leaf) => unsafe { release_now(e, is_leaf) },
            }
        }
    }
}

impl<K, V> Drop for Teardown<K, V> {
    fn drop(&mut self) {
        // Empty unless a destructor unwound out of `run`.
        self.run();
    }
}

/// An update attempt's private state (on the stack: no allocation).
struct Attempt<'g, K, V> {
    /// The operation's guard (releases after a publishing CAS go through
    /// it).
    guard: &'g Guard<'g>,
    /// This thread's record in the map's collector: its pool recycles our
    /// node blocks.
    rec: &'g Participant,
    /// Set at the successful CAS: from then on the attempt's references in
    /// `drops` must be released even if `commit` unwinds.
    published: bool,
    /// Nodes built by this attempt (not published): at most two per level
    /// and a new root.
    fresh: InlineVec<NodePtr<K, V>, { 2 * MAX_HEIGHT + 2 }>,
    /// An entry whose count this attempt raised for a new separator (a leaf
    /// split); undone if the attempt fails.
    spec: Option<EntryPtr<K, V>>,
    /// Entry references (entry, is the leaf reference) that the new version
    /// no longer has; released if the attempt succeeds.
    drops: InlineVec<(EntryPtr<K, V>, bool), { MAX_HEIGHT + 2 }>,
    /// The entry an `insert` brought, while no CAS has published it; freed
    /// if the attempt is dropped (unwinding) before that. `commit` clears it
    /// at its successful CAS, before it can unwind.
    unpublished: Option<EntryPtr<K, V>>,
}

impl<'g, K, V> Attempt<'g, K, V> {
    fn new(guard: &'g Guard<'g>) -> Self {
        Attempt {
            guard,
            rec: guard.participant(),
            published: false,
            fresh: InlineVec::new(),
            spec: None,
            drops: InlineVec::new(),
            unpublished: None,
        }
    }

    /// Places `node` in a block (recycled from our pool if possible) and
    /// records it as this attempt's.
    #[inline]
    fn alloc(&mut self, node: Node<K, V>) -> NodePtr<K, V> {
        // SAFETY: `rec` is this thread's record in the map's collector (the
        // guard's), whose pool holds only this map's node blocks.
        let p = unsafe { alloc_node(Some(self.rec), node) };
        self.fresh.push(p);
        p
    }

    /// Undoes a failed attempt: frees its nodes (not the entries they point
    /// to, which belong to published versions or to the caller) and its
    /// speculative count.
    fn abandon(&mut self) {
        while let Some(p) = self.fresh.pop() {
            // SAFETY: nodes in `fresh` were built by this attempt (from
            // `rec`) and its CAS failed, so no other thread has seen them; a
            // node owns neither its children nor its entries.
            unsafe { free_unpublished(self.rec, p) };
        }
        if let Some(e) = self.spec.take() {
            // Release: orders our reads of the entry before whoever frees
            // it (pairs with the AcqRel decrement in `release_now`).
            // SAFETY: `e` was reached from the pinned version the attempt
            // read, through a reference whose release waits for our guard,
            // so it is alive and this decrement cannot be the last.
            let before = unsafe { (*e).refs.fetch_sub(1, Ordering::Release) };
            debug_assert!(before > 1, "a speculative count was the last");
        }
        self.drops.clear();
    }
}

impl<K, V> Drop for Attempt<'_, K, V> {
    /// An attempt dropped unfinished (a comparison panicked) is abandoned,
    /// and an `insert`'s entry that no CAS published is freed. One dropped
    /// after its publishing CAS (a destructor run by a collection inside a
    /// release in `commit` panicked) still releases the references its
    /// version dropped, so they do not leak.
    fn drop(&mut self) {
        if self.published {
            while let Some((e, is_leaf)) = self.drops.pop() {
                // SAFETY: as in `commit`: our CAS unlinked exactly these
                // references, each counted and released once (popped
                // first); `guard` is still pinned (the attempt borrows it).
                unsafe { release(self.guard, e, is_leaf) };
            }
            return;
        }
        // First: the speculative count may be on our own entry.
        self.abandon();
        if let Some(e) = self.unpublished.take() {
            // SAFETY: `e` came from `Entry::alloc` in `insert` and no CAS
            // published it (`commit` clears `unpublished` at its successful
            // CAS, before anything that can unwind), so no other thread has
            // seen it; the speculative count `abandon` just took back was
            // the only other use of it.
            drop(unsafe { Entry::unalloc(e) });
        }
    }
}

/// Descends from `root` to the leaf for `q`, pushing every inner node and
/// the child index taken onto `path`.
///
/// # Safety
/// `root` heads a version of the tree that a pinned guard keeps alive for
/// `'g`.
unsafe fn descend<'g, K, V, Q>(
    root: NodePtr<K, V>,
    q: &Q,
    path: &mut Path<K, V>,
) -> (NodePtr<K, V>, &'g Leaf<K, V>)
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    let mut p = root;
    loop {
        // SAFETY: the precondition: `p` is in the pinned version.
        match unsafe { &*p } {
            Node::Leaf(l) => return (p, l),
            Node::Inner(n) => {
                let i = n.route(q);
                path.push((p, i));
                p = n.kid(i);
            }
        }
    }
}

/// A copy of `leaf` with entry `i` replaced by `e`.
fn leaf_replace<K, V>(
    leaf: &Leaf<K, V>,
    i: usize,
    e: EntryPtr<K, V>,
    at: &mut Attempt<'_, K, V>,
) -> NodePtr<K, V> {
    let p = at.alloc(Node::Leaf(Leaf::new()));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let n = unsafe { as_leaf(p) };
    let ents = leaf.ents.as_slice();
    n.ents.extend_cloned(&ents[..i]);
    // SAFETY: `e` is the caller's entry, alive.
    n.ents.push(unsafe { Slot::of(e) });
    n.ents.extend_cloned(&ents[i + 1..]);
    p
}

/// A copy of `leaf` with entry `e` inserted at slot `i`, split in two if it
/// overflows (raising the count of the new separator entry, `at.spec`).
fn leaf_insert<K, V>(
    leaf: &Leaf<K, V>,
    i: usize,
    e: EntryPtr<K, V>,
    at: &mut Attempt<'_, K, V>,
) -> Up<K, V> {
    let ents = leaf.ents.as_slice();
    // SAFETY: `e` is the caller's entry, alive.
    let slot = unsafe { Slot::of(e) };
    if ents.len() < B {
        let p = at.alloc(Node::Leaf(Leaf::new()));
        // SAFETY: `p` was just built by this attempt; nobody else sees it.
        let n = unsafe { as_leaf(p) };
        n.ents.extend_cloned(&ents[..i]);
        n.ents.push(slot);
        n.ents.extend_cloned(&ents[i..]);
        return Up::One(p);
    }
    // Split: B + 1 entries, the left half keeps `mid`.
    let mid = B.div_ceil(2);
    let mut all: InlineVec<Slot<K, V>, { B + 1 }> = InlineVec::new();
    all.extend_cloned(&ents[..i]);
    all.push(slot);
    all.extend_cloned(&ents[i..]);
    let all = all.as_slice();
    let sep = all[mid];
    // Relaxed, as for `Arc::clone`: `sep` is alive and counted (it is in
    // the pinned version, or it is our own entry), so the count is at
    // least 1 and cannot reach 0 while we hold this increment.
    // SAFETY: `sep` is alive (see above).
    unsafe { (*sep.e).refs.fetch_add(1, Ordering::Relaxed) };
    at.spec = Some(sep.e);
    let lp = at.alloc(Node::Leaf(Leaf::new()));
    // SAFETY: `lp` was just built by this attempt; nobody else sees it.
    unsafe { as_leaf(lp) }.ents.extend_cloned(&all[..mid]);
    let rp = at.alloc(Node::Leaf(Leaf::new()));
    // SAFETY: as for `lp`.
    unsafe { as_leaf(rp) }.ents.extend_cloned(&all[mid..]);
    Up::Two(lp, sep, rp)
}

/// A copy of `leaf` without slot `i`, or `Gone` if that empties it.
fn leaf_remove<K, V>(leaf: &Leaf<K, V>, i: usize, at: &mut Attempt<'_, K, V>) -> Up<K, V> {
    let ents = leaf.ents.as_slice();
    if ents.len() == 1 {
        return Up::Gone;
    }
    let p = at.alloc(Node::Leaf(Leaf::new()));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let n = unsafe { as_leaf(p) };
    n.ents.extend_cloned(&ents[..i]);
    n.ents.extend_cloned(&ents[i + 1..]);
    Up::One(p)
}

/// A copy of inner node `n` whose child `idx` (holding `old_kid_count`
/// entries) became `up`; split in two if it overflows, `Gone` if it empties
/// (a dropped separator goes to `at.drops`).
///
/// # Safety
/// `n`'s children are alive (a pinned version); `up` holds fully built
/// nodes.
unsafe fn rebuild_inner<K, V>(
    n: &Inner<K, V>,
    idx: usize,
    up: Up<K, V>,
    old_kid_count: usize,
    at: &mut Attempt<'_, K, V>,
) -> Up<K, V> {
    let base = n.count - old_kid_count;
    let (keys, kids) = (n.keys.as_slice(), n.kids.as_slice());
    if matches!(up, Up::Gone) && kids.len() == 1 {
        return Up::Gone;
    }
    let p = at.alloc(Node::Inner(Inner::new()));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let m = unsafe { as_inner(p) };
    match up {
        Up::One(c) => {
            m.keys.extend_cloned(keys);
            m.kids.extend_cloned(&kids[..idx]);
            m.kids.push(c);
            m.kids.extend_cloned(&kids[idx + 1..]);
            // SAFETY: `c` is fully built (precondition).
            m.count = base + unsafe { (*c).count() };
        }
        Up::Gone => {
            // Child `idx` goes with the separator on its left (or, for the
            // first child, the one on its right).
            let s = idx.saturating_sub(1);
            at.drops.push((keys[s].e, false));
            m.keys.extend_cloned(&keys[..s]);
            m.keys.extend_cloned(&keys[s + 1..]);
            m.kids.extend_cloned(&kids[..idx]);
            m.kids.extend_cloned(&kids[idx + 1..]);
            m.count = base;
        }
        Up::Two(l, sep, r) if kids.len() < B => {
            m.keys.extend_cloned(&keys[..idx]);
            m.keys.push(sep);
            m.keys.extend_cloned(&keys[idx..]);
            m.kids.extend_cloned(&kids[..idx]);
            m.kids.push(l);
            m.kids.push(r);
            m.kids.extend_cloned(&kids[idx + 1..]);
            // SAFETY: `l`, `r` are fully built (precondition).
            m.count = base + unsafe { (*l).count() + (*r).count() };
        }
        Up::Two(l, sep, r) => {
            // B + 1 children: the left keeps `mid`, separator `mid - 1`
            // moves up (its count is unchanged: still one separator).
            let mut all_keys: InlineVec<Slot<K, V>, B> = InlineVec::new();
            all_keys.extend_cloned(&keys[..idx]);
            all_keys.push(sep);
            all_keys.extend_cloned(&keys[idx..]);
            let mut all_kids: InlineVec<NodePtr<K, V>, { B + 1 }> = InlineVec::new();
            all_kids.extend_cloned(&kids[..idx]);
            all_kids.push(l);
            all_kids.push(r);
            all_kids.extend_cloned(&kids[idx + 1..]);
            let (all_keys, all_kids) = (all_keys.as_slice(), all_kids.as_slice());
            let mid = all_kids.len() / 2;
            let rp = at.alloc(Node::Inner(Inner::new()));
            // SAFETY: `rp` was just built by this attempt; nobody else sees
            // it, and it is not `p`.
            let right = unsafe { as_inner(rp) };
            m.keys.extend_cloned(&all_keys[..mid - 1]);
            let up_sep = all_keys[mid - 1];
            right.keys.extend_cloned(&all_keys[mid..]);
            for (j, &c) in all_kids.iter().enumerate() {
                // SAFETY: each child is in the pinned version or ours.
                let cnt = unsafe { (*c).count() };
                if j < mid {
                    m.kids.push(c);
                    m.count += cnt;
                } else {
                    right.kids.push(c);
                    right.count += cnt;
                }
            }
            return Up::Two(p, up_sep, rp);
        }
    }
    Up::One(p)
}

/// The leaf at `p`, to fill it (nodes are built in their heap block, not
/// on the stack and moved in).
///
/// # Safety
/// `p` was just built as a leaf by the calling attempt and nobody else can
/// see it; no other reference to it is live while the result is.
#[inline]
unsafe fn as_leaf<'a, K, V>(p: NodePtr<K, V>) -> &'a mut Leaf<K, V> {
    // SAFETY: the precondition.
    match unsafe { &mut *p } {
        Node::Leaf(l) => l,
        Node::Inner(_) => unreachable!("built as a leaf"),
    }
}

/// The inner node at `p`, to fill it.
///
/// # Safety
/// As for [`as_leaf`], for an inner node.
#[inline]
unsafe fn as_inner<'a, K, V>(p: NodePtr<K, V>) -> &'a mut Inner<K, V> {
    // SAFETY: the precondition.
    match unsafe { &mut *p } {
        Node::Inner(n) => n,
        Node::Leaf(_) => unreachable!("built as an inner node"),
    }
}
