//! A lock-free hash map with lock-free growth: an open-addressing table of
//! hash tags and entry pointers with cooperative incremental migration,
//! reclaimed with this crate's [hazard pointers](crate::hazard).
//!
//! # Design
//! A table is two arrays: 32-bit hash tags (set once per slot) and entry
//! words (a pointer to an entry plus three migration flags). An entry is
//! one allocation holding the key, its first value inline and a value cell
//! (a pointer to that inline value, to a boxed replacement, or null once
//! removed). A lookup of a present key reads the tag line, the word, and
//! the entry (key and inline value on one line); a lookup of an absent key
//! usually reads only tags. Replace, update, remove and re-insert are CASes
//! on the entry's value cell, so they never touch the table.
//!
//! Growing allocates a table twice the size (or the same size when most
//! slots hold removed keys) and moves entry *pointers* into it: writers
//! that need a new slot help copy chunks of slots, readers never wait and
//! follow the old table's forwarding flags into the new one. See
//! `docs/hash-map.md` for the layout, the copy-or-drop decision and why it
//! is lock-free.
//!
//! # Progress
//! Every operation is lock-free: a retry happens only when a CAS failed
//! because another thread changed the same word (made progress). A helper
//! that finds every chunk of a migration handed out copies the rest itself
//! (copying is idempotent), so a stalled helper delays nobody. The table
//! never shrinks below its largest size, but removed keys are dropped by the
//! next migration, which keeps the size when few slots are live.
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
mod pool;
mod table;
pub use ext::{Keys, Values};

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use std::collections::hash_map::RandomState;

use crate::hazard::FenceStrategy;
use table::RawTable;

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
    raw: RawTable<K, V>,
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

    /// An empty map with room for about `n` elements, using `hasher`.
    ///
    /// The hint is capped at 2^20 slots; past that the table grows on
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
            raw: RawTable::with_capacity(n),
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

    /// The current number of slots of the table (a power of two that never
    /// shrinks).
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
        self.raw.capacity()
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
    #[inline(always)]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.raw.get_with(self.hash(key), key, f)
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
    #[inline]
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
        self.raw.insert(self.hash(&key), key, value)
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
        self.raw.get_or_insert_with(self.hash(&key), key, make)
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
    pub fn update<Q>(&self, key: &Q, f: impl FnMut(&V) -> V) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.raw.update(self.hash(key), key, f)
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
        self.raw.remove(self.hash(key), key)
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
            items: None,
        }
    }
}

// Dropping the map drops `raw`, which frees the tables' entries; then its
// hazard domain frees everything retired (no `Drop` impl needed).

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
    guard: table::Guard<'m>,
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
        self.map.raw.lookup(&mut self.guard, h, key)
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

/// A weakly consistent iterator over `(key, value)` clones, in table order
/// (unrelated to insertion order).
///
/// Guarantees, for iteration that runs concurrently with updates:
/// - every key present for the whole iteration is yielded exactly once, with
///   a value it held at some moment during the iteration;
/// - a key inserted or removed during the iteration may or may not be yielded;
/// - no key is ever yielded twice, and iteration never blocks and never
///   waits for a migration (it follows one into the next table).
///
/// The first call to `next` walks the table once and takes clones of every
/// entry (O(len) memory until the iterator is dropped); the iterator holds
/// no hazard pointer between calls.
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
    /// The clones taken by the walk, once it ran.
    items: Option<std::vec::IntoIter<(K, V)>>,
}

impl<K, V, S> fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("walked", &self.items.is_some())
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq, V: Clone, S: BuildHasher> Iterator for Iter<'_, K, V, S> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        let map = self.map;
        self.items
            .get_or_insert_with(|| {
                let mut all: Vec<(K, V)> = Vec::new();
                // Indices into `all` by slot tag, to drop a key met a second
                // time (removed and re-inserted while the walk followed a
                // migration: a new entry of an already yielded key).
                let mut by_tag: std::collections::HashMap<u32, Vec<usize>> =
                    std::collections::HashMap::new();
                map.raw.visit(|tag, crossed, k, v| {
                    let same = by_tag.entry(tag).or_default();
                    if crossed && same.iter().any(|&i| all[i].0 == *k) {
                        return false;
                    }
                    same.push(all.len());
                    all.push((k.clone(), v.clone()));
                    false
                });
                all.into_iter()
            })
            .next()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
