//! Collection conveniences for [`LockFreeHashMap`]: the std traits
//! (`FromIterator`, `Extend`, `IntoIterator for &map`, `Clone`, `PartialEq`/`Eq`,
//! an entry printing `Debug`) and `keys`, `values`, `retain`, `clear`.
//!
//! Everything here is built on the map's public operations (`insert`,
//! `remove`, `iter`), so it inherits their guarantees: each single
//! insert/remove is linearizable and lock-free, and anything that walks the
//! map is *weakly consistent* like [`Iter`] — a bulk operation is not atomic
//! as a whole, and entries inserted by other threads while it runs may or may
//! not be seen.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use super::{Iter, LockFreeHashMap};

impl<K, V, S> FromIterator<(K, V)> for LockFreeHashMap<K, V, S>
where
    K: Hash + Eq,
    V: Clone,
    S: BuildHasher + Default,
{
    /// Builds a map from `(key, value)` pairs; a later pair replaces an
    /// earlier one with the same key, as in `std::collections::HashMap`.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<&str, u32> = [("a", 1), ("b", 2), ("a", 3)].into_iter().collect();
    /// assert_eq!(map.len(), 2);
    /// assert_eq!(map.get("a"), Some(3));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let map = Self::with_capacity_and_hasher(iter.size_hint().0.max(1), S::default());
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<K, V, S> Extend<(K, V)> for &LockFreeHashMap<K, V, S>
where
    K: Hash + Eq,
    V: Clone,
    S: BuildHasher,
{
    /// Inserts every pair through a shared reference (other threads may use
    /// the map meanwhile); each insert is its own linearizable operation.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// (&map).extend([(1, "one"), (2, "two")]);
    /// assert_eq!(map.get(&2), Some("two"));
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, V, S> Extend<(K, V)> for LockFreeHashMap<K, V, S>
where
    K: Hash + Eq,
    V: Clone,
    S: BuildHasher,
{
    /// Inserts every pair, replacing the values of keys already present.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let mut map = LockFreeHashMap::new();
    /// map.extend([(1, 10), (1, 11)]);
    /// assert_eq!(map.get(&1), Some(11));
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<'m, K, V, S> IntoIterator for &'m LockFreeHashMap<K, V, S>
where
    K: Clone + Eq,
    V: Clone,
    S: BuildHasher,
{
    type Item = (K, V);
    type IntoIter = Iter<'m, K, V, S>;

    /// The same as [`LockFreeHashMap::iter`]: weakly consistent clones.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u32, u32> = (0..4).map(|i| (i, i * i)).collect();
    /// let mut sum = 0;
    /// for (_, v) in &map {
    ///     sum += v;
    /// }
    /// assert_eq!(sum, 0 + 1 + 4 + 9);
    /// ```
    fn into_iter(self) -> Iter<'m, K, V, S> {
        self.iter()
    }
}

impl<K, V, S> Clone for LockFreeHashMap<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    /// A new map with the same hasher and a clone of every entry, read with
    /// a weakly consistent iteration (a snapshot only when nobody writes).
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let a = LockFreeHashMap::new();
    /// a.insert("k", 1);
    /// let b = a.clone();
    /// b.insert("k", 2);
    /// assert_eq!((a.get("k"), b.get("k")), (Some(1), Some(2)));
    /// ```
    fn clone(&self) -> Self {
        let copy = Self::with_capacity_and_hasher(self.len().max(1), self.hasher.clone());
        for (k, v) in self.iter() {
            copy.insert(k, v);
        }
        copy
    }
}

impl<K, V, S> PartialEq for LockFreeHashMap<K, V, S>
where
    K: Hash + Eq + Clone,
    V: PartialEq + Clone,
    S: BuildHasher,
{
    /// Two maps are equal when they hold the same keys with equal values,
    /// as with `std::collections::HashMap` (papaya and dashmap compare the
    /// same way). Read with a weakly consistent iteration of `self` and
    /// lookups in `other`: exact when neither map is written meanwhile.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let a: LockFreeHashMap<u32, &str> = [(1, "one"), (2, "two")].into_iter().collect();
    /// let b = LockFreeHashMap::new();
    /// b.insert(2, "two");
    /// assert_ne!(a, b);
    /// b.insert(1, "one");
    /// assert_eq!(a, b);
    /// ```
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get_with(&k, |w| *w == v).unwrap_or(false))
    }
}

impl<K, V, S> Eq for LockFreeHashMap<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Eq + Clone,
    S: BuildHasher,
{
}

impl<K, V, S> fmt::Debug for LockFreeHashMap<K, V, S>
where
    K: fmt::Debug + Clone + Eq,
    V: fmt::Debug + Clone,
    S: BuildHasher,
{
    /// Prints the entries like `HashMap` does (`{k: v, ...}`), read with a
    /// weakly consistent iteration.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// map.insert(1, "one");
    /// assert_eq!(format!("{map:?}"), r#"{1: "one"}"#);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V, S: BuildHasher> LockFreeHashMap<K, V, S> {
    /// A weakly consistent iterator over clones of the keys (see [`Iter`]).
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u32, ()> = (0..3).map(|k| (k, ())).collect();
    /// let mut keys: Vec<u32> = map.keys().collect();
    /// keys.sort();
    /// assert_eq!(keys, [0, 1, 2]);
    /// ```
    #[must_use = "iterators are lazy and do nothing unless consumed"]
    pub fn keys(&self) -> Keys<'_, K, V, S>
    where
        K: Clone + Eq,
        V: Clone,
    {
        Keys { inner: self.iter() }
    }

    /// A weakly consistent iterator over clones of the values (see [`Iter`]).
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u32, u32> = (1..=3).map(|k| (k, k * 10)).collect();
    /// assert_eq!(map.values().sum::<u32>(), 60);
    /// ```
    #[must_use = "iterators are lazy and do nothing unless consumed"]
    pub fn values(&self) -> Values<'_, K, V, S>
    where
        K: Clone + Eq,
        V: Clone,
    {
        Values { inner: self.iter() }
    }

    /// Clones of the stored key equal to `key` and of its value, read at one
    /// instant (linearizable like [`get`](Self::get)). Useful when keys that
    /// compare equal still differ (e.g. an `Arc` key or a case-folded key).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map = LockFreeHashMap::new();
    /// let stored: Arc<str> = Arc::from("key");
    /// map.insert(stored.clone(), 1);
    /// let (k, v) = map.get_key_value("key").unwrap();
    /// assert!(Arc::ptr_eq(&k, &stored)); // the stored key, not the probe
    /// assert_eq!(v, 1);
    /// ```
    #[must_use]
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let h = self.hash(key);
        let mut g = self.raw.guard();
        let (k, v) = self.raw.lookup_kv(&mut g, h, key)?;
        let kv = (k.clone(), v.clone());
        // As in `insert`: the guard's drop runs before returning.
        drop(g);
        Some(kv)
    }

    /// Removes every entry for which `keep(&key, &value)` is `false`.
    ///
    /// Each entry is visited once by a weakly consistent walk and removed
    /// only if its value is still the one `keep` saw (a check-and-remove on
    /// the entry's value cell: a value another thread wrote meanwhile is
    /// kept). Entries inserted concurrently may or may not be visited.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u32, u32> = (0..10).map(|k| (k, k)).collect();
    /// map.retain(|_, v| v % 2 == 0);
    /// assert_eq!(map.len(), 5);
    /// assert!(!map.contains_key(&3));
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool)
    where
        K: Hash + Eq + Clone,
        V: Clone,
    {
        self.raw.visit(|_, _, k, v| !keep(k, v));
    }

    /// Removes every entry present when the walk reaches it; keys inserted
    /// by other threads while `clear` runs may remain. Lock-free, and not one
    /// atomic step: use `&mut` ownership (or drop the map) when "empty at one
    /// instant" matters.
    ///
    /// ```
    /// use waitless::map::LockFreeHashMap;
    ///
    /// let map: LockFreeHashMap<u32, u32> = (0..100).map(|k| (k, k)).collect();
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&self)
    where
        K: Hash + Eq + Clone,
        V: Clone,
    {
        self.retain(|_, _| false);
    }
}

/// A weakly consistent iterator over key clones, from
/// [`LockFreeHashMap::keys`].
///
/// ```
/// use waitless::map::LockFreeHashMap;
///
/// let m: LockFreeHashMap<&str, u8> = [("a", 1)].into_iter().collect();
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["a"]);
/// ```
pub struct Keys<'m, K, V, S> {
    inner: Iter<'m, K, V, S>,
}

impl<K: Clone + Eq, V: Clone, S: BuildHasher> Iterator for Keys<'_, K, V, S> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        self.inner.next().map(|(k, _)| k)
    }
}

impl<K, V, S> fmt::Debug for Keys<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

/// A weakly consistent iterator over value clones, from
/// [`LockFreeHashMap::values`].
///
/// ```
/// use waitless::map::LockFreeHashMap;
///
/// let m: LockFreeHashMap<&str, u8> = [("a", 1)].into_iter().collect();
/// assert_eq!(m.values().collect::<Vec<_>>(), [1]);
/// ```
pub struct Values<'m, K, V, S> {
    inner: Iter<'m, K, V, S>,
}

impl<K: Clone + Eq, V: Clone, S: BuildHasher> Iterator for Values<'_, K, V, S> {
    type Item = V;

    fn next(&mut self) -> Option<V> {
        self.inner.next().map(|(_, v)| v)
    }
}

impl<K, V, S> fmt::Debug for Values<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ext_matches_std_hash_map() {
        let n = if cfg!(miri) { 40 } else { 200 };
        let pairs: Vec<(u32, u32)> = (0..n).map(|i| (i % (n * 3 / 4), i)).collect();
        let map: LockFreeHashMap<u32, u32> = pairs.iter().copied().collect();
        let std: HashMap<u32, u32> = pairs.iter().copied().collect();
        assert_eq!(map.len(), std.len());
        let got: HashMap<u32, u32> = (&map).into_iter().collect();
        assert_eq!(got, std);
        let copy = map.clone();
        map.retain(|k, _| k % 3 == 0);
        assert_eq!(map.len(), std.keys().filter(|k| *k % 3 == 0).count());
        assert_eq!(copy.len(), std.len(), "the clone is independent");
        let mut keys: Vec<u32> = map.keys().collect();
        keys.sort_unstable();
        let mut want: Vec<u32> = std.keys().copied().filter(|k| k % 3 == 0).collect();
        want.sort_unstable();
        assert_eq!(keys, want);
        map.clear();
        assert!(map.is_empty() && map.iter().next().is_none());
        assert_eq!(copy.values().count(), std.len());
    }

    #[test]
    fn clear_while_others_insert_other_keys_leaves_only_theirs() {
        let (old, new) = if cfg!(miri) { (30, 10) } else { (500, 100) };
        let map: LockFreeHashMap<u32, u32> = (0..old).map(|k| (k, k)).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for k in 1000..1000 + new {
                    map.insert(k, k);
                }
            });
            map.clear();
        });
        assert!(map.keys().all(|k| k >= 1000), "every old key was removed");
    }
}
