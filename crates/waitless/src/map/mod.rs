//! A lock-free hash map with lock-free growth: split-ordered lists
//! (Shalev & Shavit, "Split-Ordered Lists: Lock-Free Extensible Hash
//! Tables", J. ACM 2006) over a Harris–Michael list, reclaimed with this
//! crate's [hazard pointers](crate::hazard).
//!
//! # Design
//! All elements live in one sorted lock-free linked list, ordered by the
//! bit-reversed hash. A bucket is a pointer to a *dummy* node in that list;
//! the bucket directory is a set of segments that are allocated once and
//! never move. Growing the table is a single CAS that doubles the bucket
//! count; each new bucket's dummy is spliced into the list the first time an
//! operation needs it (its parent bucket's dummy first). No element is ever
//! moved or copied, so growth never blocks readers or writers, has no
//! "migration in progress" state that others must help finish, and there is
//! no old table to reclaim. See `docs/hash-map.md` for why this design was
//! chosen over an incremental open-addressing migration.
//!
//! Layout: the dummies live inline in the directory segments (16 bytes
//! each), and an element's first value lives inline in its node, so a
//! lookup of a present key touches the directory line and the element's
//! node. A node's value pointer points at that inline value, or at a boxed
//! replacement: replacing a value is one CAS on the pointer, and removing
//! is one CAS of it to null (the linearization point), after which the node
//! is marked and unlinked.
//!
//! # Progress
//! Every operation is lock-free: a retry happens only when a CAS failed
//! because another thread changed the same word (made progress). Growth is
//! part of insert and costs one CAS; bucket initialization is a list insert.
//! The table never shrinks (removing elements frees nodes, not buckets).
//!
//! # Consistency
//! `get`, `insert`, `remove`, `update`, `get_or_insert_with` and
//! `contains_key` are linearizable (checked with `waitless-check`'s map
//! model). `len` sums per-thread-stripe counters and is exact only when no
//! operation runs concurrently. Iteration is *weakly consistent*: see
//! [`Iter`].
//!
//! # Values are cloned out
//! Readers may be reading a value while another thread replaces or removes
//! it, so `insert`, `remove` and `get` return clones; the original is freed
//! once no hazard pointer protects it. Use [`LockFreeHashMap::get_with`] or
//! a pinned view ([`LockFreeHashMap::pin`]) to read without cloning.
//!
//! # Example
//! ```
//! use waitless::map::LockFreeHashMap;
//!
//! let map = LockFreeHashMap::new();
//! assert_eq!(map.insert("a", 1), None);
//! assert_eq!(map.insert("a", 2), Some(1));
//! assert_eq!(map.get("a"), Some(2));
//! assert_eq!(map.get_with("a", |v| v * 10), Some(20));
//! assert_eq!(map.update("a", |v| v + 1), Some(2));
//! assert_eq!(map.remove("a"), Some(3));
//! assert!(map.is_empty());
//! ```

mod ext;
mod raw;
/// Not wired: the open-addressing prototype, compiled for its tests only.
#[cfg(test)]
mod table;
pub use ext::{Keys, Values};

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use std::collections::hash_map::RandomState;

use crate::hazard::FenceStrategy;
use raw::{Pending, RawMap, Search};

/// Where an insert's key and value are between its attempts.
enum Held<K, V> {
    /// Not placed anywhere yet (the value unboxed).
    Loose(K, V),
    /// A replace attempt failed: its box is kept for the next attempt.
    Boxed(K, Box<V>),
    /// A node built for a vacant place whose link CAS failed; `Some` when
    /// its value was moved out for a replace attempt that failed too.
    Node(Pending<K, V>, Option<Box<V>>),
}

impl<K, V> Held<K, V> {
    fn key(&self) -> &K {
        match self {
            Held::Loose(k, _) | Held::Boxed(k, _) => k,
            Held::Node(n, _) => n.key(),
        }
    }
}

/// A concurrent hash map; see the [module docs](self).
///
/// `S` is the hasher builder; the default, std's [`RandomState`], is seeded
/// randomly per map (HashDoS resistant).
///
/// ```
/// use std::sync::Arc;
/// use waitless::map::LockFreeHashMap;
///
/// let map = Arc::new(LockFreeHashMap::new());
/// let handles: Vec<_> = (0..4)
///     .map(|t| {
///         let map = Arc::clone(&map);
///         std::thread::spawn(move || {
///             for i in 0..100 {
///                 map.insert(t * 100 + i, i);
///             }
///         })
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(map.len(), 400);
/// ```
pub struct LockFreeHashMap<K, V, S = RandomState> {
    raw: RawMap<K, V>,
    hasher: S,
    /// Opts out of the auto traits; see the `Send`/`Sync` impls below.
    _marker: PhantomData<*const (K, V)>,
}

// SAFETY: the map owns its keys and values (in nodes and boxes reached
// through raw pointers), so sending the map sends them: `K: Send, V: Send`.
// `S` is owned too. The hazard domain holds only pointers to this map's
// nodes and values, whose deleters are then run on the receiving thread.
unsafe impl<K: Send, V: Send, S: Send> Send for LockFreeHashMap<K, V, S> {}

// SAFETY: through `&LockFreeHashMap` a thread can insert a key and value
// that another thread later drops (remove + reclamation run on any thread),
// so `K` and `V` must be `Send`; several threads read the same key and value
// at once (`get` clones from `&V`, lookups compare `&K`), so they must be
// `Sync`. The hasher is used through `&S` from every thread: `S: Sync`.
// Everything else is atomics and the hazard domain, which is `Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Sync for LockFreeHashMap<K, V, S> {}

impl<K: Hash + Eq + Clone, V: Clone> LockFreeHashMap<K, V> {
    /// An empty map with a randomly seeded hasher.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<String, u32> = LockFreeHashMap::new();
    /// assert!(map.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity_and_hasher(1, RandomState::new())
    }

    /// An empty map with buckets for about `n` elements before it first grows.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_capacity(10_000);
    /// assert!(map.buckets() >= 1);
    /// ```
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self::with_capacity_and_hasher(n, RandomState::new())
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for LockFreeHashMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

// `Debug` (showing the entries) is in `ext.rs`.

impl<K, V, S: BuildHasher> LockFreeHashMap<K, V, S> {
    /// An empty map using `hasher`.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::with_hasher(RandomState::new());
    /// map.insert(1, 2);
    /// assert_eq!(map.get(&1), Some(2));
    /// ```
    #[must_use]
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(1, hasher)
    }

    /// An empty map with buckets for about `n` elements, using `hasher`.
    ///
    /// The hint is capped at 2^20 buckets; past that the table grows on
    /// demand, so `with_capacity(usize::MAX)` is a usable (if pointless)
    /// request rather than an allocation failure on the first insert.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::with_capacity_and_hasher(64, RandomState::new());
    /// map.insert("k", "v");
    /// assert_eq!(map.len(), 1);
    /// ```
    #[must_use]
    pub fn with_capacity_and_hasher(n: usize, hasher: S) -> Self {
        LockFreeHashMap {
            raw: RawMap::with_buckets(n / raw::LOAD_FACTOR),
            hasher,
            _marker: PhantomData,
        }
    }

    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.hasher.hash_one(q)
    }

    /// Number of elements. Exact when no operation runs concurrently;
    /// otherwise a value the map had recently (summed from striped counters).
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// assert!(map.is_empty());
    /// map.insert(1, ());
    /// map.insert(1, ());
    /// assert_eq!(map.len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// `len() == 0`.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// assert!(map.is_empty());
    /// map.insert(1, ());
    /// map.insert(1, ());
    /// assert_eq!(map.len(), 1);
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current number of buckets (a power of two that only grows).
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// let before = map.buckets();
    /// for i in 0..10_000u32 {
    ///     map.insert(i, i);
    /// }
    /// assert!(map.buckets() > before); // it grew (and never shrinks)
    /// ```
    #[must_use]
    pub fn buckets(&self) -> usize {
        self.raw.size()
    }

    /// The fence strategy the map's hazard-pointer domain uses.
    ///
    /// ```
    /// use waitless::hazard::FenceStrategy;
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u8, u8> = LockFreeHashMap::new();
    /// let s = map.fence_strategy();
    /// assert!(s == FenceStrategy::Asymmetric || s == FenceStrategy::Symmetric);
    /// ```
    #[must_use]
    pub fn fence_strategy(&self) -> FenceStrategy {
        self.raw.domain.strategy()
    }

    /// Calls `f` on the value of `key` while it is protected, without
    /// cloning it. `f` must not block for long: the value (only that one)
    /// cannot be freed while `f` runs.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert("doc", vec![0u8; 4096]);
    /// assert_eq!(map.get_with("doc", |v| v.len()), Some(4096)); // no 4 KiB clone
    /// ```
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hash(key);
        let mut g = self.raw.guard();
        self.raw.lookup(&mut g, h, |k| k.borrow() == key).map(f)
    }

    /// A pinned read view: takes the hazard pointers once, then borrows
    /// values without cloning and without per-call setup; see [`Pinned`].
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(1, String::from("one"));
    /// let mut view = map.pin();
    /// assert_eq!(view.get(&1).map(String::len), Some(3));
    /// assert!(view.get(&2).is_none());
    /// ```
    pub fn pin(&self) -> Pinned<'_, K, V, S> {
        Pinned {
            map: self,
            guard: self.raw.guard(),
        }
    }

    /// A clone of the value of `key`.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(String::from("a"), 1);
    /// assert_eq!(map.get("a"), Some(1));
    /// assert_eq!(map.get("b"), None);
    /// ```
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.get_with(key, V::clone)
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(String::from("a"), 1);
    /// assert!(map.contains_key("a")); // `&str` through `Borrow<str>`
    /// assert!(!map.contains_key("b"));
    /// ```
    #[must_use]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_with(key, |_| ()).is_some()
    }

    /// Inserts or replaces; returns a clone of the replaced value.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// assert_eq!(map.insert(1, "a"), None);
    /// assert_eq!(map.insert(1, "b"), Some("a")); // replaced, like std
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V>
    where
        K: Hash + Eq,
        V: Clone,
    {
        let h = self.hash(&key);
        // The key and value stay loose until a search finds the key absent,
        // so replacing a present key (most inserts of an insert-heavy load)
        // costs one allocation, the boxed new value, instead of a node that
        // is built, emptied and freed again.
        let mut held = Held::Loose(key, value);
        let mut g = self.raw.guard();
        // One replace attempt: `Ok(clone of the old value)` or the box back.
        let replace = |e: raw::Protected<'_, '_, K, V>, new: Box<V>| match e.replace(new) {
            Ok(old) => Ok(old.clone()),
            Err((new, _)) => Err(new),
        };
        loop {
            let search = self.raw.search(&mut g, h, |x| x == held.key());
            let done = match (search, held) {
                (Search::Occupied(e), Held::Loose(k, v)) => {
                    replace(e, Box::new(v)).map_err(|b| Held::Boxed(k, b))
                }
                (Search::Occupied(e), Held::Boxed(k, b)) => {
                    replace(e, b).map_err(|b| Held::Boxed(k, b))
                }
                (Search::Occupied(e), Held::Node(n, b)) => {
                    let b = b.unwrap_or_else(|| n.take_value());
                    replace(e, b).map_err(|b| Held::Node(n, Some(b)))
                }
                (Search::Vacant(place), held) => {
                    let node = match held {
                        Held::Loose(k, v) => Pending::new(h, k, v),
                        Held::Boxed(k, b) => Pending::new(h, k, *b),
                        Held::Node(n, b) => {
                            if let Some(b) = b {
                                n.put_value(*b);
                            }
                            n
                        }
                    };
                    match place.insert(node) {
                        Ok(()) => return None,
                        Err(back) => Err(Held::Node(back, None)),
                    }
                }
            };
            match done {
                Ok(ret) => {
                    // The guard's drop may scan and run (and panic in) other
                    // values' destructors: `ret` is a local then, dropped by
                    // the unwind instead of leaked as a half-returned value.
                    drop(g);
                    return Some(ret);
                }
                Err(again) => held = again,
            }
        }
    }

    /// Returns a clone of the value of `key`, inserting `make()` first if
    /// the key is absent. `make` runs at most once, and only when this call
    /// finds the key absent; if another thread inserts the key first, the
    /// made value is dropped and theirs is returned.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let cache = LockFreeHashMap::new();
    /// let v = cache.get_or_insert_with("pi", || 3.14);
    /// assert_eq!(v, 3.14);
    /// let again = cache.get_or_insert_with("pi", || unreachable!("present: not called"));
    /// assert_eq!(again, 3.14);
    /// ```
    pub fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V
    where
        K: Hash + Eq,
        V: Clone,
    {
        let h = self.hash(&key);
        let mut g = self.raw.guard();
        if let Search::Occupied(e) = self.raw.search(&mut g, h, |x| x == &key) {
            return e.value().clone();
        }
        let v = make();
        // Clone before linking: once linked, another thread may remove and
        // free the value.
        let ret = v.clone();
        let mut node = Pending::new(h, key, v);
        loop {
            match self.raw.search(&mut g, h, |x| x == node.key()) {
                Search::Occupied(e) => return e.value().clone(),
                Search::Vacant(place) => match place.insert(node) {
                    Ok(()) => return ret,
                    Err(back) => node = back,
                },
            }
        }
    }

    /// Atomically replaces the value of `key` with `f(&current)` and returns
    /// a clone of the value it replaced (`None`, and `f` not called, if the
    /// key is absent).
    ///
    /// # Retries
    /// If another thread changes the value between the read and the CAS,
    /// `f` is called again on the newer value, and the result of the losing
    /// attempt is dropped. `f` gets the current value by reference, so it
    /// never needs to clone what it captured to be called again; it should
    /// have no side effects beyond computing the new value.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let hits = LockFreeHashMap::new();
    /// hits.insert("/", 0u64);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| hits.update("/", |n| n + 1));
    ///     }
    /// });
    /// assert_eq!(hits.get("/"), Some(4)); // no increment is lost
    /// assert_eq!(hits.update("/missing", |n| n + 1), None);
    /// ```
    pub fn update<Q>(&self, key: &Q, mut f: impl FnMut(&V) -> V) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let h = self.hash(key);
        let mut g = self.raw.guard();
        let mut spare: Option<Box<V>> = None;
        'search: loop {
            let Search::Occupied(mut e) = self.raw.search(&mut g, h, |k| k.borrow() == key) else {
                return None;
            };
            loop {
                let new = f(e.value());
                let boxed = match spare.take() {
                    Some(mut b) => {
                        *b = new;
                        b
                    }
                    None => Box::new(new),
                };
                match e.replace(boxed) {
                    Ok(old) => {
                        let ret = old.clone();
                        // As in `insert`: scan before returning.
                        drop(g);
                        return Some(ret);
                    }
                    Err((b, rest)) => {
                        spare = Some(b);
                        match rest {
                            Some(again) => e = again,
                            // Removed meanwhile: search again (a newer node
                            // may exist).
                            None => continue 'search,
                        }
                    }
                }
            }
        }
    }

    /// Removes `key`; returns a clone of its value.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(1, "one");
    /// assert_eq!(map.remove(&1), Some("one"));
    /// assert_eq!(map.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let h = self.hash(key);
        let mut g = self.raw.guard();
        'search: loop {
            let Search::Occupied(mut e) = self.raw.search(&mut g, h, |k| k.borrow() == key) else {
                return None;
            };
            loop {
                match e.remove() {
                    Ok(old) => {
                        let ret = old.clone();
                        // As in `insert`: scan before returning.
                        drop(g);
                        return Some(ret);
                    }
                    Err(Some(again)) => e = again,
                    Err(None) => continue 'search,
                }
            }
        }
    }

    /// A weakly consistent iterator over clones of the entries; see [`Iter`].
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(1, 10);
    /// map.insert(2, 20);
    /// let total: i32 = map.iter().map(|(_, v)| v).sum();
    /// assert_eq!(total, 30);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S>
    where
        K: Clone + Eq,
        V: Clone,
    {
        Iter {
            map: self,
            next_so: 0,
            seen: Vec::new(),
            done: false,
        }
    }
}

// Dropping the map drops `raw`, which frees the list; then its hazard
// domain frees everything retired (no `Drop` impl needed).

/// A pinned read view of a [`LockFreeHashMap`], from
/// [`LockFreeHashMap::pin`].
///
/// The view holds this thread's hazard pointers for the map, so each
/// [`get`](Self::get) skips the per-call setup and returns a reference into
/// the map instead of a clone. The reference stays valid (its value cannot
/// be freed, even if another thread replaces or removes it meanwhile) until
/// the next call on the view: `get` takes `&mut self`, so the borrow checker
/// allows one borrowed value at a time. Each `get` is linearizable on its
/// own; the view is not a snapshot. Hold a view briefly: the one value it
/// protects cannot be freed while it does. Not `Send`: the hazard pointers
/// belong to the thread that pinned.
///
/// ```
/// use waitless::map::LockFreeHashMap;
///
/// let map = LockFreeHashMap::new();
/// map.insert("k", vec![1, 2, 3]);
/// let mut view = map.pin();
/// let v = view.get("k").expect("present");
/// map.insert("k", vec![4]); // replaced meanwhile: `v` stays readable
/// assert_eq!(v, &[1, 2, 3]);
/// assert_eq!(view.get("k").map(Vec::len), Some(1)); // the next call sees the new value
/// ```
#[must_use]
pub struct Pinned<'m, K, V, S> {
    map: &'m LockFreeHashMap<K, V, S>,
    guard: raw::Guard<'m>,
}

impl<K, V, S> fmt::Debug for Pinned<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned").finish_non_exhaustive()
    }
}

impl<K, V, S: BuildHasher> Pinned<'_, K, V, S> {
    /// The value of `key`, borrowed until the next call on this view.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(String::from("a"), 1);
    /// let mut view = map.pin();
    /// assert_eq!(view.get("a"), Some(&1)); // `&str` through `Borrow<str>`
    /// assert_eq!(view.get("b"), None);
    /// ```
    #[must_use]
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.map.hash(key);
        self.map
            .raw
            .lookup(&mut self.guard, h, |k| k.borrow() == key)
    }

    /// Whether `key` is present.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(7u32, "seven");
    /// let mut view = map.pin();
    /// assert!(view.contains_key(&7));
    /// assert!(!view.contains_key(&8));
    /// ```
    #[must_use]
    pub fn contains_key<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }
}

/// A weakly consistent iterator over `(key, value)` clones, in split order
/// (bit-reversed hash order, which is unrelated to insertion order).
///
/// Guarantees, for iteration that runs concurrently with updates:
/// - every key present for the whole iteration is yielded exactly once, with
///   a value it held at some moment during the iteration;
/// - a key inserted or removed during the iteration may or may not be yielded;
/// - no key is ever yielded twice, and iteration never blocks, never waits
///   for a resize and never forces one to finish (there is none to finish).
///
/// The iterator holds no hazard pointer between calls to `next`; each call
/// re-finds its place from the position of the last yielded key.
///
/// ```
/// use waitless::map::LockFreeHashMap;
///
/// let map: LockFreeHashMap<u32, u32> = (0..5).map(|k| (k, k)).collect();
/// let mut keys: Vec<u32> = map.iter().map(|(k, _)| k).collect();
/// keys.sort();
/// assert_eq!(keys, [0, 1, 2, 3, 4]);
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<'m, K, V, S> {
    map: &'m LockFreeHashMap<K, V, S>,
    /// Split-order key of the last yielded entry (0 before the first).
    next_so: u64,
    /// Keys already yielded that have split-order key `next_so` (hash
    /// collisions share one).
    seen: Vec<K>,
    done: bool,
}

impl<K, V, S> fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq, V: Clone, S: BuildHasher> Iterator for Iter<'_, K, V, S> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        if self.done {
            return None;
        }
        let raw = &self.map.raw;
        let mut g = raw.guard();
        let (after, seen) = (self.next_so, &self.seen);
        let Some(e) = raw.first_from(&mut g, after, |so, k| so > after || !seen.contains(k)) else {
            self.done = true;
            return None;
        };
        let (k, v, so) = (e.key().clone(), e.value().clone(), e.so());
        if so != self.next_so {
            self.seen.clear();
            self.next_so = so;
        }
        self.seen.push(k.clone());
        Some((k, v))
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
