//! A lock-free ordered map with linearizable range queries: a B+tree with
//! immutable inner nodes and per-leaf versions.
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
//! A B+tree (fan-out 32) whose inner nodes are immutable and whose leaves
//! are *handles*: one atomic pointer to the leaf's current *version*, an
//! immutable sorted array of pointers to entries with a timestamp. Each
//! key and its value live in one entry, allocated by the `insert` that
//! brought them and never moved, so no key or value is ever cloned by the
//! map.
//!
//! - An ordinary update (15 of 16 inserts, replaces, removes) builds a new
//!   version of its one leaf and CASes the leaf's handle: writers on
//!   different leaves touch disjoint words and never conflict.
//! - A *shape change* (a full leaf splits, an emptied leaf goes) freezes
//!   the handle, path-copies the inner nodes above it into a new *root
//!   version*, and publishes that with one CAS on the root. It keeps the
//!   contents, so any thread that meets the frozen handle completes it.
//! - Snapshots use a version clock that *writers* advance (bundled
//!   references, Nelson et al. PPoPP '22; vCAS, Wei et al. PPoPP '21, has
//!   the readers bump it instead): versions (leaf and root) are stamped,
//!   after they are installed, with the value of one clock increment; a
//!   scan only loads the clock and reads, at the root and at every handle,
//!   the newest version stamped no later than the value it loaded.
//!
//! The design, its history (sessions 1–6 path-copied every update under
//! one root CAS) and its trade-offs against LLX/SCX (a,b)-trees,
//! OCC-ABtree, the Bw-tree, vCAS and bundled references are argued in
//! `docs/btree.md`.
//!
//! # Consistency and linearization points
//!
//! - `insert` and a `remove` that finds its key: the clock increment
//!   that stamps the version they installed (theirs or a helper's).
//! - `get`, `get_with`, `contains_key` and a `remove` that finds nothing:
//!   the later of their root load and the stamp of the leaf version they
//!   read.
//! - `range`, `iter`, `len`, `is_empty`, `first_key_value`,
//!   `last_key_value`: the scan's clock load. The iterator then walks that
//!   snapshot lazily, so it yields exactly the map's contents in the range
//!   at that instant, however writers race with it, and
//!   `range(lo..).take(64)` costs O(log n + 64).
//!
//! # Progress
//!
//! Every operation is lock-free: a handle CAS fails only if another update
//! of that leaf succeeded or the leaf was frozen (then the thread completes
//! the shape change itself); a root CAS fails only if another shape change
//! succeeded. Readers never retry.
//!
//! Reads write no shared memory unless they meet a *pending* version (one
//! whose writer has installed it and not stamped it yet): a lookup, or a
//! scan at the root and at each leaf it visits, stamps such a version
//! itself — one clock increment and one CAS try — because it cannot tell
//! whether the writer has made its defining increment already, and waiting
//! for the writer would not be lock-free. Only the newest version of a
//! handle (or the newest root version) can be pending, so a lookup writes
//! at most once and a scan at most once per leaf it reads plus once at the
//! root, and only in that race (a window of a few instructions per update).
//!
//! The price: a lookup follows one more pointer (the handle), an update
//! stamps its version (a clock increment on the shared clock line and a
//! CAS), a scan follows
//! `prev` links back to its snapshot, and `len` walks the leaves (O(n/B)).
//! The measurements are in `docs/btree.md`.
//!
//! # Memory
//!
//! Nodes, handles and versions own nothing: a replaced leaf version is
//! retired by the writer whose handle CAS replaced it, after stamping its
//! successor (a scan older than that stamp may still read it); a shape
//! change's winner retires the old root version, the copied path, the
//! frozen handle and its last version, after stamping the new root
//! version.
//!
//! An entry counts its references from the current version: 1 for its leaf
//! slot while its key is in the map, plus 1 per inner node whose separator
//! it is (a split makes the first entry of its right half a separator,
//! counted *before* the root CAS; a failed attempt takes that count back).
//! The writer whose CAS drops a reference releases it through the
//! collector after its stamp: releasing the leaf reference drops the
//! value, the last release frees the entry and drops the key. So every key
//! and value object is dropped exactly once.
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

mod blocks;
mod ext;
mod handles;
mod iter;
mod node;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(test)]
mod leaf_protocol;

use core::borrow::Borrow;
use core::marker::PhantomData;
use core::ops::{Bound, RangeBounds};
use core::panic::{RefUnwindSafe, UnwindSafe};

use blocks::Depot;
use handles::{ArenaBox, HandleArena};
pub use iter::Range;
use node::{
    alloc_node, free_node_now, free_unpublished, frozen, is_frozen, key_of, leaf_at,
    prefetch_images, release, release_now, resolve, retire_node, stamp, unmarked, Entry, EntryPtr,
    HandlePtr, InlineVec, Inner, Leaf, Node, NodePtr, Slot, B, MAX_HEIGHT, PENDING,
};

use crate::contention::Site;
use crate::epoch::{Collector, Guard, Participant};
use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use crate::{Backoff, CachePadded};

static INSERT_SITE: Site = Site::new("btree.insert");

static REMOVE_SITE: Site = Site::new("btree.remove");

static SHAPE_SITE: Site = Site::new("btree.shape");

/// The most bytes of recycled node blocks each thread's pool in the map's
/// collector may keep (it starts at the pool's default and grows to the
/// largest backlog of retired blocks the thread has waited on, see
/// `epoch/pool.rs`, `Pool::missed`): without it most of the blocks a
/// writer retires overflow the default 64 KiB free list and go back to the
/// allocator. 16 MiB, as the stack's: with 8 writers on 2 CPUs a grace
/// period spans several scheduler slices, and at 4 MiB the backlog
/// overflowed, went to the allocator and came back as fresh pages (8
/// threads: 1.64 → 2.01 M ops/s and a peak resident set of 294 → 105 MB,
/// `examples/oversubscribed.rs`, docs/btree.md).
pub(super) const NODE_POOL_BYTES: usize = 16 << 20;

/// A lock-free ordered map (B+tree with per-leaf versions) whose range
/// scans are linearizable snapshots. See the [module documentation](self).
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
    root: AtomicPtr<RootVer<K, V>>,
    /// The version clock: incremented by every stamp (writers, and readers
    /// that help a pending version), only loaded by scans. Written only by
    /// RMWs (the snapshot argument needs its release sequences).
    clock: CachePadded<AtomicU64>,
    collector: Collector,
    _owns: PhantomData<(K, V)>,
    /// The leaf handles' memory. On the heap, because the collector's
    /// deferred functions push retired handles onto it by address (the map
    /// may move), and declared after `collector`, which runs them when it
    /// drops.
    handles: ArenaBox<K, V>,
}

/// A version of the tree's shape: the inner nodes (immutable, path-copied
/// by shape changes) above the leaf handles. `ts` is stamped like a leaf
/// version's; `prev` is the root version this one replaced, followed only
/// by scans older than `ts`.
struct RootVer<K, V> {
    ts: AtomicU64,
    prev: *mut RootVer<K, V>,
    tree: NodePtr<K, V>,
}

// SAFETY: the map owns its keys and values (through raw node pointers, which
// hide them from the auto traits). Moving the map to another thread moves
// them, so it needs `K: Send, V: Send`.
unsafe impl<K: Send, V: Send> Send for LockFreeBTree<K, V> {}
// SAFETY: through `&LockFreeBTree` several threads read the same keys and
// values (`K: Sync, V: Sync`), clone them, and entries are dropped by
// whichever thread runs their last release (`K: Send, V: Send`). All shared
// mutation is atomic (the root, the clock, handles, version stamps, entry
// counts) apart from a value's drop after its grace period; nodes and
// versions are immutable once published (apart from their stamp).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for LockFreeBTree<K, V> {}

// Unwind safety, as std's `BTreeMap` and crossbeam's `SkipMap` have it: an
// update publishes with one CAS after every call into user code (`K::cmp`,
// `V::clone`) that can panic, so a panic leaves the map as it was before
// the operation or after it, never in between (shown by
// `tests/peer_btree.rs::a_panicking_value_clone_corrupts_nothing`). The
// auto trait is lost only through the `UnsafeCell` of a value behind a raw
// pointer.
impl<K: UnwindSafe + RefUnwindSafe, V: UnwindSafe + RefUnwindSafe> UnwindSafe
    for LockFreeBTree<K, V>
{
}

/// What a rebuilt subtree became, reported to the level above.
enum Up<K, V> {
    /// One node replaces the old child.
    One(NodePtr<K, V>),
    /// The child split: left, separator (the first entry of the right
    /// half, counted), right. At the bottom level the halves are handles.
    Two(NodePtr<K, V>, Slot<K, V>, NodePtr<K, V>),
    /// The child became empty and is dropped from its parent.
    Gone,
}

/// The path from the root to a bottom inner node: each inner node and the
/// child taken (on the stack: no allocation per update).
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
        let handles = ArenaBox::new();
        // SAFETY: no record given: a fresh block of the map's layout.
        let first = unsafe { alloc_node(None, Node::Leaf(Leaf::first())) };
        let mut top = Inner::new(true);
        // SAFETY: no other thread can reach the new arena.
        top.kids.push(unsafe { handles.alloc(first) }.cast());
        // SAFETY: no record given: a fresh block of the map's layout.
        let tree = unsafe { alloc_node(None, Node::Inner(top)) };
        Self {
            root: AtomicPtr::new(Box::into_raw(Box::new(RootVer {
                ts: AtomicU64::new(1),
                prev: core::ptr::null_mut(),
                tree,
            }))),
            clock: CachePadded::new(AtomicU64::new(1)),
            collector: Collector::with_pool_max(NODE_POOL_BYTES),
            _owns: PhantomData,
            handles,
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
    /// m.insert(1, 2); // the replaced leaf version is retired into the collector
    /// let _waiting = m.collector().pending();
    /// ```
    #[must_use]
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// The current root version (not stamped: lookups need no stamped root
    /// version, since a shape change changes no contents).
    #[inline]
    fn root_ver<'g>(&self, _guard: &'g Guard<'_>) -> (*mut RootVer<K, V>, &'g RootVer<K, V>) {
        // SeqCst (a plain load on x86): pairs with the root CAS of
        // `complete_shape` (its Release part: the version's nodes were
        // built before). SeqCst is not needed for the snapshot argument
        // since session 8 (a release sequence on the clock, see
        // `node::stamp_slow`): Acquire would do.
        let p = self.root.load(Ordering::SeqCst);
        // SAFETY: never null; a root version is retired only after being
        // replaced, and our guard was pinned before this load.
        (p, unsafe { &*p })
    }

    /// The current root version, stamped. Writers stamp it before they
    /// stamp a leaf version below it: a new handle's first version is
    /// stamped 1, so without this an update of it could be stamped before
    /// the root version that made the handle reachable, and a scan between
    /// the two would miss a finished update (`leaf_protocol`, correction 2).
    #[inline]
    fn root_ver_stamped<'g>(
        &self,
        guard: &'g Guard<'_>,
    ) -> (*mut RootVer<K, V>, &'g RootVer<K, V>) {
        let (p, r) = self.root_ver(guard);
        stamp(&self.clock, &r.ts);
        (p, r)
    }

    /// Takes a snapshot: loads the clock (the snapshot's linearization
    /// point; no shared write) and returns its value `s` and the tree of
    /// the newest root version stamped `<= s`.
    fn snapshot_clock<'g>(&self, _guard: &'g Guard<'_>) -> (u64, &'g Node<K, V>) {
        // Acquire: pairs with the bump of every stamp `<= s` (each bump is
        // an RMW, and the clock is written only by RMWs, so reading `s`
        // reads from the release sequence of every earlier bump; see
        // `node::stamp_slow`): every version stamped `<= s`, and every
        // root CAS of a root version stamped `<= s`, happens before the
        // loads below.
        let s = self.clock.load(Ordering::Acquire);
        // SeqCst: see `root_ver`.
        let mut r = self.root.load(Ordering::SeqCst);
        loop {
            // SAFETY: `r` is the current root version (loaded after our
            // pin), or reached through `prev` from a version stamped `> s`:
            // our clock load read a value older than that stamp's bump, and
            // its predecessor is retired only after that bump, so our pin
            // (before our clock load) holds it (the ordinary epoch argument:
            // a load that reads an older value than a write ordered before
            // the retire).
            let rv = unsafe { &*r };
            if stamp(&self.clock, &rv.ts) <= s {
                // SAFETY: as above: the version's nodes are alive.
                return (s, unsafe { &*rv.tree });
            }
            r = rv.prev;
        }
    }

    /// Runs `f` on the key and value stored for `q`, if any.
    #[inline]
    fn find<Q, R>(&self, q: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let guard = self.collector.pin();
        let (_, r) = self.root_ver(&guard);
        // SAFETY: `r.tree` heads a version our guard keeps alive.
        let h = unsafe { handle_for(r.tree, q, None) };
        // SAFETY: the handle of a pinned root version, and its current
        // version, are alive while we are pinned.
        let l = unsafe { self.current(h) };
        let e = l.entry(l.search(q).ok()?);
        // SAFETY: `e` is reached through a leaf slot of the version `guard`
        // keeps alive.
        Some(unsafe { e.with_val(|v| f(&e.key, v)) })
    }

    /// The current version of handle `h`, stamped (a lookup must not read a
    /// pending version without stamping it: its writer may have done its
    /// defining increment already, i.e. the update is linearized, and a lookup
    /// that starts after that must see it; nor may it skip to `prev`).
    ///
    /// # Safety
    /// `h` was reached from a root version under a pinned guard that lives
    /// for `'g`.
    #[inline]
    unsafe fn current<'g>(&self, h: HandlePtr<K, V>) -> &'g Leaf<K, V> {
        // SeqCst: see `root_ver` (pairs with the handle CAS in
        // `publish_leaf`).
        // SAFETY: the precondition: `h` is alive.
        let p = unmarked(unsafe { (*h).cur.load(Ordering::SeqCst) });
        prefetch_images(p);
        // SAFETY: the precondition: `p` is the handle's current version.
        let l = unsafe { leaf_at(p) };
        stamp(&self.clock, &l.ts);
        l
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

    /// The number of entries (exact: counted over one snapshot, so it walks
    /// every leaf, O(n / B)).
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
        fn walk<K, V>(clock: &AtomicU64, n: &Node<K, V>, s: u64) -> usize {
            let Node::Inner(n) = n else {
                unreachable!("a tree holds inner nodes above its handles")
            };
            (0..n.kids.len())
                .map(|i| {
                    if n.bottom {
                        // SAFETY: `len`'s snapshot: handles of a root
                        // version stamped `<= s`, pinned before the load.
                        unsafe { resolve(clock, n.handle(i), s) }.len()
                    } else {
                        // SAFETY: children of a pinned node are alive.
                        walk(clock, unsafe { &*n.kid(i) }, s)
                    }
                })
                .sum()
        }
        let guard = self.collector.pin();
        let (s, tree) = self.snapshot_clock(&guard);
        walk(&self.clock, tree, s)
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
        self.iter_unbounded_is_empty()
    }

    fn iter_unbounded_is_empty(&self) -> bool {
        self.edge(false, |_| ()).is_none()
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
        self.edge(false, |e| {
            // SAFETY: reached through a leaf slot of the pinned snapshot.
            (e.key.clone(), unsafe { e.with_val(V::clone) })
        })
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
        self.edge(true, |e| {
            // SAFETY: reached through a leaf slot of the pinned snapshot.
            (e.key.clone(), unsafe { e.with_val(V::clone) })
        })
    }

    /// `f` of the first (`last`: the last) entry of one snapshot. Leaves
    /// may be empty for a moment (an emptied leaf before its handle is
    /// dropped), so this walks on past empty ones.
    fn edge<R>(&self, last: bool, f: impl FnOnce(&Entry<K, V>) -> R) -> Option<R> {
        fn walk<'g, K, V>(
            clock: &AtomicU64,
            n: &'g Node<K, V>,
            s: u64,
            last: bool,
        ) -> Option<&'g Entry<K, V>> {
            let Node::Inner(n) = n else {
                unreachable!("a tree holds inner nodes above its handles")
            };
            let k = n.kids.len();
            for j in 0..k {
                let i = if last { k - 1 - j } else { j };
                let got = if n.bottom {
                    // SAFETY: as in `len`.
                    let l: &'g Leaf<K, V> = unsafe { resolve(clock, n.handle(i), s) };
                    match l.len() {
                        0 => None,
                        len => Some(l.entry(if last { len - 1 } else { 0 })),
                    }
                } else {
                    // SAFETY: children of a pinned node are alive.
                    walk(clock, unsafe { &*n.kid(i) }, s, last)
                };
                if got.is_some() {
                    return got;
                }
            }
            None
        }
        let guard = self.collector.pin();
        let (s, tree) = self.snapshot_clock(&guard);
        walk(&self.clock, tree, s, last).map(f)
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
        let (lo, hi) = (range.start_bound(), range.end_bound());
        let empty = match (lo, hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        };
        if empty {
            return Range::empty(guard, &self.clock);
        }
        let (s, tree) = self.snapshot_clock(&guard);
        let tree: *const Node<K, V> = tree;
        // The end cursor is the position of the first key past the range.
        let end = match hi {
            Bound::Included(h) => Bound::Excluded(h),
            Bound::Excluded(h) => Bound::Included(h),
            Bound::Unbounded => Bound::Unbounded,
        };
        // SAFETY: `tree` heads the root version of the snapshot `s` taken
        // under `guard`, which the iterator keeps.
        unsafe { Range::new(guard, &self.clock, s, tree, lo, end) }
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

/// What [`LockFreeBTree::put`] did.
enum Put<K, V> {
    /// The key was absent; our entry is in the map now.
    Inserted,
    /// Our entry replaced this one (its leaf reference is released a grace
    /// period after the caller's guard unpins).
    Replaced(EntryPtr<K, V>),
    /// The key was present and the caller asked not to replace it: our
    /// entry, never published, handed back.
    Present(EntryPtr<K, V>),
}

impl<K: Ord, V> LockFreeBTree<K, V> {
    /// Inserts `key → value` if `key` is absent. If it is present, the map
    /// is unchanged and the key and value are given back, like
    /// `scc::TreeIndex::insert`; unlike [`insert`](Self::insert) this needs
    /// no `V: Clone`. Linearized, when the key is present, at the read of
    /// the leaf version that holds it (as a lookup).
    ///
    /// ```
    /// let m = waitless::btree::LockFreeBTree::new();
    /// assert_eq!(m.try_insert(7, 'a'), Ok(()));
    /// assert_eq!(m.try_insert(7, 'b'), Err((7, 'b')));
    /// assert_eq!(m.get(&7), Some('a'));
    /// ```
    pub fn try_insert(&self, key: K, value: V) -> Result<(), (K, V)> {
        let guard = self.collector.pin();
        match self.put(&guard, key, value, false) {
            Put::Present(e) => {
                // SAFETY: `put` handed back our entry, never published: ours
                // alone, from `Entry::alloc` with the map's depot.
                Err(unsafe { Entry::unalloc(e, &self.handles.depot) })
            }
            _ => Ok(()),
        }
    }

    /// Inserts `key → value`, replacing an existing entry for `key` if
    /// `replace`, under `guard` (pinned in our collector).
    fn put(&self, guard: &Guard<'_>, key: K, value: V, replace: bool) -> Put<K, V> {
        // Our entry: private until a CAS publishes it, reused by retries;
        // freed (key and value dropped) by `at`'s drop if a comparison
        // panics first. `publish_leaf` disarms that right at its successful
        // CAS, before anything that can run user code.
        let e = Entry::alloc(key, value, &self.handles.depot);
        let mut at = Attempt::new(guard, &self.handles);
        at.unpublished = Some(e);
        // SAFETY: `e` is ours and alive for this call.
        let k = unsafe { key_of(e) };
        let backoff = Backoff::new();
        loop {
            let (_, r) = self.root_ver_stamped(guard);
            // SAFETY: `r.tree` heads a version our guard keeps alive.
            let hp = unsafe { handle_for(r.tree, k, None) };
            // SeqCst: see `current`.
            // SAFETY: the handle of a pinned root version is alive.
            let cur = unsafe { &*hp }.cur.load(Ordering::SeqCst);
            if is_frozen(cur) {
                // SAFETY: `hp` was reached by routing `k` under `guard`.
                unsafe { self.complete_shape(guard, hp, k) };
                continue;
            }
            // SAFETY: the current version of a live handle, pinned.
            let v = unsafe { leaf_at(cur) };
            // Stamped before it can be replaced: stamps grow along a chain
            // (and a `Present` answer is linearized at this read, as a
            // lookup's).
            stamp(&self.clock, &v.ts);
            let (nv, replaced) = match v.search(k) {
                Ok(_) if !replace => {
                    // Not published: `at`'s drop must not free it.
                    at.unpublished = None;
                    return Put::Present(e);
                }
                Ok(i) => {
                    let old = v.ents.entries()[i];
                    at.drops.push((old, true));
                    (leaf_replace(v, cur, i, e, &mut at), Some(old))
                }
                Err(i) if v.len() < B => (leaf_insert(v, cur, i, e, &mut at), None),
                Err(_) => {
                    // Full: freeze it as the handle's last version (it is
                    // stamped), split it — a shape change that keeps the
                    // contents, which any thread completes — and retry in
                    // the half.
                    // SeqCst: see `publish_leaf`.
                    // SAFETY: as above.
                    let h = unsafe { &*hp };
                    if h.cur
                        .compare_exchange(cur, frozen(cur), Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        // SAFETY: as above.
                        unsafe { self.complete_shape(guard, hp, k) };
                    }
                    continue;
                }
            };
            // SAFETY: `hp`, `cur` and `nv` as `publish_leaf` requires.
            if unsafe { self.publish_leaf(guard, hp, cur, nv, &mut at) } {
                INSERT_SITE.record(true);
                return replaced.map_or(Put::Inserted, Put::Replaced);
            }
            INSERT_SITE.record(false);
            at.abandon();
            backoff.spin();
        }
    }
}

impl<K: Ord, V: Clone> LockFreeBTree<K, V> {
    /// Inserts `key → value`; returns the previous value (a clone), like
    /// [`std::collections::BTreeMap::insert`]. For an existing key the
    /// entry is replaced by the one given: the map then holds the new key
    /// object (equal to the old one), and the old key is dropped with the
    /// old value. Only `V: Clone` is needed (to return the old value): keys
    /// are never cloned. [`try_insert`](Self::try_insert) leaves an
    /// existing entry as it is.
    ///
    /// ```
    /// let m = waitless::btree::LockFreeBTree::new();
    /// assert_eq!(m.insert(7, 'a'), None);
    /// assert_eq!(m.insert(7, 'b'), Some('a'));
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let guard = self.collector.pin();
        match self.put(&guard, key, value, true) {
            // SAFETY: `old` was in the version our entry replaced; its leaf
            // reference is released only after `guard` unpins.
            Put::Replaced(old) => Some(unsafe { (*old).with_val(V::clone) }),
            _ => None,
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
        let mut at = Attempt::new(&guard, &self.handles);
        let backoff = Backoff::new();
        loop {
            let (_, r) = self.root_ver_stamped(&guard);
            // SAFETY: as in `insert`.
            let hp = unsafe { handle_for(r.tree, key, None) };
            // SeqCst: see `current`.
            // SAFETY: as in `insert`.
            let cur = unsafe { &*hp }.cur.load(Ordering::SeqCst);
            if is_frozen(cur) {
                // SAFETY: as in `insert`.
                unsafe { self.complete_shape(&guard, hp, key) };
                continue;
            }
            // SAFETY: as in `insert`.
            let v = unsafe { leaf_at(cur) };
            stamp(&self.clock, &v.ts);
            // Absent: linearized like a lookup.
            let i = v.search(key).ok()?;
            let old = v.ents.entries()[i];
            at.drops.push((old, true));
            let nv = leaf_remove(v, cur, i, &mut at);
            // SAFETY: as in `insert`.
            if unsafe { self.publish_leaf(&guard, hp, cur, nv, &mut at) } {
                REMOVE_SITE.record(true);
                // SAFETY: `nv` is ours and published: retired only after a
                // successor is stamped, which is after our pin.
                if unsafe { leaf_at(nv) }.len() == 0 {
                    // SAFETY: `r.tree` is pinned; its nodes are inner.
                    let sole = match unsafe { &*r.tree } {
                        Node::Inner(n) => n.bottom && n.kids.len() == 1,
                        Node::Leaf(_) => unreachable!("the tree root is an inner node"),
                    };
                    // An emptied leaf is dropped from its parent (a shape
                    // change that keeps the contents: the leaf is empty),
                    // unless it is the map's only leaf. If it was the only
                    // one in `r`, it still is: any other shape change would
                    // have had to replace it first (and then our CAS
                    // failed).
                    // SAFETY: as above.
                    let h = unsafe { &*hp };
                    // SeqCst: see `publish_leaf`.
                    if !sole
                        && h.cur
                            .compare_exchange(nv, frozen(nv), Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    {
                        // SAFETY: `hp` was reached by routing `key`.
                        unsafe { self.complete_shape(&guard, hp, key) };
                    }
                }
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
    /// Tries to install leaf version `nv` (built by `at` from `cur`) in
    /// handle `hp`. On success stamps it — the update's linearization point
    /// is the defining increment of that stamp (ours or a helper's) — then
    /// retires `cur` and releases the entry references `nv` dropped
    /// (`at.drops`), and returns `true`. On failure (another update of this
    /// leaf won, or it was frozen) returns `false`; the caller abandons.
    ///
    /// # Safety
    /// `guard` is pinned in `self.collector`; `hp` was reached from a root
    /// version under it; `cur` is a version of `hp` loaded under it and
    /// stamped; `nv` is `at`'s private version replacing `cur`, and
    /// `at.drops` the references it no longer has.
    unsafe fn publish_leaf(
        &self,
        guard: &Guard<'_>,
        hp: HandlePtr<K, V>,
        cur: NodePtr<K, V>,
        nv: NodePtr<K, V>,
        at: &mut Attempt<K, V>,
    ) -> bool {
        // SeqCst: Release publishes `nv` and the entry it may hold (pairs
        // with the SeqCst loads of `cur` by readers, and through the
        // stamp's clock increment below with a scan's Acquire clock load:
        // see `node::stamp_slow`). Fails if frozen (the mark makes `cur`
        // differ).
        // SAFETY: the precondition: `hp` is alive.
        let won = unsafe { &*hp }
            .cur
            .compare_exchange(cur, nv, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !won {
            return false;
        }
        // First, before anything below can unwind: `nv` and our entry are
        // published now, so `at`'s drop must not free them.
        at.fresh.clear();
        at.unpublished = None;
        at.published = true;
        // SAFETY: `nv` is published by us; it is retired only after a
        // successor is stamped, which needs this stamp first.
        stamp(&self.clock, unsafe { &leaf_at(nv).ts });
        // SAFETY: `cur` is unlinked (its successor `nv` is stamped): a scan
        // that can still reach it through `nv.prev` loaded a clock value
        // older than that stamp's increment (ordered before this retire),
        // after pinning, so its pin holds `cur`; it is retired
        // once, by the writer whose CAS replaced it. A version owns nothing.
        unsafe { retire_node(guard, cur) };
        while let Some((e, is_leaf)) = at.drops.pop() {
            // SAFETY: `nv` dropped exactly these references of `cur`, each
            // counted and released once here, after `nv`'s stamp (scans
            // older than it may still read them through `cur`). The depot
            // is in the map's arena, which outlives the collector.
            unsafe { release(guard, e, is_leaf, &self.handles.depot) };
        }
        true
    }

    /// Completes the shape change of the frozen handle `hp`, which `q`
    /// routed to: replaces it in a new root version by the two halves of its
    /// last version (if not empty) or by nothing (if empty), or returns if
    /// that is done already. It changes no contents, so any thread can do
    /// it: exactly one root CAS replaces `hp`.
    ///
    /// # Safety
    /// `guard` is pinned in `self.collector`; `hp` was reached under it by
    /// routing `q` from a root version, and was then frozen.
    unsafe fn complete_shape<Q>(&self, guard: &Guard<'_>, hp: HandlePtr<K, V>, q: &Q)
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut at = Attempt::new(guard, &self.handles);
        let mut path: Path<K, V> = InlineVec::new();
        let backoff = Backoff::new();
        loop {
            path.clear();
            let (rp, r) = self.root_ver_stamped(guard);
            // SAFETY: `r.tree` heads a pinned version.
            if unsafe { handle_for(r.tree, q, Some(&mut path)) } != hp {
                // Done by someone (a handle never comes back; until it is
                // replaced, `q` keeps routing to it: no other shape change
                // narrows its key range).
                return;
            }
            // SeqCst: see `current`. Frozen: this is its last version.
            // SAFETY: `hp` is in the pinned current root version.
            let last = unmarked(unsafe { &*hp }.cur.load(Ordering::SeqCst));
            // SAFETY: the last version of a live handle.
            let lv = unsafe { leaf_at(last) };
            let up = if lv.len() == 0 {
                Up::Gone
            } else {
                split_version(lv, &mut at)
            };
            // SAFETY: `path` is the descent from `r.tree`; `up` holds `at`'s
            // handles.
            let tree = unsafe { build_tree(&path, up, &mut at) };
            let nr = Box::into_raw(Box::new(RootVer {
                ts: AtomicU64::new(PENDING),
                prev: rp,
                tree,
            }));
            // SeqCst: Release publishes the new nodes, handles and versions
            // (pairs with the SeqCst root loads, and through the stamp's
            // clock increment below with a scan's Acquire clock load: see
            // `node::stamp_slow`).
            if self
                .root
                .compare_exchange(rp, nr, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                SHAPE_SITE.record(true);
                at.fresh.clear();
                at.handles.clear();
                at.spec = None;
                at.published = true;
                // SAFETY: published by us; retired only after a successor
                // is stamped.
                stamp(&self.clock, unsafe { &(*nr).ts });
                // SAFETY: `r`'s path, `hp` and its last version are
                // unlinked by our CAS (`nr` reaches none of them: the path
                // was copied), and `nr` is stamped: a scan that can still
                // reach them (through `nr.prev`) loaded a clock value
                // older than that stamp's increment, after pinning, so its
                // pin holds them.
                // Each is retired once, by the CAS winner. Blocks first:
                // retiring a block runs no user code.
                unsafe {
                    for &(p, _) in path.as_slice() {
                        retire_node(guard, p);
                    }
                    retire_node(guard, last);
                    self.handles.retire(guard, hp);
                    guard.defer_destroy(rp);
                }
                while let Some((e, is_leaf)) = at.drops.pop() {
                    // SAFETY: as in `publish_leaf`: the separators `nr`
                    // dropped, released once, after its stamp.
                    unsafe { release(guard, e, is_leaf, &self.handles.depot) };
                }
                return;
            }
            SHAPE_SITE.record(false);
            // SAFETY: never published: ours alone.
            drop(unsafe { Box::from_raw(nr) });
            at.abandon();
            backoff.spin();
        }
    }
}

/// The handle whose key range contains `q`, descending from `tree`;
/// pushes every inner node and the child taken onto `path` if given.
///
/// # Safety
/// `tree` heads a root version that a pinned guard keeps alive for as long
/// as the result is used.
#[inline]
unsafe fn handle_for<K, V, Q>(
    tree: NodePtr<K, V>,
    q: &Q,
    mut path: Option<&mut Path<K, V>>,
) -> HandlePtr<K, V>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    let mut p = tree;
    loop {
        // SAFETY: the precondition: `p` is in the pinned version.
        let Node::Inner(n) = (unsafe { &*p }) else {
            unreachable!("a tree holds inner nodes above its handles")
        };
        let i = n.route(q);
        if let Some(path) = path.as_deref_mut() {
            path.push((p, i));
        }
        if n.bottom {
            return n.handle(i);
        }
        p = n.kid(i);
        prefetch_images(p);
    }
}

/// Builds the new inner nodes above a changed handle (`up`), copying
/// `path` bottom-up, and returns the new tree's root node.
///
/// # Safety
/// `path` is a descent of a pinned version; `up` holds nodes or handles
/// built by `at` (not published).
unsafe fn build_tree<K, V>(
    path: &Path<K, V>,
    up: Up<K, V>,
    at: &mut Attempt<'_, K, V>,
) -> NodePtr<K, V> {
    let mut up = up;
    for &(p, idx) in path.as_slice().iter().rev() {
        // SAFETY: `p` is an inner node of the pinned version.
        let Node::Inner(n) = (unsafe { &*p }) else {
            unreachable!("the path holds inner nodes")
        };
        // SAFETY: `n`'s children are in the pinned version; `up` is ours.
        up = unsafe { rebuild_inner(n, idx, up, at) };
    }
    match up {
        Up::One(p) => {
            // SAFETY: `p` is ours, fully built, an inner node.
            match unsafe { &*p } {
                // A root with one inner child (and no separator) is
                // replaced by the child; the shell we built for it (the
                // last node built) is freed. (A bottom root keeps its one
                // handle.)
                Node::Inner(n) if !n.bottom && n.kids.len() == 1 => {
                    let kid = n.kid(0);
                    debug_assert_eq!(at.fresh.as_slice().last(), Some(&p));
                    at.fresh.pop();
                    // SAFETY: `p` is ours (from `at.rec`) and unpublished;
                    // an inner node owns neither its child nor its entries.
                    unsafe { free_unpublished(at.rec, p) };
                    kid
                }
                _ => p,
            }
        }
        Up::Two(l, sep, r) => {
            let mut n = Inner::new(false);
            n.keys.push(sep);
            n.kids.push(l);
            n.kids.push(r);
            at.alloc(Node::Inner(n))
        }
        Up::Gone => {
            // The last leaf went: a bottom root with one empty leaf.
            let v = at.alloc(Node::Leaf(Leaf::first()));
            let h = at.handle(v);
            let mut n = Inner::new(true);
            n.kids.push(h.cast());
            at.alloc(Node::Inner(n))
        }
    }
}

/// The two halves of the frozen, full version `lv`, each in a new handle
/// whose first version is stamped 1; the first entry of the right half
/// becomes the separator (its count raised, `at.spec`).
fn split_version<K, V>(lv: &Leaf<K, V>, at: &mut Attempt<'_, K, V>) -> Up<K, V> {
    let ents = &lv.ents;
    debug_assert!(ents.len() >= 2, "only full versions are split");
    let mid = ents.len().div_ceil(2);
    let sep = ents.get(mid);
    // Relaxed, as for `Arc::clone`: `sep` is alive and counted (it is in
    // the pinned version), so the count is at least 1 and cannot reach 0
    // while we hold this increment.
    // SAFETY: `sep` is alive (see above).
    unsafe { (*sep.e).refs.fetch_add(1, Ordering::Relaxed) };
    at.spec = Some(sep.e);
    let mut half = |r: core::ops::Range<usize>| {
        let v = at.alloc(Node::Leaf(Leaf::first()));
        // SAFETY: `v` was just built by this attempt; nobody else sees it.
        unsafe { as_leaf(v) }.ents.extend_from(ents, r);
        at.handle(v).cast::<Node<K, V>>()
    };
    let l = half(0..mid);
    let r = half(mid..ents.len());
    Up::Two(l, sep, r)
}
impl<K, V> Default for LockFreeBTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Drop for LockFreeBTree<K, V> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can reach the map. Free the current
        // root version, its nodes, handles and current leaf versions, and
        // release their entry references; retired ones and the releases
        // still deferred run when `collector` drops after us, and the last
        // release of each entry frees it.
        let rv = self.root.load(Ordering::Relaxed);
        // SAFETY: the current root version was never retired; nobody else
        // reaches it. Its tree is queued before it is freed.
        let rv = unsafe { Box::from_raw(rv) };
        let mut walk = Teardown {
            work: vec![Work::Node(rv.tree)],
            depot: &self.handles.depot,
        };
        drop(rv);
        walk.run();
    }
}

/// One step of tearing down the current version.
enum Work<K, V> {
    /// Free this inner node after queueing its children and separators.
    Node(NodePtr<K, V>),
    /// Free this handle's current leaf version after queueing the version's
    /// entry references (the handle's memory goes with the arena).
    Handle(HandlePtr<K, V>),
    /// Release this entry reference (`true`: the leaf reference).
    Release(EntryPtr<K, V>, bool),
}

/// The work list of `Drop for LockFreeBTree`. If a key's or value's
/// destructor panics, unwinding drops the `Teardown`, which runs the rest
/// of the list (a second panic then aborts, as in std's collections)
/// instead of leaking the rest of the map.
struct Teardown<'a, K, V> {
    work: Vec<Work<K, V>>,
    /// The map's depot, where freed entry blocks may go.
    depot: &'a Depot,
}

impl<K, V> Teardown<'_, K, V> {
    fn run(&mut self) {
        // Entry releases are queued after a node's children, so they run
        // first: the list holds at most about `2 * B` items per level.
        while let Some(w) = self.work.pop() {
            match w {
                Work::Node(p) => {
                    // SAFETY: every inner node of the current version is
                    // reachable once from its root (a tree) and owned by
                    // it; retired nodes are not reachable from it. Freed
                    // below, after this use.
                    let Node::Inner(n) = (unsafe { &*p }) else {
                        unreachable!("a tree holds inner nodes above its handles")
                    };
                    let bottom = n.bottom;
                    self.work.extend(n.kids.as_slice().iter().map(|&c| {
                        if bottom {
                            Work::Handle(c.cast())
                        } else {
                            Work::Node(c)
                        }
                    }));
                    self.work
                        .extend(n.keys.entries().iter().map(|&e| Work::Release(e, false)));
                    // SAFETY: as above: `p` is reached once, and no
                    // reference to it is used after this (its pointers were
                    // copied into the list).
                    unsafe { free_node_now(p) };
                }
                Work::Handle(h) => {
                    // SAFETY: each handle of the current version is reached
                    // once (from its bottom node) and owned by it; its
                    // current version (frozen or not) likewise. Older
                    // versions were retired by the writers that replaced
                    // them. The handle's memory is the arena's, freed when
                    // the map's fields drop.
                    let v = unmarked(unsafe { &*h }.cur.load(Ordering::Relaxed));
                    // SAFETY: as above.
                    let l = unsafe { leaf_at(v) };
                    self.work
                        .extend(l.ents.entries().iter().map(|&e| Work::Release(e, true)));
                    // SAFETY: as above; its pointers were copied.
                    unsafe { free_node_now(v) };
                }
                // SAFETY: a reference of the current version (a separator
                // of an inner node, or a leaf slot), counted, queued once
                // with the node it belongs to and released once (popped
                // first); no other thread exists.
                Work::Release(e, is_leaf) => unsafe { release_now(e, is_leaf, self.depot) },
            }
        }
    }
}

impl<K, V> Drop for Teardown<'_, K, V> {
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
    /// The map's handle arena.
    arena: &'g HandleArena<K, V>,
    /// Set at the successful CAS: from then on the attempt's references in
    /// `drops` must be released even if the caller unwinds.
    published: bool,
    /// Nodes and leaf versions built by this attempt (not published): at
    /// most two per level, a new root, and two leaf versions.
    fresh: InlineVec<NodePtr<K, V>, { 2 * MAX_HEIGHT + 4 }>,
    /// Handles built by this attempt (a split's two, or an empty map's).
    handles: InlineVec<HandlePtr<K, V>, 2>,
    /// Handles of failed tries, never published, for the next try: they
    /// cannot go straight back to the arena's free list (a pop that read
    /// one at the head before ours took it may still be comparing it), and
    /// retiring them through the collector on every failed try would grow
    /// the arena while a guard holds the epoch back. Retired when the
    /// attempt is dropped.
    spare: InlineVec<HandlePtr<K, V>, 2>,
    /// An entry whose count this attempt raised for a new separator (a leaf
    /// split); undone if the attempt fails.
    spec: Option<EntryPtr<K, V>>,
    /// Entry references (entry, is the leaf reference) that the new version
    /// no longer has; released if the attempt succeeds.
    drops: InlineVec<(EntryPtr<K, V>, bool), { MAX_HEIGHT + 2 }>,
    /// The entry an `insert` brought, while no CAS has published it; freed
    /// if the attempt is dropped (unwinding) before that. `publish_leaf`
    /// clears it at its successful CAS, before it can unwind.
    unpublished: Option<EntryPtr<K, V>>,
}

impl<'g, K, V> Attempt<'g, K, V> {
    fn new(guard: &'g Guard<'g>, arena: &'g HandleArena<K, V>) -> Self {
        Attempt {
            guard,
            rec: guard.participant(),
            arena,
            published: false,
            fresh: InlineVec::new(),
            handles: InlineVec::new(),
            spare: InlineVec::new(),
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

    /// A new handle whose version is `v` (one of this attempt's), recorded
    /// as this attempt's.
    fn handle(&mut self, v: NodePtr<K, V>) -> HandlePtr<K, V> {
        let h = match self.spare.pop() {
            Some(h) => {
                // SAFETY: one of our failed tries' handles: never published,
                // ours alone (published, if at all, by a Release CAS).
                unsafe { &*h }.cur.store(v, Ordering::Relaxed);
                h
            }
            // SAFETY: the attempt's guard is pinned in the map's collector.
            None => unsafe { self.arena.alloc(v) },
        };
        self.handles.push(h);
        h
    }

    /// Undoes a failed attempt: frees its nodes, versions and handles (not
    /// the entries they point to, which belong to published versions or to
    /// the caller) and its speculative count.
    fn abandon(&mut self) {
        while let Some(p) = self.fresh.pop() {
            // SAFETY: nodes in `fresh` were built by this attempt (from
            // `rec`) and its CAS failed, so no other thread has seen them; a
            // node owns neither its children nor its entries.
            unsafe { free_unpublished(self.rec, p) };
        }
        while let Some(h) = self.handles.pop() {
            // Built by this attempt and never published (its version was in
            // `fresh`): kept for the next try (see `spare`).
            if self.spare.len() < 2 {
                self.spare.push(h);
            } else {
                // SAFETY: never published; the guard is pinned in the map's
                // collector, which drops before the arena.
                unsafe { self.arena.retire(self.guard, h) };
            }
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
    /// release panicked) still releases the references its version
    /// dropped, so they do not leak. Either way the handles of failed tries
    /// are retired.
    fn drop(&mut self) {
        if self.published {
            while let Some((e, is_leaf)) = self.drops.pop() {
                // SAFETY: as in `publish_leaf`: our CAS unlinked exactly
                // these references, each counted and released once (popped
                // first); `guard` is still pinned (the attempt borrows it),
                // and the new version was stamped right after the CAS.
                unsafe { release(self.guard, e, is_leaf, &self.arena.depot) };
            }
        } else {
            // First: the speculative count may be on our own entry.
            self.abandon();
            if let Some(e) = self.unpublished.take() {
                // SAFETY: `e` came from `Entry::alloc` in `insert` and no
                // CAS published it (`publish_leaf` clears `unpublished` at
                // its successful CAS, before anything that can unwind), so
                // no other thread has seen it; the speculative count
                // `abandon` just took back was the only other use of it.
                drop(unsafe { Entry::unalloc(e, &self.arena.depot) });
            }
        }
        while let Some(h) = self.spare.pop() {
            // SAFETY: a failed try's handle, never published; back to the
            // free list a grace period from now (see `spare`). The guard is
            // pinned in the map's collector, which drops before the arena.
            unsafe { self.arena.retire(self.guard, h) };
        }
    }
}

/// A new version replacing `leaf` (at `cur`) with entry `i` replaced by
/// `e`.
fn leaf_replace<K, V>(
    leaf: &Leaf<K, V>,
    cur: NodePtr<K, V>,
    i: usize,
    e: EntryPtr<K, V>,
    at: &mut Attempt<'_, K, V>,
) -> NodePtr<K, V> {
    let p = at.alloc(Node::Leaf(Leaf::new(cur)));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let n = unsafe { as_leaf(p) };
    let ents = &leaf.ents;
    n.ents.extend_from(ents, 0..i);
    // SAFETY: `e` is the caller's entry, alive.
    n.ents.push(unsafe { Slot::of(e) });
    n.ents.extend_from(ents, i + 1..ents.len());
    p
}

/// A new version replacing `leaf` (at `cur`, not full) with entry `e`
/// inserted at slot `i`.
fn leaf_insert<K, V>(
    leaf: &Leaf<K, V>,
    cur: NodePtr<K, V>,
    i: usize,
    e: EntryPtr<K, V>,
    at: &mut Attempt<'_, K, V>,
) -> NodePtr<K, V> {
    let ents = &leaf.ents;
    let p = at.alloc(Node::Leaf(Leaf::new(cur)));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let n = unsafe { as_leaf(p) };
    n.ents.extend_from(ents, 0..i);
    // SAFETY: `e` is the caller's entry, alive.
    n.ents.push(unsafe { Slot::of(e) });
    n.ents.extend_from(ents, i..ents.len());
    p
}

/// A new version replacing `leaf` (at `cur`) without slot `i` (possibly
/// empty).
fn leaf_remove<K, V>(
    leaf: &Leaf<K, V>,
    cur: NodePtr<K, V>,
    i: usize,
    at: &mut Attempt<'_, K, V>,
) -> NodePtr<K, V> {
    let ents = &leaf.ents;
    let p = at.alloc(Node::Leaf(Leaf::new(cur)));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let n = unsafe { as_leaf(p) };
    n.ents.extend_from(ents, 0..i);
    n.ents.extend_from(ents, i + 1..ents.len());
    p
}

/// A copy of inner node `n` whose child `idx` became `up`; split in two if
/// it overflows, `Gone` if it empties (a dropped separator goes to
/// `at.drops`).
///
/// # Safety
/// `n`'s children are alive (a pinned version); `up` holds fully built
/// nodes (or handles, below a bottom node).
unsafe fn rebuild_inner<K, V>(
    n: &Inner<K, V>,
    idx: usize,
    up: Up<K, V>,
    at: &mut Attempt<'_, K, V>,
) -> Up<K, V> {
    let (keys, kids) = (&n.keys, n.kids.as_slice());
    if matches!(up, Up::Gone) && kids.len() == 1 {
        return Up::Gone;
    }
    let p = at.alloc(Node::Inner(Inner::new(n.bottom)));
    // SAFETY: `p` was just built by this attempt; nobody else sees it.
    let m = unsafe { as_inner(p) };
    match up {
        Up::One(c) => {
            m.keys.extend_from(keys, 0..keys.len());
            m.kids.extend_cloned(&kids[..idx]);
            m.kids.push(c);
            m.kids.extend_cloned(&kids[idx + 1..]);
        }
        Up::Gone => {
            // Child `idx` goes with the separator on its left (or, for the
            // first child, the one on its right).
            let s = idx.saturating_sub(1);
            at.drops.push((keys.entries()[s], false));
            m.keys.extend_from(keys, 0..s);
            m.keys.extend_from(keys, s + 1..keys.len());
            m.kids.extend_cloned(&kids[..idx]);
            m.kids.extend_cloned(&kids[idx + 1..]);
        }
        Up::Two(l, sep, r) if kids.len() < B => {
            m.keys.extend_from(keys, 0..idx);
            m.keys.push(sep);
            m.keys.extend_from(keys, idx..keys.len());
            m.kids.extend_cloned(&kids[..idx]);
            m.kids.push(l);
            m.kids.push(r);
            m.kids.extend_cloned(&kids[idx + 1..]);
        }
        Up::Two(l, sep, r) => {
            // B + 1 children: the left keeps `mid`, separator `mid - 1`
            // moves up (its count is unchanged: still one separator).
            let mut all_keys: InlineVec<Slot<K, V>, B> = InlineVec::new();
            keys.iter().take(idx).for_each(|s| all_keys.push(s));
            all_keys.push(sep);
            keys.iter().skip(idx).for_each(|s| all_keys.push(s));
            let mut all_kids: InlineVec<NodePtr<K, V>, { B + 1 }> = InlineVec::new();
            all_kids.extend_cloned(&kids[..idx]);
            all_kids.push(l);
            all_kids.push(r);
            all_kids.extend_cloned(&kids[idx + 1..]);
            let (all_keys, all_kids) = (all_keys.as_slice(), all_kids.as_slice());
            let mid = all_kids.len() / 2;
            let rp = at.alloc(Node::Inner(Inner::new(n.bottom)));
            // SAFETY: `rp` was just built by this attempt; nobody else sees
            // it, and it is not `p`.
            let right = unsafe { as_inner(rp) };
            m.keys.extend_slots(&all_keys[..mid - 1]);
            let up_sep = all_keys[mid - 1];
            right.keys.extend_slots(&all_keys[mid..]);
            m.kids.extend_cloned(&all_kids[..mid]);
            right.kids.extend_cloned(&all_kids[mid..]);
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
